//! The manual-sync guard: refuses a `POST /sync/{connectionId}` that Moneyhub would throttle,
//! before it is sent.
//!
//! Rules (lifecycle spec §4, reference §9 and §14.2):
//!
//! * at most one manual sync per connection every 30 minutes;
//! * provider caps: Triodos allows 4 manual syncs a day per connection (a rolling 24 hours).
//!   Providers are matched by a case-insensitive substring of their name, and the table is
//!   configurable ([`GuardRules::provider_caps`]);
//! * when Moneyhub answers a sync with 429, its `retryAfterSecs` becomes a not-before time for
//!   that connection.
//!
//! [`DefaultSyncGuard`] implements the rules over a small [`GuardStore`] (in memory by default,
//! [`MemoryGuardStore`]); implement [`GuardStore`] to persist the history (it is a serde-ready
//! [`GuardRecord`] per connection) so that several processes or restarts share it; a store
//! shared by several processes overrides [`GuardStore::update`] with a transaction, so that
//! the check and the record of a sync are one step for all of them (`moneyhub-mirror`'s
//! `DbGuardStore` does, on SQLite and PostgreSQL). Implement [`SyncGuard`] yourself for
//! different rules.
//!
//! ```
//! use chrono::{Duration, Utc};
//! use moneyhub::guard::{DefaultSyncGuard, SyncGuard};
//! let guard = DefaultSyncGuard::new();
//! let conn = "b:1".parse()?;
//! let now = Utc::now();
//! guard.acquire(&conn, "Moneyhub Open Banking Mock", now).unwrap();
//! let refused = guard.check(&conn, "Moneyhub Open Banking Mock", now + Duration::minutes(5)).unwrap_err();
//! assert_eq!(refused.not_before, now + Duration::minutes(30));
//! # Ok::<(), moneyhub_types::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use moneyhub_types::ConnectionId;

/// Why the guard refused a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardReason {
    /// A manual sync of this connection happened less than `interval` ago.
    MinInterval {
        /// The minimum gap between two manual syncs.
        interval: Duration,
    },
    /// The provider's daily cap is used up.
    ProviderCap {
        /// The provider name the cap matched.
        provider: String,
        /// Syncs allowed per rolling 24 hours.
        per_day: u32,
    },
    /// Moneyhub answered an earlier sync with 429 and `retryAfterSecs`.
    ServerThrottle,
}

/// A sync refused by the guard: the earliest time it will be allowed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotBefore {
    /// The connection.
    pub connection_id: ConnectionId,
    /// The earliest time a manual sync is allowed.
    pub not_before: DateTime<Utc>,
    /// Why.
    pub reason: GuardReason,
}

impl fmt::Display for NotBefore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "manual sync of connection {} refused locally (not sent): ", self.connection_id)?;
        match &self.reason {
            GuardReason::MinInterval { interval } => {
                write!(f, "at most one manual sync every {} minutes", interval.num_minutes())?
            }
            GuardReason::ProviderCap { provider, per_day } => {
                write!(f, "{provider} allows {per_day} manual syncs per connection per day")?
            }
            GuardReason::ServerThrottle => f.write_str("Moneyhub asked to wait (429)")?,
        }
        write!(f, "; allowed again from {}", moneyhub_types::time::format_timestamp(&self.not_before))
    }
}

impl std::error::Error for NotBefore {}

/// Decides whether a manual sync may be sent now, and remembers the ones that were.
///
/// The client calls [`SyncGuard::acquire`] before sending `POST /sync`, [`SyncGuard::forget`]
/// when Moneyhub refused the request without syncing (400, 401, 403, 404), and
/// [`SyncGuard::record_not_before`] on a 429.
pub trait SyncGuard: Send + Sync + 'static {
    /// `Ok` when a manual sync of the connection is allowed at `now`.
    fn check(
        &self,
        connection_id: &ConnectionId,
        provider_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), NotBefore>;

    /// Records a manual sync sent at `at`.
    fn record(&self, connection_id: &ConnectionId, provider_name: &str, at: DateTime<Utc>);

    /// Records that Moneyhub asked not to sync the connection before `not_before`.
    fn record_not_before(&self, connection_id: &ConnectionId, not_before: DateTime<Utc>);

    /// Forgets the sync recorded at `at` (it was refused without syncing).
    fn forget(&self, connection_id: &ConnectionId, at: DateTime<Utc>);

    /// [`check`](SyncGuard::check) and [`record`](SyncGuard::record) as one step, so two
    /// concurrent callers cannot both pass. The default calls one after the other; override it
    /// when the guard is shared.
    fn acquire(
        &self,
        connection_id: &ConnectionId,
        provider_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), NotBefore> {
        self.check(connection_id, provider_name, now)?;
        self.record(connection_id, provider_name, now);
        Ok(())
    }
}

/// What the guard remembers about one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GuardRecord {
    /// Manual syncs sent in the last 24 hours (older ones are pruned), oldest first.
    pub manual_syncs: Vec<DateTime<Utc>>,
    /// Not before this time (from a 429's `retryAfterSecs`).
    pub not_before: Option<DateTime<Utc>>,
}

