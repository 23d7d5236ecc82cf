// Browser runs: a notebook verified and run in this page, with the same events as the
// executor's NDJSON stream so that the editor shows both alike.
//
// Before a byte of a kernel runs here the page fetches what the executor's preflight looks at
// (the kernel's listing, manifest, module, provenance, audit and review bundles, and the signed
// revocation list), checks every digest and signature against the trust file (verify.js), and
// decides each cell with the same rules and reason codes. Artifacts are kept in Cache Storage by
// digest: one whose digest is cached is not fetched again, and a cached entry whose bytes no
// longer match is dropped and fetched again. Kernels run in a Web Worker (kernel-worker.js);
// the wall clock is enforced here by terminating it.

import { ApiError, request } from "./api.js";
import { Keyring, canonicalJson, decide, defaultGrants, digestOf, fromBase64, verifyRevocations } from "./verify.js";

const ARTIFACTS = "kiln-artifacts-v1";
const LAST_GOOD = "kiln-last-good-v1";
const TRUST_PIN = "kiln-trust-digest";
const encoder = new TextEncoder();

/** Figures a test or a person can read: artifact fetches, cache hits, verification time. */
export const stats = { fetched: 0, cached: 0, refetched: 0, calls: 0, verifyMs: [] };

/** A cell refused before it ran, or a run that could not start. */
class Refused extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * GET `path` from the network; offline (the network fails), the last good answer kept in Cache
 * Storage. Answers `{bytes, offline}`.
 */
async function fetchKept(path) {
  const kept = await caches.open(LAST_GOOD);
  try {
    const response = await request("GET", path);
    const bytes = new Uint8Array(await response.arrayBuffer());
    // Kept for later, off the run's path.
    kept.put(path, new Response(bytes)).catch(() => {});
    return { bytes, offline: false };
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const hit = await kept.match(path);
    if (!hit) throw err;
    return { bytes: new Uint8Array(await hit.arrayBuffer()), offline: true };
  }
}

/**
 * The blob `digest`, from Cache Storage when its bytes still hash to it, else fetched, checked
 * and kept. Throws Refused `digest-mismatch` when the bytes that arrive are not `digest`, and
 * `revoked` when the registry refuses them as revoked.
 */
export async function artifact(digest, what) {
  const cache = await caches.open(ARTIFACTS);
  const key = `/v1/artifacts/${digest}`;
  const hit = await cache.match(key);
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if ((await digestOf(bytes)) === digest) {
      stats.cached += 1;
      return bytes;
    }
    // Damaged or tampered with since it was kept: dropped, and fetched again.
    await cache.delete(key);
    stats.refetched += 1;
  }
  let response;
  try {
    // Kept here, by digest, and checked: not in the HTTP cache too.
    response = await request("GET", key, { cache: "no-store" });
  } catch (err) {
    if (err instanceof ApiError && err.status === 451) throw new Refused("revoked", `${what}: ${err.message}`);
    throw new Refused("unavailable", `${what}: ${err.message}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  stats.fetched += 1;
  const got = await digestOf(bytes);
  if (got !== digest) throw new Refused("digest-mismatch", `${what}: the bytes fetched are ${got}, not ${digest}`);
  await cache.put(key, new Response(bytes));
  return bytes;
}

/**
 * Forgets what this page kept of the signed-in person's API answers (on sign-out); kept
 * artifacts stay, as they are named by digest and public to every runner.
 */
export async function forgetSession() {
  await caches.delete(LAST_GOOD);
  const app = await caches.open("kiln-app-v1");
  for (const kept of await app.keys()) {
    const path = new URL(kept.url).pathname;
    if (path.startsWith("/v1/") || path.startsWith("/api/")) await app.delete(kept);
  }
}

/** Keyrings by trust file digest, and per keyring the bundles verified with it, by digest. */
const keyrings = new Map();

/** The trust file the page verifies with: its text, its digest and its keyring. */
export async function loadTrust() {
  const { bytes } = await fetchKept("/v1/trust");
  const digest = await digestOf(bytes);
  const trust = JSON.parse(new TextDecoder().decode(bytes));
  if (!keyrings.has(digest)) keyrings.set(digest, { keyring: await Keyring.fromTrust(trust), verified: new Map() });
  const { keyring, verified } = keyrings.get(digest);
  return { text: JSON.stringify(trust, null, 2), digest, keyring, verified, pinned: localStorage.getItem(TRUST_PIN) };
}

/** Trusts the trust file with `digest` from now on (the page remembers it). */
export function pinTrust(digest) {
  localStorage.setItem(TRUST_PIN, digest);
}

/** The cell's limits: each field the cell leaves out takes the policy's default. */
function limitsOf(cell, policy) {
  return { ...policy.default_limits, ...(cell.limits ?? {}) };
}

/** What the preflight needs of one kernel, fetched and digest-checked (or why it could not be). */
async function kernelArtifacts(lock) {
  const what = `${lock.crate}@${lock.version}`;
  let listing;
  try {
    listing = JSON.parse(new TextDecoder().decode((await fetchKept(`/v1/kernels/${encodeURIComponent(lock.crate)}/${encodeURIComponent(lock.version)}`)).bytes));
  } catch (err) {
    if (err instanceof ApiError && err.status === 451) throw new Refused("revoked", `${what}: ${err.message}`);
    throw new Refused("unavailable", `${what}: ${err.message}`);
  }
  const [manifestBytes, ...bundles] = await Promise.all([
    artifact(listing.manifest, `${what}'s manifest`),
    ...listing.statements.map((s) => artifact(s.digest, `${what}'s ${s.kind} bundle`)),
  ]);
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  const attestations = listing.statements.map((s, index) => ({ digest: s.digest, bytes: bundles[index] }));
  return { listing, manifest, attestations, wasm: null };
}

