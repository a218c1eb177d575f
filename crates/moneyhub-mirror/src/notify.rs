//! Notifications to the application: every change of a connection's action, POSTed as JSON and
//! signed.
//!
//! ## The body
//!
//! ```json
//! {"id": "ntf_…", "type": "connection.action_changed", "userId": "…", "connectionId": "…",
//!  "previous": "none", "action": "sync", "reason": "…", "notBefore": null, "rule": 14,
//!  "at": "2025-01-17T10:00:00.001Z",
//!  "connection": {"status": "ok", "error": null, "extendedStatus": null, "removed": false,
//!                 "movedFrom": null, "accountTypes": {…}, "since": "…", "data": {…}}}
//! ```
//!
//! `id` is stable (a function of the connection and the number of its change): a redelivery
//! carries the same id, so deduplicate on it. `action` is `null` once the connection is removed;
//! `previous` is `null` for a connection's first evaluation. `at` is the mirror's clock (a
//! sandbox's virtual clock when the mirror follows one).
//!
//! ## The signature
//!
//! Header `Moneyhub-Mirror-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! `t` the sending time on the wall clock. To verify: recompute the HMAC over the exact bytes of
//! the body, compare in constant time, and refuse a `t` further than your tolerance (5 minutes
//! in [`verify_signature`]) from your clock: a captured request replayed later fails on `t`,
//! and one replayed within the tolerance carries an `id` you have seen.
//!
//! ## Delivery
//!
//! At least once: the notification is an outbox row written in the same transaction as the
//! change of action, so a crash loses nothing; a `2xx` answer deletes it. Anything else (an
//! error status, a timeout, no connection) is retried with back-off (1 s doubling, at most
//! [`NotifyConfig::max_backoff`], on the mirror's clock) and parked after
//! [`NotifyConfig::max_attempts`] attempts (kept, counted in `mirror status` and the metrics,
//! re-queued with `moneyhub mirror retry --notifications`). In order per connection: a
//! connection's next notification is sent only once the one before it was delivered (or
//! parked). Leases (wall clock, the request timeout plus 5 s) keep two processes from sending
//! the same notification at once; a process killed mid-delivery leaves a lease that ends by
//! itself, and the notification is sent again.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "Moneyhub-Mirror-Signature";

/// The default tolerance of [`verify_signature`] between `t` and the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Where and how notifications are delivered.
#[derive(Clone)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// The receiver's URL.
    pub url: url::Url,
    /// The HMAC key (never shown).
    secret: Vec<u8>,
    /// Per-request timeout (default 10 s).
    pub timeout: Duration,
    /// Attempts before a notification is parked (default 50: with the back-off capped at
    /// 5 minutes, about 3.5 hours of a receiver that does not answer).
    pub max_attempts: u32,
    /// Longest wait between two attempts (default 5 minutes).
    pub max_backoff: Duration,
}

impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("url", &self.url.as_str())
            .field("secret", &"***")
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl NotifyConfig {
    /// Notifications to `url`, signed with `secret` (at least 16 bytes; surrounding
    /// whitespace, such as a file's final newline, is removed).
    pub fn new(url: &str, secret: impl AsRef<[u8]>) -> crate::Result<NotifyConfig> {
        let url =
            url::Url::parse(url).map_err(|e| crate::Error::Invalid(format!("notification URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(crate::Error::Invalid("notification URL: use http:// or https://".into()));
        }
        let secret = secret.as_ref().trim_ascii().to_vec();
        if secret.len() < 16 {
            return Err(crate::Error::Invalid("the notification secret must be at least 16 bytes".into()));
        }
        Ok(NotifyConfig {
            url,
            secret,
            timeout: Duration::from_secs(10),
            max_attempts: 50,
            max_backoff: Duration::from_secs(300),
        })
    }

    /// Sets the per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the attempts before parking (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the longest wait between attempts.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// The header value for `body` sent at `t` (unix seconds).
    pub fn sign(&self, t: i64, body: &[u8]) -> String {
        sign(&self.secret, t, body)
    }

    /// The wait before the attempt after `attempts` failed ones.
    pub(crate) fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.min(20);
        Duration::from_secs(1u64 << exp).min(self.max_backoff)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> aws_lc_rs::hmac::Tag {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
///
/// ```
/// let header = moneyhub_mirror::notify::sign(b"0123456789abcdef", 1_700_000_000, br#"{"id":"ntf_1"}"#);
/// assert!(header.starts_with("t=1700000000,v1="));
/// ```
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex(mac(secret, t, body).as_ref()))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is not `t=…,v1=…`.
    #[error("the signature header is not t=<seconds>,v1=<hex>")]
    Malformed,
    /// No `v1` matches the body and secret (forged, altered, or another secret).
    #[error("the signature does not match the body")]
    Mismatch,
    /// `t` is further from now than the tolerance (a replay, or a clock far off).
    #[error("the signature's time is {0} s away from now, beyond the tolerance")]
    Stale(i64),
}

/// Verifies a notification: the header's HMAC over `"<t>.<body>"` (constant-time compare; any
/// of several `v1=` values may match, for secret rotation), and `t` within `tolerance` of
/// `now_unix` (seconds).
///
/// ```
/// use moneyhub_mirror::notify::{sign, verify_signature, SignatureError, DEFAULT_TOLERANCE};
/// let secret = b"0123456789abcdef";
/// let body = br#"{"id":"ntf_1","type":"connection.action_changed"}"#;
/// let header = sign(secret, 1_700_000_000, body);
/// assert_eq!(verify_signature(secret, &header, body, 1_700_000_030, DEFAULT_TOLERANCE), Ok(()));
/// // Altered body, wrong secret, replay an hour later:
/// assert_eq!(verify_signature(secret, &header, b"{}", 1_700_000_030, DEFAULT_TOLERANCE), Err(SignatureError::Mismatch));
/// assert_eq!(verify_signature(b"another secret!!", &header, body, 1_700_000_030, DEFAULT_TOLERANCE), Err(SignatureError::Mismatch));
/// assert!(matches!(verify_signature(secret, &header, body, 1_700_003_600, DEFAULT_TOLERANCE), Err(SignatureError::Stale(_))));
/// ```
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut t: Option<i64> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => candidates.push(unhex(v).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut message = Vec::with_capacity(body.len() + 12);
    message.extend_from_slice(t.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    if !candidates.iter().any(|c| aws_lc_rs::hmac::verify(&key, &message, c).is_ok()) {
        return Err(SignatureError::Mismatch);
    }
    let away = now_unix.saturating_sub(t);
    let limit = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if away.saturating_abs() > limit {
        return Err(SignatureError::Stale(away));
    }
    Ok(())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Notification counters of this process (since start), for metrics.
#[derive(Debug, Default)]
pub(crate) struct NotifyCounters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub parked: AtomicU64,
}

impl NotifyCounters {
    pub(crate) fn snapshot(&self) -> [(&'static str, u64); 3] {
        [
            ("delivered", self.delivered.load(Ordering::Relaxed)),
            ("failed", self.failed.load(Ordering::Relaxed)),
            ("parked", self.parked.load(Ordering::Relaxed)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_and_refusals() {
        let secret = b"0123456789abcdef0123";
        let body = br#"{"id":"ntf_1"}"#;
        let h = sign(secret, 100, body);
        assert_eq!(verify_signature(secret, &h, body, 100, DEFAULT_TOLERANCE), Ok(()));
        assert_eq!(
            verify_signature(secret, "nonsense", body, 100, DEFAULT_TOLERANCE),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(secret, "t=100", body, 100, DEFAULT_TOLERANCE),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(secret, "t=100,v1=zz", body, 100, DEFAULT_TOLERANCE),
            Err(SignatureError::Malformed)
        );
        // Changing t breaks the MAC.
        let forged = h.replacen("t=100", "t=200", 1);
        assert_eq!(
            verify_signature(secret, &forged, body, 200, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        // Rotation: one of two v1 values matches.
        let rotated = format!("{h},v1={}", "00".repeat(32));
        assert_eq!(verify_signature(secret, &rotated, body, 100, DEFAULT_TOLERANCE), Ok(()));
        assert_eq!(
            verify_signature(secret, &h, body, 100 + 301, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale(301))
        );
    }

    #[test]
    fn config_hides_its_secret_and_checks_input() {
        let c = NotifyConfig::new("http://127.0.0.1:9/x", "a-secret-of-enough-length\n").unwrap();
        assert!(!format!("{c:?}").contains("a-secret"));
        assert!(NotifyConfig::new("http://127.0.0.1:9/x", "short").is_err());
        assert!(NotifyConfig::new("ftp://x/", "a-secret-of-enough-length").is_err());
        assert_eq!(c.backoff(0), Duration::from_secs(1));
        assert_eq!(c.backoff(3), Duration::from_secs(8));
        assert_eq!(c.backoff(40), Duration::from_secs(300));
    }
}
