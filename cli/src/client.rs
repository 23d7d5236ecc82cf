//! Talking to a kiln server: its URL and token from flags, environment variables, or the
//! admin token file of a local data directory.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;

/// Where the server is and who is asking.
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The kiln server.
    #[arg(
        long,
        value_name = "URL",
        env = "KILN_REGISTRY",
        default_value = "http://127.0.0.1:7878"
    )]
    pub(crate) registry: String,
    /// The API token.
    #[arg(long, value_name = "TOKEN", env = "KILN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Read the token from this file (for example DATA/admin.token).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub(crate) token_file: Option<PathBuf>,
}

/// A client for one server.
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(connection: &Connection) -> Result<Self> {
        let token = match (&connection.token, &connection.token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        Ok(Self {
            base: connection.registry.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        })
    }

    /// The token, if any.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// GETs `path` and parses the JSON answer, turning kiln's error form into one line.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)), path)
            .await
    }

    /// POSTs `body` as JSON to `path` and parses the JSON answer.
    pub(crate) async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        self.send(
            self.http.post(format!("{}{path}", self.base)).json(body),
            path,
        )
        .await
    }

    /// GETs `path` and returns the body's bytes.
    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        self.send_raw(self.http.get(format!("{}{path}", self.base)), path)
            .await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let body = self.send_raw(request, path).await?;
        serde_json::from_slice(&body)
            .with_context(|| format!("{url}: the answer is not the JSON expected"))
    }

    async fn send_raw(&self, mut request: reqwest::RequestBuilder, path: &str) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        if let Some(token) = &self.token {
            request = request.header(reqwest::header::AUTHORIZATION, token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the kiln server at {}", self.base))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .context("reading the server's answer")?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errors"][0]["detail"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            bail!("{url}: {status}: {detail}");
        }
        Ok(body.to_vec())
    }
}
