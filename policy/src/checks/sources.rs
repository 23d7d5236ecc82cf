//! The sources check: every locked crate must come from this registry (or one the policy
//! allows). Git and path dependencies are refused: they bypass the quarantine, since nobody
//! audited or approved their contents.

pub mod cfg;

use rustsec::Lockfile;

/// crates.io's source, as Cargo records it in a lockfile, and its sparse index.
pub const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

use crate::findings::{Finding, FindingCode};

/// Checks the sources of `lockfile`. Packages without a source that nothing depends on are the
/// roots being audited; any other package without a source is a path dependency. `registry` is
/// this registry's index URL (`sparse+http://…/index/`).
pub fn check(
    lockfile: &Lockfile,
    registry: &str,
    allowed: &std::collections::BTreeSet<String>,
) -> Vec<Finding> {
    let depended_on: std::collections::BTreeSet<&str> = lockfile
        .packages
        .iter()
        .flat_map(|p| p.dependencies.iter().map(|d| d.name.as_str()))
        .collect();
    let ours = normalise(registry);
    let allowed: Vec<String> = allowed.iter().map(|u| normalise(u)).collect();
    let mut findings = Vec::new();
    for package in &lockfile.packages {
        let subject = format!("{}@{}", package.name, package.version);
        match &package.source {
            None if !depended_on.contains(package.name.as_str()) => {}
            None => findings.push(
                Finding::deny(
                    FindingCode::SourcePath,
                    format!("{subject} is a path dependency; publish it to this registry instead"),
                )
                .with_subject(&subject),
            ),
            Some(source) if source.is_git() => findings.push(
                Finding::deny(
                    FindingCode::SourceGit,
                    format!(
                        "{subject} comes from git ({}); only registry crates are audited",
                        source.url()
                    ),
                )
                .with_subject(&subject),
            ),
            Some(source) => {
                let url = normalise(source.url().as_str());
                if url != ours && !allowed.contains(&url) {
                    findings.push(Finding::deny(
                        FindingCode::SourceRegistry,
                        format!("{subject} comes from {url}, not this registry; import it with `kiln import` first"),
                    ).with_subject(&subject));
                }
            }
        }
    }
    findings
}

/// An index URL without its protocol prefix and trailing slash, for comparison.
fn normalise(url: &str) -> String {
    url.trim_start_matches("sparse+")
        .trim_start_matches("registry+")
        .trim_end_matches('/')
        .to_owned()
}

/// The dependency tables of a manifest, by where they appear.
const DEPENDENCY_TABLES: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];

