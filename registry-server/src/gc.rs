//! Sweeping orphan blobs. A blob is written before the database row that names it (so that a
//! slow store never holds the database's write lock), and a worker uploads its artifacts before
//! it reports them; when the transaction or the report never comes, the blob is an orphan:
//! harmless, since nothing names it, but it takes space. A sweep deletes the blobs that no row
//! names and that are older than a grace period, which leaves alone what an upload in flight
//! has just written.

use std::time::{Duration, SystemTime};

pub use kiln_wire::admin::Swept;

use crate::app::App;
use crate::model::{ModelResult, artifacts};

/// How old an unnamed blob must be before a sweep deletes it, unless told otherwise: longer
/// than any upload-then-report takes.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// Deletes the blobs no row names that are older than `grace` (or only counts them, in a
/// `dry_run`).
pub async fn sweep(app: &App, grace: Duration, dry_run: bool) -> ModelResult<Swept> {
    // Read what the database names after listing the store, so that a blob and its row written
    // in between are seen as named.
    let listed = app.blobs.list().await?;
    let named = artifacts::referenced(&app.db).await?;
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut swept = Swept {
        blobs: listed.len(),
        ..Swept::default()
    };
    for (digest, written) in listed {
        if named.contains(&digest) || written > cutoff {
            continue;
        }
        swept.orphans += 1;
        if dry_run {
            continue;
        }
        let size = app.blobs.size(&digest).await?.unwrap_or(0);
        app.blobs.delete(&digest).await?;
        swept.deleted += 1;
        swept.bytes += size;
    }
    if swept.deleted > 0 {
        tracing::info!(
            deleted = swept.deleted,
            bytes = swept.bytes,
            "swept orphan blobs"
        );
    }
    Ok(swept)
}
