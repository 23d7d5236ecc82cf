//! The curated index a worker resolves against, and every URL that names it. Workers reach the
//! registry at one URL, while authors' packaged manifests name it by its public URL
//! (`registry-index`), and dependencies declared the crates.io way are resolved here too: the
//! workers' Cargo replaces crates.io (and the public URL) with this registry, so each of those
//! sources is this registry's curated index, and the sources check accepts them as its own.

/// crates.io's source, as Cargo records it in a lockfile, and its sparse index.
pub const CRATES_IO: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// The registry's sparse index as the worker reaches it, and as its users name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratedIndex {
    /// `sparse+http://…/index/` as this worker reaches it.
    pub index: String,
    /// The public `sparse+…/index/` from the registry's `config.json`, when it differs.
    pub public: Option<String>,
}

impl CuratedIndex {
    /// The index at `index`, also known as `public`.
    pub fn new(index: impl Into<String>, public: Option<String>) -> Self {
        let index = index.into();
        let public = public.filter(|p| p.trim_end_matches('/') != index.trim_end_matches('/'));
        Self { index, public }
    }

    /// The other URLs that name this registry's crates (crates.io, the public URL).
    pub fn aliases(&self) -> Vec<String> {
        CRATES_IO
            .iter()
            .map(|u| (*u).to_owned())
            .chain(self.public.clone())
            .collect()
    }

    /// A Cargo configuration whose only registry is this one: crates.io and the public URL are
    /// replaced by it, and `registry = "kiln"` names it.
    pub fn cargo_config(&self) -> String {
        let index = &self.index;
        let mut config = format!(
            "[source.crates-io]\nreplace-with = \"kiln\"\n\n[source.kiln]\nregistry = \"{index}\"\n\n\
             [registries.kiln]\nindex = \"{index}\"\n"
        );
        if let Some(public) = &self.public {
            config.push_str(&format!(
                "\n[source.kiln-public]\nregistry = \"{public}\"\nreplace-with = \"kiln\"\n"
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
        assert!(!same.cargo_config().contains("kiln-public"));
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
            config["source"]["kiln-public"]["replace-with"].as_str(),
            Some("kiln")
        );
        assert_eq!(
            config["source"]["crates-io"]["replace-with"].as_str(),
            Some("kiln")
        );
    }
}
