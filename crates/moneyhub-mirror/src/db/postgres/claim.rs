//! Claims on PostgreSQL: an open transaction holding the user's row lock
//! (`FOR UPDATE SKIP LOCKED`); the claimed user's reads and its finishing and failing
//! transactions.

use futures_util::future::BoxFuture;
use moneyhub_types::AccountId;

use super::{inbox, now_ms, transactions, PgConn, PgDb};
use crate::db::claim::{take_for_claim, Failed, Finished};
use crate::db::store::ClaimedUser;
use crate::db::{parse_id, InboxEvent, LiveRow, LocalAccount, LocalConnection, Writes};
use crate::error::{Error, Result};

/// Users whose first pending event arrived by the coalescing bound, oldest first.
const CANDIDATES: &str = "SELECT user_id FROM mirror_inbox WHERE state = 0
     GROUP BY user_id HAVING MIN(received_ms) <= $1 ORDER BY MIN(seq) LIMIT 256";

/// Locks the first of the candidates whose back-off has passed and that no one holds.
const LOCK_CANDIDATE: &str =
    "SELECT user_id FROM mirror_users WHERE user_id = ANY($1) AND not_before_ms <= $2
     ORDER BY array_position($1, user_id) LIMIT 1 FOR UPDATE SKIP LOCKED";

/// Locks one user, waiting for whoever holds it.
const LOCK_USER: &str = "SELECT user_id FROM mirror_users WHERE user_id = $1 FOR UPDATE";

/// A user's pending events in arrival order.
const PENDING_EVENTS: &str =
    "SELECT seq, webhook_id, user_id, event_type, envelope, attempts FROM mirror_inbox
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

/// Lifts a user's back-off after a successful claim.
const CLEAR_BACKOFF: &str =
    "UPDATE mirror_users SET not_before_ms = 0 WHERE user_id = $1 AND not_before_ms <> 0";

/// Counts a failed attempt on the claimed events, parking them at the limit.
const RECORD_ATTEMPT: &str = "UPDATE mirror_inbox SET attempts = attempts + 1, last_error = $2,
        state = CASE WHEN attempts + 1 >= $3 THEN $4 ELSE state END
     WHERE seq = ANY($1) AND state = 0";

/// Sets a user's back-off.
const SET_BACKOFF: &str = "UPDATE mirror_users SET not_before_ms = $2 WHERE user_id = $1";

/// A claimed user on PostgreSQL: an open transaction holding the user's row lock. Dropping it
/// without finishing closes the connection, which rolls the claim back.
pub(crate) struct PgClaim {
    db: PgDb,
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
        Ok(PgClaim { db: db.clone(), conn: Some(conn), user_id: user_id.to_owned(), events: Vec::new() })
    }
}

impl Drop for PgClaim {
    fn drop(&mut self) {
        // Not finished: dropping the client closes the connection; the server rolls back.
        self.conn.take();
    }
}

/// Claims the due user with the oldest pending event that no one else holds.
pub(super) async fn next(
    db: &PgDb,
    now: i64,
    arrived_by: i64,
    limit: usize,
    exclude: &[String],
) -> Result<Option<PgClaim>> {
    let mut claim = PgClaim::begin(db, "").await?;
    let conn = claim.conn()?;
    let mut candidates: Vec<String> = conn
        .query(CANDIDATES, &[&arrived_by])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    candidates.retain(|u| !exclude.contains(u));
    if candidates.is_empty() {
        claim.release().await;
        return Ok(None);
    }
    let Some(user_id) = conn.value::<String>(LOCK_CANDIDATE, &[&candidates, &now]).await? else {
        claim.release().await;
        return Ok(None);
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
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
                envelope: r.try_get(4)?,
                attempts: i64::from(r.try_get::<_, i32>(5)?),
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()?;
    take_for_claim(&mut events);
    claim.user_id = user_id;
    claim.events = events;
    Ok(Some(claim))
}

/// Records the user if new, then waits for and takes it (no events).
pub(super) async fn lock(db: &PgDb, user_id: &str) -> Result<PgClaim> {
    inbox::add_user(&mut db.get().await?, user_id).await?;
    let mut claim = PgClaim::begin(db, user_id).await?;
    claim.conn()?.query(LOCK_USER, &[&user_id]).await?;
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
                conn.execute(CLEAR_BACKOFF, &[&user]).await?;
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
            this.release().await;
            let user = this.user_id.clone();
            let mut c = this.db.get().await?;
            c.execute(RECORD_ATTEMPT, &[&plan.seqs, &plan.error, &plan.max_attempts, &plan.parked]).await?;
            c.execute(SET_BACKOFF, &[&user, &plan.until_ms]).await?;
            Ok(())
        })
    }
}
