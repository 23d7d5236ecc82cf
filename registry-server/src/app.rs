//! What every part of the registry shares: the database, the blob store, the settings, the
//! signing keys, the index cache, and hooks for other services in the same process.

use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::config::RegistryConfig;
use crate::db::Db;
use crate::metrics::Metrics;

/// The registry.
#[derive(Debug)]
pub struct App {
    /// The database.
    pub db: Db,
    /// The blob store.
    pub blobs: Arc<dyn BlobStore>,
    /// The settings.
    pub config: RegistryConfig,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Index files in memory.
    pub index_cache: crate::index_cache::IndexCache,
    /// The server's signing keys.
    pub keys: crate::keys::ServerKeys,
    /// Publishes per user and minute.
    pub publish_limiter: crate::rate_limit::RateLimiter,
    /// One HTTP client for what the registry fetches itself (imports from upstream
    /// registries), so that connections are reused.
    pub http: reqwest::Client,
    /// What other services in the same process add.
    pub extensions: Extensions,
}

/// The state handlers receive.
pub type AppState = Arc<App>;

impl App {
    /// Drops `name`'s cached index file after a change to what the index serves of it.
    pub fn index_changed(&self, name: &str) {
        self.index_cache.invalidate(&name.to_ascii_lowercase());
    }
}

/// What another service in the same process (the executor under `kiln serve`) adds to the
/// registry's operations endpoints. Each is set at most once, before serving.
#[derive(Default)]
pub struct Extensions {
    /// More API description, merged into `/openapi.json`.
    pub openapi: std::sync::OnceLock<utoipa::openapi::OpenApi>,
    /// Told after every revocation is committed (the executor then refreshes its list before
    /// its next preflight).
    pub on_revocation: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Extensions {
    /// Tells whoever listens that the revocation list changed.
    pub fn revoked(&self) {
        if let Some(listener) = self.on_revocation.get() {
            listener();
        }
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("openapi", &self.openapi.get().is_some())
            .field("on_revocation", &self.on_revocation.get().is_some())
            .finish()
    }
}
