//! Claims on SQLite: one process owns the file, so a claim is the user's name in the
//! in-memory set of busy users; the claimed user's reads and its finishing and failing
//! transactions.

use std::time::Duration;

use futures_util::future::BoxFuture;
use rusqlite::{params, params_from_iter, Connection, Transaction, TransactionBehavior};

use super::{id_at, now_ms, transactions, SqliteDb};
use crate::db::claim::{take_for_claim, Failed, Finished};
use crate::db::store::{ClaimRequest, ClaimedUser};
use crate::db::{InboxEvent, LiveRow, LocalAccount, LocalConnection, Writes};
use crate::error::Result;
use moneyhub_types::AccountId;

/// Due users in due-time order (the claim queue's index); the caller takes the first one
/// no worker of this process holds. Rows are read lazily, so the scan stops there.
const DUE_USERS: &str = "SELECT user_id FROM mirror_users_due
     WHERE due_at_ms <= ?1 AND oldest_pending_ms <= ?2 ORDER BY due_at_ms, oldest_pending_seq";

/// Records an attempt before any work: the attempt number of the claim's first event, and
/// the due time past its back-off, so a crash or a failure that cannot be recorded still
/// backs off.
const RECORD_CLAIM: &str = "UPDATE mirror_users_due SET attempts = ?3, due_at_ms = ?2 WHERE user_id = ?1";

/// After a successful claim: the queue row follows the next pending event, or goes.
const ADVANCE_DUE: &str = "UPDATE mirror_users_due
     SET attempts = 0,
         oldest_pending_seq = (SELECT MIN(seq) FROM mirror_inbox WHERE user_id = ?1 AND state = 0),
         oldest_pending_ms = (SELECT MIN(received_ms) FROM mirror_inbox WHERE user_id = ?1 AND state = 0),
         due_at_ms = (SELECT MIN(received_ms) FROM mirror_inbox WHERE user_id = ?1 AND state = 0)
     WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM mirror_inbox WHERE user_id = ?1 AND state = 0)";

/// Removes the queue row of a user with nothing pending.
const DROP_DUE: &str = "DELETE FROM mirror_users_due
     WHERE user_id = ?1 AND NOT EXISTS (SELECT 1 FROM mirror_inbox WHERE user_id = ?1 AND state = 0)";

/// Carries the newest arrival the receiver recorded on the user's queue row into the user's
/// row (migration 7), before a claim may delete the queue row.
const KEEP_LAST_EVENT: &str = "UPDATE mirror_users SET last_event_ms = d.last_event_ms
     FROM mirror_users_due d
     WHERE mirror_users.user_id = ?1 AND d.user_id = ?1 AND d.last_event_ms IS NOT NULL
       AND (mirror_users.last_event_ms IS NULL OR d.last_event_ms > mirror_users.last_event_ms)";

/// After a failed attempt: the user waits at least until `?2`.
const BACK_OFF: &str = "UPDATE mirror_users_due SET due_at_ms = MAX(due_at_ms, ?2) WHERE user_id = ?1";

/// A user's pending events in arrival order.
const PENDING_EVENTS: &str =
    "SELECT seq, webhook_id, user_id, event_type, body, signed, attempts FROM mirror_inbox
     WHERE user_id = ?1 AND state = 0 ORDER BY seq LIMIT ?2";

/// A user's connections.
const CONNECTIONS: &str = "SELECT connection_id, backfilled, watermark_ms, last_full_ms, removed
     FROM mirror_connections WHERE user_id = ?1 ORDER BY connection_id";

/// A user's accounts.
const ACCOUNTS: &str =
    "SELECT account_id, connection_id, removed FROM mirror_accounts WHERE user_id = ?1 ORDER BY account_id";

/// One ledger row per applied event (its primary key refuses a second application).
const LEDGER_INSERT: &str =
    "INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms) VALUES (?1, ?2, ?3, ?4)";

/// Marks a claimed event applied.
const MARK_APPLIED: &str = "UPDATE mirror_inbox SET state = ?2, applied_ms = ?3 WHERE seq = ?1 AND state = 0";

/// Counts a failed attempt on a claimed event, parking it at the limit.
const RECORD_ATTEMPT: &str = "UPDATE mirror_inbox SET attempts = attempts + 1, last_error = ?2,
        state = CASE WHEN attempts + 1 >= ?3 THEN ?4 ELSE state END
     WHERE seq = ?1 AND state = 0";

/// A claimed user on SQLite. Dropping it releases the user.
pub(crate) struct SqliteClaim {
    db: SqliteDb,
    user_id: String,
    events: Vec<InboxEvent>,
}

