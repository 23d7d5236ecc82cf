//! The build cache: earlier results by the digest of their inputs (`KEY/` holding the
//! artifacts under their standard names). An entry is served only when it is whole and still
//! what this builder signed: the modules match the manifest, and the provenance verifies with
//! the builder's key and names the modules, the manifest and the log. Anything else is a miss,
//! and the build runs again.

use std::path::PathBuf;

use kiln_policy::slsa::Provenance;
use kiln_policy::{Digest, Expectation, Keyring, PublicKey, Role, StatementKind, Verifier};

use crate::build::{Artifacts, write_artifacts};

/// A directory of earlier results by cache key.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The artifacts stored under `key`, if all of them are there and they are what `signer`
    /// (the builder's key) signed; a changed or torn entry is logged and missed.
    pub fn get(&self, key: &Digest, signer: &PublicKey) -> Option<Artifacts> {
        let dir = self.dir.join(key.hex());
        let read = |name: &str| std::fs::read(dir.join(name)).ok();
        let manifest = read("manifest.json")?;
        let artifacts = Artifacts {
            wasm: read("kernel.wasm")?,
            cwasm: read("kernel.cwasm")?,
            parsed_manifest: serde_json::from_slice(&manifest).ok()?,
            manifest,
            provenance: String::from_utf8(read("provenance.sigstore.json")?).ok()?,
            log: String::from_utf8(read("build.log")?).ok()?,
        };
        match check(&artifacts, signer) {
            Ok(()) => Some(artifacts),
            Err(problem) => {
                tracing::warn!(entry = %dir.display(), problem, "ignoring a build cache entry that does not match its signed provenance");
                None
            }
        }
    }

    /// Stores `artifacts` under `key` (written aside, then renamed into place).
    pub fn put(&self, key: &Digest, artifacts: &Artifacts) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let staging = tempfile::tempdir_in(&self.dir)?;
        write_artifacts(staging.path(), artifacts)?;
        let dest = self.dir.join(key.hex());
        if dest.exists() {
            // A bad entry is replaced; a good one stays.
            std::fs::remove_dir_all(&dest)?;
        }
        std::fs::rename(staging.keep(), &dest)?;
        Ok(())
    }
}

