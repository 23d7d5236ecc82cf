//! Cargo's publish request: the framed body of `PUT /api/v1/crates/new`, its metadata, and the
//! index line built from it.
//!
//! The body is: a u32 (little-endian) length, that many bytes of JSON metadata, a u32 length,
//! and that many bytes of `.crate` tarball. Every length is checked against what is actually
//! there before anything is read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names;

/// The largest metadata JSON accepted (crates.io's limit is similar).
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// Why a publish body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The body ends before a length or the bytes a length announces.
    #[error("the publish body is truncated: {0}")]
    Truncated(&'static str),
    /// The metadata is larger than [`MAX_METADATA_BYTES`].
    #[error("the publish metadata is {0} bytes, over the {MAX_METADATA_BYTES}-byte limit")]
    MetadataTooLarge(usize),
    /// There are bytes after the tarball.
    #[error("the publish body has {0} bytes after the tarball")]
    TrailingBytes(usize),
    /// The metadata is not valid JSON of the expected shape.
    #[error("the publish metadata is invalid: {0}")]
    Metadata(String),
}

/// The parts of a publish body.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The metadata.
    pub metadata: NewCrate,
    /// The raw metadata JSON, kept as sent.
    pub metadata_json: &'a [u8],
    /// The `.crate` tarball.
    pub tarball: &'a [u8],
}

fn take_u32(body: &mut &[u8], what: &'static str) -> Result<usize, FrameError> {
    let (len, rest) = body
        .split_first_chunk::<4>()
        .ok_or(FrameError::Truncated(what))?;
    *body = rest;
    Ok(u32::from_le_bytes(*len) as usize)
}

fn take<'a>(body: &mut &'a [u8], len: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
    if body.len() < len {
        return Err(FrameError::Truncated(what));
    }
    let (taken, rest) = body.split_at(len);
    *body = rest;
    Ok(taken)
}

/// Splits and parses a publish body.
pub fn parse_frame(mut body: &[u8]) -> Result<Frame<'_>, FrameError> {
    let json_len = take_u32(&mut body, "no metadata length")?;
    if json_len > MAX_METADATA_BYTES {
        return Err(FrameError::MetadataTooLarge(json_len));
    }
    let metadata_json = take(
        &mut body,
        json_len,
        "the metadata is shorter than its length",
    )?;
    let tarball_len = take_u32(&mut body, "no tarball length")?;
    let tarball = take(
        &mut body,
        tarball_len,
        "the tarball is shorter than its length",
    )?;
    if !body.is_empty() {
        return Err(FrameError::TrailingBytes(body.len()));
    }
    let metadata: NewCrate = serde_json::from_slice(metadata_json)
        .map_err(|err| FrameError::Metadata(err.to_string()))?;
    Ok(Frame {
        metadata,
        metadata_json,
        tarball,
    })
}

/// The metadata Cargo sends with a publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewCrate {
    /// The crate's name.
    pub name: String,
    /// The version.
    pub vers: String,
    /// Dependencies, as written in Cargo.toml.
    #[serde(default)]
    pub deps: Vec<NewDependency>,
    /// Features.
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    /// The one-line description.
    #[serde(default)]
    pub description: Option<String>,
    /// The licence expression.
    #[serde(default)]
    pub license: Option<String>,
    /// A licence file, when there is no expression.
    #[serde(default)]
    pub license_file: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The repository URL.
    #[serde(default)]
    pub repository: Option<String>,
    /// The `links` key.
    #[serde(default)]
    pub links: Option<String>,
    /// The minimum Rust version.
    #[serde(default)]
    pub rust_version: Option<String>,
    /// Everything else Cargo sends (authors, readme, badges, …), kept as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A dependency in publish metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewDependency {
    /// The crate depended on (its real name).
    pub name: String,
    /// The version requirement.
    pub version_req: String,
    /// Features enabled.
    #[serde(default)]
    pub features: Vec<String>,
    /// Whether the dependency is optional.
    #[serde(default)]
    pub optional: bool,
    /// Whether default features are enabled.
    #[serde(default = "yes")]
    pub default_features: bool,
    /// A `cfg` target, if any.
    #[serde(default)]
    pub target: Option<String>,
    /// `normal`, `dev` or `build`.
    #[serde(default = "normal")]
    pub kind: String,
    /// The index URL of the registry the dependency comes from; none means this registry.
    #[serde(default)]
    pub registry: Option<String>,
    /// The name the dependency has in Cargo.toml when it is renamed.
    #[serde(default)]
    pub explicit_name_in_toml: Option<String>,
}