/// Checks what a submission's own packaged `Cargo.toml` declares, before anything resolves it:
/// resolving a git dependency, a path, a patch or another registry's index would make the
/// auditor fetch or read what the author chose. `cargo package` writes none of these (it drops
/// `path` and `git` and spells a registry by its index URL), so they only appear in a manifest
/// made by hand. Returns deny findings (`source-git`, `source-path`, `source-registry`,
/// `source-patch`) naming each declaration.
pub fn check_manifest(
    manifest: &toml::Table,
    registry: &str,
    allowed: &std::collections::BTreeSet<String>,
) -> Vec<Finding> {
    let ours = normalise(registry);
    let allowed: Vec<String> = allowed.iter().map(|u| normalise(u)).collect();
    let mut tables: Vec<(String, &toml::Table)> = Vec::new();
    for key in DEPENDENCY_TABLES {
        if let Some(table) = manifest.get(key).and_then(toml::Value::as_table) {
            tables.push((key.to_owned(), table));
        }
    }
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for (cfg, target) in targets {
            for key in DEPENDENCY_TABLES {
                if let Some(table) = target.get(key).and_then(toml::Value::as_table) {
                    tables.push((format!("target.{cfg}.{key}"), table));
                }
            }
        }
    }
    let mut findings = Vec::new();
    for (where_, table) in tables {
        for (name, spec) in table {
            let Some(spec) = spec.as_table() else {
                continue; // `name = "1.0"`: this registry.
            };
            let subject = format!("{name} ({where_})");
            if let Some(url) = spec.get("git").and_then(toml::Value::as_str) {
                findings.push(
                    Finding::deny(
                        FindingCode::SourceGit,
                        format!("Cargo.toml declares {subject} from git ({url}); only registry crates are audited"),
                    )
                    .with_subject(name),
                );
            }
            if let Some(path) = spec.get("path").and_then(toml::Value::as_str) {
                findings.push(
                    Finding::deny(
                        FindingCode::SourcePath,
                        format!("Cargo.toml declares {subject} at the path {path}; publish it to this registry instead"),
                    )
                    .with_subject(name),
                );
            }
            if let Some(url) = spec.get("registry-index").and_then(toml::Value::as_str) {
                let url = normalise(url);
                if url != ours && !allowed.contains(&url) {
                    findings.push(
                        Finding::deny(
                            FindingCode::SourceRegistry,
                            format!("Cargo.toml declares {subject} from {url}, not this registry; import it with `kiln import` first"),
                        )
                        .with_subject(name),
                    );
                }
            }
            if let Some(other) = spec
                .get("registry")
                .and_then(toml::Value::as_str)
                .filter(|r| *r != "kiln")
            {
                findings.push(
                    Finding::deny(
                        FindingCode::SourceRegistry,
                        format!("Cargo.toml declares {subject} from the registry `{other}`, which this registry does not know"),
                    )
                    .with_subject(name),
                );
            }
        }
    }
    for section in ["patch", "replace"] {
        if manifest.get(section).is_some() {
            findings.push(Finding::deny(
                FindingCode::SourcePatch,
                format!("Cargo.toml has a [{section}] section; a published crate cannot override its dependencies"),
            ));
        }
    }
    if let Some(workspace) = manifest.get("workspace").and_then(toml::Value::as_table)
        && ["members", "default-members"]
            .iter()
            .any(|k| workspace.get(*k).is_some())
    {
        findings.push(Finding::deny(
            FindingCode::SourcePath,
            "Cargo.toml declares workspace members, which would be read from paths outside the crate",
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: &str = "sparse+http://127.0.0.1:7878/index/";

    fn lockfile(packages: &str) -> Lockfile {
        format!("version = 4\n{packages}").parse().unwrap()
    }

    #[test]
    fn only_this_registry_passes() {
        let lock = lockfile(&format!(
            "[[package]]\nname = \"kernel\"\nversion = \"0.1.0\"\ndependencies = [\"ok\", \"local\", \"fromgit\", \"upstream\"]\n\n\
             [[package]]\nname = \"ok\"\nversion = \"1.0.0\"\nsource = \"{REGISTRY}\"\n\n\
             [[package]]\nname = \"local\"\nversion = \"0.1.0\"\n\n\
             [[package]]\nname = \"fromgit\"\nversion = \"0.1.0\"\nsource = \"git+https://example.com/x.git#0123456789abcdef0123456789abcdef01234567\"\n\n\
             [[package]]\nname = \"upstream\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
        ));
        let codes: Vec<String> = check(&lock, REGISTRY, &Default::default())
            .into_iter()
            .map(|f| f.code.to_string())
            .collect();
        assert_eq!(codes, ["source-path", "source-git", "source-registry"]);
        let allowed = ["registry+https://github.com/rust-lang/crates.io-index".to_owned()].into();
        let codes: Vec<String> = check(&lock, REGISTRY, &allowed)
            .into_iter()
            .map(|f| f.code.to_string())
            .collect();
        assert_eq!(codes, ["source-path", "source-git"]);
    }

    #[test]
    fn a_packaged_manifest_passes_and_hand_made_sources_are_named() {
        let packaged: toml::Table = format!(
            "[package]\nname = \"kernel\"\nversion = \"0.1.0\"\n\n\
             [dependencies.kiln-kernel]\nversion = \"0.1.0\"\nregistry-index = \"{REGISTRY}\"\n\n\
             [dependencies.plain]\nversion = \"1\"\n"
        )
        .parse()
        .unwrap();
        assert_eq!(check_manifest(&packaged, REGISTRY, &Default::default()), []);

        let hand_made: toml::Table = "[package]\nname = \"kernel\"\nversion = \"0.1.0\"\n\n\
             [dependencies]\nfromgit = { git = \"http://127.0.0.1:9/x.git\" }\n\
             local = { path = \"/etc\", version = \"1\" }\n\
             elsewhere = { version = \"1\", registry-index = \"sparse+https://other.example/index/\" }\n\
             named = { version = \"1\", registry = \"mirror\" }\n\n\
             [target.'cfg(unix)'.build-dependencies]\nnative = { path = \"../native\" }\n\n\
             [patch.crates-io]\nserde = { git = \"https://example.com/serde\" }\n\n\
             [workspace]\nmembers = [\"../../x\"]\n"
            .parse()
            .unwrap();
        let found: Vec<(String, Option<String>)> =
            check_manifest(&hand_made, REGISTRY, &Default::default())
                .into_iter()
                .map(|f| (f.code.to_string(), f.subject))
                .collect();
        let found: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|(c, s)| (c.as_str(), s.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("source-registry", Some("elsewhere")),
                ("source-git", Some("fromgit")),
                ("source-path", Some("local")),
                ("source-registry", Some("named")),
                ("source-path", Some("native")),
                ("source-patch", None),
                ("source-path", None),
            ]
        );
        let allowed = ["https://other.example/index".to_owned()].into();
        assert_eq!(
            check_manifest(&hand_made, REGISTRY, &allowed)
                .iter()
                .filter(|f| f.subject.as_deref() == Some("elsewhere"))
                .count(),
            0
        );
    }
}
