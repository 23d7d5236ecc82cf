//! How a registry is set up.

use std::path::PathBuf;

use kiln_policy::policy_file::Policy;

/// The default (and largest) `.crate` a publish may carry: the compressed limit every reader
/// of `.crate` files shares, so that nothing the registry accepts is refused later.
pub const DEFAULT_MAX_PUBLISH_BYTES: usize =
    kiln_crate_archive::Limits::DEFAULT_MAX_COMPRESSED_BYTES as usize;

/// The registry's settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The URL clients reach the registry at, without a trailing slash
    /// (`http://127.0.0.1:7878`). The index's `dl` and `api` are built from it.
    pub public_url: String,
    /// Whether every request, index reads included, needs a token.
    pub auth_required: bool,
    /// The largest `.crate` a publish may carry (at most [`DEFAULT_MAX_PUBLISH_BYTES`]).
    pub max_publish_bytes: usize,
    /// How many attempts an audit or build job gets before it is dead-lettered.
    pub job_attempts: i64,
    /// How many versions one user may publish per minute.
    pub publish_per_minute: u32,
    /// The audit policy (kiln's defaults unless configured).
    pub policy: Policy,
    /// The advisory database directory audits read and syncs replace.
    pub advisory_db: Option<PathBuf>,
    /// Where `advisories sync` fetches from when not told (a directory or a git URL).
    pub advisory_source: Option<String>,
    /// Where imports keep Cargo's download cache between requests (a temporary directory per
    /// import otherwise).
    pub import_cache: Option<PathBuf>,
}

impl RegistryConfig {
    /// Settings for a registry reached at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            auth_required: false,
            max_publish_bytes: DEFAULT_MAX_PUBLISH_BYTES,
            job_attempts: 5,
            publish_per_minute: 120,
            policy: Policy::parse("", "built-in defaults").expect("the built-in policy is valid"),
            advisory_db: None,
            advisory_source: None,
            import_cache: None,
        }
    }

    /// The sparse index URL Cargo is given (`sparse+…/index/`).
    pub fn index_url(&self) -> String {
        format!("sparse+{}/index/", self.public_url)
    }

    /// The limits a `.crate` published here must meet: kiln's shared limits, with this
    /// registry's publish size.
    pub fn crate_limits(&self) -> kiln_crate_archive::Limits {
        let limits = kiln_crate_archive::Limits::default();
        kiln_crate_archive::Limits {
            max_compressed_bytes: limits
                .max_compressed_bytes
                .min(self.max_publish_bytes as u64),
            ..limits
        }
    }

    /// Where a person gets a token.
    pub fn login_url(&self) -> String {
        format!("{}/me", self.public_url)
    }
}
