//! Claims on PostgreSQL: an open transaction holding the user's row lock
//! (`FOR UPDATE SKIP LOCKED`); the claimed user's reads and its finishing and failing
//! transactions.

use futures_util::future::BoxFuture;
use moneyhub_types::AccountId;

use super::{inbox, now_ms, transactions, PgConn, PgDb};
use crate::db::claim::{take_for_claim, Failed, Finished};
use crate::db::store::{ClaimRequest, ClaimedUser};
use crate::db::{parse_id, InboxEvent, LiveRow, LocalAccount, LocalConnection, Writes};
use crate::error::{Error, Result};

/// Locks the first due user (the claim queue's index on due time) that no one else holds:
/// the user's row in `mirror_users` is locked, never the queue row, so the receiver can queue
/// new events for a claimed user without waiting for the claim.
const LOCK_DUE: &str = "SELECT d.user_id FROM mirror_users_due d JOIN mirror_users u ON u.user_id = d.user_id
     WHERE d.due_at_ms <= $1 AND d.oldest_pending_ms <= $2 AND d.user_id <> ALL($3)
     ORDER BY d.due_at_ms, d.oldest_pending_seq LIMIT 1 FOR UPDATE OF u SKIP LOCKED";

/// Records an attempt before any work, on its own connection (committed at once): the
/// attempt number of the claim's first event, and the due time past its back-off.
const RECORD_CLAIM: &str = "UPDATE mirror_users_due SET attempts = $3, due_at_ms = $2 WHERE user_id = $1";

/// Locks a user's queue row, so that the statement after it sees every event a receiver
/// queued for the user (a receiver's queueing waits for this lock, or this for it).
const LOCK_QUEUE_ROW: &str = "SELECT user_id FROM mirror_users_due WHERE user_id = $1 FOR UPDATE";

/// After a successful claim: the queue row follows the next pending event.
const ADVANCE_DUE: &str = "UPDATE mirror_users_due d
     SET attempts = 0, oldest_pending_seq = p.seq, oldest_pending_ms = p.ms, due_at_ms = p.ms
     FROM (SELECT MIN(seq) AS seq, MIN(received_ms) AS ms FROM mirror_inbox WHERE user_id = $1 AND state = 0) p
     WHERE d.user_id = $1 AND p.seq IS NOT NULL";

/// Removes the queue row of a user with nothing pending.
const DROP_DUE: &str = "DELETE FROM mirror_users_due
     WHERE user_id = $1 AND NOT EXISTS (SELECT 1 FROM mirror_inbox WHERE user_id = $1 AND state = 0)";

/// Before a claim moves or deletes the user's queue row (whose lock it holds, so no receiver
/// changes it meanwhile and this statement sees every event queued): the user's kept
/// pending count is counted again over that user's pending rows (their partial index), and
/// the newest arrival the receiver recorded on the queue row moves to the user's row (held
/// by the claim), where it outlives the queue row. One round trip.
const END_TURN: &str = "WITH d AS (UPDATE mirror_users_due
                SET pending = (SELECT COUNT(*) FROM mirror_inbox WHERE user_id = $1 AND state = 0)
                WHERE user_id = $1 RETURNING last_event_ms)
     UPDATE mirror_users u SET last_event_ms = d.last_event_ms FROM d
     WHERE u.user_id = $1 AND d.last_event_ms IS NOT NULL
       AND (u.last_event_ms IS NULL OR d.last_event_ms > u.last_event_ms)";

/// After a failed attempt: the user waits at least until `$2`.
const BACK_OFF: &str = "UPDATE mirror_users_due SET due_at_ms = GREATEST(due_at_ms, $2) WHERE user_id = $1";

/// The point a failed claim rolls back to: its lock stays, its writes go.
const SAVEPOINT: &str = "SAVEPOINT claimed";

/// Discards a failed claim's writes, keeping its lock.
const ROLLBACK_WORK: &str = "ROLLBACK TO SAVEPOINT claimed";

/// Locks one user, waiting for whoever holds it.
const LOCK_USER: &str = "SELECT user_id FROM mirror_users WHERE user_id = $1 FOR UPDATE";

/// A user's pending events in arrival order.
const PENDING_EVENTS: &str =
    "SELECT seq, webhook_id, user_id, event_type, body, signed, attempts FROM mirror_inbox
     WHERE user_id = $1 AND state = 0 ORDER BY seq LIMIT $2";

/// A user's connections.
const CONNECTIONS: &str = "SELECT connection_id, backfilled, watermark_ms, last_full_ms, removed
     FROM mirror_connections WHERE user_id = $1 ORDER BY connection_id";

