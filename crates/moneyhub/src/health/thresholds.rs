//! The time thresholds of the lifecycle table (spec §2 and §3) in one table. [`advise`]
//! decides with these functions and [`next_change_at`] takes from the same functions the
//! instants at which time alone flips a decision, so the two cannot drift apart: change a
//! number here and both follow.
//!
//! | fact | rows | true from | threshold |
//! | --- | --- | --- | --- |
//! | stale | 13, 14 | [`stale_from`]: `lastUpdated` + threshold + 1 ms (the age must *exceed* it) | [`STALE_DAYS`], [`VALUATION_STALE_DAYS`], 40 days for slow-moving account types ([`moneyhub_types::AccountType::staleness_threshold`]) |
//! | consent ending soon | 15 | [`renewal_window_opens`]: `expiresAt` − [`RENEWAL_WINDOW_DAYS`] | 5 days |
//! | consent lapsed | 15 (wording) | `expiresAt` itself ([`lapsed`]) | — |
//! | manual sync allowed | 7, 9, 11, 14 (`not_before`) | the guard's `not_before` | 30 minutes (the guard) |
//!
//! [`advise`]: super::advise
//! [`next_change_at`]: super::next_change_at

use chrono::{DateTime, Duration, Utc};

/// Staleness threshold (days) when the account types are unknown, for every connection type
/// but the valuation ones (spec §2).
pub(crate) const STALE_DAYS: i64 = 2;

/// Staleness threshold (days) of zoopla, mouseprice and autotrader connections when the
/// account types are unknown: they sync monthly (spec §2).
pub(crate) const VALUATION_STALE_DAYS: i64 = 30;

/// Row 15: consent ending within this many days asks for renewal.
pub(crate) const RENEWAL_WINDOW_DAYS: i64 = 5;

/// The first instant (millisecond precision) at which data that last arrived at `last` is
/// stale under `threshold`: one millisecond after `last + threshold`. `None` past the
/// calendar's end (never).
pub(crate) fn stale_from(last: DateTime<Utc>, threshold: Duration) -> Option<DateTime<Utc>> {
    last.checked_add_signed(threshold)?.checked_add_signed(Duration::milliseconds(1))
}

/// When consent ending at `expires_at` enters the renewal window (row 15). `None` before the
/// calendar's start (always inside it).
pub(crate) fn renewal_window_opens(expires_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    expires_at.checked_sub_signed(Duration::days(RENEWAL_WINDOW_DAYS))
}

/// Whether consent ending at `expires_at` is inside the renewal window at `now` (at most
/// [`RENEWAL_WINDOW_DAYS`] left, or already past).
pub(crate) fn expires_soon(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    renewal_window_opens(expires_at).is_none_or(|opens| now >= opens)
}

/// Whether consent ending at `expires_at` has lapsed at `now` (at `expiresAt` itself).
pub(crate) fn lapsed(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at <= now
}
