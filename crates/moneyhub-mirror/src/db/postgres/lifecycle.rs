//! PostgreSQL: the lifecycle loop's storage (see `db::lifecycle`). Due rows are claimed with
//! `FOR UPDATE SKIP LOCKED`, so any number of processes share the work and none waits for
//! another; the session's observations lock their rows (`FOR UPDATE`) in the claim's
//! transaction. Notifications are leased (`FOR UPDATE SKIP LOCKED`, then a lease time), one
//! connection's oldest pending notification at a time.
//!
//! Round trips are per batch, not per connection: a batch of observations (one user's from a
//! claim, or many users' from [`crate::Db::lifecycle_observe_many`]) or of due rows is read
//! and locked in one query and written in one statement of `UNNEST`ed arrays (states, history
//! rows and their pruning, notifications).

use futures_util::future::BoxFuture;

use super::{PgConn, PgDb};
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

/// Writes a batch of evaluations in one statement (one round trip, however many
/// connections): the states upserted, the history rows inserted and each connection's history
/// pruned to its newest [`HISTORY_PER_CONNECTION`], the notifications queued. The evaluations
/// are in evaluation order; a connection evaluated twice keeps its last state and both history
/// rows and notifications, in order. A notification is due at once ($23,
/// [`FIRST_ATTEMPT_MS`]).
const STORE_MANY: &str = "
WITH s AS (
  INSERT INTO mirror_lifecycle (connection_id, user_id, action, status, error, removed, due_ms, state)
  SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::INT[], $7::BIGINT[], $8::TEXT[])
  ON CONFLICT (connection_id) DO UPDATE SET user_id = excluded.user_id, action = excluded.action,
     status = excluded.status, error = excluded.error, removed = excluded.removed,
     due_ms = excluded.due_ms, state = excluded.state
  RETURNING 1
), h AS (
  INSERT INTO mirror_lifecycle_history (connection_id, entered_ms, status, error, extended_status, action)
  SELECT * FROM UNNEST($9::TEXT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[])
  RETURNING 1
), p AS (
  DELETE FROM mirror_lifecycle_history d USING (
    SELECT o.id FROM (
      SELECT x.id, x.connection_id, n.added,
             row_number() OVER (PARTITION BY x.connection_id ORDER BY x.id DESC) AS rn
      FROM mirror_lifecycle_history x
      JOIN UNNEST($15::TEXT[], $16::BIGINT[]) AS n(connection_id, added) ON x.connection_id = n.connection_id
    ) o WHERE o.rn > $17::BIGINT - o.added
  ) old WHERE d.id = old.id
  RETURNING 1
), o AS (
  INSERT INTO mirror_outbox (id, connection_id, user_id, body, created_ms, next_ms)
  SELECT i, c, u, b, t, $23::BIGINT FROM UNNEST($18::TEXT[], $19::TEXT[], $20::TEXT[], $21::TEXT[], $22::BIGINT[]) AS x(i, c, u, b, t)
  ON CONFLICT (id) DO NOTHING
  RETURNING 1
)
SELECT (SELECT COUNT(*) FROM s), (SELECT COUNT(*) FROM h), (SELECT COUNT(*) FROM p), (SELECT COUNT(*) FROM o)";

/// [`STORE_MANY`]'s columns, gathered from the evaluations.
#[derive(Default)]
struct Columns {
    id: Vec<String>,
    user: Vec<String>,
    action: Vec<Option<String>>,
    status: Vec<Option<String>>,
    error: Vec<Option<String>>,
    removed: Vec<i32>,
    due: Vec<Option<i64>>,
    state: Vec<String>,
    h_id: Vec<String>,
    h_at: Vec<i64>,
    h_status: Vec<Option<String>>,
    h_error: Vec<Option<String>>,
    h_extended: Vec<Option<String>>,
    h_action: Vec<Option<String>>,
    o_id: Vec<String>,
    o_connection: Vec<String>,
    o_user: Vec<String>,
    o_body: Vec<String>,
    o_at: Vec<i64>,
}

