//! PostgreSQL: two connection pools (`deadpool-postgres`) over `tokio-postgres`, TLS with
//! rustls (see [`super::tls`]), statements prepared once per connection, batch writes through
//! `unnest`.
//!
//! Pools: the processors and readers share one (at most `pool_max_size` connections, default
//! 32: a claim holds one while it works); the receiver has its own (half as many, at least 2),
//! because it runs on its own runtime and a connection's driver task lives on the runtime
//! that opened it. A task waits at most `pool_timeout` seconds (default 30) for a connection,
//! then fails with an error that says so (a worker then backs off); opening a connection is
//! bounded by the URL's `connect_timeout` (default 10 s). A connection given back in the middle
//! of a transaction (a cancelled task) is closed, never reused, so the server rolls it back.
//!
//! Claims: a worker opens a transaction and locks one user row with
//! `FOR UPDATE SKIP LOCKED`, choosing among the users with the oldest pending events; it keeps
//! the transaction (and the lock) while it fetches and writes, and commits the writes together
//! with the applied-events ledger. Other workers, in this or other processes, skip that user
//! and take another, so ingestion scales out while each user's events stay in order. A worker
//! that dies loses its connection, and the server rolls its claim back.
//!
//! A file per concept: `connect` (configuration, pools, errors), `inbox` (the receiver's
//! writes, counts, settling and re-queueing), `claim` (claiming users and the claimed user's
//! reads and commits), `transactions` (the rows a claim writes, exports), `status`, `guard`.
//! This file opens the database and implements the storage contract by calling them.

mod claim;
mod connect;
mod guard;
mod inbox;
mod lifecycle;
mod status;
mod transactions;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use futures_util::future::BoxFuture;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use super::migrations::{self, POSTGRES};
use super::store::{ClaimRequest, ClaimedUser, GuardChange, QueueCounts, Readiness, Store};
use super::tls;
use super::{InboxCounts, NewInboxEvent, Status, StatusQuery, StoredTx};
use crate::error::{Error, Result};
use connect::{configure, manager, pool, pool_error, with_tls_hint};

/// Default most connections of the processors and readers (`pool_max_size`).
const DEFAULT_POOL_MAX: usize = 32;
/// Default wait for a free connection (`pool_timeout`).
const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Serialises migrations across processes (a transaction-scoped advisory lock per schema).
const MIGRATION_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext(COALESCE(current_schema(), '') || '.mirror_migrations'))";
/// The migrations table, created before anything else.
pub(crate) const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS mirror_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)";
/// The applied schema version.
const SCHEMA_VERSION: &str = "SELECT COALESCE(MAX(version), 0)::BIGINT FROM mirror_migrations";
/// The required tables that are missing (in the connection's search path), and whether the
/// database refuses writes: this session is read-only (`default_transaction_read_only` set
/// for the server and reloaded, or a standby), or new sessions will be (set for the
/// database or the role).
const READINESS: &str = "SELECT ARRAY(SELECT t FROM unnest($1::TEXT[]) AS t WHERE to_regclass(t) IS NULL),
        current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery()
        OR EXISTS (SELECT 1 FROM pg_db_role_setting s
                   WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
                     AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))
                     AND 'default_transaction_read_only=on' = ANY(s.setconfig))";
/// Records an applied migration.
const RECORD_MIGRATION: &str =
    "INSERT INTO mirror_migrations (version, name, applied_ms) VALUES ($1, $2, $3)";

/// One pooled connection. Given back to its pool when dropped, unless a transaction is open:
/// then it is closed (the server rolls the transaction back).
pub(crate) struct PgConn {
    object: Option<Object>,
    in_transaction: bool,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        if self.in_transaction {
            if let Some(object) = self.object.take() {
                drop(Object::take(object));
            }
        }
    }
}

impl PgConn {
    fn client(&self) -> Result<&Object> {
        self.object.as_ref().ok_or_else(|| Error::data("the connection is already closed"))
    }

