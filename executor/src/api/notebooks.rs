//! Notebooks, datasets and the policy people write cells against:
//! `GET /v1/notebooks`, `GET/PUT /v1/notebooks/{id}`, `GET /v1/notebooks/{id}/versions[/{digest}]`,
//! `GET /v1/notebooks/{id}/runs`, `POST /v1/datasets` and `GET /v1/policy`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures::StreamExt as _;
use kiln_policy::Digest;
use kiln_policy::checks::wasm::AllowedFunctions;
use kiln_policy::preflight::{FuelPrice, Limits};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, ApiState, Runner};
use crate::datasets::DatasetError;
use crate::notebook::{DEFAULT_LIMITS, Notebook};
use crate::notebooks::{NotebookRun, NotebookStoreError, NotebookSummary, NotebookVersion};

impl From<NotebookStoreError> for ApiError {
    fn from(err: NotebookStoreError) -> Self {
        match err {
            NotebookStoreError::InvalidId(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-notebook-id",
                err.to_string(),
            ),
            NotebookStoreError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", err.to_string())
            }
            NotebookStoreError::Stale { .. } => {
                ApiError::new(StatusCode::CONFLICT, "stale-parent", err.to_string())
            }
            NotebookStoreError::Io(err) => ApiError::internal(err),
        }
    }
}

/// A notebook version with its document.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotebookDocument {
    /// The notebook's id.
    pub id: String,
    /// The version.
    pub version: NotebookVersion,
    /// The document (docs/notebook.md).
    #[schema(value_type = Object)]
    pub notebook: serde_json::Value,
}

/// A save: the document and the version it was edited from.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveNotebook {
    /// The newest version when the editing started; `null` creates the notebook. Any other
    /// parent than the newest version answers 409.
    #[schema(value_type = Option<String>)]
    pub parent: Option<Digest>,
    /// The document.
    #[schema(value_type = Object)]
    pub notebook: serde_json::Value,
}

fn document(id: &str, version: NotebookVersion, bytes: &[u8]) -> ApiResult<NotebookDocument> {
    let notebook = serde_json::from_slice(bytes).map_err(ApiError::internal)?;
    Ok(NotebookDocument {
        id: id.to_owned(),
        version,
        notebook,
    })
}

/// `GET /v1/notebooks`: every notebook, the most recently saved first.
#[utoipa::path(get, path = "/v1/notebooks", responses((status = 200, body = [NotebookSummary]), (status = 401)))]
pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
) -> ApiResult<Json<Vec<NotebookSummary>>> {
    Ok(Json(state.executor.notebooks().list()?))
}

/// `GET /v1/notebooks/{id}`: the newest version.
#[utoipa::path(get, path = "/v1/notebooks/{id}", responses((status = 200, body = NotebookDocument), (status = 401), (status = 404)))]
pub(crate) async fn show(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(id): Path<String>,
) -> ApiResult<Json<NotebookDocument>> {
    let (version, bytes) = state.executor.notebooks().head(&id)?;
    Ok(Json(document(&id, version, &bytes)?))
}

/// `PUT /v1/notebooks/{id}`: saves a new version on top of `parent`. 400 names the cell and
/// field of a malformed notebook; 409 when `parent` is not the newest version.
#[utoipa::path(put, path = "/v1/notebooks/{id}", request_body = SaveNotebook,
    responses((status = 200, body = NotebookVersion), (status = 400), (status = 401), (status = 409), (status = 413)))]
pub(crate) async fn save(
    State(state): State<Arc<ApiState>>,
    Runner(login): Runner,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<NotebookVersion>> {
    let save: SaveNotebook = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            format!("a save is {{\"parent\": DIGEST or null, \"notebook\": {{…}}}}: {err}"),
        )
    })?;
    let mut bytes = serde_json::to_vec_pretty(&save.notebook).map_err(ApiError::internal)?;
    bytes.push(b'\n');
    Notebook::parse(&bytes).map_err(crate::service::ExecutorError::from)?;
    let version = state.executor.notebooks().save(
        &id,
        save.parent,
        &bytes,
        &login,
        crate::service::now_ms(),
    )?;
    Ok(Json(version))
}