async fn store_many(c: &mut PgConn, evaluated: &[Evaluated]) -> Result<()> {
    if evaluated.is_empty() {
        return Ok(());
    }
    let mut k = Columns::default();
    // The last state of each connection (an upsert may touch a row once per statement).
    let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, e) in evaluated.iter().enumerate() {
        last.insert(e.state.connection_id.as_str(), i);
    }
    let mut added: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (i, e) in evaluated.iter().enumerate() {
        let s = &e.state;
        if last.get(s.connection_id.as_str()) == Some(&i) {
            k.id.push(s.connection_id.clone());
            k.user.push(s.user_id.clone());
            k.action.push(s.action.clone());
            k.status.push(s.status().map(str::to_owned));
            k.error.push(s.error().map(str::to_owned));
            k.removed.push(i32::from(s.removed));
            k.due.push(s.due_ms);
            k.state.push(serde_json::to_string(s).map_err(|e| Error::data(e.to_string()))?);
        }
        if let Some(h) = &e.history {
            *added.entry(h.connection_id.as_str()).or_default() += 1;
            k.h_id.push(h.connection_id.clone());
            k.h_at.push(h.entered_ms);
            k.h_status.push(h.status.clone());
            k.h_error.push(h.error.clone());
            k.h_extended.push(h.extended_status.clone());
            k.h_action.push(h.action.clone());
        }
        if let Some((id, body)) = &e.outbox {
            k.o_id.push(id.clone());
            k.o_connection.push(s.connection_id.clone());
            k.o_user.push(s.user_id.clone());
            k.o_body.push(body.clone());
            k.o_at.push(s.evaluated_ms);
        }
    }
    let prune_ids: Vec<&str> = added.keys().copied().collect();
    let prune_added: Vec<i64> = added.values().copied().collect();
    c.query(
        STORE_MANY,
        &[
            &k.id,
            &k.user,
            &k.action,
            &k.status,
            &k.error,
            &k.removed,
            &k.due,
            &k.state,
            &k.h_id,
            &k.h_at,
            &k.h_status,
            &k.h_error,
            &k.h_extended,
            &k.h_action,
            &prune_ids,
            &prune_added,
            &HISTORY_PER_CONNECTION,
            &k.o_id,
            &k.o_connection,
            &k.o_user,
            &k.o_body,
            &k.o_at,
            &FIRST_ATTEMPT_MS,
        ],
    )
    .await?;
    Ok(())
}

/// Evaluates and writes observations of several users' connections on `c`, inside its open
/// transaction (the claim's, or one of its own), in two round trips whatever their number:
/// every stored row they touch is read and locked at once (`FOR UPDATE`, in connection order,
/// so two writers cannot deadlock), evaluated in memory in order, then written by
/// [`STORE_MANY`].
pub(crate) async fn observe_users(c: &mut PgConn, users: &[(&str, &LifecycleWrites)]) -> Result<()> {
    let mut ids: Vec<&str> =
        users.iter().flat_map(|(_, b)| b.items.iter().map(|(id, _)| id.as_str())).collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    let rows = c
        .query(
            "SELECT state FROM mirror_lifecycle WHERE connection_id = ANY($1::TEXT[])
             ORDER BY connection_id COLLATE \"C\" FOR UPDATE",
            &[&ids],
        )
        .await?;
    let mut current: std::collections::HashMap<String, ConnectionState> =
        std::collections::HashMap::with_capacity(rows.len());
    for r in rows {
        let s = parse_state(r.try_get::<_, &str>(0)?)?;
        current.insert(s.connection_id.clone(), s);
    }
    let mut out = Vec::new();
    for (user, batch) in users {
        for (connection_id, observation) in &batch.items {
            let prev = current.get(connection_id).cloned();
            if let Some(e) = evaluate(prev, connection_id, user, observation, batch) {
                current.insert(connection_id.clone(), e.state.clone());
                out.push(e);
            }
        }
    }
    store_many(c, &out).await
}

/// Evaluates and writes a batch of observations of one user's connections on `c`, inside its
/// open transaction (see [`observe_users`]).
pub(crate) async fn observe_in(c: &mut PgConn, user: &str, batch: &LifecycleWrites) -> Result<()> {
    observe_users(c, &[(user, batch)]).await
}

/// One batch of the lifecycle retention, one statement: removed connections past the
/// retention (their removal time is the state's `observedMs`, read through the partial index
/// of removed rows) with their history and notifications, and parked notifications past it.
/// Rows another transaction holds are skipped (the next turn takes them).
const PURGE: &str = "
WITH gone AS (
  SELECT connection_id FROM mirror_lifecycle
  WHERE removed = 1 AND (state::json ->> 'observedMs')::BIGINT < $1
  ORDER BY connection_id LIMIT $2 FOR UPDATE SKIP LOCKED
), l AS (
  DELETE FROM mirror_lifecycle WHERE connection_id IN (SELECT connection_id FROM gone) RETURNING 1
), h AS (
  DELETE FROM mirror_lifecycle_history WHERE connection_id IN (SELECT connection_id FROM gone) RETURNING 1
), op AS (
  DELETE FROM mirror_outbox WHERE state = 0 AND connection_id IN (SELECT connection_id FROM gone) RETURNING 1
), ok AS (
  DELETE FROM mirror_outbox WHERE state = 2 AND connection_id IN (SELECT connection_id FROM gone) RETURNING 1
), parked AS (
  DELETE FROM mirror_outbox WHERE seq IN (
    SELECT seq FROM mirror_outbox WHERE state = 2 AND created_ms < $1
      AND connection_id NOT IN (SELECT connection_id FROM gone)
    ORDER BY created_ms LIMIT $2 FOR UPDATE SKIP LOCKED)
  RETURNING 1
)
SELECT (SELECT COUNT(*) FROM l), (SELECT COUNT(*) FROM parked)";