/// Where [`DefaultSyncGuard`] keeps its [`GuardRecord`]s.
pub trait GuardStore: Send + Sync + 'static {
    /// The record of a connection (empty when there is none).
    fn load(&self, connection_id: &ConnectionId) -> GuardRecord;
    /// Replaces the record of a connection.
    fn save(&self, connection_id: &ConnectionId, record: GuardRecord);
    /// Reads a connection's record, lets `change` decide, and writes what it returns
    /// (`None`: leave the record as it is), as one step: no other update of that record may
    /// come between the read and the write. `change` is called exactly once.
    ///
    /// [`DefaultSyncGuard`] makes every change through this method. The default loads and
    /// saves, which is atomic only within one process (the guard serialises its own calls);
    /// a store shared by several processes overrides it with a transaction or a lock, so that
    /// two processes cannot both pass [`SyncGuard::acquire`] for one connection.
    fn update(
        &self,
        connection_id: &ConnectionId,
        change: &mut dyn FnMut(GuardRecord) -> Option<GuardRecord>,
    ) {
        if let Some(record) = change(self.load(connection_id)) {
            self.save(connection_id, record);
        }
    }
}

/// An in-memory [`GuardStore`] (per process).
#[derive(Debug, Default)]
pub struct MemoryGuardStore {
    records: Mutex<HashMap<ConnectionId, GuardRecord>>,
}

impl MemoryGuardStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl GuardStore for MemoryGuardStore {
    fn load(&self, connection_id: &ConnectionId) -> GuardRecord {
        self.records.lock().get(connection_id).cloned().unwrap_or_default()
    }

    fn save(&self, connection_id: &ConnectionId, record: GuardRecord) {
        let mut records = self.records.lock();
        if record == GuardRecord::default() {
            records.remove(connection_id);
        } else {
            records.insert(connection_id.clone(), record);
        }
    }
}

/// A provider's daily cap on manual syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderCap {
    /// Matched case-insensitively against the connection's provider name (e.g. `Triodos`).
    pub name_contains: String,
    /// Manual syncs allowed per connection per rolling 24 hours.
    pub per_day: u32,
}

impl ProviderCap {
    /// A cap of `per_day` manual syncs for providers whose name contains `name_contains`.
    pub fn new(name_contains: impl Into<String>, per_day: u32) -> Self {
        ProviderCap { name_contains: name_contains.into(), per_day }
    }
}

/// The rules [`DefaultSyncGuard`] applies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GuardRules {
    /// Minimum gap between two manual syncs of one connection (30 minutes).
    pub min_interval: Duration,
    /// Provider caps (Triodos: 4 a day).
    pub provider_caps: Vec<ProviderCap>,
}

impl Default for GuardRules {
    fn default() -> Self {
        GuardRules {
            min_interval: Duration::minutes(30),
            provider_caps: vec![ProviderCap { name_contains: "Triodos".into(), per_day: 4 }],
        }
    }
}

/// The guard the client uses unless told otherwise: [`GuardRules`] over a [`GuardStore`].
pub struct DefaultSyncGuard<S: GuardStore = MemoryGuardStore> {
    rules: GuardRules,
    store: S,
    // Serialises load-check-save so that `acquire` is atomic within the process.
    lock: Mutex<()>,
}

impl DefaultSyncGuard<MemoryGuardStore> {
    /// The default rules, in memory.
    pub fn new() -> Self {
        Self::with_store(GuardRules::default(), MemoryGuardStore::new())
    }
}

impl Default for DefaultSyncGuard<MemoryGuardStore> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: GuardStore> fmt::Debug for DefaultSyncGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultSyncGuard").field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl<S: GuardStore> DefaultSyncGuard<S> {
    /// Custom rules over a custom store.
    pub fn with_store(rules: GuardRules, store: S) -> Self {
        DefaultSyncGuard { rules, store, lock: Mutex::new(()) }
    }

    /// The rules.
    pub fn rules(&self) -> &GuardRules {
        &self.rules
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn evaluate(
        &self,
        record: &GuardRecord,
        connection_id: &ConnectionId,
        provider_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), NotBefore> {
        let mut worst: Option<(DateTime<Utc>, GuardReason)> = None;
        let mut consider = |at: DateTime<Utc>, reason: GuardReason| {
            if at > now && worst.as_ref().is_none_or(|(w, _)| at > *w) {
                worst = Some((at, reason));
            }
        };
        if let Some(nb) = record.not_before {
            consider(nb, GuardReason::ServerThrottle);
        }
        if let Some(last) = record.manual_syncs.iter().max() {
            consider(
                *last + self.rules.min_interval,
                GuardReason::MinInterval { interval: self.rules.min_interval },
            );
        }
        let provider = provider_name.to_lowercase();
        for cap in &self.rules.provider_caps {
            if cap.name_contains.is_empty() || !provider.contains(&cap.name_contains.to_lowercase()) {
                continue;
            }
            let mut recent: Vec<DateTime<Utc>> =
                record.manual_syncs.iter().copied().filter(|t| now - *t < Duration::days(1)).collect();
            recent.sort();
            if recent.len() >= cap.per_day as usize {
                // Allowed again once enough of the window's syncs have aged out.
                let index = recent.len() - cap.per_day as usize;
                let reason =
                    GuardReason::ProviderCap { provider: provider_name.to_owned(), per_day: cap.per_day };
                consider(recent[index] + Duration::days(1), reason);
            }
        }
        match worst {
            None => Ok(()),
            Some((not_before, reason)) => {
                Err(NotBefore { connection_id: connection_id.clone(), not_before, reason })
            }
        }
    }

    fn pruned(mut record: GuardRecord, now: DateTime<Utc>) -> GuardRecord {
        record.manual_syncs.retain(|t| now - *t < Duration::days(1));
        record.manual_syncs.sort();
        if record.not_before.is_some_and(|nb| nb <= now) {
            record.not_before = None;
        }
        record
    }
}

