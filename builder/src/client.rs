//! The registry's worker API ([`kiln_wire::worker`]), as a client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A worker's connection to the registry: one base URL, or several (replicas behind their own
/// addresses) that it fails over between when one cannot be reached.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    /// The index in `bases` of the replica in use.
    current: Arc<AtomicUsize>,
    token: String,
    /// The worker's name, unique among workers.
    pub worker: String,
}

impl Client {
    /// A client for the registry at `base`, with a worker token, as worker `worker`.
    pub fn new(base: &str, token: &str, worker: &str) -> Self {
        Self::with_replicas(&[base.to_owned()], token, worker)
    }

    /// A client for the registry at any of `bases` (its replicas), trying them in order and
    /// staying with the one that answers.
    ///
    /// # Panics
    ///
    /// When `bases` is empty.
    pub fn with_replicas(bases: &[String], token: &str, worker: &str) -> Self {
        assert!(!bases.is_empty(), "a registry URL at least");
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .pool_idle_timeout(kiln_http::CLIENT_IDLE_TIMEOUT)
                .build()
                .expect("an HTTP client"),
            bases: Arc::new(
                bases
                    .iter()
                    .map(|b| b.trim_end_matches('/').to_owned())
                    .collect(),
            ),
            current: Arc::new(AtomicUsize::new(0)),
            token: token.to_owned(),
            worker: worker.to_owned(),
        }
    }

    /// The base URL of the replica in use.
    pub fn base(&self) -> &str {
        &self.bases[self.current.load(Ordering::Relaxed) % self.bases.len()]
    }

    /// Sends the request `build` makes for `path`'s URL; when the replica in use cannot be
    /// reached, the next one, until each was tried once. An answer (even an error status) ends
    /// the search: only a replica that does not answer is passed over.
    async fn send_to(
        &self,
        path: &str,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, String), ClientError> {
        let first = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for offset in 0..self.bases.len() {
            let index = (first + offset) % self.bases.len();
            let url = format!("{}{path}", self.bases[index]);
            match self.send(build(&url), &url).await {
                Err(err @ ClientError::Unreachable { .. }) => {
                    if self.bases.len() > 1 {
                        tracing::warn!(error = %err, "trying the registry's next replica");
                    }
                    last = Some(err);
                }
                answered => {
                    self.current.store(index, Ordering::Relaxed);
                    return answered.map(|response| (response, url));
                }
            }
        }
        Err(last.expect("at least one replica was tried"))
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
        let (response, url) = self
            .send_to(path, |url| self.http.post(url).json(body))
            .await?;
        Self::read(response, &url).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (response, url) = self.send_to(path, |url| self.http.get(url)).await?;
        Self::read(response, &url).await
    }

    /// The next ready job of `kind`, with a lease of `lease_secs`.
    pub async fn claim(&self, kind: JobKind, lease_secs: u64) -> Result<Option<Job>, ClientError> {
        let request = ClaimRequest {
            kind,
            worker: self.worker.clone(),
            lease_secs: Some(lease_secs),
        };
        let (response, url) = self
            .send_to("/api/kiln/v1/jobs/claim", |url| {
                self.http.post(url).json(&request)
            })
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Self::read(response, &url).await.map(Some)
    }

    /// The next code cell to build, with a lease of `lease_secs`.
    pub async fn claim_code(
        &self,
        lease_secs: u64,
    ) -> Result<Option<kiln_wire::code_builds::CodeJob>, ClientError> {
        let request = kiln_wire::code_builds::CodeClaim {
            worker: self.worker.clone(),
            lease_secs,
        };
        let (response, url) = self
            .send_to("/api/kiln/v1/code-builds/claim", |url| {
                self.http.post(url).json(&request)
            })
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Self::read(response, &url).await.map(Some)
    }

    /// Reports on code build `key`, which this worker holds.
    pub async fn report_code(
        &self,
        key: &Digest,
        report: &kiln_wire::code_builds::CodeReport,
    ) -> Result<(), ClientError> {
        self.post::<_, serde_json::Value>(&format!("/api/kiln/v1/code-builds/{key}/report"), report)
            .await
            .map(drop)
    }

    /// This worker's name.
    pub fn worker(&self) -> &str {
        &self.worker
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
        let (response, url) = self
            .send_to(&format!("/api/kiln/v1/blobs/{digest}"), |url| {
                self.http.get(url)
            })
            .await?;
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
        let bytes = bytes::Bytes::from(bytes);
        let (response, url) = self
            .send_to("/api/kiln/v1/blobs", |url| {
                self.http
                    .post(url)
                    .header("Content-Type", "application/octet-stream")
                    .body(bytes.clone())
            })
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
            format!("sparse+{}/index/", self.base()),
            Some(format!(
                "sparse+{}/index/",
                config.api.trim_end_matches('/')
            )),
        );
        Ok(match closure {
            Some(token) => curated.with_closure(format!(
                "sparse+{}/api/kiln/v1/closures/{token}/index/",
                self.base()
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
