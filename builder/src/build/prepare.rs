//! Laying out a build's sources: an unpacked registry `.crate`, or a local crate with its path
//! dependencies; vendoring registry dependencies outside the sandbox; the cache key of a
//! registry build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_policy::Digest;

use super::{BuildError, Toolchain, builder_error};
use crate::curated::CuratedIndex;
use crate::sandbox::{Isolation, paths};

/// Sources laid out for a build.
#[derive(Debug)]
pub struct Prepared {
    pub(super) work: tempfile::TempDir,
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The crate's directory, relative to the sources root.
    pub crate_rel: PathBuf,
    /// The lockfile's text.
    pub lockfile: String,
    /// The `.crate` checksum, when built from the registry; a code cell's request digest.
    pub checksum: Option<Digest>,
    /// A code cell's source digest, which the provenance names.
    pub cell_source: Option<Digest>,
}

/// Whether the crate in `dir` is a kernel: its library is a `cdylib`.
pub fn is_kernel(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("lib")?
                .get("crate-type")?
                .as_array()
                .map(|types| types.iter().any(|k| k.as_str() == Some("cdylib")))
        })
        .unwrap_or(false)
}

impl Prepared {
    /// Whether the crate is a kernel (a `cdylib`) rather than a library kernels depend on.
    pub fn is_kernel(&self) -> bool {
        is_kernel(&self.src().join(&self.crate_rel))
    }

    /// Cargo's target directory for the build (`/kiln/target` in the sandbox).
    pub fn target_dir(&self) -> PathBuf {
        self.work.path().join("target")
    }

    pub(super) fn src(&self) -> PathBuf {
        self.work.path().join("src")
    }
    pub(super) fn vendor(&self) -> PathBuf {
        self.work.path().join("vendor")
    }
    pub(super) fn config(&self) -> PathBuf {
        self.work.path().join("config")
    }

    /// The inputs that decide the output, hashed: the sources (file names and contents), the
    /// lockfile, the toolchain, the isolation, the builder's version and `settings` (the wasm
    /// policy and the signing key's id, see [`settings_text`](super::settings_text)). Equal keys give equal
    /// artifacts, so a build with a key seen before is served from the cache.
    pub fn cache_key(&self, toolchain: &Toolchain, isolation: Isolation, settings: &str) -> Digest {
        let mut files = Vec::new();
        collect_files(&self.src(), &self.src(), &mut files);
        files.sort();
        let mut text = format!(
            "{}\n{}\n{}\n{}\n{}\n{settings}\n",
            env!("CARGO_PKG_VERSION"),
            toolchain.rustc,
            toolchain.cargo,
            isolation.as_str(),
            Digest::of(self.lockfile.as_bytes())
        );
        for (path, digest) in files {
            text.push_str(&format!("{path} {digest}\n"));
        }
        Digest::of(text.as_bytes())
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, Digest)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => collect_files(root, &path, out),
            Ok(kind) if kind.is_file() => {
                if let Ok(bytes) = std::fs::read(&path) {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    out.push((rel.display().to_string(), Digest::of(&bytes)));
                }
            }
            _ => {}
        }
    }
}

fn new_work() -> Result<tempfile::TempDir, BuildError> {
    let work =
        crate::workdir::new("build").map_err(builder_error("creating the work directory"))?;
    for dir in ["src", "vendor", "config", "target", "fetch-home"] {
        std::fs::create_dir_all(work.path().join(dir))
            .map_err(builder_error("creating the work directory"))?;
    }
    Ok(work)
}

/// Lays out a generated crate (a code cell's): `files` by their paths inside the crate's
/// directory `name`; `checksum` names what it was generated from, `source` the cell's source.
pub fn prepare_generated(
    name: &str,
    files: &[(&str, String)],
    checksum: Digest,
    source: Digest,
) -> Result<Prepared, BuildError> {
    let work = new_work()?;
    let root = work.path().join("src").join(name);
    for (path, text) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(builder_error("writing the sources"))?;
        }
        std::fs::write(&path, text).map_err(builder_error("writing the sources"))?;
    }
    Ok(Prepared {
        crate_rel: PathBuf::from(name),
        name: name.to_owned(),
        version: "0.0.0".to_owned(),
        lockfile: String::new(),
        checksum: Some(checksum),
        cell_source: Some(source),
        work,
    })
}

