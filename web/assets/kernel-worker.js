// The kernel host of browser runs, in a dedicated Web Worker: the page hands it a module whose
// digest and signatures it has already verified, and the worker calls one entry point the way
// the executor's runtime does (`kiln_alloc`, the input copied in, `kiln_entry_NAME(ptr, len)`).
//
// What a kernel gets here, and nothing more:
// - the `kiln` host module: `output` (capped at the cell's output limit), `log`, `error`;
// - the WASI preview 1 functions a kernel uses, with no files (no preopened directories), no
//   network, no arguments and no environment; stdout and stderr are captured (64 KiB); in
//   deterministic mode the clocks are fixed (2026-01-01T00:00:00Z, a monotonic clock at 0) and
//   randomness comes from the run's seed;
// - a linear memory capped at the cell's limit: the module's memory maximum is lowered to it
//   before compiling, so a `memory.grow` past it fails inside the kernel as it does under the
//   executor's limiter.
// The worker's own Content-Security-Policy allows no requests at all (`connect-src 'none'`). The
// page enforces the wall clock by terminating the worker; a browser cannot meter fuel.

const PAGE = 65536;
const MAX_STDIO_BYTES = 64 * 1024;
const OUTPUT_OK = 0;
const OUTPUT_LIMIT = 1;
const STATUS_OK = 0;
const ERRNO = { SUCCESS: 0, BADF: 8, INVAL: 28, NOSYS: 52, NOTSUP: 58, SPIPE: 70 };
/** 2026-01-01T00:00:00Z in nanoseconds: the deterministic wall clock, as the executor's. */
const FIXED_WALL_NS = 1767225600n * 1000000000n;

/** Compiled modules by digest and memory cap, and modules' bytes by digest, kept while this
 * worker lives (the page sends a module's bytes once per worker). */
const compiled = new Map();
const modules = new Map();

class CallError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

class Exit extends Error {
  constructor(status) {
    super(`the kernel exited with status ${status}`);
    this.status = status;
  }
}

function readLeb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (at >= bytes.length) throw new CallError("contract", "the module is truncated");
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return [value, at];
    if (shift > 35) throw new CallError("contract", "a malformed LEB128 number");
  }
}

function leb(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/**
 * `wasm` with its memory's maximum lowered to `maxPages` (the memory section rewritten, every
 * other byte kept). Throws `memory-limit` when the memory's initial size is already over it.
 */
export function capMemory(wasm, maxPages) {
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, start] = readLeb(wasm, at + 1);
    const end = start + size;
    if (id === 5) {
      let [count, p] = readLeb(wasm, start);
      const limits = [...leb(count)];
      for (let i = 0; i < count; i += 1) {
        const flags = wasm[p++];
        if (flags & 0x04) throw new CallError("contract", "a 64-bit memory, which kiln kernels do not use");
        let min;
        let max = null;
        [min, p] = readLeb(wasm, p);
        if (flags & 0x01) [max, p] = readLeb(wasm, p);
        const capped = max === null ? maxPages : Math.min(max, maxPages);
        if (min > capped) {
          throw new CallError("memory-limit", `memory limit: the kernel's initial memory (${min * PAGE} bytes) is over the cell's limit of ${maxPages * PAGE} bytes`);
        }
        limits.push(flags | 0x01, ...leb(min), ...leb(capped));
      }
      if (p !== end) throw new CallError("contract", "a malformed memory section");
      const head = [5, ...leb(limits.length)];
      const out = new Uint8Array(at + head.length + limits.length + (wasm.length - end));
      out.set(wasm.subarray(0, at));
      out.set(head, at);
      out.set(limits, at + head.length);
      out.set(wasm.subarray(end), at + head.length + limits.length);
      return out;
    }
    at = end;
  }
  return wasm;
}

/** SplitMix64 from the run's seed: the deterministic mode's random bytes. */
function seededRandom(seed) {
  let state = BigInt.asUintN(64, BigInt(seed));
  return (target) => {
    for (let i = 0; i < target.length; i += 8) {
      state = BigInt.asUintN(64, state + 0x9e3779b97f4a7c15n);
      let z = state;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      z ^= z >> 31n;
      for (let j = 0; j < 8 && i + j < target.length; j += 1) target[i + j] = Number((z >> BigInt(8 * j)) & 0xffn);
    }
  };
}

function systemRandom(target) {
  for (let i = 0; i < target.length; i += 65536) crypto.getRandomValues(target.subarray(i, i + 65536));
}

