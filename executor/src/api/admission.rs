//! Admission: at most `slots` runs at once and `max_queued` more waiting; past that, or after
//! waiting `queue_timeout`, the answer is 503 with `Retry-After`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiState;
use super::error::{ApiError, ApiResult};

/// A held slot (or place in the queue), released on drop.
pub(super) struct Admitted {
    state: Arc<ApiState>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.state.executor.metrics.in_flight.dec();
    }
}

/// The slots.
pub(super) fn slots(count: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(count))
}

/// Waits for a run slot, or refuses with 503 when the queue is full or the wait too long.
pub(super) async fn admit(state: &Arc<ApiState>) -> ApiResult<Admitted> {
    let metrics = &state.executor.metrics;
    let busy = |message: &str| {
        metrics.rejected_busy.inc();
        ApiError::busy(message, 1)
    };
    let waiting = metrics.in_flight.inc();
    let slots = state.executor.settings().slots as i64;
    if waiting >= slots + state.limits.max_queued as i64 {
        metrics.in_flight.dec();
        return Err(busy(
            "every slot and queue place is taken; try again shortly",
        ));
    }
    match tokio::time::timeout(
        state.limits.queue_timeout,
        state.slots.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(permit)) => Ok(Admitted {
            state: state.clone(),
            _permit: permit,
        }),
        _ => {
            metrics.in_flight.dec();
            Err(busy("no slot became free in time; try again shortly"))
        }
    }
}
