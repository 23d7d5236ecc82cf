//! kiln's own API: submissions and review decisions, artifacts, tokens, the event log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kiln_policy::Digest;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::cargo::version_row;
use super::{ApiError, ApiResult, AppState, require, require_read};
use crate::db::now_ms;
use crate::publish::NewCrate;
use crate::tokens::{self, NewToken, Scope};
use crate::{events, names};

/// A submission (one version of a crate) as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Submission {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// `submitted`, `audited`, `built`, `approved`, `rejected` or `failed`.
    pub state: String,
    /// Why it is rejected or failed.
    pub state_reason: Option<String>,
    /// The SHA-256 of the `.crate`.
    pub checksum: String,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Who published it.
    pub published_by: String,
    /// Where it came from when imported from another registry.
    pub origin: Option<String>,
    /// When it was published (Unix milliseconds).
    pub created_at: i64,
    /// When its state last changed (Unix milliseconds).
    pub updated_at: i64,
}

const SUBMISSION_COLUMNS: &str = "c.name, v.version, v.state, v.state_reason, v.checksum, v.yanked, u.login, v.origin, v.created_at, v.updated_at \
     FROM versions v JOIN crates c ON c.id = v.crate_id JOIN users u ON u.id = v.published_by";

fn submission(row: &sqlx::any::AnyRow) -> Submission {
    Submission {
        krate: row.get("name"),
        version: row.get("version"),
        state: row.get("state"),
        state_reason: row.get("state_reason"),
        checksum: row.get("checksum"),
        yanked: row.get::<i64, _>("yanked") != 0,
        published_by: row.get("login"),
        origin: row.get("origin"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// Filters for the submission list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SubmissionQuery {
    /// Only submissions in this state.
    pub state: Option<String>,
}

/// `GET /api/kiln/v1/submissions`.
#[utoipa::path(get, path = "/api/kiln/v1/submissions", params(SubmissionQuery), responses((status = 200, body = [Submission])))]
pub(crate) async fn list_submissions(
    State(app): State<AppState>,
    Query(query): Query<SubmissionQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Submission>>> {
    require_read(&app, &headers).await?;
    let rows = match &query.state {
        Some(state) => {
            sqlx::query(&format!(
                "SELECT {SUBMISSION_COLUMNS} WHERE v.state = $1 ORDER BY v.id"
            ))
            .bind(state)
            .fetch_all(app.db.pool())
            .await?
        }
        None => {
            sqlx::query(&format!("SELECT {SUBMISSION_COLUMNS} ORDER BY v.id"))
                .fetch_all(app.db.pool())
                .await?
        }
    };
    Ok(Json(rows.iter().map(submission).collect()))
}

/// A dependency of a submission and whether an approved version satisfies it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DependencyStatus {
    /// The crate depended on.
    pub name: String,
    /// The requirement.
    pub req: String,
    /// `normal`, `build` or `dev`.
    pub kind: String,
    /// Another registry's index, when the dependency is not from this one.
    pub registry: Option<String>,
    /// The newest approved version that satisfies the requirement, if any.
    pub approved: Option<String>,
}

/// A submission with everything a reviewer needs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmissionDetail {
    /// The submission.
    #[serde(flatten)]
    pub submission: Submission,
    /// Its dependencies and their approval.
    pub dependencies: Vec<DependencyStatus>,
    /// Audit and build reports, by kind.
    #[schema(value_type = Object)]
    pub reports: serde_json::Value,
    /// Artifacts built from it.
    #[schema(value_type = Vec<Object>)]
    pub artifacts: Vec<serde_json::Value>,
    /// Review decisions.
    #[schema(value_type = Vec<Object>)]
    pub reviews: Vec<serde_json::Value>,
}

/// The dependencies of `meta` with the newest approved version satisfying each.
pub(crate) async fn dependency_status(
    app: &AppState,
    meta: &NewCrate,
) -> ApiResult<Vec<DependencyStatus>> {
    let mut out = Vec::new();
    for dep in &meta.deps {
        let approved = if dep.registry.is_some() {
            None
        } else {
            let req = semver::VersionReq::parse(&dep.version_req).map_err(ApiError::internal)?;
            let rows = sqlx::query(
                "SELECT v.version FROM versions v JOIN crates c ON c.id = v.crate_id \
                 WHERE c.canonical_name = $1 AND v.state = 'approved' AND v.yanked = 0",
            )
            .bind(names::canonical(&dep.name))
            .fetch_all(app.db.pool())
            .await?;
            rows.iter()
                .filter_map(|r| semver::Version::parse(&r.get::<String, _>("version")).ok())
                .filter(|v| req.matches(v))
                .max()
                .map(|v| v.to_string())
        };
        out.push(DependencyStatus {
            name: dep.name.clone(),
            req: dep.version_req.clone(),
            kind: dep.kind.clone(),
            registry: dep.registry.clone(),
            approved,
        });
    }
    Ok(out)
}

async fn metadata_of(app: &AppState, version_id: i64) -> ApiResult<NewCrate> {
    let text: String = sqlx::query_scalar("SELECT metadata FROM versions WHERE id = $1")
        .bind(version_id)
        .fetch_one(app.db.pool())
        .await?;
    serde_json::from_str(&text).map_err(ApiError::internal)
}

/// `GET /api/kiln/v1/submissions/{name}/{version}/crate`: the `.crate` in any state, for
/// reviewers reading the source before they decide (review scope).
#[utoipa::path(get, path = "/api/kiln/v1/submissions/{name}/{version}/crate", responses((status = 200, content_type = "application/gzip"), (status = 401), (status = 403), (status = 404)))]
pub(crate) async fn submission_crate(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    require(&app, &headers, Scope::Review).await?;
    let (krate, row) = version_row(&app, &name, &version).await?;
    let checksum: String = row.get("checksum");
    let digest = Digest::from_hex(&checksum).map_err(ApiError::internal)?;
    let bytes = app.blobs.get(&digest).await?.ok_or_else(|| {
        ApiError::internal(format!(
            "blob {digest} of {}@{version} is missing",
            krate.name
        ))
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/gzip"),
        )],
        bytes,
    )
        .into_response())
}

