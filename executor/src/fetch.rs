//! Fetching a kernel's artifacts from the registry into a local content-addressed cache: the
//! manifest, the modules and every signed statement (provenance, review, audit), each stored
//! under its SHA-256 and checked against it, so that a cached blob is exactly what was fetched
//! and a tampered one is fetched again. The revocation list is fetched fresh every time.

use std::path::PathBuf;

use kiln_policy::Digest;
use kiln_policy::manifest::ArtifactManifest;
use kiln_policy::preflight::Pins;
use kiln_wire::code_builds::{CodeArtifacts, CodeBuildRequest, CodeBuildStatus};

/// Why an artifact could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The registry refused it as revoked (451).
    #[error("revoked: {0}")]
    Revoked(String),
    /// The registry could not be reached or answered with an error.
    #[error("{0}")]
    Registry(String),
    /// The registry refused the request as it is (422): what it said.
    #[error("{0}")]
    Refused(String),
    /// What arrived is not what was asked for.
    #[error("{0}")]
    Invalid(String),
}

/// A kernel's artifacts as fetched.
#[derive(Debug, Clone)]
pub struct KernelArtifacts {
    /// The manifest, parsed.
    pub manifest: ArtifactManifest,
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The `.wasm`.
    pub wasm: Vec<u8>,
    /// The `.cwasm`, when there is one.
    pub cwasm: Option<CheckedBlob>,
    /// Signed statements (bundles) by digest: provenance, review, audit.
    pub statements: Vec<(Digest, Vec<u8>)>,
    /// What the registry says of the version now, when it is not approved: its state and
    /// why (for example `rejected: not for this platform`). `None` when it is approved.
    pub not_approved: Option<String>,
}

/// Bytes fetched by digest, kept with the digest they were checked against. Only the fetcher
/// makes one, after hashing what arrived (or what its cache held), so holding one means the
/// bytes hash to [`CheckedBlob::digest`]: a `.cwasm` is not hashed a second time to be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBlob {
    bytes: Vec<u8>,
    digest: Digest,
}

impl CheckedBlob {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Their SHA-256.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

/// What the registry lists for one version: its manifest's digest, its signed statements by
/// kind, and whether it is approved now. Nothing in it is trusted: the preflight checks every
/// digest and signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct KernelListing {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// The artifact manifest's digest.
    #[schema(value_type = String)]
    pub manifest: Digest,
    /// The signed statements (provenance, review, audit) as `(kind, digest)`.
    #[schema(value_type = Vec<Object>)]
    pub statements: Vec<ListedStatement>,
    /// The registry's state and reason when the version is not approved now.
    pub not_approved: Option<String>,
}

/// One signed statement the registry lists for a version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedStatement {
    /// `provenance`, `review` or `audit`.
    pub kind: String,
    /// The bundle's digest.
    pub digest: Digest,
}

/// A registry client with a content-addressed cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    cache: PathBuf,
}

