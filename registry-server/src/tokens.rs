//! API tokens: high-entropy secrets shown once and stored only as their SHA-256, each with
//! scopes, an optional crate-name pattern, an optional expiry, and revocable.

use std::collections::BTreeSet;

pub use kiln_wire::Scope;
pub use kiln_wire::tokens::NewToken;
use rand::RngCore as _;

use crate::db::{Db, now_ms};
use crate::model;

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

/// Checks a login for a new token: 1 to 64 characters, each a letter or digit (any script) or
/// one of `-_.@+`. Logins are shown in review tables, event logs and signed statements, so no
/// spaces, line breaks or other control characters.
pub fn check_login(login: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_alphanumeric() || "-_.@+".contains(c);
    let chars = login.chars().count();
    if !(1..=64).contains(&chars) || !login.chars().all(allowed) {
        return Err(format!(
            "the login {login:?} is not valid: a login is 1 to 64 letters, digits and `-_.@+`"
        ));
    }
    Ok(())
}

/// The token in an `Authorization` header value: the raw token (as Cargo sends it) or
/// `Bearer TOKEN`.
pub fn token_from_header(value: &str) -> &str {
    value.strip_prefix("Bearer ").unwrap_or(value).trim()
}

/// Looks the secret up and checks that it is live.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Authenticated, AuthError> {
    let stored = model::tokens::by_hash(db, &hash_secret(secret))
        .await
        .map_err(|_| AuthError::Database)?
        .ok_or(AuthError::Invalid)?;
    if stored.revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    if stored.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(AuthError::Expired);
    }
    Ok(Authenticated {
        user_id: stored.user_id,
        login: stored.login,
        token_id: stored.id,
        scopes: stored.scopes,
        crate_pattern: stored.crate_pattern,
    })
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
    fn logins_are_plain_words() {
        for good in [
            "ada",
            "rita.reviewer",
            "dana+ci@example.org",
            "kiln-worker_2",
            "zoë",
        ] {
            assert_eq!(check_login(good), Ok(()), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "ada\nrita",
            "ada rita",
            " ada",
            "ada\t",
            "a/b",
            "a\u{7}",
            &long,
        ] {
            let err = check_login(bad).unwrap_err();
            assert!(err.contains("is not valid"), "{bad:?}: {err}");
        }
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
