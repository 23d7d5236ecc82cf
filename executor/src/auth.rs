//! Who may call the executor: a registry token with the `run` scope (or `admin`), checked with
//! the registry's `GET /api/kiln/v1/whoami` and remembered for [`TokenCheck::TTL`] (a refusal
//! for a shorter time), so that a revoked token stops working within that time and a busy
//! executor does not ask the registry on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kiln_policy::Digest;

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token.
    #[error("this executor needs a token (Authorization header) with the `run` scope")]
    Missing,
    /// The registry does not accept the token.
    #[error("the registry refused the token: {0}")]
    Refused(String),
    /// The token lacks the scope.
    #[error("the token of `{0}` does not have the `run` scope")]
    Scope(String),
    /// The registry could not be asked.
    #[error("cannot check the token with the registry: {0}")]
    Registry(String),
}

/// A remembered answer: when it was given, and the login or the refusal.
type Answer = (Instant, Result<String, AuthError>);

/// Checks callers' tokens against the registry.
#[derive(Debug)]
pub struct TokenCheck {
    http: reqwest::Client,
    whoami: String,
    seen: Mutex<HashMap<Digest, Answer>>,
}

#[derive(serde::Deserialize)]
struct WhoAmI {
    login: String,
    scopes: Vec<String>,
}

impl TokenCheck {
    /// How long an accepted token is remembered.
    pub const TTL: Duration = Duration::from_secs(30);
    /// How long a refused token is remembered.
    pub const REFUSED_TTL: Duration = Duration::from_secs(5);

    /// Checks tokens with the registry at `registry`.
    pub fn new(registry: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_idle_timeout(kiln_http::CLIENT_IDLE_TIMEOUT)
                .build()
                .unwrap_or_default(),
            whoami: format!("{}/api/kiln/v1/whoami", registry.trim_end_matches('/')),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The login behind `token` (an `Authorization` header value), if it may run notebooks.
    pub async fn check(&self, token: Option<&str>) -> Result<String, AuthError> {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or(AuthError::Missing)?;
        let key = Digest::of(token.as_bytes());
        if let Some((at, answer)) = self.seen.lock().expect("token cache").get(&key) {
            let ttl = if answer.is_ok() {
                Self::TTL
            } else {
                Self::REFUSED_TTL
            };
            if at.elapsed() < ttl {
                return answer.clone();
            }
        }
        let answer = self.ask(token).await;
        if matches!(answer, Err(AuthError::Registry(_))) {
            return answer;
        }
        let mut seen = self.seen.lock().expect("token cache");
        if seen.len() > 10_000 {
            seen.retain(|_, (at, _)| at.elapsed() < Self::TTL);
        }
        seen.insert(key, (Instant::now(), answer.clone()));
        answer
    }

    async fn ask(&self, token: &str) -> Result<String, AuthError> {
        let response = self
            .http
            .get(&self.whoami)
            .header("Authorization", token)
            .send()
            .await
            .map_err(|err| AuthError::Registry(err.to_string()))?;
        let status = response.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let detail = body["errors"][0]["detail"]
                .as_str()
                .unwrap_or("unknown token")
                .to_owned();
            return Err(AuthError::Refused(detail));
        }
        if !status.is_success() {
            return Err(AuthError::Registry(format!("HTTP {status}")));
        }
        let who: WhoAmI = response
            .json()
            .await
            .map_err(|err| AuthError::Registry(err.to_string()))?;
        if who.scopes.iter().any(|s| s == "run" || s == "admin") {
            Ok(who.login)
        } else {
            Err(AuthError::Scope(who.login))
        }
    }
}