    async fn stmt(&mut self, sql: &'static str) -> Result<Statement> {
        Ok(self.client()?.prepare_cached(sql).await?)
    }

    async fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let s = self.stmt(sql).await?;
        Ok(self.client()?.execute(&s, params).await?)
    }

    async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let s = self.stmt(sql).await?;
        Ok(self.client()?.query(&s, params).await?)
    }

    /// The single value of a one-row, one-column query (`None` when no row came back).
    async fn value<T>(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<T>>
    where
        T: for<'r> tokio_postgres::types::FromSql<'r>,
    {
        let rows = self.query(sql, params).await?;
        Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
    }

    /// Runs statements; `BEGIN`, `COMMIT` and `ROLLBACK` also track whether a transaction is
    /// open (so that a connection dropped inside one is closed, not reused).
    async fn batch(&mut self, sql: &str) -> Result<()> {
        if sql == "BEGIN" {
            self.in_transaction = true;
        }
        self.client()?.batch_execute(sql).await?;
        if sql == "COMMIT" || sql == "ROLLBACK" {
            self.in_transaction = false;
        }
        Ok(())
    }

    /// Commits when `result` is `Ok`, else rolls back (a connection whose rollback failed is
    /// closed when dropped) and returns the error.
    async fn end<T>(&mut self, result: Result<T>) -> Result<T> {
        match result {
            Ok(v) => {
                self.batch("COMMIT").await?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK").await;
                Err(e)
            }
        }
    }
}

struct PgInner {
    schema: Option<String>,
    /// Connections of processors and readers.
    work: Pool,
    /// Connections of the receiver (kept apart: the receiver runs on its own runtime, and a
    /// connection's driver task lives on the runtime that opened it).
    inbox: Pool,
}

/// A PostgreSQL mirror database.
#[derive(Clone)]
pub(crate) struct PgDb {
    inner: Arc<PgInner>,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl PgDb {
    /// Connects, creates the schema if one is named, and applies migrations. The URL's TLS
    /// and pool parameters are described in [`super::tls`] and the module docs.
    pub async fn open(url: &str, schema: Option<String>) -> Result<PgDb> {
        let (db, mode) = Self::pools(url, schema)?;
        let mut conn = db.get().await.map_err(|e| with_tls_hint(e, mode))?;
        db.migrate(&mut conn).await?;
        Ok(db)
    }

    /// The pools, without connecting (a test and bench helper).
    #[cfg(feature = "test-util")]
    fn open_unmigrated(url: &str) -> Result<PgDb> {
        Ok(Self::pools(url, None)?.0)
    }

    fn pools(url: &str, schema: Option<String>) -> Result<(PgDb, tls::SslMode)> {
        let (mut config, rustls, params) = configure(url)?;
        if let Some(schema) = &schema {
            // Every connection starts in the schema (created below if needed). The name is a
            // plain identifier (checked when the URL was parsed); quoted, it keeps its case.
            let options = match config.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={}", quote_ident(schema)),
                _ => format!("-c search_path={}", quote_ident(schema)),
            };
            config.options(&options);
        }
        let connect = config.get_connect_timeout().copied().unwrap_or(Duration::from_secs(10));
        let wait = params.pool_timeout.unwrap_or(DEFAULT_POOL_TIMEOUT);
        let max = params.pool_max_size.unwrap_or(DEFAULT_POOL_MAX);
        let work = pool(manager(config.clone(), rustls.as_ref()), max, wait, connect)?;
        let inbox = pool(manager(config, rustls.as_ref()), (max / 2).max(2), wait, connect)?;
        Ok((PgDb { inner: Arc::new(PgInner { schema, work, inbox }) }, params.tls.mode))
    }

