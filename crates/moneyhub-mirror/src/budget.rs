//! A budget of Moneyhub API requests per second, shared by everything one mirror asks
//! Moneyhub (backfills, reconciliations, look-ups by id).
//!
//! Moneyhub rate-limits the Data API per API client (the limit is not published; see the
//! reference, §19), so in production the rate of requests, not the number of users listed at
//! once, is what binds. The budget paces requests evenly (a cell rate with a burst of one
//! second's worth): concurrent backfills share it, so raising [`Scope::concurrency`] beyond
//! what the budget feeds only makes users wait their turn, and never makes the mirror exceed
//! the rate. Without a budget ([`MirrorConfig::api_requests_per_second`] `None`, the
//! default) requests go out as fast as the workers ask.
//!
//! [`Scope::concurrency`]: crate::Scope::concurrency
//! [`MirrorConfig::api_requests_per_second`]: crate::MirrorConfig::api_requests_per_second

use std::time::Duration;

use tokio::time::Instant;

/// A shared pacing of API requests: at most `rate` per second on average, at most one
/// second's worth at once.
#[derive(Debug)]
pub(crate) struct RequestBudget {
    /// Time per request; `None`: unlimited.
    interval: Option<Duration>,
    /// How far ahead of now the schedule may run (the burst).
    burst: Duration,
    /// When the next request may go, had nothing been saved up.
    next: parking_lot::Mutex<Option<Instant>>,
}

impl RequestBudget {
    /// A budget of `per_second` requests per second (`None` or 0: unlimited).
    pub(crate) fn new(per_second: Option<u32>) -> RequestBudget {
        let interval = per_second.filter(|n| *n > 0).map(|n| Duration::from_secs(1) / n);
        RequestBudget { interval, burst: Duration::from_secs(1), next: parking_lot::Mutex::new(None) }
    }

    /// Waits until `n` requests may be sent, and books them.
    pub(crate) async fn take(&self, n: u32) {
        let Some(interval) = self.interval else { return };
        if n == 0 {
            return;
        }
        let wait = {
            let now = Instant::now();
            let mut next = self.next.lock();
            // A schedule that fell behind now starts from now (unused time is not saved up
            // beyond the burst).
            let start = next.map_or(now, |t| t.max(now.checked_sub(self.burst).unwrap_or(now)));
            let booked = start + interval.saturating_mul(n);
            *next = Some(booked);
            // The requests may go once the schedule is within a burst of now.
            booked.saturating_duration_since(now).saturating_sub(self.burst)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paces_requests_at_the_rate_after_a_burst() {
        let b = RequestBudget::new(Some(1_000));
        let t = Instant::now();
        // One second's worth at once, then 1,000 per second: 1,500 take at least 0.5 s.
        b.take(1_000).await;
        for _ in 0..50 {
            b.take(10).await;
        }
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(490), "{e:?}");
    }

    #[tokio::test]
    async fn unlimited_never_waits() {
        for b in [RequestBudget::new(None), RequestBudget::new(Some(0))] {
            assert!(b.interval.is_none());
            b.take(u32::MAX).await;
        }
    }
}
