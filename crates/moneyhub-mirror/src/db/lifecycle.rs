//! The lifecycle loop's storage contract (see [`crate::lifecycle`]): connection states and their
//! due times, their history, the notification outbox. Each backend implements it in its own
//! `lifecycle` file; the session's observations are written by the backends' `write_all`, in
//! the claim's transaction.

use futures_util::future::BoxFuture;

use crate::error::Result;
use crate::lifecycle::{
    ActionFilter, ConnectionState, DueResult, HistoryEntry, LifecycleCounts, LifecycleWrites, OutboxItem,
};

/// What became of a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Delivered (`2xx`): the row goes.
    Delivered,
    /// Failed: try again at `next_ms` (the mirror's clock).
    Retry { next_ms: i64, error: String },
    /// Failed too often: parked (kept, not retried until re-queued).
    Park { error: String },
}

/// Most history rows kept per connection.
pub(crate) const HISTORY_PER_CONNECTION: i64 = 100;

pub(crate) trait LifecycleStore: Send + Sync {
    /// Evaluates and writes observations of several users' connections (`(user, writes)`, in
    /// order) in one transaction of their own.
    fn lc_observe(&self, users: Vec<(String, LifecycleWrites)>) -> BoxFuture<'_, Result<()>>;

    /// Claims up to `limit` rows due by `batch.now_ms` (skipping rows another transaction
    /// holds), re-evaluates them and writes them, in one transaction.
    fn lc_due(&self, batch: LifecycleWrites, limit: usize) -> BoxFuture<'_, Result<Vec<DueResult>>>;

    /// The stored states matching the filter's user and actions (the rest of the filter is
    /// applied by the caller), ordered by user and connection.
    fn lc_states<'a>(&'a self, filter: &'a ActionFilter) -> BoxFuture<'a, Result<Vec<ConnectionState>>>;

    /// Up to `limit` connection ids (of `user`, if given), ordered, whose lower-cased id
    /// matches any of the three `LIKE` patterns (escape character `\`).
    fn lc_find<'a>(
        &'a self,
        patterns: [String; 3],
        user: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<String>>>;

    /// A connection's history, oldest first.
    fn lc_history<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Vec<HistoryEntry>>>;

    /// Counts for metrics and status.
    fn lc_counts(&self, now_ms: i64) -> BoxFuture<'_, Result<LifecycleCounts>>;

    /// Leases up to `limit` notifications due by `now_ms` that are the oldest pending one of
    /// their connection and not leased by anyone (`lease_until_wall_ms` is the lease's end,
    /// wall clock; a lease older than `wall_ms` has ended).
    fn outbox_next(
        &self,
        now_ms: i64,
        wall_ms: i64,
        lease_until_wall_ms: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<OutboxItem>>>;

    /// Records the outcome of a delivery attempt.
    fn outbox_settle(&self, seq: i64, outcome: Settle) -> BoxFuture<'_, Result<()>>;

    /// One batch of the retention purge: deletes up to `limit` connections removed before
    /// `before_ms` (their state, due time, history and notifications) and up to `limit`
    /// notifications parked that were written before `before_ms`, in one transaction.
    /// Returns `(connections, parked notifications)` deleted.
    fn lc_purge(&self, before_ms: i64, limit: usize) -> BoxFuture<'_, Result<(u64, u64)>>;

    /// Puts parked notifications back in the queue (attempts reset). Returns how many.
    fn outbox_requeue(&self, now_ms: i64) -> BoxFuture<'_, Result<u64>>;
}
