//! The inbox on SQLite: the receiver's durable writes, counts, settling and re-queueing.

use std::sync::Arc;

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::Inner;
use crate::db::store::QueueCounts;
use crate::db::{InboxCounts, NewInboxEvent};
use crate::error::{Error, Result};

/// Records a user (no-op when known).
const ADD_USER: &str =
    "INSERT INTO mirror_users (user_id, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING";

/// Stores a webhook unless its id is stored already.
const INSERT_EVENT: &str = "INSERT INTO mirror_inbox
        (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (webhook_id) DO NOTHING";

/// Queues a user whose event was just stored (a user already queued keeps its row: its
/// oldest pending event is older, and its back-off holds).
const QUEUE_USER: &str =
    "INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms)
     VALUES (?1, ?2, last_insert_rowid(), ?2) ON CONFLICT (user_id) DO NOTHING";

/// Queues every user with pending events that has no queue row.
pub(super) const REPAIR_DUE: &str =
    "INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts)
     SELECT user_id, MIN(received_ms), MIN(seq), MIN(received_ms), 0 FROM mirror_inbox WHERE state = 0
     GROUP BY user_id
     ON CONFLICT (user_id) DO NOTHING";

/// Inbox rows by state.
const COUNT_BY_STATE: &str = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0),
        COALESCE(SUM(CASE WHEN state = 1 THEN 1 ELSE 0 END), 0),
        COALESCE(SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0)
     FROM mirror_inbox";

/// Ledger rows.
const COUNT_LEDGER: &str = "SELECT COUNT(*) FROM mirror_applied_events";

/// Pending events that failed before, and the oldest pending arrival.
const COUNT_RETRYING: &str =
    "SELECT COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0), MIN(received_ms)
     FROM mirror_inbox WHERE state = 0";

/// Marks a pending event applied when the ledger holds it.
const SETTLE: &str = "UPDATE mirror_inbox SET state = 1, applied_ms = ?2 WHERE seq = ?1 AND state = 0
       AND webhook_id IN (SELECT webhook_id FROM mirror_applied_events)";

/// Queues the users with parked events (of one user, or all), back-off lifted and attempts
/// reset; run before the events are re-queued.
const REQUEUE_USERS: &str =
    "INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts)
     SELECT user_id, MIN(received_ms), MIN(seq), MIN(received_ms), 0 FROM mirror_inbox
     WHERE state = 2 AND (?1 IS NULL OR user_id = ?1) GROUP BY user_id
     ON CONFLICT (user_id) DO UPDATE SET due_at_ms = excluded.due_at_ms, attempts = 0,
        oldest_pending_seq = MIN(oldest_pending_seq, excluded.oldest_pending_seq),
        oldest_pending_ms = MIN(oldest_pending_ms, excluded.oldest_pending_ms)";

/// Puts parked events back in the queue, attempts reset.
const REQUEUE_EVENTS: &str =
    "UPDATE mirror_inbox SET state = 0, attempts = 0 WHERE state = 2 AND (?1 IS NULL OR user_id = ?1)";

/// The oldest applied events past the retention (index on application time).
const PURGE_INBOX: &str = "DELETE FROM mirror_inbox WHERE seq IN
       (SELECT seq FROM mirror_inbox WHERE state = 1 AND applied_ms < ?1 ORDER BY applied_ms LIMIT ?2)";

/// The oldest ledger rows past the retention (index on application time).
const PURGE_LEDGER: &str = "DELETE FROM mirror_applied_events WHERE webhook_id IN
       (SELECT webhook_id FROM mirror_applied_events WHERE applied_ms < ?1 ORDER BY applied_ms LIMIT ?2)";

/// Pending and retrying events, the oldest arrival (the pending partial index).
const QUEUE_PENDING: &str = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0),
        MIN(received_ms)
     FROM mirror_inbox WHERE state = 0";

/// Parked events (the parked partial index).
const QUEUE_PARKED: &str = "SELECT COUNT(*) FROM mirror_inbox WHERE state = 2";

