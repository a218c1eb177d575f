//! [`RetryPolicy`]: exponential backoff with jitter, honouring `Retry-After`.
//!
//! Only requests that are safe to repeat are retried: `GET`, `DELETE` and client-credentials
//! token requests. Never the authorisation-code exchange, `POST /sync`, `POST /users`, PAR or
//! `PATCH`. Retried outcomes: HTTP 408, 429, 500, 502, 503, 504, and transport failures
//! (connection refused or dropped, timeouts).

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How retries are spaced and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 3).
    pub max_retries: u32,
    /// Backoff before the first retry (default 200 ms); doubles each retry.
    pub initial_backoff: Duration,
    /// Upper bound of the exponential backoff (default 5 s).
    pub max_backoff: Duration,
    /// The longest `Retry-After` the client waits for (default 30 s). A server asking for
    /// longer gets no retry: the error is returned with [`Error::retry_after`](crate::Error::retry_after).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_retries: 0, ..Self::default() }
    }

    /// At most `n` retries of one request.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The first backoff (before jitter); doubles with each retry.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Upper bound of the exponential backoff.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The longest `Retry-After` the client waits for.
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// The backoff before retry number `retry` (1-based): "equal jitter", a random duration
    /// between half and all of `initial_backoff * 2^(retry-1)`, capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1).min(20)));
        let base = exp.min(self.max_backoff);
        let half = base / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 { 0 } else { rand::random::<u64>() % (jitter_ms + 1) };
        half + Duration::from_millis(extra)
    }
}

/// The wait a response asks for: the `Retry-After` header (seconds or an HTTP date), else
/// the body's `retryAfterSecs`.
pub(crate) fn retry_after(headers: &HeaderMap, body_secs: Option<u64>) -> Option<Duration> {
    let header = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| {
        let v = v.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
        Some(wait.to_std().unwrap_or(Duration::ZERO))
    });
    header.or(body_secs.map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(200), "{b1:?}");
            let b10 = p.backoff(10);
            assert!(b10 >= Duration::from_millis(2500) && b10 <= Duration::from_secs(5), "{b10:?}");
        }
        assert_eq!(RetryPolicy::none().max_retries, 0);
    }

    #[test]
    fn retry_after_header_or_body() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, Some(7)), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h, Some(7)), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h, None), Some(Duration::ZERO));
    }
}
