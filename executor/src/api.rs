//! The executor's HTTP API: `POST /v1/preflight`, `POST /v1/runs` (a JSON answer, or NDJSON
//! cell events with `Accept: application/x-ndjson`), `GET /v1/runs/{id}`,
//! `POST /v1/runs/{id}/replay` and `GET /v1/outputs/{digest}`, described by [`ExecutorApi`].
//!
//! Every request needs a registry token with the `run` scope (or `admin`), checked against the
//! registry ([`crate::auth`]). A request body is at most `max_notebook_bytes`. At most `slots`
//! notebooks run at once and `max_queued` more wait; past that the answer is 503 with
//! `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use kiln_policy::Digest;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::auth::{AuthError, TokenCheck};
use crate::run::CellEvent;
use crate::service::{Executor, ExecutorError, PreflightReport, Prepared, ReplayReport};
use crate::store::StoredRun;

/// The API's limits.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// The largest notebook accepted, in bytes.
    pub max_notebook_bytes: usize,
    /// Requests that may wait for a slot; past this, 503.
    pub max_queued: usize,
    /// How long a request waits for a slot before 503.
    pub queue_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_notebook_bytes: 1024 * 1024,
            max_queued: 256,
            queue_timeout: Duration::from_secs(10),
        }
    }
}

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// The executor.
    pub executor: Arc<Executor>,
    /// Who may call.
    pub tokens: TokenCheck,
    /// The limits.
    pub limits: ApiLimits,
    slots: Semaphore,
    in_flight: AtomicUsize,
}

impl ApiState {
    /// The state for `executor` with `slots` concurrent runs.
    pub fn new(executor: Arc<Executor>, tokens: TokenCheck, limits: ApiLimits) -> Arc<Self> {
        let slots = executor.settings().slots as usize;
        Arc::new(Self {
            executor,
            tokens,
            limits,
            slots: Semaphore::new(slots),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// `/metrics` text for the executor.
    pub fn metrics(&self) -> String {
        self.executor.metrics.render(
            self.in_flight.load(Ordering::Relaxed),
            self.executor.store().len(),
        )
    }
}

/// An error answer: a status and `{"error": code, "message": …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
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
            other => {
                tracing::error!(error = %other, "executor error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    other.to_string(),
                )
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
            AuthError::Registry(_) => {
                let mut answer = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    err.to_string(),
                );
                answer.retry_after = Some(5);
                answer
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs kernel work on the blocking pool, off the threads that serve requests.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ExecutorError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                err.to_string(),
            )
        })?
        .map_err(ApiError::from)
}

/// The executor's routes, with its state.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    let limit = DefaultBodyLimit::max(state.limits.max_notebook_bytes);
    axum::Router::new()
        .route("/v1/preflight", post(preflight))
        .route("/v1/runs", post(create_run))
        .route("/v1/runs/{id}", get(show_run))
        .route("/v1/runs/{id}/replay", post(replay))
        .route("/v1/outputs/{digest}", get(output))
        .layer(limit)
        .with_state(state)
}

/// A held slot (or place in the queue), released on drop.
struct Admitted<'a> {
    state: &'a ApiState,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits for a run slot, or refuses with 503 when the queue is full or the wait too long.
async fn admit(state: &ApiState) -> ApiResult<Admitted<'_>> {
    let busy = |message: &str| {
        state
            .executor
            .metrics
            .rejected_busy
            .fetch_add(1, Ordering::Relaxed);
        let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
        err.retry_after = Some(1);
        err
    };
    let waiting = state.in_flight.fetch_add(1, Ordering::Relaxed);
    let slots = state.executor.settings().slots as usize;
    if waiting >= slots + state.limits.max_queued {
        state.in_flight.fetch_sub(1, Ordering::Relaxed);
        return Err(busy(
            "every slot and queue place is taken; try again shortly",
        ));
    }
    match tokio::time::timeout(state.limits.queue_timeout, state.slots.acquire()).await {
        Ok(Ok(permit)) => Ok(Admitted {
            state,
            _permit: permit,
        }),
        _ => {
            state.in_flight.fetch_sub(1, Ordering::Relaxed);
            Err(busy("no slot became free in time; try again shortly"))
        }
    }
}

async fn caller(state: &ApiState, headers: &HeaderMap) -> ApiResult<()> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    state.tokens.check(token).await?;
    Ok(())
}

/// `POST /v1/preflight`: the notebook's preflight, cell by cell; nothing runs.
#[utoipa::path(post, path = "/v1/preflight", request_body(content = Object, description = "a notebook (docs/notebook.md)"),
    responses((status = 200, body = PreflightReport), (status = 400), (status = 401), (status = 413)))]
