//! The preflight decision: may this cell run this artifact? Pure and fast: it reads only what it
//! is handed (the cell's contract, the artifact's manifest and statements, the pins, the
//! revocation list, the clock) and answers allow, or deny with *every* reason, each with a
//! stable code.
//!
//! Signature checks dominate the cost, so verified statements are cached by the digest of their
//! bundle: a bundle is verified once per [`Preflight`] (one keyring), and later decisions about
//! the same artifact only look it up.

pub mod cfg;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

pub use self::cfg::{CodeCells, ExecutionPolicy, FuelPrice, Retention, RunBudget};
use crate::attest::{Expectation, Verified, Verifier};
use crate::checks::wasm::{AllowedFunctions, WasmPolicy};
pub use crate::codes::ReasonCode;
use crate::digest::Digest;
use crate::intoto::StatementKind;
use crate::keyring::Keyring;
use crate::manifest::ArtifactManifest;
use crate::revocation::RevocationList;
use crate::slsa::Provenance;

/// The host module every kernel may import from (the ABI itself).
const HOST_MODULE: &str = kiln_abi::HOST_MODULE;

/// A cell's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel (the cost unit).
    pub fuel: u64,
    /// Linear memory in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time in milliseconds.
    pub wall_ms: u64,
    /// Output in bytes.
    pub output_bytes: u64,
}

/// What a cell asks of its kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellContract {
    /// The entry point.
    pub entry: String,
    /// Imports granted, as `MODULE.FUNCTION`, or `MODULE.*` for every function of the module the
    /// policy allows. The `kiln` host module is always granted.
    pub grants: BTreeSet<String>,
    /// The limits the cell runs under.
    pub limits: Limits,
}

/// The digests a notebook's lock pins for a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    /// The `.wasm`.
    pub wasm: Digest,
    /// The `.cwasm`, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwasm: Option<Digest>,
}

/// A signed statement about the artifact: a bundle and the digest of its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Attestation<'a> {
    /// The SHA-256 of `json` (the content address it was stored and fetched by).
    pub digest: Digest,
    /// The bundle.
    pub json: &'a [u8],
}

/// Everything one decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct PreflightInput<'a> {
    /// What the cell asks.
    pub cell: &'a CellContract,
    /// The artifact's manifest and its digest.
    pub manifest: &'a ArtifactManifest,
    /// The manifest's digest (of its stored bytes).
    pub manifest_digest: Digest,
    /// What the notebook pins.
    pub pins: &'a Pins,
    /// The artifact's statements.
    pub attestations: &'a [Attestation<'a>],
    /// The current revocation list, verified.
    pub revocations: &'a RevocationList,
    /// Now (Unix milliseconds).
    pub now_ms: u64,
    /// This engine's `precompile_compatibility_hash`.
    pub engine_compatibility: &'a str,
    /// For a code cell, the digest of its source: the artifact must be its builder-signed build
    /// (provenance naming the source, a passing audit, no review needed) and the cell is held to
    /// the code-cell limits.
    pub code_source: Option<Digest>,
}

/// One reason a cell may not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// A stable code (`digest-mismatch`, `revoked`, `missing-statement`, `import-not-granted`,
    /// …).
    pub code: ReasonCode,
    /// What is wrong, for people.
    pub message: String,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the cell may run.
    pub allow: bool,
    /// Every reason it may not (empty when allowed).
    pub reasons: Vec<Reason>,
    /// Whether the `.cwasm` can be loaded by this engine; otherwise the verified `.wasm` must be
    /// compiled locally.
    pub use_precompiled: bool,
}

/// Decides preflights under one execution policy and one keyring, caching verified statements.
#[derive(Debug)]
pub struct Preflight {
    keyring: Keyring,
    execution: ExecutionPolicy,
    wasm: WasmPolicy,
    verified: RwLock<HashMap<Digest, Arc<Result<Verified, String>>>>,
    /// The byproduct digests a verified provenance names, by bundle digest (read once, not on
    /// every decision).
    byproducts: RwLock<HashMap<Digest, Arc<Vec<Digest>>>>,
}

