//! [`next_change_at`]: the next instant time alone can change [`advise`]'s answer.

use chrono::{DateTime, Utc};
// The tests (`use super::*`) build durations; the thresholds live in `health::thresholds`.
#[cfg(test)]
use chrono::Duration;
use moneyhub_types::Connection;

use crate::health::advice::advise;
use crate::health::context::AdviceContext;
use crate::health::staleness::{last_data_at, staleness_threshold};
use crate::health::thresholds;

/// The next instant after `context.now` at which [`advise`] gives a different answer for the
/// same connection and the same knowledge (account types, last manual sync, guard), or `None`
/// when time alone never changes it.
///
/// Only four facts of the table depend on time, and each flips at one instant, taken from the
/// same functions `advise` decides with (the crate's `health::thresholds` table):
///
/// * **stale** (rows 13, 14): just after `lastUpdated` + the staleness threshold (spec §2:
///   stale means the age *strictly exceeds* it, so one millisecond later);
/// * **consent within 5 days** (row 15): at `expiresAt - 5 days`;
/// * **consent lapsed** (the wording of row 15): at `expiresAt`;
/// * **a manual sync allowed again** (the guard's `not_before`): at
///   [`AdviceContext::sync_allowed_at`].
///
/// The candidates after `now` are tried in time order and the first at which the advice
/// (action, reason, `not_before`, rule) differs from the advice at `now` is returned: a flip
/// that does not change the answer (a stale connection whose consent also nears expiry
/// stays `sync`) is skipped. So a caller that re-evaluates at the returned instant, and
/// whenever the connection or the context changes, always holds the current advice, and is
/// never woken for nothing.
///
/// Total: extreme dates saturate instead of overflowing.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use moneyhub::health::{advise, next_change_at, Action, AdviceContext};
/// use moneyhub_types::Connection;
///
/// let connection: Connection = serde_json::from_value(serde_json::json!({
///     "id": "b74f1a79f0be8bdb857d82d0f041d7d2:7d235ab0-e951-487f-acde-73cae1a18be0",
///     "name": "Modelo Open Banking Mock", "type": "api", "status": "ok", "error": null,
///     "connectedOn": "2025-01-01T09:00:00.000Z", "lastUpdated": "2025-03-10T11:00:00.000Z",
///     "expiresAt": "2025-03-30T09:00:00.000Z", "accountIds": [], "tppConsent": true
/// }))?;
/// let now = Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap();
/// // Healthy now; stale just after 2 days without new data.
/// let at = next_change_at(&connection, &AdviceContext::new(now)).unwrap();
/// assert_eq!(at, Utc.with_ymd_and_hms(2025, 3, 12, 11, 0, 0).unwrap() + Duration::milliseconds(1));
/// assert_eq!(advise(&connection, &AdviceContext::new(at)).action, Action::Sync);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn next_change_at(connection: &Connection, context: &AdviceContext) -> Option<DateTime<Utc>> {
    let now = context.now;
    let mut candidates: Vec<DateTime<Utc>> = Vec::with_capacity(4);
    let threshold = staleness_threshold(connection, context.known_account_types());
    if let Some(stale_at) = thresholds::stale_from(last_data_at(connection), threshold) {
        candidates.push(stale_at);
    }
    if let Some(expires) = connection.expires_at {
        // Lapsed from `expiresAt` itself ([`thresholds::lapsed`]).
        candidates.push(expires);
        if let Some(window) = thresholds::renewal_window_opens(expires) {
            candidates.push(window);
        }
    }
    if let Some(allowed) = context.sync_allowed_at {
        candidates.push(allowed);
    }
    candidates.retain(|t| *t > now);
    candidates.sort();
    candidates.dedup();
    let current = advise(connection, context);
    let mut later = context.clone();
    for at in candidates {
        later.now = at;
        if advise(connection, &later) != current {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Action;
    use moneyhub_types::AccountType;
    use serde_json::json;

    use crate::health::fixtures::{conn, now, ts};

    /// Checks the returned instant is a real change and that nothing changes before it
    /// (sampled at every candidate instant and a few in between).
    fn check(c: &Connection, ctx: &AdviceContext) -> Option<DateTime<Utc>> {
        let at = next_change_at(c, ctx);
        let before = advise(c, ctx);
        if let Some(at) = at {
            assert!(at > ctx.now);
            let mut later = ctx.clone();
            later.now = at;
            assert_ne!(advise(c, &later), before, "no change at {at}");
            later.now = at - Duration::milliseconds(1);
            assert_eq!(advise(c, &later), before, "changed before {at}");
        }
        at
    }

    #[test]
    fn healthy_connection_goes_stale_after_two_days() {
        let c = conn(json!({}));
        let at = check(&c, &AdviceContext::new(now())).unwrap();
        assert_eq!(at, now() - Duration::hours(1) + Duration::days(2) + Duration::milliseconds(1));
    }

    #[test]
    fn mortgage_only_connection_reaches_the_renewal_window_first() {
        let c = conn(json!({ "expiresAt": ts(now() + Duration::days(20)) }));
        let ctx = AdviceContext::new(now()).with_account_types([AccountType::MortgageRepayment]);
        let at = check(&c, &ctx).unwrap();
        assert_eq!(at, now() + Duration::days(15));
        let mut later = ctx.clone();
        later.now = at;
        assert_eq!(advise(&c, &later).action, Action::Reconsent);
        // Then the wording changes when the consent lapses.
        let lapse = check(&c, &later).unwrap();
        assert_eq!(lapse, now() + Duration::days(20));
    }

    #[test]
    fn guard_not_before_passing_is_a_change() {
        let c = conn(json!({ "status": "error", "error": "sync_error" }));
        let allowed = now() + Duration::minutes(20);
        let ctx = AdviceContext::new(now()).with_sync_allowed_at(allowed);
        assert_eq!(advise(&c, &ctx).not_before, Some(allowed));
        assert_eq!(check(&c, &ctx), Some(allowed));
    }

    #[test]
    fn flips_that_do_not_change_the_answer_are_skipped() {
        // Expired: rows 2/3 win whatever the time; nothing time-based changes the answer.
        let c = conn(json!({ "extendedStatus": "expired", "expiresAt": ts(now() + Duration::days(3)) }));
        assert_eq!(check(&c, &AdviceContext::new(now())), None);
        // Already stale (sync, row 14): the consent window does not change that.
        let c = conn(
            json!({ "lastUpdated": ts(now() - Duration::days(3)), "expiresAt": ts(now() + Duration::days(6)) }),
        );
        assert_eq!(check(&c, &AdviceContext::new(now())), None);
        // Removed provider.
        let c = conn(json!({ "status": "never" }));
        assert_eq!(check(&c, &AdviceContext::new(now())), None);
    }

    #[test]
    fn legacy_without_expiry_changes_only_when_stale() {
        let c = conn(json!({ "type": "legacy", "expiresAt": null }));
        let at = check(&c, &AdviceContext::new(now())).unwrap();
        assert_eq!(at, now() - Duration::hours(1) + Duration::days(2) + Duration::milliseconds(1));
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let mut c = conn(json!({}));
        c.last_updated = Some(DateTime::<Utc>::MAX_UTC);
        c.expires_at = Some(DateTime::<Utc>::MIN_UTC);
        let _ = next_change_at(&c, &AdviceContext::new(now()));
        c.last_updated = Some(DateTime::<Utc>::MIN_UTC);
        c.expires_at = Some(DateTime::<Utc>::MAX_UTC);
        let _ = next_change_at(&c, &AdviceContext::new(now()).with_sync_allowed_at(DateTime::<Utc>::MAX_UTC));
    }
}
