//! The kernel runtime: one wasmtime engine (the shared settings of [`kiln_engine`] plus the
//! pooling allocator), an epoch ticker as the wall-clock backstop, and calls of a kernel's entry
//! points under a cell's limits:
//!
//! - fuel is the budget and the cost unit; the epoch deadline stops a kernel that outlives its
//!   wall-clock limit even when its fuel is generous;
//! - a [`ResourceLimiter`] caps linear memory (and tables and instances) and records the peak;
//! - WASI preview 1 with no preopened directories, no environment and no arguments; stdout and
//!   stderr are captured and capped; in deterministic mode the clocks are fixed and randomness
//!   is seeded, so a run can be replayed bit for bit;
//! - a kernel that cannot wait on the host (it does not import `poll_oneoff`) is linked to
//!   WASI's asynchronous functions, which answer at once and need no tokio runtime, so that it
//!   can be called on any thread, an async worker's included; a kernel that can wait is linked
//!   to WASI's blocking functions, which sleep on the ambient tokio runtime and so must be
//!   called off its async workers. Every call is driven to completion on the calling thread;
//! - output chunks arrive through `kiln.output` and are capped by the cell's output limit;
//! - every way a call ends has a name ([`CallError`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kiln_abi as abi;
use wasmtime::error::Context as _;
use wasmtime::{
    Caller, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, ModuleExport,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap, UpdateDeadline, format_err,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// How often the epoch advances: the resolution of wall-clock limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// The most stdout and stderr kept per call.
pub const MAX_STDIO_BYTES: usize = 64 * 1024;
/// How much of each pooled memory and table stays resident between calls (zeroed, not
/// decommitted).
pub const KEEP_RESIDENT_BYTES: usize = 4 << 20;
/// The largest linear memory any cell may have (the pool reserves this per slot).
pub const MAX_MEMORY_BYTES: u64 = 1 << 30;

/// A cell's limits for one call.
pub use kiln_policy::preflight::Limits;

/// Why a call did not complete normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The kernel used all its fuel.
    #[error("out of fuel: the cell's budget of {0} fuel was used up")]
    OutOfFuel(u64),
    /// The kernel ran past its wall-clock limit.
    #[error("deadline: the cell ran past its limit of {0} ms")]
    Deadline(u64),
    /// The kernel tried to grow its memory beyond the limit.
    #[error("memory limit: the kernel tried to grow its memory past {0} bytes")]
    MemoryLimit(u64),
    /// The kernel recursed too deep.
    #[error("stack overflow: the kernel recursed too deep")]
    StackOverflow,
    /// The kernel wrote more output than allowed.
    #[error("output limit: the kernel wrote more than {0} bytes of output")]
    OutputLimit(u64),
    /// The kernel reported an error (`kiln.error`, status 1).
    #[error("kernel error: {0}")]
    Kernel(String),
    /// Another trap (unreachable, out-of-bounds access, …) or a host failure.
    #[error("trap: {0}")]
    Trap(String),
    /// The module is not a kiln kernel, or lacks the entry point.
    #[error("contract: {0}")]
    Contract(String),
    /// The run was stopped from outside (its client went away).
    #[error("cancelled: the run was stopped before the cell finished")]
    Cancelled,
}

impl CallError {
    /// A stable code for reports and APIs.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::OutOfFuel(_) => "out-of-fuel",
            CallError::Deadline(_) => "deadline",
            CallError::MemoryLimit(_) => "memory-limit",
            CallError::StackOverflow => "stack-overflow",
            CallError::OutputLimit(_) => "output-limit",
            CallError::Kernel(_) => "kernel-error",
            CallError::Trap(_) => "trap",
            CallError::Contract(_) => "contract",
            CallError::Cancelled => "cancelled",
        }
    }
}

