//! One hermetic build, from sources to signed artifacts:
//!
//! 1. **prepare**: the sources are laid out in a work directory (an unpacked `.crate`, or a local
//!    crate with the path dependencies it has inside its repository), and every registry
//!    dependency is vendored by `cargo vendor` (outside the sandbox, where no build-time code
//!    runs) from the registry the lockfile names;
//! 2. **build**: `cargo build --offline --locked --release --target wasm32-wasip1` in the
//!    sandbox ([`crate::sandbox`]), with fixed paths, remapped path prefixes and
//!    `SOURCE_DATE_EPOCH`, so the same inputs give the same bytes from any directory;
//! 3. **check and precompile**: the policy's wasm checks, then wasmtime AOT with the executor's
//!    engine settings;
//! 4. **attest**: the artifact manifest and an SLSA Provenance v1 statement signed with the
//!    builder key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_policy::checks::advisories::{Lockfile, parse_lockfile};
use kiln_policy::checks::crates;
use kiln_policy::checks::wasm::{self, WasmPolicy};
use kiln_policy::findings::Verdict;
use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::manifest::{ArtifactManifest, MANIFEST_SCHEMA};
use kiln_policy::slsa::{BuildDefinition, Builder, Provenance, RunDetails};
use kiln_policy::{Digest, KeyId, SigningKey, Statement, StatementKind, sign_statement};

pub use crate::cache::Cache;
use crate::curated::CuratedIndex;
use crate::sandbox::{self, Isolation, Limits, Mounts, paths};

/// The build type recorded in provenance.
pub const BUILD_TYPE: &str = "https://kiln.dev/build/cargo-wasm32-wasip1/v1";
/// The builder id recorded in provenance.
pub const BUILDER_ID: &str = "https://kiln.dev/builder/v1";
/// The target kernels are built for.
pub const TARGET: &str = "wasm32-wasip1";

/// Why a build failed. `Submission` errors are the crate's fault (do not retry); the others are
/// the builder's or the environment's.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The crate does not build, is not a kernel, or breaks the policy.
    #[error("{0}")]
    Submission(String),
    /// The builder could not do its work (toolchain, sandbox, disk, registry).
    #[error("{0}")]
    Builder(String),
}

fn builder_error(context: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |err| BuildError::Builder(format!("{context}: {err}"))
}

/// The Rust toolchain builds use.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// Its sysroot (mounted read-only in the sandbox).
    pub sysroot: PathBuf,
    /// `rustc -V`.
    pub rustc: String,
    /// `cargo -V`.
    pub cargo: String,
}

impl Toolchain {
    /// Refuses a toolchain other than the one `pinned` (a rustc version such as `1.95.0`).
    pub fn check_pin(&self, pinned: Option<&str>) -> Result<(), BuildError> {
        match pinned {
            Some(version) if self.rustc.split_whitespace().nth(1) != Some(version) => {
                Err(BuildError::Builder(format!(
                    "the policy pins rustc {version}, but this builder has {}",
                    self.rustc
                )))
            }
            _ => Ok(()),
        }
    }

    /// The toolchain `rustc` on `PATH` belongs to.
    pub fn detect() -> Result<Self, BuildError> {
        let output = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .ok_or_else(|| {
                    BuildError::Builder(format!("cannot run `{program} {}`", args.join(" ")))
                })
        };
        let sysroot = PathBuf::from(output("rustc", &["--print", "sysroot"])?);
        if !sysroot.join("lib/rustlib").join(TARGET).is_dir() {
            return Err(BuildError::Builder(format!(
                "the toolchain at {} has no {TARGET} target (rustup target add {TARGET})",
                sysroot.display()
            )));
        }
        Ok(Self {
            // The toolchain's own binaries, past rustup's proxies (which cost a process each).
            rustc: output(&sysroot.join("bin/rustc").display().to_string(), &["-V"])?,
            cargo: output(&sysroot.join("bin/cargo").display().to_string(), &["-V"])?,
            sysroot,
        })
    }
}

/// Sources laid out for a build.
#[derive(Debug)]
pub struct Prepared {
    work: tempfile::TempDir,
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The crate's directory, relative to the sources root.
    pub crate_rel: PathBuf,
    /// The lockfile's text.
    pub lockfile: String,
    /// The `.crate` checksum, when built from the registry.
    pub checksum: Option<Digest>,
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

    fn src(&self) -> PathBuf {
        self.work.path().join("src")
    }
    fn vendor(&self) -> PathBuf {
        self.work.path().join("vendor")
    }
    fn config(&self) -> PathBuf {
        self.work.path().join("config")
    }

