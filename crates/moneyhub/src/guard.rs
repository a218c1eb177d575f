//! The manual-sync guard: refuses a `POST /sync/{connectionId}` that Moneyhub would throttle,
//! before it is sent.
//!
//! Rules (lifecycle spec §4, reference §9 and §14.2):
//!
//! * at most one manual sync per connection every 30 minutes;
//! * provider caps: Triodos allows 4 manual syncs a day per connection (a rolling 24 hours).
//!   Providers are matched by bank id, which every connection id starts with
//!   ([`ConnectionId::bank_id`]), so the guard never needs the connection's provider name;
//!   the table is configurable ([`GuardRules::provider_caps`], [`ProviderCap::from_catalogue`]);
//! * when Moneyhub answers a sync with 429, its `retryAfterSecs` becomes a not-before time for
//!   that connection.
//!
//! [`DefaultSyncGuard`] implements the rules over an async [`GuardStore`] (in memory by
//! default, [`MemoryGuardStore`]); implement [`GuardStore`] to persist the history (a
//! serde-ready [`GuardRecord`] per connection) so that several processes or restarts share it.
//! The store's [`update`](GuardStore::update) must be atomic for everyone sharing the store, so
//! that the check and the record of a sync are one step for all of them (`moneyhub-mirror`'s
//! `DbGuardStore` uses a database transaction, the CLI's file store a file lock). Implement
//! [`SyncGuard`] yourself for different rules. Callers that only want to ask use
//! [`Connections::sync_allowed_at`](crate::Connections::sync_allowed_at).
//!
//! ```
//! use chrono::{Duration, Utc};
//! use moneyhub::guard::{DefaultSyncGuard, SyncGuard};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), moneyhub_types::Error> {
//! let guard = DefaultSyncGuard::new();
//! let conn = "1ffe704d39629a929c8e293880fb449a:1".parse()?;
//! let now = Utc::now();
//! guard.acquire(&conn, now).await.unwrap();
//! let refused = guard.check(&conn, now + Duration::minutes(5)).await.unwrap_err();
//! assert_eq!(refused.not_before, now + Duration::minutes(30));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use moneyhub_types::{BankId, CatalogueEntry, ConnectionId};

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
        /// The provider's name, as the cap names it.
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
/// when Moneyhub refused the request without syncing (400, 401, 403, 404, or it was never
/// sent), and [`SyncGuard::record_not_before`] on a 429. Async, so that a guard kept in a
/// database or a file waits without blocking the runtime; boxed futures keep it usable as
/// `dyn SyncGuard`.
pub trait SyncGuard: Send + Sync + 'static {
    /// `Ok` when a manual sync of the connection is allowed at `now` (nothing is recorded).
    fn check<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), NotBefore>>;

    /// Checks and, when allowed, records a manual sync at `now`, as one step: two concurrent
    /// callers (of any process sharing the guard's store) cannot both pass.
    fn acquire<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), NotBefore>>;

    /// Records that Moneyhub asked not to sync the connection before `not_before`.
    fn record_not_before<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
        not_before: DateTime<Utc>,
    ) -> BoxFuture<'a, ()>;

    /// Forgets the sync recorded at `at` (it was refused without syncing, or never sent).
    fn forget<'a>(&'a self, connection_id: &'a ConnectionId, at: DateTime<Utc>) -> BoxFuture<'a, ()>;

    /// The last manual sync the guard knows of, if it keeps a history (default: `None`).
    fn last_manual_sync<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
    ) -> BoxFuture<'a, Option<DateTime<Utc>>> {
        let _ = connection_id;
        Box::pin(async { None })
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
///
/// The contract:
///
/// * [`update`](Self::update) is atomic for everyone who shares the store: no other update of
///   that connection's record, from this process or another, may come between its read and
///   its write. A store shared by processes uses a transaction or a lock for it.
///   [`DefaultSyncGuard`] makes every change through `update`.
/// * `change` is called exactly once, with the stored record (an empty one when there is
///   none). When the store cannot be read, it is called with an empty record and nothing is
///   saved: the guard then lets the sync through, and Moneyhub's own throttle still applies.
///   Stores report such failures themselves (e.g. a `tracing` warning); they never panic.
/// * An empty record and no record are the same: a store may delete a record saved empty.
pub trait GuardStore: Send + Sync + 'static {
    /// The record of a connection (empty when there is none, or it cannot be read).
    fn load(&self, connection_id: &ConnectionId) -> impl Future<Output = GuardRecord> + Send;

    /// Replaces the record of a connection.
    fn save(&self, connection_id: &ConnectionId, record: GuardRecord) -> impl Future<Output = ()> + Send;

    /// Reads a connection's record, lets `change` decide, and writes the record it returns
    /// (`None`: leave it as it is), as one step (see the trait's contract). Returns what
    /// `change` returned beside the record.
    fn update<R, F>(&self, connection_id: &ConnectionId, change: F) -> impl Future<Output = R> + Send
    where
        R: Send + 'static,
        F: FnOnce(GuardRecord) -> (Option<GuardRecord>, R) + Send + 'static;
}