/// A user's accounts.
const ACCOUNTS: &str =
    "SELECT account_id, connection_id, removed FROM mirror_accounts WHERE user_id = $1 ORDER BY account_id";

/// The live rows of some accounts.
const LIVE_ROWS: &str =
    "SELECT id, modified_ms, date_ms FROM mirror_transactions WHERE account_id = ANY($1) AND deleted = 0";

/// One ledger row per applied event (its primary key refuses a second application).
const LEDGER_INSERT: &str = "INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms)
     SELECT w, s, $3, $4 FROM unnest($1::TEXT[], $2::BIGINT[]) AS u(w, s)";

/// Marks the claimed events applied.
const MARK_APPLIED: &str =
    "UPDATE mirror_inbox SET state = $2, applied_ms = $3 WHERE seq = ANY($1) AND state = 0";

/// Counts a failed attempt on the claimed events, parking them at the limit.
const RECORD_ATTEMPT: &str = "UPDATE mirror_inbox SET attempts = attempts + 1, last_error = $2,
        state = CASE WHEN attempts + 1 >= $3 THEN $4 ELSE state END
     WHERE seq = ANY($1) AND state = 0";

/// A claimed user on PostgreSQL: an open transaction holding the user's row lock. Dropping it
/// without finishing closes the connection, which rolls the claim back.
pub(crate) struct PgClaim {
    conn: Option<PgConn>,
    user_id: String,
    events: Vec<InboxEvent>,
}

impl PgClaim {
    fn conn(&mut self) -> Result<&mut PgConn> {
        self.conn.as_mut().ok_or_else(|| Error::data("the claim is already released"))
    }

    /// Rolls back and returns the connection to the pool (closes it if the rollback fails).
    async fn release(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.batch("ROLLBACK").await;
        }
    }

    /// A claim of `user_id` on a connection with an open transaction.
    async fn begin(db: &PgDb, user_id: &str) -> Result<PgClaim> {
        let mut conn = db.get().await?;
        conn.batch("BEGIN").await?;
        Ok(PgClaim { conn: Some(conn), user_id: user_id.to_owned(), events: Vec::new() })
    }
}

impl Drop for PgClaim {
    fn drop(&mut self) {
        // Not finished: dropping the client closes the connection; the server rolls back.
        self.conn.take();
    }
}

