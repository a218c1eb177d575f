//! The inbox on SQLite: the receiver's durable writes, counts, settling and re-queueing.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::Inner;
use crate::db::store::QueueCounts;
use crate::db::{InboxCounts, NewInboxEvent};
use crate::error::{Error, Result};

/// Records a user (no-op when known).
const ADD_USER: &str =
    "INSERT INTO mirror_users (user_id, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING";

/// Stores a webhook unless its id is stored already.
const INSERT_EVENT: &str = "INSERT INTO mirror_inbox
        (webhook_id, user_id, event_type, body, content_type, signed, received_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (webhook_id) DO NOTHING";

/// Queues a user whose event was just stored (a user already queued keeps its oldest
/// pending event, which is older, and its back-off), and keeps the user's figures the queue
/// row carries (migration 7): one more pending event, the newest arrival.
const QUEUE_USER: &str = "INSERT INTO mirror_users_due
        (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, pending, last_event_ms)
     VALUES (?1, ?2, last_insert_rowid(), ?2, 1, ?2)
     ON CONFLICT (user_id) DO UPDATE SET pending = pending + 1,
        last_event_ms = MAX(COALESCE(last_event_ms, excluded.last_event_ms), excluded.last_event_ms)";

/// Queues every user with pending events that has no queue row.
pub(super) const REPAIR_DUE: &str = "INSERT INTO mirror_users_due
        (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts, pending, last_event_ms)
     SELECT user_id, MIN(received_ms), MIN(seq), MIN(received_ms), 0, COUNT(*), MAX(received_ms)
     FROM mirror_inbox WHERE state = 0
     GROUP BY user_id
     ON CONFLICT (user_id) DO NOTHING";

/// The inbox's counts by state and the ledger's (kept by triggers, migration 5): one row.
const COUNTS: &str =
    "SELECT COALESCE(SUM(pending), 0), COALESCE(SUM(retrying), 0), COALESCE(SUM(applied), 0),
        COALESCE(SUM(parked), 0), COALESCE(SUM(ledger), 0)
     FROM mirror_inbox_counts";

/// The oldest pending arrival: the claim queue holds one row per user with pending events,
/// with the user's oldest (no history is read).
const OLDEST_PENDING: &str = "SELECT MIN(oldest_pending_ms) FROM mirror_users_due";

/// Counts the inbox again when the counts row is missing (its table re-created by a repair).
pub(super) const RECOUNT: &str = "INSERT INTO mirror_inbox_counts (id, pending, retrying, applied, parked, ledger)
     SELECT 0, COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 0 AND attempts > 0), 0),
            COALESCE(SUM(state = 1), 0), COALESCE(SUM(state = 2), 0), (SELECT COUNT(*) FROM mirror_applied_events)
     FROM mirror_inbox HAVING NOT EXISTS (SELECT 1 FROM mirror_inbox_counts)";

/// Marks a pending event applied when the ledger holds it; returns its user.
const SETTLE: &str = "UPDATE mirror_inbox SET state = 1, applied_ms = ?2 WHERE seq = ?1 AND state = 0
       AND webhook_id IN (SELECT webhook_id FROM mirror_applied_events) RETURNING user_id";

/// A user's kept count of pending events (migration 7), counted again through their partial
/// index (`mirror_inbox_pending`): that user's pending rows only.
pub(super) const COUNT_PENDING: &str = "UPDATE mirror_users_due
     SET pending = (SELECT COUNT(*) FROM mirror_inbox WHERE user_id = ?1 AND state = 0) WHERE user_id = ?1";

/// Queues the users with parked events (of one user, or all), back-off lifted and attempts
/// reset, their kept pending counts grown by the events re-queued; run before the events are
/// re-queued.
const REQUEUE_USERS: &str =
    "INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts, pending)
     SELECT user_id, MIN(received_ms), MIN(seq), MIN(received_ms), 0, COUNT(*) FROM mirror_inbox
     WHERE state = 2 AND (?1 IS NULL OR user_id = ?1) GROUP BY user_id
     ON CONFLICT (user_id) DO UPDATE SET due_at_ms = excluded.due_at_ms, attempts = 0,
        pending = pending + excluded.pending,
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

/// Stores a webhook on the receiver's (synced) connection: `false` when its id was stored.
pub(super) async fn insert(inner: Arc<Inner>, e: NewInboxEvent) -> Result<bool> {
    Ok(insert_batch(inner, vec![e]).await?.first().copied().unwrap_or(false))
}

