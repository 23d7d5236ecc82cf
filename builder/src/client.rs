//! The registry's worker API, as a client.

use std::time::Duration;

use serde::Deserialize;

/// Why a call to the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry could not be reached.
    #[error("cannot reach the registry at {url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The registry answered with an error.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The registry's message.
        message: String,
    },
}

/// A job, as claimed.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// `audit` or `build`.
    pub kind: String,
    /// What to work on: `version_id`, `crate`, `version`, `checksum`.
    pub payload: serde_json::Value,
}

/// A worker's connection to the registry.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The worker's name, unique among workers.
    pub worker: String,
}

impl Client {
    /// A client for the registry at `base` (`http://host:port`) with a worker token.
    pub fn new(base: &str, token: &str, worker: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            worker: worker.to_owned(),
        }
    }

    /// The registry's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .header("Authorization", &self.token)
            .send()
            .await
            .map_err(|err| ClientError::Unreachable {
                url: url.to_owned(),
                message: err.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["detail"].as_str().map(str::to_owned))
            .unwrap_or(body);
        Err(ClientError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            message,
        })
    }

    async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.get(path)
            .await?
            .json()
            .await
            .map_err(|err| ClientError::Unreachable {
                url,
                message: err.to_string(),
            })
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    /// Claims the next job of `kind`, if any, with a lease of `lease_secs`.
    pub async fn claim(&self, kind: &str, lease_secs: u64) -> Result<Option<Job>, ClientError> {
        let response = self
            .post_json(
                "/api/kiln/v1/jobs/claim",
                &serde_json::json!({"kind": kind, "worker": self.worker, "lease_secs": lease_secs}),
            )
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let url = format!("{}/api/kiln/v1/jobs/claim", self.base);
        response
            .json()
            .await
            .map(Some)
            .map_err(|err| ClientError::Unreachable {
                url,
                message: err.to_string(),
            })
    }

    /// Keeps the lease of job `id` for `lease_secs` more.
    pub async fn heartbeat(&self, id: i64, lease_secs: u64) -> Result<(), ClientError> {
        self.post_json(
            &format!("/api/kiln/v1/jobs/{id}/heartbeat"),
            &serde_json::json!({"worker": self.worker, "lease_secs": lease_secs}),
        )
        .await
        .map(drop)
    }

    /// A blob by digest.
    pub async fn blob(&self, digest: &str) -> Result<Vec<u8>, ClientError> {
        let path = format!("/api/kiln/v1/blobs/{digest}");
        let response = self.get(&path).await?;
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|err| ClientError::Unreachable {
                url: path,
                message: err.to_string(),
            })
    }

    /// Stores a blob; returns its digest.
    pub async fn upload(&self, bytes: Vec<u8>) -> Result<String, ClientError> {
        let url = format!("{}/api/kiln/v1/blobs", self.base);
        let response = self
            .send(
                self.http
                    .post(&url)
                    .header("Content-Type", "application/octet-stream")
                    .body(bytes),
                &url,
            )
            .await?;
        let value: serde_json::Value =
            response
                .json()
                .await
                .map_err(|err| ClientError::Unreachable {
                    url: url.clone(),
                    message: err.to_string(),
                })?;
        Ok(value["digest"].as_str().unwrap_or_default().to_owned())
    }

    /// A submission's details (`GET /api/kiln/v1/submissions/NAME/VERSION`).
    pub async fn submission(
        &self,
        name: &str,
        version: &str,
    ) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"))
            .await
    }

    /// The registry's curated index as this worker reaches it, with the public URL its users
    /// name it by (from its `config.json`; packaged manifests carry it in `registry-index`).
    pub async fn curated_index(&self) -> Result<crate::curated::CuratedIndex, ClientError> {
        let config = self.get_json("/index/config.json").await?;
        let api = config["api"]
            .as_str()
            .ok_or_else(|| ClientError::Unreachable {
                url: format!("{}/index/config.json", self.base),
                message: "config.json has no `api`".into(),
            })?;
        Ok(crate::curated::CuratedIndex::new(
            format!("sparse+{}/index/", self.base),
            Some(format!("sparse+{}/index/", api.trim_end_matches('/'))),
        ))
    }

    /// The names of approved crates.
    pub async fn approved_names(&self) -> Result<Vec<String>, ClientError> {
        let value = self.get_json("/api/kiln/v1/approved-names").await?;
        Ok(value["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect())
    }

    /// Reports job `id` done with `result` (`verdict`, `report`, `artifacts`).
    pub async fn complete(
        &self,
        id: i64,
        mut result: serde_json::Value,
    ) -> Result<(), ClientError> {
        result["worker"] = self.worker.clone().into();
        self.post_json(&format!("/api/kiln/v1/jobs/{id}/complete"), &result)
            .await
            .map(drop)
    }

    /// Reports job `id` failed, or waiting.
    pub async fn fail(&self, id: i64, error: &crate::worker::JobError) -> Result<(), ClientError> {
        self.post_json(
            &format!("/api/kiln/v1/jobs/{id}/fail"),
            &serde_json::json!({"worker": self.worker, "error": error.message, "terminal": error.terminal, "waiting": error.waiting}),
        )
        .await
        .map(drop)
    }
}
