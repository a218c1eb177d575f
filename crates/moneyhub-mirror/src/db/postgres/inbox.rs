//! The inbox on PostgreSQL: the receiver's durable writes, counts, settling and re-queueing.

use super::{now_ms, PgConn};
use crate::db::store::QueueCounts;
use crate::db::{InboxCounts, NewInboxEvent};
use crate::error::{Error, Result};

/// Records the user if new and stores a webhook unless its id is stored already, in one
/// statement.
///
/// The user's claim-queue row is created, or (`DO UPDATE`, which takes the row's lock)
/// touched: a claim finishing for the same user locks that row before it looks for pending
/// events and drops the row, so one of them waits for the other and the new event is never
/// left without a queue row. The same update keeps the user's figures the row carries
/// (migration 7): pending events grow by the events stored, and the newest arrival; a
/// claim counts the pending events again under that lock, so an increment is never lost
/// to it nor counted twice.
const INSERT_EVENT: &str = "WITH u AS (INSERT INTO mirror_users (user_id, first_seen_ms)
            SELECT $2, $7 WHERE NOT EXISTS (SELECT 1 FROM mirror_users WHERE user_id = $2)
            ON CONFLICT (user_id) DO NOTHING),
          e AS (INSERT INTO mirror_inbox
                   (webhook_id, user_id, event_type, body, content_type, signed, received_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (webhook_id) DO NOTHING
                RETURNING seq),
          d AS (INSERT INTO mirror_users_due
                   (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, pending, last_event_ms)
                SELECT $2, $7, seq, $7, 1, $7 FROM e
                ON CONFLICT (user_id) DO UPDATE
                SET oldest_pending_seq = LEAST(mirror_users_due.oldest_pending_seq, excluded.oldest_pending_seq),
                    pending = mirror_users_due.pending + excluded.pending,
                    last_event_ms = GREATEST(mirror_users_due.last_event_ms, excluded.last_event_ms))
     SELECT COUNT(*)::BIGINT FROM e";

/// Queues every user with pending events that has no queue row (in user-id order, the lock
/// order of every multi-row write of the queue: see `INSERT_EVENTS`).
const REPAIR_DUE: &str = "INSERT INTO mirror_users_due
        (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts, pending, last_event_ms)
     SELECT user_id, MIN(received_ms), MIN(seq), MIN(received_ms), 0, COUNT(*), MAX(received_ms)
     FROM mirror_inbox WHERE state = 0
     GROUP BY user_id ORDER BY user_id
     ON CONFLICT (user_id) DO NOTHING";

/// A batch of webhooks (distinct ids) in one statement: the users recorded if new, the
/// webhooks stored in arrival order unless their id is stored already, and their users
/// queued for the workers with their kept figures (as `INSERT_EVENT` does for one: no round
/// trip more than the batch's one); returns the ids written.
///
/// Known users are not inserted again (`NOT EXISTS`, a snapshot read that waits for no
/// one): a claim holds its user's `mirror_users` row and updates it (the kept figures,
/// migration 7), and an `INSERT … ON CONFLICT` meeting the index entry of that uncommitted
/// update would wait for the claim to end, while the claim waits for the queue row this
/// statement locks: a deadlock, the webhook refused with a 503. Only a user new to the
/// mirror is inserted, and no claim can hold a row that does not exist yet.
///
/// Lock order: the rows of `mirror_users` and `mirror_users_due` are written in user-id
/// order (`ORDER BY user_id` in the `SELECT`s feeding them), whatever order the batch came
/// in. A queue row touched by `DO UPDATE` stays locked until the batch commits (and a user
/// row being inserted makes a concurrent insert of the same user wait), so two concurrent
/// batches sharing users in different orders would otherwise each hold a row the other
/// waits for: a deadlock, one batch refused. In one order, one of them simply waits. (The
/// inbox rows keep arrival order: `seq` is the users' event order; they conflict only on a
/// webhook id delivered twice at once.)
const INSERT_EVENTS: &str = "WITH u AS (INSERT INTO mirror_users (user_id, first_seen_ms)
            SELECT DISTINCT ON (user_id) user_id, r FROM unnest($2::TEXT[], $7::BIGINT[]) AS x(user_id, r)
            WHERE NOT EXISTS (SELECT 1 FROM mirror_users k WHERE k.user_id = x.user_id)
            ORDER BY user_id
            ON CONFLICT (user_id) DO NOTHING),
          e AS (INSERT INTO mirror_inbox
            (webhook_id, user_id, event_type, body, content_type, signed, received_ms)
            SELECT w, u, t, b, c, s, r
            FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::TEXT[], $6::INT[], $7::BIGINT[])
                 WITH ORDINALITY AS x(w, u, t, b, c, s, r, o)
            ORDER BY o
            ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id, user_id, seq, received_ms),
          d AS (INSERT INTO mirror_users_due
                   (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, pending, last_event_ms)
            SELECT user_id, MIN(received_ms), MIN(seq), MIN(received_ms), COUNT(*), MAX(received_ms)
            FROM e GROUP BY user_id
            ORDER BY user_id
            ON CONFLICT (user_id) DO UPDATE
            SET oldest_pending_seq = LEAST(mirror_users_due.oldest_pending_seq, excluded.oldest_pending_seq),
                pending = mirror_users_due.pending + excluded.pending,
                last_event_ms = GREATEST(mirror_users_due.last_event_ms, excluded.last_event_ms))
     SELECT webhook_id FROM e";

