//! The registry's worker API ([`kiln_wire::worker`]), as a client.

use std::time::Duration;

use kiln_policy::Digest;
use kiln_wire::FeatureSet;
use kiln_wire::JobKind;
use kiln_wire::errors::RegistryErrorBody;
pub use kiln_wire::worker::Job;
use kiln_wire::worker::{
    ApprovedNames, ClaimRequest, CompleteRequest, Completion, Curated, CurationLookup, FailKind,
    FailRequest, HeartbeatRequest, JobOutcome, PackageRef, Uploaded,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call to the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry could not be reached, or answered something unreadable.
    #[error("cannot reach the registry at {url}: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The registry refused.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL called.
        url: String,
        /// The status.
        status: u16,
        /// The registry's detail.
        message: String,
    },
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
    /// A client for the registry at `base`, with a worker token, as worker `worker`.
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

    /// The registry's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
        let message = serde_json::from_str::<RegistryErrorBody>(&body)
            .ok()
            .and_then(|b| b.detail().map(str::to_owned))
            .unwrap_or(body);
        Err(ClientError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            message,
        })
    }

    async fn read<T: DeserializeOwned>(
        response: reqwest::Response,
        url: &str,
    ) -> Result<T, ClientError> {
        response
            .json()
            .await
            .map_err(|err| ClientError::Unreachable {
                url: url.to_owned(),
                message: err.to_string(),
            })
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let response = self.send(self.http.post(&url).json(body), &url).await?;
        Self::read(response, &url).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let response = self.send(self.http.get(&url), &url).await?;
        Self::read(response, &url).await
    }

    /// The next ready job of `kind`, with a lease of `lease_secs`.
    pub async fn claim(&self, kind: JobKind, lease_secs: u64) -> Result<Option<Job>, ClientError> {
        let url = self.url("/api/kiln/v1/jobs/claim");
        let request = ClaimRequest {
            kind,
            worker: self.worker.clone(),
            lease_secs: Some(lease_secs),
        };
        let response = self.send(self.http.post(&url).json(&request), &url).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Self::read(response, &url).await.map(Some)
    }

    /// Extends the lease of job `id`.
    pub async fn heartbeat(&self, id: i64, lease_secs: u64) -> Result<(), ClientError> {
        let request = HeartbeatRequest {
            worker: self.worker.clone(),
            lease_secs: Some(lease_secs),
        };
        self.post::<_, serde_json::Value>(&format!("/api/kiln/v1/jobs/{id}/heartbeat"), &request)
            .await
            .map(drop)
    }

    /// The stored blob with `digest`.
    pub async fn blob(&self, digest: &Digest) -> Result<Vec<u8>, ClientError> {
        let url = self.url(&format!("/api/kiln/v1/blobs/{digest}"));
        let response = self.send(self.http.get(&url), &url).await?;
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|err| ClientError::Unreachable {
                url,
                message: err.to_string(),
            })
    }

    /// Uploads `bytes` as a blob; returns its digest.
    pub async fn upload(&self, bytes: Vec<u8>) -> Result<Digest, ClientError> {
        let url = self.url("/api/kiln/v1/blobs");
        let response = self
            .send(
                self.http
                    .post(&url)
                    .header("Content-Type", "application/octet-stream")
                    .body(bytes),
                &url,
            )
            .await?;
        let uploaded: Uploaded = Self::read(response, &url).await?;
        Ok(uploaded.digest)
    }

    /// The curated index as this worker reaches it, and its public URL.
    pub async fn curated_index(
        &self,
        closure: Option<&str>,
    ) -> Result<crate::curated::CuratedIndex, ClientError> {
        #[derive(serde::Deserialize)]
        struct Config {
            api: String,
        }
        let config: Config = self.get("/index/config.json").await?;
        let curated = crate::curated::CuratedIndex::new(
            format!("sparse+{}/index/", self.base),
            Some(format!(
                "sparse+{}/index/",
                config.api.trim_end_matches('/')
            )),
        );
        Ok(match closure {
            Some(token) => curated.with_closure(format!(
                "sparse+{}/api/kiln/v1/closures/{token}/index/",
                self.base
            )),
            None => curated,
        })
    }

    /// The features curated for each of `packages` (`NAME`, `VERSION`), in order, as a worker
    /// of `closure` may count on.
    pub async fn curated_features(
        &self,
        closure: Option<&str>,
        packages: Vec<(String, String)>,
    ) -> Result<Vec<Option<FeatureSet>>, ClientError> {
        let lookup = CurationLookup {
            closure: closure.map(str::to_owned),
            packages: packages
                .into_iter()
                .map(|(krate, version)| PackageRef { krate, version })
                .collect(),
        };
        let curated: Curated = self.post("/api/kiln/v1/curations/lookup", &lookup).await?;
        Ok(curated.features)
    }

    /// The names of crates with an approved version.
    pub async fn approved_names(&self) -> Result<Vec<String>, ClientError> {
        let names: ApprovedNames = self.get("/api/kiln/v1/approved-names").await?;
        Ok(names.names)
    }

    /// Reports job `id` done with what it produced.
    pub async fn complete(
        &self,
        id: i64,
        completion: Completion,
    ) -> Result<JobOutcome, ClientError> {
        let request = CompleteRequest {
            worker: self.worker.clone(),
            completion,
        };
        self.post(&format!("/api/kiln/v1/jobs/{id}/complete"), &request)
            .await
    }

    /// Reports job `id` failed (`kind` says what should become of it), or waiting.
    pub async fn fail(
        &self,
        id: i64,
        error: &str,
        kind: FailKind,
    ) -> Result<JobOutcome, ClientError> {
        let request = FailRequest {
            worker: self.worker.clone(),
            error: error.to_owned(),
            kind,
        };
        self.post(&format!("/api/kiln/v1/jobs/{id}/fail"), &request)
            .await
    }
}