    async fn migrate(&self, conn: &mut PgConn) -> Result<()> {
        if let Some(schema) = &self.inner.schema {
            // Several processes may start at once: creating the schema can race.
            let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
            if let Err(e) = conn.batch(&create).await {
                if !e.is_unique_violation() {
                    return Err(e);
                }
            }
        }
        conn.batch("BEGIN").await?;
        let result = async {
            let c = conn.client()?;
            c.execute(MIGRATION_LOCK, &[]).await?;
            c.batch_execute(CREATE_MIGRATIONS).await?;
            let current: i64 = c.query_one(SCHEMA_VERSION, &[]).await?.try_get(0)?;
            let latest = migrations::latest(POSTGRES);
            if current > latest {
                return Err(Error::Migration(format!(
                    "the database is at schema version {current}, newer than this build knows ({latest}): \
                     upgrade moneyhub-mirror"
                )));
            }
            for (version, name, sql) in POSTGRES.iter().filter(|m| m.0 > current) {
                c.batch_execute(sql)
                    .await
                    .map_err(|e| Error::Migration(format!("version {version} ({name}): {e}")))?;
                c.execute(RECORD_MIGRATION, &[version, name, &now_ms()]).await?;
            }
            Ok(())
        }
        .await;
        conn.end(result).await
    }

    async fn get(&self) -> Result<PgConn> {
        let object = self.inner.work.get().await.map_err(pool_error)?;
        Ok(PgConn { object: Some(object), in_transaction: false })
    }

    async fn get_inbox(&self) -> Result<PgConn> {
        let object = self.inner.inbox.get().await.map_err(pool_error)?;
        Ok(PgConn { object: Some(object), in_transaction: false })
    }
}

impl Store for PgDb {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn lifecycle(&self) -> &dyn super::lifecycle::LifecycleStore {
        self
    }

    #[cfg(feature = "test-util")]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn schema_version(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move { Ok(self.get().await?.value(SCHEMA_VERSION, &[]).await?.unwrap_or(0)) })
    }

    fn insert_inbox(&self, e: NewInboxEvent) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { inbox::insert(&mut self.get_inbox().await?, &e).await })
    }

    fn insert_inbox_batch(&self, events: Vec<NewInboxEvent>) -> BoxFuture<'_, Result<Vec<bool>>> {
        // One statement: one transaction, one WAL flush for the batch.
        Box::pin(async move { inbox::insert_batch(&mut self.get_inbox().await?, &events).await })
    }

    fn compact_counts(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { inbox::compact_counts(&mut self.get().await?).await })
    }

    fn claim_next<'a>(
        &'a self,
        request: ClaimRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<Box<dyn ClaimedUser>>>> {
        Box::pin(async move {
            let claim = claim::next(self, request).await?;
            Ok(claim.map(|c| Box::new(c) as Box<dyn ClaimedUser>))
        })
    }

    fn readiness(&self) -> BoxFuture<'_, Result<Readiness>> {
        Box::pin(async move {
            let tables: Vec<&str> = migrations::TABLES.to_vec();
            let mut c = self.get().await?;
            let rows = c.query(READINESS, &[&tables]).await?;
            let r = rows.first().ok_or_else(|| Error::data("no row from the readiness query"))?;
            Ok(Readiness { missing_tables: r.try_get(0)?, read_only: r.try_get(1)? })
        })
    }

    fn repair_schema(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut c = self.get().await?;
            c.batch("BEGIN").await?;
            let result = async {
                c.client()?.execute(MIGRATION_LOCK, &[]).await?;
                c.client()?.batch_execute(&migrations::repair_sql(POSTGRES)).await?;
                inbox::repair_due(&mut c).await?;
                c.execute(inbox::RECOUNT, &[]).await?;
                Ok(())
            }
            .await;
            c.end(result).await
        })
    }

    fn purge_applied(&self, before_ms: i64, batch: usize) -> BoxFuture<'_, Result<(u64, u64)>> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        Box::pin(async move { inbox::purge_applied(&mut self.get().await?, before_ms, batch).await })
    }

    fn queue_counts(&self) -> BoxFuture<'_, Result<QueueCounts>> {
        Box::pin(async move { inbox::queue_counts(&mut self.get().await?).await })
    }

    fn repair_due(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move { inbox::repair_due(&mut self.get().await?).await })
    }

    fn lock_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Box<dyn ClaimedUser>>> {
        Box::pin(async move { Ok(Box::new(claim::lock(self, user_id).await?) as Box<dyn ClaimedUser>) })
    }

    fn add_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { inbox::add_user(&mut self.get().await?, user_id).await })
    }

    fn settle_applied<'a>(&'a self, seqs: &'a [i64]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { inbox::settle_applied(&mut self.get().await?, seqs).await })
    }

    fn requeue_parked<'a>(&'a self, user_id: Option<&'a str>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { inbox::requeue_parked(&mut self.get().await?, user_id).await })
    }

    fn known_users(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move { status::known_users(&mut self.get().await?).await })
    }

    fn status<'a>(&'a self, query: &'a StatusQuery) -> BoxFuture<'a, Result<Status>> {
        Box::pin(async move { status::status(&mut self.get().await?, query).await })
    }

    fn inbox_counts(&self) -> BoxFuture<'_, Result<InboxCounts>> {
        Box::pin(async move { inbox::counts(&mut self.get().await?).await })
    }

    fn transactions_page<'a>(
        &'a self,
        user_id: Option<&'a str>,
        after: Option<(&'a str, &'a str)>,
        include_deleted: bool,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredTx>>> {
        Box::pin(async move {
            let mut c = self.get().await?;
            transactions::page(&mut c, user_id, after, include_deleted, limit).await
        })
    }

    fn guard_load<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move { guard::load(&mut self.get().await?, connection_id).await })
    }

    fn guard_update<'a>(&'a self, connection_id: &'a str, change: GuardChange) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut c = self.get().await?;
            c.batch("BEGIN").await?;
            let result = guard::update(&mut c, connection_id, change).await;
            c.end(result).await
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.work.retain(|_, _| false);
            self.inner.inbox.retain(|_, _| false);
        })
    }
}