/// Records a user (no-op when known).
const ADD_USER: &str = "INSERT INTO mirror_users (user_id, first_seen_ms)
     SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM mirror_users WHERE user_id = $1)
     ON CONFLICT (user_id) DO NOTHING";

/// The inbox's counts by state and the ledger's, summed over the delta rows the triggers
/// write (migration 5; folded by [`compact_counts`]), and the oldest pending arrival from
/// the claim queue (one row per user with pending events): no row of the inbox is read.
const COUNTS: &str = "SELECT COALESCE(SUM(pending), 0)::BIGINT, COALESCE(SUM(retrying), 0)::BIGINT,
        COALESCE(SUM(applied), 0)::BIGINT, COALESCE(SUM(parked), 0)::BIGINT, COALESCE(SUM(ledger), 0)::BIGINT,
        (SELECT MIN(oldest_pending_ms) FROM mirror_users_due)
     FROM mirror_inbox_counts";

/// Folds the counts' delta rows into one (rows other transactions are inserting are left
/// for the next time).
const COMPACT_COUNTS: &str = "WITH gone AS (DELETE FROM mirror_inbox_counts
                RETURNING pending, retrying, applied, parked, ledger)
     INSERT INTO mirror_inbox_counts (pending, retrying, applied, parked, ledger)
     SELECT SUM(pending), SUM(retrying), SUM(applied), SUM(parked), SUM(ledger) FROM gone HAVING COUNT(*) > 0";

/// Counts the inbox again when the counts table is empty (re-created by a repair).
pub(super) const RECOUNT: &str =
    "INSERT INTO mirror_inbox_counts (pending, retrying, applied, parked, ledger)
     SELECT COUNT(*) FILTER (WHERE state = 0), COUNT(*) FILTER (WHERE state = 0 AND attempts > 0),
            COUNT(*) FILTER (WHERE state = 1), COUNT(*) FILTER (WHERE state = 2),
            (SELECT COUNT(*) FROM mirror_applied_events)
     FROM mirror_inbox HAVING NOT EXISTS (SELECT 1 FROM mirror_inbox_counts)";

/// Marks pending events applied when the ledger holds them, and takes them off their users'
/// kept pending counts (a decrement under the queue row's lock, like the receiver's
/// increment: a claim counting the user's events again before or after it is right either
/// way). Returns how many.
const SETTLE: &str =
    "WITH s AS (UPDATE mirror_inbox SET state = 1, applied_ms = $2 WHERE seq = ANY($1) AND state = 0
                AND webhook_id IN (SELECT webhook_id FROM mirror_applied_events) RETURNING user_id),
          n AS (SELECT user_id, COUNT(*) AS n FROM s GROUP BY user_id),
          d AS (UPDATE mirror_users_due d SET pending = GREATEST(d.pending - n.n, 0) FROM n
                WHERE d.user_id = n.user_id)
     SELECT COUNT(*)::BIGINT FROM s";

/// Puts parked events back in the queue and queues their users, back-off lifted and attempts
/// reset, in one statement (the queue rows in user-id order, the lock order of every
/// multi-row write of the queue: see `INSERT_EVENTS`).
const REQUEUE: &str = "WITH r AS (UPDATE mirror_inbox SET state = 0, attempts = 0
                WHERE state = 2 AND ($1::TEXT IS NULL OR user_id = $1) RETURNING user_id, seq, received_ms),
          q AS (INSERT INTO mirror_users_due
                   (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts, pending)
                SELECT user_id, MIN(received_ms), MIN(seq), MIN(received_ms), 0, COUNT(*) FROM r GROUP BY user_id
                ORDER BY user_id
                ON CONFLICT (user_id) DO UPDATE SET due_at_ms = excluded.due_at_ms, attempts = 0,
                   pending = mirror_users_due.pending + excluded.pending,
                   oldest_pending_seq = LEAST(mirror_users_due.oldest_pending_seq, excluded.oldest_pending_seq),
                   oldest_pending_ms = LEAST(mirror_users_due.oldest_pending_ms, excluded.oldest_pending_ms))
     SELECT COUNT(*)::BIGINT FROM r";