/// A run's stop switch, shared by the thread that runs it and whoever may stop it (the request
/// that asked for it, when its client goes away). A call in progress stops within a few epoch
/// ticks of [`Cancel::cancel`]; the calls after it do not start.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Stops the run.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the run was stopped.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How many epoch ticks pass between two looks at a call's wall clock and stop switch: every
/// tick, so that a call stops within a tick or two of its limit (the look costs nanoseconds).
const CHECK_TICKS: u64 = 1;

/// What a call cost (the run record carries it).
pub use kiln_wire::runs::CellMetrics as Metrics;

/// What one call produced.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The output (all chunks, in order), or why there is none.
    pub result: Result<Vec<u8>, CallError>,
    /// `kiln.log` lines with their levels.
    pub logs: Vec<(i32, String)>,
    /// What the kernel wrote to stdout and stderr (capped).
    pub stdio: Vec<u8>,
    /// Measurements.
    pub metrics: Metrics,
}

/// The state of one call, inside its store.
struct CellState {
    wasi: WasiP1Ctx,
    output: Vec<u8>,
    output_limit: u64,
    output_exceeded: bool,
    logs: Vec<(i32, String)>,
    error: Option<String>,
    memory_limit: u64,
    memory_exceeded: bool,
    peak_memory: u64,
}

impl ResourceLimiter for CellState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// A kernel ready to call: its module linked against the host, instantiated per call, with its
/// exports looked up once.
#[derive(Clone)]
pub struct Kernel {
    pre: InstancePre<CellState>,
    alloc: Option<ModuleExport>,
    memory: Option<ModuleExport>,
    entries: HashMap<String, ModuleExport>,
    may_wait: bool,
}

/// The WASI functions with which a kernel can wait on the host rather than compute
/// (`poll_oneoff` sleeps). Stdin is empty and there are no files or sockets, so every other
/// function answers at once.
const WAITING_IMPORTS: [&str; 1] = ["poll_oneoff"];

impl Kernel {
    /// Whether a call can wait on the host (it imports WASI's `poll_oneoff`, which sleeps).
    /// A call that cannot spends its time computing, so its fuel bounds its time.
    pub fn may_wait(&self) -> bool {
        self.may_wait
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").finish_non_exhaustive()
    }
}

/// The engine, its epoch ticker and the host linkers.
pub struct Runtime {
    engine: Engine,
    /// The host of kernels that cannot wait: WASI's asynchronous functions.
    linker: Linker<CellState>,
    /// The host of kernels that can wait ([`Kernel::may_wait`]): WASI's blocking functions.
    waiting_linker: Linker<CellState>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn guest_bytes(
    caller: &mut Caller<'_, CellState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| format_err!("the kernel exports no memory"))?;
    let start = usize::try_from(ptr).context("a negative pointer")?;
    let len = usize::try_from(len).context("a negative length")?;
    let data = memory.data(&*caller);
    let end = start
        .checked_add(len)
        .filter(|end| *end <= data.len())
        .ok_or_else(|| format_err!("the kernel passed a range outside its memory"))?;
    Ok(data[start..end].to_vec())
}

/// A wall clock that always says the same time (deterministic mode).
struct FixedWallClock;

impl wasmtime_wasi::HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        // 2026-01-01T00:00:00Z.
        Duration::from_secs(1_767_225_600)
    }
}

/// A monotonic clock that does not move (deterministic mode).
struct FixedMonotonicClock;

