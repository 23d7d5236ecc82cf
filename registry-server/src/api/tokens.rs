//! Tokens: `POST /api/kiln/v1/tokens` (admin), `GET` (admin: every token; anyone else: their
//! own), `DELETE /api/kiln/v1/tokens/{id}` and `GET /api/kiln/v1/whoami`.

use axum::Json;
use axum::extract::{Path, State};
use kiln_wire::tokens::{TokenCreated, TokenInfo, TokenRequest, WhoAmI};

use super::extract::{Body, Caller, Need, scope};
use super::{ApiError, ApiResult, AppState};
use crate::model::{tokens, users};

/// `POST /api/kiln/v1/tokens` (admin): creates a token and shows its secret once.
#[utoipa::path(post, path = "/api/kiln/v1/tokens", request_body = TokenRequest, responses((status = 200, body = TokenCreated)))]
pub(crate) async fn create(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Admin>,
    Body(request): Body<TokenRequest>,
) -> ApiResult<Json<TokenCreated>> {
    if request.token.scopes.is_empty() {
        return Err(ApiError::unprocessable("a token needs at least one scope"));
    }
    let login = request.login.as_str();
    crate::tokens::check_login(login).map_err(ApiError::unprocessable)?;
    let secret = crate::tokens::generate_secret();
    let mut w = app.db.begin_write().await?;
    let user_id = users::ensure(&mut w.tx, login).await?;
    let id = tokens::create(
        &mut w.tx,
        user_id,
        login,
        &request.token,
        &crate::tokens::hash_secret(&secret),
        &auth.login,
    )
    .await?;
    w.commit().await?;
    Ok(Json(TokenCreated {
        id,
        login: login.to_owned(),
        token: secret,
    }))
}

/// `GET /api/kiln/v1/whoami`: the caller's login and scopes; 401 for a missing, unknown,
/// expired or revoked token. Executors check their callers' tokens here.
#[utoipa::path(get, path = "/api/kiln/v1/whoami", responses((status = 200, body = WhoAmI), (status = 401)))]
pub(crate) async fn whoami(Caller(auth): Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        login: auth.login,
        token_id: auth.token_id,
        scopes: auth.scopes,
    })
}

/// `GET /api/kiln/v1/tokens`: every token for an admin, the caller's own otherwise.
#[utoipa::path(get, path = "/api/kiln/v1/tokens", responses((status = 200, body = [TokenInfo])))]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(auth): Caller,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let whose = (!auth.is_admin()).then_some(auth.user_id);
    Ok(Json(tokens::list(&app.db, whose).await?))
}

/// `DELETE /api/kiln/v1/tokens/{id}`: revokes a token (an admin, or the token's own user).
#[utoipa::path(delete, path = "/api/kiln/v1/tokens/{id}", responses((status = 200), (status = 404)))]
pub(crate) async fn revoke(
    State(app): State<AppState>,
    Caller(auth): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    let owner = tokens::owner(&app.db, id).await?;
    if owner != auth.user_id && !auth.is_admin() {
        return Err(ApiError::forbidden(
            "only an admin or the token's own user can revoke it",
        ));
    }
    let mut w = app.db.begin_write().await?;
    tokens::revoke(&mut w.tx, id, &auth.login).await?;
    w.commit().await?;
    Ok(Json(serde_json::json!({"ok": true})))
}
