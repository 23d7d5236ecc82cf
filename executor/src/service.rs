//! The executor: fetch, preflight, run and store, for `kiln run` in one process and for the
//! HTTP API ([`crate::api`]).
//!
//! An [`Executor`] holds one wasmtime [`Runtime`], a [`Fetcher`] for the registry, one
//! [`Preflight`] (the trusted keys and the execution policy) and a [`RunStore`]. It keeps, in
//! memory, each kernel's fetched artifacts (by crate and version, for as long as they pass
//! preflight), each loaded module (by manifest digest) and the last verified revocation list,
//! which a background task refreshes; a list that can no longer be refreshed grows stale and the
//! preflight then refuses every cell.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kiln_policy::policy_file::Policy;
use kiln_policy::preflight::{Attestation, CellContract, Pins, Preflight, PreflightInput, Reason};
use kiln_policy::revocation::RevocationList;
use kiln_policy::{Digest, Keyring, Verifier};
use serde::{Deserialize, Serialize};

use crate::fetch::{FetchError, Fetcher, KernelArtifacts};
use crate::notebook::{Notebook, NotebookError};
use crate::run::{self, CellEvent, LoadedKernel, ReplayedCell, RunResult};
use crate::runtime::{Runtime, VerifiedBytes};
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
}

/// One cell's preflight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CellPreflight {
    /// The cell's id.
    pub id: String,
    /// The kernel's name in the notebook.
    pub kernel: String,
    /// Whether it may run.
    pub allow: bool,
    /// Every reason it may not, each with a stable code.
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Reason>,
    /// Whether the signed `.cwasm` is used (else the verified `.wasm` is compiled here).
    pub precompiled: bool,
}

/// A notebook's preflight: it runs only when every kernel cell is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreflightReport {
    /// The notebook's digest.
    #[schema(value_type = String)]
    pub notebook: Digest,
    /// Whether every kernel cell may run.
    pub allow: bool,
    /// Each kernel cell, in order.
    pub cells: Vec<CellPreflight>,
}

/// A notebook after preflight, ready to run when [`PreflightReport::allow`].
#[derive(Debug)]
pub struct Prepared {
    /// The notebook.
    pub notebook: Notebook,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The preflight.
    pub report: PreflightReport,
    kernels: BTreeMap<String, LoadedKernel>,
}

/// A replay's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// The run replayed.
    pub run: String,
    /// Whether every cell's output digest matched.
    pub matches: bool,
    /// Each cell.
    #[schema(value_type = Vec<Object>)]
    pub cells: Vec<ReplayedCell>,
}

/// The executor's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ExecutorMetrics {
    /// Runs by outcome: every cell ok, some cell failed, blocked by preflight.
    pub runs_ok: AtomicU64,
    /// Runs in which some cell did not succeed.
    pub runs_failed: AtomicU64,
    /// Notebooks refused by preflight.
    pub runs_blocked: AtomicU64,
    /// Requests turned away because the executor was full.
    pub rejected_busy: AtomicU64,
    /// Kernel cells called.
    pub cells: AtomicU64,
    /// Fuel consumed by all cells.
    pub fuel: AtomicU64,
    /// Wall time of all cells, in microseconds.
    pub cell_wall_us: AtomicU64,
    /// Preflight refusals by reason code.
    pub denials: Mutex<BTreeMap<String, u64>>,
}