/// `GET /api/kiln/v1/submissions/{name}/{version}`.
#[utoipa::path(get, path = "/api/kiln/v1/submissions/{name}/{version}", responses((status = 200, body = SubmissionDetail), (status = 404)))]
pub(crate) async fn show_submission(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<SubmissionDetail>> {
    require_read(&app, &headers).await?;
    let (_, row) = version_row(&app, &name, &version).await?;
    let id: i64 = row.get("id");
    let listed = sqlx::query(&format!("SELECT {SUBMISSION_COLUMNS} WHERE v.id = $1"))
        .bind(id)
        .fetch_one(app.db.pool())
        .await?;
    let meta = metadata_of(&app, id).await?;
    let mut reports = serde_json::Map::new();
    for r in sqlx::query("SELECT kind, body FROM reports WHERE version_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(app.db.pool())
        .await?
    {
        let body: String = r.get("body");
        reports.insert(
            r.get("kind"),
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        );
    }
    let artifacts = sqlx::query(
        "SELECT digest, kind, media_type, size FROM artifacts WHERE version_id = $1 ORDER BY kind",
    )
    .bind(id)
    .fetch_all(app.db.pool())
    .await?
    .iter()
    .map(|r| {
        serde_json::json!({
            "digest": r.get::<String, _>("digest"),
            "kind": r.get::<String, _>("kind"),
            "media_type": r.get::<String, _>("media_type"),
            "size": r.get::<i64, _>("size"),
        })
    })
    .collect();
    let reviews = sqlx::query("SELECT r.decision, u.login, r.reason, r.criteria, r.created_at FROM reviews r JOIN users u ON u.id = r.reviewer WHERE r.version_id = $1 ORDER BY r.id")
        .bind(id)
        .fetch_all(app.db.pool())
        .await?
        .iter()
        .map(|r| {
            serde_json::json!({
                "decision": r.get::<String, _>("decision"),
                "reviewer": r.get::<String, _>("login"),
                "reason": r.get::<Option<String>, _>("reason"),
                "criteria": r.get::<Option<String>, _>("criteria"),
                "created_at": r.get::<i64, _>("created_at"),
            })
        })
        .collect();
    Ok(Json(SubmissionDetail {
        submission: submission(&listed),
        dependencies: dependency_status(&app, &meta).await?,
        reports: serde_json::Value::Object(reports),
        artifacts,
        reviews,
    }))
}

/// An approval.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// What the reviewer vouches for (for example `safe-to-run`).
    #[serde(default)]
    pub criteria: Option<String>,
    /// The reviewer's signed review statement (a Sigstore bundle), kept with the decision.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub bundle: Option<serde_json::Value>,
}

/// A rejection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Why.
    pub reason: String,
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> ApiResult<T> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("invalid request body: {err}")))
}

