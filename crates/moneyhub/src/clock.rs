//! The time source the client checks JWT times and the manual-sync guard against.

use chrono::{DateTime, Utc};

/// A source of the current time.
///
/// The client reads it to validate `exp`/`iat` of id_tokens and webhooks, to date client
/// assertions, and to apply the manual-sync guard. Token *lifetimes* are measured on the
/// monotonic clock instead, so a wall-clock jump never makes a cached token look fresh or
/// stale. Closures `Fn() -> DateTime<Utc>` are clocks, which lets a test follow a simulated
/// clock:
///
/// ```
/// use chrono::{DateTime, Utc};
/// let fixed = DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap().with_timezone(&Utc);
/// let clock = move || fixed;
/// assert_eq!(moneyhub::Clock::now(&clock), fixed);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock ([`Utc::now`]), the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync + 'static,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}