/// Lays out a registry `.crate` (its bytes, already verified against `checksum`) and vendors its
/// dependencies from the registry whose sparse index is `index` (crates.io is replaced by it,
/// so nothing comes from anywhere else).
pub fn prepare_registry_crate(
    bytes: &[u8],
    name: &str,
    version: &str,
    checksum: Digest,
    index: &CuratedIndex,
) -> Result<Prepared, BuildError> {
    let mut prepared = unpack_registry_crate(bytes, name, version, checksum)?;
    prepared.vendor_registry(index)?;
    Ok(prepared)
}

/// Lays out a registry `.crate` without fetching anything yet; its `lockfile` is the one it was
/// published with (empty when it has none).
pub fn unpack_registry_crate(
    bytes: &[u8],
    name: &str,
    version: &str,
    checksum: Digest,
) -> Result<Prepared, BuildError> {
    let work = new_work()?;
    let root = kiln_crate_archive::CrateArchive::new(
        bytes,
        name,
        version,
        kiln_crate_archive::Limits::default(),
    )
    .unpack(&work.path().join("src"))
    .map_err(|err| BuildError::Submission(err.to_string()))?;
    Ok(Prepared {
        crate_rel: PathBuf::from(format!("{name}-{version}")),
        name: name.to_owned(),
        version: version.to_owned(),
        lockfile: std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default(),
        checksum: Some(checksum),
        cell_source: None,
        work,
    })
}

/// The cache key of a registry build, known before anything is fetched: the `.crate` checksum,
/// the lockfile it was published with, the toolchain, the isolation, the builder's version and
/// `settings` ([`settings_text`](super::settings_text)). `None` without a packaged lockfile (the resolution could change).
pub fn registry_cache_key(
    prepared: &Prepared,
    toolchain: &Toolchain,
    isolation: Isolation,
    settings: &str,
) -> Option<Digest> {
    let checksum = prepared.checksum?;
    if prepared.lockfile.is_empty() {
        return None;
    }
    let text = format!(
        "registry\n{}\n{}\n{}\n{}\n{checksum}\n{}\n{settings}\n",
        env!("CARGO_PKG_VERSION"),
        toolchain.rustc,
        toolchain.cargo,
        isolation.as_str(),
        Digest::of(prepared.lockfile.as_bytes()),
    );
    Some(Digest::of(text.as_bytes()))
}

impl Prepared {
    /// Builds a library as a dependent sees it ([`crate::dependent`]): a wrapper that depends on
    /// this version from the registry with `features` becomes the crate built, resolved afresh.
    /// `index` is the registry's URL for a crate published here, `None` for an imported one.
    pub fn as_dependent(
        &mut self,
        features: &kiln_wire::FeatureSet,
        index: Option<&str>,
    ) -> Result<(), BuildError> {
        crate::dependent::write_wrapper(
            &self.src(),
            &self.name,
            crate::dependent::Dependency::Registry {
                version: &self.version,
                index,
            },
            features,
        )
        .map_err(builder_error("writing the dependent package"))?;
        self.crate_rel = PathBuf::from(crate::dependent::WRAPPER);
        self.lockfile = String::new();
        Ok(())
    }

    /// Whether the crate built is a library's dependent ([`Prepared::as_dependent`]).
    pub fn is_dependent(&self) -> bool {
        self.crate_rel == Path::new(crate::dependent::WRAPPER)
    }

    /// Vendors a registry crate's dependencies from the registry's curated `index`.
    pub fn vendor_registry(&mut self, index: &CuratedIndex) -> Result<(), BuildError> {
        let home = self.work.path().join("fetch-home");
        std::fs::write(home.join("config.toml"), index.cargo_config())
            .map_err(builder_error("writing the fetch configuration"))?;
        let root = self.src().join(&self.crate_rel);
        vendor(
            self,
            &root,
            &root,
            Some(&home),
            &BTreeMap::from([("kiln".to_owned(), index.resolved_from().to_owned())]),
            &index.replaced(),
        )
    }
}