/// An in-memory [`GuardStore`] (per process): a map behind a mutex, so `update` is atomic
/// within the process.
#[derive(Debug, Default)]
pub struct MemoryGuardStore {
    records: Mutex<HashMap<ConnectionId, GuardRecord>>,
}

impl MemoryGuardStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `records` (empty ones are dropped).
    pub fn from_records(records: HashMap<ConnectionId, GuardRecord>) -> Self {
        let store = Self::new();
        store.replace(records);
        store
    }

    /// Every record, e.g. to persist them.
    pub fn records(&self) -> HashMap<ConnectionId, GuardRecord> {
        self.records.lock().clone()
    }

    /// Replaces every record (empty ones are dropped), e.g. with what another process saved.
    pub fn replace(&self, mut records: HashMap<ConnectionId, GuardRecord>) {
        records.retain(|_, r| *r != GuardRecord::default());
        *self.records.lock() = records;
    }

    /// [`GuardStore::update`] without the future: the read, `change` and the write under one
    /// lock.
    pub fn update_now<R>(
        &self,
        connection_id: &ConnectionId,
        change: impl FnOnce(GuardRecord) -> (Option<GuardRecord>, R),
    ) -> R {
        let mut records = self.records.lock();
        let current = records.get(connection_id).cloned().unwrap_or_default();
        let (record, outcome) = change(current);
        match record {
            Some(r) if r == GuardRecord::default() => {
                records.remove(connection_id);
            }
            Some(r) => {
                records.insert(connection_id.clone(), r);
            }
            None => {}
        }
        outcome
    }
}

impl GuardStore for MemoryGuardStore {
    async fn load(&self, connection_id: &ConnectionId) -> GuardRecord {
        self.records.lock().get(connection_id).cloned().unwrap_or_default()
    }

    async fn save(&self, connection_id: &ConnectionId, record: GuardRecord) {
        self.update_now(connection_id, |_| (Some(record), ()));
    }

    async fn update<R, F>(&self, connection_id: &ConnectionId, change: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(GuardRecord) -> (Option<GuardRecord>, R) + Send + 'static,
    {
        self.update_now(connection_id, change)
    }
}

/// A provider's daily cap on manual syncs, keyed by bank id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderCap {
    /// The provider's bank id: connections whose id starts with it are capped.
    pub bank_id: BankId,
    /// The provider's name, for messages (e.g. `Triodos Bank`).
    pub name: String,
    /// Manual syncs allowed per connection per rolling 24 hours.
    pub per_day: u32,
}