/** One call: the host functions, bound to the instance's memory once it exists. */
function host(request, state) {
  const memory = () => state.instance.exports.memory;
  const view = () => new DataView(memory().buffer);
  const bytesAt = (ptr, len) => {
    const buffer = memory().buffer;
    if (ptr < 0 || len < 0 || ptr + len > buffer.byteLength) throw new CallError("trap", "trap: the kernel passed a range outside its memory");
    return new Uint8Array(buffer, ptr, len);
  };
  const text = (ptr, len) => new TextDecoder().decode(bytesAt(ptr, len));
  const deterministic = request.seed !== null && request.seed !== undefined;
  const random = deterministic ? seededRandom(request.seed) : systemRandom;
  const stdio = (bytes) => {
    const room = MAX_STDIO_BYTES - state.stdioLength;
    if (room <= 0) return;
    const kept = bytes.slice(0, room);
    state.stdio.push(kept);
    state.stdioLength += kept.length;
  };
  const kiln = {
    output(ptr, len) {
      if (state.outputLength + len > request.limits.output_bytes) {
        state.outputExceeded = true;
        return OUTPUT_LIMIT;
      }
      state.output.push(bytesAt(ptr, len).slice());
      state.outputLength += len;
      return OUTPUT_OK;
    },
    log(level, ptr, len) {
      if (state.logs.length < 1000) state.logs.push([level, text(ptr, len)]);
    },
    error(ptr, len) {
      state.error = text(ptr, Math.min(len, 64 * 1024));
    },
  };
  const wasi = {
    args_sizes_get(argc, size) {
      view().setUint32(argc, 0, true);
      view().setUint32(size, 0, true);
      return ERRNO.SUCCESS;
    },
    args_get: () => ERRNO.SUCCESS,
    environ_sizes_get(count, size) {
      view().setUint32(count, 0, true);
      view().setUint32(size, 0, true);
      return ERRNO.SUCCESS;
    },
    environ_get: () => ERRNO.SUCCESS,
    clock_res_get(id, out) {
      if (id > 1) return ERRNO.INVAL;
      view().setBigUint64(out, deterministic ? 1000000000n : 1000n, true);
      return ERRNO.SUCCESS;
    },
    clock_time_get(id, _precision, out) {
      let now;
      if (id === 0) now = deterministic ? FIXED_WALL_NS : BigInt(Date.now()) * 1000000n;
      else if (id === 1) now = deterministic ? 0n : BigInt(Math.round(performance.now() * 1e6));
      else return ERRNO.INVAL;
      view().setBigUint64(out, now, true);
      return ERRNO.SUCCESS;
    },
    random_get(ptr, len) {
      random(bytesAt(ptr, len));
      return ERRNO.SUCCESS;
    },
    fd_write(fd, iovs, count, written) {
      if (fd !== 1 && fd !== 2) return ERRNO.BADF;
      let total = 0;
      for (let i = 0; i < count; i += 1) {
        const ptr = view().getUint32(iovs + i * 8, true);
        const len = view().getUint32(iovs + i * 8 + 4, true);
        stdio(bytesAt(ptr, len));
        total += len;
      }
      view().setUint32(written, total, true);
      return ERRNO.SUCCESS;
    },
    fd_read(fd, _iovs, _count, read) {
      if (fd !== 0) return ERRNO.BADF;
      view().setUint32(read, 0, true);
      return ERRNO.SUCCESS;
    },
    fd_fdstat_get(fd, out) {
      if (fd > 2) return ERRNO.BADF;
      const v = view();
      v.setUint8(out, 2); // a character device
      v.setUint16(out + 2, 0, true);
      v.setBigUint64(out + 8, 0n, true);
      v.setBigUint64(out + 16, 0n, true);
      return ERRNO.SUCCESS;
    },
    fd_fdstat_set_flags: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.NOTSUP),
    fd_close: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.SUCCESS),
    fd_seek: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.SPIPE),
    // No preopened directories: the first look ends the list.
    fd_prestat_get: () => ERRNO.BADF,
    fd_prestat_dir_name: () => ERRNO.BADF,
    sched_yield: () => ERRNO.SUCCESS,
    poll_oneoff: () => ERRNO.NOTSUP,
    proc_exit(status) {
      throw new Exit(status);
    },
  };
  return { kiln, wasi_snapshot_preview1: wasi };
}

