//! Talking to a kiln server: its URL and token from flags, environment variables, a token file
//! (such as a local data directory's `admin.token`), or the config file
//! (`~/.config/kiln/config.toml`, or the file `KILN_CONFIG` names), in that order.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;

/// Where the server is and who is asking.
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The kiln server [default: the config file's `registry`, else http://127.0.0.1:7878].
    #[arg(long, value_name = "URL", env = "KILN_REGISTRY")]
    pub(crate) registry: Option<String>,
    /// The API token.
    #[arg(long, value_name = "TOKEN", env = "KILN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Read the token from this file (for example DATA/admin.token).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub(crate) token_file: Option<PathBuf>,
}

/// The config file: defaults for the commands that talk to a server.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The kiln server.
    pub(crate) registry: Option<String>,
    /// The API token.
    pub(crate) token: Option<String>,
    /// The executor `kiln run` and `kiln replay` use.
    pub(crate) executor: Option<String>,
}

impl Config {
    /// Where the config file is: `KILN_CONFIG`, else `$XDG_CONFIG_HOME/kiln/config.toml`, else
    /// `~/.config/kiln/config.toml`.
    pub(crate) fn path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("KILN_CONFIG") {
            return Some(PathBuf::from(path));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
        Some(base.join("kiln").join("config.toml"))
    }

    /// The config file, or defaults when there is none; a file that exists but does not parse
    /// is an error.
    pub(crate) fn load() -> Result<Self> {
        let Some(path) = Self::path() else {
            return Ok(Self::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("the config file {}", path.display()))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Where a server is when neither a flag, the environment nor the config file says.
pub(crate) const DEFAULT_REGISTRY: &str = "http://127.0.0.1:7878";

impl Connection {
    /// The server's URL: the flag or `KILN_REGISTRY`, else the config file, else the default.
    pub(crate) fn registry_url(&self) -> Result<String> {
        let url = match &self.registry {
            Some(url) => url.clone(),
            None => Config::load()?
                .registry
                .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned()),
        };
        Ok(url.trim_end_matches('/').to_owned())
    }
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
            (None, None) => Config::load()?.token,
        };
        Ok(Self {
            base: connection.registry_url()?,
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
        body: &impl serde::Serialize,
    ) -> Result<T> {
        self.send(
            self.http.post(format!("{}{path}", self.base)).json(body),
            path,
        )
        .await
    }

    /// DELETEs `path` and parses the JSON answer.
    pub(crate) async fn delete_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T> {
        self.send(self.http.delete(format!("{}{path}", self.base)), path)
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
            let detail = serde_json::from_slice::<kiln_wire::errors::RegistryErrorBody>(&body)
                .ok()
                .and_then(|b| b.detail().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            bail!("{url}: {status}: {detail}");
        }
        Ok(body.to_vec())
    }
}
