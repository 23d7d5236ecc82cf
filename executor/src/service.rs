//! The executor: fetch, preflight, run and store, for `kiln run` in one process and for the
//! HTTP API (the `api` module).
//!
//! An [`Executor`] holds one wasmtime [`Runtime`], a [`Fetcher`] for the registry, one
//! [`Preflight`] (the trusted keys and the execution policy) and a [`RunStore`], and in memory
//! the [`caches`](crate::caches) of fetched artifacts and loaded modules and the
//! [`revocation list`](crate::revocations).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kiln_policy::policy_file::Policy;
use kiln_policy::preflight::{
    Attestation, CellContract, CodeCells, Pins, Preflight, PreflightInput, Reason, ReasonCode,
};
use kiln_policy::{Digest, Keyring};
use kiln_wire::code_builds::CodeBuildStage;
use kiln_wire::runs::CellStatus;
pub use kiln_wire::runs::{CellPreflight, PreflightReport, ReplayReport};

use crate::caches::{ArtifactCache, CACHED_NOTEBOOK_MAX_BYTES, ModuleCache, NotebookCache};
use crate::metrics::{CodeLabels, ExecutorMetrics};
use crate::revocations::RevocationState;

use crate::datasets::Datasets;
use crate::fetch::{FetchError, Fetcher, KernelArtifacts, KernelListing};
use crate::notebook::{CodeCell, Input, Notebook, NotebookError};
use crate::notebooks::NotebookStore;
use crate::run::{self, CellEvent, LoadedKernel, RunResult};
use crate::runtime::{Cancel, Runtime, VerifiedBytes};
use crate::store::{RunStore, StoredRun};

/// How an executor is set up.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// The registry's base URL.
    pub registry: String,
    /// The token the executor reads the registry with (needed when it requires one).
    pub registry_token: Option<String>,
    /// The keys whose statements this executor accepts, by role.
    pub keyring: Keyring,
    /// The policy: its execution and wasm sections apply.
    pub policy: Policy,
    /// Where fetched artifacts (`artifacts/`) and runs (`runs/`) are kept.
    pub data_dir: PathBuf,
    /// How many cells may run at once (the instance pool's size).
    pub slots: u32,
    /// How often the revocation list is fetched again.
    pub revocation_refresh: Duration,
}

/// Why the executor could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The notebook is invalid.
    #[error(transparent)]
    Notebook(#[from] NotebookError),
    /// No run has that id.
    #[error("no run `{0}`")]
    NoSuchRun(String),
    /// The run store.
    #[error("the run store: {0}")]
    Store(#[from] std::io::Error),
    /// The wasmtime runtime.
    #[error("the runtime: {0}")]
    Runtime(String),
    /// The run was stopped before it finished (its client went away); it was not stored.
    #[error("the run was cancelled before it finished")]
    Cancelled,
}

/// How long a preflight waits for a code cell's build before it refuses the cell (the build
/// goes on, and a later run finds it).
const CODE_BUILD_WAIT: Duration = Duration::from_secs(900);
/// How often a code cell's build is asked about while it runs.
const CODE_BUILD_POLL: Duration = Duration::from_millis(100);

/// A code cell's build moved on.
#[derive(Debug, Clone, Copy)]
pub struct BuildUpdate<'a> {
    /// The cell.
    pub cell: &'a str,
    /// Where its build is.
    pub stage: CodeBuildStage,
    /// Whether the build was made (or asked for) before.
    pub cached: bool,
}

/// What a cell may run, before preflight: a locked kernel's artifacts, or a code cell's build.
struct Candidate {
    /// `NAME@VERSION`, or ``code cell `ID` ``.
    what: String,
    /// The artifacts, or why there are none.
    fetched: Result<Arc<KernelArtifacts>, Vec<Reason>>,
    /// What the notebook pins; a code cell's build is pinned by its source instead.
    pins: Option<Pins>,
    /// A code cell's source digest.
    code_source: Option<Digest>,
    /// A code cell's compiler messages.
    diagnostics: Vec<kiln_wire::code_builds::Diagnostic>,
    /// The artifact cache's key for it.
    cached_as: (String, String),
}

/// A notebook after preflight, ready to run when [`PreflightReport::allow`].
#[derive(Debug)]
pub struct Prepared {
    /// The notebook (shared with the cache of parsed notebooks).
    pub notebook: Arc<Notebook>,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The preflight.
    pub report: PreflightReport,
    /// Who runs it: the run record names them.
    pub ran_by: Option<String>,
    kernels: BTreeMap<String, LoadedKernel>,
}

