//! What the executor keeps in memory between requests: each kernel's fetched artifacts (by
//! crate and version, for a while), each loaded module (by manifest digest) and each small
//! notebook parsed (by the digest of its bytes). All are bounded; past the bound they start over
//! and refill.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_policy::Digest;

use crate::fetch::KernelArtifacts;
use crate::notebook::Notebook;
use crate::runtime::Kernel;

/// The fetched artifacts of one kernel are kept this long before they are fetched again.
pub const ARTIFACTS_TTL: Duration = Duration::from_secs(300);
/// At most this many kernels' artifacts and loaded modules, and this many parsed notebooks, are
/// kept.
pub const KERNEL_CACHE_LIMIT: usize = 256;
/// Only notebooks of at most this many bytes are kept parsed, so that the cache holds at most
/// [`KERNEL_CACHE_LIMIT`] times this (16 MiB).
pub const CACHED_NOTEBOOK_MAX_BYTES: usize = 64 << 10;

/// A kernel's name and version.
type KernelKey = (String, String);

/// Fetched artifacts by crate and version, with when they were fetched.
#[derive(Default)]
pub struct ArtifactCache {
    entries: Mutex<HashMap<KernelKey, (Arc<KernelArtifacts>, Instant)>>,
}

impl ArtifactCache {
    /// The artifacts of `krate@version`, when fetched less than [`ARTIFACTS_TTL`] ago.
    pub fn get(&self, krate: &str, version: &str) -> Option<Arc<KernelArtifacts>> {
        let entries = self.entries.lock().expect("artifact cache");
        let (artifacts, fetched) = entries.get(&(krate.to_owned(), version.to_owned()))?;
        (fetched.elapsed() < ARTIFACTS_TTL).then(|| artifacts.clone())
    }

    /// Keeps `artifacts` of `krate@version`.
    pub fn put(&self, krate: &str, version: &str, artifacts: Arc<KernelArtifacts>) {
        let mut entries = self.entries.lock().expect("artifact cache");
        if entries.len() >= KERNEL_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(
            (krate.to_owned(), version.to_owned()),
            (artifacts, Instant::now()),
        );
    }

    /// Forgets `krate@version` (what was fetched may be out of date).
    pub fn forget(&self, krate: &str, version: &str) {
        self.entries
            .lock()
            .expect("artifact cache")
            .remove(&(krate.to_owned(), version.to_owned()));
    }
}

/// Values by a content digest, at most [`KERNEL_CACHE_LIMIT`] of them.
pub struct DigestCache<T> {
    entries: Mutex<HashMap<Digest, T>>,
}

impl<T> Default for DigestCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> DigestCache<T> {
    /// The value kept under `digest`.
    pub fn get(&self, digest: &Digest) -> Option<T> {
        self.entries.lock().expect("cache").get(digest).cloned()
    }

    /// Keeps `value` under `digest`.
    pub fn put(&self, digest: Digest, value: T) {
        let mut entries = self.entries.lock().expect("cache");
        if entries.len() >= KERNEL_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(digest, value);
    }
}

/// Loaded modules by the digest of their manifest.
pub type ModuleCache = DigestCache<Kernel>;

/// Parsed and validated notebooks by the digest of their bytes: a notebook run again and again
/// is parsed once. Only notebooks of at most [`CACHED_NOTEBOOK_MAX_BYTES`] are kept.
pub type NotebookCache = DigestCache<Arc<Notebook>>;