/// Lays out the local crate in `crate_dir` with the path dependencies it has inside
/// `repository` (default: the crate's git repository or its directory), and vendors its registry
/// dependencies with the caller's own Cargo configuration.
pub fn prepare_local(crate_dir: &Path, repository: Option<&Path>) -> Result<Prepared, BuildError> {
    let crate_dir = crate_dir
        .canonicalize()
        .map_err(builder_error("finding the crate"))?;
    // `--no-deps` reads only the manifests (no resolution of the whole workspace): the crate's
    // name and version, and where its workspace's lockfile is.
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(crate_dir.join("Cargo.toml"))
        .no_deps()
        .exec()
        .map_err(|err| BuildError::Submission(one_line(&err.to_string())))?;
    let root = metadata
        .packages
        .iter()
        .find(|p| {
            p.manifest_path
                .parent()
                .is_some_and(|d| d.as_std_path() == crate_dir)
        })
        .ok_or_else(|| {
            BuildError::Submission(format!("{} is not a package", crate_dir.display()))
        })?;
    let path_dirs = path_dependencies(&crate_dir)?;
    let repository = match repository {
        Some(r) => r
            .canonicalize()
            .map_err(builder_error("finding the repository"))?,
        None => git_toplevel(&crate_dir).unwrap_or_else(|| crate_dir.clone()),
    };
    let work = new_work()?;
    for dir in &path_dirs {
        let rel = dir.strip_prefix(&repository).map_err(|_| {
            BuildError::Submission(format!(
                "the path dependency at {} is outside the repository {}; publish it to the registry instead",
                dir.display(),
                repository.display()
            ))
        })?;
        copy_sources(dir, &work.path().join("src").join(rel))
            .map_err(builder_error("copying the sources"))?;
    }
    let crate_rel = crate_dir
        .strip_prefix(&repository)
        .expect("inside")
        .to_owned();
    // The registries the manifests name, with the index URLs the caller's configuration gives.
    let registries = registries_named(&crate_dir, &path_dirs);
    let mut prepared = Prepared {
        name: root.name.to_string(),
        version: root.version.to_string(),
        crate_rel: crate_rel.clone(),
        lockfile: String::new(),
        checksum: None,
        cell_source: None,
        work,
    };
    let copy = prepared.src().join(&crate_rel);
    // A lockfile of the workspace the crate came from would list every member; resolve this
    // crate on its own, preferring the versions that lockfile pinned.
    if let Some(lock) = metadata
        .workspace_root
        .as_std_path()
        .join("Cargo.lock")
        .to_str()
        .map(PathBuf::from)
        && lock.is_file()
        && !copy.join("Cargo.lock").is_file()
    {
        let _ = std::fs::copy(&lock, copy.join("Cargo.lock"));
    }
    vendor(&mut prepared, &copy, &crate_dir, None, &registries, &[])?;
    Ok(prepared)
}

/// The crate in `crate_dir` and every path dependency it has, transitively (dev-dependencies
/// included: Cargo resolves them for the lockfile), read from the manifests.
fn path_dependencies(crate_dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut todo = vec![crate_dir.to_owned()];
    while let Some(dir) = todo.pop() {
        let dir = dir.canonicalize().map_err(|err| {
            BuildError::Submission(format!("path dependency {}: {err}", dir.display()))
        })?;
        if found.contains(&dir) {
            continue;
        }
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).map_err(|err| {
            BuildError::Submission(format!("{}/Cargo.toml: {err}", dir.display()))
        })?;
        let manifest: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            BuildError::Submission(format!(
                "{}/Cargo.toml: {}",
                dir.display(),
                one_line(&err.to_string())
            ))
        })?;
        for table in dependency_tables(&manifest) {
            for dep in table.values() {
                if let Some(path) = dep.get("path").and_then(|p| p.as_str()) {
                    todo.push(dir.join(path));
                }
            }
        }
        found.push(dir);
    }
    Ok(found)
}

/// Every dependency table of a manifest (normal, dev, build; also per target).
fn dependency_tables(manifest: &toml::Table) -> Vec<toml::Table> {
    const KEYS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut tables: Vec<toml::Table> = KEYS
        .iter()
        .filter_map(|k| manifest.get(*k).and_then(|t| t.as_table()).cloned())
        .collect();
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for target in targets.values() {
            tables.extend(
                KEYS.iter()
                    .filter_map(|k| target.get(*k).and_then(|t| t.as_table()).cloned()),
            );
        }
    }
    tables
}

