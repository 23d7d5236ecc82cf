//! What the audit knows about each crate in a build: read from `cargo metadata` (through the
//! `cargo_metadata` crate), so that the licence and build-time-code checks see exactly what Cargo
//! resolved.

use std::collections::BTreeMap;

use crate::digest::Digest;

/// One crate of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateInfo {
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its licence expression, as declared.
    pub license: Option<String>,
    /// Its licence file, when it declares one instead.
    pub license_file: Option<String>,
    /// Whether it has a build script.
    pub build_script: bool,
    /// Whether it is a procedural macro.
    pub proc_macro: bool,
    /// The native library it links (`links`).
    pub links: Option<String>,
    /// The `.crate` checksum, from the lockfile (registry crates only).
    pub checksum: Option<Digest>,
}

/// The crates of `metadata`, with checksums from `checksums` (by `NAME@VERSION`).
pub fn from_metadata(
    metadata: &cargo_metadata::Metadata,
    checksums: &BTreeMap<String, Digest>,
) -> Vec<CrateInfo> {
    let mut crates: Vec<CrateInfo> = metadata
        .packages
        .iter()
        .map(|package| {
            let has_kind = |kind: &str| {
                package
                    .targets
                    .iter()
                    .any(|t| t.kind.iter().any(|k| k.to_string() == kind))
            };
            let id = format!("{}@{}", package.name, package.version);
            CrateInfo {
                name: package.name.to_string(),
                version: package.version.to_string(),
                license: package.license.clone(),
                license_file: package.license_file.as_ref().map(|p| p.to_string()),
                build_script: has_kind("custom-build"),
                proc_macro: has_kind("proc-macro"),
                links: package.links.clone(),
                checksum: checksums.get(&id).copied(),
            }
        })
        .collect();
    crates.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    crates
}

/// The checksums in a lockfile, by `NAME@VERSION`.
pub fn checksums(lockfile: &rustsec::Lockfile) -> BTreeMap<String, Digest> {
    lockfile
        .packages
        .iter()
        .filter_map(|p| {
            let hex = p.checksum.as_ref()?.to_string();
            Some((
                format!("{}@{}", p.name, p.version),
                Digest::from_hex(&hex).ok()?,
            ))
        })
        .collect()
}
