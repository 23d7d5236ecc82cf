//! `kiln-web`: the web app people use kiln through, served by the `kiln` binary on the same port
//! as the APIs. Its files (plain HTML, CSS and JavaScript modules under `web/assets/`, no build
//! step) are embedded in the binary at compile time, so nothing but `kiln` runs in production and
//! nothing is fetched at run time.
//!
//! Every answer carries a Content-Security-Policy that allows scripts, styles and requests only
//! from the page's own origin (no inline script, no other origin), images also from `blob:` URLs
//! (kernel pictures are shown from bytes the page fetched), and no framing. Files are named by
//! path and served with an ETag of their digest.

#![forbid(unsafe_code)]

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kiln_policy::Digest;

/// The Content-Security-Policy of every page and file.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The Content-Security-Policy of the kernel worker: it may compile WebAssembly (the page has
/// verified the module's digest and signatures before it hands it over) and may make no request
/// at all, so a kernel running there has no way out but the messages the worker posts.
pub const WORKER_CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $media_type:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            media_type: $media_type,
            bytes: include_bytes!(concat!("../assets/", $path)),
        }),*]
    };
}

/// Every file of the app.
static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "markdown.js" => "text/javascript; charset=utf-8",
    "render.js" => "text/javascript; charset=utf-8",
    "notebooks.js" => "text/javascript; charset=utf-8",
    "editor.js" => "text/javascript; charset=utf-8",
    "code-cell.js" => "text/javascript; charset=utf-8",
    "runs.js" => "text/javascript; charset=utf-8",
    "catalogue.js" => "text/javascript; charset=utf-8",
    "review.js" => "text/javascript; charset=utf-8",
    "tokens.js" => "text/javascript; charset=utf-8",
    "verify.js" => "text/javascript; charset=utf-8",
    "browser-run.js" => "text/javascript; charset=utf-8",
    "kernel-worker.js" => "text/javascript; charset=utf-8",
    "sw.js" => "text/javascript; charset=utf-8",
};

/// Each file's ETag: the digest of its bytes, quoted.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            HeaderValue::from_str(&format!("\"{}\"", Digest::of(asset.bytes)))
                .expect("a digest is a valid header value")
        })
        .collect()
});

fn answer(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.clone());
    let policy = match asset.path {
        "kernel-worker.js" => WORKER_CONTENT_SECURITY_POLICY,
        _ => CONTENT_SECURITY_POLICY,
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    if asset.path == "sw.js" {
        // Served under /app/, it keeps the whole app (scope `/`) working offline.
        headers.insert(
            HeaderName::from_static("service-worker-allowed"),
            HeaderValue::from_static("/"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Revalidated each time (an ETag match costs no body), so a new kiln's files are used at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if request.get(header::IF_NONE_MATCH) == Some(etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.media_type),
    );
    (headers, asset.bytes).into_response()
}

async fn index(request: HeaderMap) -> Response {
    answer(0, &request)
}

async fn file(Path(path): Path<String>, request: HeaderMap) -> Response {
    match ASSETS.iter().position(|asset| asset.path == path) {
        Some(index) => answer(index, &request),
        None => (
            StatusCode::NOT_FOUND,
            [(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            )],
            format!("no file /app/{path}"),
        )
            .into_response(),
    }
}

/// `GET /me`, where `cargo login` sends people for a token: the app's tokens page.
async fn me() -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/#/tokens"))],
    )
        .into_response()
}

/// The app's routes: `/` (the page), `/app/{file}`, and `/me` (the tokens page, where Cargo's
/// `cargo login` sends people).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/me", get(me))
        .route("/app/{*path}", get(file))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    async fn get_path(path: &str, etag: Option<&HeaderValue>) -> Response {
        let mut request = Request::get(path);
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_is_served_with_its_policy() {
        let response = get_path("/", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        let etag = response.headers()[header::ETAG].clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(b"<!doctype html>"));
        // Revalidation answers 304 without the body.
        assert_eq!(
            get_path("/", Some(&etag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
    }

    #[tokio::test]
    async fn cargo_logins_page_is_the_tokens_page() {
        let response = get_path("/me", None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/#/tokens");
    }

    #[tokio::test]
    async fn every_file_is_served_and_others_are_not() {
        for asset in ASSETS {
            let response = get_path(&format!("/app/{}", asset.path), None).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
            assert_eq!(response.headers()[header::CONTENT_TYPE], asset.media_type);
        }
        for path in ["/app/nope.js", "/app/../Cargo.toml", "/app/"] {
            assert_eq!(get_path(path, None).await.status(), StatusCode::NOT_FOUND);
        }
    }

    /// Every module a file imports, and every file the page names, is embedded.
    #[test]
    fn every_file_named_is_embedded() {
        let embedded: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.bytes);
            for marker in ["from \"./", "import(\"/app/", "href=\"/app/", "src=\"/app/"] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let name = &rest[..rest.find('"').unwrap()];
                    assert!(
                        embedded.contains(&name),
                        "{} names {name}, which is not embedded",
                        asset.path
                    );
                }
            }
        }
    }

    #[test]
    fn no_file_has_inline_script_or_another_origin() {
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.bytes);
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!text.contains(bad), "{} uses {bad}", asset.path);
            }
            // The icon names the SVG namespace; the verifier names in-toto and kiln type URIs
            // (identifiers compared as strings, never fetched).
            assert!(
                !text.contains("http://") && !text.contains("https://")
                    || matches!(asset.path, "icon.svg" | "verify.js"),
                "{} names another origin",
                asset.path
            );
        }
        let page = String::from_utf8_lossy(ASSETS[0].bytes);
        assert!(!page.contains("<script>"), "the page has an inline script");
        // No inline event handler attribute (` onclick=`, ` onload=`, …).
        let handler = page.match_indices(" on").any(|(at, _)| {
            let rest = &page[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "the page has an inline event handler");
    }
}
