//! `kiln review`: what an admin does with each submission. `list` the queue, `show` one
//! (audit, build, imports and exports, its dependencies and their approval, provenance), `diff`
//! its source against the last approved version, `approve` (the server signs a review
//! statement with its reviewer key) or `reject` with a reason, and `export-vet` the approvals as
//! a cargo-vet `audits.toml`.

use std::collections::BTreeMap;
use std::io::Read as _;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::{Client, Connection};
use crate::style::Style;

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// The submissions, as a table (crate, version, state, verdict, findings, age).
    List(ListArgs),
    /// One submission: audit report, build, imports and exports, dependencies, provenance.
    Show(TargetArgs),
    /// The source diff against the last approved version (or --against VERSION), with build
    /// scripts, manifests, new dependencies, new imports and new `unsafe` called out.
    Diff(DiffArgs),
    /// Approve a built version (signs a review statement with the server's reviewer key).
    Approve(ApproveArgs),
    /// Reject a version, with the reason the author will see.
    Reject(RejectArgs),
    /// The approvals as a cargo-vet audits.toml, for other projects to import.
    ExportVet(ExportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this state (submitted, audited, built, approved, rejected, failed).
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    connection: Connection,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    #[command(flatten)]
    connection: Connection,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

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

#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// What the approval vouches for (cargo-vet criteria).
    #[arg(long, default_value = "safe-to-run")]
    criteria: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct RejectArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// Why (shown to the author).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    connection: Connection,
}

/// Splits `NAME@VERSION`.
pub(crate) fn split_target(target: &str) -> Result<(&str, &str)> {
    match target.split_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok((name, version)),
        _ => bail!("`{target}` is not NAME@VERSION"),
    }
}

pub(crate) fn run(command: ReviewCommand) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match command {
            ReviewCommand::List(args) => list(args).await,
            ReviewCommand::Show(args) => show(args).await,
            ReviewCommand::Diff(args) => diff(args).await,
            ReviewCommand::Approve(args) => {
                let (name, version) = split_target(&args.target)?;
                let client = Client::new(&args.connection)?;
                let _: Value = client
                    .post_json(
                        &format!("/api/kiln/v1/submissions/{name}/{version}/approve"),
                        &serde_json::json!({"criteria": args.criteria}),
                    )
                    .await?;
                println!(
                    "approved {name}@{version} ({}); it is in the index now",
                    args.criteria
                );
                Ok(())
            }
            ReviewCommand::Reject(args) => {
                let (name, version) = split_target(&args.target)?;
                let client = Client::new(&args.connection)?;
                let _: Value = client
                    .post_json(
                        &format!("/api/kiln/v1/submissions/{name}/{version}/reject"),
                        &serde_json::json!({"reason": args.reason}),
                    )
                    .await?;
                println!("rejected {name}@{version}: {}", args.reason);
                Ok(())
            }
            ReviewCommand::ExportVet(args) => export_vet(args).await,
        }
    })
}

