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

/// `next_ms` of a new notification: due at once, whatever any process's clock says.
///
/// It used to be the evaluation's time (`now_ms` of the batch that made it), and delivery
/// takes rows with `next_ms <= now`, a later reading of a clock, possibly another process's.
/// The clock is the client's, which may follow a sandbox's virtual clock: a `mirror run`
/// against a sandbox reads it every 200 ms and answers its last reading plus the time elapsed
/// since, so against a frozen sandbox two processes (or one, before and after a re-read)
/// disagree by up to the time between readings, and nothing ever catches up. A notification
/// written by an evaluation that read the clock late in a long interval (the process
/// descheduled for a second on a loaded machine) was later than every reading that followed
/// (the next re-read took the clock back; the next process, after a SIGKILL, never got there),
/// so it was never delivered: the flaky CLI test
/// `lifecycle::notifications_survive_sigkill_mid_delivery_postgres` ("the first delivery
/// started: not within 90s"; PostgreSQL's evaluation is several round trips, long enough for
/// a re-read to land inside it, SQLite's rarely is). Nothing is gained by waiting for a first
/// attempt, so it does not compare times at all; `next_ms` is the back-off of a failed
/// attempt only ([`Settle::Retry`]), and `created_ms` keeps the evaluation's time. The lease,
/// which keeps two processes from sending one notification at once, is on the wall clock.
pub(crate) const FIRST_ATTEMPT_MS: i64 = 0;

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
