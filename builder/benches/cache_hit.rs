//! A build worker's cache hit for a real kernel: `kernel-csv-stats` is built once in the sandbox
//! (setup, not measured) and packed as the `.crate` a registry would hold, with its lockfile.
//! Measured: what the worker does on a hit before uploading (unpack the `.crate`, key it, read
//! the five artifacts and check them against the signed provenance). Baseline in the same run:
//! reading the same five files, the floor of any cache that serves from disk.

#![allow(clippy::disallowed_macros, reason = "a benchmark prints its figures")]

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_builder::build::{self, Settings, Toolchain};
use kiln_builder::cache::Cache;
use kiln_builder::sandbox::{Isolation, Limits};
use kiln_policy::policy_file::Policy;
use kiln_policy::{Digest, SigningKey};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// A `.crate` (gzipped tar of `NAME-VERSION/`) of the files under `dir` plus `lockfile`.
fn pack(dir: &Path, name: &str, version: &str, lockfile: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let prefix = format!("{name}-{version}");
    tar.append_dir_all(&prefix, dir).expect("pack the sources");
    let mut header = tar::Header::new_gnu();
    header.set_size(lockfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        format!("{prefix}/Cargo.lock"),
        lockfile.as_bytes(),
    )
    .expect("pack the lockfile");
    let raw = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &raw).expect("gzip");
    gz.finish().expect("gzip")
}

fn cache_hit(c: &mut Criterion) {
    let root = workspace_root();
    let crate_dir = root.join("examples/kernels/csv-stats");
    let toolchain = Toolchain::detect().expect("a toolchain with wasm32-wasip1");
    let isolation = Isolation::detect().expect("bubblewrap (scripts/setup installs it)");
    let policy = Policy::parse("", "defaults").expect("the built-in policy");
    let key = SigningKey::generate().expect("a key");
    let prepared = build::prepare_local(&crate_dir, Some(&root)).expect("the sources");
    let artifacts = build::build(
        &prepared,
        &Settings {
            toolchain: &toolchain,
            isolation,
            limits: Limits::default(),
            wasm_policy: &policy.wasm,
            key: &key,
        },
    )
    .expect("the kernel builds");
    let sources = tempfile::tempdir().expect("a scratch directory");
    for file in ["Cargo.toml", "src"] {
        let from = crate_dir.join(file);
        let to = sources.path().join(file);
        if from.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let (name, version) = (prepared.name.clone(), prepared.version.clone());
    let bytes = pack(sources.path(), &name, &version, &prepared.lockfile);
    let checksum = Digest::of(&bytes);
    let settings = build::settings_text(&policy.wasm, key.id());
    let unpacked = build::unpack_registry_crate(&bytes, &name, &version, checksum).unwrap();
    let inputs = build::registry_cache_key(&unpacked, &toolchain, isolation, &settings)
        .expect("a packaged lockfile keys the build");
    let cache_dir = tempfile::tempdir().expect("a cache directory");
    let cache = Cache::new(cache_dir.path());
    cache.put(&inputs, &artifacts).expect("cache the build");
    println!(
        "kernel-csv-stats: .crate {} bytes, wasm {} bytes, cwasm {} bytes",
        bytes.len(),
        artifacts.wasm.len(),
        artifacts.cwasm.len()
    );

    let mut group = c.benchmark_group("build_cache");
    group.bench_function("baseline: read the five cached files", |b| {
        let entry = cache_dir.path().join(inputs.hex());
        b.iter(|| {
            for file in [
                "kernel.wasm",
                "kernel.cwasm",
                "manifest.json",
                "provenance.sigstore.json",
                "build.log",
            ] {
                std::hint::black_box(std::fs::read(entry.join(file)).unwrap());
            }
        })
    });
    group.bench_function("worker hit: unpack, key, read and check", |b| {
        b.iter(|| {
            let unpacked = build::unpack_registry_crate(&bytes, &name, &version, checksum).unwrap();
            assert!(unpacked.is_kernel());
            let found =
                build::registry_cache_key(&unpacked, &toolchain, isolation, &settings).unwrap();
            let hit = cache.get(&found, key.public_key()).expect("a hit");
            std::hint::black_box(hit)
        })
    });
    group.finish();
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);