pub(crate) async fn preflight(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<PreflightReport>> {
    caller(&state, &headers).await?;
    let prepared = state.executor.prepare(body.to_vec()).await?;
    Ok(Json(prepared.report))
}

/// Query parameters of `POST /v1/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct RunParams {
    /// Run deterministically (fixed clocks, randomness seeded with this), so that it replays.
    seed: Option<u64>,
}

/// An output, as text when it is UTF-8, else base64.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutputBody {
    /// Its digest.
    pub digest: String,
    /// The output as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The output in base64 (when it is not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl OutputBody {
    fn of(digest: Digest, bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self {
                digest: digest.to_string(),
                text: Some(text.to_owned()),
                base64: None,
            },
            Err(_) => Self {
                digest: digest.to_string(),
                text: None,
                base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }
}

/// A finished run: its id, its record and its outputs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunBody {
    /// The run's id.
    pub id: String,
    /// When it finished (Unix milliseconds).
    pub created_ms: u64,
    /// The run record (docs/notebook.md).
    #[schema(value_type = Object)]
    pub record: crate::run::RunRecord,
    /// Each cell's output by cell id.
    pub outputs: std::collections::BTreeMap<String, OutputBody>,
}

fn run_body(stored: &StoredRun, output: impl Fn(&Digest) -> Option<Vec<u8>>) -> RunBody {
    let outputs = stored
        .record
        .cells
        .iter()
        .filter_map(|cell| {
            let digest = cell.output?;
            let bytes = output(&digest)?;
            Some((cell.id.clone(), OutputBody::of(digest, &bytes)))
        })
        .collect();
    RunBody {
        id: stored.id.clone(),
        created_ms: stored.created_ms,
        record: stored.record.clone(),
        outputs,
    }
}

fn blocked(report: PreflightReport) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(serde_json::json!({
            "error": "blocked",
            "message": "the notebook did not pass preflight; nothing ran",
            "preflight": report,
        })),
    )
        .into_response()
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"))
}

/// Outputs are streamed in chunks of at most this many bytes.
const OUTPUT_CHUNK: usize = 16 * 1024;

/// `POST /v1/runs`: preflight, then run every cell in order and store the run. 422 with every
/// reason when preflight refuses. With `Accept: application/x-ndjson`, one JSON event per line:
/// `preflight`, then per cell `cell-started`, `output` chunks and `cell-finished`, then
/// `run-finished` (or `blocked`, or `error`).
#[utoipa::path(post, path = "/v1/runs", params(RunParams),
    request_body(content = Object, description = "a notebook (docs/notebook.md)"),
    responses((status = 200, body = RunBody, description = "the run (or an NDJSON event stream)"),
        (status = 400), (status = 401), (status = 413), (status = 422, description = "blocked by preflight"),
        (status = 503, description = "busy; see Retry-After")))]
pub(crate) async fn create_run(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<RunParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    caller(&state, &headers).await?;
    if wants_ndjson(&headers) {
        return Ok(stream_run(state, body.to_vec(), params.seed));
    }
    let admitted = admit(&state).await?;
    let prepared = state.executor.prepare(body.to_vec()).await?;
    if !prepared.report.allow {
        return Ok(blocked(prepared.report));
    }
    let executor = state.executor.clone();
    let (stored, result) =
        blocking(move || executor.execute(&prepared, params.seed, &mut |_| {})).await?;
    drop(admitted);
    Ok(Json(run_body(&stored, |d| result.outputs.get(d).cloned())).into_response())
}