/** The bytes of a cell's input, as the executor makes them. */
async function inputBytes(cell, outputs) {
  const input = cell.input;
  if (input.text !== undefined) return encoder.encode(input.text);
  if (input.json !== undefined) return encoder.encode(canonicalJson(input.json));
  if (input.base64 !== undefined) return fromBase64(input.base64) ?? new Uint8Array();
  if (input.from !== undefined) return outputs.get(input.from) ?? null;
  if (input.blob !== undefined) {
    const response = await request("GET", `/v1/datasets/${input.blob}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if ((await digestOf(bytes)) !== input.blob) throw new Refused("digest-mismatch", `dataset ${input.blob}: the bytes fetched are not it`);
    return bytes;
  }
  return new Uint8Array();
}

/** The kernel worker, kept warm between calls; a new one after a call is stopped. */
let worker = null;
/** The modules (by digest) the current worker was given. */
let workerHas = new Set();

function kernelWorker() {
  if (!worker) {
    worker = new Worker("/app/kernel-worker.js", { type: "module", name: "kiln kernel" });
    workerHas = new Set();
  }
  return worker;
}

/** Calls `entry` of the verified `wasm` in the worker; stops it at `limits.wall_ms`. */
function callInWorker({ digest, wasm, entry, input, limits, seed }) {
  stats.calls += 1;
  return new Promise((resolve) => {
    const w = kernelWorker();
    const started = performance.now();
    const stop = setTimeout(() => {
      w.terminate();
      worker = null;
      resolve({
        output: null,
        error: { code: "deadline", message: `deadline: the cell ran past its limit of ${limits.wall_ms} ms` },
        logs: [],
        stdio: new Uint8Array(),
        metrics: { fuel: null, wall_us: Math.round((performance.now() - started) * 1000), peak_memory_bytes: 0, output_bytes: 0 },
      });
    }, limits.wall_ms);
    w.onmessage = (event) => {
      if (event.data.type !== "done") return;
      clearTimeout(stop);
      resolve(event.data);
    };
    w.onerror = (event) => {
      clearTimeout(stop);
      w.terminate();
      worker = null;
      resolve({ output: null, error: { code: "trap", message: `trap: ${event.message}` }, logs: [], stdio: new Uint8Array(), metrics: { fuel: null, wall_us: 0, peak_memory_bytes: 0, output_bytes: 0 } });
    };
    // The module's bytes go once per worker (copied: the page keeps them for a new worker).
    const bytes = workerHas.has(digest) ? null : wasm.slice().buffer;
    workerHas.add(digest);
    w.postMessage({ type: "call", digest, wasm: bytes, entry, input: input.slice().buffer, limits, seed });
  });
}

/**
 * Verifies and runs `doc` in this page, calling `onEvent` with the executor's event shapes
 * (`preflight` or `blocked`, `cell-started`, `output` with `bytes`, `cell-finished`,
 * `run-finished`). `seed` (a number) runs it in deterministic mode. `policy` is `GET /v1/policy`.
 */
export async function runInBrowser(doc, { seed, policy, onEvent }) {
  if (!window.isSecureContext || !crypto.subtle || typeof caches === "undefined") {
    throw new Refused("insecure-context", "browser runs need a secure context: open kiln over HTTPS (or on localhost)");
  }
  // What the decisions read, fetched at once: the trust file, the revocation list, the kernels.
  const locks = Object.entries(doc.kernels);
  const [trust, revocationBytes, ...fetchedKernels] = await Promise.all([
    loadTrust(),
    fetchKept("/v1/revocations").then(
      (kept) => kept.bytes,
      (err) => err,
    ),
    ...locks.map(([, lock]) => kernelArtifacts(lock).catch((err) => ({ refused: err }))),
  ]);
  if (trust.pinned && trust.pinned !== trust.digest) {
    throw new Refused("trust-changed", `the trust file is now ${trust.digest}, not the ${trust.pinned} this page was told to trust: look at it under Trust, and trust it there if it is right`);
  }
  if (!trust.pinned) pinTrust(trust.digest);

  // The revocation list: verified here; without one, every cell is refused.
  let revocations = null;
  let revocationError = null;
  try {
    if (revocationBytes instanceof Error) throw revocationBytes;
    revocations = await verifyRevocations(trust.keyring, revocationBytes);
  } catch (err) {
    revocationError = err.message;
  }
  const kernels = new Map(locks.map(([name], index) => [name, fetchedKernels[index]]));
  const cache = trust.verified;
  const cells = doc.cells.filter((c) => c.type === "kernel");
  const decisions = [];
  const started = performance.now();
  for (const cell of cells) {
    const lock = doc.kernels[cell.kernel];
    const fetched = kernels.get(cell.kernel);
    const limits = limitsOf(cell, policy);
    let reasons;
    let grants = cell.grants ?? [];
    if (!lock || !fetched) {
      reasons = [{ code: "unavailable", message: `kernel \`${cell.kernel}\` is not in the notebook's lock` }];
    } else if (fetched.refused) {
      reasons = [{ code: fetched.refused.code ?? "unavailable", message: fetched.refused.message }];
    } else if (!revocations) {
      reasons = [{ code: "revocation-list-unavailable", message: `no verified revocation list from the registry: ${revocationError}` }];
    } else {
      grants = cell.grants ?? defaultGrants(fetched.manifest.imports, policy.allowed_imports);
      const decision = await decide({
        cell: { entry: cell.entry, grants, limits },
        manifest: fetched.manifest,
        manifestDigest: fetched.listing.manifest,
        pins: { wasm: lock.wasm, cwasm: lock.cwasm },
        attestations: fetched.attestations,
        revocations,
        nowMs: Date.now(),
        policy,
        keyring: trust.keyring,
        cache,
      });
      reasons = decision.reasons;
      if (fetched.listing.not_approved) {
        reasons.unshift({ code: "not-approved", message: `${lock.crate}@${lock.version} is not approved in the registry: it is ${fetched.listing.not_approved}` });
      }
      // The module itself, only for a cell allowed so far: its bytes must be the signed digest.
      if (reasons.length === 0 && !fetched.wasm) {
        try {
          fetched.wasm = await artifact(fetched.manifest.wasm, `${lock.crate}@${lock.version}'s module`);
        } catch (err) {
          reasons = [{ code: err.code ?? "unavailable", message: err.message }];
          fetched.refused = err;
        }
      }
    }
    decisions.push({ id: cell.id, kernel: cell.kernel, allow: reasons.length === 0, reasons, grants, limits });
  }
  stats.verifyMs.push(performance.now() - started);
  if (stats.verifyMs.length > 100) stats.verifyMs.shift();
  const report = { allow: decisions.every((d) => d.allow), cells: decisions, trust: trust.digest };
  if (!report.allow) {
    onEvent({ event: "blocked", preflight: report });
    return { report, record: null };
  }
  onEvent({ event: "preflight", preflight: report });

  const outputs = new Map();
  const records = [];
  for (const [index, cell] of cells.entries()) {
    const decision = decisions[index];
    const record = { id: cell.id, kernel: cell.kernel, entry: cell.entry, status: "skipped", input: null, output: null, error: null, metrics: { fuel: null, wall_us: 0, peak_memory_bytes: 0, output_bytes: 0 } };
    const input = await inputBytes(cell, outputs);
    if (input === null) {
      record.error = { code: "skipped", message: "the cell it takes its input from did not succeed" };
      onEvent({ event: "cell-finished", cell: record });
      records.push(record);
      continue;
    }
    onEvent({ event: "cell-started", cell: cell.id });
    record.input = await digestOf(input);
    const fetched = kernels.get(cell.kernel);
    const done = await callInWorker({
      digest: fetched.manifest.wasm,
      wasm: fetched.wasm,
      entry: cell.entry,
      input,
      limits: decision.limits,
      seed: seed ?? null,
    });
    record.metrics = done.metrics;
    if (done.error) {
      record.status = "error";
      record.error = done.error;
    } else {
      record.status = "ok";
      record.output = await digestOf(done.output);
      outputs.set(cell.id, done.output);
      onEvent({ event: "output", cell: cell.id, bytes: done.output });
    }
    onEvent({ event: "cell-finished", cell: record });
    records.push(record);
  }
  const record = {
    where: "browser",
    seed: seed ?? null,
    kernels: Object.fromEntries(Object.entries(doc.kernels).map(([name, lock]) => [name, lock.wasm])),
    cells: records,
  };
  onEvent({ event: "run-finished", id: "in this browser", record });
  return { report, record };
}
