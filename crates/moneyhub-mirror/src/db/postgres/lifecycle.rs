//! PostgreSQL: the lifecycle loop's storage (see `db::lifecycle`). Due rows are claimed with
//! `FOR UPDATE SKIP LOCKED`, so any number of processes share the work and none waits for
//! another; the session's observations lock their rows (`FOR UPDATE`) in the claim's
//! transaction. Notifications are leased (`FOR UPDATE SKIP LOCKED`, then a lease time), one
//! connection's oldest pending notification at a time.

use futures_util::future::BoxFuture;

use super::{PgConn, PgDb};
use crate::db::lifecycle::{LifecycleStore, Settle, HISTORY_PER_CONNECTION};
use crate::error::{Error, Result};
use crate::lifecycle::eval::{evaluate, Observation};
use crate::lifecycle::{
    ActionFilter, ConnectionState, DueResult, Evaluated, HistoryEntry, LifecycleCounts, LifecycleWrites,
    OutboxItem,
};

fn parse_state(raw: &str) -> Result<ConnectionState> {
    serde_json::from_str(raw).map_err(|e| Error::data(format!("a stored connection state is not valid: {e}")))
}

async fn store(c: &mut PgConn, e: &Evaluated) -> Result<()> {
    let s = &e.state;
    let json = serde_json::to_string(s).map_err(|e| Error::data(e.to_string()))?;
    let removed = i32::from(s.removed);
    c.execute(
        "INSERT INTO mirror_lifecycle (connection_id, user_id, action, status, error, removed, due_ms, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (connection_id) DO UPDATE SET user_id = excluded.user_id, action = excluded.action,
            status = excluded.status, error = excluded.error, removed = excluded.removed,
            due_ms = excluded.due_ms, state = excluded.state",
        &[&s.connection_id, &s.user_id, &s.action, &s.status(), &s.error(), &removed, &s.due_ms, &json],
    )
    .await?;
    if let Some(h) = &e.history {
        c.execute(
            "INSERT INTO mirror_lifecycle_history (connection_id, entered_ms, status, error, extended_status, action)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&h.connection_id, &h.entered_ms, &h.status, &h.error, &h.extended_status, &h.action],
        )
        .await?;
        c.execute(
            "DELETE FROM mirror_lifecycle_history WHERE connection_id = $1 AND id <=
               (SELECT id FROM mirror_lifecycle_history WHERE connection_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            &[&h.connection_id, &HISTORY_PER_CONNECTION],
        )
        .await?;
    }
    if let Some((id, body)) = &e.outbox {
        c.execute(
            "INSERT INTO mirror_outbox (id, connection_id, user_id, body, created_ms, next_ms)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
            &[id, &s.connection_id, &s.user_id, body, &s.evaluated_ms],
        )
        .await?;
    }
    Ok(())
}

/// Evaluates and writes a batch of observations on `c`, inside its open transaction (the
/// claim's, or one of its own): each row is locked first.
pub(crate) async fn observe_in(c: &mut PgConn, user: &str, batch: &LifecycleWrites) -> Result<()> {
    for (connection_id, observation) in &batch.items {
        let rows = c
            .query("SELECT state FROM mirror_lifecycle WHERE connection_id = $1 FOR UPDATE", &[connection_id])
            .await?;
        let prev = match rows.first() {
            Some(r) => Some(parse_state(r.try_get::<_, &str>(0)?)?),
            None => None,
        };
        if let Some(e) = evaluate(prev, connection_id, user, observation, batch) {
            store(c, &e).await?;
        }
    }
    Ok(())
}

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
    fn lc_observe<'a>(&'a self, user_id: &'a str, batch: LifecycleWrites) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            let user = user_id.to_owned();
            in_transaction(self, move |c| Box::pin(async move { observe_in(c, &user, &batch).await })).await
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
                    for r in rows {
                        let prev = parse_state(r.try_get::<_, &str>(0)?)?;
                        let id = prev.connection_id.clone();
                        let user = prev.user_id.clone();
                        if let Some(e) = evaluate(Some(prev), &id, &user, &Observation::Tick, &batch) {
                            store(c, &e).await?;
                            out.push(DueResult {
                                connection_id: id,
                                user_id: user,
                                action: e.state.action.clone(),
                                wants_sync: e.wants_sync,
                            });
                        }
                    }
                    Ok(out)
                })
            })
            .await
        })
    }

    fn lc_states<'a>(&'a self, filter: &'a ActionFilter) -> BoxFuture<'a, Result<Vec<ConnectionState>>> {
        let user = filter.user_id.clone();
        let removed = filter.include_removed;
        Box::pin(async move {
            let mut c = self.get().await?;
            let rows = c
                .query(
                    "SELECT state FROM mirror_lifecycle WHERE ($1::TEXT IS NULL OR user_id = $1) AND ($2 OR removed = 0)
                     ORDER BY user_id COLLATE \"C\", connection_id COLLATE \"C\"",
                    &[&user, &removed],
                )
                .await?;
            rows.iter().map(|r| parse_state(r.try_get::<_, &str>(0)?)).collect()
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