/** The import object for `module`: only the functions the module imports, from `kiln` and WASI. */
function imports(module, functions) {
  const out = {};
  for (const item of WebAssembly.Module.imports(module)) {
    const provided = functions[item.module]?.[item.name];
    if (item.kind !== "function" || !(item.module in functions)) {
      throw new CallError("contract", `contract: the module imports ${item.module}.${item.name}, which a browser run does not provide`);
    }
    out[item.module] ??= {};
    // A WASI function kiln does not implement answers ENOSYS, as an unsupported call would.
    out[item.module][item.name] = provided ?? (() => ERRNO.NOSYS);
  }
  return out;
}

async function moduleFor(request) {
  const maxPages = Math.max(1, Math.floor(request.limits.memory_bytes / PAGE));
  const key = `${request.digest}:${maxPages}`;
  if (request.wasm) modules.set(request.digest, new Uint8Array(request.wasm));
  if (!compiled.has(key)) {
    const wasm = modules.get(request.digest);
    if (!wasm) throw new CallError("contract", `contract: the worker was not given module ${request.digest}`);
    compiled.set(key, WebAssembly.compile(capMemory(wasm, maxPages)));
  }
  try {
    return await compiled.get(key);
  } catch (err) {
    compiled.delete(key);
    throw err instanceof CallError ? err : new CallError("contract", `contract: ${err.message}`);
  }
}

function concat(chunks, total) {
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

async function call(request) {
  const started = performance.now();
  const state = { instance: null, output: [], outputLength: 0, outputExceeded: false, logs: [], error: null, stdio: [], stdioLength: 0 };
  let status;
  let failure = null;
  try {
    const module = await moduleFor(request);
    const functions = host(request, state);
    state.instance = new WebAssembly.Instance(module, imports(module, functions));
    const exports = state.instance.exports;
    const entry = exports[`kiln_entry_${request.entry}`];
    if (typeof entry !== "function") throw new CallError("contract", `contract: the kernel has no entry point \`${request.entry}\``);
    if (typeof exports.kiln_alloc !== "function" || !(exports.memory instanceof WebAssembly.Memory)) {
      throw new CallError("contract", "contract: the kernel exports no `kiln_alloc` or no memory");
    }
    const input = new Uint8Array(request.input);
    postMessage({ type: "started" });
    const ptr = exports.kiln_alloc(input.length);
    if (ptr === 0 && input.length > 0) throw new CallError("memory-limit", `memory limit: the kernel tried to grow its memory past ${request.limits.memory_bytes} bytes`);
    new Uint8Array(exports.memory.buffer, ptr, input.length).set(input);
    status = entry(ptr, input.length);
  } catch (err) {
    failure = err;
  }
  const memory = state.instance?.exports.memory;
  const peak = memory instanceof WebAssembly.Memory ? memory.buffer.byteLength : 0;
  const stdio = concat(state.stdio, state.stdioLength);
  const metrics = {
    fuel: null,
    wall_us: Math.round((performance.now() - started) * 1000),
    peak_memory_bytes: peak,
    output_bytes: state.outputLength,
  };
  let error = null;
  if (failure instanceof CallError) {
    error = { code: failure.code, message: failure.message };
  } else if (failure instanceof Exit) {
    error = { code: "trap", message: `trap: ${failure.message}` };
  } else if (failure instanceof RangeError && /call stack/i.test(failure.message)) {
    error = { code: "stack-overflow", message: "stack overflow: the kernel recursed too deep" };
  } else if (failure) {
    // A trap. A failed allocation (the memory cap reached) aborts with std's message first.
    const atCap = peak + PAGE > request.limits.memory_bytes;
    const allocFailed = /memory allocation of \d+ bytes failed/.test(new TextDecoder().decode(stdio));
    if (state.outputExceeded) {
      error = { code: "output-limit", message: `output limit: the kernel wrote more than ${request.limits.output_bytes} bytes of output` };
    } else if (allocFailed || atCap) {
      error = { code: "memory-limit", message: `memory limit: the kernel tried to grow its memory past ${request.limits.memory_bytes} bytes` };
    } else {
      error = { code: "trap", message: `trap: ${failure.message}` };
    }
  } else if (state.outputExceeded) {
    error = { code: "output-limit", message: `output limit: the kernel wrote more than ${request.limits.output_bytes} bytes of output` };
  } else if (status !== STATUS_OK) {
    error = { code: "kernel-error", message: `kernel error: ${state.error ?? `the kernel returned status ${status}`}` };
  }
  const output = error ? null : concat(state.output, state.outputLength);
  postMessage(
    { type: "done", output, error, logs: state.logs, stdio, metrics },
    output ? [output.buffer, stdio.buffer] : [stdio.buffer],
  );
}

onmessage = (event) => {
  if (event.data?.type === "call") call(event.data);
};