/// One batch of the retention purge, inbox and ledger, in one statement (indexes on
/// application time).
const PURGE: &str = "WITH i AS (DELETE FROM mirror_inbox WHERE seq IN
                (SELECT seq FROM mirror_inbox WHERE state = 1 AND applied_ms < $1 ORDER BY applied_ms LIMIT $2)
                RETURNING 1),
          l AS (DELETE FROM mirror_applied_events WHERE webhook_id IN
                (SELECT webhook_id FROM mirror_applied_events WHERE applied_ms < $1 ORDER BY applied_ms LIMIT $2)
                RETURNING 1)
     SELECT (SELECT COUNT(*) FROM i)::BIGINT, (SELECT COUNT(*) FROM l)::BIGINT";

/// Stores a webhook: `false` when its id was stored already.
pub(super) async fn insert(c: &mut PgConn, e: &NewInboxEvent) -> Result<bool> {
    let signed = i32::from(e.signed);
    // Events that name no user are kept under the empty key.
    let user_id = e.user_id.as_ref().map_or("", |u| u.as_str());
    let n: Option<i64> = c
        .value(
            INSERT_EVENT,
            &[
                &e.webhook_id.as_str(),
                &user_id,
                &e.event_type.as_str(),
                &&e.body[..],
                &e.content_type,
                &signed,
                &e.received_ms,
            ],
        )
        .await?;
    Ok(n == Some(1))
}

/// Stores webhooks with distinct ids in one statement (the caller's transaction, or its
/// own): per webhook, `false` when its id was stored already.
pub(super) async fn insert_batch(c: &mut PgConn, events: &[NewInboxEvent]) -> Result<Vec<bool>> {
    let ids: Vec<&str> = events.iter().map(|e| e.webhook_id.as_str()).collect();
    // Events that name no user are kept under the empty key.
    let users: Vec<&str> = events.iter().map(|e| e.user_id.as_ref().map_or("", |u| u.as_str())).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
    let content_types: Vec<&str> = events.iter().map(|e| e.content_type.as_str()).collect();
    let signed: Vec<i32> = events.iter().map(|e| i32::from(e.signed)).collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_ms).collect();
    let rows =
        c.query(INSERT_EVENTS, &[&ids, &users, &types, &bodies, &content_types, &signed, &received]).await?;
    let written = rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<std::result::Result<std::collections::HashSet<String>, _>>()?;
    Ok(ids.iter().map(|id| written.contains(*id)).collect())
}

/// Records a user (no-op when known).
pub(super) async fn add_user(c: &mut PgConn, user_id: &str) -> Result<()> {
    c.execute(ADD_USER, &[&user_id, &now_ms()]).await?;
    Ok(())
}

/// Inbox and ledger counts.
pub(super) async fn counts(c: &mut PgConn) -> Result<InboxCounts> {
    let rows = c.query(COUNTS, &[]).await?;
    let r = rows.first().ok_or_else(|| Error::data("no row from a COUNT query"))?;
    let (pending, retrying, applied, failed): (i64, i64, i64, i64) =
        (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
    Ok(InboxCounts {
        total: pending + applied + failed,
        pending,
        applied,
        failed,
        ledger: r.try_get(4)?,
        retrying,
        oldest_pending_ms: r.try_get(5)?,
    })
}

/// Folds the counts' delta rows into one.
pub(super) async fn compact_counts(c: &mut PgConn) -> Result<()> {
    c.execute(COMPACT_COUNTS, &[]).await?;
    Ok(())
}

/// One batch of the retention purge.
pub(super) async fn purge_applied(c: &mut PgConn, before_ms: i64, batch: i64) -> Result<(u64, u64)> {
    let rows = c.query(PURGE, &[&before_ms, &batch]).await?;
    let r = rows.first().ok_or_else(|| Error::data("no row from the purge"))?;
    let (inbox, ledger): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
    Ok((u64::try_from(inbox).unwrap_or(0), u64::try_from(ledger).unwrap_or(0)))
}

/// The work queue's counts.
pub(super) async fn queue_counts(c: &mut PgConn) -> Result<QueueCounts> {
    let n = counts(c).await?;
    Ok(QueueCounts {
        pending: n.pending,
        retrying: n.retrying,
        oldest_pending_ms: n.oldest_pending_ms,
        parked: n.failed,
    })
}

/// Marks applied those of these pending events the ledger holds. Returns how many.
pub(super) async fn settle_applied(c: &mut PgConn, seqs: &[i64]) -> Result<u64> {
    let n: i64 = c.value(SETTLE, &[&seqs, &now_ms()]).await?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Re-queues parked events (of one user or all), attempts reset, back-off lifted.
pub(super) async fn requeue_parked(c: &mut PgConn, user_id: Option<&str>) -> Result<u64> {
    let n: i64 = c.value(REQUEUE, &[&user_id]).await?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Queues every user with pending events that has none. Returns how many.
pub(super) async fn repair_due(c: &mut PgConn) -> Result<u64> {
    c.execute(REPAIR_DUE, &[]).await
}