impl Drop for SqliteClaim {
    fn drop(&mut self) {
        self.db.inner.busy.lock().remove(&self.user_id);
        self.db.inner.released.notify_waiters();
    }
}

/// Claims the first due user no worker of this process holds (see [`ClaimRequest`]).
/// Queue rows whose events are all gone (applied or parked elsewhere) are removed on the way.
pub(super) async fn next(db: &SqliteDb, req: ClaimRequest<'_>) -> Result<Option<SqliteClaim>> {
    let exclude = req.exclude.to_vec();
    let (now, arrived_by, limit, policy) = (req.now_ms, req.arrived_by_ms, req.limit, req.policy);
    let found = db
        .with_work(move |c, inner| {
            // A few rows may turn out empty (their events settled); each is dropped.
            for _ in 0..8 {
                let chosen = {
                    let mut st = c.prepare_cached(DUE_USERS)?;
                    let mut rows = st.query(params![now, arrived_by])?;
                    let mut busy = inner.busy.lock();
                    let mut chosen = None;
                    while let Some(row) = rows.next()? {
                        let u: String = row.get(0)?;
                        if !busy.contains(&u) && !exclude.contains(&u) {
                            busy.insert(u.clone());
                            chosen = Some(u);
                            break;
                        }
                    }
                    chosen
                };
                let Some(user_id) = chosen else { return Ok(None) };
                let taken = pending_events(c, &user_id, limit, policy.max_claim_bytes).and_then(|events| {
                    let _writer = inner.write.lock();
                    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    if events.is_empty() {
                        end_turn(&tx, &user_id)?;
                        tx.prepare_cached(DROP_DUE)?.execute([&user_id])?;
                        tx.prepare_cached(ADVANCE_DUE)?.execute([&user_id])?;
                    } else {
                        let (attempt, due_at) = policy.next_attempt(&events, now);
                        tx.prepare_cached(RECORD_CLAIM)?.execute(params![user_id, due_at, attempt])?;
                    }
                    tx.commit()?;
                    Ok(events)
                });
                match taken {
                    Ok(events) if events.is_empty() => {
                        inner.busy.lock().remove(&user_id);
                    }
                    Ok(events) => return Ok(Some((user_id, events))),
                    Err(e) => {
                        inner.busy.lock().remove(&user_id);
                        return Err(e);
                    }
                }
            }
            Ok(None)
        })
        .await?;
    Ok(found.map(|(user_id, events)| SqliteClaim { db: db.clone(), user_id, events }))
}

/// Records the user if new, then waits for and takes it (no events).
pub(super) async fn lock(db: &SqliteDb, user_id: &str) -> Result<SqliteClaim> {
    let owned = user_id.to_owned();
    db.write(move |tx| super::inbox::add_user(tx, &owned, now_ms())).await?;
    loop {
        let notified = db.inner.released.notified();
        if db.inner.busy.lock().insert(user_id.to_owned()) {
            return Ok(SqliteClaim { db: db.clone(), user_id: user_id.to_owned(), events: Vec::new() });
        }
        // A release may have happened between the check and here: poll as a fallback.
        let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
    }
}

