//! One audit: every check of a policy over a crate and its locked dependency graph, with the
//! advisory database loaded once, giving an [`AuditReport`] with a stable JSON schema
//! ([`REPORT_SCHEMA`], documented in `docs/audit-report.md`) and a human rendering, and the
//! in-toto audit statement that signs it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rustsec::Lockfile;
use serde::{Deserialize, Serialize};

use crate::checks::advisories::{self, AdvisoryDb, Match};
use crate::checks::crates::{self, CrateInfo};
use crate::checks::{bans, build, exceptions, licenses, sources, typosquat};
use crate::digest::Digest;
use crate::findings::{Finding, Severity, Verdict};
use crate::intoto::{ResourceDescriptor, Statement, StatementKind};
use crate::policy_file::Policy;
use crate::rules::RulesError;

/// The schema of [`AuditReport`] as JSON; a change that breaks readers gets a new version.
pub const REPORT_SCHEMA: &str = "https://kiln.dev/schemas/audit-report/v1";

/// The source given to a submission's own package when no registry index is known.
pub const SUBMISSION_SOURCE: &str = "sparse+https://kiln.invalid/index/";

/// The crate being audited, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSubject {
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The `.crate` file's digest.
    pub checksum: Digest,
}

/// One locked package, as the report records it (and as a re-audit reads it back).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedPackage {
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it comes from (`sparse+http://…`, `git+…`), absent for the crate itself and path
    /// dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its `.crate` checksum, for registry packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Digest>,
    /// The features the resolution turns on in it (as `cargo metadata` reports them).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub features: BTreeSet<String>,
    /// Its licence expression, as declared (when the audit read the manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Whether it has a build script (compiled for the host, run only in the build sandbox).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_script: bool,
    /// Whether it is a procedural macro (compiled for the host, run only in the build sandbox).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proc_macro: bool,
}

/// What an audit looks at.
#[derive(Debug, Clone, Copy)]
pub struct AuditInput<'a> {
    /// The published crate, when auditing a submission (enables the typosquat check).
    pub subject: Option<&'a AuditSubject>,
    /// The resolved dependency graph.
    pub lockfile: &'a Lockfile,
    /// What `cargo metadata` says about each crate (licences, build-time code); without it the
    /// licence and build checks are not run.
    pub crates: Option<&'a [CrateInfo]>,
    /// This registry's index URL; without it the sources check is not run.
    pub registry_index: Option<&'a str>,
    /// Other index URLs whose crates come from this registry (its public URL, and crates.io
    /// where the resolving Cargo replaced it with this registry).
    pub registry_aliases: &'a [String],
    /// Names of the approved crates, for the typosquat check.
    pub approved_names: &'a [String],
    /// The submission's own packaged `Cargo.toml`: with `registry_index`, the sources check
    /// also reads what it declares ([`sources::check_manifest`]). Those findings cannot be
    /// excepted: kiln builds only what it can vendor from this registry.
    pub manifest: Option<&'a toml::Table>,
    /// Today (YYYY-MM-DD): for the database's staleness and exception expiry.
    pub today: &'a str,
    /// The features the resolution turns on in each package, by `NAME@VERSION`.
    pub features: Option<&'a BTreeMap<String, BTreeSet<String>>>,
    /// The features the subject is curated with: the dependent's view the audit takes.
    pub curated: &'a [String],
}

/// The advisory database an audit used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    /// The revision (a git commit id when known).
    pub revision: String,
    /// How many advisories it holds.
    pub advisories: usize,
    /// The newest advisory's date.
    pub newest: String,
}

/// How many findings of each severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Refusals.
    pub deny: usize,
    /// Things a person must look at.
    pub review: usize,
    /// Records only.
    pub info: usize,
}

/// The result of one audit. Serialised, this is the predicate of the audit statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// The audited crate, when it was a submission.
    pub subject: Option<AuditSubject>,
    /// The features the subject is curated with: the audit resolved the closure a dependent
    /// that turns these on would build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// The outcome.
    pub verdict: Verdict,
    /// Finding counts.
    pub summary: Summary,
    /// Every finding, exceptions applied, in a stable order.
    pub findings: Vec<Finding>,
    /// Every advisory that matched a locked crate, whatever the policy did with it.
    pub advisories: Vec<Match>,
    /// The locked packages.
    pub packages: Vec<LockedPackage>,
    /// The advisory database.
    pub advisory_db: DatabaseInfo,
    /// The digest of the policy file.
    pub policy_digest: Digest,
    /// The Rego rule files that ran.
    pub rules: Vec<String>,
    /// The checks that ran (`advisories`, `bans`, `sources`, …).
    pub checks: Vec<String>,
    /// Tool names and versions.
    pub tools: Vec<Tool>,
    /// The audit's date (YYYY-MM-DD).
    pub date: String,
}

