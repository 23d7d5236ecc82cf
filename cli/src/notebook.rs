//! `kiln notebook lock FILE [--update]`: pins each kernel of a notebook's lock to an exact
//! approved version with its `.wasm` and `.cwasm` digests, from the registry's catalogue. A lock
//! entry may hold a version requirement (`"version": "^0.2"`), or a version without digests;
//! either is resolved to the newest approved, unrevoked version that satisfies it, and the
//! requirement is kept beside the pin. `--update` moves every pin to the newest approved version
//! within its requirement (an exact version `V` without one is taken as `^V`, as Cargo does)
//! and prints what changed.
//!
//! A code cell's dependencies are locked the same way, from the registry's sparse index (which
//! lists approved versions only): each gets the newest approved, unyanked version within its
//! requirement as its exact `version`.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use kiln_wire::catalogue::CatalogueEntry;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub(crate) enum NotebookCommand {
    /// Pin the notebook's kernels to approved versions and their digests.
    Lock(LockArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// The notebook (JSON, docs/notebook.md); rewritten in place.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Move every pin to the newest approved version within its requirement.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    connection: crate::client::Connection,
}

pub(crate) fn run(command: NotebookCommand) -> Result<()> {
    match command {
        NotebookCommand::Lock(args) => lock_file(&args),
    }
}

/// A pin that changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Change {
    kernel: String,
    krate: String,
    /// The version pinned before, when there was a pin.
    before: Option<String>,
    after: String,
    /// The `.wasm` pinned now.
    wasm: String,
}

fn lock_file(args: &LockArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let mut doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let client = crate::client::Client::new(&args.connection)?;
    let catalogue: Vec<CatalogueEntry> = tokio::runtime::Runtime::new()?
        .block_on(client.get_json("/api/kiln/v1/catalogue"))
        .context("reading the registry's kernel catalogue")?;
    let mut changes = if doc
        .get("kernels")
        .is_some_and(|k| k.as_object().is_some_and(|k| !k.is_empty()))
    {
        lock(&mut doc, &catalogue, args.update)?
    } else {
        Vec::new()
    };
    let names = code_dependency_names(&doc);
    let mut approved = std::collections::BTreeMap::new();
    for name in names {
        let versions = tokio::runtime::Runtime::new()?
            .block_on(index_versions(&client, &name))
            .with_context(|| format!("reading the registry's index entry of {name}"))?;
        approved.insert(name, versions);
    }
    changes.extend(lock_code_cells(&mut doc, &approved, args.update)?);
    let mut out = serde_json::to_string_pretty(&doc)?;
    out.push('\n');
    if out != text {
        std::fs::write(&args.file, out)
            .with_context(|| format!("writing {}", args.file.display()))?;
    }
    if changes.is_empty() {
        println!("every kernel is pinned to the newest approved version it allows");
    }
    for change in &changes {
        match &change.before {
            Some(before) => println!(
                "{}: {} {before} -> {} ({})",
                change.kernel, change.krate, change.after, change.wasm
            ),
            None => println!(
                "{}: {} pinned to {} ({})",
                change.kernel, change.krate, change.after, change.wasm
            ),
        }
    }
    Ok(())
}

/// The names of every code cell's dependencies.
fn code_dependency_names(doc: &Value) -> std::collections::BTreeSet<String> {
    doc.get("cells")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|cell| cell.get("type").and_then(Value::as_str) == Some("code"))
        .filter_map(|cell| cell.get("dependencies").and_then(Value::as_object))
        .flat_map(|deps| deps.keys().cloned())
        .collect()
}

/// The path of `name`'s file in a sparse index, as Cargo lays it out.
fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

/// The approved, unyanked versions of `name` that the registry's sparse index lists (none when
/// it lists none).
async fn index_versions(
    client: &crate::client::Client,
    name: &str,
) -> Result<Vec<semver::Version>> {
    let Ok(text) = client
        .get_bytes(&format!("/index/{}", index_path(name)))
        .await
    else {
        return Ok(Vec::new());
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(kiln_wire::index::is_available)
        .filter_map(|entry| semver::Version::parse(entry["vers"].as_str()?).ok())
        .collect())
}