/// The most fuel a run may ask for in all and still be [small](Prepared::is_small).
pub const SMALL_RUN_FUEL: u64 = 1_000_000;
/// The most wall-clock time a run may ask for in all and still be small, in milliseconds.
pub const SMALL_RUN_WALL_MS: u64 = 10;
/// The most linear memory a small run's cell may ask for: one bulk memory instruction (a
/// single unit of fuel) fills at most this much before the next deadline check.
pub const SMALL_RUN_MEMORY_BYTES: u64 = 16 << 20;

/// Whether cells with these limits make a small run (see [`Prepared::is_small`]).
fn small_limits(cells: impl IntoIterator<Item = kiln_policy::preflight::Limits>) -> bool {
    let (mut fuel, mut wall_ms) = (0u64, 0u64);
    for limits in cells {
        if limits.memory_bytes > SMALL_RUN_MEMORY_BYTES {
            return false;
        }
        fuel = fuel.saturating_add(limits.fuel);
        wall_ms = wall_ms.saturating_add(limits.wall_ms);
    }
    fuel <= SMALL_RUN_FUEL && wall_ms <= SMALL_RUN_WALL_MS
}

impl Prepared {
    /// Whether the run is small, so that it may run on the async worker that serves its
    /// request, as any short piece of work does, instead of being handed to the blocking pool
    /// and back (the hand-off, thread wake-ups on both sides, costs more than such a run):
    ///
    /// - its cells ask for at most [`SMALL_RUN_FUEL`] and [`SMALL_RUN_WALL_MS`] in all, and
    ///   each for at most [`SMALL_RUN_MEMORY_BYTES`]. Fuel alone does not bound time (one bulk
    ///   memory instruction costs one unit of fuel, however much it fills); the wall-clock
    ///   limit, checked every epoch tick, does, and the memory bound caps the one instruction
    ///   that may run past it;
    /// - none of its kernels can wait on the host ([`Kernel::may_wait`](crate::runtime::Kernel));
    /// - no cell reads a dataset from disk.
    ///
    /// A hostile small run therefore holds a worker for its wall-clock limit plus a tick per
    /// cell at most, and holds a run slot like any other run.
    pub fn is_small(&self) -> bool {
        small_limits(self.notebook.kernel_cells().map(|cell| cell.limits()))
            && !self.kernels.values().any(|k| k.kernel.may_wait())
            && !self
                .notebook
                .kernel_cells()
                .any(|cell| matches!(cell.input, Input::Blob(_)))
    }
}