fn pending_events(c: &Connection, user_id: &str, limit: usize, max_bytes: usize) -> Result<Vec<InboxEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut events: Vec<InboxEvent> = c
        .prepare_cached(PENDING_EVENTS)?
        .query_map(params![user_id, limit], |r| {
            Ok(InboxEvent {
                seq: r.get(0)?,
                webhook_id: r.get(1)?,
                user_id: r.get(2)?,
                event_type: r.get(3)?,
                body: r.get(4)?,
                signed: r.get::<_, i64>(5)? != 0,
                attempts: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    take_for_claim(&mut events, max_bytes);
    Ok(events)
}

impl ClaimedUser for SqliteClaim {
    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn events(&self) -> &[InboxEvent] {
        &self.events
    }

    fn connections(&mut self) -> BoxFuture<'_, Result<Vec<LocalConnection>>> {
        let user = self.user_id.clone();
        Box::pin(self.db.with_work(move |c, _| {
            Ok(c.prepare_cached(CONNECTIONS)?
                .query_map([user], |r| {
                    Ok(LocalConnection {
                        connection_id: id_at(r, 0)?,
                        backfilled: r.get::<_, i64>(1)? != 0,
                        watermark_ms: r.get(2)?,
                        last_full_ms: r.get(3)?,
                        removed: r.get::<_, i64>(4)? != 0,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        }))
    }

    fn accounts(&mut self) -> BoxFuture<'_, Result<Vec<LocalAccount>>> {
        let user = self.user_id.clone();
        Box::pin(self.db.with_work(move |c, _| {
            Ok(c.prepare_cached(ACCOUNTS)?
                .query_map([user], |r| {
                    Ok(LocalAccount {
                        account_id: id_at(r, 0)?,
                        connection_id: id_at(r, 1)?,
                        removed: r.get::<_, i64>(2)? != 0,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        }))
    }

    fn live_rows<'a>(&'a mut self, account_ids: &'a [AccountId]) -> BoxFuture<'a, Result<Vec<LiveRow>>> {
        Box::pin(async move {
            if account_ids.is_empty() {
                return Ok(Vec::new());
            }
            let accounts = account_ids.to_vec();
            self.db
                .with_work(move |c, _| {
                    let sql = transactions::live_rows_sql(accounts.len());
                    let mut s = c.prepare_cached(&sql)?;
                    let rows = s
                        .query_map(params_from_iter(accounts.iter().map(AccountId::as_str)), |r| {
                            Ok(LiveRow { id: id_at(r, 0)?, modified_ms: r.get(1)?, date_ms: r.get(2)? })
                        })?;
                    Ok(rows.collect::<rusqlite::Result<_>>()?)
                })
                .await
        })
    }

    fn apply(&mut self, writes: Writes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if writes.is_empty() {
                return Ok(());
            }
            let user = self.user_id.clone();
            self.db.write(move |tx| transactions::write_all(tx, &user, &writes, now_ms())).await
        })
    }

    fn finish<'a>(&'a mut self, writes: Writes, worker: &'a str, now: i64) -> BoxFuture<'a, Result<()>> {
        let user = self.user_id.clone();
        let plan = Finished::new(&self.events, worker, now);
        Box::pin(self.db.write(move |tx| {
            transactions::write_all(tx, &user, &writes, now)?;
            mark_applied(tx, &user, &plan)
        }))
    }

    fn fail<'a>(
        self: Box<Self>,
        error: &'a str,
        now: i64,
        retry_after_ms: i64,
        max_attempts: u32,
    ) -> BoxFuture<'a, Result<()>> {
        let plan = Failed::new(&self.events, error, now, retry_after_ms, max_attempts);
        Box::pin(async move {
            let user = self.user_id.clone();
            let result = self.db.write(move |tx| record_failure(tx, &user, &plan)).await;
            drop(self);
            result
        })
    }
}

/// Writes the ledger rows, marks the events applied and lifts the user's back-off.
fn mark_applied(tx: &Transaction<'_>, user: &str, plan: &Finished) -> Result<()> {
    {
        let mut ledger = tx.prepare_cached(LEDGER_INSERT)?;
        let mut done = tx.prepare_cached(MARK_APPLIED)?;
        let mut marked = 0u64;
        for (seq, webhook_id) in plan.seqs.iter().zip(&plan.webhook_ids) {
            ledger.execute(params![webhook_id, seq, plan.worker, plan.now_ms])?;
            marked += done.execute(params![seq, plan.applied, plan.now_ms])? as u64;
        }
        plan.check_marked(marked)?;
    }
    if !plan.seqs.is_empty() {
        end_turn(tx, user)?;
        tx.prepare_cached(ADVANCE_DUE)?.execute([user])?;
        tx.prepare_cached(DROP_DUE)?.execute([user])?;
    }
    Ok(())
}

/// Counts the failed attempt on each claimed event and sets the user's back-off.
fn record_failure(tx: &Transaction<'_>, user: &str, plan: &Failed) -> Result<()> {
    {
        let mut s = tx.prepare_cached(RECORD_ATTEMPT)?;
        for seq in &plan.seqs {
            s.execute(params![seq, plan.error, plan.max_attempts, plan.parked])?;
        }
    }
    tx.prepare_cached(BACK_OFF)?.execute(params![user, plan.until_ms])?;
    // Events parked by this failure may have been the user's last pending ones.
    end_turn(tx, user)?;
    tx.prepare_cached(DROP_DUE)?.execute([user])?;
    Ok(())
}

/// Before a claim moves or deletes the user's queue row: the figures the row carries are
/// kept (the newest arrival moves to the user's row, the pending events are counted again
/// over that user's pending rows).
fn end_turn(tx: &Transaction<'_>, user: &str) -> Result<()> {
    tx.prepare_cached(KEEP_LAST_EVENT)?.execute([user])?;
    tx.prepare_cached(super::inbox::COUNT_PENDING)?.execute([user])?;
    Ok(())
}
