//! What the executor keeps in memory between requests: each kernel's fetched artifacts (by
//! crate and version, for a while), and each loaded module (by manifest digest). Both are
//! bounded; past the bound they start over and refill.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_policy::Digest;

use crate::fetch::KernelArtifacts;
use crate::runtime::Kernel;

/// The fetched artifacts of one kernel are kept this long before they are fetched again.
pub const ARTIFACTS_TTL: Duration = Duration::from_secs(300);
/// At most this many kernels' artifacts and loaded modules are kept.
pub const KERNEL_CACHE_LIMIT: usize = 256;

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

/// Loaded modules by the digest of their manifest.
#[derive(Default)]
pub struct ModuleCache {
    entries: Mutex<HashMap<Digest, Kernel>>,
}

impl ModuleCache {
    /// The module loaded from the artifacts with this manifest.
    pub fn get(&self, manifest: &Digest) -> Option<Kernel> {
        self.entries
            .lock()
            .expect("module cache")
            .get(manifest)
            .cloned()
    }

    /// Keeps a loaded module.
    pub fn put(&self, manifest: Digest, kernel: Kernel) {
        let mut entries = self.entries.lock().expect("module cache");
        if entries.len() >= KERNEL_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(manifest, kernel);
    }
}