/// A review decision to record.
struct Decision<'a> {
    decision: &'static str,
    reason: Option<&'a str>,
    criteria: Option<&'a str>,
    bundle: Option<String>,
}

/// Records a review decision and its event inside `tx`.
async fn record_decision(
    app: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    version_id: i64,
    auth: &crate::tokens::Authenticated,
    subject: &str,
    decision: Decision<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reviews (version_id, decision, reviewer, reason, criteria, bundle, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(version_id)
    .bind(decision.decision)
    .bind(auth.user_id)
    .bind(decision.reason)
    .bind(decision.criteria)
    .bind(&decision.bundle)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if decision.decision == "approve" {
        // Whatever waited for this approval (a dependant's audit) may go on now.
        crate::jobs::wake(tx).await?;
    }
    let data = serde_json::json!({"reason": decision.reason, "criteria": decision.criteria});
    events::append(
        tx,
        app.db.backend(),
        decision.decision,
        subject,
        &auth.login,
        data,
    )
    .await?;
    Ok(())
}

/// Signs a review statement for version `id` with the server's reviewer key and stores it as a
/// blob: its subjects are the `.crate` and every built module; returns its digest and size.
async fn review_statement(
    app: &AppState,
    id: i64,
    checksum: &str,
    subject: &str,
    reviewer: &str,
    criteria: Option<&str>,
) -> ApiResult<(kiln_policy::Digest, i64)> {
    use kiln_policy::intoto::ResourceDescriptor;
    let (name, version) = subject.split_once('@').unwrap_or((subject, ""));
    let mut subjects = vec![ResourceDescriptor::new(
        format!("{name}-{version}.crate"),
        kiln_policy::Digest::from_hex(checksum).map_err(ApiError::internal)?,
    )];
    let rows = sqlx::query("SELECT digest, kind FROM artifacts WHERE version_id = $1 AND kind IN ('wasm', 'cwasm') ORDER BY kind")
        .bind(id)
        .fetch_all(app.db.pool())
        .await?;
    for row in rows {
        let digest: kiln_policy::Digest = row
            .get::<String, _>("digest")
            .parse()
            .map_err(ApiError::internal)?;
        subjects.push(ResourceDescriptor::new(
            format!("{name}.{}", row.get::<String, _>("kind")),
            digest,
        ));
    }
    let statement = kiln_policy::Statement::new(
        subjects,
        kiln_policy::StatementKind::Review.predicate_type(),
        serde_json::json!({
            "decision": "approved",
            "crate": name,
            "version": version,
            "reviewer": reviewer,
            "criteria": criteria.unwrap_or("safe-to-run"),
            "approved_at": crate::api::cargo::rfc3339(now_ms()),
        }),
    );
    let bundle =
        kiln_policy::sign_statement(&app.keys.reviewer, &statement).map_err(ApiError::internal)?;
    let bytes = bundle.to_json().into_bytes();
    let size = bytes.len() as i64;
    let digest = app.blobs.put(bytes.into()).await?;
    Ok((digest, size))
}

/// `POST /api/kiln/v1/submissions/{name}/{version}/approve`: puts a built version in the index.
/// Every dependency from this registry must already have an approved version.
#[utoipa::path(post, path = "/api/kiln/v1/submissions/{name}/{version}/approve", request_body = Approval, responses((status = 200), (status = 409)))]
pub(crate) async fn approve(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Review).await?;
    let approval: Approval = parse_body(&body)?;
    let (krate, row) = version_row(&app, &name, &version).await?;
    let id: i64 = row.get("id");
    let state: String = row.get("state");
    let subject = format!("{}@{version}", krate.name);
    if state != "built" {
        return Err(ApiError::conflict(format!(
            "cannot approve {subject}: it is {state}, and only built versions can be approved"
        )));
    }
    let meta = metadata_of(&app, id).await?;
    let unmet: Vec<String> = dependency_status(&app, &meta)
        .await?
        .into_iter()
        .filter(|d| d.kind != "dev" && d.approved.is_none())
        .map(|d| match d.registry {
            Some(registry) => format!("{} {} (from another registry, {registry})", d.name, d.req),
            None => format!("{} {}", d.name, d.req),
        })
        .collect();
    if !unmet.is_empty() {
        return Err(ApiError::conflict(format!(
            "cannot approve {subject}: needs approved versions of {}",
            unmet.join(", ")
        )));
    }
    // Without a review statement of the reviewer's own, the server signs one with its reviewer
    // key: executors require it (the default policy), and its subjects are what was approved.
    let signed_here = match &approval.bundle {
        Some(_) => None,
        None => Some(
            review_statement(
                &app,
                id,
                &row.get::<String, _>("checksum"),
                &subject,
                &auth.login,
                approval.criteria.as_deref(),
            )
            .await?,
        ),
    };
    let now = now_ms();
    let mut w = app.db.begin_write().await?;
    if let Some((digest, size)) = &signed_here {
        sqlx::query("INSERT INTO artifacts (digest, version_id, kind, media_type, size, created_at) SELECT $1, $2, 'review', $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE digest = $1)")
            .bind(digest.to_string())
            .bind(id)
            .bind(kiln_policy::bundle::MEDIA_TYPE)
            .bind(*size)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
    }
    let changed = sqlx::query("UPDATE versions SET state = 'approved', state_reason = NULL, updated_at = $1 WHERE id = $2 AND state = 'built'")
        .bind(now)
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
    if changed.rows_affected() != 1 {
        return Err(ApiError::conflict(format!(
            "{subject} changed state during approval; try again"
        )));
    }
    let decision = Decision {
        decision: "approve",
        reason: None,
        criteria: approval.criteria.as_deref(),
        bundle: approval.bundle.as_ref().map(|b| b.to_string()),
    };
    record_decision(&app, &mut w.tx, id, &auth, &subject, decision, now).await?;
    w.commit().await?;
    app.index_cache.invalidate(&krate.name.to_ascii_lowercase());
    tracing::info!(%subject, reviewer = %auth.login, "approved");
    Ok(Json(serde_json::json!({"ok": true, "state": "approved"})))
}

