// The page's verifier: the executor's preflight decision, made in the browser before a byte of a
// kernel runs here. It reads kiln's Sigstore bundles (v0.3, a DSSE envelope, the key named by its
// public-key hint), checks ECDSA P-256 signatures over the DSSE pre-authentication encoding with
// Web Crypto, and decides a cell with the same rules, the same order and the same reason codes as
// `kiln_policy::preflight` (see docs/browser.md for why this is JavaScript and how the two are
// kept in agreement). Nothing here trusts the server that served the bytes: only the trust file.

const MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const PAYLOAD_TYPE = "application/vnd.in-toto+json";
const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
const MAX_BUNDLE_BYTES = 4 * 1024 * 1024;
const HOST_MODULE = "kiln";
const ENTRY_PREFIX = "kiln_entry_";

/** Each statement kind: its predicate type and the role its signer must hold. */
export const KINDS = {
  provenance: { type: "https://slsa.dev/provenance/v1", role: "builder" },
  audit: { type: "https://kiln.dev/attestation/audit/v1", role: "builder" },
  review: { type: "https://kiln.dev/attestation/review/v1", role: "reviewer" },
  revocation: { type: "https://kiln.dev/attestation/revocation/v1", role: "revocation" },
};

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A refused bundle: `code` is `kiln_policy::VerifyError::code` for the same refusal. */
export class VerifyError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `sha256:<hex>` of `bytes`. */
export async function digestOf(bytes) {
  return `sha256:${hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))}`;
}