/// Stores webhooks with distinct ids in one transaction on the receiver's (synced)
/// connection, one sync: per webhook, `false` when its id was stored already.
pub(super) async fn insert_batch(inner: Arc<Inner>, events: Vec<NewInboxEvent>) -> Result<Vec<bool>> {
    tokio::task::spawn_blocking(move || {
        let _writer = inner.write.lock();
        let mut conn = inner.inbox.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored = write_events(&tx, &events)?;
        tx.commit()?;
        Ok(stored)
    })
    .await
    .map_err(Error::task)?
}

/// Writes webhooks with distinct ids in `tx`, each with its user recorded and queued for
/// the workers: per webhook, `false` when its id was stored already. Each statement is
/// prepared once per connection.
fn write_events(tx: &Transaction<'_>, events: &[NewInboxEvent]) -> Result<Vec<bool>> {
    let mut stored = Vec::with_capacity(events.len());
    let mut add = tx.prepare_cached(ADD_USER)?;
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    let mut queue = tx.prepare_cached(QUEUE_USER)?;
    for e in events {
        // Events that name no user are kept under the empty key.
        let user_id = e.user_id.as_ref().map_or("", |u| u.as_str());
        add.execute(params![user_id, e.received_ms])?;
        let n = insert.execute(params![
            e.webhook_id.as_str(),
            user_id,
            e.event_type.as_str(),
            &e.body[..],
            e.content_type,
            i64::from(e.signed),
            e.received_ms
        ])?;
        if n == 1 {
            queue.execute(params![user_id, e.received_ms])?;
        }
        stored.push(n == 1);
    }
    Ok(stored)
}

/// Records a user (no-op when known).
pub(super) fn add_user(tx: &Transaction<'_>, user_id: &str, now: i64) -> Result<()> {
    tx.prepare_cached(ADD_USER)?.execute(params![user_id, now])?;
    Ok(())
}

/// Inbox and ledger counts, read from the counts the triggers keep (no row of the inbox is
/// read).
pub(super) fn counts(c: &Connection) -> Result<InboxCounts> {
    let (pending, retrying, applied, failed, ledger): (i64, i64, i64, i64, i64) =
        c.prepare_cached(COUNTS)?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    let oldest_pending_ms: Option<i64> = c.prepare_cached(OLDEST_PENDING)?.query_row([], |r| r.get(0))?;
    let total = pending + applied + failed;
    Ok(InboxCounts { total, pending, applied, failed, ledger, retrying, oldest_pending_ms })
}

/// One batch of the retention purge.
pub(super) fn purge_applied(tx: &Transaction<'_>, before_ms: i64, batch: i64) -> Result<(u64, u64)> {
    let inbox = tx.prepare_cached(PURGE_INBOX)?.execute(params![before_ms, batch])?;
    let ledger = tx.prepare_cached(PURGE_LEDGER)?.execute(params![before_ms, batch])?;
    Ok((inbox as u64, ledger as u64))
}

/// The work queue's counts (from the kept counts, see [`counts`]).
pub(super) fn queue_counts(c: &Connection) -> Result<QueueCounts> {
    // The counts are kept in their own table: without the inbox they describe nothing (a
    // dropped or swapped-in table), so the inbox must still be there (a statement that
    // reads no row: running it, not only preparing it, sees a dropped table).
    c.prepare_cached("SELECT 1 FROM mirror_inbox LIMIT 0")?.exists([])?;
    let n = counts(c)?;
    Ok(QueueCounts {
        pending: n.pending,
        retrying: n.retrying,
        parked: n.failed,
        oldest_pending_ms: n.oldest_pending_ms,
    })
}

/// Marks applied those of these pending events the ledger holds. Returns how many.
pub(super) fn settle_applied(tx: &Transaction<'_>, seqs: &[i64], now: i64) -> Result<u64> {
    let mut users = std::collections::BTreeSet::new();
    let mut st = tx.prepare_cached(SETTLE)?;
    let mut n = 0;
    for seq in seqs {
        if let Some(user) = st.query_row(params![seq, now], |r| r.get::<_, String>(0)).optional()? {
            users.insert(user);
            n += 1;
        }
    }
    // Their users' kept pending counts follow.
    let mut count = tx.prepare_cached(COUNT_PENDING)?;
    for user in &users {
        count.execute([user])?;
    }
    Ok(n)
}

/// Re-queues parked events (of one user or all), attempts reset, back-off lifted.
pub(super) fn requeue_parked(tx: &Transaction<'_>, user_id: Option<&str>) -> Result<u64> {
    tx.prepare_cached(REQUEUE_USERS)?.execute(params![user_id])?;
    let n = tx.prepare_cached(REQUEUE_EVENTS)?.execute(params![user_id])?;
    Ok(n as u64)
}