impl ExecutorMetrics {
    /// The counters in the Prometheus text format; `in_flight` is the gauge of running requests.
    pub fn render(&self, in_flight: usize, stored_runs: usize) -> String {
        let mut out = String::new();
        let mut metric = |kind: &str, name: &str, help: &str, samples: &[(String, f64)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
        metric(
            "counter",
            "kiln_executor_runs_total",
            "Notebook runs by outcome.",
            &[
                ("{outcome=\"ok\"}".into(), load(&self.runs_ok)),
                ("{outcome=\"failed\"}".into(), load(&self.runs_failed)),
                ("{outcome=\"blocked\"}".into(), load(&self.runs_blocked)),
            ],
        );
        metric(
            "counter",
            "kiln_executor_rejected_total",
            "Requests answered 503 because every slot and queue place was taken.",
            &[(String::new(), load(&self.rejected_busy))],
        );
        metric(
            "counter",
            "kiln_executor_cells_total",
            "Kernel cells called.",
            &[(String::new(), load(&self.cells))],
        );
        metric(
            "counter",
            "kiln_executor_fuel_total",
            "Fuel consumed by kernel cells.",
            &[(String::new(), load(&self.fuel))],
        );
        metric(
            "counter",
            "kiln_executor_cell_seconds_total",
            "Wall time of kernel cells.",
            &[(String::new(), load(&self.cell_wall_us) / 1e6)],
        );
        let denials: Vec<(String, f64)> = self
            .denials
            .lock()
            .expect("denial counters")
            .iter()
            .map(|(code, n)| (format!("{{code=\"{code}\"}}"), *n as f64))
            .collect();
        metric(
            "counter",
            "kiln_executor_preflight_denials_total",
            "Cells refused by preflight, by reason code.",
            &denials,
        );
        metric(
            "gauge",
            "kiln_executor_in_flight",
            "Requests running or waiting for a slot.",
            &[(String::new(), in_flight as f64)],
        );
        metric(
            "gauge",
            "kiln_executor_stored_runs",
            "Runs in the run store.",
            &[(String::new(), stored_runs as f64)],
        );
        out
    }
}

/// The last revocation list fetched and verified, or why there is none.
#[derive(Debug, Default)]
struct Revocations {
    list: Option<Arc<RevocationList>>,
    error: Option<String>,
}

/// The fetched artifacts of one kernel kept this long before they are fetched again.
const ARTIFACTS_TTL: Duration = Duration::from_secs(300);
/// At most this many kernels' artifacts and loaded modules are kept in memory.
const KERNEL_CACHE_LIMIT: usize = 256;

struct CachedArtifacts {
    artifacts: Arc<KernelArtifacts>,
    fetched: std::time::Instant,
}

/// The executor.
pub struct Executor {
    runtime: Runtime,
    fetcher: Fetcher,
    preflight: Preflight,
    compatibility: String,
    artifacts: Mutex<HashMap<(String, String), CachedArtifacts>>,
    loaded: Mutex<HashMap<Digest, crate::runtime::Kernel>>,
    revocations: RwLock<Revocations>,
    revocations_changed: std::sync::atomic::AtomicBool,
    store: RunStore,
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

fn now_ms() -> u64 {
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
        let compatibility = crate::engine::compatibility_hash(runtime.engine());
        let store = RunStore::open(&settings.data_dir.join("runs"))?;
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
        let executor = Arc::new(Self {
            runtime,
            fetcher,
            preflight,
            compatibility,
            artifacts: Mutex::new(HashMap::new()),
            loaded: Mutex::new(HashMap::new()),
            revocations: RwLock::new(Revocations::default()),
            revocations_changed: std::sync::atomic::AtomicBool::new(false),
            store,
            metrics: ExecutorMetrics::default(),
            settings,
        });
        Ok(executor)
    }

    /// The run store.
    pub fn store(&self) -> &RunStore {
        &self.store
    }

    /// The settings it was started with.
    pub fn settings(&self) -> &ExecutorSettings {
        &self.settings
    }

    /// Says that the registry's revocation list changed: the next preflight fetches it first.
    /// (The registry in the same process calls this after every revocation; a separate
    /// executor learns of revocations within its refresh interval.)
    pub fn revocations_changed(&self) {
        self.revocations_changed.store(true, Ordering::SeqCst);
    }

