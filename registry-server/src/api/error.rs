//! The one error type of the HTTP API. Clients get Cargo's error form,
//! `{"errors":[{"detail":"…"}]}`, with a meaningful status; internal failures are logged with
//! their detail and answered with a bare "internal error".

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::tokens::AuthError;

/// An API error: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    retry_after: Option<u64>,
    login_url: Option<String>,
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

    /// 500, with the detail logged and not sent.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the server log has the details",
        )
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"errors": [{"detail": self.detail}]});
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
