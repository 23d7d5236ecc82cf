//! Tokens and who is calling.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::states::Scope;

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// A name for people.
    pub name: String,
    /// What it may do.
    pub scopes: BTreeSet<Scope>,
    /// Limit it to crates matching this pattern (`*` wildcards).
    #[serde(default)]
    pub crate_pattern: Option<String>,
    /// Expire it at this time (Unix milliseconds).
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A token request (admin): a token for `login`, who is created if new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// Whose token it is.
    pub login: String,
    /// The token.
    #[serde(flatten)]
    pub token: NewToken,
}

/// A token just created: its secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenCreated {
    /// Its id.
    pub id: i64,
    /// Whose it is.
    pub login: String,
    /// The secret.
    pub token: String,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Its id.
    pub id: i64,
    /// Whose it is.
    pub login: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: BTreeSet<Scope>,
    /// The crates it is limited to.
    pub crate_pattern: Option<String>,
    /// When it expires.
    pub expires_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// Who a token belongs to and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The user's login.
    pub login: String,
    /// The token's id.
    pub token_id: i64,
    /// The token's scopes (`admin` holds every scope).
    pub scopes: BTreeSet<Scope>,
}
