//! The closure of an import, found by Cargo's own resolver: a wrapper package that depends on
//! the crate (with the features asked for) the way a kernel would, resolved against the
//! upstream index with `cargo metadata`. The closure is every package of the resolution's
//! lockfile: Cargo's lockfile is the same for every target, so a dependency only another target
//! compiles (or none: serde's `cfg(any())` pin of `serde_derive`) must be in the index for any
//! dependent to resolve, though kiln never builds it for the kernel target. Cargo downloads each
//! member's `.crate` (checked against the index's checksum) into the resolution's Cargo home;
//! nothing it downloads is built or run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_policy::Digest;
use kiln_wire::FeatureSet;

use super::ImportError;

/// What to import: a crate, a version or requirement, and the features a dependent turns on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSpec {
    /// The crate.
    pub krate: String,
    /// A Cargo version requirement (`=1.0.145`, `^1`).
    pub req: String,
    /// Features asked for, besides the default ones.
    pub features: Vec<String>,
    /// Whether the default features are on.
    pub default_features: bool,
}

impl ImportSpec {
    /// `NAME@REQ`, as people write it.
    pub fn describe(&self) -> String {
        let mut text = format!("{}@{}", self.krate, self.req.trim_start_matches('='));
        if !self.features.is_empty() {
            text.push_str(&format!(" (features {})", self.features.join(", ")));
        }
        if !self.default_features {
            text.push_str(" without default features");
        }
        text
    }
}

/// One resolved member of a closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The crate.
    pub name: String,
    /// The version.
    pub version: String,
    /// The `.crate`'s checksum, as the upstream index gives it.
    pub checksum: Digest,
    /// Its licence expression.
    pub license: Option<String>,
    /// Whether it has a build script.
    pub build_script: bool,
    /// Whether it is a procedural macro.
    pub proc_macro: bool,
    /// The features a dependent's build turns on in it.
    pub features: FeatureSet,
    /// Where Cargo put its `.crate`.
    pub crate_file: PathBuf,
}

/// Cargo's configuration for resolving against `upstream`: crates.io is replaced by it unless
/// it is crates.io.
fn cargo_config(upstream: &str) -> String {
    if upstream.trim_end_matches('/') == super::CRATES_IO_INDEX.trim_end_matches('/') {
        return String::new();
    }
    format!(
        "[source.crates-io]\nreplace-with = \"upstream\"\n\n[source.upstream]\nregistry = \"{upstream}\"\n"
    )
}

/// The wrapper's manifest: one dependency on the crate, as asked.
fn wrapper_manifest(spec: &ImportSpec) -> String {
    let features: Vec<String> = spec.features.iter().map(|f| format!("{f:?}")).collect();
    format!(
        "[package]\nname = \"kiln-import\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"lib.rs\"\n\n[workspace]\n\n[dependencies]\n{:?} = {{ version = {:?}, default-features = {}, features = [{}] }}\n",
        spec.krate,
        spec.req,
        spec.default_features,
        features.join(", ")
    )
}

/// The lines of Cargo's error output worth a person's attention, on one line.
fn cargo_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Updating")
                && !l.starts_with("Downloaded")
                && !l.starts_with("Downloading")
                && !l.starts_with("Locking")
                && !l.starts_with("Adding")
                && !l.starts_with("warning:")
                && *l != "Caused by:"
        })
        .map(|l| l.trim_start_matches("error: "))
        .collect();
    lines.join("; ")
}

