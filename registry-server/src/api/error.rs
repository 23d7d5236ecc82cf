//! The one error type of the HTTP API. Clients get Cargo's error form,
//! `{"errors":[{"detail":"…"}]}`, with a meaningful status; an internal failure's detail goes to
//! the log with the request's id ([`kiln_http::request_ids`]) and the client gets a bare
//! "internal error" naming that id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::ModelError;
use crate::tokens::AuthError;

/// An API error: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    retry_after: Option<u64>,
    login_url: Option<String>,
    internal: Option<String>,
}

/// Handlers return this.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            retry_after: None,
            login_url: None,
            internal: None,
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 422.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 401 with Cargo's `www-authenticate` challenge.
    pub fn unauthorized(detail: impl Into<String>, login_url: &str) -> Self {
        Self {
            login_url: Some(login_url.to_owned()),
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 429 or 503 with `Retry-After`.
    pub fn busy(status: StatusCode, retry_after_secs: u64, detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(status, detail)
        }
    }

    /// 500, with the detail logged (under the request's id) and not sent.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self {
            internal: Some(err.to_string()),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Maps an authentication failure, naming where to get a token.
    pub fn from_auth(err: AuthError, login_url: &str) -> Self {
        match err {
            AuthError::Database => Self::internal("token lookup failed"),
            other => Self::unauthorized(other.to_string(), login_url),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(err)
    }
}

impl From<crate::blobs::BlobError> for ApiError {
    fn from(err: crate::blobs::BlobError) -> Self {
        Self::internal(err)
    }
}

impl From<ModelError> for ApiError {
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::NotFound(detail) => Self::not_found(detail),
            ModelError::Conflict(detail) => Self::conflict(detail),
            ModelError::Forbidden(detail) => Self::forbidden(detail),
            ModelError::Invalid(detail) => Self::unprocessable(detail),
            other @ (ModelError::Db(_) | ModelError::Blob(_) | ModelError::Corrupt(_)) => {
                Self::internal(other)
            }
        }
    }
}

/// The registry's answer to an error that was not answered in its form (axum's rejections, an
/// unknown route): Cargo's error form with `message`.
pub fn other_body(status: StatusCode, message: &str) -> Response {
    let body = kiln_wire::errors::RegistryErrorBody::new(message.to_owned());
    (status, axum::Json(body)).into_response()
}

/// The registry's answer to an internal failure: Cargo's error form, naming the request id
/// under which the log has the detail.
pub fn internal_body(id: &kiln_http::RequestId) -> Response {
    let body = kiln_wire::errors::RegistryErrorBody::new(format!(
        "internal error; the server log has the details under request id {}",
        id.0
    ));
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = self.internal {
            return kiln_http::internal_error(detail);
        }
        let body = kiln_wire::errors::RegistryErrorBody::new(self.detail);
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(url) = self.login_url
            && let Ok(value) = HeaderValue::from_str(&format!("Cargo login_url=\"{url}\""))
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
