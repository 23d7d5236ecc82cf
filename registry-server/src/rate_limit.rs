//! A fixed-window rate limit per user, for publishes: past the limit, the answer is 429 with
//! `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a window lasts.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts per user in the current window.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<i64, (Instant, u32)>>,
}

impl RateLimiter {
    /// Counts one action by `user`; `Err(wait)` when it is over `limit` in this window.
    pub fn check(&self, user: i64, limit: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("rate limiter lock");
        let (start, count) = windows.entry(user).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= limit {
            return Err(WINDOW.saturating_sub(now.duration_since(*start)));
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_applies_per_user() {
        let limiter = RateLimiter::default();
        assert!(limiter.check(1, 2).is_ok());
        assert!(limiter.check(1, 2).is_ok());
        let wait = limiter.check(1, 2).unwrap_err();
        assert!(wait <= WINDOW && wait > Duration::from_secs(50));
        assert!(limiter.check(2, 2).is_ok());
    }
}
