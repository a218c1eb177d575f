//! The storage contract: what a backend implements so the mirror can run on it.
//!
//! A backend is two types: its database ([`Store`]: the inbox, claims, status, exports, the
//! guard's records) and its claimed user ([`ClaimedUser`]: one user's pending events and rows,
//! owned exclusively until finished or failed). [`super::Db`] and [`super::Claim`] hold them
//! as trait objects, so the rest of the crate (and its users) never names a backend, and
//! adding one is a file that implements both traits plus one line in [`super::Db::open_url`].
//!
//! # Why boxed futures
//!
//! The backend is chosen at run time from a URL, and [`super::Db`] is one type whatever the
//! backend, so the traits must be object-safe. Native `async fn` in traits (Rust 1.75+) is
//! not, so each method returns a [`BoxFuture`] written out by hand (no `async-trait`
//! macro): one allocation per database call, against a round trip to SQLite's blocking pool
//! or a PostgreSQL server. The alternative, an enum over the backends, needs every call
//! matched on every backend again: that is the pass-through this contract replaced.

use futures_util::future::BoxFuture;
use moneyhub_types::AccountId;

use super::claim::ClaimPolicy;
use super::rows::{
    InboxCounts, InboxEvent, LiveRow, LocalAccount, LocalConnection, NewInboxEvent, Status, StatusQuery,
    StoredTx, Writes,
};
use crate::error::Result;

/// How a guard record is changed: given the stored record (JSON), `None` to keep it,
/// `Some(None)` to delete it, `Some(Some(new))` to replace it.
pub(crate) type GuardChange = Box<dyn FnOnce(Option<String>) -> Option<Option<String>> + Send>;

/// What a claim asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimRequest<'a> {
    /// Now (ms since the epoch): rows due by then are claimable.
    pub now_ms: i64,
    /// Only users whose oldest pending event arrived by then (the coalescing window).
    pub arrived_by_ms: i64,
    /// Most events one claim takes.
    pub limit: usize,
    /// Users this process holds back in memory.
    pub exclude: &'a [String],
    /// Bytes per claim and back-off.
    pub policy: ClaimPolicy,
}

/// What a readiness check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Required tables (see `migrations::TABLES`) the database does not have.
    pub missing_tables: Vec<String>,
    /// Whether the database refuses writes (read-only file or transaction mode, a standby).
    pub read_only: bool,
}

impl Readiness {
    /// Whether the mirror can work on this database.
    pub fn ok(&self) -> bool {
        self.missing_tables.is_empty() && !self.read_only
    }
}

/// The inbox's work queue: what `/metrics` shows, counted without reading history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Pending events (retrying ones included).
    pub pending: i64,
    /// Pending events that failed at least once.
    pub retrying: i64,
    /// Parked events.
    pub parked: i64,
    /// When the oldest pending event arrived (ms since the epoch).
    pub oldest_pending_ms: Option<i64>,
}