impl<S: GuardStore> SyncGuard for DefaultSyncGuard<S> {
    fn check(
        &self,
        connection_id: &ConnectionId,
        provider_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), NotBefore> {
        let _held = self.lock.lock();
        self.evaluate(&self.store.load(connection_id), connection_id, provider_name, now)
    }

    fn record(&self, connection_id: &ConnectionId, _provider_name: &str, at: DateTime<Utc>) {
        let _held = self.lock.lock();
        self.store.update(connection_id, &mut |mut record| {
            record.manual_syncs.push(at);
            Some(Self::pruned(record, at))
        });
    }

    fn record_not_before(&self, connection_id: &ConnectionId, not_before: DateTime<Utc>) {
        let _held = self.lock.lock();
        self.store.update(connection_id, &mut |mut record| {
            if record.not_before.is_some_and(|nb| nb >= not_before) {
                return None;
            }
            record.not_before = Some(not_before);
            Some(record)
        });
    }

    fn forget(&self, connection_id: &ConnectionId, at: DateTime<Utc>) {
        let _held = self.lock.lock();
        self.store.update(connection_id, &mut |mut record| {
            let pos = record.manual_syncs.iter().position(|t| *t == at)?;
            record.manual_syncs.remove(pos);
            Some(record)
        });
    }

    fn acquire(
        &self,
        connection_id: &ConnectionId,
        provider_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), NotBefore> {
        let _held = self.lock.lock();
        // The check and the record happen inside one store update, so that guards of other
        // processes sharing the store cannot both pass.
        let mut outcome = Ok(());
        self.store.update(connection_id, &mut |record| {
            outcome = self.evaluate(&record, connection_id, provider_name, now);
            outcome.is_ok().then(|| {
                let mut record = Self::pruned(record, now);
                record.manual_syncs.push(now);
                record
            })
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap().with_timezone(&Utc)
            + Duration::minutes(min)
    }

    #[test]
    fn thirty_minute_rule() {
        let g = DefaultSyncGuard::new();
        let c: ConnectionId = "b:1".parse().unwrap();
        g.acquire(&c, "Bank", t(0)).unwrap();
        let e = g.acquire(&c, "Bank", t(29)).unwrap_err();
        assert_eq!(e.not_before, t(30));
        assert!(matches!(e.reason, GuardReason::MinInterval { .. }));
        g.acquire(&c, "Bank", t(30)).unwrap();
        // Another connection is independent.
        g.acquire(&"b:2".parse().unwrap(), "Bank", t(31)).unwrap();
    }

    #[test]
    fn triodos_cap_is_a_rolling_day() {
        let g = DefaultSyncGuard::new();
        let c: ConnectionId = "t:1".parse().unwrap();
        for i in 0..4 {
            g.acquire(&c, "Triodos Bank", t(i * 31)).unwrap();
        }
        let e = g.acquire(&c, "Triodos Bank", t(4 * 31)).unwrap_err();
        assert_eq!(e.not_before, t(24 * 60));
        assert!(matches!(e.reason, GuardReason::ProviderCap { per_day: 4, .. }));
        g.acquire(&c, "Triodos Bank", t(24 * 60)).unwrap();
        // Other providers have no cap.
        let d: ConnectionId = "m:1".parse().unwrap();
        for i in 0..6 {
            g.acquire(&d, "Mock", t(i * 31)).unwrap();
        }
    }

    #[test]
    fn server_throttle_and_forget() {
        let g = DefaultSyncGuard::new();
        let c: ConnectionId = "b:1".parse().unwrap();
        g.record_not_before(&c, t(45));
        assert_eq!(g.check(&c, "Bank", t(10)).unwrap_err().reason, GuardReason::ServerThrottle);
        g.check(&c, "Bank", t(45)).unwrap();
        g.acquire(&c, "Bank", t(50)).unwrap();
        g.forget(&c, t(50));
        g.acquire(&c, "Bank", t(51)).unwrap();
        assert!(g.check(&c, "Bank", t(52)).unwrap_err().to_string().contains("refused locally"));
    }
}