/// The cache holds at most this many verification results; past it, it starts over.
const CACHE_LIMIT: usize = 65_536;

impl Preflight {
    /// A preflight that trusts `keyring` under `execution` limits and `wasm` import rules.
    pub fn new(keyring: Keyring, execution: ExecutionPolicy, wasm: WasmPolicy) -> Self {
        Self {
            keyring,
            execution,
            wasm,
            verified: RwLock::new(HashMap::new()),
            byproducts: RwLock::new(HashMap::new()),
        }
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The execution policy decisions are made under.
    pub fn execution(&self) -> &ExecutionPolicy {
        &self.execution
    }

    /// The import rules decisions are made under.
    pub fn wasm_policy(&self) -> &WasmPolicy {
        &self.wasm
    }

    /// What a cell that names no grants grants: each of `imports` (outside the host module)
    /// that the policy allows, as `MODULE.FUNCTION`. An import the policy does not allow stays
    /// ungranted, so preflight names it.
    pub fn default_grants(&self, imports: &[crate::checks::wasm::Import]) -> BTreeSet<String> {
        imports
            .iter()
            .filter(|import| import.module != HOST_MODULE)
            .filter(
                |import| match self.wasm.allowed_imports.get(&import.module) {
                    Some(AllowedFunctions::All(_)) => true,
                    Some(AllowedFunctions::Only(names)) => names.contains(&import.name),
                    None => false,
                },
            )
            .map(|import| format!("{}.{}", import.module, import.name))
            .collect()
    }

    /// The verified statement in `attestation` (signature and key only; the caller checks kind
    /// and subject), from the cache when it was verified before.
    fn verified(&self, attestation: &Attestation<'_>) -> Arc<Result<Verified, String>> {
        if let Some(hit) = self
            .verified
            .read()
            .expect("preflight cache lock")
            .get(&attestation.digest)
        {
            return hit.clone();
        }
        let result = if Digest::of(attestation.json) == attestation.digest {
            Verifier::new(&self.keyring)
                .verify_json(attestation.json, Expectation::default())
                .map_err(|err| format!("{} ({})", err, err.code()))
        } else {
            Err("the bundle's bytes do not match its digest".to_owned())
        };
        let result = Arc::new(result);
        let mut cache = self.verified.write().expect("preflight cache lock");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(attestation.digest, result.clone());
        result
    }

    /// The byproduct digests named by the provenance in bundle `digest` (already verified).
    fn byproducts(&self, digest: Digest, verified: &Verified) -> Arc<Vec<Digest>> {
        if let Some(hit) = self
            .byproducts
            .read()
            .expect("preflight cache lock")
            .get(&digest)
        {
            return hit.clone();
        }
        let named: Vec<Digest> = verified
            .statement
            .predicate_as::<Provenance>()
            .map(|p| {
                p.run_details
                    .byproducts
                    .iter()
                    .filter_map(|b| b.sha256())
                    .collect()
            })
            .unwrap_or_default();
        let named = Arc::new(named);
        let mut cache = self.byproducts.write().expect("preflight cache lock");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(digest, named.clone());
        named
    }

    /// Decides whether `input.cell` may run `input.manifest`'s artifact.
    pub fn decide(&self, input: &PreflightInput<'_>) -> Decision {
        let mut reasons = Vec::new();
        let mut deny = |code: ReasonCode, message: String| {
            reasons.push(Reason { code, message });
        };
        let m = input.manifest;
        // Formatted only into a reason: a decision that allows allocates no message.
        let what = CrateVersion(m);

        // Pins.
        if m.wasm != input.pins.wasm {
            deny(
                ReasonCode::DigestMismatch,
                format!(
                    "{what}: the module is {} but the notebook pins {}",
                    m.wasm, input.pins.wasm
                ),
            );
        }
        if let Some(pinned) = input.pins.cwasm
            && m.cwasm != Some(pinned)
        {
            deny(
                ReasonCode::DigestMismatch,
                format!("{what}: the precompiled module is not the pinned {pinned}"),
            );
        }

        // Revocation.
        let age_ms = input.now_ms.saturating_sub(input.revocations.issued_at_ms);
        if age_ms > self.execution.revocation_max_age_secs.saturating_mul(1000) {
            deny(
                ReasonCode::RevocationListStale,
                format!(
                    "the revocation list is {} s old; the policy allows {} s",
                    age_ms / 1000,
                    self.execution.revocation_max_age_secs
                ),
            );
        }
        for digest in [Some(m.wasm), m.cwasm, Some(m.crate_checksum)]
            .into_iter()
            .flatten()
        {
            if let Some(reason) = input.revocations.reason(&digest) {
                deny(
                    ReasonCode::Revoked,
                    format!("{what}: {digest} is revoked: {reason}"),
                );
            }
        }

        // Statements: each required kind, by a trusted key of its role, about this artifact.
        let mut found: BTreeMap<StatementKind, (Digest, Arc<Result<Verified, String>>)> =
            BTreeMap::new();
        let mut failures = Vec::new();
        for attestation in input.attestations {
            let result = self.verified(attestation);
            match &*result {
                Ok(verified) => {
                    let subject = match verified.kind {
                        StatementKind::Audit => m.crate_checksum,
                        _ => m.wasm,
                    };
                    if verified.statement.has_subject(&subject) {
                        found
                            .entry(verified.kind)
                            .or_insert((attestation.digest, result.clone()));
                    }
                }
                Err(message) => failures.push(message.clone()),
            }
        }
        let code_cell_requires: BTreeSet<StatementKind>;
        let required = match input.code_source {
            // A code cell is built, not reviewed: its build's provenance and audit decide.
            Some(_) => {
                code_cell_requires = [StatementKind::Provenance, StatementKind::Audit].into();
                &code_cell_requires
            }
            None => &self.execution.require,
        };
        if let Some(source) = input.code_source {
            if self.execution.code_cells == CodeCells::Deny {
                deny(
                    ReasonCode::CodeCellsDenied,
                    "the policy does not let code cells run ([execution] code_cells = \"deny\")"
                        .to_owned(),
                );
            }
            if let Some((_, result)) = found.get(&StatementKind::Provenance)
                && let Ok(verified) = &**result
            {
                let named = verified
                    .statement
                    .predicate_as::<Provenance>()
                    .ok()
                    .and_then(|p| p.cell_source());
                if named != Some(source) {
                    deny(
                        ReasonCode::SourceMismatch,
                        format!(
                            "the build's provenance names source {} but the cell's source is {source}",
                            named.map_or_else(|| "none".to_owned(), |d| d.to_string())
                        ),
                    );
                }
            }
            if let Some((_, result)) = found.get(&StatementKind::Audit)
                && let Ok(verified) = &**result
                && verified
                    .statement
                    .predicate
                    .get("verdict")
                    .and_then(|v| v.as_str())
                    .is_none_or(|v| v == "deny")
            {
                deny(
                    ReasonCode::AuditFailed,
                    "the audit of the cell's closure does not pass".to_owned(),
                );
            }
        }
        for kind in required {
            if !found.contains_key(kind) {
                let mut message = format!(
                    "{what}: no {} statement about it signed by a trusted {} key",
                    kind.as_str(),
                    kind.signer_role().as_str()
                );
                if !failures.is_empty() {
                    message.push_str(&format!(" (refused bundles: {})", failures.join("; ")));
                }
                deny(ReasonCode::MissingStatement, message);
            }
        }
        if let Some((digest, result)) = found.get(&StatementKind::Provenance)
            && let Ok(verified) = &**result
            && !self
                .byproducts(*digest, verified)
                .contains(&input.manifest_digest)
        {
            deny(
                ReasonCode::ManifestUnsigned,
                format!("{what}: the provenance does not name this manifest"),
            );
        }

        // The entry point.
        let exported = m.exports.iter().any(|export| {
            export.strip_prefix(kiln_abi::ENTRY_PREFIX) == Some(input.cell.entry.as_str())
        });
        if !m.entries.iter().any(|e| e.name == input.cell.entry) || !exported {
            deny(
                ReasonCode::EntryMissing,
                format!(
                    "{what} has no entry point `{}` (it has: {})",
                    input.cell.entry,
                    m.entries
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }

        // Capabilities: imports ⊆ grants ⊆ what the policy allows. A grant `MODULE.*` grants
        // every function of the module that the policy allows.
        let allowed_by_policy =
            |module: &str, name: &str| match self.wasm.allowed_imports.get(module) {
                Some(AllowedFunctions::All(_)) => true,
                Some(AllowedFunctions::Only(names)) => names.contains(name),
                None => false,
            };
        let granted = |module: &str, name: &str| {
            module == HOST_MODULE
                || input
                    .cell
                    .grants
                    .iter()
                    .any(|grant| grant_names(grant, module, name))
                || (input
                    .cell
                    .grants
                    .iter()
                    .any(|grant| grant_names(grant, module, "*"))
                    && allowed_by_policy(module, name))
        };
        for import in &m.imports {
            if !granted(&import.module, &import.name) {
                deny(
                    ReasonCode::ImportNotGranted,
                    format!(
                        "{what} imports {}.{}, which the cell does not grant",
                        import.module, import.name
                    ),
                );
            }
        }
        for grant in &input.cell.grants {
            let allowed = grant.split_once('.').is_some_and(|(module, name)| {
                if name == "*" {
                    self.wasm.allowed_imports.contains_key(module)
                } else {
                    allowed_by_policy(module, name)
                }
            });
            if !allowed {
                deny(
                    ReasonCode::GrantNotAllowed,
                    format!("the cell grants `{grant}`, which the policy does not allow"),
                );
            }
        }

        // Limits: a code cell's own, or any cell's.
        let limits = input.cell.limits;
        let most = match input.code_source {
            Some(_) => self.execution.code_cell_limits,
            None => Limits {
                fuel: self.execution.max_fuel,
                memory_bytes: self.execution.max_memory_bytes,
                wall_ms: self.execution.max_wall_ms,
                output_bytes: self.execution.max_output_bytes,
            },
        };
        for (name, asked, max) in [
            ("fuel", limits.fuel, most.fuel),
            ("memory_bytes", limits.memory_bytes, most.memory_bytes),
            ("wall_ms", limits.wall_ms, most.wall_ms),
            ("output_bytes", limits.output_bytes, most.output_bytes),
        ] {
            if asked > max {
                deny(
                    ReasonCode::LimitExceeded,
                    format!("the cell asks for {name} = {asked}; the policy allows at most {max}"),
                );
            }
        }

        Decision {
            allow: reasons.is_empty(),
            reasons,
            use_precompiled: m.cwasm.is_some()
                && !m.compatibility_hash.is_empty()
                && m.compatibility_hash == input.engine_compatibility,
        }
    }
}

/// `crate@version` of a manifest, as reasons name it.
struct CrateVersion<'a>(&'a ArtifactManifest);

impl std::fmt::Display for CrateVersion<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.0.krate, self.0.version)
    }
}

/// Whether the grant `MODULE.NAME` names `module` and `name`.
fn grant_names(grant: &str, module: &str, name: &str) -> bool {
    grant
        .strip_prefix(module)
        .and_then(|rest| rest.strip_prefix('.'))
        == Some(name)
}

#[cfg(test)]
mod tests;