    /// The inputs that decide the output, hashed: the sources (file names and contents), the
    /// lockfile, the toolchain, the isolation, the builder's version and `settings` (the wasm
    /// policy and the signing key's id, see [`settings_text`]). Equal keys give equal
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
    let work = tempfile::Builder::new()
        .prefix("kiln-build.")
        .tempdir()
        .map_err(builder_error("creating the work directory"))?;
    for dir in ["src", "vendor", "config", "target", "fetch-home"] {
        std::fs::create_dir_all(work.path().join(dir))
            .map_err(builder_error("creating the work directory"))?;
    }
    Ok(work)
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
        work,
    })
}

/// The cache key of a registry build, known before anything is fetched: the `.crate` checksum,
/// the lockfile it was published with, the toolchain, the isolation, the builder's version and
/// `settings` ([`settings_text`]). `None` without a packaged lockfile (the resolution could change).
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
            &BTreeMap::from([("kiln".to_owned(), index.index.clone())]),
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
    vendor(&mut prepared, &copy, &crate_dir, None, &registries)?;
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
/// with `home` as `CARGO_HOME` when given) and writes the sandbox's Cargo configuration.
fn vendor(
    prepared: &mut Prepared,
    manifest_dir: &Path,
    cwd: &Path,
    home: Option<&Path>,
    registries: &BTreeMap<String, String>,
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
    let config = String::from_utf8_lossy(&output.stdout)
        .replace(&vendor_dir.display().to_string(), paths::VENDOR);
    let mut text = config;
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

/// What a build made.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The module.
    pub wasm: Vec<u8>,
    /// The module precompiled by wasmtime.
    pub cwasm: Vec<u8>,
    /// The manifest (canonical JSON).
    pub manifest: Vec<u8>,
    /// The signed provenance (a Sigstore bundle, JSON).
    pub provenance: String,
    /// The build log.
    pub log: String,
    /// The manifest, parsed.
    pub parsed_manifest: ArtifactManifest,
}

/// Everything a build needs besides its sources.
#[derive(Debug)]
pub struct Settings<'a> {
    /// The toolchain.
    pub toolchain: &'a Toolchain,
    /// How builds are isolated.
    pub isolation: Isolation,
    /// Resource limits.
    pub limits: Limits,
    /// The wasm checks the result must pass.
    pub wasm_policy: &'a WasmPolicy,
    /// Signs the provenance.
    pub key: &'a SigningKey,
}

/// Builds `prepared` in the sandbox and turns the module into signed artifacts.
pub fn build(prepared: &Prepared, settings: &Settings<'_>) -> Result<Artifacts, BuildError> {
    let log = compile(prepared, settings)?;
    let lib = prepared.name.replace('-', "_");
    let module = prepared
        .work
        .path()
        .join("target")
        .join(TARGET)
        .join("release")
        .join(format!("{lib}.wasm"));
    let wasm = std::fs::read(&module).map_err(|_| {
        BuildError::Submission(format!(
            "the build made no {lib}.wasm: a kernel must be a cdylib ([lib] crate-type = [\"cdylib\"])"
        ))
    })?;
    finish(prepared, settings, wasm, log)
}

