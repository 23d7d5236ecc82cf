//! Sparse-index files kept in memory, with their ETags, so that the index serves at the speed
//! of a static file server. An entry is dropped whenever its crate's index changes (approval,
//! yank, unyank) in this process. Several processes sharing PostgreSQL each have their own
//! cache, so entries there also expire after [`SHARED_DATABASE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long a cached file is trusted when other processes may change the index.
pub const SHARED_DATABASE_TTL: Duration = Duration::from_secs(2);

/// One crate's index file, or its absence.
#[derive(Debug)]
pub struct Entry {
    /// The file, `None` when the crate has no approved version.
    pub body: Option<Bytes>,
    /// The quoted ETag of the body.
    pub etag: String,
    cached_at: Instant,
}

impl Entry {
    /// An entry for `body`.
    pub fn new(body: Option<Bytes>) -> Self {
        let etag = match &body {
            Some(body) => format!("\"{}\"", &kiln_policy::Digest::of(body).hex()[..32]),
            None => String::new(),
        };
        Self {
            body,
            etag,
            cached_at: Instant::now(),
        }
    }
}

/// The cache, keyed by canonical crate name.
#[derive(Debug, Default)]
pub struct IndexCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    ttl: Option<Duration>,
}

/// The most entries kept; past it the cache starts over (it refills from the database).
const MAX_ENTRIES: usize = 200_000;

impl IndexCache {
    /// A cache whose entries live until invalidated (`ttl` none) or for `ttl`.
    pub fn new(ttl: Option<Duration>) -> Self {
        Self {
            entries: RwLock::default(),
            ttl,
        }
    }

    /// The cached entry for `key`, if fresh.
    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let entry = self
            .entries
            .read()
            .expect("index cache lock")
            .get(key)
            .cloned()?;
        match self.ttl {
            Some(ttl) if entry.cached_at.elapsed() > ttl => None,
            _ => Some(entry),
        }
    }

    /// Caches `entry` for `key`.
    pub fn put(&self, key: String, entry: Arc<Entry>) {
        let mut entries = self.entries.write().expect("index cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, entry);
    }

    /// Forgets `key` after its index changed.
    pub fn invalidate(&self, key: &str) {
        self.entries.write().expect("index cache lock").remove(key);
    }
}