/// The executor.
pub struct Executor {
    runtime: Runtime,
    fetcher: Fetcher,
    /// The preflight: replaced whole when the trust file changes ([`Executor::replace_keyring`]).
    preflight: std::sync::RwLock<Arc<Preflight>>,
    compatibility: String,
    artifacts: ArtifactCache,
    loaded: ModuleCache,
    parsed: NotebookCache,
    revocations: RevocationState,
    store: RunStore,
    notebooks: NotebookStore,
    datasets: Datasets,
    /// Counters for `/metrics`.
    pub metrics: ExecutorMetrics,
    settings: ExecutorSettings,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("registry", &self.settings.registry)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Executor {
    /// Starts an executor: the runtime and the run store in `DATA/runs`. Until
    /// [`Executor::refresh_revocations`] has fetched a revocation list, preflight refuses every
    /// cell.
    pub fn new(settings: ExecutorSettings) -> Result<Arc<Self>, ExecutorError> {
        let runtime = Runtime::new(settings.slots)
            .map_err(|err| ExecutorError::Runtime(format!("{err:#}")))?;
        let compatibility = kiln_engine::compatibility_hash(runtime.engine());
        let store = RunStore::open(
            &settings.data_dir.join("runs"),
            settings.policy.execution.retention,
        )?;
        let notebooks = NotebookStore::open(&settings.data_dir.join("notebooks"))?;
        let datasets = Datasets::open(&settings.data_dir.join("datasets"))?;
        let fetcher = Fetcher::new(
            &settings.registry,
            settings.registry_token.clone(),
            settings.data_dir.join("artifacts"),
        );
        let preflight = Preflight::new(
            settings.keyring.clone(),
            settings.policy.execution.clone(),
            settings.policy.wasm.clone(),
        );
        let metrics = ExecutorMetrics::default();
        metrics.stored_runs.set(store.len() as i64);
        Ok(Arc::new(Self {
            runtime,
            fetcher,
            preflight: std::sync::RwLock::new(Arc::new(preflight)),
            compatibility,
            artifacts: ArtifactCache::default(),
            loaded: ModuleCache::default(),
            parsed: NotebookCache::default(),
            revocations: RevocationState::default(),
            store,
            notebooks,
            datasets,
            metrics,
            settings,
        }))
    }

    /// The run store.
    pub fn store(&self) -> &RunStore {
        &self.store
    }

    /// The notebooks people keep here.
    pub fn notebooks(&self) -> &NotebookStore {
        &self.notebooks
    }

    /// The datasets people uploaded for cells to read.
    pub fn datasets(&self) -> &Datasets {
        &self.datasets
    }

    /// The registry's kernel catalogue (JSON), for notebook editors.
    pub async fn catalogue(&self) -> Result<Vec<u8>, FetchError> {
        self.fetcher.catalogue().await
    }

    /// What the registry lists for `krate@version` now (for a page that verifies it itself).
    pub async fn listing(&self, krate: &str, version: &str) -> Result<KernelListing, FetchError> {
        self.fetcher.listing(krate, version).await
    }

    /// The blob `digest` (a manifest, module or bundle), from the artifact cache or the registry,
    /// checked against its digest.
    pub async fn blob(&self, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        self.fetcher.blob(digest).await
    }

    /// The registry's revocation list as it signed it, fetched now (a bundle the caller
    /// verifies).
    pub async fn revocation_bundle(&self) -> Result<Vec<u8>, FetchError> {
        self.fetcher.revocations().await
    }

    /// The preflight, with the keys and the policy it decides under now.
    pub fn preflight(&self) -> Arc<Preflight> {
        self.preflight.read().expect("the preflight lock").clone()
    }

    /// Trusts `keyring` from now on (the trust file changed): decisions already made stand, the
    /// next ones use the new keys, and the revocation list is verified again with them before the
    /// next preflight. Answers whether anything changed.
    pub fn replace_keyring(&self, keyring: Keyring) -> bool {
        let mut current = self.preflight.write().expect("the preflight lock");
        if *current.keyring() == keyring {
            return false;
        }
        *current = Arc::new(Preflight::new(
            keyring,
            self.settings.policy.execution.clone(),
            self.settings.policy.wasm.clone(),
        ));
        drop(current);
        self.revocations.mark_changed();
        true
    }

    /// Reads an uploaded dataset for a cell's input (`None` when it is gone or damaged).
    fn dataset(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.datasets.get(digest).ok().flatten()
    }

    /// The settings it was started with.
    pub fn settings(&self) -> &ExecutorSettings {
        &self.settings
    }

    /// Says that the registry's revocation list changed: the next preflight fetches it first.
    /// (The registry in the same process calls this after every revocation; a separate
    /// executor learns of revocations within its refresh interval.)
    pub fn revocations_changed(&self) {
        self.revocations.mark_changed();
    }

    /// Fetches and verifies the revocation list; on failure the last good list stays (and ages).
    pub async fn refresh_revocations(&self) {
        self.revocations
            .refresh(&self.fetcher, self.preflight().keyring())
            .await;
    }

    /// Refreshes the revocation list now and then every `revocation_refresh`, until `stop`
    /// resolves.
    pub async fn refresh_revocations_until(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let refresh = async {
            loop {
                self.refresh_revocations().await;
                tokio::time::sleep(self.settings.revocation_refresh).await;
            }
        };
        tokio::select! {
            () = refresh => {},
            () = stop => {},
        }
    }

    async fn artifacts(
        &self,
        krate: &str,
        version: &str,
        pinned: Option<&Pins>,
    ) -> Result<Arc<KernelArtifacts>, FetchError> {
        if let Some(cached) = self.artifacts.get(krate, version) {
            return Ok(cached);
        }
        let artifacts = Arc::new(self.fetcher.kernel(krate, version, pinned).await?);
        self.artifacts.put(krate, version, artifacts.clone());
        Ok(artifacts)
    }

    /// Parses `bytes` as a notebook, fetches its kernels and decides every cell's preflight; when
    /// every cell is allowed, loads the kernels so that [`Executor::execute`] can run them.
    pub async fn prepare(&self, bytes: Vec<u8>) -> Result<Prepared, ExecutorError> {
        self.prepare_with(bytes, &|_| {}).await
    }

    /// [`Executor::prepare`], telling `on_build` how each code cell's build moves along (it is
    /// built, or found built, before preflight).
    pub async fn prepare_with(
        &self,
        bytes: Vec<u8>,
        on_build: &(dyn Fn(BuildUpdate<'_>) + Send + Sync),
    ) -> Result<Prepared, ExecutorError> {
        let digest = Notebook::digest_of(&bytes);
        let notebook = match self.parsed.get(&digest) {
            Some(notebook) => notebook,
            None => {
                let notebook = Arc::new(Notebook::parse(&bytes)?);
                if bytes.len() <= CACHED_NOTEBOOK_MAX_BYTES {
                    self.parsed.put(digest, notebook.clone());
                }
                notebook
            }
        };
        for (index, cell) in notebook.kernel_cells().enumerate() {
            if let Input::Blob(digest) = &cell.input
                && !self.datasets.contains(digest)
            {
                return Err(NotebookError {
                    location: format!("cell `{}` (#{}), field `input.blob`", cell.id, index + 1),
                    message: format!("no dataset {digest} on this executor: upload it first"),
                }
                .into());
            }
        }
        let preflight = self.preflight();
        self.revocations
            .refresh_if_changed(&self.fetcher, preflight.keyring())
            .await;
        let mut candidates: BTreeMap<String, Candidate> = BTreeMap::new();
        // Every kernel's artifacts at once (on a first run, each is a few requests in a row).
        let fetches = futures::future::join_all(notebook.kernels.values().map(|lock| {
            let pins = Pins {
                wasm: lock.wasm,
                cwasm: lock.cwasm,
            };
            async move {
                self.artifacts(&lock.krate, &lock.version, Some(&pins))
                    .await
            }
        }))
        .await;
        for ((name, lock), fetched) in notebook.kernels.iter().zip(fetches) {
            let what = format!("{}@{}", lock.krate, lock.version);
            let fetched = fetched.map_err(|err| match err {
                FetchError::Revoked(message) => vec![Reason {
                    code: ReasonCode::Revoked,
                    message: format!("{what}: {message}"),
                }],
                err => vec![Reason {
                    code: ReasonCode::Unavailable,
                    message: format!("{what}: {err}"),
                }],
            });
            candidates.insert(
                name.clone(),
                Candidate {
                    fetched,
                    pins: Some(Pins {
                        wasm: lock.wasm,
                        cwasm: lock.cwasm,
                    }),
                    code_source: None,
                    diagnostics: Vec::new(),
                    cached_as: (lock.krate.clone(), lock.version.clone()),
                    what,
                },
            );
        }
        for code in notebook.code_cells() {
            let call = code.as_call();
            let candidate = self.code_candidate(code, &preflight, on_build).await;
            candidates.insert(call.kernel, candidate);
        }
        let (revocations, revocation_error) = self.revocations.current();
        let now = now_ms();
        let mut cells = Vec::new();
        for cell in notebook.kernel_cells() {
            let candidate = &candidates[&cell.kernel];
            let what = &candidate.what;
            let mut precompiled = false;
            let mut grants = cell.grants.clone().unwrap_or_default();
            let reasons = match (&candidate.fetched, &revocations) {
                (Err(reasons), _) => reasons.clone(),
                (Ok(_), None) => vec![Reason {
                    code: ReasonCode::RevocationListUnavailable,
                    message: format!(
                        "no verified revocation list from the registry: {}",
                        revocation_error.as_deref().unwrap_or("not fetched yet")
                    ),
                }],
                (Ok(artifacts), Some(revocations)) => {
                    let attestations: Vec<Attestation<'_>> = artifacts
                        .statements
                        .iter()
                        .map(|(digest, json)| Attestation {
                            digest: *digest,
                            json,
                        })
                        .collect();
                    let cell_grants = cell
                        .grants
                        .clone()
                        .unwrap_or_else(|| preflight.default_grants(&artifacts.manifest.imports));
                    grants = cell_grants.clone();
                    let pins = candidate.pins.unwrap_or(Pins {
                        wasm: artifacts.manifest.wasm,
                        cwasm: artifacts.manifest.cwasm,
                    });
                    let decision = preflight.decide(&PreflightInput {
                        cell: &CellContract {
                            entry: cell.entry.clone(),
                            grants: cell_grants,
                            limits: cell.limits(),
                        },
                        manifest: &artifacts.manifest,
                        manifest_digest: artifacts.manifest_digest,
                        pins: &pins,
                        attestations: &attestations,
                        revocations,
                        now_ms: now,
                        engine_compatibility: &self.compatibility,
                        code_source: candidate.code_source,
                    });
                    precompiled = decision.use_precompiled;
                    let mut reasons = decision.reasons;
                    if let Some(state) = &artifacts.not_approved {
                        reasons.insert(
                            0,
                            Reason {
                                code: ReasonCode::NotApproved,
                                message: format!(
                                    "{what} is not approved in the registry: it is {state}"
                                ),
                            },
                        );
                    }
                    reasons
                }
            };
            if !reasons.is_empty() {
                // What was fetched may be out of date (a review added, a version revoked).
                let (krate, version) = &candidate.cached_as;
                self.artifacts.forget(krate, version);
                for reason in &reasons {
                    self.metrics
                        .denials
                        .get_or_create(&CodeLabels {
                            code: reason.code.to_string(),
                        })
                        .inc();
                }
            }
            cells.push(CellPreflight {
                id: cell.id.clone(),
                kernel: cell.kernel.clone(),
                allow: reasons.is_empty(),
                reasons,
                precompiled,
                grants,
                limits: cell.limits(),
                diagnostics: candidate.diagnostics.clone(),
            });
        }
        let allow = cells.iter().all(|c| c.allow);
        let report = PreflightReport {
            notebook: digest,
            allow,
            cells,
        };
        let mut kernels = BTreeMap::new();
        if allow {
            let wanted: Vec<(String, Arc<KernelArtifacts>, bool)> = candidates
                .into_iter()
                .map(|(name, candidate)| {
                    let artifacts = candidate
                        .fetched
                        .expect("every cell passed, so its kernel was fetched");
                    let precompiled = report
                        .cells
                        .iter()
                        .any(|c| c.kernel == name && c.precompiled);
                    (name, artifacts, precompiled)
                })
                .collect();
            let loaded = self.load_all(
                wanted
                    .iter()
                    .map(|(_, artifacts, precompiled)| (&**artifacts, *precompiled)),
            )?;
            for ((name, artifacts, _), kernel) in wanted.into_iter().zip(loaded) {
                kernels.insert(
                    name,
                    LoadedKernel {
                        kernel,
                        wasm: artifacts.manifest.wasm,
                    },
                );
            }
        } else {
            self.metrics.run("blocked");
        }
        Ok(Prepared {
            notebook,
            bytes,
            report,
            ran_by: None,
            kernels,
        })
    }

    /// A code cell's build as a preflight candidate: asked of the registry (which builds it, or
    /// answers the build made before, by any executor), followed until signed or failed, and
    /// its artifacts fetched. A policy that denies code cells refuses it without a build.
    async fn code_candidate(
        &self,
        code: &CodeCell,
        preflight: &Preflight,
        on_build: &(dyn Fn(BuildUpdate<'_>) + Send + Sync),
    ) -> Candidate {
        let what = format!("code cell `{}`", code.id);
        let request = code.request();
        let mut candidate = Candidate {
            what: what.clone(),
            fetched: Err(Vec::new()),
            pins: None,
            code_source: Some(request.source_digest()),
            diagnostics: Vec::new(),
            cached_as: (String::new(), String::new()),
        };
        let refuse = |code: ReasonCode, message: String| Err(vec![Reason { code, message }]);
        if preflight.execution().code_cells == CodeCells::Deny {
            candidate.fetched = refuse(
                ReasonCode::CodeCellsDenied,
                format!(
                    "{what}: the policy does not let code cells run ([execution] code_cells = \"deny\")"
                ),
            );
            return candidate;
        }
        let started = std::time::Instant::now();
        let mut status = match self.fetcher.request_code_build(&request).await {
            Ok(status) => status,
            Err(FetchError::Refused(message)) => {
                let code = if message.contains("not approved") {
                    ReasonCode::NotApproved
                } else {
                    ReasonCode::BuildFailed
                };
                candidate.fetched = refuse(code, format!("{what}: {message}"));
                return candidate;
            }
            Err(err) => {
                candidate.fetched = refuse(ReasonCode::Unavailable, format!("{what}: {err}"));
                return candidate;
            }
        };
        let cached = status.cached;
        on_build(BuildUpdate {
            cell: &code.id,
            stage: status.stage,
            cached,
        });
        while !status.stage.is_final() {
            if started.elapsed() > CODE_BUILD_WAIT {
                candidate.fetched = refuse(
                    ReasonCode::Unavailable,
                    format!(
                        "{what}: its build did not finish within {} s (it goes on; run again later)",
                        CODE_BUILD_WAIT.as_secs()
                    ),
                );
                return candidate;
            }
            tokio::time::sleep(CODE_BUILD_POLL).await;
            match self.fetcher.code_build(&status.key).await {
                Ok(next) => {
                    if next.stage != status.stage {
                        on_build(BuildUpdate {
                            cell: &code.id,
                            stage: next.stage,
                            cached,
                        });
                    }
                    status = next;
                }
                Err(err) => {
                    tracing::warn!(error = %err, key = %status.key, "following a code build")
                }
            }
        }
        if let Some(artifacts) = &status.artifacts {
            candidate.cached_as = ("code-build".to_owned(), status.key.to_string());
            let (krate, version) = &candidate.cached_as;
            candidate.fetched = match self.artifacts.get(krate, version) {
                Some(hit) => Ok(hit),
                None => match self.fetcher.code_artifacts(artifacts).await {
                    Ok(fetched) => {
                        let fetched = Arc::new(fetched);
                        self.artifacts.put(krate, version, fetched.clone());
                        Ok(fetched)
                    }
                    Err(err) => refuse(ReasonCode::Unavailable, format!("{what}: {err}")),
                },
            };
        } else {
            candidate.diagnostics = status.diagnostics;
            candidate.fetched = refuse(
                ReasonCode::BuildFailed,
                format!(
                    "{what}: {}",
                    status.error.as_deref().unwrap_or("its build failed")
                ),
            );
        }
        candidate
    }

    /// Each kernel loaded: from the module cache, or else loaded (all at once, a thread each)
    /// and cached. Loading a `.cwasm` (or compiling, when it does not fit this engine) takes
    /// milliseconds, so it happens off the async workers, and a notebook's first run on an
    /// executor waits for its slowest kernel, not for the sum of them.
    fn load_all<'a>(
        &self,
        wanted: impl Iterator<Item = (&'a KernelArtifacts, bool)>,
    ) -> Result<Vec<crate::runtime::Kernel>, ExecutorError> {
        let wanted: Vec<_> = wanted
            .map(|(artifacts, precompiled)| {
                let cached = self.loaded.get(&artifacts.manifest_digest);
                (artifacts, precompiled, cached)
            })
            .collect();
        if wanted.iter().all(|(_, _, cached)| cached.is_some()) {
            return Ok(wanted.into_iter().filter_map(|(_, _, k)| k).collect());
        }
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let threads: Vec<_> = wanted
                    .iter()
                    .map(|&(artifacts, precompiled, ref cached)| {
                        cached
                            .is_none()
                            .then(|| scope.spawn(move || self.load(artifacts, precompiled)))
                    })
                    .collect();
                wanted
                    .into_iter()
                    .zip(threads)
                    .map(|((_, _, cached), thread)| match cached {
                        Some(kernel) => Ok(kernel),
                        None => thread
                            .expect("a thread loads each kernel not cached")
                            .join()
                            .expect("a kernel load does not panic"),
                    })
                    .collect()
            })
        })
    }

    /// Loads one kernel (blocking) and caches it: the signed `.cwasm` when this engine can use
    /// it, else the verified `.wasm` compiled here.
    fn load(
        &self,
        artifacts: &KernelArtifacts,
        precompiled: bool,
    ) -> Result<crate::runtime::Kernel, ExecutorError> {
        let verified_cwasm = match (&artifacts.cwasm, artifacts.manifest.cwasm) {
            (Some(blob), Some(digest)) if precompiled => VerifiedBytes::of_checked(blob, &digest),
            _ => None,
        };
        let kernel = match verified_cwasm {
            Some(verified) => self.runtime.load_cwasm(&verified),
            None => self.runtime.load_wasm(&artifacts.wasm),
        }
        .map_err(|err| {
            ExecutorError::Runtime(format!(
                "loading {}@{}: {err:#}",
                artifacts.manifest.krate, artifacts.manifest.version
            ))
        })?;
        self.loaded.put(artifacts.manifest_digest, kernel.clone());
        Ok(kernel)
    }

    /// Runs a prepared (allowed) notebook, telling `observe` about each cell, and stores the
    /// run; `cancel` stops it (what ran is then not stored). Blocking: call it off the async
    /// runtime's workers, unless the run [is small](Prepared::is_small). Answers the stored
    /// run and its outputs by digest.
    pub fn execute(
        &self,
        prepared: &Prepared,
        seed: Option<u64>,
        observe: &mut dyn FnMut(CellEvent<'_>),
        cancel: &Cancel,
    ) -> Result<(StoredRun, BTreeMap<Digest, Vec<u8>>), ExecutorError> {
        assert!(prepared.report.allow, "only an allowed notebook runs");
        let mut result = run::run_observed(
            &self.runtime,
            &prepared.notebook,
            prepared.report.notebook,
            &prepared.kernels,
            seed,
            observe,
            cancel,
            &self.settings.policy.execution.run_budget,
            &|digest| self.dataset(digest),
        )?;
        if cancel.is_cancelled() {
            self.metrics.run("cancelled");
            return Err(ExecutorError::Cancelled);
        }
        let mut all_ok = true;
        for cell in &result.record.cells {
            all_ok &= cell.status == CellStatus::Ok;
            self.metrics.cells.inc();
            self.metrics.fuel.inc_by(cell.metrics.fuel);
            self.metrics
                .cell_seconds
                .inc_by(cell.metrics.wall_us as f64 / 1e6);
        }
        self.metrics.run(if all_ok { "ok" } else { "failed" });
        result.record.ran_by = prepared.ran_by.clone();
        let RunResult { record, outputs } = result;
        let stored = self
            .store
            .save(&prepared.bytes, record, &outputs, now_ms())?;
        self.metrics.stored_runs.set(self.store.len() as i64);
        Ok((stored, outputs))
    }

    /// The stored notebook of run `id`, for a replay (which must pass preflight again).
    pub fn stored_notebook(&self, id: &str) -> Result<(StoredRun, Vec<u8>), ExecutorError> {
        let run = self
            .store
            .get(id)?
            .ok_or_else(|| ExecutorError::NoSuchRun(id.to_owned()))?;
        let notebook = self.store.blob(&run.record.notebook)?.ok_or_else(|| {
            ExecutorError::Store(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the notebook of {id} is missing from the store"),
            ))
        })?;
        Ok((run, notebook))
    }

    /// Replays `run` with a prepared (allowed) notebook; `cancel` stops it. Blocking.
    pub fn replay(
        &self,
        run: &StoredRun,
        prepared: &Prepared,
        cancel: &Cancel,
    ) -> Result<ReplayReport, ExecutorError> {
        let cells = run::replay(
            &self.runtime,
            &prepared.notebook,
            &run.record,
            &prepared.kernels,
            cancel,
            &self.settings.policy.execution.run_budget,
            &|digest| self.dataset(digest),
        )?;
        if cancel.is_cancelled() {
            return Err(ExecutorError::Cancelled);
        }
        Ok(ReplayReport {
            run: run.id.clone(),
            matches: cells.iter().all(|c| c.matches),
            cells,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_policy::preflight::Limits;

    const TINY: Limits = Limits {
        fuel: 100_000,
        memory_bytes: 4 << 20,
        wall_ms: 5,
        output_bytes: 4096,
    };

    #[test]
    fn a_run_is_small_only_when_its_fuel_time_and_memory_are_all_small() {
        assert!(small_limits([TINY]));
        assert!(small_limits([TINY, TINY]));
        assert!(small_limits([] as [Limits; 0]));
        // Fuel alone does not make a run small: a bulk memory instruction costs one unit.
        let slow = Limits {
            wall_ms: 60_000,
            ..TINY
        };
        assert!(!small_limits([slow]));
        let big_memory = Limits {
            memory_bytes: 1 << 30,
            ..TINY
        };
        assert!(!small_limits([big_memory]));
        let much_fuel = Limits {
            fuel: SMALL_RUN_FUEL + 1,
            ..TINY
        };
        assert!(!small_limits([much_fuel]));
        // The time and fuel are counted over the whole run.
        assert!(!small_limits([TINY, TINY, TINY]));
        let saturating = Limits {
            fuel: u64::MAX,
            ..TINY
        };
        assert!(!small_limits([saturating, saturating]));
    }
}