/// Upserts rows with the mirror's own statement in one transaction on a fresh connection:
/// the bench's ceiling.
#[cfg(feature = "test-util")]
pub(crate) async fn raw_upsert(db: &PgDb, rows: &[super::TxRow]) -> Result<()> {
    let mut c = db.get().await?;
    c.batch("BEGIN").await?;
    let refs: Vec<&super::TxRow> = rows.iter().collect();
    for chunk in refs.chunks(transactions::BATCH) {
        transactions::upsert_batch(&mut c, chunk, now_ms()).await?;
    }
    c.batch("COMMIT").await
}

/// The plans of the transaction pages' statements, with sequential and bitmap scans and sorts
/// discouraged (a test's table is too small for the planner to prefer an index otherwise).
#[cfg(feature = "test-util")]
pub(crate) async fn page_plans(db: &PgDb) -> Result<Vec<String>> {
    let mut c = db.get().await?;
    c.batch("BEGIN").await?;
    // What remains is an index scan in the query's order if one exists, a sort otherwise.
    c.batch("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        .await?;
    let mut plans = Vec::new();
    for sql in [transactions::PAGE_OF_USER, transactions::PAGE_ALL] {
        let explain = format!("EXPLAIN {sql}");
        let rows = c.client()?.query(explain.as_str(), &[&"u", &"i", &false, &10i64]).await?;
        let lines: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<std::result::Result<_, _>>()?;
        plans.push(lines.join("\n"));
    }
    c.batch("ROLLBACK").await?;
    Ok(plans)
}

/// Drops a schema and everything in it (test and bench clean-up).
#[cfg(feature = "test-util")]
pub(crate) async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    if !super::valid_schema_name(schema) {
        return Err(Error::Invalid(format!("bad schema name {schema:?}")));
    }
    let db = PgDb::open_unmigrated(url)?;
    let c = db.get().await?;
    c.client()?.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(schema))).await?;
    drop(c);
    db.close().await;
    Ok(())
}