fn event_line(value: serde_json::Value) -> Bytes {
    let mut line = serde_json::to_vec(&value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn stream_run(state: Arc<ApiState>, notebook: Vec<u8>, seed: Option<u64>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let send = |value| {
            let tx = tx.clone();
            async move { tx.send(event_line(value)).await.is_ok() }
        };
        let admitted = match admit(&state).await {
            Ok(admitted) => admitted,
            Err(err) => {
                send(serde_json::json!({"event": "error", "error": err.code, "message": err.message})).await;
                return;
            }
        };
        let prepared = match state.executor.prepare(notebook).await {
            Ok(prepared) => prepared,
            Err(err) => {
                let err = ApiError::from(err);
                send(serde_json::json!({"event": "error", "error": err.code, "message": err.message})).await;
                return;
            }
        };
        if !prepared.report.allow {
            send(serde_json::json!({"event": "blocked", "preflight": prepared.report})).await;
            return;
        }
        if !send(serde_json::json!({"event": "preflight", "preflight": prepared.report})).await {
            return;
        }
        let executor = state.executor.clone();
        let events = tx.clone();
        let finished = tokio::task::spawn_blocking(move || {
            let mut observe = |event: CellEvent<'_>| {
                let lines = cell_event_lines(event);
                for line in lines {
                    // A client that went away does not stop the run; it is stored anyway.
                    let _ = events.blocking_send(line);
                }
            };
            executor.execute(&prepared, seed, &mut observe)
        })
        .await;
        drop(admitted);
        let line = match finished {
            Ok(Ok((stored, _))) => {
                serde_json::json!({"event": "run-finished", "id": stored.id, "record": stored.record})
            }
            Ok(Err(err)) => {
                let err = ApiError::from(err);
                serde_json::json!({"event": "error", "error": err.code, "message": err.message})
            }
            Err(err) => {
                serde_json::json!({"event": "error", "error": "internal", "message": err.to_string()})
            }
        };
        send(line).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(line), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

fn cell_event_lines(event: CellEvent<'_>) -> Vec<Bytes> {
    match event {
        CellEvent::Started { id } => {
            vec![event_line(
                serde_json::json!({"event": "cell-started", "cell": id}),
            )]
        }
        CellEvent::Finished { record, output } => {
            let mut lines = Vec::new();
            if let Some(output) = output {
                for (n, chunk) in output.chunks(OUTPUT_CHUNK).enumerate() {
                    let body = OutputBody::of(Digest::of(chunk), chunk);
                    lines.push(event_line(serde_json::json!({
                        "event": "output", "cell": record.id, "chunk": n,
                        "text": body.text, "base64": body.base64,
                    })));
                }
            }
            lines.push(event_line(
                serde_json::json!({"event": "cell-finished", "cell": record}),
            ));
            lines
        }
    }
}

/// `GET /v1/runs/{id}`: a stored run with its outputs.
#[utoipa::path(get, path = "/v1/runs/{id}", responses((status = 200, body = RunBody), (status = 401), (status = 404)))]
pub(crate) async fn show_run(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<RunBody>> {
    caller(&state, &headers).await?;
    let stored = state
        .executor
        .store()
        .get(&id)
        .map_err(ExecutorError::from)?
        .ok_or(ExecutorError::NoSuchRun(id))?;
    let store = state.executor.store();
    Ok(Json(run_body(&stored, |d| store.blob(d).ok().flatten())))
}

/// `POST /v1/runs/{id}/replay`: runs a stored run again in deterministic mode with its seed
/// (after a fresh preflight) and reports per cell whether the output digest matches.
#[utoipa::path(post, path = "/v1/runs/{id}/replay", responses((status = 200, body = ReplayReport), (status = 401), (status = 404), (status = 422, description = "blocked by preflight")))]
pub(crate) async fn replay(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller(&state, &headers).await?;
    let (stored, notebook) = state.executor.stored_notebook(&id)?;
    let admitted = admit(&state).await?;
    let prepared: Prepared = state.executor.prepare(notebook).await?;
    if !prepared.report.allow {
        return Ok(blocked(prepared.report));
    }
    let executor = state.executor.clone();
    let report = blocking(move || executor.replay(&stored, &prepared)).await?;
    drop(admitted);
    Ok(Json(report).into_response())
}

/// `GET /v1/outputs/{digest}`: a stored output's bytes.
#[utoipa::path(get, path = "/v1/outputs/{digest}", responses((status = 200, content_type = "application/octet-stream"), (status = 401), (status = 404)))]
pub(crate) async fn output(
    State(state): State<Arc<ApiState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller(&state, &headers).await?;
    let digest: Digest = digest.parse().map_err(|err| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-digest", format!("{err}"))
    })?;
    let bytes = state
        .executor
        .store()
        .blob(&digest)
        .map_err(ExecutorError::from)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no output {digest}"),
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// The executor API, described for clients.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "kiln executor API",
        description = "Preflight and run notebooks of signed WebAssembly kernels, fetch stored runs and outputs, and replay runs deterministically. Every request needs a registry token with the `run` scope."
    ),
    paths(preflight, create_run, show_run, replay, output),
    components(schemas(
        PreflightReport,
        crate::service::CellPreflight,
        RunBody,
        OutputBody,
        ReplayReport
    ))
)]
pub struct ExecutorApi;

/// `GET /healthz` of a standalone executor.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /metrics` of a standalone executor.
async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics(),
    )
        .into_response()
}

/// `GET /openapi.json` of a standalone executor.
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(<ExecutorApi as utoipa::OpenApi>::openapi())
}

/// The executor's routes plus `/healthz`, `/metrics` and `/openapi.json`, for an executor that
/// runs alone (`kiln executor`); under `kiln serve` the registry serves those three.
pub fn standalone_router(state: Arc<ApiState>) -> axum::Router {
    router(state.clone()).merge(
        axum::Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route("/openapi.json", get(openapi))
            .with_state(state),
    )
}