fn git_toplevel(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Copies a crate's sources, leaving out `target/` and hidden directories.
fn copy_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if text == "target" || text.starts_with('.') {
                continue;
            }
            copy_sources(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// `registry = "NAME"` keys in the manifests, with the index each has in the Cargo
/// configuration seen from `cwd` (`CARGO_REGISTRIES_NAME_INDEX`, then `.cargo/config.toml`
/// files from `cwd` upwards, then `CARGO_HOME/config.toml`).
fn registries_named(cwd: &Path, dirs: &[PathBuf]) -> BTreeMap<String, String> {
    let mut names = std::collections::BTreeSet::new();
    for dir in dirs {
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let Ok(value) = text.parse::<toml::Table>() else {
            continue;
        };
        let tables = dependency_tables(&value);
        for table in tables {
            for dep in table.values() {
                if let Some(name) = dep.get("registry").and_then(|r| r.as_str()) {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    let mut configs = Vec::new();
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        for file in ["config.toml", "config"] {
            configs.push(d.join(".cargo").join(file));
        }
        dir = d.parent();
    }
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    {
        configs.push(home.join("config.toml"));
    }
    let mut found = BTreeMap::new();
    for name in names {
        let env = format!(
            "CARGO_REGISTRIES_{}_INDEX",
            name.to_ascii_uppercase().replace('-', "_")
        );
        let index = std::env::var(&env).ok().or_else(|| {
            configs.iter().find_map(|file| {
                let table = std::fs::read_to_string(file)
                    .ok()?
                    .parse::<toml::Table>()
                    .ok()?;
                table
                    .get("registries")?
                    .get(&name)?
                    .get("index")?
                    .as_str()
                    .map(str::to_owned)
            })
        });
        if let Some(index) = index {
            found.insert(name, index);
        }
    }
    found
}

/// Vendors the registry dependencies of the crate at `manifest_dir` (running Cargo in `cwd`,
/// with `home` as `CARGO_HOME` when given) and writes the sandbox's Cargo configuration, in
/// which the sources `aliases` (other URLs of the registry vendored from) are vendored too.
fn vendor(
    prepared: &mut Prepared,
    manifest_dir: &Path,
    cwd: &Path,
    home: Option<&Path>,
    registries: &BTreeMap<String, String>,
    aliases: &[&str],
) -> Result<(), BuildError> {
    let locked = manifest_dir.join("Cargo.lock").is_file();
    let vendor_dir = prepared.vendor();
    let mut command = Command::new("cargo");
    command
        .arg("vendor")
        .arg("--versioned-dirs")
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .arg(&vendor_dir)
        .current_dir(cwd)
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("CARGO_TARGET_DIR");
    if locked && home.is_some() {
        command.arg("--locked");
    }
    if let Some(home) = home {
        // `cargo vendor` ignores source replacement unless told otherwise: without this it
        // would fetch crates.io dependencies from crates.io instead of the curated index.
        command
            .env("CARGO_HOME", home)
            .arg("--respect-source-config");
    }
    let output = command
        .output()
        .map_err(builder_error("running cargo vendor"))?;
    if !output.status.success() {
        return Err(BuildError::Submission(format!(
            "resolving and vendoring the dependencies failed (every dependency must be approved in this registry): {}",
            one_line(&String::from_utf8_lossy(&output.stderr))
        )));
    }
    crate::target_cache::settle_mtimes(&vendor_dir)
        .map_err(builder_error("settling the vendored sources"))?;
    let config = String::from_utf8_lossy(&output.stdout)
        .replace(&vendor_dir.display().to_string(), paths::VENDOR);
    let mut text = config.clone();
    // Cargo names only the sources it fetched from; manifests may name the same crates by
    // another URL of the registry (its public one), which must resolve to the vendored copies.
    for (n, alias) in aliases
        .iter()
        .filter(|alias| !config.contains(&format!("\"{alias}\"")))
        .enumerate()
    {
        text.push_str(&format!(
            "\n[source.kiln-vendored-alias-{n}]\nregistry = \"{alias}\"\nreplace-with = \"vendored-sources\"\n"
        ));
    }
    for (name, index) in registries {
        text.push_str(&format!("\n[registries.{name}]\nindex = \"{index}\"\n"));
    }
    text.push_str("\n[net]\noffline = true\n");
    std::fs::write(prepared.config().join("vendor.toml"), text)
        .map_err(builder_error("writing the build configuration"))?;
    prepared.lockfile = std::fs::read_to_string(manifest_dir.join("Cargo.lock"))
        .map_err(builder_error("reading the resolved lockfile"))?;
    Ok(())
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