/// A tool that took part in an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// Why an audit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A Rego rule failed to evaluate.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The lockfile could not be rebuilt with the submission's source.
    #[error("{0}")]
    Lockfile(advisories::AdvisoryError),
    /// The input could not be turned into the rules' input document.
    #[error("cannot build the rules' input document: {0}")]
    Input(#[from] serde_json::Error),
}

/// Runs audits under one policy with one database loaded.
#[derive(Debug)]
pub struct Auditor<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// The advisory database.
    pub db: &'a AdvisoryDb,
}

/// The locked packages of `lockfile`, sorted.
pub fn locked_packages(lockfile: &Lockfile) -> Vec<LockedPackage> {
    let checksums = crates::checksums(lockfile);
    let mut packages: Vec<LockedPackage> = lockfile
        .packages
        .iter()
        .map(|p| LockedPackage {
            name: p.name.as_str().to_owned(),
            version: p.version.to_string(),
            source: p.source.as_ref().map(|s| s.to_string()),
            checksum: checksums.get(&format!("{}@{}", p.name, p.version)).copied(),
            ..LockedPackage::default()
        })
        .collect();
    packages.sort();
    packages
}

/// Rebuilds a lockfile from a report's packages (for a re-audit against a newer database).
pub fn lockfile_of(packages: &[LockedPackage]) -> Result<Lockfile, advisories::AdvisoryError> {
    let mut text = String::from("version = 4\n");
    for p in packages {
        let _ = write!(
            text,
            "\n[[package]]\nname = {}\nversion = {}\n",
            toml_string(&p.name),
            toml_string(&p.version)
        );
        if let Some(source) = &p.source {
            let _ = writeln!(text, "source = {}", toml_string(source));
        }
        if let Some(checksum) = &p.checksum {
            let _ = writeln!(text, "checksum = {}", toml_string(&checksum.hex()));
        }
    }
    advisories::parse_lockfile(&text)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The registries a dependency may come from besides `registry_index`: the policy's, and the
/// aliases of this registry.
fn own_sources(policy: &Policy, registry_aliases: &[String]) -> BTreeSet<String> {
    let mut allowed = policy.sources.allow_registries.clone();
    allowed.extend(registry_aliases.iter().cloned());
    allowed
}

/// What a submission's packaged `Cargo.toml` declares outside this registry
/// ([`sources::check_manifest`] under `policy`): a worker asks before resolving anything, and
/// the audit reports the same findings.
pub fn declared_sources(
    policy: &Policy,
    manifest: &toml::Table,
    registry_index: &str,
    registry_aliases: &[String],
) -> Vec<Finding> {
    sources::check_manifest(
        manifest,
        registry_index,
        &own_sources(policy, registry_aliases),
    )
}

impl Auditor<'_> {
    /// Audits `input`.
    pub fn audit(&self, input: &AuditInput<'_>) -> Result<AuditReport, AuditError> {
        let policy = self.policy;
        let mut checks = vec!["advisories".to_owned(), "bans".to_owned()];
        // A submission is itself a registry crate: give its root package this registry as its
        // source and its `.crate` checksum, so that advisories about it match too, and a
        // re-audit of the report's packages sees it.
        let mut packages = locked_packages(input.lockfile);
        if let Some(features) = input.features {
            for p in &mut packages {
                if let Some(on) = features.get(&format!("{}@{}", p.name, p.version)) {
                    p.features = on.clone();
                }
            }
        }
        if let Some(crates) = input.crates {
            for p in &mut packages {
                if let Some(info) = crates
                    .iter()
                    .find(|c| c.name == p.name && c.version == p.version)
                {
                    p.license = info.license.clone();
                    p.build_script = info.build_script;
                    p.proc_macro = info.proc_macro;
                }
            }
        }
        let patched;
        let lockfile = match input.subject {
            Some(subject) => {
                for p in packages.iter_mut().filter(|p| {
                    p.source.is_none() && p.name == subject.name && p.version == subject.version
                }) {
                    p.source = Some(
                        input
                            .registry_index
                            .map_or_else(|| SUBMISSION_SOURCE.to_owned(), str::to_owned),
                    );
                    p.checksum = Some(subject.checksum);
                }
                patched = lockfile_of(&packages).map_err(AuditError::Lockfile)?;
                &patched
            }
            None => input.lockfile,
        };
        let input = &AuditInput { lockfile, ..*input };
        let (matches, mut findings) =
            advisories::check(input.lockfile, self.db, &policy.advisories, input.today);
        findings.extend(bans::check(input.lockfile, &policy.bans));
        if let Some(index) = input.registry_index {
            checks.push("sources".to_owned());
            findings.extend(sources::check(
                input.lockfile,
                index,
                &own_sources(policy, input.registry_aliases),
            ));
        }
        if let Some(crates) = input.crates {
            checks.extend(["licenses".to_owned(), "build".to_owned()]);
            findings.extend(licenses::check(crates, &policy.licenses));
            findings.extend(build::check(crates, &policy.build));
        }
        if let Some(subject) = input.subject {
            checks.push("typosquat".to_owned());
            findings.extend(
                typosquat::check(
                    &subject.name,
                    input.approved_names.iter().map(String::as_str),
                    policy.typosquat.max_distance,
                    policy.typosquat.action,
                )
                .into_iter()
                .map(|f| f.about(&subject.name, &subject.version)),
            );
        }
        let mut report = AuditReport {
            schema: REPORT_SCHEMA.to_owned(),
            subject: input.subject.cloned(),
            features: input.curated.to_vec(),
            verdict: Verdict::Pass,
            summary: Summary::default(),
            findings,
            advisories: matches,
            packages,
            advisory_db: DatabaseInfo {
                revision: self.db.revision.clone(),
                advisories: self.db.count,
                newest: self.db.newest.clone(),
            },
            policy_digest: policy.digest,
            rules: Vec::new(),
            checks,
            tools: tools(),
            date: input.today.to_owned(),
        };
        let rules = &policy.rules;
        if !rules.is_empty() {
            report.checks.push("rules".to_owned());
            report.rules = rules.names();
            let document = serde_json::json!({
                "report": &report,
                "crates": input.crates.map(|c| c.iter().map(crate_json).collect::<Vec<_>>()),
            });
            let extra = rules.evaluate(&document)?;
            report.findings.extend(extra);
        }
        let findings = std::mem::take(&mut report.findings);
        let mut findings = exceptions::apply(findings, &policy.exceptions, input.today);
        if let (Some(manifest), Some(index)) = (input.manifest, input.registry_index) {
            findings.extend(declared_sources(
                policy,
                manifest,
                index,
                input.registry_aliases,
            ));
        }
        findings.sort_by(|a, b| {
            b.severity.cmp(&a.severity).then_with(|| {
                (&a.code, &a.subject, &a.message).cmp(&(&b.code, &b.subject, &b.message))
            })
        });
        findings.dedup();
        report.verdict = Verdict::of(&findings);
        report.summary = summarise(&findings);
        report.findings = findings;
        Ok(report)
    }
}

