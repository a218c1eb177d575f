//! The inbox on SQLite: the receiver's durable writes, counts, settling and re-queueing.

use std::sync::Arc;

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::Inner;
use crate::db::{InboxCounts, NewInboxEvent};
use crate::error::{Error, Result};

/// Records a user (no-op when known).
const ADD_USER: &str =
    "INSERT INTO mirror_users (user_id, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING";

/// Stores a webhook unless its id is stored already.
const INSERT_EVENT: &str = "INSERT INTO mirror_inbox
        (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (webhook_id) DO NOTHING";

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

/// Lifts the back-off of users with parked events (of one user, or all).
const REQUEUE_USERS: &str = "UPDATE mirror_users SET not_before_ms = 0 WHERE user_id IN
       (SELECT user_id FROM mirror_inbox WHERE state = 2 AND (?1 IS NULL OR user_id = ?1))";

/// Puts parked events back in the queue, attempts reset.
const REQUEUE_EVENTS: &str =
    "UPDATE mirror_inbox SET state = 0, attempts = 0 WHERE state = 2 AND (?1 IS NULL OR user_id = ?1)";

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
