//! SQLite: the lifecycle loop's storage (see `db::lifecycle`). One writer at a time (the
//! database's write lock, taken with `BEGIN IMMEDIATE`), so claiming due rows inside a write
//! transaction has the semantics `FOR UPDATE SKIP LOCKED` gives on PostgreSQL.

use futures_util::future::BoxFuture;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::SqliteDb;
use crate::db::lifecycle::{LifecycleStore, Settle, FIRST_ATTEMPT_MS, HISTORY_PER_CONNECTION};
use crate::error::{Error, Result};
use crate::lifecycle::eval::{evaluate, Observation};
use crate::lifecycle::{
    ActionFilter, ConnectionState, DueResult, Evaluated, HistoryEntry, LifecycleCounts, LifecycleWrites,
    OutboxItem,
};

fn parse_state(raw: &str) -> Result<ConnectionState> {
    serde_json::from_str(raw).map_err(|e| Error::data(format!("a stored connection state is not valid: {e}")))
}

fn load(tx: &Transaction<'_>, connection_id: &str) -> Result<Option<ConnectionState>> {
    let raw: Option<String> = tx
        .prepare_cached("SELECT state FROM mirror_lifecycle WHERE connection_id = ?1")?
        .query_row([connection_id], |r| r.get(0))
        .optional()?;
    raw.as_deref().map(parse_state).transpose()
}

