//! `kiln-http`: how kiln's services (the registry and the executor) serve and answer HTTP.
//! [`serve`] bounds connections and the time a client may take to send a request. Every request
//! gets an id, answered in `x-request-id`. A handler's JSON errors pass through as they are; an
//! error answered in any other form (axum's own rejections, an unknown route, a method not
//! allowed) is rewritten in the service's JSON form; an internal failure carries its detail in an
//! [`InternalError`] response extension, which [`request_ids`] logs with the request's id and
//! replaces with a bare answer naming only that id, so that no internal text (SQL, paths,
//! library messages) ever reaches a client.

#![forbid(unsafe_code)]

mod serve;

pub use serve::{BodyTimeout, ConnectionLimits, serve};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long kiln's own clients (executors, builders) keep an idle connection to a kiln server
/// for reuse. A server closes a kept-alive connection once no request head arrives within its
/// header read timeout (10 s by default, [`ConnectionLimits`]); a client that reused one at that
/// moment would fail with "error sending request", so it lets go of it well before.
pub const CLIENT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// The header a request's id travels in, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request's id, in the request's extensions for handlers that need it (a streaming answer
/// that reports an internal failure in-band).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The detail of an internal failure, carried in a response's extensions to [`request_ids`],
/// which logs it and answers without it.
#[derive(Debug, Clone)]
pub struct InternalError(pub String);

/// A 500 response whose detail is logged by [`request_ids`], not sent.
pub fn internal_error(detail: impl std::fmt::Display) -> Response {
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response
        .extensions_mut()
        .insert(InternalError(detail.to_string()));
    response
}

/// The JSON forms a service answers errors in.
#[derive(Debug, Clone, Copy)]
pub struct ErrorForm {
    /// The answer to an internal failure, given the request id.
    pub internal: fn(&RequestId) -> Response,
    /// The answer to any other error, given its status and message.
    pub other: fn(StatusCode, &str) -> Response,
}

/// The most of an error's text body that is carried over into its JSON form.
const MAX_ERROR_TEXT: usize = 16 << 10;

/// A new request id: 16 random hex digits.
pub fn new_request_id() -> RequestId {
    RequestId(format!("{:016x}", rand::random::<u64>()))
}

/// The id a client sent, when it is a plain token of at most 64 characters.
fn sent_id(request: &Request) -> Option<RequestId> {
    let value = request.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then(|| RequestId(value.to_owned()))
}

/// Middleware (`axum::middleware::from_fn_with_state(form, request_ids)`): gives the request
/// an id (the client's, when plain, or a new one), answers it in `x-request-id`, turns an
/// [`InternalError`] into a log line with that id and the service's bare answer, and any error
/// that is not JSON into the service's JSON form (its text, or the status's reason, as the
/// message; its headers such as `Allow` and `Retry-After` kept).
pub async fn request_ids(
    axum::extract::State(form): axum::extract::State<ErrorForm>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = sent_id(&request).unwrap_or_else(new_request_id);
    request.extensions_mut().insert(id.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(InternalError(detail)) = response.extensions_mut().remove::<InternalError>() {
        tracing::error!(request_id = %id.0, %method, %path, error = %detail, "internal error");
        let status = response.status();
        response = (form.internal)(&id);
        *response.status_mut() = status;
    } else if needs_json_form(&response) {
        response = json_form(response, form.other).await;
    }
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

fn needs_json_form(response: &Response) -> bool {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
    (status.is_client_error() || status.is_server_error()) && !json
}

async fn json_form(response: Response, other: fn(StatusCode, &str) -> Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let mut answer = other(parts.status, &message);
    *answer.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    fn bare(id: &RequestId) -> Response {
        format!("internal error {}", id.0).into_response()
    }

    fn json(status: StatusCode, message: &str) -> Response {
        (status, axum::Json(serde_json::json!({"message": message}))).into_response()
    }

    const FORM: ErrorForm = ErrorForm {
        internal: bare,
        other: json,
    };

    async fn call(uri: &str, id: Option<&str>) -> (StatusCode, String, String) {
        let app = Router::new()
            .route(
                "/fails",
                get(|| async { internal_error("SELECT secret FROM x") }),
            )
            .route(
                "/teapot",
                get(|| async { (StatusCode::IM_A_TEAPOT, "short") }),
            )
            .route(
                "/json",
                get(|| async {
                    (
                        StatusCode::CONFLICT,
                        axum::Json(serde_json::json!({"kept": true})),
                    )
                }),
            )
            .layer(axum::middleware::from_fn_with_state(FORM, request_ids));
        let mut request = Request::builder().uri(uri);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let id = response.headers()[&REQUEST_ID].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, id, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn internal_detail_is_logged_not_sent_and_client_errors_pass() {
        let (status, id, body) = call("/fails", None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(id.len(), 16);
        assert_eq!(body, format!("internal error {id}"));
        assert!(!body.contains("SELECT"));
        let (status, _, body) = call("/json", None).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::CONFLICT, r#"{"kept":true}"#)
        );
    }

    #[tokio::test]
    async fn errors_in_other_forms_are_answered_in_json() {
        let (status, _, body) = call("/teapot", None).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::IM_A_TEAPOT, r#"{"message":"short"}"#)
        );
        let (status, _, body) = call("/nowhere", None).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, r#"{"message":"not found"}"#)
        );
    }

    #[tokio::test]
    async fn a_plain_client_id_is_kept_and_another_replaced() {
        assert_eq!(call("/teapot", Some("abc-123")).await.1, "abc-123");
        let replaced = call("/teapot", Some("a b/..")).await.1;
        assert_ne!(replaced, "a b/..");
        assert_eq!(replaced.len(), 16);
    }
}