impl ProviderCap {
    /// A cap for every provider of a catalogue whose name contains `name_contains`
    /// (case-insensitive), e.g. from [`Connections::available`](crate::Connections::available).
    pub fn from_catalogue(
        catalogue: &[CatalogueEntry],
        name_contains: &str,
        per_day: u32,
    ) -> Vec<ProviderCap> {
        let wanted = name_contains.to_lowercase();
        catalogue
            .iter()
            .filter(|e| !wanted.is_empty() && e.name.to_lowercase().contains(&wanted))
            .map(|e| ProviderCap { bank_id: e.id.clone(), name: e.name.clone(), per_day })
            .collect()
    }

    /// A cap of `per_day` manual syncs for the provider `bank_id`, named `name` in messages.
    pub fn new(bank_id: BankId, name: impl Into<String>, per_day: u32) -> Self {
        ProviderCap { bank_id, name: name.into(), per_day }
    }
}

/// Bank id of Triodos Bank in the default cap table.
///
/// Moneyhub does not publish its bank ids; this is the id the provider catalogue of
/// `moneyhub-sandbox` gives Triodos. Against Moneyhub, build the table from its catalogue with
/// [`ProviderCap::from_catalogue`]`(&catalogue, "Triodos", 4)`.
pub const TRIODOS_BANK_ID: &str = "7fed5219511259b24fa6ff95478b8cf9";

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
        let triodos = TRIODOS_BANK_ID.parse::<BankId>().ok();
        GuardRules {
            min_interval: Duration::minutes(30),
            provider_caps: triodos
                .map(|bank_id| ProviderCap { bank_id, name: "Triodos Bank".into(), per_day: 4 })
                .into_iter()
                .collect(),
        }
    }
}

