//! The executor API's errors: `{"error": CODE, "message": …}` with a stable code. Client errors
//! pass through; an internal failure's detail is logged with the request's id
//! ([`kiln_http::request_ids`]) and answered with a bare 500 naming that id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_wire::errors::ExecutorErrorBody;

use crate::auth::AuthError;
use crate::service::ExecutorError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) retry_after: Option<u64>,
    internal: Option<String>,
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status`, a stable `code` and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            internal: None,
        }
    }

    /// 503 with `Retry-After`.
    pub fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
        }
    }

    /// 500: the detail is logged under the request's id, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self {
            internal: Some(detail.to_string()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }

    /// Whether this is an internal failure (its detail not for the client).
    pub fn internal_detail(&self) -> Option<&str> {
        self.internal.as_deref()
    }

    /// The body a client sees (never an internal detail).
    pub fn body(&self) -> ExecutorErrorBody {
        ExecutorErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
            request_id: None,
        }
    }
}

impl From<ExecutorError> for ApiError {
    fn from(err: ExecutorError) -> Self {
        match err {
            ExecutorError::Notebook(err) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid-notebook", err.to_string())
            }
            ExecutorError::NoSuchRun(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", err.to_string())
            }
            // Nobody waits for this answer: the client went away, or was cut off.
            ExecutorError::Cancelled => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cancelled",
                err.to_string(),
            ),
            other @ (ExecutorError::Store(_) | ExecutorError::Runtime(_)) => {
                ApiError::internal(other)
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing | AuthError::Refused(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string())
            }
            AuthError::Scope(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", err.to_string())
            }
            AuthError::Registry(_) => ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    err.to_string(),
                )
            },
        }
    }
}

/// The executor's answer to an error that was not answered in its form (axum's rejections, an
/// unknown route): `{"error": CODE, "message"}` with a code for the status.
pub fn other_body(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        s if s.is_server_error() => "unavailable",
        _ => "invalid-request",
    };
    ApiError::new(status, code, message).into_response()
}

/// The executor's answer to an internal failure, naming the request id the log has it under.
pub fn internal_body(id: &kiln_http::RequestId) -> Response {
    let body = ExecutorErrorBody {
        error: "internal".into(),
        message: format!(
            "internal error; the server log has the details under request id {}",
            id.0
        ),
        request_id: Some(id.0.clone()),
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = self.internal {
            return kiln_http::internal_error(detail);
        }
        let body = self.body();
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
