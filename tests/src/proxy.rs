//! A loopback HTTP proxy in front of a kiln server, for tests of what a page does when what
//! arrives is not what kiln sent: it forwards every request and, per path, can change one byte of
//! the answer, answer with other bytes, or go away entirely (offline). It counts the requests
//! for each path, so a test can tell what a page fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// What the proxy does instead of forwarding faithfully.
#[derive(Debug, Default)]
struct Rules {
    /// Paths whose answer has one byte changed (the middle one).
    flip: BTreeSet<String>,
    /// Paths answered with these bytes (200, `application/octet-stream` or JSON) instead.
    replace: BTreeMap<String, Vec<u8>>,
    /// Requests per path.
    counts: BTreeMap<String, usize>,
}

/// A running proxy.
pub struct Proxy {
    /// Its base URL (`http://127.0.0.1:PORT`): a page loaded from here sees only the proxy.
    pub url: String,
    rules: Arc<Mutex<Rules>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _runtime: tokio::runtime::Runtime,
}

/// Headers passed on in each direction.
const REQUEST_HEADERS: &[&str] = &["authorization", "content-type", "accept", "if-none-match"];
const ANSWER_HEADERS: &[&str] = &[
    "content-type",
    "content-security-policy",
    "etag",
    "cache-control",
    "service-worker-allowed",
    "location",
    "retry-after",
];

struct Forward {
    upstream: String,
    http: reqwest::Client,
    rules: Arc<Mutex<Rules>>,
}

async fn forward(
    State(state): State<Arc<Forward>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let replaced = {
        let mut rules = state.rules.lock().unwrap();
        *rules.counts.entry(path.clone()).or_default() += 1;
        rules.replace.get(&path).cloned()
    };
    if let Some(bytes) = replaced {
        let media_type = if bytes.first() == Some(&b'{') {
            "application/json"
        } else {
            "application/octet-stream"
        };
        return ([("content-type", media_type)], bytes).into_response();
    }
    let target = format!(
        "{}{}",
        state.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = state.http.request(method, &target).body(body);
    for name in REQUEST_HEADERS {
        if let Some(value) = headers.get(*name) {
            request = request.header(*name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let status = answer.status();
    let mut out = HeaderMap::new();
    for name in ANSWER_HEADERS {
        if let Some(value) = answer.headers().get(*name) {
            out.insert(HeaderName::from_static(name), value.clone());
        }
    }
    let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
    if state.rules.lock().unwrap().flip.contains(&path) && !bytes.is_empty() {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
    }
    (status, out, Body::from(bytes)).into_response()
}

impl Proxy {
    /// A proxy in front of `upstream` (a base URL).
    pub fn start(upstream: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let rules = Arc::new(Mutex::new(Rules::default()));
        let state = Arc::new(Forward {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            rules: rules.clone(),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(forward).with_state(state);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            url,
            rules,
            stop: Some(stop),
            _runtime: runtime,
        }
    }

    /// Changes one byte of every answer for `path` from now on.
    pub fn flip_byte(&self, path: &str) {
        self.rules.lock().unwrap().flip.insert(path.to_owned());
    }

    /// Answers `path` with `bytes` from now on.
    pub fn replace(&self, path: &str, bytes: Vec<u8>) {
        self.rules
            .lock()
            .unwrap()
            .replace
            .insert(path.to_owned(), bytes);
    }

    /// Forwards every path faithfully again.
    pub fn clear(&self) {
        let mut rules = self.rules.lock().unwrap();
        rules.flip.clear();
        rules.replace.clear();
    }

    /// How many requests for `path` arrived.
    pub fn count(&self, path: &str) -> usize {
        self.rules
            .lock()
            .unwrap()
            .counts
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests arrived for paths starting with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.rules
            .lock()
            .unwrap()
            .counts
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Stops answering: the port refuses connections, as a server out of reach does.
    pub fn go_offline(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Give the server a moment to close its listener.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