fn store(tx: &Transaction<'_>, e: &Evaluated) -> Result<()> {
    let s = &e.state;
    let json = serde_json::to_string(s).map_err(|e| Error::data(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO mirror_lifecycle (connection_id, user_id, action, status, error, removed, due_ms, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (connection_id) DO UPDATE SET user_id = excluded.user_id, action = excluded.action,
            status = excluded.status, error = excluded.error, removed = excluded.removed,
            due_ms = excluded.due_ms, state = excluded.state",
    )?
    .execute(params![
        s.connection_id,
        s.user_id,
        s.action,
        s.status(),
        s.error(),
        i64::from(s.removed),
        s.due_ms,
        json
    ])?;
    if let Some(h) = &e.history {
        tx.prepare_cached(
            "INSERT INTO mirror_lifecycle_history (connection_id, entered_ms, status, error, extended_status, action)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![h.connection_id, h.entered_ms, h.status, h.error, h.extended_status, h.action])?;
        tx.prepare_cached(
            "DELETE FROM mirror_lifecycle_history WHERE connection_id = ?1 AND id <=
               (SELECT id FROM mirror_lifecycle_history WHERE connection_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![h.connection_id, HISTORY_PER_CONNECTION])?;
    }
    if let Some((id, body)) = &e.outbox {
        tx.prepare_cached(
            "INSERT INTO mirror_outbox (id, connection_id, user_id, body, created_ms, next_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
        )?
        // Due at once: see `FIRST_ATTEMPT_MS`.
        .execute(params![id, s.connection_id, s.user_id, body, s.evaluated_ms, FIRST_ATTEMPT_MS])?;
    }
    Ok(())
}

/// Evaluates and writes a batch of observations inside `tx` (the claim's transaction, or one
/// of its own).
pub(crate) fn observe_in(tx: &Transaction<'_>, user: &str, batch: &LifecycleWrites) -> Result<()> {
    for (connection_id, observation) in &batch.items {
        let prev = load(tx, connection_id)?;
        if let Some(e) = evaluate(prev, connection_id, user, observation, batch) {
            store(tx, &e)?;
        }
    }
    Ok(())
}

fn state_rows(
    stmt: &mut rusqlite::CachedStatement<'_>,
    p: impl rusqlite::Params,
) -> Result<Vec<ConnectionState>> {
    let raws: Vec<String> = stmt.query_map(p, |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    raws.iter().map(|r| parse_state(r)).collect()
}

impl LifecycleStore for SqliteDb {
    fn lc_observe(&self, users: Vec<(String, LifecycleWrites)>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if users.iter().all(|(_, b)| b.is_empty()) {
                return Ok(());
            }
            self.with_work(move |c, inner| {
                let _writer = inner.write.lock();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                for (user, batch) in &users {
                    observe_in(&tx, user, batch)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
        })
    }

    fn lc_due(&self, batch: LifecycleWrites, limit: usize) -> BoxFuture<'_, Result<Vec<DueResult>>> {
        Box::pin(async move {
            self.with_work(move |c, inner| {
                let _writer = inner.write.lock();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let due = {
                    let mut s = tx.prepare_cached(
                        "SELECT state FROM mirror_lifecycle WHERE due_ms <= ?1 ORDER BY due_ms LIMIT ?2",
                    )?;
                    state_rows(&mut s, params![batch.now_ms, i64::try_from(limit).unwrap_or(i64::MAX)])?
                };
                let mut out = Vec::with_capacity(due.len());
                for prev in due {
                    let id = prev.connection_id.clone();
                    let user = prev.user_id.clone();
                    if let Some(e) = evaluate(Some(prev), &id, &user, &Observation::Tick, &batch) {
                        store(&tx, &e)?;
                        out.push(DueResult {
                            connection_id: id,
                            user_id: user,
                            action: e.state.action.clone(),
                            wants_sync: e.wants_sync,
                        });
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await
        })
    }

    fn lc_states<'a>(&'a self, filter: &'a ActionFilter) -> BoxFuture<'a, Result<Vec<ConnectionState>>> {
        let user = filter.user_id.clone();
        let removed = filter.include_removed;
        let connection = filter.connection_id.clone();
        Box::pin(async move {
            self.with_work(move |c, _| {
                let mut s = c.prepare_cached(
                    "SELECT state FROM mirror_lifecycle WHERE (?1 IS NULL OR user_id = ?1) AND (?2 OR removed = 0)
                       AND (?3 IS NULL OR connection_id = ?3)
                     ORDER BY user_id, connection_id",
                )?;
                state_rows(&mut s, params![user, removed, connection])
            })
            .await
        })
    }

    fn lc_find<'a>(
        &'a self,
        patterns: [String; 3],
        user: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        let user = user.map(str::to_owned);
        Box::pin(async move {
            self.with_work(move |c, _| {
                let [a, b, d] = patterns;
                let ids = c
                    .prepare_cached(
                        "SELECT connection_id FROM mirror_lifecycle WHERE (?4 IS NULL OR user_id = ?4)
                           AND (LOWER(connection_id) LIKE ?1 ESCAPE '\\' OR LOWER(connection_id) LIKE ?2 ESCAPE '\\'
                                OR LOWER(connection_id) LIKE ?3 ESCAPE '\\')
                         ORDER BY connection_id LIMIT ?5",
                    )?
                    .query_map(params![a, b, d, user, i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(ids)
            })
            .await
        })
    }

    fn lc_history<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        let id = connection_id.to_owned();
        Box::pin(async move {
            self.with_work(move |c, _| {
                let rows = c
                    .prepare_cached(
                        "SELECT connection_id, entered_ms, status, error, extended_status, action
                         FROM mirror_lifecycle_history WHERE connection_id = ?1 ORDER BY id",
                    )?
                    .query_map([id], |r| {
                        Ok(HistoryEntry {
                            connection_id: r.get(0)?,
                            entered_ms: r.get(1)?,
                            status: r.get(2)?,
                            error: r.get(3)?,
                            extended_status: r.get(4)?,
                            action: r.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            })
            .await
        })
    }

    fn lc_counts(&self, now_ms: i64) -> BoxFuture<'_, Result<LifecycleCounts>> {
        Box::pin(async move {
            self.with_work(move |c, _| {
                let mut counts = LifecycleCounts::default();
                let mut s = c.prepare_cached(
                    "SELECT COALESCE(action, ''), COUNT(*) FROM mirror_lifecycle WHERE removed = 0 GROUP BY action",
                )?;
                for row in s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                    let (a, n) = row?;
                    counts.by_action.insert(a, n);
                }
                let mut s = c.prepare_cached(
                    "SELECT COALESCE(status, ''), COALESCE(error, ''), COUNT(*) FROM mirror_lifecycle
                     WHERE removed = 0 GROUP BY status, error",
                )?;
                for row in s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))? {
                    let (st, er, n) = row?;
                    counts.by_status.insert((st, er), n);
                }
                let (pending, parked, oldest): (i64, i64, Option<i64>) = c.query_row(
                    "SELECT COALESCE(SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0),
                            COALESCE(SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0), MIN(created_ms)
                     FROM mirror_outbox",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                counts.outbox_pending = pending;
                counts.outbox_parked = parked;
                counts.oldest_undelivered_ms = oldest;
                counts.due_now =
                    c.query_row("SELECT COUNT(*) FROM mirror_lifecycle WHERE due_ms <= ?1", [now_ms], |r| r.get(0))?;
                Ok(counts)
            })
            .await
        })
    }

    fn outbox_next(
        &self,
        now_ms: i64,
        wall_ms: i64,
        lease_until: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<OutboxItem>>> {
        Box::pin(async move {
            self.with_work(move |c, inner| {
                let _writer = inner.write.lock();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let items = tx
                    .prepare_cached(
                        "UPDATE mirror_outbox SET lease_ms = ?3 WHERE seq IN (
                            SELECT o.seq FROM mirror_outbox o
                            WHERE o.state = 0 AND o.next_ms <= ?1 AND o.lease_ms <= ?2
                              AND NOT EXISTS (SELECT 1 FROM mirror_outbox p
                                              WHERE p.state = 0 AND p.connection_id = o.connection_id AND p.seq < o.seq)
                            ORDER BY o.seq LIMIT ?4)
                         RETURNING seq, id, connection_id, body, attempts, created_ms",
                    )?
                    .query_map(params![now_ms, wall_ms, lease_until, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                        Ok(OutboxItem {
                            seq: r.get(0)?,
                            id: r.get(1)?,
                            connection_id: r.get(2)?,
                            body: r.get(3)?,
                            attempts: r.get(4)?,
                            created_ms: r.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                tx.commit()?;
                let mut items = items;
                items.sort_by_key(|i| i.seq);
                Ok(items)
            })
            .await
        })
    }

    fn outbox_settle(&self, seq: i64, outcome: Settle) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.with_work(move |c, inner| {
                let _writer = inner.write.lock();
                match outcome {
                    Settle::Delivered => {
                        c.prepare_cached("DELETE FROM mirror_outbox WHERE seq = ?1")?.execute([seq])?;
                    }
                    Settle::Retry { next_ms, error } => {
                        c.prepare_cached(
                            "UPDATE mirror_outbox SET attempts = attempts + 1, next_ms = ?2, lease_ms = 0, last_error = ?3
                             WHERE seq = ?1",
                        )?
                        .execute(params![seq, next_ms, crate::db::clip(&error, 500)])?;
                    }
                    Settle::Park { error } => {
                        c.prepare_cached(
                            "UPDATE mirror_outbox SET attempts = attempts + 1, state = 2, lease_ms = 0, last_error = ?2
                             WHERE seq = ?1",
                        )?
                        .execute(params![seq, crate::db::clip(&error, 500)])?;
                    }
                }
                Ok(())
            })
            .await
        })
    }

    fn lc_purge(&self, before_ms: i64, limit: usize) -> BoxFuture<'_, Result<(u64, u64)>> {
        Box::pin(async move {
            self.with_work(move |c, inner| {
                let _writer = inner.write.lock();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let gone: Vec<String> = tx
                    .prepare_cached(
                        "SELECT connection_id FROM mirror_lifecycle
                         WHERE removed = 1 AND json_extract(state, '$.observedMs') < ?1
                         ORDER BY connection_id LIMIT ?2",
                    )?
                    .query_map(params![before_ms, limit], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for id in &gone {
                    tx.prepare_cached("DELETE FROM mirror_lifecycle_history WHERE connection_id = ?1")?.execute([id])?;
                    tx.prepare_cached("DELETE FROM mirror_outbox WHERE state = 0 AND connection_id = ?1")?.execute([id])?;
                    tx.prepare_cached("DELETE FROM mirror_outbox WHERE state = 2 AND connection_id = ?1")?.execute([id])?;
                    tx.prepare_cached("DELETE FROM mirror_lifecycle WHERE connection_id = ?1")?.execute([id])?;
                }
                let parked = tx
                    .prepare_cached(
                        "DELETE FROM mirror_outbox WHERE seq IN (
                           SELECT seq FROM mirror_outbox WHERE state = 2 AND created_ms < ?1 ORDER BY created_ms LIMIT ?2)",
                    )?
                    .execute(params![before_ms, limit])?;
                tx.commit()?;
                Ok((gone.len() as u64, parked as u64))
            })
            .await
        })
    }

    fn outbox_requeue(&self, now_ms: i64) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            self.with_work(move |c, inner| {
                let _writer = inner.write.lock();
                let n = c
                    .prepare_cached(
                        "UPDATE mirror_outbox SET state = 0, attempts = 0, next_ms = ?1, lease_ms = 0 WHERE state = 2",
                    )?
                    .execute([now_ms])?;
                Ok(n as u64)
            })
            .await
        })
    }
}
