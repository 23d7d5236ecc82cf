//! The artifact manifest: what the builder made from one crate version, named by digest. It is
//! stored beside the artifacts, and the signed provenance names its digest as a byproduct, so
//! that what it says about the module (imports, entries, compatibility) is vouched for.

use serde::{Deserialize, Serialize};

use crate::checks::wasm::{Entry, Import};
use crate::digest::Digest;

/// The schema of [`ArtifactManifest`] as JSON.
pub const MANIFEST_SCHEMA: &str = "https://kiln.dev/schemas/artifact-manifest/v1";

/// What one build produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactManifest {
    /// Always [`MANIFEST_SCHEMA`].
    pub schema: String,
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// Its version.
    pub version: String,
    /// The `.crate` it was built from.
    pub crate_checksum: Digest,
    /// The WebAssembly module.
    pub wasm: Digest,
    /// Its size in bytes.
    pub wasm_size: u64,
    /// The module precompiled by wasmtime, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwasm: Option<Digest>,
    /// The module's imports.
    pub imports: Vec<Import>,
    /// The module's exports.
    pub exports: Vec<String>,
    /// The kernel's entry points, from its metadata section.
    pub entries: Vec<Entry>,
    /// The wasmtime version that precompiled `cwasm`.
    pub wasmtime_version: String,
    /// `Engine::precompile_compatibility_hash` of the engine that precompiled `cwasm`: an
    /// engine with another hash cannot load it and compiles `wasm` itself.
    pub compatibility_hash: String,
}

impl ArtifactManifest {
    /// The manifest as stored (canonical JSON: the struct's field order, no whitespace), and
    /// its digest.
    pub fn to_bytes(&self) -> (Vec<u8>, Digest) {
        let bytes = serde_json::to_vec(self).expect("a manifest serialises");
        let digest = Digest::of(&bytes);
        (bytes, digest)
    }
}