fn crate_json(c: &CrateInfo) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "version": c.version,
        "license": c.license,
        "build_script": c.build_script,
        "proc_macro": c.proc_macro,
        "links": c.links,
    })
}

fn summarise(findings: &[Finding]) -> Summary {
    let mut summary = Summary::default();
    for finding in findings {
        match finding.severity {
            Severity::Deny => summary.deny += 1,
            Severity::Review => summary.review += 1,
            Severity::Info => summary.info += 1,
        }
    }
    summary
}

/// The tools kiln's audits are made with.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool {
            name: "kiln-policy".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        Tool {
            name: "rustsec".to_owned(),
            version: "0.33".to_owned(),
        },
    ]
}

impl AuditReport {
    /// The in-toto statement that signs this report: its subjects are the audited `.crate` and
    /// every locked dependency with a checksum; its predicate is the report.
    pub fn statement(&self) -> Result<Statement, serde_json::Error> {
        let mut subjects = Vec::new();
        let mut seen = BTreeSet::new();
        if let Some(subject) = &self.subject {
            seen.insert(subject.checksum);
            subjects.push(ResourceDescriptor::new(
                format!("{}-{}.crate", subject.name, subject.version),
                subject.checksum,
            ));
        }
        for package in &self.packages {
            if let Some(checksum) = package.checksum
                && seen.insert(checksum)
            {
                subjects.push(ResourceDescriptor::new(
                    format!("{}-{}.crate", package.name, package.version),
                    checksum,
                ));
            }
        }
        Statement::new(subjects, StatementKind::Audit.predicate_type(), self).into_untyped()
    }

    /// The report for people: a heading, one line per finding, the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let what = match &self.subject {
            Some(s) => format!("{}@{}", s.name, s.version),
            None => "lockfile".to_owned(),
        };
        let _ = writeln!(
            out,
            "{what}: {} packages, {} advisories (newest {}, revision {}), checks: {}",
            self.packages.len(),
            self.advisory_db.advisories,
            self.advisory_db.newest,
            short(&self.advisory_db.revision),
            self.checks.join(", ")
        );
        for finding in &self.findings {
            let severity = match finding.severity {
                Severity::Deny => "deny",
                Severity::Review => "review",
                Severity::Info => "info",
            };
            let _ = writeln!(
                out,
                "  {severity:<6} [{}] {}",
                finding.code, finding.message
            );
        }
        let _ = writeln!(
            out,
            "verdict: {} ({} deny, {} review, {} info)",
            self.verdict.as_str(),
            self.summary.deny,
            self.summary.review,
            self.summary.info
        );
        out
    }
}

fn short(revision: &str) -> &str {
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        &revision[..12]
    } else {
        revision
    }
}

#[cfg(test)]
mod tests;