/// `GET /v1/notebooks/{id}/versions`: every version, oldest first.
#[utoipa::path(get, path = "/v1/notebooks/{id}/versions", responses((status = 200, body = [NotebookVersion]), (status = 401), (status = 404)))]
pub(crate) async fn versions(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<NotebookVersion>>> {
    let versions = state.executor.notebooks().history(&id)?;
    if versions.is_empty() {
        return Err(NotebookStoreError::NotFound(format!("no notebook `{id}`")).into());
    }
    Ok(Json(versions))
}

/// `GET /v1/notebooks/{id}/versions/{digest}`: one version.
#[utoipa::path(get, path = "/v1/notebooks/{id}/versions/{digest}", responses((status = 200, body = NotebookDocument), (status = 401), (status = 404)))]
pub(crate) async fn version(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path((id, digest)): Path<(String, String)>,
) -> ApiResult<Json<NotebookDocument>> {
    let digest = super::digest_param(&digest)?;
    let store = state.executor.notebooks();
    let bytes = store.version(&id, &digest)?;
    let version = store
        .history(&id)?
        .into_iter()
        .find(|v| v.digest == digest)
        .ok_or_else(|| {
            NotebookStoreError::NotFound(format!("notebook `{id}` has no version {digest}"))
        })?;
    Ok(Json(document(&id, version, &bytes)?))
}

/// `GET /v1/notebooks/{id}/runs`: the runs made of it (`POST /v1/runs?notebook=ID`), newest
/// first.
#[utoipa::path(get, path = "/v1/notebooks/{id}/runs", responses((status = 200, body = [NotebookRun]), (status = 401)))]
pub(crate) async fn runs(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<NotebookRun>>> {
    Ok(Json(state.executor.notebooks().runs(&id)?))
}

/// An uploaded dataset.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetCreated {
    /// Its digest: a cell's input `{"blob": DIGEST}` reads it.
    #[schema(value_type = String)]
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// `POST /v1/datasets`: the body, streamed into the executor's datasets; 413 past the policy's
/// `max_dataset_bytes`.
#[utoipa::path(post, path = "/v1/datasets", request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, body = DatasetCreated), (status = 401), (status = 413)))]
pub(crate) async fn upload_dataset(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    body: Body,
) -> ApiResult<Json<DatasetCreated>> {
    let limit = state.executor.settings().policy.execution.max_dataset_bytes;
    let too_large = |err: DatasetError| match err {
        DatasetError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", err.to_string())
        }
        DatasetError::Io(err) => ApiError::internal(err),
    };
    let datasets = state.executor.datasets();
    let mut upload = datasets.upload(limit).map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::new(StatusCode::BAD_REQUEST, "unreadable-body", err.to_string())
        })?;
        upload.write(&chunk).map_err(too_large)?;
    }
    let (digest, size) = upload.finish().map_err(too_large)?;
    Ok(Json(DatasetCreated { digest, size }))
}

/// `GET /v1/catalogue`: the registry's catalogue of approved kernels, through this executor, so
/// that a notebook editor served by an executor alone can pick kernels too.
#[utoipa::path(get, path = "/v1/catalogue", responses((status = 200, description = "the registry's `GET /api/kiln/v1/catalogue`"), (status = 401), (status = 503)))]
pub(crate) async fn catalogue(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let bytes = state.executor.catalogue().await.map_err(|err| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the registry's catalogue: {err}"),
        )
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}

/// What a cell may ask for, for people writing one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// The limits a cell gets for each one it leaves out.
    #[schema(value_type = Object)]
    pub default_limits: Limits,
    /// The most a cell may ask for.
    #[schema(value_type = Object)]
    pub max_limits: Limits,
    /// The WASI functions a cell may grant, by module (`["*"]`: every function).
    pub allowed_imports: BTreeMap<String, Vec<String>>,
    /// What fuel costs, when the deployment sets a price.
    #[schema(value_type = Option<Object>)]
    pub fuel_price: Option<FuelPrice>,
    /// The largest dataset an upload may be.
    pub max_dataset_bytes: u64,
    /// The largest notebook accepted.
    pub max_notebook_bytes: usize,
    /// The statements an artifact must carry (`provenance`, `audit`, `review`), each signed by
    /// a trusted key of its role.
    pub require: Vec<String>,
    /// The oldest revocation list a cell may run under, in seconds.
    pub revocation_max_age_secs: u64,
}

/// `GET /v1/policy`: the cell defaults and maxima, the grants allowed and the price of fuel.
#[utoipa::path(get, path = "/v1/policy", responses((status = 200, body = PolicyView), (status = 401)))]
pub(crate) async fn policy(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
) -> Json<PolicyView> {
    let preflight = state.executor.preflight();
    let execution = preflight.execution();
    let allowed_imports = preflight
        .wasm_policy()
        .allowed_imports
        .iter()
        .map(|(module, functions)| {
            let names = match functions {
                AllowedFunctions::All(_) => vec!["*".to_owned()],
                AllowedFunctions::Only(names) => names.iter().cloned().collect(),
            };
            (module.clone(), names)
        })
        .collect();
    Json(PolicyView {
        default_limits: DEFAULT_LIMITS,
        max_limits: Limits {
            fuel: execution.max_fuel,
            memory_bytes: execution.max_memory_bytes,
            wall_ms: execution.max_wall_ms,
            output_bytes: execution.max_output_bytes,
        },
        allowed_imports,
        fuel_price: execution.fuel_price.clone(),
        max_dataset_bytes: execution.max_dataset_bytes,
        max_notebook_bytes: state.limits.max_notebook_bytes,
        require: execution
            .require
            .iter()
            .map(|kind| kind.as_str().to_owned())
            .collect(),
        revocation_max_age_secs: execution.revocation_max_age_secs,
    })
}

/// Records a run of notebook `id` in its history (a notebook that is not stored is left alone).
pub(crate) fn note_run(state: &ApiState, id: &str, by: &str, stored: &crate::store::StoredRun) {
    let run = NotebookRun {
        run: stored.id.clone(),
        notebook: stored.record.notebook,
        created_ms: stored.created_ms,
        by: by.to_owned(),
        ok: stored
            .record
            .cells
            .iter()
            .all(|c| c.status == kiln_wire::runs::CellStatus::Ok),
    };
    if let Err(err) = state.executor.notebooks().record_run(id, &run) {
        tracing::warn!(notebook = id, error = %err, "could not record a run in the notebook's history");
    }
}
