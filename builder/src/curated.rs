//! The curated index a worker resolves against, and every URL that names it. Workers reach the
//! registry at one URL, while authors' packaged manifests name it by its public URL
//! (`registry-index`), and dependencies declared the crates.io way are resolved here too: the
//! workers' Cargo replaces crates.io (and the public URL) with this registry, so each of those
//! sources is this registry's curated index, and the sources check accepts them as its own.
//!
//! A job of a review round resolves through its closure's index instead: the approved crates and
//! the versions in review that were submitted with it (a closure import, or the one published
//! crate). Its URL carries the closure's token, which only workers learn; reports name the
//! curated index, never that URL.

/// crates.io's source, as Cargo records it in a lockfile, and its sparse index.
pub use kiln_policy::checks::sources::CRATES_IO_SOURCES as CRATES_IO;

/// The registry's sparse index as the worker reaches it, and as its users name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratedIndex {
    /// `sparse+http://…/index/` as this worker reaches it.
    pub index: String,
    /// The public `sparse+…/index/` from the registry's `config.json`, when it differs.
    pub public: Option<String>,
    /// The index of the job's closure, which Cargo resolves against when there is one.
    pub closure: Option<String>,
}

impl CuratedIndex {
    /// The index at `index`, also known as `public`.
    pub fn new(index: impl Into<String>, public: Option<String>) -> Self {
        let index = index.into();
        let public = public.filter(|p| p.trim_end_matches('/') != index.trim_end_matches('/'));
        Self {
            index,
            public,
            closure: None,
        }
    }

    /// This registry as the workers of a closure see it: Cargo resolves against
    /// `closure_index`, which serves the curated crates and the closure's members in review.
    pub fn with_closure(self, closure_index: String) -> Self {
        Self {
            closure: Some(closure_index),
            ..self
        }
    }

    /// The index Cargo resolves against: the closure's, or the curated one.
    pub fn resolved_from(&self) -> &str {
        self.closure.as_deref().unwrap_or(&self.index)
    }

    /// The other URLs that name this registry's crates (crates.io, the public URL, the
    /// closure's index).
    pub fn aliases(&self) -> Vec<String> {
        CRATES_IO
            .iter()
            .map(|u| (*u).to_owned())
            .chain(self.public.clone())
            .chain(self.closure.clone())
            .collect()
    }

    /// The URLs besides crates.io that name this registry's crates and are replaced by the
    /// index resolved from: the public URL, and the curated index for a closure.
    pub fn replaced(&self) -> Vec<&str> {
        let curated = self.closure.as_ref().map(|_| self.index.as_str());
        self.public.as_deref().into_iter().chain(curated).collect()
    }

    /// A Cargo configuration whose only registry is this one: crates.io, the public URL and the
    /// curated index (for a closure) are replaced by the index resolved from, and
    /// `registry = "kiln"` names it.
    pub fn cargo_config(&self) -> String {
        let index = self.resolved_from();
        let mut config = format!(
            "[source.crates-io]\nreplace-with = \"kiln\"\n\n[source.kiln]\nregistry = \"{index}\"\n\n\
             [registries.kiln]\nindex = \"{index}\"\n"
        );
        for (n, other) in self.replaced().into_iter().enumerate() {
            config.push_str(&format!(
                "\n[source.kiln-alias-{n}]\nregistry = \"{other}\"\nreplace-with = \"kiln\"\n"
            ));
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_an_alias_only_when_it_differs() {
        let same = CuratedIndex::new(
            "sparse+http://127.0.0.1:7878/index/",
            Some("sparse+http://127.0.0.1:7878/index".into()),
        );
        assert_eq!(same.public, None);
        assert!(!same.cargo_config().contains("kiln-alias"));
        let proxied = CuratedIndex::new(
            "sparse+http://127.0.0.1:7878/index/",
            Some("sparse+https://kiln.example.com/index/".into()),
        );
        assert!(
            proxied
                .aliases()
                .contains(&"sparse+https://kiln.example.com/index/".to_owned())
        );
        let config: toml::Table = proxied.cargo_config().parse().unwrap();
        assert_eq!(
            config["source"]["kiln-alias-0"]["registry"].as_str(),
            Some("sparse+https://kiln.example.com/index/")
        );
        assert_eq!(
            config["source"]["kiln-alias-0"]["replace-with"].as_str(),
            Some("kiln")
        );
        assert_eq!(
            config["source"]["crates-io"]["replace-with"].as_str(),
            Some("kiln")
        );
    }

    #[test]
    fn a_closure_resolves_through_its_own_index_and_the_curated_one_is_an_alias() {
        let closure = "sparse+http://127.0.0.1:7878/api/kiln/v1/closures/t0k3n/index/";
        let index = CuratedIndex::new("sparse+http://127.0.0.1:7878/index/", None)
            .with_closure(closure.to_owned());
        let config: toml::Table = index.cargo_config().parse().unwrap();
        assert_eq!(config["source"]["kiln"]["registry"].as_str(), Some(closure));
        assert_eq!(
            config["source"]["kiln-alias-0"]["registry"].as_str(),
            Some("sparse+http://127.0.0.1:7878/index/")
        );
        // Reports name the curated index, never the closure's token.
        assert_eq!(index.index, "sparse+http://127.0.0.1:7878/index/");
        assert!(index.aliases().contains(&closure.to_owned()));
    }
}
