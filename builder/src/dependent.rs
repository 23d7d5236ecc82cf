//! The dependent's view of a library: what a kernel that depends on the crate, with the features
//! its review covers, resolves and compiles. A small wrapper package depends on the crate, so
//! Cargo's own resolver decides the closure the way it would for any dependent: normal and build
//! dependencies for the target, optional ones only when a feature turns them on, never the
//! crate's dev-dependencies.
//!
//! The audit depends on the unpacked crate by path (it reads exactly the bytes it audits); the
//! build depends on it as a registry crate (`NAME = "=VERSION"`, served by the job's closure
//! index), so that what it compiles is what a kernel's build compiles, and can be reused by one.

use std::path::{Path, PathBuf};

use kiln_wire::FeatureSet;

/// The wrapper package's name (and directory, beside the crate's).
pub const WRAPPER: &str = "kiln-dependent";

/// How the wrapper depends on the crate.
#[derive(Debug, Clone, Copy)]
pub enum Dependency<'a> {
    /// The crate unpacked at `../{path}`.
    Path(&'a Path),
    /// Exactly `version` from the registry: declared the crates.io way (which workers replace
    /// with this registry) for an imported crate, or by `index`, the registry's URL, for one
    /// published here, as its dependents declare each (its sparse-index line says "this
    /// registry" for its own dependencies from here, which must mean the same source).
    Registry {
        /// The version.
        version: &'a str,
        /// The registry's URL, for a crate published here.
        index: Option<&'a str>,
    },
}

/// The wrapper's manifest: one dependency on `name`, with `features`.
pub fn wrapper_manifest(name: &str, dependency: Dependency<'_>, features: &FeatureSet) -> String {
    let named: Vec<String> = features.named().map(|f| format!("{f:?}")).collect();
    let source = match dependency {
        Dependency::Path(crate_rel) => format!(
            "path = {:?}",
            Path::new("..").join(crate_rel).display().to_string()
        ),
        Dependency::Registry {
            version,
            index: None,
        } => format!("version = \"={version}\""),
        Dependency::Registry {
            version,
            index: Some(index),
        } => format!("version = \"={version}\", registry-index = {index:?}"),
    };
    format!(
        "[package]\nname = \"{WRAPPER}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"lib.rs\"\n\n[workspace]\n\n[dependencies]\n{name:?} = {{ {source}, default-features = {}, features = [{}] }}\n",
        features.has_default(),
        named.join(", ")
    )
}

/// Writes the wrapper into `sources/kiln-dependent/`; returns its directory.
pub fn write_wrapper(
    sources: &Path,
    name: &str,
    dependency: Dependency<'_>,
    features: &FeatureSet,
) -> std::io::Result<PathBuf> {
    let dir = sources.join(WRAPPER);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("Cargo.toml"),
        wrapper_manifest(name, dependency, features),
    )?;
    std::fs::write(dir.join("lib.rs"), "")?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_turns_on_exactly_the_curated_features() {
        let text = wrapper_manifest(
            "serde",
            Dependency::Path(Path::new("serde-1.0.228")),
            &FeatureSet::of(["default", "derive", "serde_derive"]),
        );
        let manifest: toml::Table = text.parse().unwrap();
        let dep = &manifest["dependencies"]["serde"];
        assert_eq!(dep["path"].as_str(), Some("../serde-1.0.228"));
        assert_eq!(dep["default-features"].as_bool(), Some(true));
        let features: Vec<&str> = dep["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(features, ["derive", "serde_derive"]);
        let bare = wrapper_manifest(
            "memchr",
            Dependency::Registry {
                version: "2.7.6",
                index: None,
            },
            &FeatureSet::default(),
        );
        let manifest: toml::Table = bare.parse().unwrap();
        let dep = &manifest["dependencies"]["memchr"];
        assert_eq!(dep["version"].as_str(), Some("=2.7.6"));
        assert_eq!(dep["default-features"].as_bool(), Some(false));
    }
}