/// Runs `cargo build` for `prepared` in the sandbox; returns the build log. A library (a crate
/// kernels depend on) stops here: it compiles for the kernel target, and has no module.
pub fn compile(prepared: &Prepared, settings: &Settings<'_>) -> Result<String, BuildError> {
    let target = prepared.work.path().join("target");
    let mounts = Mounts {
        src: prepared.src(),
        vendor: prepared.vendor(),
        config: prepared.config(),
        target: target.clone(),
        toolchain: settings.toolchain.sysroot.clone(),
    };
    let remap = [
        (paths::SRC, "/kiln/src"),
        (paths::VENDOR, "/kiln/vendor"),
        (paths::HOME, "/kiln/cargo-home"),
        (paths::TOOLCHAIN, "/kiln/toolchain"),
    ];
    let host = [
        (paths::SRC, mounts.src.display().to_string()),
        (paths::VENDOR, mounts.vendor.display().to_string()),
        (paths::HOME, target.join("home").display().to_string()),
        (paths::TOOLCHAIN, mounts.toolchain.display().to_string()),
    ];
    let mut flags = Vec::new();
    for ((inside, neutral), (_, on_host)) in remap.iter().zip(host.iter()) {
        let from = if settings.isolation == Isolation::Bubblewrap {
            (*inside).to_owned()
        } else {
            on_host.clone()
        };
        flags.push(format!("--remap-path-prefix={from}={neutral}"));
    }
    let env: Vec<(&str, String)> = vec![
        ("PATH", format!("{}/bin:/usr/bin:/bin", paths::TOOLCHAIN)),
        ("HOME", paths::HOME.to_owned()),
        ("CARGO_HOME", paths::HOME.to_owned()),
        ("CARGO_TARGET_DIR", paths::TARGET.to_owned()),
        ("RUSTC", format!("{}/bin/rustc", paths::TOOLCHAIN)),
        ("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}")),
        ("CARGO_TERM_COLOR", "never".to_owned()),
        ("CARGO_INCREMENTAL", "0".to_owned()),
        ("SOURCE_DATE_EPOCH", "0".to_owned()),
        ("TZ", "UTC".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
    ];
    let args: Vec<String> = [
        &format!("{}/bin/cargo", paths::TOOLCHAIN),
        "build",
        "--offline",
        "--locked",
        "--release",
        "--lib",
        "--target",
        TARGET,
        "--config",
        &format!("{}/vendor.toml", paths::CONFIG),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let workdir = format!("{}/{}", paths::SRC, prepared.crate_rel.display());
    let outcome = sandbox::run(
        settings.isolation,
        &mounts,
        &workdir,
        &env,
        &args,
        settings.limits,
    )
    .map_err(builder_error("starting the sandbox"))?;
    if let Some(stopped) = outcome.stopped {
        return Err(BuildError::Submission(format!(
            "{stopped}; build log:\n{}",
            tail(&outcome.log)
        )));
    }
    if !outcome.success {
        return Err(BuildError::Submission(format!(
            "cargo build failed:\n{}",
            tail(&outcome.log)
        )));
    }
    Ok(outcome.log)
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Checks, precompiles and attests a built module.
fn finish(
    prepared: &Prepared,
    settings: &Settings<'_>,
    wasm: Vec<u8>,
    log: String,
) -> Result<Artifacts, BuildError> {
    let report = wasm::check(&wasm, settings.wasm_policy);
    if report.verdict == Verdict::Deny {
        let reasons: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("[{}] {}", f.code, f.message))
            .collect();
        return Err(BuildError::Submission(format!(
            "the built module breaks the wasm policy: {}",
            reasons.join("; ")
        )));
    }
    let engine = kiln_engine::new_engine().map_err(|err| BuildError::Builder(err.to_string()))?;
    let cwasm = engine.precompile_module(&wasm).map_err(|err| {
        BuildError::Submission(format!("wasmtime cannot compile the module: {err}"))
    })?;
    let metadata = report.metadata.clone().ok_or_else(|| {
        BuildError::Submission("the module has no kiln.kernel metadata section".into())
    })?;
    let wasm_digest = Digest::of(&wasm);
    let cwasm_digest = Digest::of(&cwasm);
    let crate_checksum = prepared
        .checksum
        .unwrap_or_else(|| Digest::of(prepared.lockfile.as_bytes()));
    let manifest = ArtifactManifest {
        schema: MANIFEST_SCHEMA.to_owned(),
        krate: prepared.name.clone(),
        version: prepared.version.clone(),
        crate_checksum,
        wasm: wasm_digest,
        wasm_size: wasm.len() as u64,
        cwasm: Some(cwasm_digest),
        imports: report.imports.clone(),
        exports: report.exports.clone(),
        entries: metadata.entries,
        wasmtime_version: kiln_engine::WASMTIME_VERSION.to_owned(),
        compatibility_hash: kiln_engine::compatibility_hash(&engine),
    };
    let (manifest_bytes, manifest_digest) = manifest.to_bytes();
    let lockfile = parse_lockfile(&prepared.lockfile)
        .map_err(|err| BuildError::Submission(err.to_string()))?;
    let statement = provenance(
        prepared,
        settings,
        &manifest,
        manifest_digest,
        &lockfile,
        &log,
    )
    .map_err(|err| BuildError::Builder(err.to_string()))?;
    let bundle = sign_statement(settings.key, &statement)
        .map_err(|err| BuildError::Builder(err.to_string()))?;
    Ok(Artifacts {
        wasm,
        cwasm,
        manifest: manifest_bytes,
        provenance: bundle.to_json(),
        log,
        parsed_manifest: manifest,
    })
}

fn provenance(
    prepared: &Prepared,
    settings: &Settings<'_>,
    manifest: &ArtifactManifest,
    manifest_digest: Digest,
    lockfile: &Lockfile,
    log: &str,
) -> Result<Statement, serde_json::Error> {
    let checksums = crates::checksums(lockfile);
    let mut resolved: Vec<ResourceDescriptor> = lockfile
        .packages
        .iter()
        .filter_map(|p| {
            let key = format!("{}@{}", p.name, p.version);
            checksums.get(&key).map(|digest| {
                let mut d = ResourceDescriptor::new(format!("crate:{key}"), *digest);
                d.uri = p.source.as_ref().map(|s| s.to_string());
                d
            })
        })
        .collect();
    let mut toolchain = ResourceDescriptor::new(
        "rust-toolchain",
        Digest::of(
            format!("{}\n{}", settings.toolchain.rustc, settings.toolchain.cargo).as_bytes(),
        ),
    );
    toolchain.annotations = Some(
        serde_json::json!({"rustc": settings.toolchain.rustc, "cargo": settings.toolchain.cargo, "target": TARGET}),
    );
    resolved.push(toolchain);
    let byproduct = |name: &str, digest: Digest, extra: Option<serde_json::Value>| {
        let mut d = ResourceDescriptor::new(name, digest);
        d.annotations = extra;
        d
    };
    let predicate = Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.to_owned(),
            external_parameters: serde_json::json!({
                "crate": prepared.name,
                "version": prepared.version,
                "checksum": prepared.checksum.map(|c| c.to_string()),
                "target": TARGET,
                "profile": "release",
                "features": [],
            }),
            internal_parameters: Some(serde_json::json!({
                "isolation": settings.isolation.as_str(),
                "limits": {"wall_secs": settings.limits.wall.as_secs(), "cpu_secs": settings.limits.cpu_secs, "address_space": settings.limits.address_space, "processes": settings.limits.processes},
            })),
            resolved_dependencies: resolved,
        },
        run_details: RunDetails {
            builder: Builder {
                id: BUILDER_ID.to_owned(),
                version: BTreeMap::from([
                    (
                        "kiln-builder".to_owned(),
                        env!("CARGO_PKG_VERSION").to_owned(),
                    ),
                    ("wasmtime".to_owned(), manifest.wasmtime_version.clone()),
                ]),
                builder_dependencies: Vec::new(),
            },
            metadata: None,
            byproducts: vec![
                byproduct(
                    "manifest.json",
                    manifest_digest,
                    Some(serde_json::json!({
                        "imports": manifest.imports, "exports": manifest.exports,
                        "compatibility_hash": manifest.compatibility_hash,
                    })),
                ),
                byproduct("build.log", Digest::of(log.as_bytes()), None),
            ],
        },
    };
    Statement::new(
        vec![
            ResourceDescriptor::new(format!("{}.wasm", prepared.name), manifest.wasm),
            ResourceDescriptor::new(
                format!("{}.cwasm", prepared.name),
                manifest.cwasm.expect("precompiled"),
            ),
        ],
        StatementKind::Provenance.predicate_type(),
        predicate,
    )
    .into_untyped()
}