/// Locks every code cell's dependencies to the newest of `approved` (versions by crate name)
/// within their requirements; answers what changed.
pub(crate) fn lock_code_cells(
    doc: &mut Value,
    approved: &std::collections::BTreeMap<String, Vec<semver::Version>>,
    update: bool,
) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    let cells = doc
        .get_mut("cells")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten();
    for cell in cells.filter(|c| c.get("type").and_then(Value::as_str) == Some("code")) {
        let id = cell
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let Some(deps) = cell.get_mut("dependencies").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, dep) in deps.iter_mut() {
            if let Value::String(requirement) = dep {
                // `"serde_json": "1"`, Cargo's short form.
                *dep = serde_json::json!({"requirement": requirement.clone()});
            }
            let Some(entry) = dep.as_object_mut() else {
                bail!("cell {id}: dependencies.{name} is not an object");
            };
            let version = entry
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let exact = version
                .as_deref()
                .and_then(|v| semver::Version::parse(v).ok());
            if exact.is_some() && !update {
                continue;
            }
            let requirement = match (entry.get("requirement").and_then(Value::as_str), &exact) {
                (Some(requirement), _) => requirement.to_owned(),
                (None, Some(exact)) => format!("^{exact}"),
                (None, None) => "*".to_owned(),
            };
            let req = semver::VersionReq::parse(&requirement).with_context(|| {
                format!(
                    "cell {id}: dependencies.{name}: `{requirement}` is not a version requirement"
                )
            })?;
            let chosen = approved
                .get(name)
                .into_iter()
                .flatten()
                .filter(|v| req.matches(v))
                .max()
                .with_context(|| {
                    format!(
                        "cell {id}: no approved version of {name} matches `{requirement}` in this registry"
                    )
                })?
                .to_string();
            entry.insert("version".into(), Value::String(chosen.clone()));
            entry.insert("requirement".into(), Value::String(requirement));
            if version.as_deref() != Some(chosen.as_str()) {
                changes.push(Change {
                    kernel: format!("cell {id}"),
                    krate: name.clone(),
                    before: version,
                    after: chosen,
                    wasm: "locked".into(),
                });
            }
        }
    }
    Ok(changes)
}

