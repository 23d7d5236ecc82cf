//! Extractors that run before a handler: the caller's token, checked before the body is read,
//! and JSON bodies whose errors answer in the API's error form.
//!
//! Axum runs extractors in order and only the last may read the body, so a handler that takes
//! [`Need`], [`Caller`] or [`Reader`] before its [`Body`] refuses an unauthorised request
//! without reading (or parsing, or describing the schema of) what it sent.

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState, authenticate};
use crate::tokens::{AuthError, Authenticated, Scope};

/// A scope a route needs, as a type.
pub trait RequiredScope {
    /// The scope.
    const SCOPE: Scope;
}

macro_rules! scopes {
    ($($name:ident),*) => {
        /// The scopes routes need, as types for [`Need`].
        pub mod scope {
            $(
                #[doc = concat!("The `", stringify!($name), "` scope.")]
                #[derive(Debug)]
                pub struct $name;
                impl super::RequiredScope for $name {
                    const SCOPE: crate::tokens::Scope = crate::tokens::Scope::$name;
                }
            )*
        }
    };
}

scopes!(Publish, Yank, Review, Worker, Run, Admin);

/// A caller whose token holds scope `S` (an admin token holds every scope).
#[derive(Debug)]
pub struct Need<S>(pub Authenticated, pub PhantomData<S>);

impl<S: RequiredScope + Send + Sync> FromRequestParts<AppState> for Need<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Caller(auth) = Caller::from_request_parts(parts, app).await?;
        if !auth.has_scope(S::SCOPE) {
            return Err(ApiError::forbidden(format!(
                "this token does not have the `{}` scope",
                S::SCOPE
            )));
        }
        Ok(Need(auth, PhantomData))
    }
}

/// A caller with a valid token, whatever its scopes.
#[derive(Debug)]
pub struct Caller(pub Authenticated);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        authenticate(app, &parts.headers)
            .await?
            .map(Caller)
            .ok_or_else(|| ApiError::from_auth(AuthError::Missing, &app.config.login_url()))
    }
}

/// A reader: anyone, unless the registry requires a token for reads.
#[derive(Debug)]
pub struct Reader(pub Option<Authenticated>);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let auth = authenticate(app, &parts.headers).await?;
        if app.config.auth_required && auth.is_none() {
            return Err(ApiError::from_auth(
                AuthError::Missing,
                &app.config.login_url(),
            ));
        }
        Ok(Reader(auth))
    }
}

/// A JSON body; malformed JSON, or JSON of another shape, is a 400 in the API's error form.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|err| ApiError::bad_request(format!("invalid request body: {err}")))
    }
}

/// A JSON body that may be left out (an empty body reads as `T::default()`).
#[derive(Debug)]
pub struct OptionalBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        if bytes.is_empty() {
            return Ok(OptionalBody(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalBody)
            .map_err(|err| ApiError::bad_request(format!("invalid request body: {err}")))
    }
}

/// The raw body, its rejections (too large, unreadable) in the API's error form.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))
    }
}