    /// Fetches and verifies the revocation list; on failure the last good list stays (and ages).
    pub async fn refresh_revocations(&self) {
        let fetched = self
            .fetcher
            .revocations()
            .await
            .map_err(|err| err.to_string());
        let verified = fetched.and_then(|json| {
            RevocationList::verify(&Verifier::new(self.preflight.keyring()), &json)
                .map_err(|err| format!("the registry's revocation list: {err}"))
        });
        let mut state = self.revocations.write().expect("revocation state");
        match verified {
            Ok(list) => {
                state.list = Some(Arc::new(list));
                state.error = None;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot refresh the revocation list");
                state.error = Some(err);
            }
        }
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
    ) -> Result<Arc<KernelArtifacts>, FetchError> {
        let key = (krate.to_owned(), version.to_owned());
        if let Some(cached) = self.artifacts.lock().expect("artifact cache").get(&key)
            && cached.fetched.elapsed() < ARTIFACTS_TTL
        {
            return Ok(cached.artifacts.clone());
        }
        let artifacts = Arc::new(self.fetcher.kernel(krate, version).await?);
        let mut cache = self.artifacts.lock().expect("artifact cache");
        if cache.len() >= KERNEL_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            key,
            CachedArtifacts {
                artifacts: artifacts.clone(),
                fetched: std::time::Instant::now(),
            },
        );
        Ok(artifacts)
    }

    fn forget_artifacts(&self, krate: &str, version: &str) {
        self.artifacts
            .lock()
            .expect("artifact cache")
            .remove(&(krate.to_owned(), version.to_owned()));
    }