/// `POST /api/kiln/v1/submissions/{name}/{version}/reject`. The `.crate` is kept.
#[utoipa::path(post, path = "/api/kiln/v1/submissions/{name}/{version}/reject", request_body = Rejection, responses((status = 200), (status = 409), (status = 422)))]
pub(crate) async fn reject(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    Json(rejection): Json<Rejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Review).await?;
    if rejection.reason.trim().is_empty() {
        return Err(ApiError::unprocessable("a rejection needs a reason"));
    }
    let (krate, row) = version_row(&app, &name, &version).await?;
    let id: i64 = row.get("id");
    let state: String = row.get("state");
    let subject = format!("{}@{version}", krate.name);
    if state == "approved" || state == "rejected" {
        return Err(ApiError::conflict(format!(
            "cannot reject {subject}: it is already {state}"
        )));
    }
    let now = now_ms();
    let mut w = app.db.begin_write().await?;
    sqlx::query(
        "UPDATE versions SET state = 'rejected', state_reason = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(&rejection.reason)
    .bind(now)
    .bind(id)
    .execute(&mut *w.tx)
    .await?;
    let decision = Decision {
        decision: "reject",
        reason: Some(&rejection.reason),
        criteria: None,
        bundle: None,
    };
    record_decision(&app, &mut w.tx, id, &auth, &subject, decision, now).await?;
    w.commit().await?;
    Ok(Json(serde_json::json!({"ok": true, "state": "rejected"})))
}

