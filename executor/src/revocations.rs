//! The executor's copy of the registry's signed revocation list: the last one fetched and
//! verified, or why there is none. A background task refreshes it; a registry in the same
//! process marks it changed after every revocation so that the next preflight fetches it first.
//! A list that can no longer be refreshed grows stale, and the preflight then refuses every
//! cell.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use kiln_policy::revocation::RevocationList;
use kiln_policy::{Keyring, Verifier};

use crate::fetch::Fetcher;

/// The last verified list, or why there is none.
#[derive(Debug, Default)]
pub struct RevocationState {
    current: RwLock<(Option<Arc<RevocationList>>, Option<String>)>,
    changed: AtomicBool,
}

impl RevocationState {
    /// The current list and, when the last refresh failed, why.
    pub fn current(&self) -> (Option<Arc<RevocationList>>, Option<String>) {
        self.current.read().expect("revocation state").clone()
    }

    /// Says that the registry's list changed: [`RevocationState::refresh_if_changed`] fetches
    /// it.
    pub fn mark_changed(&self) {
        self.changed.store(true, Ordering::SeqCst);
    }

    /// Fetches and verifies the list when it was marked changed.
    pub async fn refresh_if_changed(&self, fetcher: &Fetcher, keyring: &Keyring) {
        if self.changed.swap(false, Ordering::SeqCst) {
            self.refresh(fetcher, keyring).await;
        }
    }

    /// Fetches and verifies the list; on failure the last good list stays (and ages).
    pub async fn refresh(&self, fetcher: &Fetcher, keyring: &Keyring) {
        let fetched = fetcher.revocations().await.map_err(|err| err.to_string());
        let verified = fetched.and_then(|json| {
            RevocationList::verify(&Verifier::new(keyring), &json)
                .map_err(|err| format!("the registry's revocation list: {err}"))
        });
        let mut current = self.current.write().expect("revocation state");
        match verified {
            Ok(list) => *current = (Some(Arc::new(list)), None),
            Err(err) => {
                tracing::warn!(error = %err, "cannot refresh the revocation list");
                current.1 = Some(err);
            }
        }
    }
}
