//! Code cells' builds ([`kiln_wire::code_builds`]): an executor asks for one
//! (`POST /api/kiln/v1/code-builds`) and follows it (`GET …/{key}`); a builder claims one and
//! reports its stages and result. Every route needs a worker-scoped token: executors and
//! builders are the deployment's own services.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kiln_policy::Digest;
use kiln_wire::code_builds::{
    CodeBuildRequest, CodeBuildStage, CodeBuildStatus, CodeClaim, CodeDependency, CodeJob,
    CodeReport,
};

use super::extract::{Body, Need, scope};
use super::{ApiError, ApiResult, AppState, digest_param};
use crate::model::{code_builds, versions};

/// The largest source a code cell may have.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// The most dependencies a code cell may name.
pub const MAX_DEPENDENCIES: usize = 64;
/// The crate every code cell's kernel is built with: kiln's SDK.
pub const SDK: &str = "kiln-kernel";

fn plain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
}

/// Checks `request` and pins the SDK when it names none: every dependency must be an approved
/// version of this registry.
async fn resolve(app: &AppState, mut request: CodeBuildRequest) -> ApiResult<CodeBuildRequest> {
    if request.source.len() > MAX_SOURCE_BYTES {
        return Err(ApiError::unprocessable(format!(
            "the source is {} bytes; a code cell may have at most {MAX_SOURCE_BYTES}",
            request.source.len()
        )));
    }
    for (field, value) in [
        ("input_type", &request.input_type),
        ("output_type", &request.output_type),
    ] {
        if !plain(value) {
            return Err(ApiError::unprocessable(format!(
                "`{field}` must be a media type without quotes, backslashes or spaces"
            )));
        }
    }
    if request.dependencies.len() > MAX_DEPENDENCIES {
        return Err(ApiError::unprocessable(format!(
            "a code cell may name at most {MAX_DEPENDENCIES} dependencies"
        )));
    }
    if !request.dependencies.contains_key(SDK) {
        let newest = versions::approved_versions(&app.db, SDK)
            .await?
            .into_iter()
            .max()
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "`{SDK}` (kiln's SDK, which every code cell is built with) has no approved version in this registry"
                ))
            })?;
        request.dependencies.insert(
            SDK.to_owned(),
            CodeDependency {
                version: newest.to_string(),
                features: Vec::new(),
                default_features: true,
            },
        );
    }
    let mut refused = Vec::new();
    for (name, dependency) in &request.dependencies {
        let plain_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let features_plain = dependency.features.iter().all(|f| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'))
        });
        if !plain_name || !features_plain {
            return Err(ApiError::unprocessable(format!(
                "dependency `{name}`: names and features are letters, digits, `-` and `_`"
            )));
        }
        let Ok(version) = semver::Version::parse(&dependency.version) else {
            return Err(ApiError::unprocessable(format!(
                "dependency `{name}`: `{}` is not an exact version (`kiln notebook lock` pins it)",
                dependency.version
            )));
        };
        if !versions::approved_versions(&app.db, name)
            .await?
            .contains(&version)
        {
            refused.push(format!("{name}@{version}"));
        }
    }
    if !refused.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "not approved in this registry: {} (a code cell may depend only on approved versions)",
            refused.join(", ")
        )));
    }
    Ok(request)
}

/// The key of a build of `request` here: the request in canonical form, with what else decides
/// the result (kiln's version, the policy, the builder key).
pub fn build_key(app: &AppState, request: &CodeBuildRequest) -> Digest {
    let mut text = format!(
        "kiln code build\n{}\n{}\n{}\n",
        env!("CARGO_PKG_VERSION"),
        app.config.policy.digest,
        app.keys.builder.id()
    )
    .into_bytes();
    text.extend(request.canonical());
    Digest::of(&text)
}

/// `POST /api/kiln/v1/code-builds`: the build of a code cell, queued unless it was made (or is
/// under way) already; 422 naming every dependency that is not approved.
#[utoipa::path(post, path = "/api/kiln/v1/code-builds", request_body = CodeBuildRequest, responses((status = 200, body = CodeBuildStatus), (status = 422)))]
pub(crate) async fn request(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Body(request): Body<CodeBuildRequest>,
) -> ApiResult<Json<CodeBuildStatus>> {
    let request = resolve(&app, request).await?;
    let key = build_key(&app, &request);
    let status = code_builds::request(&app.db, key, &request).await?;
    if !status.cached {
        tracing::info!(%key, source = %status.source, "code build queued");
    }
    Ok(Json(status))
}

/// `GET /api/kiln/v1/code-builds/{key}`: where a build is.
#[utoipa::path(get, path = "/api/kiln/v1/code-builds/{key}", responses((status = 200, body = CodeBuildStatus), (status = 404)))]
pub(crate) async fn show(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Path(key): Path<String>,
) -> ApiResult<Json<CodeBuildStatus>> {
    let key = digest_param(&key)?;
    Ok(Json(code_builds::get(&app.db, &key).await?))
}

/// `POST /api/kiln/v1/code-builds/claim` (builder): the next build to make, or 204.
#[utoipa::path(post, path = "/api/kiln/v1/code-builds/claim", request_body = CodeClaim, responses((status = 200, body = CodeJob), (status = 204)))]
pub(crate) async fn claim(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Body(claim): Body<CodeClaim>,
) -> ApiResult<Response> {
    let lease = std::time::Duration::from_secs(claim.lease_secs.clamp(10, 3600));
    match code_builds::claim(&app.db, &claim.worker, lease).await? {
        Some(mut job) => {
            for (name, dependency) in &job.request.dependencies {
                if versions::find(&app.db, name, &dependency.version)
                    .await?
                    .origin
                    .is_none()
                {
                    job.published_here.push(name.clone());
                }
            }
            Ok(Json(job).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `POST /api/kiln/v1/code-builds/{key}/report` (builder): a stage, the signed artifacts, or the
/// failure; 409 when the builder no longer holds the build.
#[utoipa::path(post, path = "/api/kiln/v1/code-builds/{key}/report", request_body = CodeReport, responses((status = 200), (status = 409)))]
pub(crate) async fn report(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Path(key): Path<String>,
    Body(report): Body<CodeReport>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = digest_param(&key)?;
    if let CodeReport::Signed { artifacts, .. } = &report {
        for digest in [
            artifacts.manifest,
            artifacts.wasm,
            artifacts.cwasm,
            artifacts.provenance,
            artifacts.audit,
            artifacts.log,
        ] {
            if !app.blobs.contains(&digest).await? {
                return Err(ApiError::unprocessable(format!(
                    "artifact {digest} was not uploaded"
                )));
            }
        }
    }
    let stage: CodeBuildStage = code_builds::report(&app.db, &key, &report).await?;
    Ok(Json(serde_json::json!({"stage": stage})))
}