/// "3h", "2d": how long ago `ms` was.
fn age(now_ms: i64, ms: i64) -> String {
    let secs = (now_ms - ms).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The rows of `kiln review list`: crate, version, state, verdict, findings, age.
pub(crate) fn list_rows(submissions: &[Value], details: &[Value], now: i64) -> Vec<[String; 6]> {
    submissions
        .iter()
        .zip(details)
        .map(|(s, d)| {
            let audit = &d["reports"]["audit"];
            let findings = audit["findings"].as_array().map_or(0, Vec::len);
            [
                s["crate"].as_str().unwrap_or_default().to_owned(),
                s["version"].as_str().unwrap_or_default().to_owned(),
                s["state"].as_str().unwrap_or_default().to_owned(),
                audit["verdict"].as_str().unwrap_or("-").to_owned(),
                findings.to_string(),
                age(now, s["created_at"].as_i64().unwrap_or(now)),
            ]
        })
        .collect()
}

/// Prints a table with a header, columns padded to their widest cell.
pub(crate) fn print_table(style: Style, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    println!(
        "{}",
        style.bold(&line(header.iter().map(|h| h.to_string()).collect()))
    );
    for row in rows {
        let text = line(row.clone());
        println!(
            "{}",
            style.state(&text, row.get(2).map_or("", String::as_str))
        );
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let client = Client::new(&args.connection)?;
    let path = match &args.state {
        Some(state) => format!("/api/kiln/v1/submissions?state={state}"),
        None => "/api/kiln/v1/submissions".to_owned(),
    };
    let submissions: Vec<Value> = client.get_json(&path).await?;
    let mut details = Vec::new();
    for s in &submissions {
        details.push(
            client
                .get_json::<Value>(&format!(
                    "/api/kiln/v1/submissions/{}/{}",
                    s["crate"].as_str().unwrap_or_default(),
                    s["version"].as_str().unwrap_or_default()
                ))
                .await?,
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&submissions)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list_rows(&submissions, &details, now_ms())
        .into_iter()
        .map(Vec::from)
        .collect();
    print_table(
        Style::detect(),
        &["CRATE", "VERSION", "STATE", "VERDICT", "FINDINGS", "AGE"],
        &rows,
    );
    Ok(())
}

async fn show(args: TargetArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let detail: Value = client
        .get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(());
    }
    let style = Style::detect();
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "{} {}  {}",
        style.bold(&format!("{name}@{version}")),
        style.state(
            &text(&detail["state"]),
            detail["state"].as_str().unwrap_or("")
        ),
        detail["state_reason"].as_str().unwrap_or_default()
    );
    println!(
        "published by {}; checksum {}",
        text(&detail["published_by"]),
        text(&detail["checksum"])
    );
    let audit = &detail["reports"]["audit"];
    if audit.is_object() {
        println!(
            "\n{} {} ({} packages; advisory database {})",
            style.bold("audit:"),
            text(&audit["verdict"]),
            audit["packages"].as_array().map_or(0, Vec::len),
            text(&audit["advisory_db"]["revision"])
        );
        for f in audit["findings"].as_array().into_iter().flatten() {
            println!(
                "  {:<6} [{}] {}",
                text(&f["severity"]),
                text(&f["code"]),
                text(&f["message"])
            );
        }
    }
    let build = &detail["reports"]["build"];
    if build.is_object() {
        println!("\n{}", style.bold("build:"));
        if build["library"] == true {
            println!("  a library: compiles for {}", text(&build["target"]));
        } else {
            println!(
                "  {} ({} bytes), wasmtime {}, in {}",
                text(&build["wasm"]),
                build["wasm_size"],
                text(&build["wasmtime_version"]),
                text(&build["isolation"])
            );
            let imports: Vec<String> = build["imports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| format!("{}.{}", text(&i["module"]), text(&i["name"])))
                .collect();
            println!("  imports: {}", imports.join(", "));
            let exports: Vec<String> = build["exports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    e["name"]
                        .as_str()
                        .map_or_else(|| e.to_string(), str::to_owned)
                })
                .collect();
            println!("  exports: {}", exports.join(", "));
        }
    }
    println!("\n{}", style.bold("dependencies:"));
    for d in detail["dependencies"].as_array().into_iter().flatten() {
        println!(
            "  {:<24} {:<10} {}",
            text(&d["name"]),
            text(&d["req"]),
            d["approved"]
                .as_str()
                .map_or_else(|| "NOT APPROVED".to_owned(), |v| format!("approved {v}"))
        );
    }
    println!("\n{}", style.bold("artifacts:"));
    for a in detail["artifacts"].as_array().into_iter().flatten() {
        println!("  {:<11} {}", text(&a["kind"]), text(&a["digest"]));
    }
    for r in detail["reviews"].as_array().into_iter().flatten() {
        println!(
            "\n{} {} by {} {}",
            style.bold("review:"),
            text(&r["decision"]),
            text(&r["reviewer"]),
            r["reason"]
                .as_str()
                .or(r["criteria"].as_str())
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The files of a `.crate`, by path inside its top directory.
fn crate_files(gz: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut files = BTreeMap::new();
    for entry in archive.entries().context("reading the .crate")? {
        let mut entry = entry.context("reading the .crate")?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let inner = path
            .split_once('/')
            .map_or(path.as_str(), |(_, p)| p)
            .to_owned();
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(16 * 1024 * 1024)
            .read_to_end(&mut bytes)?;
        files.insert(inner, bytes);
    }
    Ok(files)
}

/// The dependency names of a `Cargo.toml`.
fn dependency_names(manifest: Option<&Vec<u8>>) -> Vec<String> {
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

fn imports(detail: &Value) -> Vec<String> {
    detail["reports"]["build"]["imports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            format!(
                "{}.{}",
                i["module"].as_str().unwrap_or_default(),
                i["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

async fn diff(args: DiffArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let against = match &args.against {
        Some(v) => v.clone(),
        None => {
            let approved: Vec<Value> = client
                .get_json("/api/kiln/v1/submissions?state=approved")
                .await?;
            let current = semver::Version::parse(version)
                .with_context(|| format!("`{version}` is not a version"))?;
            approved
                .iter()
                .filter(|s| s["crate"].as_str() == Some(name))
                .filter_map(|s| semver::Version::parse(s["version"].as_str()?).ok())
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
    let get_crate = |v: String| {
        let client = &client;
        async move {
            client
                .get_bytes(&format!("/api/kiln/v1/submissions/{name}/{v}/crate"))
                .await
        }
    };
    let old = crate_files(&get_crate(against.clone()).await?)?;
    let new = crate_files(&get_crate(version.to_owned()).await?)?;
    let old_detail: Value = client
        .get_json(&format!("/api/kiln/v1/submissions/{name}/{against}"))
        .await?;
    let new_detail: Value = client
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
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
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

async fn export_vet(args: ExportArgs) -> Result<()> {
    let client = Client::new(&args.connection)?;
    let approved: Vec<Value> = client
        .get_json("/api/kiln/v1/submissions?state=approved")
        .await?;
    let mut out = String::from(
        "# cargo-vet audits exported by kiln: every version its reviewers approved.\n",
    );
    for s in &approved {
        let name = s["crate"].as_str().unwrap_or_default();
        let version = s["version"].as_str().unwrap_or_default();
        let detail: Value = client
            .get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"))
            .await?;
        let review = detail["reviews"]
            .as_array()
            .into_iter()
            .flatten()
            .rfind(|r| r["decision"] == "approve");
        let criteria = review
            .and_then(|r| r["criteria"].as_str())
            .unwrap_or("safe-to-run");
        let who = review
            .and_then(|r| r["reviewer"].as_str())
            .unwrap_or("kiln");
        let mut entry = toml::Table::new();
        entry.insert("who".into(), toml::Value::String(who.to_owned()));
        entry.insert("criteria".into(), toml::Value::String(criteria.to_owned()));
        entry.insert("version".into(), toml::Value::String(version.to_owned()));
        entry.insert(
            "notes".into(),
            toml::Value::String(format!(
                "Approved in kiln after audit and a sandboxed build; .crate sha256 {}",
                s["checksum"].as_str().unwrap_or_default()
            )),
        );
        out.push_str(&format!(
            "\n[[audits.{}]]\n{}",
            toml_key(name),
            toml::to_string(&entry)?
        ));
    }
    print!("{out}");
    Ok(())
}

/// A crate name as a TOML key (quoted when it is not a bare key).
fn toml_key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_table_names_state_verdict_findings_and_age() {
        let submissions = vec![serde_json::json!({
            "crate": "kernel-x", "version": "0.2.0", "state": "built", "created_at": 0
        })];
        let details = vec![serde_json::json!({
            "reports": {"audit": {"verdict": "needs-review", "findings": [{}, {}]}}
        })];
        let rows = list_rows(&submissions, &details, 2 * 86_400_000 + 5);
        assert_eq!(
            rows,
            [[
                "kernel-x".to_owned(),
                "0.2.0".into(),
                "built".into(),
                "needs-review".into(),
                "2".into(),
                "2d".into()
            ]]
        );
    }

    #[test]
    fn targets_must_name_a_version() {
        assert_eq!(split_target("a@1.0.0").unwrap(), ("a", "1.0.0"));
        assert!(split_target("a").is_err());
        assert!(split_target("@1").is_err());
    }

    #[test]
    fn new_dependencies_come_from_both_tables() {
        let manifest =
            b"[package]\nname='x'\n[dependencies]\nserde='1'\n[build-dependencies]\ncc='1'\n"
                .to_vec();
        assert_eq!(dependency_names(Some(&manifest)), ["cc", "serde"]);
    }
}