    /// Parses `bytes` as a notebook, fetches its kernels and decides every cell's preflight; when
    /// every cell is allowed, loads the kernels so that [`Executor::execute`] can run them.
    pub async fn prepare(&self, bytes: Vec<u8>) -> Result<Prepared, ExecutorError> {
        let notebook = Notebook::parse(&bytes)?;
        if self.revocations_changed.swap(false, Ordering::SeqCst) {
            self.refresh_revocations().await;
        }
        let mut fetched = BTreeMap::new();
        for (name, lock) in &notebook.kernels {
            fetched.insert(
                name.clone(),
                self.artifacts(&lock.krate, &lock.version).await,
            );
        }
        let (revocations, revocation_error) = {
            let state = self.revocations.read().expect("revocation state");
            (state.list.clone(), state.error.clone())
        };
        let now = now_ms();
        let mut cells = Vec::new();
        for cell in notebook.kernel_cells() {
            let lock = &notebook.kernels[&cell.kernel];
            let mut precompiled = false;
            let reasons = match (&fetched[&cell.kernel], &revocations) {
                (Err(FetchError::Revoked(message)), _) => vec![Reason {
                    code: "revoked".into(),
                    message: format!("{}@{}: {message}", lock.krate, lock.version),
                }],
                (Err(err), _) => vec![Reason {
                    code: "unavailable".into(),
                    message: format!("{}@{}: {err}", lock.krate, lock.version),
                }],
                (Ok(_), None) => vec![Reason {
                    code: "revocation-list-unavailable".into(),
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
                    let decision = self.preflight.decide(&PreflightInput {
                        cell: &CellContract {
                            entry: cell.entry.clone(),
                            grants: cell.grants.clone(),
                            limits: cell.limits(),
                        },
                        manifest: &artifacts.manifest,
                        manifest_digest: artifacts.manifest_digest,
                        pins: &Pins {
                            wasm: lock.wasm,
                            cwasm: lock.cwasm,
                        },
                        attestations: &attestations,
                        revocations,
                        now_ms: now,
                        engine_compatibility: &self.compatibility,
                    });
                    precompiled = decision.use_precompiled;
                    decision.reasons
                }
            };
            if !reasons.is_empty() {
                // What was fetched may be out of date (a review added, a version revoked).
                self.forget_artifacts(&lock.krate, &lock.version);
                let mut denials = self.metrics.denials.lock().expect("denial counters");
                for reason in &reasons {
                    *denials.entry(reason.code.clone()).or_default() += 1;
                }
            }
            cells.push(CellPreflight {
                id: cell.id.clone(),
                kernel: cell.kernel.clone(),
                allow: reasons.is_empty(),
                reasons,
                precompiled,
            });
        }
        let allow = cells.iter().all(|c| c.allow);
        let report = PreflightReport {
            notebook: Notebook::digest_of(&bytes),
            allow,
            cells,
        };
        let mut kernels = BTreeMap::new();
        if allow {
            for (name, artifacts) in fetched {
                let artifacts = artifacts.expect("every cell passed, so its kernel was fetched");
                let precompiled = report
                    .cells
                    .iter()
                    .any(|c| c.kernel == name && c.precompiled);
                let kernel = self.load(&artifacts, precompiled)?;
                kernels.insert(
                    name,
                    LoadedKernel {
                        kernel,
                        wasm: artifacts.manifest.wasm,
                    },
                );
            }
        } else {
            self.metrics.runs_blocked.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Prepared {
            notebook,
            bytes,
            report,
            kernels,
        })
    }

    /// The loaded module of `artifacts`: from memory, or loaded now (the signed `.cwasm` when
    /// this engine can use it, else the verified `.wasm` compiled here) and kept.
    fn load(
        &self,
        artifacts: &KernelArtifacts,
        precompiled: bool,
    ) -> Result<crate::runtime::Kernel, ExecutorError> {
        if let Some(kernel) = self
            .loaded
            .lock()
            .expect("module cache")
            .get(&artifacts.manifest_digest)
        {
            return Ok(kernel.clone());
        }
        let verified_cwasm = match (&artifacts.cwasm, artifacts.manifest.cwasm) {
            (Some(bytes), Some(digest)) if precompiled => VerifiedBytes::new(bytes, &digest),
            _ => None,
        };
        // Loading (and compiling, when the `.cwasm` does not fit this engine) takes
        // milliseconds: off the async workers, so that other requests go on being served.
        let kernel = tokio::task::block_in_place(|| match verified_cwasm {
            Some(verified) => self.runtime.load_cwasm(&verified),
            None => self.runtime.load_wasm(&artifacts.wasm),
        })
        .map_err(|err| {
            ExecutorError::Runtime(format!(
                "loading {}@{}: {err:#}",
                artifacts.manifest.krate, artifacts.manifest.version
            ))
        })?;
        let mut loaded = self.loaded.lock().expect("module cache");
        if loaded.len() >= KERNEL_CACHE_LIMIT {
            loaded.clear();
        }
        loaded.insert(artifacts.manifest_digest, kernel.clone());
        Ok(kernel)
    }

    /// Runs a prepared (allowed) notebook, telling `observe` about each cell, and stores the
    /// run. Blocking: call it off the async runtime.
    pub fn execute(
        &self,
        prepared: &Prepared,
        seed: Option<u64>,
        observe: &mut dyn FnMut(CellEvent<'_>),
    ) -> Result<(StoredRun, RunResult), ExecutorError> {
        assert!(prepared.report.allow, "only an allowed notebook runs");
        let result = run::run_observed(
            &self.runtime,
            &prepared.notebook,
            prepared.report.notebook,
            &prepared.kernels,
            seed,
            observe,
        )?;
        let mut all_ok = true;
        for cell in &result.record.cells {
            all_ok &= cell.status == "ok";
            self.metrics.cells.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .fuel
                .fetch_add(cell.metrics.fuel, Ordering::Relaxed);
            self.metrics
                .cell_wall_us
                .fetch_add(cell.metrics.wall_us, Ordering::Relaxed);
        }
        if all_ok {
            self.metrics.runs_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metrics.runs_failed.fetch_add(1, Ordering::Relaxed);
        }
        let stored = self.store.save(&prepared.bytes, &result, now_ms())?;
        Ok((stored, result))
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

    /// Replays `run` with a prepared (allowed) notebook. Blocking.
    pub fn replay(
        &self,
        run: &StoredRun,
        prepared: &Prepared,
    ) -> Result<ReplayReport, ExecutorError> {
        let cells = run::replay(
            &self.runtime,
            &prepared.notebook,
            &run.record,
            &prepared.kernels,
        )?;
        Ok(ReplayReport {
            run: run.id.clone(),
            matches: cells.iter().all(|c| c.matches),
            cells,
        })
    }
}