/// Claims the first due user no one else holds (see [`ClaimRequest`]). Queue rows whose
/// events are all gone (applied or parked elsewhere) are removed on the way.
pub(super) async fn next(db: &PgDb, req: ClaimRequest<'_>) -> Result<Option<PgClaim>> {
    let exclude: Vec<&str> = req.exclude.iter().map(String::as_str).collect();
    let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
    // A few rows may turn out empty (their events settled); each is dropped.
    for _ in 0..8 {
        let mut claim = PgClaim::begin(db, "").await?;
        let conn = claim.conn()?;
        let Some(user_id) =
            conn.value::<String>(LOCK_DUE, &[&req.now_ms, &req.arrived_by_ms, &exclude]).await?
        else {
            claim.release().await;
            return Ok(None);
        };
        let mut events: Vec<InboxEvent> = conn
            .query(PENDING_EVENTS, &[&user_id, &limit])
            .await?
            .iter()
            .map(|r| {
                Ok(InboxEvent {
                    seq: r.try_get(0)?,
                    webhook_id: r.try_get(1)?,
                    user_id: r.try_get(2)?,
                    event_type: r.try_get(3)?,
                    body: r.try_get(4)?,
                    signed: r.try_get::<_, i32>(5)? != 0,
                    attempts: i64::from(r.try_get::<_, i32>(6)?),
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()?;
        take_for_claim(&mut events, req.policy.max_claim_bytes);
        if events.is_empty() {
            conn.query(LOCK_QUEUE_ROW, &[&user_id]).await?;
            conn.execute(END_TURN, &[&user_id]).await?;
            conn.execute(DROP_DUE, &[&user_id]).await?;
            conn.batch("COMMIT").await?;
            claim.conn.take();
            continue;
        }
        conn.batch(SAVEPOINT).await?;
        // The attempt is recorded (committed) before anything is spent on it.
        let (attempt, due_at) = req.policy.next_attempt(&events, req.now_ms);
        let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
        db.get().await?.execute(RECORD_CLAIM, &[&user_id, &due_at, &attempt]).await?;
        claim.user_id = user_id;
        claim.events = events;
        return Ok(Some(claim));
    }
    Ok(None)
}

/// Records the user if new, then waits for and takes it (no events).
pub(super) async fn lock(db: &PgDb, user_id: &str) -> Result<PgClaim> {
    inbox::add_user(&mut db.get().await?, user_id).await?;
    let mut claim = PgClaim::begin(db, user_id).await?;
    let conn = claim.conn()?;
    conn.query(LOCK_USER, &[&user_id]).await?;
    conn.batch(SAVEPOINT).await?;
    Ok(claim)
}

impl ClaimedUser for PgClaim {
    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn events(&self) -> &[InboxEvent] {
        &self.events
    }

    fn connections(&mut self) -> BoxFuture<'_, Result<Vec<LocalConnection>>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            let rows = self.conn()?.query(CONNECTIONS, &[&user]).await?;
            rows.iter()
                .map(|r| {
                    Ok(LocalConnection {
                        connection_id: parse_id(r.try_get(0)?, "connection id")?,
                        backfilled: r.try_get::<_, i32>(1)? != 0,
                        watermark_ms: r.try_get(2)?,
                        last_full_ms: r.try_get(3)?,
                        removed: r.try_get::<_, i32>(4)? != 0,
                    })
                })
                .collect()
        })
    }

    fn accounts(&mut self) -> BoxFuture<'_, Result<Vec<LocalAccount>>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            let rows = self.conn()?.query(ACCOUNTS, &[&user]).await?;
            rows.iter()
                .map(|r| {
                    Ok(LocalAccount {
                        account_id: parse_id(r.try_get(0)?, "account id")?,
                        connection_id: parse_id(r.try_get(1)?, "connection id")?,
                        removed: r.try_get::<_, i32>(2)? != 0,
                    })
                })
                .collect()
        })
    }

    fn live_rows<'a>(&'a mut self, account_ids: &'a [AccountId]) -> BoxFuture<'a, Result<Vec<LiveRow>>> {
        Box::pin(async move {
            if account_ids.is_empty() {
                return Ok(Vec::new());
            }
            let accounts: Vec<&str> = account_ids.iter().map(AccountId::as_str).collect();
            let rows = self.conn()?.query(LIVE_ROWS, &[&accounts]).await?;
            rows.iter()
                .map(|r| {
                    Ok(LiveRow {
                        id: parse_id(r.try_get(0)?, "transaction id")?,
                        modified_ms: r.try_get(1)?,
                        date_ms: r.try_get(2)?,
                    })
                })
                .collect()
        })
    }

    fn apply(&mut self, writes: Writes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            transactions::write_all(self.conn()?, &user, &writes, now_ms()).await
        })
    }

    fn finish<'a>(&'a mut self, writes: Writes, worker: &'a str, now: i64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            let plan = Finished::new(&self.events, worker, now);
            let conn = self.conn()?;
            transactions::write_all(conn, &user, &writes, now).await?;
            if !plan.seqs.is_empty() {
                conn.execute(LEDGER_INSERT, &[&plan.webhook_ids, &plan.seqs, &plan.worker, &plan.now_ms])
                    .await?;
                let marked = conn.execute(MARK_APPLIED, &[&plan.seqs, &plan.applied, &plan.now_ms]).await?;
                plan.check_marked(marked)?;
                conn.query(LOCK_QUEUE_ROW, &[&user]).await?;
                conn.execute(END_TURN, &[&user]).await?;
                conn.execute(ADVANCE_DUE, &[&user]).await?;
                conn.execute(DROP_DUE, &[&user]).await?;
            }
            conn.batch("COMMIT").await?;
            self.conn.take();
            Ok(())
        })
    }

    fn fail<'a>(
        self: Box<Self>,
        error: &'a str,
        now: i64,
        retry_after_ms: i64,
        max_attempts: u32,
    ) -> BoxFuture<'a, Result<()>> {
        let mut this = self;
        let plan = Failed::new(&this.events, error, now, retry_after_ms, max_attempts);
        Box::pin(async move {
            let user = this.user_id.clone();
            // One transaction: the failure is recorded while the user is still held, and the
            // lock goes with the commit (or with the rollback of everything, when the database
            // cannot record it: the back-off recorded at claim time still holds).
            let conn = this.conn()?;
            let recorded = async {
                conn.batch(ROLLBACK_WORK).await?;
                conn.execute(RECORD_ATTEMPT, &[&plan.seqs, &plan.error, &plan.max_attempts, &plan.parked])
                    .await?;
                conn.execute(BACK_OFF, &[&user, &plan.until_ms]).await?;
                // Events parked by this failure may have been the user's last pending ones.
                conn.query(LOCK_QUEUE_ROW, &[&user]).await?;
                conn.execute(END_TURN, &[&user]).await?;
                conn.execute(DROP_DUE, &[&user]).await?;
                Ok(())
            }
            .await;
            let result = conn.end(recorded).await;
            this.conn.take();
            result
        })
    }
}
