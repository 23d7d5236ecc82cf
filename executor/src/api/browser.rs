//! What a page needs to verify and run kernels itself (browser runs): the trust file this
//! executor decides with, what the registry lists for a kernel version, blobs by digest, the
//! registry's signed revocation list as it signed it, and uploaded datasets.
//!
//! `GET /v1/trust`, `GET /v1/kernels/{crate}/{version}`, `GET /v1/artifacts/{digest}`,
//! `GET /v1/revocations` and `GET /v1/datasets/{digest}`.
//!
//! None of these answers is trusted by the page: it checks every digest and every signature
//! against the trust file, exactly as the executor's own preflight does. Serving them here, not
//! only from the registry, lets a page served by an executor alone (another origin than the
//! registry's) run kernels too.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, ApiResult, ApiState, Runner, digest_param};
use crate::fetch::{FetchError, KernelListing};

/// One trusted key, as the page reads it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrustView {
    /// Always `kiln-trust/v1`.
    pub schema: &'static str,
    /// The keys, in the keyring's order.
    pub keys: Vec<TrustedKeyView>,
}

/// One key of [`TrustView`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrustedKeyView {
    /// The key id (hex SHA-256 of the SPKI DER): the hint a bundle names.
    pub id: String,
    /// The name people know it by.
    pub name: String,
    /// What it may sign: `builder`, `reviewer`, `revocation`.
    pub roles: Vec<String>,
    /// The SPKI public key, PEM.
    pub pem: String,
    /// When it was retired, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

fn unavailable(what: &str, err: FetchError) -> ApiError {
    match err {
        FetchError::Revoked(message) => ApiError::new(
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            "revoked",
            format!("{what}: {message}"),
        ),
        err => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what}: {err}"),
        ),
    }
}

fn bytes_answer(media_type: &'static str, immutable: bool, bytes: Vec<u8>) -> Response {
    let cache = if immutable {
        // Named by digest: the bytes never change (the page checks them anyway).
        "private, max-age=31536000, immutable"
    } else {
        "no-store"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /v1/trust`: the keys this executor's preflight trusts, with their roles, as one
/// self-contained document (the page shows it, with its digest, and verifies with it).
#[utoipa::path(get, path = "/v1/trust", responses((status = 200, body = TrustView), (status = 401)))]
pub(crate) async fn trust(State(state): State<Arc<ApiState>>, _runner: Runner) -> Json<TrustView> {
    let keys = state
        .executor
        .preflight()
        .keyring()
        .keys()
        .into_iter()
        .map(|trusted| TrustedKeyView {
            id: trusted.key.id().to_string(),
            name: trusted.name.clone(),
            roles: trusted
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            pem: trusted.key.to_pem(),
            retired: trusted.retired.clone(),
        })
        .collect();
    Json(TrustView {
        schema: "kiln-trust/v1",
        keys,
    })
}

/// `GET /v1/kernels/{crate}/{version}`: what the registry lists for a kernel version now: its
/// manifest's digest, its signed statements, and whether it is approved.
#[utoipa::path(get, path = "/v1/kernels/{crate}/{version}",
    params(("crate" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = KernelListing), (status = 401), (status = 451), (status = 503)))]
pub(crate) async fn kernel(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path((krate, version)): Path<(String, String)>,
) -> ApiResult<Json<KernelListing>> {
    state
        .executor
        .listing(&krate, &version)
        .await
        .map(Json)
        .map_err(|err| unavailable(&format!("{krate}@{version}"), err))
}

/// `GET /v1/artifacts/{digest}`: a manifest, module or bundle by digest (451 when revoked).
#[utoipa::path(get, path = "/v1/artifacts/{digest}", params(("digest" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 401), (status = 451), (status = 503)))]
pub(crate) async fn artifact(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let digest = digest_param(&digest)?;
    let bytes = state
        .executor
        .blob(&digest)
        .await
        .map_err(|err| unavailable(&digest.to_string(), err))?;
    Ok(bytes_answer("application/octet-stream", true, bytes))
}

/// `GET /v1/revocations`: the registry's revocation list, fetched now, exactly as it signed it.
#[utoipa::path(get, path = "/v1/revocations",
    responses((status = 200, description = "a Sigstore bundle"), (status = 401), (status = 503)))]
pub(crate) async fn revocations(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
) -> ApiResult<Response> {
    let bytes = state
        .executor
        .revocation_bundle()
        .await
        .map_err(|err| unavailable("the registry's revocation list", err))?;
    Ok(bytes_answer("application/json", false, bytes))
}

/// `GET /v1/datasets/{digest}`: an uploaded dataset, for a cell that reads it in the page.
#[utoipa::path(get, path = "/v1/datasets/{digest}", params(("digest" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 401), (status = 404)))]
pub(crate) async fn dataset(
    State(state): State<Arc<ApiState>>,
    _runner: Runner,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let digest = digest_param(&digest)?;
    match state
        .executor
        .datasets()
        .get(&digest)
        .map_err(ApiError::internal)?
    {
        Some(bytes) => Ok(bytes_answer("application/octet-stream", true, bytes)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no dataset {digest} on this executor"),
        )),
    }
}