impl wasmtime_wasi::HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Adds kiln's own host functions (`kiln.output`, `kiln.log`, `kiln.error`) to `linker`.
fn add_kiln_host(linker: &mut Linker<CellState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        abi::HOST_MODULE,
        "output",
        |mut caller: Caller<'_, CellState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let chunk = guest_bytes(&mut caller, ptr, len)?;
            let state = caller.data_mut();
            if state.output.len() as u64 + chunk.len() as u64 > state.output_limit {
                state.output_exceeded = true;
                return Ok(abi::OUTPUT_LIMIT);
            }
            state.output.extend_from_slice(&chunk);
            Ok(abi::OUTPUT_OK)
        },
    )?;
    linker.func_wrap(
        abi::HOST_MODULE,
        "log",
        |mut caller: Caller<'_, CellState>,
         level: i32,
         ptr: i32,
         len: i32|
         -> wasmtime::Result<()> {
            let line = guest_bytes(&mut caller, ptr, len)?;
            let state = caller.data_mut();
            if state.logs.len() < 1000 {
                state
                    .logs
                    .push((level, String::from_utf8_lossy(&line).into_owned()));
            }
            Ok(())
        },
    )?;
    linker.func_wrap(
        abi::HOST_MODULE,
        "error",
        |mut caller: Caller<'_, CellState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let message = guest_bytes(&mut caller, ptr, len.min(64 * 1024))?;
            caller.data_mut().error = Some(String::from_utf8_lossy(&message).into_owned());
            Ok(())
        },
    )?;
    Ok(())
}

