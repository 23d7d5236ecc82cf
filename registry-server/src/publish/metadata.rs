//! The metadata Cargo sends with a publish (or an import reads from an upstream index line):
//! its checks, and the sparse-index line built from it.

use std::collections::BTreeMap;

use kiln_wire::{DependencyKind, FeatureSet};
use serde::{Deserialize, Serialize};

use crate::names;

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
    /// How it is depended on.
    #[serde(default = "normal")]
    pub kind: DependencyKind,
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

fn normal() -> DependencyKind {
    DependencyKind::Normal
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
    /// A feature's name or what it enables is malformed.
    #[error("feature {name:?}: {problem}")]
    Feature {
        /// The feature.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The metadata's features are not the packaged `Cargo.toml`'s.
    #[error("{0}")]
    Manifest(String),
}

/// Cargo's rule for a feature name: ASCII letters, digits, `_`, `-`, `+` and `.`, starting with
/// a letter, a digit or `_`.
fn check_feature_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_-+.".contains(c)) {
        return Err(format!(
            "{name:?} is not a feature name (ASCII letters, digits, `_`, `-`, `+` and `.`, \
             starting with a letter, a digit or `_`)"
        ));
    }
    Ok(())
}

/// Checks what a feature enables: `dep:NAME`, `NAME/FEATURE`, `NAME?/FEATURE` or a feature.
fn check_feature_value(value: &str) -> Result<(), String> {
    if let Some(dep) = value.strip_prefix("dep:") {
        return names::validate_dependency(dep).map_err(|err| format!("{value:?}: {err}"));
    }
    match value.split_once('/') {
        Some((dep, feature)) => {
            let dep = dep.strip_suffix('?').unwrap_or(dep);
            names::validate_dependency(dep).map_err(|err| format!("{value:?}: {err}"))?;
            check_feature_name(feature)
        }
        None => check_feature_name(value),
    }
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
            names::validate_dependency(&dep.name).map_err(|err| problem(err.to_string()))?;
            if let Some(alias) = &dep.explicit_name_in_toml {
                names::validate_dependency(alias)
                    .map_err(|err| problem(format!("renamed as `{alias}`: {err}")))?;
            }
            semver::VersionReq::parse(&dep.version_req).map_err(|err| {
                problem(format!(
                    "`{}` is not a version requirement: {err}",
                    dep.version_req
                ))
            })?;
            for feature in &dep.features {
                check_feature_name(feature).map_err(problem)?;
            }
        }
        for (name, values) in &self.features {
            let problem = |problem: String| MetadataError::Feature {
                name: name.clone(),
                problem,
            };
            check_feature_name(name).map_err(problem)?;
            for value in values {
                check_feature_value(value).map_err(problem)?;
            }
        }
        Ok(version)
    }

    /// Checks that the features this metadata declares (what the index will serve) are the
    /// features of the packaged `Cargo.toml` (what Cargo builds), name for name and value for
    /// value.
    pub fn check_manifest(&self, manifest: &str) -> Result<(), MetadataError> {
        let table: toml::Table = toml::from_str(manifest).map_err(|err| {
            MetadataError::Manifest(format!("the packaged Cargo.toml does not parse: {err}"))
        })?;
        let packaged: BTreeMap<String, Vec<String>> = match table.get("features") {
            Some(features) => features.clone().try_into().map_err(|err| {
                MetadataError::Manifest(format!(
                    "the packaged Cargo.toml's [features] are not lists of names: {err}"
                ))
            })?,
            None => BTreeMap::new(),
        };
        // Cargo may list an optional dependency's implicit feature (`NAME = ["dep:NAME"]`),
        // which the manifest does not spell out.
        let implicit = |name: &str, values: &[String]| {
            values == [format!("dep:{name}")]
                && !packaged.contains_key(name)
                && self.deps.iter().any(|d| {
                    d.optional && d.explicit_name_in_toml.as_deref().unwrap_or(&d.name) == name
                })
        };
        let declared: BTreeMap<String, Vec<String>> = self
            .features
            .iter()
            .filter(|(name, values)| !implicit(name, values))
            .map(|(name, values)| (name.clone(), values.clone()))
            .collect();
        if packaged != declared {
            let names = |f: &BTreeMap<String, Vec<String>>| {
                f.keys().cloned().collect::<Vec<_>>().join(", ")
            };
            return Err(MetadataError::Manifest(format!(
                "the publish metadata's features ({}) are not the packaged Cargo.toml's ({})",
                names(&self.features),
                names(&packaged)
            )));
        }
        Ok(())
    }

    /// The features a dependent turns on when it asks for `requested` (`default` for the
    /// default features): `requested` with every feature they enable in this crate, the implicit
    /// features of optional dependencies included, as Cargo reports a resolved package's
    /// features.
    pub fn activated(&self, requested: &FeatureSet) -> FeatureSet {
        let mut on = std::collections::BTreeSet::new();
        let mut todo: Vec<String> = requested
            .0
            .iter()
            .filter(|f| *f != "default" || self.features.contains_key("default"))
            .cloned()
            .collect();
        while let Some(feature) = todo.pop() {
            if !on.insert(feature.clone()) {
                continue;
            }
            for value in self.features.get(&feature).into_iter().flatten() {
                // `dep:x` names a dependency, `x/f` and `x?/f` a dependency's feature; anything
                // else is a feature of this crate (or an optional dependency's implicit one).
                if !value.starts_with("dep:") && !value.contains('/') {
                    todo.push(value.clone());
                }
            }
        }
        FeatureSet(on)
    }

    /// The names in `requested` that are not features of this version: neither `default`, nor a
    /// declared feature, nor an optional dependency's implicit feature.
    pub fn unknown_features(&self, requested: &FeatureSet) -> Vec<String> {
        let explicit: std::collections::BTreeSet<&str> = self
            .features
            .values()
            .flatten()
            .filter_map(|value| value.strip_prefix("dep:"))
            .collect();
        let implicit: std::collections::BTreeSet<&str> = self
            .deps
            .iter()
            .filter(|dep| dep.optional)
            .map(|dep| dep.explicit_name_in_toml.as_deref().unwrap_or(&dep.name))
            .filter(|name| !explicit.contains(name))
            .collect();
        requested
            .0
            .iter()
            .filter(|f| {
                *f != "default" && !self.features.contains_key(*f) && !implicit.contains(f.as_str())
            })
            .cloned()
            .collect()
    }

    /// The features a dependent with default features turns on.
    pub fn default_features(&self) -> FeatureSet {
        self.activated(&FeatureSet::of(["default"]))
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

    const META: &[u8] = br#"{"name":"demo","vers":"0.1.0","deps":[],"features":{}}"#;

    fn with_features(features: serde_json::Value) -> NewCrate {
        serde_json::from_value(
            serde_json::json!({"name": "demo", "vers": "0.1.0", "deps": [], "features": features}),
        )
        .unwrap()
    }

    #[test]
    fn feature_names_and_values_follow_cargos_rules() {
        let good = with_features(serde_json::json!({
            "default": ["std"], "std": [], "c++20": [], "v1.2": [], "_x": ["dep:serde", "serde?/std", "log/max_level_info"]
        }));
        good.validate().unwrap();
        for (features, needle) in [
            (serde_json::json!({"a b\n": []}), "is not a feature name"),
            (serde_json::json!({"": []}), "is not a feature name"),
            (serde_json::json!({"-x": []}), "is not a feature name"),
            (
                serde_json::json!({"ok": ["bad value"]}),
                "is not a feature name",
            ),
            (serde_json::json!({"ok": ["dep:"]}), "\"dep:\""),
            (
                serde_json::json!({"ok": ["serde/a b"]}),
                "is not a feature name",
            ),
        ] {
            let err = with_features(features.clone())
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{features}: {err}");
        }
    }

    #[test]
    fn features_must_be_the_packaged_manifests() {
        let meta = with_features(serde_json::json!({"default": ["std"], "std": []}));
        let manifest = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n\n[features]\ndefault = [\"std\"]\nstd = []\n";
        meta.check_manifest(manifest).unwrap();
        let fewer = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n";
        let err = meta.check_manifest(fewer).unwrap_err().to_string();
        assert!(
            err.contains("(default, std) are not the packaged Cargo.toml's ()"),
            "{err}"
        );
        let other = manifest.replace("default = [\"std\"]", "default = []");
        assert!(meta.check_manifest(&other).is_err());
        assert!(meta.check_manifest("not toml [").is_err());
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
    fn default_features_expand_as_cargo_reports_them() {
        let meta: NewCrate = serde_json::from_str(
            r#"{"name":"demo","vers":"1.0.0","deps":[],
            "features":{"default":["std"],"std":["alloc","serde?/std"],"alloc":[],"derive":["serde_derive"],"json":["dep:serde_json"]}}"#,
        )
        .unwrap();
        assert_eq!(
            meta.default_features(),
            FeatureSet::of(["alloc", "default", "std"])
        );
        assert_eq!(
            meta.activated(&FeatureSet::of(["derive"])),
            FeatureSet::of(["derive", "serde_derive"])
        );
        let plain: NewCrate =
            serde_json::from_str(r#"{"name":"demo","vers":"1.0.0","deps":[],"features":{}}"#)
                .unwrap();
        assert!(plain.default_features().is_empty());
    }

    #[test]
    fn unknown_features_are_those_cargo_would_refuse() {
        let dep = |name: &str| NewDependency {
            name: name.into(),
            version_req: "1".into(),
            features: vec![],
            optional: true,
            default_features: true,
            target: None,
            kind: DependencyKind::Normal,
            registry: None,
            explicit_name_in_toml: None,
        };
        let mut meta: NewCrate = serde_json::from_str(
            r#"{"name":"demo","vers":"1.0.0","deps":[],"features":{"std":[],"json":["dep:serde_json"]}}"#,
        )
        .unwrap();
        meta.deps = vec![dep("serde_json"), dep("indexmap")];
        let requested = FeatureSet::of(["default", "std", "indexmap", "serde_json", "simd"]);
        // `serde_json` has no implicit feature (`dep:` names it); `indexmap` has one.
        assert_eq!(meta.unknown_features(&requested), ["serde_json", "simd"]);
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
            kind: DependencyKind::Normal,
            registry: None,
            explicit_name_in_toml: None,
        });
        assert!(matches!(
            meta.validate().unwrap_err(),
            MetadataError::Dependency { .. }
        ));
    }
}