/// A mirror database. Implementations are cheap to share (`Arc` inside or around them).
pub(crate) trait Store: Send + Sync + 'static {
    /// `sqlite`, `postgres`, …: the backend's name, for logs and `mirror status`.
    fn backend(&self) -> &'static str;

    /// The file holding the database, when it is one (SQLite).
    fn file(&self) -> Option<&std::path::Path> {
        None
    }

    /// The applied schema version.
    fn schema_version(&self) -> BoxFuture<'_, Result<i64>>;

    /// Stores a webhook durably (synced before it returns); `false` when its id was stored
    /// already (nothing written).
    fn insert_inbox(&self, event: NewInboxEvent) -> BoxFuture<'_, Result<bool>>;

    /// Stores webhooks (distinct ids) durably in one transaction, one sync; per webhook,
    /// `false` when its id was stored already. On an error nothing of the batch is stored.
    fn insert_inbox_batch(&self, events: Vec<NewInboxEvent>) -> BoxFuture<'_, Result<Vec<bool>>>;

    /// Folds the inbox counts' rows into one where a backend keeps several (PostgreSQL's
    /// delta rows); a no-op elsewhere.
    fn compact_counts(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Claims the user with the oldest pending event that no one else holds, not in
    /// `exclude`, whose retry time has come (`now_ms`) and whose first pending event arrived
    /// by `arrived_by_ms`, with up to `limit` of its pending events in arrival order (only
    /// the first when it failed before).
    /// Claims a due user (see [`ClaimRequest`] and the claiming pattern in the `db` module
    /// docs): the first row of the claim queue by due time that no one else holds, with its
    /// pending events bounded by the request. The attempt is recorded durably (the user's
    /// attempts grow and its due time moves past the back-off) before the claim is returned,
    /// so no work is spent on a database that cannot record it.
    fn claim_next<'a>(
        &'a self,
        request: ClaimRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<Box<dyn ClaimedUser>>>>;

    /// What readiness needs to know, without reading history: the required tables that are
    /// missing, and whether the database refuses writes.
    fn readiness(&self) -> BoxFuture<'_, Result<Readiness>>;

    /// Re-creates missing tables and indexes (idempotent migrations) and the claim queue's
    /// rows.
    fn repair_schema(&self) -> BoxFuture<'_, Result<()>>;

    /// Deletes applied inbox events and ledger rows applied before `before_ms`, at most
    /// `batch` of each, in one short transaction (through the indexes on application time).
    /// Returns how many inbox events and ledger rows went.
    fn purge_applied(&self, before_ms: i64, batch: usize) -> BoxFuture<'_, Result<(u64, u64)>>;

    /// The work queue's counts, read through partial indexes (never a scan of history).
    fn queue_counts(&self) -> BoxFuture<'_, Result<QueueCounts>>;

    /// Adds a claim-queue row for every user with pending events that has none (an
    /// aggregate over pending events only, through their partial index). Returns how many.
    fn repair_due(&self) -> BoxFuture<'_, Result<u64>>;

    /// Records the user if new, then waits for and takes it (no events).
    fn lock_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Box<dyn ClaimedUser>>>;

    /// Records a user (no-op when known).
    fn add_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Users the mirror knows, sorted, the empty "no user" key left out.
    fn known_users(&self) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Counts for `mirror status`, read from the kept figures (no history is counted).
    fn status<'a>(&'a self, query: &'a StatusQuery) -> BoxFuture<'a, Result<Status>>;

    /// Inbox and ledger counts.
    fn inbox_counts(&self) -> BoxFuture<'_, Result<InboxCounts>>;

    /// A page of stored transactions ordered by `(user_id, id)` (byte order), after `after`.
    fn transactions_page<'a>(
        &'a self,
        user_id: Option<&'a str>,
        after: Option<(&'a str, &'a str)>,
        include_deleted: bool,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredTx>>>;

    /// The guard record of a connection, if any.
    fn guard_load<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Option<String>>>;

    /// Reads and changes a guard record in one transaction no other update of it, from any
    /// process, can interleave with.
    fn guard_update<'a>(&'a self, connection_id: &'a str, change: GuardChange) -> BoxFuture<'a, Result<()>>;

    /// Marks applied those of these pending events the ledger holds. Returns how many.
    fn settle_applied<'a>(&'a self, seqs: &'a [i64]) -> BoxFuture<'a, Result<u64>>;

    /// Re-queues parked events (of one user or all), attempts reset, back-off lifted.
    fn requeue_parked<'a>(&'a self, user_id: Option<&'a str>) -> BoxFuture<'a, Result<u64>>;

    /// Closes what can be closed (pooled connections); the store stays usable.
    fn close(&self) -> BoxFuture<'_, ()>;

    /// The lifecycle loop's storage (`db::lifecycle`).
    fn lifecycle(&self) -> &dyn super::lifecycle::LifecycleStore;

    /// The backend itself, for the test helpers that reach under the contract.
    #[cfg(feature = "test-util")]
    fn as_any(&self) -> &dyn std::any::Any;
}

/// One claimed user: exclusive ownership of its pending events and rows until
/// [`ClaimedUser::finish`] or [`ClaimedUser::fail`], released when dropped.
pub(crate) trait ClaimedUser: Send {
    /// The user (the inbox's key: `""` for events that name none).
    fn user_id(&self) -> &str;

    /// The claimed events, in arrival order.
    fn events(&self) -> &[InboxEvent];

    /// The user's connections as stored.
    fn connections(&mut self) -> BoxFuture<'_, Result<Vec<LocalConnection>>>;

    /// The user's accounts as stored.
    fn accounts(&mut self) -> BoxFuture<'_, Result<Vec<LocalAccount>>>;

    /// The live transactions of these accounts.
    fn live_rows<'a>(&'a mut self, account_ids: &'a [AccountId]) -> BoxFuture<'a, Result<Vec<LiveRow>>>;

    /// Writes an intermediate batch.
    fn apply(&mut self, writes: Writes) -> BoxFuture<'_, Result<()>>;

    /// Writes the last batch and marks the events applied (one ledger row each), in one
    /// transaction; on an error nothing of it is written and the claim is still held.
    fn finish<'a>(&'a mut self, writes: Writes, worker: &'a str, now_ms: i64) -> BoxFuture<'a, Result<()>>;

    /// Gives the claim up after an error: attempts grow, the user backs off
    /// `retry_after_ms`, events past `max_attempts` are parked.
    fn fail<'a>(
        self: Box<Self>,
        error: &'a str,
        now_ms: i64,
        retry_after_ms: i64,
        max_attempts: u32,
    ) -> BoxFuture<'a, Result<()>>;
}
