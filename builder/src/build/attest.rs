//! After a build: the policy's wasm checks, wasmtime AOT with the executor's engine, the
//! artifact manifest and the signed SLSA provenance.

use std::collections::BTreeMap;

use kiln_policy::checks::advisories::{Lockfile, parse_lockfile};
use kiln_policy::checks::crates;
use kiln_policy::checks::wasm::{self};
use kiln_policy::findings::Verdict;
use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::manifest::{ArtifactManifest, MANIFEST_SCHEMA};
use kiln_policy::slsa::{BuildDefinition, Builder, Provenance, RunDetails};
use kiln_policy::{Digest, Statement, StatementKind, sign_statement};

use super::{
    Artifacts, BUILD_TYPE, BUILDER_ID, BuildError, KERNEL_RUSTFLAGS, Prepared, Settings, TARGET,
};
use kiln_policy::slsa::CELL_SOURCE;

/// Checks, precompiles and attests a built module.
pub(super) fn finish(
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
    if let Some(source) = prepared.cell_source {
        // A code cell: its source and the lock it was built with are materials too.
        resolved.push(ResourceDescriptor::new(CELL_SOURCE, source));
        resolved.push(ResourceDescriptor::new(
            "Cargo.lock",
            Digest::of(prepared.lockfile.as_bytes()),
        ));
    }
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
                "rustflags": KERNEL_RUSTFLAGS,
                "features": [],
                "code_cell": prepared.cell_source.map(|source| serde_json::json!({"source": source.to_string()})),
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
