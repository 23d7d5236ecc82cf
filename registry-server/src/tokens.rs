//! API tokens: high-entropy secrets shown once and stored only as their SHA-256, each with
//! scopes, an optional crate-name pattern, an optional expiry, and revocable.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use crate::db::{Db, now_ms};

/// What a token may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Publish new crates and versions of crates the user owns.
    Publish,
    /// Yank and unyank versions of crates the user owns.
    Yank,
    /// Approve and reject submissions.
    Review,
    /// Claim audit and build jobs and record their results (builder workers).
    Worker,
    /// Run notebooks on an executor.
    Run,
    /// Everything, including tokens, owners of any crate and revocation.
    Admin,
}

impl Scope {
    /// The scope's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Publish => "publish",
            Scope::Yank => "yank",
            Scope::Review => "review",
            Scope::Worker => "worker",
            Scope::Run => "run",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "publish" => Ok(Scope::Publish),
            "yank" => Ok(Scope::Yank),
            "review" => Ok(Scope::Review),
            "worker" => Ok(Scope::Worker),
            "run" => Ok(Scope::Run),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope `{other}` (publish, yank, review, worker, run, admin)"
            )),
        }
    }
}

/// The prefix of every kiln token, so that leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "kiln_";

/// A new random token secret: the prefix and 32 random bytes in hex.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// How a secret is stored: its SHA-256, in hex.
pub fn hash_secret(secret: &str) -> String {
    kiln_policy::Digest::of(secret.as_bytes()).hex()
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was sent.
    #[error("this request needs an API token (send it in the Authorization header)")]
    Missing,
    /// The token is unknown.
    #[error("the API token is not valid")]
    Invalid,
    /// The token has expired.
    #[error("the API token has expired")]
    Expired,
    /// The token was revoked.
    #[error("the API token was revoked")]
    Revoked,
    /// The database failed.
    #[error("could not check the token")]
    Database,
}

/// The user and token behind an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user's id.
    pub user_id: i64,
    /// The user's login.
    pub login: String,
    /// The token's id.
    pub token_id: i64,
    /// The token's scopes.
    pub scopes: BTreeSet<Scope>,
    /// The crates the token is limited to (`*` wildcards), if any.
    pub crate_pattern: Option<String>,
}

impl Authenticated {
    /// Whether the token holds `scope` (admin holds every scope).
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether the token may act on crate `name`.
    pub fn covers_crate(&self, name: &str) -> bool {
        self.crate_pattern
            .as_deref()
            .is_none_or(|pattern| glob_match(pattern, &crate::names::canonical(name)))
    }

    /// Whether the token is an admin token.
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters. Both sides are
/// compared in canonical crate-name form.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = crate::names::canonical(pattern);
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The token in an `Authorization` header value: the raw token (as Cargo sends it) or
/// `Bearer TOKEN`.
pub fn token_from_header(value: &str) -> &str {
    value.strip_prefix("Bearer ").unwrap_or(value).trim()
}

/// Looks the secret up and checks that it is live.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Authenticated, AuthError> {
    let row = sqlx::query(
        "SELECT t.id, t.user_id, u.login, t.scopes, t.crate_pattern, t.expires_at, t.revoked_at \
         FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
    )
    .bind(hash_secret(secret))
    .fetch_optional(db.pool())
    .await
    .map_err(|_| AuthError::Database)?
    .ok_or(AuthError::Invalid)?;
    let revoked_at: Option<i64> = row.get("revoked_at");
    if revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    let expires_at: Option<i64> = row.get("expires_at");
    if expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(AuthError::Expired);
    }
    let scopes: String = row.get("scopes");
    Ok(Authenticated {
        user_id: row.get("user_id"),
        login: row.get("login"),
        token_id: row.get("id"),
        scopes: scopes.split(',').filter_map(|s| s.parse().ok()).collect(),
        crate_pattern: row.get("crate_pattern"),
    })
}

/// A token to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
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

/// Creates a token for `user_id` inside `tx` and returns its id and its secret, which is not
/// stored and cannot be shown again.
pub async fn create(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: i64,
    token: &NewToken,
) -> Result<(i64, String), sqlx::Error> {
    let secret = generate_secret();
    let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tokens (user_id, name, hash, scopes, crate_pattern, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(user_id)
    .bind(&token.name)
    .bind(hash_secret(&secret))
    .bind(scopes.join(","))
    .bind(&token.crate_pattern)
    .bind(token.expires_at)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok((id, secret))
}

/// Finds or creates the user `login` inside `tx`.
pub async fn ensure_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    login: &str,
) -> Result<i64, sqlx::Error> {
    if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE login = $1")
        .bind(login)
        .fetch_optional(&mut **tx)
        .await?
    {
        return Ok(id);
    }
    sqlx::query_scalar("INSERT INTO users (login, created_at) VALUES ($1, $2) RETURNING id")
        .bind(login)
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
    }

    #[test]
    fn patterns_match_canonical_names() {
        assert!(glob_match("kernel-*", "kernel_csv_stats"));
        assert!(glob_match("*-stats", "kernel_csv_stats"));
        assert!(glob_match("k*csv*s", "kernel_csv_stats"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("kernel-*", "serde"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("a*b*c", "acb"));
    }

    #[test]
    fn admin_holds_every_scope() {
        let auth = Authenticated {
            user_id: 1,
            login: "admin".into(),
            token_id: 1,
            scopes: [Scope::Admin].into(),
            crate_pattern: None,
        };
        assert!(auth.has_scope(Scope::Review));
        let publisher = Authenticated {
            scopes: [Scope::Publish].into(),
            crate_pattern: Some("kernel-*".into()),
            ..auth
        };
        assert!(!publisher.has_scope(Scope::Yank));
        assert!(publisher.covers_crate("Kernel_Foo"));
        assert!(!publisher.covers_crate("serde"));
    }
}
