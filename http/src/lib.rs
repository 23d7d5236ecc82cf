//! `kiln-http`: the one HTTP error discipline of kiln's services (the registry and the
//! executor). Every request gets an id, answered in `x-request-id`. A handler's client errors
//! pass through as they are; an internal failure carries its detail in an [`InternalError`]
//! response extension, which [`request_ids`] logs with the request's id and replaces with a bare
//! answer naming only that id, so that no internal text (SQL, paths, library messages) ever
//! reaches a client.

#![forbid(unsafe_code)]

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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

/// Makes the body a service answers an internal failure with, given the request id.
pub type InternalBody = fn(&RequestId) -> Response;

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

/// Middleware (`axum::middleware::from_fn_with_state(body, request_ids)`): gives the request
/// an id (the client's, when plain, or a new one), answers it in `x-request-id`, and turns an
/// [`InternalError`] into a log line with that id and the service's bare answer (`body`).
pub async fn request_ids(
    axum::extract::State(body): axum::extract::State<InternalBody>,
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
        response = body(&id);
        *response.status_mut() = status;
    }
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
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
            .layer(axum::middleware::from_fn_with_state(
                bare as InternalBody,
                request_ids,
            ));
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
        let (status, _, body) = call("/teapot", None).await;
        assert_eq!((status, body.as_str()), (StatusCode::IM_A_TEAPOT, "short"));
    }

    #[tokio::test]
    async fn a_plain_client_id_is_kept_and_another_replaced() {
        assert_eq!(call("/teapot", Some("abc-123")).await.1, "abc-123");
        let replaced = call("/teapot", Some("a b/..")).await.1;
        assert_ne!(replaced, "a b/..");
        assert_eq!(replaced.len(), 16);
    }
}