/// Resolves the closure of `spec` against `upstream`, with `home` as Cargo's home (its download
/// cache is kept there) and `work` for the wrapper.
pub fn resolve(
    spec: &ImportSpec,
    upstream: &str,
    home: &Path,
    work: &Path,
) -> Result<Vec<Member>, ImportError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |err: std::io::Error| ImportError::Internal(format!("{what}: {err}"))
    };
    std::fs::create_dir_all(home).map_err(io("the import's Cargo home"))?;
    std::fs::write(home.join("config.toml"), cargo_config(upstream))
        .map_err(io("the import's Cargo configuration"))?;
    let wrapper = work.join("wrapper");
    std::fs::create_dir_all(&wrapper).map_err(io("the import's wrapper"))?;
    std::fs::write(wrapper.join("Cargo.toml"), wrapper_manifest(spec))
        .map_err(io("the import's wrapper"))?;
    std::fs::write(wrapper.join("lib.rs"), "").map_err(io("the import's wrapper"))?;
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(wrapper.join("Cargo.toml"))
        .env("CARGO_HOME", home)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_NET_RETRY", "1")
        .env_remove("RUSTFLAGS")
        .current_dir(work)
        .output()
        .map_err(|err| ImportError::Internal(format!("cannot run cargo: {err}")))?;
    if !output.status.success() {
        return Err(ImportError::Resolve {
            what: spec.describe(),
            message: cargo_error(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    let metadata: cargo_metadata::Metadata = serde_json::from_slice(&output.stdout)
        .map_err(|err| ImportError::Internal(format!("cargo metadata's answer: {err}")))?;
    let lock = std::fs::read_to_string(wrapper.join("Cargo.lock"))
        .map_err(io("the resolution's Cargo.lock"))?;
    let checksums = lock_checksums(&lock)?;
    members(&metadata, &checksums, home)
}

/// `name@version` → checksum, from a lockfile.
fn lock_checksums(lock: &str) -> Result<BTreeMap<(String, String), Digest>, ImportError> {
    let table: toml::Table = lock
        .parse()
        .map_err(|err| ImportError::Internal(format!("the resolution's Cargo.lock: {err}")))?;
    let mut out = BTreeMap::new();
    for package in table
        .get("package")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |key: &str| package.get(key).and_then(toml::Value::as_str);
        if let (Some(name), Some(version), Some(checksum)) =
            (field("name"), field("version"), field("checksum"))
        {
            let digest = Digest::from_hex(checksum).map_err(|err| {
                ImportError::Internal(format!("the checksum of {name}@{version}: {err}"))
            })?;
            out.insert((name.to_owned(), version.to_owned()), digest);
        }
    }
    Ok(out)
}

/// The members of the resolution (every package but the wrapper), each with its checksum, its
/// build-time code, the features turned on in it and its downloaded `.crate`.
fn members(
    metadata: &cargo_metadata::Metadata,
    checksums: &BTreeMap<(String, String), Digest>,
    home: &Path,
) -> Result<Vec<Member>, ImportError> {
    let resolve = metadata
        .resolve
        .as_ref()
        .ok_or_else(|| ImportError::Internal("cargo metadata resolved nothing".into()))?;
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for node in &resolve.nodes {
        let package = &metadata[&node.id];
        if package.name.as_str() == "kiln-import" {
            continue;
        }
        let name = package.name.to_string();
        let version = package.version.to_string();
        let subject = format!("{name}@{version}");
        let source = package.source.as_ref().map(|s| s.repr.clone());
        if !source
            .as_deref()
            .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
        {
            return Err(ImportError::Refused {
                subject,
                reason: format!(
                    "it does not come from the upstream registry ({})",
                    source.as_deref().unwrap_or("a path")
                ),
            });
        }
        let checksum = *checksums
            .get(&(name.clone(), version.clone()))
            .ok_or_else(|| ImportError::Refused {
                subject: subject.clone(),
                reason: "the upstream index gives it no checksum".into(),
            })?;
        let kinds: Vec<String> = package
            .targets
            .iter()
            .flat_map(|t| t.kind.iter().map(|k| k.to_string()))
            .collect();
        let crate_file = find_crate_file(home, &name, &version).ok_or_else(|| {
            ImportError::Internal(format!("cargo downloaded no .crate for {subject}"))
        })?;
        out.push(Member {
            name,
            version,
            checksum,
            license: package.license.clone(),
            build_script: kinds.iter().any(|k| k == "custom-build"),
            proc_macro: kinds.iter().any(|k| k == "proc-macro"),
            features: FeatureSet::of(node.features.iter().map(|f| f.to_string())),
            crate_file,
        });
        ids.push(node.id.clone());
    }
    Ok(dependencies_first(out, &ids, resolve))
}

/// `members` (with their package ids `ids`) ordered so that each comes after every member it
/// depends on, ties by name: audit and build jobs are queued in this order, so that a build
/// finds what it depends on compiled already.
fn dependencies_first(
    members: Vec<Member>,
    ids: &[cargo_metadata::PackageId],
    resolve: &cargo_metadata::Resolve,
) -> Vec<Member> {
    let deps: BTreeMap<&cargo_metadata::PackageId, Vec<&cargo_metadata::PackageId>> = resolve
        .nodes
        .iter()
        .map(|n| (&n.id, n.deps.iter().map(|d| &d.pkg).collect()))
        .collect();
    let mut placed: Vec<bool> = vec![false; members.len()];
    let mut order = Vec::with_capacity(members.len());
    while order.len() < members.len() {
        let ready = (0..members.len())
            .filter(|&i| !placed[i])
            .filter(|&i| {
                deps.get(&ids[i]).into_iter().flatten().all(|dep| {
                    ids.iter()
                        .position(|id| id == *dep)
                        .is_none_or(|j| placed[j])
                })
            })
            .min_by(|&a, &b| {
                (&members[a].name, &members[a].version)
                    .cmp(&(&members[b].name, &members[b].version))
            })
            // A cycle (through dev-dependencies, which the lockfile may hold): break it by name.
            .or_else(|| {
                (0..members.len())
                    .filter(|&i| !placed[i])
                    .min_by_key(|&i| &members[i].name)
            })
            .expect("a member is left");
        placed[ready] = true;
        order.push(ready);
    }
    let mut slots: Vec<Option<Member>> = members.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The `.crate` Cargo downloaded for `name@version` in `home`.
fn find_crate_file(home: &Path, name: &str, version: &str) -> Option<PathBuf> {
    let file = format!("{name}-{version}.crate");
    std::fs::read_dir(home.join("registry").join("cache"))
        .ok()?
        .filter_map(Result::ok)
        .map(|dir| dir.path().join(&file))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_asks_for_the_crate_as_a_dependent_would() {
        let spec = ImportSpec {
            krate: "serde".into(),
            req: "^1".into(),
            features: vec!["derive".into()],
            default_features: false,
        };
        let manifest: toml::Table = wrapper_manifest(&spec).parse().unwrap();
        let dep = &manifest["dependencies"]["serde"];
        assert_eq!(dep["version"].as_str(), Some("^1"));
        assert_eq!(dep["default-features"].as_bool(), Some(false));
        assert_eq!(dep["features"][0].as_str(), Some("derive"));
        assert!(manifest.contains_key("workspace"));
        assert_eq!(
            spec.describe(),
            "serde@^1 (features derive) without default features"
        );
        assert!(cargo_config(super::super::CRATES_IO_INDEX).is_empty());
        assert!(cargo_config("sparse+http://127.0.0.1:9/index/").contains("replace-with"));
    }

    #[test]
    fn cargo_errors_come_down_to_one_line() {
        let stderr = "    Updating `upstream` index\nerror: failed to select a version for the requirement `serde_json = \"^99\"`\n  candidate versions found which didn't match: 1.0.145\n  location searched: `upstream` index\n";
        let line = cargo_error(stderr);
        assert!(!line.contains('\n'));
        assert!(line.starts_with("failed to select a version"), "{line}");
    }
}