impl GuardRules {
    /// Whether a manual sync of the connection is allowed at `now`, given its record.
    pub fn evaluate(
        &self,
        record: &GuardRecord,
        connection_id: &ConnectionId,
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
            consider(*last + self.min_interval, GuardReason::MinInterval { interval: self.min_interval });
        }
        let bank = connection_id.bank_id_str();
        for cap in self.provider_caps.iter().filter(|cap| bank == Some(cap.bank_id.as_str())) {
            let mut recent: Vec<DateTime<Utc>> =
                record.manual_syncs.iter().copied().filter(|t| now - *t < Duration::days(1)).collect();
            recent.sort();
            if recent.len() >= cap.per_day as usize {
                // Allowed again once enough of the window's syncs have aged out.
                let index = recent.len() - cap.per_day as usize;
                let reason = GuardReason::ProviderCap { provider: cap.name.clone(), per_day: cap.per_day };
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
}

/// The record without syncs older than a day or a passed not-before time.
fn pruned(mut record: GuardRecord, now: DateTime<Utc>) -> GuardRecord {
    record.manual_syncs.retain(|t| now - *t < Duration::days(1));
    record.manual_syncs.sort();
    if record.not_before.is_some_and(|nb| nb <= now) {
        record.not_before = None;
    }
    record
}

/// The guard the client uses unless told otherwise: [`GuardRules`] over a [`GuardStore`].
pub struct DefaultSyncGuard<S: GuardStore = MemoryGuardStore> {
    rules: Arc<GuardRules>,
    store: S,
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
        DefaultSyncGuard { rules: Arc::new(rules), store }
    }

    /// The rules.
    pub fn rules(&self) -> &GuardRules {
        &self.rules
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: GuardStore> SyncGuard for DefaultSyncGuard<S> {
    fn check<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), NotBefore>> {
        Box::pin(
            async move { self.rules.evaluate(&self.store.load(connection_id).await, connection_id, now) },
        )
    }

    fn acquire<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), NotBefore>> {
        let (rules, id) = (self.rules.clone(), connection_id.clone());
        // The check and the record happen inside one store update, so that guards of other
        // processes sharing the store cannot both pass.
        Box::pin(self.store.update(connection_id, move |record| match rules.evaluate(&record, &id, now) {
            Ok(()) => {
                let mut record = pruned(record, now);
                record.manual_syncs.push(now);
                (Some(record), Ok(()))
            }
            Err(refused) => (None, Err(refused)),
        }))
    }

    fn record_not_before<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
        not_before: DateTime<Utc>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.store.update(connection_id, move |mut record| {
            if record.not_before.is_some_and(|nb| nb >= not_before) {
                return (None, ());
            }
            record.not_before = Some(not_before);
            (Some(record), ())
        }))
    }

    fn forget<'a>(&'a self, connection_id: &'a ConnectionId, at: DateTime<Utc>) -> BoxFuture<'a, ()> {
        Box::pin(self.store.update(connection_id, move |mut record| {
            let Some(pos) = record.manual_syncs.iter().position(|t| *t == at) else { return (None, ()) };
            record.manual_syncs.remove(pos);
            (Some(record), ())
        }))
    }

    fn last_manual_sync<'a>(
        &'a self,
        connection_id: &'a ConnectionId,
    ) -> BoxFuture<'a, Option<DateTime<Utc>>> {
        Box::pin(async move { self.store.load(connection_id).await.manual_syncs.iter().max().copied() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap().with_timezone(&Utc)
            + Duration::minutes(min)
    }

    fn conn(bank: &str, n: u32) -> ConnectionId {
        format!("{bank}:{n}").parse().unwrap()
    }

    const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";

    #[tokio::test]
    async fn thirty_minute_rule() {
        let g = DefaultSyncGuard::new();
        let c = conn(MOCK, 1);
        g.acquire(&c, t(0)).await.unwrap();
        let e = g.acquire(&c, t(29)).await.unwrap_err();
        assert_eq!(e.not_before, t(30));
        assert!(matches!(e.reason, GuardReason::MinInterval { .. }));
        g.acquire(&c, t(30)).await.unwrap();
        // Another connection is independent.
        g.acquire(&conn(MOCK, 2), t(31)).await.unwrap();
        assert_eq!(g.last_manual_sync(&c).await, Some(t(30)));
    }

    #[tokio::test]
    async fn triodos_cap_is_a_rolling_day_keyed_by_bank_id() {
        let g = DefaultSyncGuard::new();
        let c = conn(TRIODOS_BANK_ID, 1);
        for i in 0..4 {
            g.acquire(&c, t(i * 31)).await.unwrap();
        }
        let e = g.acquire(&c, t(4 * 31)).await.unwrap_err();
        assert_eq!(e.not_before, t(24 * 60));
        assert_eq!(e.reason, GuardReason::ProviderCap { provider: "Triodos Bank".into(), per_day: 4 });
        g.acquire(&c, t(24 * 60)).await.unwrap();
        // Other banks have no cap.
        let d = conn(MOCK, 1);
        for i in 0..6 {
            g.acquire(&d, t(i * 31)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn server_throttle_and_forget() {
        let g = DefaultSyncGuard::new();
        let c = conn(MOCK, 1);
        g.record_not_before(&c, t(45)).await;
        assert_eq!(g.check(&c, t(10)).await.unwrap_err().reason, GuardReason::ServerThrottle);
        g.check(&c, t(45)).await.unwrap();
        g.acquire(&c, t(50)).await.unwrap();
        g.forget(&c, t(50)).await;
        g.acquire(&c, t(51)).await.unwrap();
        assert!(g.check(&c, t(52)).await.unwrap_err().to_string().contains("refused locally"));
    }

    #[test]
    fn caps_from_a_catalogue() {
        let entry: CatalogueEntry = serde_json::from_value(serde_json::json!({
            "id": MOCK, "name": "Triodos Bank", "type": "api"
        }))
        .unwrap();
        let caps = ProviderCap::from_catalogue(&[entry], "triodos", 4);
        assert_eq!(caps.len(), 1);
        assert_eq!(caps[0].bank_id.as_str(), MOCK);
        assert!(ProviderCap::from_catalogue(&[], "", 4).is_empty());
    }
}