/// Stores a webhook on the receiver's (synced) connection: `false` when its id was stored.
pub(super) async fn insert(inner: Arc<Inner>, e: NewInboxEvent) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let _writer = inner.write.lock();
        let mut conn = inner.inbox.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Events that name no user are kept under the empty key.
        let user_id = e.user_id.as_ref().map_or("", |u| u.as_str());
        add_user(&tx, user_id, e.received_ms)?;
        let n = tx.prepare_cached(INSERT_EVENT)?.execute(params![
            e.webhook_id.as_str(),
            user_id,
            e.event_type.as_str(),
            e.envelope,
            e.body,
            e.content_type,
            i64::from(e.signed),
            e.received_ms
        ])?;
        if n == 1 {
            tx.prepare_cached(QUEUE_USER)?.execute(params![user_id, e.received_ms])?;
        }
        tx.commit()?;
        Ok(n == 1)
    })
    .await
    .map_err(Error::task)?
}

/// Stores webhooks with distinct ids in one transaction on the receiver's (synced)
/// connection, one sync: per webhook, `false` when its id was stored already.
pub(super) async fn insert_batch(inner: Arc<Inner>, events: Vec<NewInboxEvent>) -> Result<Vec<bool>> {
    tokio::task::spawn_blocking(move || {
        let _writer = inner.write.lock();
        let mut conn = inner.inbox.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut stored = Vec::with_capacity(events.len());
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            let mut queue = tx.prepare_cached(QUEUE_USER)?;
            for e in &events {
                // Events that name no user are kept under the empty key.
                let user_id = e.user_id.as_ref().map_or("", |u| u.as_str());
                add_user(&tx, user_id, e.received_ms)?;
                let n = insert.execute(params![
                    e.webhook_id.as_str(),
                    user_id,
                    e.event_type.as_str(),
                    e.envelope,
                    e.body,
                    e.content_type,
                    i64::from(e.signed),
                    e.received_ms
                ])?;
                if n == 1 {
                    // Queued for the workers in the same transaction, as `insert` does.
                    queue.execute(params![user_id, e.received_ms])?;
                }
                stored.push(n == 1);
            }
        }
        tx.commit()?;
        Ok(stored)
    })
    .await
    .map_err(Error::task)?
}

/// Records a user (no-op when known).
pub(super) fn add_user(tx: &Transaction<'_>, user_id: &str, now: i64) -> Result<()> {
    tx.prepare_cached(ADD_USER)?.execute(params![user_id, now])?;
    Ok(())
}

/// Inbox and ledger counts.
pub(super) fn counts(c: &Connection) -> Result<InboxCounts> {
    let (total, pending, applied, failed): (i64, i64, i64, i64) =
        c.query_row(COUNT_BY_STATE, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let ledger: i64 = c.query_row(COUNT_LEDGER, [], |r| r.get(0))?;
    let (retrying, oldest_pending_ms): (i64, Option<i64>) =
        c.query_row(COUNT_RETRYING, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(InboxCounts { total, pending, applied, failed, ledger, retrying, oldest_pending_ms })
}

/// One batch of the retention purge.
pub(super) fn purge_applied(tx: &Transaction<'_>, before_ms: i64, batch: i64) -> Result<(u64, u64)> {
    let inbox = tx.prepare_cached(PURGE_INBOX)?.execute(params![before_ms, batch])?;
    let ledger = tx.prepare_cached(PURGE_LEDGER)?.execute(params![before_ms, batch])?;
    Ok((inbox as u64, ledger as u64))
}

/// The work queue's counts.
pub(super) fn queue_counts(c: &Connection) -> Result<QueueCounts> {
    let (pending, retrying, oldest_pending_ms) =
        c.prepare_cached(QUEUE_PENDING)?.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let parked = c.prepare_cached(QUEUE_PARKED)?.query_row([], |r| r.get(0))?;
    Ok(QueueCounts { pending, retrying, parked, oldest_pending_ms })
}

/// Marks applied those of these pending events the ledger holds. Returns how many.
pub(super) fn settle_applied(tx: &Transaction<'_>, seqs: &[i64], now: i64) -> Result<u64> {
    let mut n = 0;
    let mut st = tx.prepare_cached(SETTLE)?;
    for seq in seqs {
        n += st.execute(params![seq, now])? as u64;
    }
    Ok(n)
}

/// Re-queues parked events (of one user or all), attempts reset, back-off lifted.
pub(super) fn requeue_parked(tx: &Transaction<'_>, user_id: Option<&str>) -> Result<u64> {
    tx.prepare_cached(REQUEUE_USERS)?.execute(params![user_id])?;
    let n = tx.prepare_cached(REQUEUE_EVENTS)?.execute(params![user_id])?;
    Ok(n as u64)
}