/// `GET /api/kiln/v1/artifacts/{digest}`: a built artifact, or a `.crate`, by digest. The
/// `.crate` of a version that is not approved is only for workers and reviewers.
#[utoipa::path(get, path = "/api/kiln/v1/artifacts/{digest}", responses((status = 200, content_type = "application/octet-stream"), (status = 404)))]
pub(crate) async fn artifact(
    State(app): State<AppState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let auth = require_read(&app, &headers).await?;
    let digest: Digest = digest
        .parse()
        .map_err(|err| ApiError::bad_request(format!("`{digest}` is not a digest: {err}")))?;
    super::revocations::refuse_revoked(&app, &digest, &digest.to_string()).await?;
    let media_type: String =
        match sqlx::query_scalar::<_, String>("SELECT media_type FROM artifacts WHERE digest = $1")
            .bind(digest.to_string())
            .fetch_optional(app.db.pool())
            .await?
        {
            Some(media_type) => media_type,
            None => {
                let state: String =
                    sqlx::query_scalar("SELECT state FROM versions WHERE checksum = $1")
                        .bind(digest.hex())
                        .fetch_optional(app.db.pool())
                        .await?
                        .ok_or_else(|| ApiError::not_found(format!("no artifact {digest}")))?;
                let privileged = auth
                    .as_ref()
                    .is_some_and(|a| a.has_scope(Scope::Worker) || a.has_scope(Scope::Review));
                if state != "approved" && !privileged {
                    return Err(ApiError::not_found(format!("no artifact {digest}")));
                }
                "application/gzip".to_owned()
            }
        };
    let bytes = app
        .blobs
        .get(&digest)
        .await?
        .ok_or_else(|| ApiError::internal(format!("blob {digest} is missing")))?;
    let content_type = HeaderValue::from_str(&media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// An import request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ImportRequest {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// The upstream sparse index (default: crates.io's).
    #[serde(default)]
    pub upstream: Option<String>,
}

/// `POST /api/kiln/v1/imports` (admin): fetches a version from an upstream registry, checks it
/// against the upstream checksum, and submits it to the quarantine with its origin.
#[utoipa::path(post, path = "/api/kiln/v1/imports", request_body = ImportRequest, responses((status = 200), (status = 404), (status = 422), (status = 502)))]
pub(crate) async fn import(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<ImportRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    use crate::import::{self, ImportError};
    let auth = require(&app, &headers, Scope::Admin).await?;
    let upstream = request
        .upstream
        .as_deref()
        .unwrap_or(import::CRATES_IO_INDEX);
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(ApiError::internal)?;
    let fetched = import::fetch(
        &http,
        upstream,
        &request.krate,
        &request.version,
        app.config.max_publish_bytes,
    )
    .await
    .map_err(|err| match err {
        ImportError::NotFound(_) => ApiError::not_found(err.to_string()),
        ImportError::Upstream { .. } => {
            ApiError::new(axum::http::StatusCode::BAD_GATEWAY, err.to_string())
        }
        ImportError::ChecksumMismatch { .. } | ImportError::BadLine(..) => {
            ApiError::unprocessable(err.to_string())
        }
    })?;
    let checksum = Digest::of(&fetched.tarball);
    let subject = super::cargo::submit(
        &app,
        &auth,
        fetched.metadata,
        fetched.tarball,
        Some(&fetched.origin),
    )
    .await?;
    Ok(Json(
        serde_json::json!({"ok": true, "subject": subject, "checksum": checksum.to_string(), "origin": fetched.origin}),
    ))
}

/// A token request: a token for `login` (created if new).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// Whose token it is.
    pub login: String,
    /// The token.
    #[serde(flatten)]
    pub token: NewToken,
}

/// A token as listed (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Its id.
    pub id: i64,
    /// Whose it is.
    pub login: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// The crates it is limited to.
    pub crate_pattern: Option<String>,
    /// When it expires.
    pub expires_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// `POST /api/kiln/v1/tokens` (admin): creates a token and shows its secret once.
#[utoipa::path(post, path = "/api/kiln/v1/tokens", request_body = TokenRequest, responses((status = 200)))]
pub(crate) async fn create_token(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<TokenRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Admin).await?;
    if request.token.scopes.is_empty() {
        return Err(ApiError::unprocessable("a token needs at least one scope"));
    }
    if request.login.trim().is_empty() || request.login.len() > 64 {
        return Err(ApiError::unprocessable("a login is 1 to 64 characters"));
    }
    let mut w = app.db.begin_write().await?;
    let user_id = tokens::ensure_user(&mut w.tx, &request.login).await?;
    let (id, secret) = tokens::create(&mut w.tx, user_id, &request.token).await?;
    let scopes: Vec<&str> = request.token.scopes.iter().map(|s| s.as_str()).collect();
    events::append(
        &mut w.tx,
        app.db.backend(),
        "token-create",
        &format!("token:{id}"),
        &auth.login,
        serde_json::json!({"login": request.login, "scopes": scopes}),
    )
    .await?;
    w.commit().await?;
    Ok(Json(
        serde_json::json!({"id": id, "login": request.login, "token": secret}),
    ))
}

