//! When things happen: Moneyhub's automatic sync schedule and reminder cadence.
//!
//! - API-like connections sync every 4 hours between 06:00 and 23:00 (Europe/London): at
//!   06:00, 10:00, 14:00, 18:00 and 22:00.
//! - Legacy connections sync once overnight (02:00).
//! - Valuation connections (zoopla, mouseprice, autotrader) sync monthly (the 1st, 03:00).
//! - Nothing syncs automatically once consent has expired, once attempts have failed for 3
//!   days (`stoppedSyncing`), or when the connection is single-sync-only.
//! - `reauthReminder`: from 5 days before expiry, every 2 days, until expiry.
//! - `refreshReminder`: a legacy connection not updated for 2 days, every 2 days.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use uuid::Uuid;

use crate::clock::london_offset;
use crate::seed::catalogue::ProviderType;
use crate::store::model::Connection;

/// A due event of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// An asynchronous sync to finish.
    FinishSync(Uuid),
    /// The background history fetch.
    History,
    /// The post-connection enrichment webhook.
    Enrichment,
    /// An automatic sync.
    AutoSync,
    /// A `reauthReminder`.
    ReauthReminder,
    /// A `refreshReminder`.
    RefreshReminder,
}

/// London-local hours of API-like automatic syncs.
pub const API_SYNC_HOURS: [u32; 5] = [6, 10, 14, 18, 22];
/// London-local hour of the overnight legacy sync.
pub const LEGACY_SYNC_HOUR: u32 = 2;

/// The UTC instant of a London wall-clock time.
pub fn london(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    let local = NaiveDateTime::new(date, NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or_default()).and_utc();
    // The offset at the local time is the offset an hour earlier in UTC terms, except in
    // the hour around a change, which no sync slot falls in (changes happen at 01:00 UTC).
    local - london_offset(local - Duration::hours(1))
}

/// The next automatic sync strictly after the connection's last attempt and not before
/// `from`, or `None` when it will not sync automatically.
pub fn next_auto_sync(c: &Connection, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if c.single_sync_only {
        return None;
    }
    let last = c.last_synced_at.unwrap_or(c.connected_on).max(from - Duration::milliseconds(1));
    let next = next_slot(c.kind, last)?;
    // Expired by then, or failing for 3 days by then: no more automatic syncs.
    if c.expires_at.is_some_and(|e| next > e) {
        return None;
    }
    if c.failing_since.is_some_and(|f| next - f >= crate::store::model::stopped_syncing_after()) {
        return None;
    }
    Some(next)
}

/// The first schedule slot strictly after `after` for a connection type.
pub fn next_slot(kind: ProviderType, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = after.date_naive() - Duration::days(1);
    for day in start.iter_days().take(70) {
        let candidates: Vec<DateTime<Utc>> = match kind {
            ProviderType::Api | ProviderType::Test => {
                API_SYNC_HOURS.iter().map(|h| london(day, *h)).collect()
            }
            ProviderType::Legacy => vec![london(day, LEGACY_SYNC_HOUR)],
            ProviderType::Zoopla | ProviderType::Mouseprice | ProviderType::Autotrader => {
                if day.day() == 1 {
                    vec![london(day, 3)]
                } else {
                    vec![]
                }
            }
        };
        if let Some(t) = candidates.into_iter().find(|t| *t > after) {
            return Some(t);
        }
    }
    None
}

/// The next `reauthReminder` for an API-like connection with an expiry.
pub fn next_reauth_reminder(c: &Connection) -> Option<DateTime<Utc>> {
    if c.kind == ProviderType::Legacy {
        return None;
    }
    let exp = c.expires_at?;
    let next = match c.last_reauth_reminder {
        None => exp - Duration::days(5),
        Some(last) => last + Duration::days(2),
    };
    (next < exp).then_some(next)
}

/// The next `refreshReminder` for a legacy connection that has not updated for 2 days.
pub fn next_refresh_reminder(c: &Connection) -> Option<DateTime<Utc>> {
    if c.kind != ProviderType::Legacy {
        return None;
    }
    let since = c.last_updated.unwrap_or(c.connected_on);
    let first = since + Duration::days(2);
    Some(match c.last_refresh_reminder {
        Some(last) if last >= first => last + Duration::days(2),
        _ => first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn api_slots_follow_london_time() {
        // Winter: London = UTC.
        assert_eq!(next_slot(ProviderType::Api, t("2025-01-15T10:00:00Z")), Some(t("2025-01-15T14:00:00Z")));
        assert_eq!(next_slot(ProviderType::Api, t("2025-01-15T22:30:00Z")), Some(t("2025-01-16T06:00:00Z")));
        // Summer: 06:00 BST = 05:00 UTC.
        assert_eq!(next_slot(ProviderType::Test, t("2025-07-15T00:00:00Z")), Some(t("2025-07-15T05:00:00Z")));
    }

    #[test]
    fn legacy_overnight_and_valuation_monthly() {
        assert_eq!(
            next_slot(ProviderType::Legacy, t("2025-01-15T10:00:00Z")),
            Some(t("2025-01-16T02:00:00Z"))
        );
        assert_eq!(
            next_slot(ProviderType::Zoopla, t("2025-01-15T10:00:00Z")),
            Some(t("2025-02-01T03:00:00Z"))
        );
    }
}
