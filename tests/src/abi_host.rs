//! A minimal host for kernel ABI v1, enough to prove the contract end to end: it places the
//! input with `kiln_alloc`, calls one entry point, and collects the output chunks, the log
//! lines and the reported error. It gives the module WASI preview 1 with nothing in it: no
//! preopened directories, no environment, no arguments, captured stdout and stderr.
//!
//! The executor (`kiln-executor`) is the production host, with policy, limits and pooling; this
//! one exists so the SDK and the contract are tested on their own.

use wasmtime::error::Context as _;
use wasmtime::{Caller, Engine, Linker, Module, Result, Store, bail, format_err};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// The state of one call.
struct CallState {
    wasi: WasiP1Ctx,
    chunks: Vec<Vec<u8>>,
    output_bytes: usize,
    output_limit: usize,
    logs: Vec<(i32, String)>,
    error: Option<String>,
}

/// What one call of an entry point produced.
#[derive(Debug)]
pub struct CallOutcome {
    /// The status the entry point returned (0 ok, 1 error).
    pub status: i32,
    /// The output chunks, in order.
    pub chunks: Vec<Vec<u8>>,
    /// `kiln.log` lines with their levels.
    pub logs: Vec<(i32, String)>,
    /// The message given to `kiln.error`.
    pub error: Option<String>,
    /// What the module wrote to WASI stderr.
    pub stderr: Vec<u8>,
}

impl CallOutcome {
    /// All output chunks joined.
    pub fn output(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// The output as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.output()).expect("UTF-8 output")
    }
}

fn read_guest_str(caller: &mut Caller<'_, CallState>, ptr: i32, len: i32) -> Result<String> {
    let bytes = read_guest(caller, ptr, len)?;
    String::from_utf8(bytes).context("kernel passed text that is not UTF-8")
}

fn read_guest(caller: &mut Caller<'_, CallState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| format_err!("kernel exports no memory"))?;
    let start = usize::try_from(ptr).context("negative pointer")?;
    let len = usize::try_from(len).context("negative length")?;
    let data = memory.data(&*caller);
    let end = start.checked_add(len).filter(|end| *end <= data.len());
    let end = end.ok_or_else(|| format_err!("kernel passed a range outside its memory"))?;
    Ok(data[start..end].to_vec())
}

/// Runs `entry` of `module` on `input`, accepting at most `output_limit` bytes of output.
pub fn call(
    engine: &Engine,
    module: &Module,
    entry: &str,
    input: &[u8],
    output_limit: usize,
) -> Result<CallOutcome> {
    let mut linker: Linker<CallState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state| &mut state.wasi)?;
    linker.func_wrap(
        "kiln",
        "output",
        |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| -> Result<i32> {
            let chunk = read_guest(&mut caller, ptr, len)?;
            let state = caller.data_mut();
            if state.output_bytes + chunk.len() > state.output_limit {
                return Ok(1);
            }
            state.output_bytes += chunk.len();
            state.chunks.push(chunk);
            Ok(0)
        },
    )?;
    linker.func_wrap(
        "kiln",
        "log",
        |mut caller: Caller<'_, CallState>, level: i32, ptr: i32, len: i32| -> Result<()> {
            let line = read_guest_str(&mut caller, ptr, len)?;
            caller.data_mut().logs.push((level, line));
            Ok(())
        },
    )?;
    linker.func_wrap(
        "kiln",
        "error",
        |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| -> Result<()> {
            let message = read_guest_str(&mut caller, ptr, len)?;
            caller.data_mut().error = Some(message);
            Ok(())
        },
    )?;

    let stderr = MemoryOutputPipe::new(64 * 1024);
    let wasi = WasiCtxBuilder::new()
        .stdout(MemoryOutputPipe::new(64 * 1024))
        .stderr(stderr.clone())
        .build_p1();
    let mut store = Store::new(
        engine,
        CallState {
            wasi,
            chunks: Vec::new(),
            output_bytes: 0,
            output_limit,
            logs: Vec::new(),
            error: None,
        },
    );
    store.set_fuel(u64::MAX)?;
    store.set_epoch_deadline(u64::MAX);
    let instance = linker.instantiate(&mut store, module)?;
    let alloc = instance.get_typed_func::<i32, i32>(&mut store, "kiln_alloc")?;
    let func =
        instance.get_typed_func::<(i32, i32), i32>(&mut store, &format!("kiln_entry_{entry}"))?;
    let len = i32::try_from(input.len()).context("input larger than 2 GiB")?;
    let ptr = alloc.call(&mut store, len)?;
    if ptr == 0 {
        bail!("kiln_alloc({len}) failed");
    }
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| format_err!("kernel exports no memory"))?;
    memory.write(&mut store, ptr as usize, input)?;
    let status = func.call(&mut store, (ptr, len))?;
    let state = store.into_data();
    Ok(CallOutcome {
        status,
        chunks: state.chunks,
        logs: state.logs,
        error: state.error,
        stderr: stderr.contents().to_vec(),
    })
}
