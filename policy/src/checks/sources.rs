//! The sources check: every locked crate must come from this registry (or one the policy
//! allows). Git and path dependencies are refused: they bypass the quarantine, since nobody
//! audited or approved their contents.

use rustsec::Lockfile;

use crate::findings::Finding;

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
    let normalise = |url: &str| {
        url.trim_start_matches("sparse+")
            .trim_start_matches("registry+")
            .trim_end_matches('/')
            .to_owned()
    };
    let ours = normalise(registry);
    let allowed: Vec<String> = allowed.iter().map(|u| normalise(u)).collect();
    let mut findings = Vec::new();
    for package in &lockfile.packages {
        let subject = format!("{}@{}", package.name, package.version);
        match &package.source {
            None if !depended_on.contains(package.name.as_str()) => {}
            None => findings.push(
                Finding::deny(
                    "source-path",
                    format!("{subject} is a path dependency; publish it to this registry instead"),
                )
                .with_subject(&subject),
            ),
            Some(source) if source.is_git() => findings.push(
                Finding::deny(
                    "source-git",
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
                        "source-registry",
                        format!("{subject} comes from {url}, not this registry; import it with `kiln import` first"),
                    ).with_subject(&subject));
                }
            }
        }
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
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, ["source-path", "source-git", "source-registry"]);
        let allowed = ["registry+https://github.com/rust-lang/crates.io-index".to_owned()].into();
        let codes: Vec<String> = check(&lock, REGISTRY, &allowed)
            .into_iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, ["source-path", "source-git"]);
    }
}
