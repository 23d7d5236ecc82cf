//! An upstream registry's sparse index (crates.io's by default): a version's index line, and its
//! `.crate` checked against the checksum the line gives.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt as _;
use kiln_policy::Digest;
use kiln_wire::DependencyKind;
use serde::Deserialize;

use super::ImportError;
use crate::names;
use crate::publish::{NewCrate, NewDependency};

/// crates.io's sparse index.
pub const CRATES_IO_INDEX: &str = "sparse+https://index.crates.io/";

/// The largest index file read from upstream.
const MAX_INDEX_FILE: usize = 16 * 1024 * 1024;

/// A version's line in a sparse index.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexLine {
    /// The crate.
    pub name: String,
    /// The version.
    pub vers: String,
    #[serde(default)]
    deps: Vec<IndexDep>,
    /// The `.crate`'s SHA-256, in hex.
    pub cksum: String,
    /// Whether the version is yanked upstream.
    #[serde(default)]
    pub yanked: bool,
    #[serde(default)]
    features: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    features2: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    links: Option<String>,
    #[serde(default)]
    rust_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct IndexDep {
    name: String,
    req: String,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default = "yes")]
    default_features: bool,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    kind: Option<DependencyKind>,
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    package: Option<String>,
}

fn yes() -> bool {
    true
}

impl IndexLine {
    /// The line as publish metadata. Dependencies from the upstream's own registry stay
    /// registry-less: in kiln they must be imported (and approved) too.
    pub fn into_metadata(self) -> NewCrate {
        let mut features = self.features;
        features.extend(self.features2);
        NewCrate {
            deps: self
                .deps
                .into_iter()
                .map(|dep| {
                    let (name, alias) = match dep.package {
                        Some(package) => (package, Some(dep.name)),
                        None => (dep.name, None),
                    };
                    NewDependency {
                        name,
                        version_req: dep.req,
                        features: dep.features,
                        optional: dep.optional,
                        default_features: dep.default_features,
                        target: dep.target,
                        kind: dep.kind.unwrap_or(DependencyKind::Normal),
                        registry: dep.registry,
                        explicit_name_in_toml: alias,
                    }
                })
                .collect(),
            name: self.name,
            vers: self.vers,
            features,
            description: None,
            license: None,
            license_file: None,
            keywords: Vec::new(),
            categories: Vec::new(),
            repository: None,
            links: self.links,
            rust_version: self.rust_version,
            other: BTreeMap::new(),
        }
    }
}

/// The download URL of `name@version` from the index's `dl` setting, with Cargo's markers.
pub fn download_url(dl: &str, name: &str, version: &str, checksum: &str) -> String {
    let markers = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !markers.iter().any(|m| dl.contains(m)) {
        return format!("{}/{name}/{version}/download", dl.trim_end_matches('/'));
    }
    let prefix = names::index_prefix(name);
    dl.replace("{crate}", name)
        .replace("{version}", version)
        .replace("{lowerprefix}", &prefix.to_ascii_lowercase())
        .replace("{prefix}", &prefix)
        .replace("{sha256-checksum}", checksum)
}

