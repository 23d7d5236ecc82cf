//! The executor's HTTP API: `POST /v1/preflight`, `POST /v1/runs` (a JSON answer, or NDJSON
//! cell events with `Accept: application/x-ndjson`), `GET /v1/runs/{id}`,
//! `POST /v1/runs/{id}/replay` and `GET /v1/outputs/{digest}`, described by [`ExecutorApi`];
//! the web app's notebooks, datasets and policy ([`notebooks`]); and what a page needs to verify
//! and run kernels itself ([`browser`]).
//!
//! Every request needs a registry token with the `run` scope (or `admin`), checked against the
//! registry ([`crate::auth`]). A request body is at most `max_notebook_bytes`. At most `slots`
//! notebooks run at once and `max_queued` more wait; past that the answer is 503 with
//! `Retry-After`.

mod admission;
pub mod browser;
pub mod error;
pub mod notebooks;
mod streaming;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kiln_http::RequestId;
use kiln_policy::Digest;
use kiln_wire::runs::{BlockedBody, OutputBody, RunBody};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::sync::Semaphore;

pub use self::error::{ApiError, ApiResult};
use crate::auth::TokenCheck;
use crate::runtime::Cancel;
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
    /// How long a streaming client may take to read an event before its run is stopped.
    pub write_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_notebook_bytes: crate::notebook::MAX_NOTEBOOK_BYTES,
            max_queued: 256,
            queue_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
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
    slots: Arc<Semaphore>,
}

impl ApiState {
    /// The state for `executor`, with as many run slots as its instance pool.
    pub fn new(executor: Arc<Executor>, tokens: TokenCheck, limits: ApiLimits) -> Arc<Self> {
        let slots = admission::slots(executor.settings().slots as usize);
        Arc::new(Self {
            executor,
            tokens,
            limits,
            slots,
        })
    }
}

/// Runs kernel work on the blocking pool, off the threads that serve requests.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ExecutorError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// Stops a run when dropped before [`CancelOnDrop::disarm`]: the handler that waits for the run
/// is dropped when its client goes away.
#[derive(Debug, Default)]
struct CancelOnDrop(Cancel, bool);

impl CancelOnDrop {
    /// The run finished and was answered: dropping stops nothing.
    fn disarm(mut self) {
        self.1 = true;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.cancel();
        }
    }
}

/// A digest named in a path; 400 `invalid-digest` when it is not one.
pub(crate) fn digest_param(text: &str) -> ApiResult<Digest> {
    text.parse()
        .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, "invalid-digest", format!("{err}")))
}

/// The answer to a path no route serves, in the executor's error form.
async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no route {}", uri.path()),
    )
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
        .route("/v1/notebooks", get(notebooks::list))
        .route(
            "/v1/notebooks/{id}",
            get(notebooks::show).put(notebooks::save),
        )
        .route("/v1/notebooks/{id}/versions", get(notebooks::versions))
        .route(
            "/v1/notebooks/{id}/versions/{digest}",
            get(notebooks::version),
        )
        .route("/v1/notebooks/{id}/runs", get(notebooks::runs))
        .route("/v1/policy", get(notebooks::policy))
        .route("/v1/catalogue", get(notebooks::catalogue))
        .route("/v1/trust", get(browser::trust))
        .route("/v1/kernels/{crate}/{version}", get(browser::kernel))
        .route("/v1/artifacts/{digest}", get(browser::artifact))
        .route("/v1/revocations", get(browser::revocations))
        .route("/v1/datasets/{digest}", get(browser::dataset))
        .route(
            "/v1/datasets",
            // Streamed to disk under the policy's own limit.
            post(notebooks::upload_dataset).layer(DefaultBodyLimit::disable()),
        )
        .layer(limit)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            kiln_http::ErrorForm {
                internal: error::internal_body,
                other: error::other_body,
            },
            kiln_http::request_ids,
        ))
}

/// A caller whose token the registry accepts with the `run` scope, by login. An extractor of the
/// request's head, so it is checked before the body is read: a caller without a token learns
/// nothing of what a notebook must look like, and costs no body buffering.
pub(crate) struct Runner(pub String);

impl FromRequestParts<Arc<ApiState>> for Runner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        caller(state, &parts.headers).await.map(Runner)
    }
}

async fn caller(state: &ApiState, headers: &HeaderMap) -> ApiResult<String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Ok(state.tokens.check(token).await?)
}

/// `POST /v1/preflight`: the notebook's preflight, cell by cell; nothing runs.
#[utoipa::path(post, path = "/v1/preflight", request_body(content = Object, description = "a notebook (docs/notebook.md)"),
    responses((status = 200, body = PreflightReport), (status = 400), (status = 401), (status = 413)))]
pub(crate) async fn preflight(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    body: Bytes,
) -> ApiResult<Json<PreflightReport>> {
    let prepared = state.executor.prepare(body.to_vec()).await?;
    Ok(Json(prepared.report))
}

/// Query parameters of `POST /v1/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct RunParams {
    /// Run deterministically (fixed clocks, randomness seeded with this), so that it replays.
    seed: Option<u64>,
    /// A stored notebook (`/v1/notebooks/{id}`) whose run history lists this run.
    notebook: Option<String>,
}

/// The answer for `stored` (moved into it), with each output `output` finds.
fn run_body<'a>(stored: StoredRun, output: impl Fn(&Digest) -> Option<Cow<'a, [u8]>>) -> RunBody {
    let outputs = stored
        .record
        .cells
        .iter()
        .filter_map(|cell| {
            let bytes = output(&cell.output?)?;
            Some((cell.id.clone(), OutputBody::of(&bytes)))
        })
        .collect();
    RunBody {
        id: stored.id,
        created_ms: stored.created_ms,
        record: stored.record,
        outputs,
    }
}