/// Pins every kernel of `doc`'s lock from `catalogue`; answers what changed.
pub(crate) fn lock(
    doc: &mut Value,
    catalogue: &[CatalogueEntry],
    update: bool,
) -> Result<Vec<Change>> {
    let Some(kernels) = doc.get_mut("kernels").and_then(Value::as_object_mut) else {
        bail!("the notebook has no `kernels` lock");
    };
    let mut changes = Vec::new();
    for (name, entry) in kernels.iter_mut() {
        let Some(entry) = entry.as_object_mut() else {
            bail!("kernels.{name} is not an object");
        };
        let krate = entry
            .get("crate")
            .and_then(Value::as_str)
            .with_context(|| format!("kernels.{name} names no `crate`"))?
            .to_owned();
        let version = entry
            .get("version")
            .and_then(Value::as_str)
            .with_context(|| format!("kernels.{name} names no `version`"))?
            .to_owned();
        let exact = semver::Version::parse(&version).ok();
        let pinned = exact.is_some() && entry.contains_key("wasm");
        if pinned && !update {
            continue;
        }
        let requirement = match (entry.get("requirement").and_then(Value::as_str), &exact) {
            (Some(requirement), _) => requirement.to_owned(),
            (None, Some(exact)) if update => format!("^{exact}"),
            (None, Some(exact)) => format!("={exact}"),
            (None, None) => version.clone(),
        };
        let req = semver::VersionReq::parse(&requirement).with_context(|| {
            format!("kernels.{name}: `{requirement}` is not a version requirement")
        })?;
        let chosen = catalogue
            .iter()
            .filter(|c| c.krate == krate && c.revoked.is_none())
            .filter_map(|c| Some((semver::Version::parse(&c.version).ok()?, c)))
            .filter(|(v, _)| req.matches(v))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, c)| c)
            .with_context(|| {
                format!(
                    "kernels.{name}: no approved, unrevoked version of {krate} matches `{requirement}`"
                )
            })?;
        let wasm_text = chosen.kernel.wasm.to_string();
        let wasm = Value::String(wasm_text.clone());
        let changed = entry.get("version").and_then(Value::as_str) != Some(&chosen.version)
            || entry.get("wasm") != Some(&wasm);
        entry.insert("version".into(), Value::String(chosen.version.clone()));
        entry.insert("wasm".into(), wasm);
        match chosen.kernel.cwasm {
            Some(cwasm) => entry.insert("cwasm".into(), Value::String(cwasm.to_string())),
            None => entry.remove("cwasm"),
        };
        if exact.is_none() || entry.contains_key("requirement") {
            entry.insert("requirement".into(), Value::String(requirement));
        }
        if changed {
            changes.push(Change {
                kernel: name.clone(),
                krate: krate.clone(),
                before: pinned.then_some(version),
                after: chosen.version.clone(),
                wasm: wasm_text,
            });
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use kiln_policy::Digest;
    use kiln_wire::submissions::KernelBuild;

    use super::*;

    fn entry(krate: &str, version: &str, revoked: bool) -> CatalogueEntry {
        CatalogueEntry {
            krate: krate.into(),
            version: version.into(),
            published_by: "ada".into(),
            published_at: 0,
            kernel: KernelBuild {
                wasm: Digest::of(format!("{krate}@{version}").as_bytes()),
                cwasm: Some(Digest::of(format!("{krate}@{version}.cwasm").as_bytes())),
                wasm_size: 1,
                imports: Vec::new(),
                exports: Vec::new(),
                entries: Vec::new(),
                wasmtime_version: "48".into(),
                compatibility_hash: "x".into(),
            },
            audit: None,
            reviews: Vec::new(),
            statements: Vec::new(),
            revoked: revoked.then(|| "incident".to_owned()),
        }
    }

    fn catalogue() -> Vec<CatalogueEntry> {
        vec![
            entry("kernel-csv-stats", "0.1.0", false),
            entry("kernel-csv-stats", "0.2.0", false),
            entry("kernel-csv-stats", "0.2.1", false),
            entry("kernel-csv-stats", "0.2.2", true),
            entry("kernel-csv-stats", "0.3.0", false),
        ]
    }

    #[test]
    fn a_requirement_resolves_to_the_newest_unrevoked_match() {
        let mut doc = serde_json::json!({"kernels": {"csv": {"crate": "kernel-csv-stats", "version": "^0.2"}}});
        let changes = lock(&mut doc, &catalogue(), false).unwrap();
        let csv = &doc["kernels"]["csv"];
        assert_eq!(csv["version"], "0.2.1");
        assert_eq!(csv["requirement"], "^0.2");
        assert_eq!(
            csv["wasm"],
            Digest::of(b"kernel-csv-stats@0.2.1").to_string()
        );
        assert!(csv["cwasm"].is_string());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].before, None);
        // Locking again changes nothing.
        assert!(lock(&mut doc, &catalogue(), false).unwrap().is_empty());
    }

    #[test]
    fn update_moves_pins_within_their_requirement() {
        let mut doc = serde_json::json!({"kernels": {
            "csv": {"crate": "kernel-csv-stats", "version": "0.2.0", "wasm": Digest::of(b"kernel-csv-stats@0.2.0")},
        }});
        // Without --update, a pinned kernel stays.
        assert!(lock(&mut doc, &catalogue(), false).unwrap().is_empty());
        let changes = lock(&mut doc, &catalogue(), true).unwrap();
        assert_eq!(
            changes,
            vec![Change {
                kernel: "csv".into(),
                krate: "kernel-csv-stats".into(),
                before: Some("0.2.0".into()),
                after: "0.2.1".into(),
                wasm: Digest::of(b"kernel-csv-stats@0.2.1").to_string(),
            }]
        );
        assert_eq!(doc["kernels"]["csv"]["version"], "0.2.1");
    }

    #[test]
    fn a_code_cells_dependencies_lock_to_the_newest_approved_match() {
        let mut doc = serde_json::json!({"kiln_notebook": 2, "cells": [
            {"type": "code", "id": "c", "source": "", "input": {"text": ""},
             "dependencies": {"serde_json": "1", "memchr": {"version": "2.7.4"}}},
        ]});
        let approved = std::collections::BTreeMap::from([
            (
                "serde_json".to_owned(),
                vec![
                    semver::Version::new(1, 0, 140),
                    semver::Version::new(1, 0, 145),
                    semver::Version::new(2, 0, 0),
                ],
            ),
            ("memchr".to_owned(), vec![semver::Version::new(2, 7, 6)]),
        ]);
        let changes = lock_code_cells(&mut doc, &approved, false).unwrap();
        assert_eq!(changes.len(), 1);
        let deps = &doc["cells"][0]["dependencies"];
        assert_eq!(deps["serde_json"]["version"], "1.0.145");
        assert_eq!(deps["serde_json"]["requirement"], "1");
        assert_eq!(deps["memchr"]["version"], "2.7.4");
        lock_code_cells(&mut doc, &approved, true).unwrap();
        assert_eq!(
            doc["cells"][0]["dependencies"]["memchr"]["version"],
            "2.7.6"
        );
        let mut missing = serde_json::json!({"cells": [{"type": "code", "id": "d",
            "dependencies": {"left-pad": "1"}}]});
        let err = lock_code_cells(&mut missing, &approved, false).unwrap_err();
        assert!(
            err.to_string().contains("no approved version of left-pad"),
            "{err}"
        );
        assert_eq!(index_path("serde_json"), "se/rd/serde_json");
        assert_eq!(index_path("abc"), "3/a/abc");
    }

    #[test]
    fn nothing_approved_is_an_error_naming_the_kernel() {
        let mut doc =
            serde_json::json!({"kernels": {"csv": {"crate": "kernel-csv-stats", "version": "^9"}}});
        let err = lock(&mut doc, &catalogue(), false).unwrap_err();
        assert!(err.to_string().starts_with("kernels.csv:"), "{err}");
    }
}