impl Runtime {
    /// A runtime with the pooling allocator sized for `slots` concurrent calls.
    pub fn new(slots: u32) -> wasmtime::Result<Self> {
        let mut config = kiln_engine::config();
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots * 4)
            .max_memory_size(MAX_MEMORY_BYTES as usize)
            .max_memories_per_module(1)
            .max_tables_per_module(4)
            // Reset the first pages of a slot with memset instead of returning them to the
            // kernel: small calls then neither fault pages in nor flush TLBs on teardown. The
            // memory is zeroed either way. Where Linux has PAGEMAP_SCAN (6.7+), only the pages
            // a call dirtied are reset, so a Rust kernel (a 1 MiB stack below its data) does
            // not pay for a megabyte of memset per call.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES)
            .pagemap_scan(wasmtime::Enabled::Auto)
            // Every call runs on a fiber stack of its own (`call_async`), one per instance.
            .total_stacks(slots);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker: Linker<CellState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state| &mut state.wasi)?;
        add_kiln_host(&mut linker)?;
        let mut waiting_linker: Linker<CellState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut waiting_linker, |state| &mut state.wasi)?;
        add_kiln_host(&mut waiting_linker)?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kiln-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .context("starting the epoch ticker")?;
        }
        Ok(Self {
            engine,
            linker,
            waiting_linker,
            stop,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a `.wasm` module and links it.
    pub fn load_wasm(&self, wasm: &[u8]) -> wasmtime::Result<Kernel> {
        let module = Module::new(&self.engine, wasm)?;
        self.link(&module)
    }

    /// Loads a precompiled `.cwasm`. `verified` is the proof that a trusted signature covers
    /// these exact bytes: the only way to get one is [`VerifiedBytes::new`], which re-hashes
    /// them against the digest the signature names.
    #[allow(
        unsafe_code,
        reason = "the one reviewed unsafe: Module::deserialize trusts its input, which is why it \
                  only ever sees bytes whose SHA-256 a verified signature covers"
    )]
    pub fn load_cwasm(&self, verified: &VerifiedBytes<'_>) -> wasmtime::Result<Kernel> {
        // SAFETY: `verified.bytes` hash to a digest a trusted key signed as the output of
        // kiln's builder, which produced them with `Engine::precompile_module` and this
        // engine's settings; wasmtime also checks the compatibility header before loading.
        let module = unsafe { Module::deserialize(&self.engine, verified.bytes)? };
        self.link(&module)
    }

    fn link(&self, module: &Module) -> wasmtime::Result<Kernel> {
        let entries = module
            .exports()
            .filter_map(|e| e.name().strip_prefix(abi::ENTRY_PREFIX).map(str::to_owned))
            .filter_map(|entry| {
                let export = module.get_export_index(&format!("{}{entry}", abi::ENTRY_PREFIX))?;
                Some((entry, export))
            })
            .collect();
        let may_wait = module
            .imports()
            .any(|i| i.module() == "wasi_snapshot_preview1" && WAITING_IMPORTS.contains(&i.name()));
        let linker = if may_wait {
            &self.waiting_linker
        } else {
            &self.linker
        };
        Ok(Kernel {
            pre: linker.instantiate_pre(module)?,
            alloc: module.get_export_index(abi::ALLOC_EXPORT),
            memory: module.get_export_index("memory"),
            entries,
            may_wait,
        })
    }

    /// Calls `entry` of `kernel` on `input` under `limits`; `deterministic` fixes the clocks
    /// and seeds randomness with `seed`.
    pub fn call(
        &self,
        kernel: &Kernel,
        entry: &str,
        input: &[u8],
        limits: &Limits,
        deterministic: Option<u64>,
    ) -> CallOutcome {
        self.call_until(
            kernel,
            entry,
            input,
            limits,
            deterministic,
            &Cancel::default(),
        )
    }

    /// [`Runtime::call`], stopped early when `cancel` is set.
    pub fn call_until(
        &self,
        kernel: &Kernel,
        entry: &str,
        input: &[u8],
        limits: &Limits,
        deterministic: Option<u64>,
        cancel: &Cancel,
    ) -> CallOutcome {
        let started = Instant::now();
        let stdio = MemoryOutputPipe::new(MAX_STDIO_BYTES);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdio.clone()).stderr(stdio.clone());
        if let Some(seed) = deterministic {
            use rand_010::SeedableRng as _;
            wasi.wall_clock(FixedWallClock)
                .monotonic_clock(FixedMonotonicClock)
                .secure_random(rand_010::rngs::StdRng::seed_from_u64(seed))
                .insecure_random(rand_010::rngs::StdRng::seed_from_u64(seed ^ 0x6b69_6c6e))
                .insecure_random_seed(u128::from(seed));
        }
        let mut store = Store::new(
            &self.engine,
            CellState {
                wasi: wasi.build_p1(),
                output: Vec::new(),
                output_limit: limits.output_bytes,
                output_exceeded: false,
                logs: Vec::new(),
                error: None,
                memory_limit: limits.memory_bytes.min(MAX_MEMORY_BYTES),
                memory_exceeded: false,
                peak_memory: 0,
            },
        );
        store.limiter(|state| state);
        // Nothing in the call waits on a future that another thread must wake (see the module's
        // documentation), so it completes on this thread.
        let result =
            futures::executor::block_on(self.run(&mut store, kernel, entry, input, limits, cancel));
        let fuel_left = store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        let result = result.and_then(|status| {
            if state.output_exceeded {
                Err(CallError::OutputLimit(limits.output_bytes))
            } else if status == abi::STATUS_OK {
                Ok(())
            } else {
                Err(CallError::Kernel(state.error.clone().unwrap_or_else(
                    || format!("the kernel returned status {status}"),
                )))
            }
        });
        let result = match result {
            Err(CallError::Deadline(_)) if cancel.is_cancelled() => Err(CallError::Cancelled),
            Err(CallError::Trap(_)) if state.memory_exceeded => {
                Err(CallError::MemoryLimit(state.memory_limit))
            }
            Err(CallError::Trap(_)) if state.output_exceeded => {
                Err(CallError::OutputLimit(limits.output_bytes))
            }
            other => other,
        };
        CallOutcome {
            metrics: Metrics {
                fuel: limits.fuel.saturating_sub(fuel_left),
                wall_us: started.elapsed().as_micros() as u64,
                peak_memory_bytes: state.peak_memory,
                output_bytes: state.output.len() as u64,
            },
            result: result.map(|()| state.output),
            logs: state.logs,
            stdio: {
                let contents = stdio.contents();
                if contents.is_empty() {
                    Vec::new()
                } else {
                    contents.to_vec()
                }
            },
        }
    }

    async fn run(
        &self,
        store: &mut Store<CellState>,
        kernel: &Kernel,
        entry: &str,
        input: &[u8],
        limits: &Limits,
        cancel: &Cancel,
    ) -> Result<i32, CallError> {
        let trap = |err: wasmtime::Error| match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => CallError::OutOfFuel(limits.fuel),
            Some(Trap::Interrupt) => CallError::Deadline(limits.wall_ms),
            Some(Trap::StackOverflow) => CallError::StackOverflow,
            _ => CallError::Trap(
                format!("{err:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
        };
        store
            .set_fuel(limits.fuel)
            .map_err(|err| CallError::Trap(err.to_string()))?;
        if cancel.is_cancelled() {
            return Err(CallError::Cancelled);
        }
        // Every few ticks the call looks at its wall clock and its run's stop switch.
        let deadline = Instant::now() + Duration::from_millis(limits.wall_ms.max(1));
        let cancel = cancel.clone();
        store.set_epoch_deadline(CHECK_TICKS);
        store.epoch_deadline_callback(move |_| {
            if cancel.is_cancelled() || Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(CHECK_TICKS))
            }
        });
        let entry_export = kernel.entries.get(entry).ok_or_else(|| {
            CallError::Contract(format!("the kernel has no entry point `{entry}`"))
        })?;
        let instance = kernel
            .pre
            .instantiate_async(&mut *store)
            .await
            .map_err(trap)?;
        let func = |store: &mut Store<CellState>, export: Option<&ModuleExport>, what: &str| {
            export
                .and_then(|e| instance.get_module_export(&mut *store, e))
                .and_then(|e| e.into_func())
                .ok_or_else(|| {
                    CallError::Contract(format!("the kernel exports no function `{what}`"))
                })
        };
        let alloc = func(store, kernel.alloc.as_ref(), abi::ALLOC_EXPORT)?
            .typed::<i32, i32>(&*store)
            .map_err(|err| CallError::Contract(err.to_string()))?;
        let func = func(store, Some(entry_export), entry)?
            .typed::<(i32, i32), i32>(&*store)
            .map_err(|err| CallError::Contract(format!("`{entry}`: {err}")))?;
        let len = i32::try_from(input.len())
            .map_err(|_| CallError::Contract("the input is larger than 2 GiB".into()))?;
        let ptr = alloc.call_async(&mut *store, len).await.map_err(trap)?;
        if ptr == 0 && len > 0 {
            return Err(CallError::MemoryLimit(store.data().memory_limit));
        }
        let memory = kernel
            .memory
            .as_ref()
            .and_then(|e| instance.get_module_export(&mut *store, e))
            .and_then(|e| e.into_memory())
            .ok_or_else(|| CallError::Contract("the kernel exports no memory".into()))?;
        memory
            .write(&mut *store, ptr as usize, input)
            .map_err(|err| CallError::Trap(err.to_string()))?;
        func.call_async(&mut *store, (ptr, len)).await.map_err(trap)
    }
}

/// Bytes whose SHA-256 equals a digest a verified signature covers.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedBytes<'a> {
    bytes: &'a [u8],
}

impl<'a> VerifiedBytes<'a> {
    /// `bytes`, when they hash to `signed` (a subject of a statement that verified). `None`
    /// when even one byte differs: such bytes never reach `Module::deserialize`.
    pub fn new(bytes: &'a [u8], signed: &kiln_policy::Digest) -> Option<Self> {
        (kiln_policy::Digest::of(bytes) == *signed).then_some(Self { bytes })
    }

    /// The bytes of `blob`, when the digest they were checked against when fetched is `signed`
    /// (no second hash of a module already hashed on arrival).
    pub fn of_checked(
        blob: &'a crate::fetch::CheckedBlob,
        signed: &kiln_policy::Digest,
    ) -> Option<Self> {
        (blob.digest() == *signed).then_some(Self {
            bytes: blob.bytes(),
        })
    }
}

#[cfg(test)]
mod tests;
