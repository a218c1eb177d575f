//! [`AdviceContext`]: what [`advise`](crate::health::advise) knows besides the connection.

use chrono::{DateTime, Utc};
use moneyhub_types::AccountType;

/// What [`advise`](crate::health::advise) needs to know besides the connection itself.
///
/// Build it with [`AdviceContext::new`] and the `with_*` methods; every field except `now` is
/// optional, and leaving one out makes the advice more cautious, never wrong:
///
/// * without `account_types`, staleness uses the per-connection-type fallback (lifecycle §2);
/// * without `last_manual_sync`, a `resync` or `sync_error` is never considered "retried", so the
///   advice is `sync` first (rows 7 and 9);
/// * without `sync_allowed_at`, a `sync` advice carries no `not_before`.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use moneyhub::health::AdviceContext;
/// use moneyhub_types::AccountType;
///
/// let now = Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 0).unwrap();
/// let context = AdviceContext::new(now)
///     .with_account_types([AccountType::CashCurrent, AccountType::MortgageRepayment])
///     .with_last_manual_sync(now - Duration::hours(2))
///     .with_sync_allowed_at(None); // e.g. straight from the guard: `None` = allowed now
/// assert_eq!(context.account_types.as_ref().map(Vec::len), Some(2));
/// assert_eq!(context.sync_allowed_at, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdviceContext {
    /// The current time (pass the client's clock, so tests can control it).
    pub now: DateTime<Utc>,
    /// The types of the connection's accounts, when known. `None` and an empty list both mean
    /// "not known" (a connection with no accounts has no smallest threshold).
    pub account_types: Option<Vec<AccountType>>,
    /// When this client last made a manual sync of the connection, when known.
    pub last_manual_sync: Option<DateTime<Utc>>,
    /// From the manual-sync guard: when the next manual sync of the connection is allowed, if not
    /// now. A time at or before `now` is the same as `None`.
    pub sync_allowed_at: Option<DateTime<Utc>>,
}

impl AdviceContext {
    /// A context knowing only the current time.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now, account_types: None, last_manual_sync: None, sync_allowed_at: None }
    }

    /// Sets the types of the connection's accounts (e.g. the `type` of each account whose
    /// `connectionId` is this connection).
    pub fn with_account_types<I>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = AccountType>,
    {
        self.account_types = Some(types.into_iter().collect());
        self
    }

    /// Sets (or, with `None`, clears) the time of the last manual sync this client made for the
    /// connection.
    pub fn with_last_manual_sync(mut self, at: impl Into<Option<DateTime<Utc>>>) -> Self {
        self.last_manual_sync = at.into();
        self
    }

    /// Sets (or, with `None`, clears) the earliest time the manual-sync guard allows the next
    /// manual sync of the connection.
    pub fn with_sync_allowed_at(mut self, at: impl Into<Option<DateTime<Utc>>>) -> Self {
        self.sync_allowed_at = at.into();
        self
    }

    /// The known account types, treating an empty list as unknown.
    pub(crate) fn known_account_types(&self) -> Option<&[AccountType]> {
        self.account_types.as_deref().filter(|types| !types.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn builder_sets_and_clears_fields() {
        let now = Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 0).unwrap();
        let later = now + chrono::Duration::minutes(30);
        let context = AdviceContext::new(now)
            .with_account_types(vec![AccountType::Savings])
            .with_last_manual_sync(now)
            .with_sync_allowed_at(later);
        assert_eq!(context.now, now);
        assert_eq!(context.account_types, Some(vec![AccountType::Savings]));
        assert_eq!(context.last_manual_sync, Some(now));
        assert_eq!(context.sync_allowed_at, Some(later));
        let cleared = context.with_last_manual_sync(None).with_sync_allowed_at(None);
        assert_eq!(cleared.last_manual_sync, None);
        assert_eq!(cleared.sync_allowed_at, None);
    }

    #[test]
    fn empty_account_type_list_counts_as_unknown() {
        let now = Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 0).unwrap();
        assert_eq!(AdviceContext::new(now).with_account_types([]).known_account_types(), None);
        let one = AdviceContext::new(now).with_account_types([AccountType::Asset]);
        assert_eq!(one.known_account_types(), Some(&[AccountType::Asset][..]));
    }
}