/// Whether `artifacts` hang together under a provenance `signer` signed.
fn check(artifacts: &Artifacts, signer: &PublicKey) -> Result<(), String> {
    let manifest = &artifacts.parsed_manifest;
    let wasm = Digest::of(&artifacts.wasm);
    let cwasm = Digest::of(&artifacts.cwasm);
    if wasm != manifest.wasm || Some(cwasm) != manifest.cwasm {
        return Err("the modules do not match the manifest".into());
    }
    let mut keyring = Keyring::new();
    keyring
        .add("builder", signer.clone(), [Role::Builder])
        .map_err(|err| err.to_string())?;
    let verified = Verifier::new(&keyring)
        .verify_json(
            artifacts.provenance.as_bytes(),
            Expectation {
                kind: Some(StatementKind::Provenance),
                subject: Some(wasm),
            },
        )
        .map_err(|err| format!("the provenance: {err}"))?;
    if !verified.statement.has_subject(&cwasm) {
        return Err("the provenance does not name the precompiled module".into());
    }
    let predicate: Provenance = verified
        .statement
        .predicate_as()
        .map_err(|err| format!("the provenance: {err}"))?;
    let byproducts: Vec<Option<Digest>> = predicate
        .run_details
        .byproducts
        .iter()
        .map(|b| b.sha256())
        .collect();
    for (name, digest) in [
        ("manifest", Digest::of(&artifacts.manifest)),
        ("build log", Digest::of(artifacts.log.as_bytes())),
    ] {
        if !byproducts.contains(&Some(digest)) {
            return Err(format!("the provenance does not name this {name}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_policy::intoto::{ResourceDescriptor, Statement};
    use kiln_policy::manifest::{ArtifactManifest, MANIFEST_SCHEMA};
    use kiln_policy::slsa::{BuildDefinition, Builder, RunDetails};
    use kiln_policy::{SigningKey, sign_statement};

    /// Artifacts with a provenance `key` signed over them.
    fn signed_artifacts(key: &SigningKey) -> Artifacts {
        let (wasm, cwasm, log) = (b"wasm".to_vec(), b"cwasm".to_vec(), "log".to_owned());
        let manifest = ArtifactManifest {
            schema: MANIFEST_SCHEMA.into(),
            krate: "k".into(),
            version: "1.0.0".into(),
            crate_checksum: Digest::of(b"crate"),
            wasm: Digest::of(&wasm),
            wasm_size: 4,
            cwasm: Some(Digest::of(&cwasm)),
            imports: Vec::new(),
            exports: Vec::new(),
            entries: Vec::new(),
            wasmtime_version: "48".into(),
            compatibility_hash: "h".into(),
        };
        let (manifest_bytes, manifest_digest) = manifest.to_bytes();
        let predicate = Provenance {
            build_definition: BuildDefinition {
                build_type: "https://kiln.dev/build/test".into(),
                external_parameters: serde_json::json!({}),
                internal_parameters: None,
                resolved_dependencies: Vec::new(),
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "https://kiln.dev/builder/test".into(),
                    version: Default::default(),
                    builder_dependencies: Vec::new(),
                },
                metadata: None,
                byproducts: vec![
                    ResourceDescriptor::new("manifest.json", manifest_digest),
                    ResourceDescriptor::new("build.log", Digest::of(log.as_bytes())),
                ],
            },
        };
        let statement = Statement::new(
            vec![
                ResourceDescriptor::new("k.wasm", manifest.wasm),
                ResourceDescriptor::new("k.cwasm", manifest.cwasm.unwrap()),
            ],
            StatementKind::Provenance.predicate_type(),
            predicate,
        )
        .into_untyped()
        .unwrap();
        Artifacts {
            wasm,
            cwasm,
            manifest: manifest_bytes,
            provenance: sign_statement(key, &statement).unwrap().to_json(),
            log,
            parsed_manifest: manifest,
        }
    }

    #[test]
    fn the_cache_returns_what_was_put_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = SigningKey::generate().unwrap();
        let signer = key.public_key().clone();
        let inputs = Digest::of(b"inputs");
        assert!(cache.get(&inputs, &signer).is_none());
        let artifacts = signed_artifacts(&key);
        cache.put(&inputs, &artifacts).unwrap();
        let hit = cache.get(&inputs, &signer).unwrap();
        assert_eq!(
            (hit.wasm, hit.cwasm, hit.log),
            (
                artifacts.wasm.clone(),
                artifacts.cwasm.clone(),
                artifacts.log.clone()
            )
        );
        assert!(cache.get(&Digest::of(b"other inputs"), &signer).is_none());
        // Signed by another builder key: not ours to serve.
        let other = SigningKey::generate().unwrap();
        assert!(cache.get(&inputs, other.public_key()).is_none());

        // A changed file, or one missing, is a miss, never a half or foreign result; a put
        // replaces the bad entry.
        let entry = dir.path().join(inputs.hex());
        for (file, bytes) in [
            ("kernel.wasm", &b"wasm, changed"[..]),
            ("kernel.cwasm", b"cwasm, changed"),
            ("build.log", b"log, changed"),
            ("provenance.sigstore.json", b"{}"),
        ] {
            std::fs::write(entry.join(file), bytes).unwrap();
            assert!(cache.get(&inputs, &signer).is_none(), "{file} changed");
            cache.put(&inputs, &artifacts).unwrap();
            assert!(cache.get(&inputs, &signer).is_some(), "{file} restored");
        }
        // The manifest rewritten to match changed modules: the provenance still tells.
        let mut forged = artifacts.clone();
        forged.wasm = b"evil".to_vec();
        forged.parsed_manifest.wasm = Digest::of(&forged.wasm);
        (forged.manifest, _) = forged.parsed_manifest.to_bytes();
        cache.put(&inputs, &forged).unwrap();
        assert!(cache.get(&inputs, &signer).is_none());
        std::fs::remove_file(entry.join("kernel.cwasm")).unwrap();
        assert!(cache.get(&inputs, &signer).is_none());
    }
}