async fn get_capped(
    http: &reqwest::Client,
    url: &str,
    cap: usize,
) -> Result<Option<Bytes>, ImportError> {
    let upstream = |message: String| ImportError::Upstream {
        url: url.to_owned(),
        message,
    };
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|err| upstream(err.to_string()))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(upstream(format!("answered {}", response.status())));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| upstream(err.to_string()))?;
        if body.len() + chunk.len() > cap {
            return Err(upstream(format!("answered more than {cap} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(body)))
}

/// An upstream sparse index.
#[derive(Debug, Clone)]
pub struct Upstream<'a> {
    http: &'a reqwest::Client,
    base: String,
}

impl<'a> Upstream<'a> {
    /// The sparse index at `index_url`, reached with `http`.
    pub fn new(http: &'a reqwest::Client, index_url: &str) -> Self {
        let base = format!(
            "{}/",
            index_url
                .strip_prefix("sparse+")
                .unwrap_or(index_url)
                .trim_end_matches('/')
        );
        Self { http, base }
    }

    /// The line of `name@version`.
    pub async fn line(&self, name: &str, version: &str) -> Result<IndexLine, ImportError> {
        let url = format!("{}{}", self.base, names::index_path(name));
        let file = get_capped(self.http, &url, MAX_INDEX_FILE)
            .await?
            .ok_or_else(|| ImportError::NotFound(format!("crate `{name}`")))?;
        String::from_utf8_lossy(&file)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str::<IndexLine>)
            .filter_map(Result::ok)
            .find(|l| l.vers == version && l.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| ImportError::NotFound(format!("{name}@{version}")))
    }

    /// Downloads the `.crate` `line` names and checks it against the line's checksum.
    pub async fn download(&self, line: &IndexLine, cap: usize) -> Result<Bytes, ImportError> {
        let config_url = format!("{}config.json", self.base);
        let config = get_capped(self.http, &config_url, 64 * 1024)
            .await?
            .ok_or_else(|| ImportError::Upstream {
                url: config_url.clone(),
                message: "has no config.json".into(),
            })?;
        let config: serde_json::Value =
            serde_json::from_slice(&config).map_err(|err| ImportError::Upstream {
                url: config_url.clone(),
                message: format!("config.json is not JSON: {err}"),
            })?;
        let dl = config["dl"].as_str().ok_or_else(|| ImportError::Upstream {
            url: config_url,
            message: "config.json has no `dl`".into(),
        })?;
        let url = download_url(dl, &line.name, &line.vers, &line.cksum);
        let tarball = get_capped(self.http, &url, cap).await?.ok_or_else(|| {
            ImportError::NotFound(format!("the download of {}@{}", line.name, line.vers))
        })?;
        check_checksum(line, &tarball)?;
        Ok(tarball)
    }
}

/// Refuses `tarball` unless it has the checksum `line` gives.
pub fn check_checksum(line: &IndexLine, tarball: &[u8]) -> Result<(), ImportError> {
    let subject = format!("{}@{}", line.name, line.vers);
    let expected = Digest::from_hex(&line.cksum)
        .map_err(|err| ImportError::BadLine(subject.clone(), err.to_string()))?;
    let actual = Digest::of(tarball);
    if actual != expected {
        return Err(ImportError::ChecksumMismatch {
            subject,
            expected: expected.hex(),
            actual: actual.hex(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_follow_cargos_markers() {
        assert_eq!(
            download_url("https://x/api/v1/crates", "serde", "1.0.0", "ab"),
            "https://x/api/v1/crates/serde/1.0.0/download"
        );
        assert_eq!(
            download_url(
                "https://static.crates.io/crates/{crate}/{crate}-{version}.crate",
                "Serde",
                "1.0.0",
                "ab"
            ),
            "https://static.crates.io/crates/Serde/Serde-1.0.0.crate"
        );
        assert_eq!(
            download_url(
                "https://m/{prefix}/{lowerprefix}/{sha256-checksum}",
                "Abcd",
                "1",
                "ff"
            ),
            "https://m/Ab/cd/ab/cd/ff"
        );
        assert_eq!(
            download_url("https://m/{prefix}/{crate}", "abc", "1", "ff"),
            "https://m/3/a/abc"
        );
    }

    #[test]
    fn index_lines_become_metadata_with_renames_and_features2() {
        let line: IndexLine = serde_json::from_str(
            r#"{"name":"a","vers":"1.0.0","deps":[{"name":"alias","req":"^1","features":[],"optional":true,"default_features":true,"target":null,"kind":"normal","package":"real"}],"cksum":"00","features":{"x":[]},"features2":{"y":["dep:alias"]},"v":2}"#,
        )
        .unwrap();
        let meta = line.into_metadata();
        assert_eq!(meta.deps[0].name, "real");
        assert_eq!(meta.deps[0].explicit_name_in_toml.as_deref(), Some("alias"));
        assert_eq!(meta.features.len(), 2);
        let rebuilt = meta.index_line("00", "t");
        assert_eq!(rebuilt["deps"][0]["name"], "alias");
        assert_eq!(rebuilt["deps"][0]["package"], "real");
        assert_eq!(rebuilt["features2"]["y"][0], "dep:alias");
    }
}