fn yes() -> bool {
    true
}

fn normal() -> String {
    "normal".to_owned()
}

/// Why publish metadata is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    /// The crate name breaks the name rules.
    #[error(transparent)]
    Name(#[from] names::NameError),
    /// The version is not semver.
    #[error("`{0}` is not a valid semver version")]
    Version(String),
    /// A dependency's name or requirement is malformed.
    #[error("dependency `{name}`: {problem}")]
    Dependency {
        /// The dependency.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

impl NewCrate {
    /// Checks the name, version and dependencies, and returns the parsed version.
    pub fn validate(&self) -> Result<semver::Version, MetadataError> {
        names::validate(&self.name)?;
        let version = semver::Version::parse(&self.vers)
            .map_err(|_| MetadataError::Version(self.vers.clone()))?;
        for dep in &self.deps {
            let problem = |problem: String| MetadataError::Dependency {
                name: dep.name.clone(),
                problem,
            };
            names::validate(&dep.name).map_err(|err| problem(err.to_string()))?;
            if let Some(alias) = &dep.explicit_name_in_toml {
                names::validate(alias)
                    .map_err(|err| problem(format!("renamed as `{alias}`: {err}")))?;
            }
            semver::VersionReq::parse(&dep.version_req).map_err(|err| {
                problem(format!(
                    "`{}` is not a version requirement: {err}",
                    dep.version_req
                ))
            })?;
            if !matches!(dep.kind.as_str(), "normal" | "dev" | "build") {
                return Err(problem(format!("unknown dependency kind `{}`", dep.kind)));
            }
        }
        Ok(version)
    }

    /// The sparse-index line for this version, with Cargo's translations: `version_req` becomes
    /// `req`; a renamed dependency is listed under its Cargo.toml name with `package` set to the
    /// real one; features using `dep:` or `?/` move to `features2` with `v: 2`. `yanked` is added
    /// when the line is served.
    pub fn index_line(&self, checksum: &str, pubtime: &str) -> serde_json::Value {
        let deps: Vec<serde_json::Value> = self
            .deps
            .iter()
            .map(|dep| {
                let (name, package) = match &dep.explicit_name_in_toml {
                    Some(alias) => (alias.clone(), Some(dep.name.clone())),
                    None => (dep.name.clone(), None),
                };
                serde_json::json!({
                    "name": name,
                    "req": dep.version_req,
                    "features": dep.features,
                    "optional": dep.optional,
                    "default_features": dep.default_features,
                    "target": dep.target,
                    "kind": dep.kind,
                    "registry": dep.registry,
                    "package": package,
                })
            })
            .collect();
        let (features2, features): (BTreeMap<_, _>, BTreeMap<_, _>) =
            self.features.iter().partition(|(_, values)| {
                values
                    .iter()
                    .any(|v| v.starts_with("dep:") || v.contains("?/"))
            });
        let mut line = serde_json::json!({
            "name": self.name,
            "vers": self.vers,
            "deps": deps,
            "cksum": checksum,
            "features": features,
            "links": self.links,
            "pubtime": pubtime,
        });
        if let Some(rust_version) = &self.rust_version {
            line["rust_version"] = rust_version.clone().into();
        }
        if !features2.is_empty() {
            line["features2"] = serde_json::to_value(features2).expect("features serialise");
            line["v"] = 2.into();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(json: &[u8], tarball: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(json.len() as u32).to_le_bytes());
        body.extend_from_slice(json);
        body.extend_from_slice(&(tarball.len() as u32).to_le_bytes());
        body.extend_from_slice(tarball);
        body
    }

    const META: &[u8] = br#"{"name":"demo","vers":"0.1.0","deps":[],"features":{}}"#;

    #[test]
    fn a_well_formed_frame_parses() {
        let body = frame(META, b"tarball");
        let parsed = parse_frame(&body).unwrap();
        assert_eq!(parsed.metadata.name, "demo");
        assert_eq!(parsed.tarball, b"tarball");
    }

    #[test]
    fn hostile_frames_are_refused() {
        assert_eq!(
            parse_frame(b"").unwrap_err(),
            FrameError::Truncated("no metadata length")
        );
        assert_eq!(
            parse_frame(&[1, 0]).unwrap_err(),
            FrameError::Truncated("no metadata length")
        );
        let mut lying = frame(META, b"x");
        lying[0] = 0xff;
        assert!(matches!(
            parse_frame(&lying).unwrap_err(),
            FrameError::Truncated(_)
        ));
        let mut long_tarball = frame(META, b"x");
        let at = 4 + META.len();
        long_tarball[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            parse_frame(&long_tarball).unwrap_err(),
            FrameError::Truncated("the tarball is shorter than its length")
        );
        let huge = (u32::MAX).to_le_bytes();
        assert!(matches!(
            parse_frame(&huge).unwrap_err(),
            FrameError::MetadataTooLarge(_)
        ));
        let mut trailing = frame(META, b"x");
        trailing.push(0);
        assert_eq!(
            parse_frame(&trailing).unwrap_err(),
            FrameError::TrailingBytes(1)
        );
        assert!(matches!(
            parse_frame(&frame(b"\xff\xfe", b"")).unwrap_err(),
            FrameError::Metadata(_)
        ));
        assert!(matches!(
            parse_frame(&frame(b"{\"name\":1}", b"")).unwrap_err(),
            FrameError::Metadata(_)
        ));
    }

    #[test]
    fn index_lines_apply_cargos_translations() {
        let meta: NewCrate = serde_json::from_str(
            r#"{"name":"demo","vers":"1.0.0","deps":[
                {"name":"kiln-kernel","version_req":"^0.1","features":[],"optional":false,"default_features":true,"target":null,"kind":"normal","registry":null,"explicit_name_in_toml":"sdk"},
                {"name":"serde","version_req":"^1","features":["derive"],"optional":true,"default_features":false,"target":"cfg(unix)","kind":"normal"}
            ],
            "features":{"default":["std"],"std":[],"json":["dep:serde"],"weak":["serde?/std"]},
            "links":null,"rust_version":"1.80"}"#,
        )
        .unwrap();
        meta.validate().unwrap();
        let line = meta.index_line("abc", "2026-01-01T00:00:00Z");
        assert_eq!(line["deps"][0]["name"], "sdk");
        assert_eq!(line["deps"][0]["package"], "kiln-kernel");
        assert_eq!(line["deps"][0]["req"], "^0.1");
        assert_eq!(line["deps"][1]["package"], serde_json::Value::Null);
        assert_eq!(
            line["features"],
            serde_json::json!({"default":["std"],"std":[]})
        );
        assert_eq!(
            line["features2"],
            serde_json::json!({"json":["dep:serde"],"weak":["serde?/std"]})
        );
        assert_eq!(line["v"], 2);
        assert_eq!(line["rust_version"], "1.80");
        assert_eq!(line["cksum"], "abc");
    }

    #[test]
    fn bad_metadata_is_named() {
        let mut meta: NewCrate = serde_json::from_slice(META).unwrap();
        meta.vers = "1.0".into();
        assert_eq!(
            meta.validate().unwrap_err(),
            MetadataError::Version("1.0".into())
        );
        meta.vers = "1.0.0".into();
        meta.deps.push(NewDependency {
            name: "x".into(),
            version_req: "not a req".into(),
            features: vec![],
            optional: false,
            default_features: true,
            target: None,
            kind: "normal".into(),
            registry: None,
            explicit_name_in_toml: None,
        });
        assert!(matches!(
            meta.validate().unwrap_err(),
            MetadataError::Dependency { .. }
        ));
    }
}