/// Who a token belongs to and what it may do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The user's login.
    pub login: String,
    /// The token's id.
    pub token_id: i64,
    /// The token's scopes (`admin` holds every scope).
    pub scopes: Vec<String>,
}

/// `GET /api/kiln/v1/whoami`: the caller's login and scopes; 401 for a missing, unknown,
/// expired or revoked token. Executors check their callers' tokens here.
#[utoipa::path(get, path = "/api/kiln/v1/whoami", responses((status = 200, body = WhoAmI), (status = 401)))]
pub(crate) async fn whoami(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<WhoAmI>> {
    let auth = super::authenticate(&app, &headers)
        .await?
        .ok_or_else(|| ApiError::from_auth(tokens::AuthError::Missing, &app.config.login_url()))?;
    Ok(Json(WhoAmI {
        login: auth.login,
        token_id: auth.token_id,
        scopes: auth.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
    }))
}

/// `GET /api/kiln/v1/tokens` (admin).
#[utoipa::path(get, path = "/api/kiln/v1/tokens", responses((status = 200, body = [TokenInfo])))]
pub(crate) async fn list_tokens(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    require(&app, &headers, Scope::Admin).await?;
    let rows = sqlx::query("SELECT t.id, u.login, t.name, t.scopes, t.crate_pattern, t.expires_at, t.revoked_at FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id")
        .fetch_all(app.db.pool())
        .await?;
    Ok(Json(
        rows.iter()
            .map(|r| TokenInfo {
                id: r.get("id"),
                login: r.get("login"),
                name: r.get("name"),
                scopes: r
                    .get::<String, _>("scopes")
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                crate_pattern: r.get("crate_pattern"),
                expires_at: r.get("expires_at"),
                revoked_at: r.get("revoked_at"),
            })
            .collect(),
    ))
}

/// `DELETE /api/kiln/v1/tokens/{id}`: revokes a token (an admin, or the token's own user).
#[utoipa::path(delete, path = "/api/kiln/v1/tokens/{id}", responses((status = 200), (status = 404)))]
pub(crate) async fn revoke_token(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = super::authenticate(&app, &headers)
        .await?
        .ok_or_else(|| ApiError::from_auth(tokens::AuthError::Missing, &app.config.login_url()))?;
    let owner: i64 = sqlx::query_scalar("SELECT user_id FROM tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no token {id}")))?;
    if owner != auth.user_id && !auth.is_admin() {
        return Err(ApiError::forbidden(
            "only an admin or the token's own user can revoke it",
        ));
    }
    let mut w = app.db.begin_write().await?;
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
    events::append(
        &mut w.tx,
        app.db.backend(),
        "token-revoke",
        &format!("token:{id}"),
        &auth.login,
        serde_json::json!({}),
    )
    .await?;
    w.commit().await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

/// Paging through the event log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventQuery {
    /// Events after this sequence number.
    #[serde(default)]
    pub after: i64,
    /// At most this many (1 to 1000, default 100).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /api/kiln/v1/events`.
#[utoipa::path(get, path = "/api/kiln/v1/events", params(EventQuery), responses((status = 200, body = [events::Event])))]
pub(crate) async fn events(
    State(app): State<AppState>,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<events::Event>>> {
    require(&app, &headers, Scope::Review).await?;
    Ok(Json(
        events::list(
            &app.db,
            query.after,
            query.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await?,
    ))
}

/// `GET /api/kiln/v1/events/verify`: checks the hash chain of the whole log.
#[utoipa::path(get, path = "/api/kiln/v1/events/verify", responses((status = 200)))]
pub(crate) async fn verify_events(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    require(&app, &headers, Scope::Review).await?;
    Ok(Json(match events::verify(&app.db).await? {
        Ok(count) => serde_json::json!({"ok": true, "events": count}),
        Err(err) => serde_json::json!({"ok": false, "error": err.to_string()}),
    }))
}