/** Standard base64 (padded) to bytes; null when it is not base64. */
export function fromBase64(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

/** The DSSE pre-authentication encoding: what a DSSE signature covers. */
export function pae(payloadType, payload) {
  const type = encoder.encode(payloadType);
  const head = encoder.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/**
 * An ASN.1 DER ECDSA signature (what kiln and Sigstore write) as the 64-byte r‖s Web Crypto
 * verifies; null when it is not a well-formed DER signature of a P-256 size.
 */
export function derToRaw(der) {
  let at = 0;
  const byte = () => (at < der.length ? der[at++] : -1);
  if (byte() !== 0x30) return null;
  const total = byte();
  if (total < 0 || total >= 0x80 || total !== der.length - 2) return null;
  const out = new Uint8Array(64);
  for (const offset of [0, 32]) {
    if (byte() !== 0x02) return null;
    const len = byte();
    if (len < 1 || len > 33 || at + len > der.length) return null;
    let value = der.subarray(at, at + len);
    at += len;
    // Minimal encoding: a leading zero only before a high bit; no negative integers.
    if (value[0] & 0x80) return null;
    if (value.length > 1 && value[0] === 0 && !(value[1] & 0x80)) return null;
    if (value[0] === 0) value = value.subarray(1);
    if (value.length > 32) return null;
    out.set(value, offset + 32 - value.length);
  }
  return at === der.length ? out : null;
}

function pemToDer(pem) {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return fromBase64(body);
}

/** The keys a trust file lists (`GET /v1/trust`), each checked against its id. */
export class Keyring {
  constructor(keys) {
    this.keys = keys;
  }

  /** Reads `trust` (the parsed trust document); throws when a key does not match its id. */
  static async fromTrust(trust) {
    const keys = new Map();
    for (const entry of trust.keys ?? []) {
      const der = pemToDer(entry.pem ?? "");
      if (!der) throw new Error(`trust file: key ${entry.name} is not a PEM public key`);
      const id = (await digestOf(der)).slice("sha256:".length);
      if (id !== entry.id) throw new Error(`trust file: key ${entry.name} has id ${id}, not ${entry.id}`);
      const key = await crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
      keys.set(id, { id, name: entry.name, roles: new Set(entry.roles), key });
    }
    return new Keyring(keys);
  }

  get(hint) {
    return this.keys.get(hint);
  }
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Whether a statement names `digest` (`sha256:…`) as a subject. */
export function hasSubject(statement, digest) {
  const wanted = digest.slice("sha256:".length);
  return statement.subject.some((s) => isObject(s?.digest) && s.digest.sha256 === wanted);
}

/**
 * Verifies a bundle's bytes with `keyring`, as `Verifier::verify_json` does: the statement it
 * carries, its kind and the key that signed it; throws a VerifyError otherwise. `expect.kind` and
 * `expect.subject` (a digest) are checked when given.
 */
export async function verifyBundle(keyring, bytes, expect = {}) {
  if (bytes.length > MAX_BUNDLE_BYTES) {
    throw new VerifyError("bundle-too-large", `bundle is ${bytes.length} bytes, over the ${MAX_BUNDLE_BYTES}-byte limit`);
  }
  let bundle;
  try {
    bundle = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new VerifyError("bundle-malformed", `bundle is malformed: ${err.message}`);
  }
  if (!isObject(bundle) || typeof bundle.mediaType !== "string" || !isObject(bundle.verificationMaterial)) {
    throw new VerifyError("bundle-malformed", "bundle is malformed: no mediaType or verificationMaterial");
  }
  if (bundle.mediaType !== MEDIA_TYPE) {
    throw new VerifyError("bundle-media-type", `bundle media type is \`${bundle.mediaType}\`, expected ${MEDIA_TYPE}`);
  }
  const envelope = bundle.dsseEnvelope;
  if (envelope === undefined || envelope === null) {
    throw new VerifyError("bundle-not-dsse", "bundle has no DSSE envelope (kiln signs statements, not bare messages)");
  }
  if (!isObject(envelope) || !Array.isArray(envelope.signatures) || typeof envelope.payloadType !== "string") {
    throw new VerifyError("bundle-malformed", "bundle is malformed: the DSSE envelope");
  }
  const payload = fromBase64(envelope.payload);
  if (payload === null) throw new VerifyError("bundle-malformed", "bundle is malformed: the payload is not base64");
  const material = bundle.verificationMaterial;
  const hint = material.publicKey;
  if (!isObject(hint) || material.certificate != null || material.x509CertificateChain != null) {
    throw new VerifyError("bundle-no-key-hint", "bundle names no public-key hint; kiln verifies only keys in its keyring");
  }
  const keyHint = typeof hint.hint === "string" ? hint.hint : "";
  if (envelope.signatures.length !== 1) {
    throw new VerifyError("signature-count", `envelope has ${envelope.signatures.length} signatures, expected exactly one`);
  }
  const [signature] = envelope.signatures;
  const keyid = typeof signature?.keyid === "string" ? signature.keyid : "";
  if (keyid !== keyHint) {
    throw new VerifyError("keyid-mismatch", `signature keyid \`${keyid}\` differs from the bundle's key hint \`${keyHint}\``);
  }
  const trusted = keyring.get(keyHint);
  if (!trusted) throw new VerifyError("unknown-key", `key \`${keyHint}\` is not in the keyring`);
  if (envelope.payloadType !== PAYLOAD_TYPE) {
    throw new VerifyError("payload-type", `payload type is \`${envelope.payloadType}\`, expected ${PAYLOAD_TYPE}`);
  }
  const der = fromBase64(signature.sig);
  const raw = der && derToRaw(der);
  const good =
    raw !== null &&
    raw !== undefined &&
    (await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, trusted.key, raw, pae(envelope.payloadType, payload)));
  if (!good) throw new VerifyError("bad-signature", `signature does not verify with key \`${trusted.id}\``);

  let statement;
  try {
    statement = JSON.parse(decoder.decode(payload));
  } catch (err) {
    throw new VerifyError("statement-malformed", `signed payload is not an in-toto v1 statement: ${err.message}`);
  }
  if (!isObject(statement) || typeof statement._type !== "string" || !Array.isArray(statement.subject) || typeof statement.predicateType !== "string") {
    throw new VerifyError("statement-malformed", "signed payload is not an in-toto v1 statement: missing fields");
  }
  if (statement._type !== STATEMENT_TYPE) {
    throw new VerifyError("statement-malformed", `signed payload is not an in-toto v1 statement: \`_type\` is \`${statement._type}\`, expected ${STATEMENT_TYPE}`);
  }
  if (statement.subject.length === 0) {
    throw new VerifyError("statement-malformed", "signed payload is not an in-toto v1 statement: it names no subject");
  }
  const kind = Object.keys(KINDS).find((k) => KINDS[k].type === statement.predicateType);
  if (!kind) throw new VerifyError("unknown-predicate-type", `predicate type \`${statement.predicateType}\` is not one kiln accepts`);
  if (expect.kind && expect.kind !== kind) throw new VerifyError("wrong-kind", `expected a ${expect.kind} statement, found ${kind}`);
  const needed = KINDS[kind].role;
  if (!trusted.roles.has(needed)) {
    throw new VerifyError("wrong-role", `key \`${trusted.name}\` (${trusted.id}) is not trusted as ${needed}, which ${kind} statements need`);
  }
  if (expect.subject && !hasSubject(statement, expect.subject)) {
    throw new VerifyError("subject-mismatch", `no subject of the statement has digest ${expect.subject}`);
  }
  return { statement, kind, keyId: trusted.id, keyName: trusted.name };
}

/**
 * JSON as serde_json writes a `Value`: compact, object keys sorted. The revocation list's
 * subject is the digest of its entries written this way.
 */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Verifies the registry's revocation list bundle: `{issuedAtMs, revoked: Map(digest → reason)}`. */
export async function verifyRevocations(keyring, bytes) {
  const { statement } = await verifyBundle(keyring, bytes, { kind: "revocation" });
  const predicate = statement.predicate;
  if (!isObject(predicate) || typeof predicate.issued_at !== "number" || !Array.isArray(predicate.entries)) {
    throw new VerifyError("revocation-malformed", "the revocation list is malformed: no issued_at or entries");
  }
  const covered = await digestOf(encoder.encode(canonicalJson(predicate.entries)));
  if (!hasSubject(statement, covered)) {
    throw new VerifyError("revocation-malformed", "the revocation list is malformed: its subject is not the digest of its entries");
  }
  return {
    issuedAtMs: predicate.issued_at,
    revoked: new Map(predicate.entries.map((e) => [e.digest, e.reason])),
  };
}

/** What a cell with no grants grants: the module's imports the policy allows. */
export function defaultGrants(imports, allowedImports) {
  return imports
    .filter((i) => i.module !== HOST_MODULE)
    .filter((i) => allowedByPolicy(allowedImports, i.module, i.name))
    .map((i) => `${i.module}.${i.name}`);
}

function allowedByPolicy(allowedImports, module, name) {
  const names = allowedImports[module];
  return Array.isArray(names) && (names.includes("*") || names.includes(name));
}

/**
 * Verifies each bundle once per page (a Map from bundle digest to its verification, kept by the
 * caller), as the executor's preflight caches by bundle digest.
 */
async function verified(cache, keyring, attestation) {
  if (!cache.has(attestation.digest)) {
    cache.set(
      attestation.digest,
      (async () => {
        if ((await digestOf(attestation.bytes)) !== attestation.digest) {
          return { error: "the bundle's bytes do not match its digest" };
        }
        try {
          return { ok: await verifyBundle(keyring, attestation.bytes) };
        } catch (err) {
          return { error: `${err.message} (${err.code ?? "error"})` };
        }
      })(),
    );
  }
  return cache.get(attestation.digest);
}

/**
 * The preflight decision, rule for rule `Preflight::decide`: `{allow, reasons: [{code, message}]}`.
 *
 * `input`: `cell` ({entry, grants: [..], limits}), `manifest` (parsed) and `manifestDigest`,
 * `pins` ({wasm, cwasm}), `attestations` ([{digest, bytes}]), `revocations` (verified),
 * `nowMs`, `policy` (`GET /v1/policy`), `keyring`, `cache` (a Map kept across decisions).
 */
export async function decide(input) {
  const { cell, manifest: m, manifestDigest, pins, attestations, revocations, nowMs, policy, keyring, cache } = input;
  const reasons = [];
  const deny = (code, message) => reasons.push({ code, message });
  const what = `${m.crate}@${m.version}`;

  // Pins.
  if (m.wasm !== pins.wasm) deny("digest-mismatch", `${what}: the module is ${m.wasm} but the notebook pins ${pins.wasm}`);
  if (pins.cwasm && m.cwasm !== pins.cwasm) deny("digest-mismatch", `${what}: the precompiled module is not the pinned ${pins.cwasm}`);

  // Revocation.
  const ageMs = Math.max(0, nowMs - revocations.issuedAtMs);
  if (ageMs > policy.revocation_max_age_secs * 1000) {
    deny("revocation-list-stale", `the revocation list is ${Math.floor(ageMs / 1000)} s old; the policy allows ${policy.revocation_max_age_secs} s`);
  }
  for (const digest of [m.wasm, m.cwasm, m.crate_checksum]) {
    if (digest && revocations.revoked.has(digest)) deny("revoked", `${what}: ${digest} is revoked: ${revocations.revoked.get(digest)}`);
  }

  // Statements: each required kind, by a trusted key of its role, about this artifact.
  const found = new Map();
  const failures = [];
  for (const attestation of attestations) {
    const result = await verified(cache, keyring, attestation);
    if (result.ok) {
      const subject = result.ok.kind === "audit" ? m.crate_checksum : m.wasm;
      if (hasSubject(result.ok.statement, subject) && !found.has(result.ok.kind)) found.set(result.ok.kind, result.ok);
    } else {
      failures.push(result.error);
    }
  }
  for (const kind of policy.require) {
    if (!found.has(kind)) {
      let message = `${what}: no ${kind} statement about it signed by a trusted ${KINDS[kind].role} key`;
      if (failures.length) message += ` (refused bundles: ${failures.join("; ")})`;
      deny("missing-statement", message);
    }
  }
  const provenance = found.get("provenance");
  if (provenance) {
    const byproducts = provenance.statement.predicate?.runDetails?.byproducts ?? [];
    const named = byproducts.some((b) => isObject(b?.digest) && `sha256:${b.digest.sha256}` === manifestDigest);
    if (!named) deny("manifest-unsigned", `${what}: the provenance does not name this manifest`);
  }

  // The entry point.
  const exportName = `${ENTRY_PREFIX}${cell.entry}`;
  if (!m.entries.some((e) => e.name === cell.entry) || !m.exports.includes(exportName)) {
    deny("entry-missing", `${what} has no entry point \`${cell.entry}\` (it has: ${m.entries.map((e) => e.name).join(", ")})`);
  }

  // Capabilities: imports ⊆ grants ⊆ what the policy allows.
  const grants = new Set(cell.grants);
  const allowed = policy.allowed_imports;
  const granted = (module, name) =>
    module === HOST_MODULE || grants.has(`${module}.${name}`) || (grants.has(`${module}.*`) && allowedByPolicy(allowed, module, name));
  for (const i of m.imports) {
    if (!granted(i.module, i.name)) deny("import-not-granted", `${what} imports ${i.module}.${i.name}, which the cell does not grant`);
  }
  for (const grant of [...grants].sort()) {
    const dot = grant.indexOf(".");
    const module = dot < 0 ? null : grant.slice(0, dot);
    const name = dot < 0 ? null : grant.slice(dot + 1);
    const ok = module !== null && (name === "*" ? Object.hasOwn(allowed, module) : allowedByPolicy(allowed, module, name));
    if (!ok) deny("grant-not-allowed", `the cell grants \`${grant}\`, which the policy does not allow`);
  }

  // Limits.
  for (const name of ["fuel", "memory_bytes", "wall_ms", "output_bytes"]) {
    const asked = cell.limits[name];
    const max = policy.max_limits[name];
    if (asked > max) deny("limit-exceeded", `the cell asks for ${name} = ${asked}; the policy allows at most ${max}`);
  }
  return { allow: reasons.length === 0, reasons };
}