impl Fetcher {
    /// A fetcher for the registry at `base`, caching in `cache`.
    pub fn new(base: &str, token: Option<String>, cache: PathBuf) -> Self {
        Self {
            http: reqwest::Client::builder()
                .pool_idle_timeout(kiln_http::CLIENT_IDLE_TIMEOUT)
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
            token,
            cache,
        }
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, FetchError> {
        self.send(path, None).await
    }

    /// `GET path`, or `POST path` with a JSON `body`.
    async fn send(&self, path: &str, body: Option<Vec<u8>>) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}{path}", self.base);
        let mut request = match body {
            Some(body) => self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body),
            None => self.http.get(&url),
        };
        if let Some(token) = &self.token {
            request = request.header("Authorization", token);
        }
        let response = request.send().await.map_err(|err| {
            FetchError::Registry(format!("cannot reach the registry at {}: {err}", self.base))
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| FetchError::Registry(format!("{url}: {err}")))?;
        let detail = || {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errors"][0]["detail"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect())
        };
        match status.as_u16() {
            // Without a copy when the body arrived as one buffer.
            200..=299 => Ok(Vec::from(body)),
            451 => Err(FetchError::Revoked(detail())),
            422 => Err(FetchError::Refused(detail())),
            code => Err(FetchError::Registry(format!(
                "{url}: HTTP {code}: {}",
                detail()
            ))),
        }
    }

    /// [`Fetcher::blob`], kept with its digest.
    pub async fn checked_blob(&self, digest: &Digest) -> Result<CheckedBlob, FetchError> {
        Ok(CheckedBlob {
            bytes: self.blob(digest).await?,
            digest: *digest,
        })
    }

    /// The blob `digest`, from the cache or the registry (then cached).
    pub async fn blob(&self, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        let path = self.cache.join("sha256").join(digest.hex());
        if let Ok(bytes) = std::fs::read(&path)
            && Digest::of(&bytes) == *digest
        {
            return Ok(bytes);
        }
        let bytes = self
            .get(&format!("/api/kiln/v1/artifacts/{digest}"))
            .await?;
        if Digest::of(&bytes) != *digest {
            return Err(FetchError::Invalid(format!(
                "the registry sent bytes that are not {digest}"
            )));
        }
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let staging = path.with_extension("partial");
        if std::fs::write(&staging, &bytes).is_ok() {
            let _ = std::fs::rename(&staging, &path);
        }
        Ok(bytes)
    }

    /// What the registry lists for `krate@version` now.
    pub async fn listing(&self, krate: &str, version: &str) -> Result<KernelListing, FetchError> {
        let detail = self
            .get(&format!("/api/kiln/v1/submissions/{krate}/{version}"))
            .await?;
        let detail: serde_json::Value = serde_json::from_slice(&detail)
            .map_err(|err| FetchError::Invalid(format!("{krate}@{version}: {err}")))?;
        let mut by_kind: Vec<(String, Digest)> = Vec::new();
        for artifact in detail["artifacts"].as_array().into_iter().flatten() {
            let (Some(kind), Some(digest)) =
                (artifact["kind"].as_str(), artifact["digest"].as_str())
            else {
                continue;
            };
            let digest: Digest = digest
                .parse()
                .map_err(|err| FetchError::Invalid(format!("{krate}@{version}: {err}")))?;
            by_kind.push((kind.to_owned(), digest));
        }
        // The registry's current word: a version is usable only while approved for some
        // features (an approved version whose features are being extended stays usable).
        let not_approved = detail["approved_features"].is_null().then(|| {
            let state = detail["state"].as_str().unwrap_or("in an unknown state");
            match detail["state_reason"].as_str() {
                Some(reason) => format!("{state}: {reason}"),
                None => state.to_owned(),
            }
        });
        let find = |kind: &str| by_kind.iter().find(|(k, _)| k == kind).map(|(_, d)| *d);
        let manifest = find("manifest").ok_or_else(|| {
            FetchError::Invalid(format!(
                "{krate}@{version} has no built module (is it a kernel, and built?)"
            ))
        })?;
        let statements = by_kind
            .iter()
            .filter(|(kind, _)| matches!(kind.as_str(), "provenance" | "review" | "audit"))
            .map(|(kind, digest)| ListedStatement {
                kind: kind.clone(),
                digest: *digest,
            })
            .collect();
        Ok(KernelListing {
            krate: krate.to_owned(),
            version: version.to_owned(),
            manifest,
            statements,
            not_approved,
        })
    }

    /// The artifacts of `krate@version` as the registry lists them. The list itself comes from
    /// the registry; every blob is checked against its digest, and the preflight decides whether
    /// any of it can be trusted.
    ///
    /// `pinned` are the modules a notebook pins, when it does: they are fetched at once, beside
    /// the listing and the manifest instead of after them, and used only where the manifest
    /// names the same digests (a pin that is wrong costs a request, and the preflight refuses the
    /// cell for it).
    pub async fn kernel(
        &self,
        krate: &str,
        version: &str,
        pinned: Option<&Pins>,
    ) -> Result<KernelArtifacts, FetchError> {
        let listed = async {
            let listing = self.listing(krate, version).await?;
            // The manifest and the statements at once: a first run waits for the slowest.
            let manifest = async {
                let bytes = self.blob(&listing.manifest).await?;
                serde_json::from_slice::<ArtifactManifest>(&bytes).map_err(|err| {
                    FetchError::Invalid(format!("{krate}@{version}: the manifest: {err}"))
                })
            };
            let statements =
                futures::future::try_join_all(listing.statements.iter().map(|listed| async move {
                    Ok::<_, FetchError>((listed.digest, self.blob(&listed.digest).await?))
                }));
            let (manifest, statements) = futures::future::try_join(manifest, statements).await?;
            Ok::<_, FetchError>((listing, manifest, statements))
        };
        let prefetched = async {
            match pinned {
                Some(pins) => {
                    let cwasm = async {
                        match &pins.cwasm {
                            Some(digest) => Some(self.checked_blob(digest).await),
                            None => None,
                        }
                    };
                    let (wasm, cwasm) = futures::future::join(self.blob(&pins.wasm), cwasm).await;
                    (Some((pins.wasm, wasm)), cwasm.zip(pins.cwasm))
                }
                None => (None, None),
            }
        };
        let (listed, (pinned_wasm, pinned_cwasm)) = futures::future::join(listed, prefetched).await;
        let (listing, manifest, statements) = listed?;
        // What was fetched for the pins, when it is what the manifest names; else fetched now.
        let wasm = async {
            match pinned_wasm {
                Some((digest, Ok(bytes))) if digest == manifest.wasm => Ok(bytes),
                _ => self.blob(&manifest.wasm).await,
            }
        };
        let cwasm = async {
            match (manifest.cwasm, pinned_cwasm) {
                (None, _) => Ok(None),
                (Some(digest), Some((Ok(blob), pinned))) if pinned == digest => Ok(Some(blob)),
                (Some(digest), _) => self.checked_blob(&digest).await.map(Some),
            }
        };
        let (wasm, cwasm) = futures::future::try_join(wasm, cwasm).await?;
        let manifest_digest = listing.manifest;
        Ok(KernelArtifacts {
            manifest,
            manifest_digest,
            wasm,
            cwasm,
            statements,
            not_approved: listing.not_approved,
        })
    }

    /// Asks the registry for the build of a code cell: its status (made, failed, under way, or
    /// queued now).
    pub async fn request_code_build(
        &self,
        request: &CodeBuildRequest,
    ) -> Result<CodeBuildStatus, FetchError> {
        let body = serde_json::to_vec(request).expect("a request serialises");
        let answer = self.send("/api/kiln/v1/code-builds", Some(body)).await?;
        serde_json::from_slice(&answer)
            .map_err(|err| FetchError::Invalid(format!("a code build's status: {err}")))
    }

    /// Where the code build `key` is now.
    pub async fn code_build(&self, key: &Digest) -> Result<CodeBuildStatus, FetchError> {
        let answer = self.get(&format!("/api/kiln/v1/code-builds/{key}")).await?;
        serde_json::from_slice(&answer)
            .map_err(|err| FetchError::Invalid(format!("a code build's status: {err}")))
    }

    /// The artifacts of a signed code build, each checked against its digest.
    pub async fn code_artifacts(
        &self,
        artifacts: &CodeArtifacts,
    ) -> Result<KernelArtifacts, FetchError> {
        let manifest_bytes = self.blob(&artifacts.manifest).await?;
        let manifest: ArtifactManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|err| FetchError::Invalid(format!("a code build's manifest: {err}")))?;
        Ok(KernelArtifacts {
            wasm: self.blob(&manifest.wasm).await?,
            cwasm: match manifest.cwasm {
                Some(digest) => Some(self.checked_blob(&digest).await?),
                None => None,
            },
            manifest,
            manifest_digest: artifacts.manifest,
            statements: vec![
                (
                    artifacts.provenance,
                    self.blob(&artifacts.provenance).await?,
                ),
                (artifacts.audit, self.blob(&artifacts.audit).await?),
            ],
            not_approved: None,
        })
    }

    /// The registry's current revocation list (a bundle; verify it with
    /// `RevocationList::verify`).
    pub async fn revocations(&self) -> Result<Vec<u8>, FetchError> {
        self.get("/api/kiln/v1/revocations").await
    }

    /// The registry's kernel catalogue (JSON), as it answered it.
    pub async fn catalogue(&self) -> Result<Vec<u8>, FetchError> {
        self.get("/api/kiln/v1/catalogue").await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;

    /// A loopback registry holding one kernel, recording every blob asked for. When
    /// `listing_waits_for` is set, it answers the listing only once that blob has been asked
    /// for: a fetcher that asked for it only after the listing gets an error.
    struct Registry {
        blobs: BTreeMap<String, Vec<u8>>,
        listing: serde_json::Value,
        listing_waits_for: Option<Digest>,
        asked: Mutex<Vec<String>>,
    }

    async fn answer_listing(State(registry): State<Arc<Registry>>) -> (StatusCode, String) {
        if let Some(digest) = &registry.listing_waits_for {
            let wanted = digest.to_string();
            for _ in 0..2500 {
                if registry.asked.lock().unwrap().contains(&wanted) {
                    return (StatusCode::OK, registry.listing.to_string());
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the pinned module was not asked for while the listing was".into(),
            );
        }
        (StatusCode::OK, registry.listing.to_string())
    }

    async fn answer_blob(
        State(registry): State<Arc<Registry>>,
        Path(digest): Path<String>,
    ) -> (StatusCode, Vec<u8>) {
        registry.asked.lock().unwrap().push(digest.clone());
        match registry.blobs.get(&digest) {
            Some(bytes) => (StatusCode::OK, bytes.clone()),
            None => (StatusCode::NOT_FOUND, b"no such blob".to_vec()),
        }
    }

    struct Kernel {
        wasm: Vec<u8>,
        cwasm: Vec<u8>,
        registry: Arc<Registry>,
        base: String,
    }

    async fn serve(listing_waits_for_the_wasm: bool) -> Kernel {
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        let cwasm = b"precompiled".to_vec();
        let provenance = b"{\"provenance\": true}".to_vec();
        let manifest = serde_json::json!({
            "schema": kiln_policy::manifest::MANIFEST_SCHEMA,
            "crate": "k", "version": "1.0.0",
            "crate_checksum": Digest::of(b"crate").to_string(),
            "wasm": Digest::of(&wasm).to_string(), "wasm_size": wasm.len(),
            "cwasm": Digest::of(&cwasm).to_string(),
            "imports": [], "exports": [], "entries": [],
            "wasmtime_version": "48", "compatibility_hash": "sha256:00",
        })
        .to_string()
        .into_bytes();
        let listing = serde_json::json!({
            "state": "approved",
            "approved_features": ["default"],
            "artifacts": [
                {"kind": "manifest", "digest": Digest::of(&manifest).to_string()},
                {"kind": "provenance", "digest": Digest::of(&provenance).to_string()},
            ],
        });
        let blobs = [&wasm, &cwasm, &provenance, &manifest]
            .into_iter()
            .map(|bytes| (Digest::of(bytes).to_string(), bytes.clone()))
            .collect();
        let registry = Arc::new(Registry {
            blobs,
            listing,
            listing_waits_for: listing_waits_for_the_wasm.then(|| Digest::of(&wasm)),
            asked: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/api/kiln/v1/submissions/k/1.0.0", get(answer_listing))
            .route("/api/kiln/v1/artifacts/{digest}", get(answer_blob))
            .with_state(registry.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Kernel {
            wasm,
            cwasm,
            registry,
            base,
        }
    }

    #[tokio::test]
    async fn pinned_modules_are_fetched_beside_the_listing_and_once() {
        let kernel = serve(true).await;
        let cache = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(&kernel.base, None, cache.path().to_owned());
        let pins = Pins {
            wasm: Digest::of(&kernel.wasm),
            cwasm: Some(Digest::of(&kernel.cwasm)),
        };
        let fetched = fetcher.kernel("k", "1.0.0", Some(&pins)).await.unwrap();
        assert_eq!(fetched.wasm, kernel.wasm);
        let cwasm = fetched.cwasm.unwrap();
        assert_eq!(cwasm.bytes(), kernel.cwasm);
        // The digest it was checked against is what loading compares, without hashing again.
        use crate::runtime::VerifiedBytes;
        assert!(VerifiedBytes::of_checked(&cwasm, &Digest::of(&kernel.cwasm)).is_some());
        assert!(VerifiedBytes::of_checked(&cwasm, &Digest::of(&kernel.wasm)).is_none());
        assert_eq!(fetched.statements.len(), 1);
        let asked = kernel.registry.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 4, "each blob once: {asked:?}");
    }

    #[tokio::test]
    async fn a_wrong_pin_costs_a_request_and_the_manifests_modules_are_fetched() {
        let kernel = serve(false).await;
        let cache = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(&kernel.base, None, cache.path().to_owned());
        let wrong = Digest::of(b"another module");
        let pins = Pins {
            wasm: wrong,
            cwasm: None,
        };
        let fetched = fetcher.kernel("k", "1.0.0", Some(&pins)).await.unwrap();
        assert_eq!(
            fetched.wasm, kernel.wasm,
            "the manifest's module, for preflight"
        );
        assert_eq!(fetched.cwasm.unwrap().bytes(), kernel.cwasm);
        let asked = kernel.registry.asked.lock().unwrap().clone();
        assert!(asked.contains(&wrong.to_string()), "{asked:?}");
        assert!(
            asked.contains(&Digest::of(&kernel.wasm).to_string()),
            "{asked:?}"
        );
    }

    #[tokio::test]
    async fn without_pins_the_listing_is_not_waited_on_for_modules() {
        let kernel = serve(true).await;
        let cache = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(&kernel.base, None, cache.path().to_owned());
        let err = fetcher.kernel("k", "1.0.0", None).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("not asked for while the listing was"),
            "{err}"
        );
    }
}
