//! `kiln review diff NAME@VERSION [--against V]`: the source diff against the last approved
//! version, with new dependencies, new wasm imports, a changed build script and added `unsafe`
//! called out first.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use clap::Args;
use kiln_crate_archive::{CrateArchive, Limits};
use kiln_wire::submissions::{Submission, SubmissionDetail};

use super::split_target;
use crate::client::{Client, Connection};
use crate::style::Style;

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The version to review, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// The version to compare with (default: the newest approved version before it).
    #[arg(long, value_name = "VERSION")]
    against: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

/// The files of `name@version`'s `.crate`, read with the limits every part of kiln shares.
async fn crate_files(
    client: &Client,
    name: &str,
    version: &str,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let bytes = client
        .get_bytes(&format!("/api/kiln/v1/submissions/{name}/{version}/crate"))
        .await?;
    CrateArchive::new(&bytes, name, version, Limits::default())
        .files()
        .with_context(|| format!("reading the .crate of {name}@{version}"))
}

/// The dependency names of a `Cargo.toml`.
pub(crate) fn dependency_names(manifest: Option<&Vec<u8>>) -> Vec<String> {
    let Some(Ok(table)) =
        manifest.map(|m| toml::from_str::<toml::Table>(&String::from_utf8_lossy(m)))
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = ["dependencies", "build-dependencies"]
        .iter()
        .filter_map(|k| table.get(*k).and_then(toml::Value::as_table))
        .flat_map(|t| t.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A built module's imports, as `MODULE.NAME`.
fn imports(detail: &SubmissionDetail) -> Vec<String> {
    detail
        .reports
        .build
        .iter()
        .filter_map(|b| b.kernel.as_ref())
        .flat_map(|k| &k.imports)
        .map(|i| format!("{}.{}", i.module, i.name))
        .collect()
}

pub(crate) async fn diff(args: DiffArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let against = match &args.against {
        Some(v) => v.clone(),
        None => {
            let approved: Vec<Submission> = client
                .get_json("/api/kiln/v1/submissions?state=approved")
                .await?;
            let current = semver::Version::parse(version)
                .with_context(|| format!("`{version}` is not a version"))?;
            approved
                .iter()
                .filter(|s| s.krate == name)
                .filter_map(|s| semver::Version::parse(&s.version).ok())
                .filter(|v| *v < current)
                .max()
                .map(|v| v.to_string())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{name} has no approved version before {version} to diff against; review it whole with `kiln review show {name}@{version}`"
                    )
                })?
        }
    };
    let old = crate_files(&client, name, &against).await?;
    let new = crate_files(&client, name, version).await?;
    let old_detail: SubmissionDetail = client
        .get_json(&format!("/api/kiln/v1/submissions/{name}/{against}"))
        .await?;
    let new_detail: SubmissionDetail = client
        .get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"))
        .await?;
    let style = Style::detect();
    println!("{}", style.bold(&format!("{name}: {against} -> {version}")));
    let mut notes = Vec::new();
    let old_deps = dependency_names(old.get("Cargo.toml"));
    for dep in dependency_names(new.get("Cargo.toml")) {
        if !old_deps.contains(&dep) {
            notes.push(format!("new dependency: {dep}"));
        }
    }
    let old_imports = imports(&old_detail);
    for import in imports(&new_detail) {
        if !old_imports.contains(&import) {
            notes.push(format!("new import: {import}"));
        }
    }
    let mut sections = Vec::new();
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for path in paths {
        if path == "Cargo.toml.orig" || path == ".cargo_vcs_info.json" || path == "Cargo.lock" {
            continue;
        }
        let before = old
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let after = new
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned());
        if before == after {
            continue;
        }
        if path == "build.rs" {
            notes.push("build.rs changed: it runs at build time".to_owned());
        }
        let unified = similar::TextDiff::from_lines(
            before.as_deref().unwrap_or(""),
            after.as_deref().unwrap_or(""),
        )
        .unified_diff()
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
        let new_unsafe = unified
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++") && l.contains("unsafe"))
            .count();
        if new_unsafe > 0 {
            notes.push(format!("{path}: {new_unsafe} added lines with `unsafe`"));
        }
        sections.push(unified);
    }
    if notes.is_empty() {
        println!("no new dependencies, imports, build script changes or `unsafe`");
    }
    for note in &notes {
        println!("{}", style.warn(&format!("! {note}")));
    }
    for section in sections {
        println!();
        for line in section.lines() {
            println!("{}", style.diff_line(line));
        }
    }
    Ok(())
}