async fn in_transaction<T, F>(db: &PgDb, f: F) -> Result<T>
where
    F: for<'c> FnOnce(
        &'c mut PgConn,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'c>>,
{
    let mut c = db.get().await?;
    c.batch("BEGIN").await?;
    match f(&mut c).await {
        Ok(v) => {
            c.batch("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.batch("ROLLBACK").await;
            Err(e)
        }
    }
}

impl LifecycleStore for PgDb {
    fn lc_observe(&self, users: Vec<(String, LifecycleWrites)>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if users.iter().all(|(_, b)| b.is_empty()) {
                return Ok(());
            }
            in_transaction(self, move |c| {
                Box::pin(async move {
                    let refs: Vec<(&str, &LifecycleWrites)> =
                        users.iter().map(|(u, b)| (u.as_str(), b)).collect();
                    observe_users(c, &refs).await
                })
            })
            .await
        })
    }

    fn lc_due(&self, batch: LifecycleWrites, limit: usize) -> BoxFuture<'_, Result<Vec<DueResult>>> {
        Box::pin(async move {
            in_transaction(self, move |c| {
                Box::pin(async move {
                    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                    let rows = c
                        .query(
                            "SELECT state FROM mirror_lifecycle WHERE due_ms <= $1 ORDER BY due_ms LIMIT $2
                             FOR UPDATE SKIP LOCKED",
                            &[&batch.now_ms, &limit],
                        )
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    let mut evaluated = Vec::with_capacity(rows.len());
                    for r in rows {
                        let prev = parse_state(r.try_get::<_, &str>(0)?)?;
                        let id = prev.connection_id.clone();
                        let user = prev.user_id.clone();
                        if let Some(e) = evaluate(Some(prev), &id, &user, &Observation::Tick, &batch) {
                            out.push(DueResult {
                                connection_id: id,
                                user_id: user,
                                action: e.state.action.clone(),
                                wants_sync: e.wants_sync,
                            });
                            evaluated.push(e);
                        }
                    }
                    store_many(c, &evaluated).await?;
                    Ok(out)
                })
            })
            .await
        })
    }

    fn lc_states<'a>(&'a self, filter: &'a ActionFilter) -> BoxFuture<'a, Result<Vec<ConnectionState>>> {
        let user = filter.user_id.clone();
        let removed = filter.include_removed;
        let connection = filter.connection_id.clone();
        Box::pin(async move {
            let mut c = self.get().await?;
            let rows = c
                .query(
                    "SELECT state FROM mirror_lifecycle WHERE ($1::TEXT IS NULL OR user_id = $1) AND ($2 OR removed = 0)
                       AND ($3::TEXT IS NULL OR connection_id = $3)
                     ORDER BY user_id COLLATE \"C\", connection_id COLLATE \"C\"",
                    &[&user, &removed, &connection],
                )
                .await?;
            rows.iter().map(|r| parse_state(r.try_get::<_, &str>(0)?)).collect()
        })
    }

    fn lc_find<'a>(
        &'a self,
        patterns: [String; 3],
        user: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let [a, b, d] = &patterns;
            let mut c = self.get().await?;
            let rows = c
                .query(
                    "SELECT connection_id FROM mirror_lifecycle WHERE ($4::TEXT IS NULL OR user_id = $4)
                       AND (LOWER(connection_id) LIKE $1 ESCAPE '\\' OR LOWER(connection_id) LIKE $2 ESCAPE '\\'
                            OR LOWER(connection_id) LIKE $3 ESCAPE '\\')
                     ORDER BY connection_id COLLATE \"C\" LIMIT $5",
                    &[a, b, d, &user, &limit],
                )
                .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    fn lc_history<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        let id = connection_id.to_owned();
        Box::pin(async move {
            let mut c = self.get().await?;
            let rows = c
                .query(
                    "SELECT connection_id, entered_ms, status, error, extended_status, action
                     FROM mirror_lifecycle_history WHERE connection_id = $1 ORDER BY id",
                    &[&id],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(HistoryEntry {
                        connection_id: r.try_get(0)?,
                        entered_ms: r.try_get(1)?,
                        status: r.try_get(2)?,
                        error: r.try_get(3)?,
                        extended_status: r.try_get(4)?,
                        action: r.try_get(5)?,
                    })
                })
                .collect()
        })
    }

    fn lc_counts(&self, now_ms: i64) -> BoxFuture<'_, Result<LifecycleCounts>> {
        Box::pin(async move {
            let mut c = self.get().await?;
            let mut counts = LifecycleCounts::default();
            for r in c
                .query(
                    "SELECT COALESCE(action, ''), COUNT(*) FROM mirror_lifecycle WHERE removed = 0 GROUP BY action",
                    &[],
                )
                .await?
            {
                counts.by_action.insert(r.try_get(0)?, r.try_get(1)?);
            }
            for r in c
                .query(
                    "SELECT COALESCE(status, ''), COALESCE(error, ''), COUNT(*) FROM mirror_lifecycle
                     WHERE removed = 0 GROUP BY status, error",
                    &[],
                )
                .await?
            {
                counts.by_status.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
            }
            let rows = c
                .query(
                    "SELECT COUNT(*) FILTER (WHERE state = 0), COUNT(*) FILTER (WHERE state = 2), MIN(created_ms)
                     FROM mirror_outbox",
                    &[],
                )
                .await?;
            let r = rows.first().ok_or_else(|| Error::data("no row from a COUNT query"))?;
            counts.outbox_pending = r.try_get(0)?;
            counts.outbox_parked = r.try_get(1)?;
            counts.oldest_undelivered_ms = r.try_get(2)?;
            let rows =
                c.query("SELECT COUNT(*) FROM mirror_lifecycle WHERE due_ms <= $1", &[&now_ms]).await?;
            counts.due_now = rows.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(0);
            Ok(counts)
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
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut c = self.get().await?;
            let rows = c
                .query(
                    "UPDATE mirror_outbox SET lease_ms = $3 WHERE seq IN (
                        SELECT o.seq FROM mirror_outbox o
                        WHERE o.state = 0 AND o.next_ms <= $1 AND o.lease_ms <= $2
                          AND NOT EXISTS (SELECT 1 FROM mirror_outbox p
                                          WHERE p.state = 0 AND p.connection_id = o.connection_id AND p.seq < o.seq)
                        ORDER BY o.seq LIMIT $4 FOR UPDATE SKIP LOCKED)
                     RETURNING seq, id, connection_id, body, attempts, created_ms",
                    &[&now_ms, &wall_ms, &lease_until, &limit],
                )
                .await?;
            let mut items: Vec<OutboxItem> = rows
                .iter()
                .map(|r| {
                    Ok(OutboxItem {
                        seq: r.try_get(0)?,
                        id: r.try_get(1)?,
                        connection_id: r.try_get(2)?,
                        body: r.try_get(3)?,
                        attempts: i64::from(r.try_get::<_, i32>(4)?),
                        created_ms: r.try_get(5)?,
                    })
                })
                .collect::<Result<_>>()?;
            items.sort_by_key(|i| i.seq);
            Ok(items)
        })
    }

    fn outbox_settle(&self, seq: i64, outcome: Settle) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut c = self.get().await?;
            match outcome {
                Settle::Delivered => {
                    c.execute("DELETE FROM mirror_outbox WHERE seq = $1", &[&seq]).await?;
                }
                Settle::Retry { next_ms, error } => {
                    let error = crate::db::clip(&error, 500);
                    c.execute(
                        "UPDATE mirror_outbox SET attempts = attempts + 1, next_ms = $2, lease_ms = 0, last_error = $3
                         WHERE seq = $1",
                        &[&seq, &next_ms, &error],
                    )
                    .await?;
                }
                Settle::Park { error } => {
                    let error = crate::db::clip(&error, 500);
                    c.execute(
                        "UPDATE mirror_outbox SET attempts = attempts + 1, state = 2, lease_ms = 0, last_error = $2
                         WHERE seq = $1",
                        &[&seq, &error],
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }

    fn lc_purge(&self, before_ms: i64, limit: usize) -> BoxFuture<'_, Result<(u64, u64)>> {
        Box::pin(async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut c = self.get().await?;
            let rows = c.query(PURGE, &[&before_ms, &limit]).await?;
            let r = rows.first().ok_or_else(|| Error::data("no row from the lifecycle purge"))?;
            let (gone, parked): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            Ok((u64::try_from(gone).unwrap_or(0), u64::try_from(parked).unwrap_or(0)))
        })
    }

    fn outbox_requeue(&self, now_ms: i64) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut c = self.get().await?;
            c.execute(
                "UPDATE mirror_outbox SET state = 0, attempts = 0, next_ms = $1, lease_ms = 0 WHERE state = 2",
                &[&now_ms],
            )
            .await
        })
    }
}