fn blocked(report: PreflightReport) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(BlockedBody {
            error: "blocked".into(),
            message: "the notebook did not pass preflight; nothing ran".into(),
            preflight: report,
        }),
    )
        .into_response()
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"))
}

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
    Runner(login): Runner,
    Query(params): Query<RunParams>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let history = params.notebook.map(|notebook| (notebook, login.clone()));
    if wants_ndjson(&headers) {
        return Ok(streaming::stream_run(
            state,
            body.to_vec(),
            params.seed,
            history,
            login,
            id,
        ));
    }
    let admitted = admission::admit(&state).await?;
    let mut prepared = state.executor.prepare(Vec::from(body)).await?;
    prepared.ran_by = Some(login);
    if !prepared.report.allow {
        return Ok(blocked(prepared.report));
    }
    let executor = state.executor.clone();
    let (stored, outputs) = if prepared.is_small() {
        // Bounded by its small wall-clock limit, whatever its kernels do (`is_small`): run right
        // here, on this async worker, without the blocking pool's thread wake-ups. A client
        // that goes away cannot stop it, and need not.
        let _slot = admitted;
        executor.execute(&prepared, params.seed, &mut |_| {}, &Cancel::default())?
    } else {
        // The slot goes with the run and is freed when its kernel has stopped; a client that
        // goes away stops the run (this future is dropped with the connection).
        let cancel = CancelOnDrop::default();
        let run_cancel = cancel.0.clone();
        let ran = blocking(move || {
            let _slot = admitted;
            executor.execute(&prepared, params.seed, &mut |_| {}, &run_cancel)
        })
        .await?;
        cancel.disarm();
        ran
    };
    if let Some((notebook, login)) = &history {
        notebooks::note_run(&state, notebook, login, &stored);
    }
    let body = run_body(stored, |d| {
        outputs.get(d).map(|b| Cow::Borrowed(b.as_slice()))
    });
    Ok(Json(body).into_response())
}

/// `GET /v1/runs/{id}`: a stored run with its outputs.
#[utoipa::path(get, path = "/v1/runs/{id}", responses((status = 200, body = RunBody), (status = 401), (status = 404)))]
pub(crate) async fn show_run(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(id): Path<String>,
) -> ApiResult<Json<RunBody>> {
    let stored = state
        .executor
        .store()
        .get(&id)
        .map_err(ExecutorError::from)?
        .ok_or(ExecutorError::NoSuchRun(id))?;
    let store = state.executor.store();
    Ok(Json(run_body(stored, |d| {
        store.blob(d).ok().flatten().map(Cow::Owned)
    })))
}

/// `POST /v1/runs/{id}/replay`: runs a stored run again in deterministic mode with its seed
/// (after a fresh preflight) and reports per cell whether the output digest matches.
#[utoipa::path(post, path = "/v1/runs/{id}/replay", responses((status = 200, body = ReplayReport), (status = 401), (status = 404), (status = 422, description = "blocked by preflight")))]
pub(crate) async fn replay(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (stored, notebook) = state.executor.stored_notebook(&id)?;
    let admitted = admission::admit(&state).await?;
    let prepared: Prepared = state.executor.prepare(notebook).await?;
    if !prepared.report.allow {
        return Ok(blocked(prepared.report));
    }
    let executor = state.executor.clone();
    let cancel = CancelOnDrop::default();
    let run_cancel = cancel.0.clone();
    let report = blocking(move || {
        let _slot = admitted;
        executor.replay(&stored, &prepared, &run_cancel)
    })
    .await?;
    cancel.disarm();
    Ok(Json(report).into_response())
}

/// `GET /v1/outputs/{digest}`: a stored output's bytes.
#[utoipa::path(get, path = "/v1/outputs/{digest}", responses((status = 200, content_type = "application/octet-stream"), (status = 401), (status = 404)))]
pub(crate) async fn output(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let digest = digest_param(&digest)?;
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
    paths(
        preflight,
        create_run,
        show_run,
        replay,
        output,
        notebooks::list,
        notebooks::show,
        notebooks::save,
        notebooks::versions,
        notebooks::version,
        notebooks::runs,
        notebooks::upload_dataset,
        notebooks::policy,
        notebooks::catalogue,
        browser::trust,
        browser::kernel,
        browser::artifact,
        browser::revocations,
        browser::dataset
    ),
    components(schemas(
        browser::TrustView,
        browser::TrustedKeyView,
        crate::fetch::KernelListing,
        notebooks::NotebookDocument,
        notebooks::SaveNotebook,
        notebooks::DatasetCreated,
        notebooks::PolicyView,
        crate::notebooks::NotebookVersion,
        crate::notebooks::NotebookSummary,
        crate::notebooks::NotebookRun,
        PreflightReport,
        crate::service::CellPreflight,
        RunBody,
        OutputBody,
        ReplayReport,
        kiln_wire::errors::ExecutorErrorBody
    ))
)]
pub struct ExecutorApi;

/// `GET /healthz` of a standalone executor.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /metrics` of a standalone executor.
async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String does not fail");
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
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
    let mut registry = Registry::default();
    state.executor.metrics.register(&mut registry);
    router(state)
        .merge(
            axum::Router::new()
                .route("/healthz", get(healthz))
                .route("/metrics", get(metrics))
                .route("/openapi.json", get(openapi))
                .with_state(Arc::new(registry)),
        )
        .fallback(no_route)
}