/// The build settings that change a result, as text for a cache key: the wasm policy the module
/// must pass and the key that signs the provenance.
pub fn settings_text(wasm_policy: &WasmPolicy, key: &KeyId) -> String {
    format!(
        "{}\n{}",
        serde_json::to_string(wasm_policy).unwrap_or_default(),
        key
    )
}

/// The standard file names of a build's artifacts: module, precompiled module, manifest,
/// provenance, log.
const ARTIFACT_FILES: [&str; 5] = [
    "kernel.wasm",
    "kernel.cwasm",
    "manifest.json",
    "provenance.sigstore.json",
    "build.log",
];

/// Writes `artifacts` into `dir` under their standard names.
pub fn write_artifacts(dir: &Path, artifacts: &Artifacts) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let contents: [&[u8]; 5] = [
        &artifacts.wasm,
        &artifacts.cwasm,
        &artifacts.manifest,
        artifacts.provenance.as_bytes(),
        artifacts.log.as_bytes(),
    ];
    for (name, bytes) in ARTIFACT_FILES.iter().zip(contents) {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_toolchain_must_match() {
        let toolchain = Toolchain {
            sysroot: PathBuf::from("/toolchain"),
            rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
            cargo: "cargo 1.95.0".into(),
        };
        assert!(toolchain.check_pin(None).is_ok());
        assert!(toolchain.check_pin(Some("1.95.0")).is_ok());
        let err = toolchain.check_pin(Some("1.94.1")).unwrap_err();
        assert!(err.to_string().contains("pins rustc 1.94.1"), "{err}");
    }
}
