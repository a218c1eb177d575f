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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use futures_util::future::BoxFuture;
use moneyhub_types::AccountId;
use tokio_postgres::error::SqlState;

use super::migrations::{self, POSTGRES};
use super::store::{ClaimedUser, GuardChange, Store};
use super::tls;
use super::{
    clip, parse_id, state, ConnectionUpdate, InboxCounts, InboxEvent, LastEvent, LiveRow, LocalAccount,
    LocalConnection, NewInboxEvent, Status, StoredTx, TxRow, UserStatus, Writes,
};
use crate::error::{DriverError, Error, Result};

#[doc(hidden)]
impl From<tokio_postgres::Error> for Error {
    /// The server's message and SQLSTATE when it sent one (the driver prints "db error"
    /// alone), else the driver's error and its causes. Unavailable: a closed or lost
    /// connection, a connection exception (SQLSTATE class 08) or a server shutting down
    /// (57P01-57P03).
    fn from(e: tokio_postgres::Error) -> Self {
        let message = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => {
                let mut s = e.to_string();
                let mut cur = std::error::Error::source(&e);
                while let Some(c) = cur {
                    s.push_str(": ");
                    s.push_str(&c.to_string());
                    cur = c.source();
                }
                s
            }
        };
        let code = e.code().map(SqlState::code);
        let unavailable = e.is_closed()
            || code.is_some_and(|c| c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03"))
            || (e.as_db_error().is_none()
                && std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()));
        let unique = e.code() == Some(&SqlState::UNIQUE_VIOLATION);
        Error::Postgres(DriverError::new(message, unavailable, unique, Some(Box::new(e))))
    }
}

/// Adds a hint about TLS to a connection error that TLS explains: a certificate that failed
/// verification, or a server that refuses unencrypted connections.
fn with_tls_hint(e: Error, mode: tls::SslMode) -> Error {
    let Error::Postgres(driver) = &e else { return e };
    let text = driver.message().to_owned();
    let lower = text.to_ascii_lowercase();
    let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
        Some(format!(
            "the server's TLS certificate was not accepted with sslmode={}: check sslrootcert (the CA that \
             signed it) and that the URL's host is a name the certificate holds (verify-full)",
            mode.as_str()
        ))
    } else if lower.contains("no encryption") || lower.contains("ssl off") {
        Some(format!(
            "the server refuses unencrypted connections (sslmode={}): use sslmode=require, verify-ca or verify-full",
            mode.as_str()
        ))
    } else if lower.contains("server does not support tls") || lower.contains("does not support ssl") {
        Some(format!(
            "the server does not offer TLS, which sslmode={} requires: enable ssl on the server, or use sslmode=prefer",
            mode.as_str()
        ))
    } else {
        None
    };
    match hint {
        Some(hint) => Error::PostgresTls { message: format!("{text} ({hint})") },
        None => e,
    }
}

/// Default most connections of the processors and readers (`pool_max_size`).
const DEFAULT_POOL_MAX: usize = 32;
/// Default wait for a free connection (`pool_timeout`).
const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows per batch statement.
const BATCH: usize = 5000;

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

/// The driver's configuration, the TLS connector's configuration and our own parameters of a
/// URL (after `schema` was taken out).
fn configure(url: &str) -> Result<(tokio_postgres::Config, Option<rustls::ClientConfig>, tls::Params)> {
    let bad = |message: String| Error::DbUrl { url: super::redact(url), message };
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
    let (driver_url, params) = tls::split(&parsed).map_err(bad)?;
    let mut config: tokio_postgres::Config = driver_url.as_str().parse().map_err(|e| bad(format!("{e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("moneyhub-mirror");
    }
    config.ssl_mode(tls::driver_mode(params.tls.mode));
    let rustls = tls::client_config(&params.tls).map_err(bad)?;
    Ok((config, rustls, params))
}

fn manager(config: tokio_postgres::Config, rustls: Option<&rustls::ClientConfig>) -> Manager {
    let mc = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    match rustls {
        Some(c) => Manager::from_config(config, tokio_postgres_rustls::MakeRustlsConnect::new(c.clone()), mc),
        None => Manager::from_config(config, tokio_postgres::NoTls, mc),
    }
}

fn pool(manager: Manager, max_size: usize, wait: Duration, connect: Duration) -> Result<Pool> {
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(wait))
        // Opening includes the TLS handshake and authentication: the driver's own connect
        // timeout bounds the TCP part, this the whole.
        .create_timeout(Some(connect.saturating_mul(2)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Invalid(format!("PostgreSQL pool: {e}")))
}

/// A pool error as this crate's error: the server's or driver's error when there is one,
/// else what the pool could not do.
fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(pg) => pg.into(),
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            Error::unavailable("timed out waiting for a free PostgreSQL connection (pool_timeout)")
        }
        PoolError::Timeout(_) => Error::unavailable("timed out connecting to PostgreSQL"),
        other => Error::Unavailable(DriverError::new(
            format!("PostgreSQL pool: {other}"),
            true,
            false,
            Some(Box::new(other)),
        )),
    }
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
            if let Err(e) = conn.batch(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema))).await
            {
                if !e.is_unique_violation() {
                    return Err(e);
                }
            }
        }
        conn.batch("BEGIN").await?;
        let result = async {
            let c = conn.client()?;
            c.execute("SELECT pg_advisory_xact_lock(hashtext(COALESCE(current_schema(), '') || '.mirror_migrations'))", &[])
                .await?;
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS mirror_migrations (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
            )
            .await?;
            let row = c.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM mirror_migrations", &[]).await?;
            let current: i64 = row.try_get(0)?;
            let latest = migrations::latest(POSTGRES);
            if current > latest {
                return Err(Error::Migration(format!(
                    "the database is at schema version {current}, newer than this build knows ({latest}): upgrade moneyhub-mirror"
                )));
            }
            for (version, name, sql) in POSTGRES.iter().filter(|m| m.0 > current) {
                c.batch_execute(sql).await.map_err(|e| Error::Migration(format!("version {version} ({name}): {e}")))?;
                c.execute(
                    "INSERT INTO mirror_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
                    &[version, name, &now_ms()],
                )
                .await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => conn.batch("COMMIT").await,
            Err(e) => {
                let _ = conn.batch("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn get(&self) -> Result<PgConn> {
        let object = self.inner.work.get().await.map_err(pool_error)?;
        Ok(PgConn { object: Some(object), in_transaction: false })
    }

    async fn get_inbox(&self) -> Result<PgConn> {
        let object = self.inner.inbox.get().await.map_err(pool_error)?;
        Ok(PgConn { object: Some(object), in_transaction: false })
    }

    /// Runs `f` on a pooled connection outside any transaction.
    async fn with<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(
            &'c mut PgConn,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'c>>,
    {
        let mut conn = self.get().await?;
        f(&mut conn).await
    }
}

fn stored_tx(r: &tokio_postgres::Row) -> Result<StoredTx> {
    Ok(StoredTx {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        account_id: r.try_get(2)?,
        connection_id: r.try_get(3)?,
        date_ms: r.try_get(4)?,
        modified_ms: r.try_get(5)?,
        status: r.try_get(6)?,
        deleted: r.try_get::<_, i32>(7)? != 0,
        raw: r.try_get(8)?,
    })
}

async fn inbox_counts(c: &mut PgConn) -> Result<InboxCounts> {
    let rows = c
        .query(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 0), COUNT(*) FILTER (WHERE state = 1),
                    COUNT(*) FILTER (WHERE state = 2), (SELECT COUNT(*) FROM mirror_applied_events),
                    COUNT(*) FILTER (WHERE state = 0 AND attempts > 0),
                    MIN(received_ms) FILTER (WHERE state = 0)
             FROM mirror_inbox",
            &[],
        )
        .await?;
    let r = rows.first().ok_or_else(|| Error::data("no row from a COUNT query"))?;
    Ok(InboxCounts {
        total: r.try_get(0)?,
        pending: r.try_get(1)?,
        applied: r.try_get(2)?,
        failed: r.try_get(3)?,
        ledger: r.try_get(4)?,
        retrying: r.try_get(5)?,
        oldest_pending_ms: r.try_get(6)?,
    })
}

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
}

impl Drop for PgClaim {
    fn drop(&mut self) {
        // Not finished: dropping the client closes the connection; the server rolls back.
        self.conn.take();
    }
}

impl Store for PgDb {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    #[cfg(feature = "test-util")]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn schema_version(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            self.with(|c| {
                Box::pin(async move {
                    let rows = c
                        .query("SELECT COALESCE(MAX(version), 0)::BIGINT FROM mirror_migrations", &[])
                        .await?;
                    Ok(rows.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
                })
            })
            .await
        })
    }

    fn insert_inbox(&self, e: NewInboxEvent) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let mut c = self.get_inbox().await?;
            let signed = i32::from(e.signed);
            // Events that name no user are kept under the empty key.
            let user_id = e.user_id.as_ref().map_or("", |u| u.as_str());
            let result = c
                .execute(
                    "WITH u AS (INSERT INTO mirror_users (user_id, first_seen_ms) VALUES ($2, $8)
                            ON CONFLICT (user_id) DO NOTHING)
                 INSERT INTO mirror_inbox
                    (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (webhook_id) DO NOTHING",
                    &[
                        &e.webhook_id.as_str(),
                        &user_id,
                        &e.event_type.as_str(),
                        &e.envelope,
                        &e.body,
                        &e.content_type,
                        &signed,
                        &e.received_ms,
                    ],
                )
                .await;
            drop(c);
            Ok(result? == 1)
        })
    }

    fn insert_inbox_batch(&self, events: Vec<NewInboxEvent>) -> BoxFuture<'_, Result<Vec<bool>>> {
        Box::pin(async move {
            let mut c = self.get_inbox().await?;
            // Events that name no user are kept under the empty key.
            let ids: Vec<&str> = events.iter().map(|e| e.webhook_id.as_str()).collect();
            let users: Vec<&str> =
                events.iter().map(|e| e.user_id.as_ref().map_or("", |u| u.as_str())).collect();
            let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
            let envelopes: Vec<&str> = events.iter().map(|e| e.envelope.as_str()).collect();
            let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
            let content_types: Vec<&str> = events.iter().map(|e| e.content_type.as_str()).collect();
            let signed: Vec<i32> = events.iter().map(|e| i32::from(e.signed)).collect();
            let received: Vec<i64> = events.iter().map(|e| e.received_ms).collect();
            // One statement, one transaction, one WAL flush for the batch; `RETURNING` names
            // the ids written (the others were stored already).
            let result = c
                .query(
                    "WITH u AS (INSERT INTO mirror_users (user_id, first_seen_ms)
                            SELECT DISTINCT ON (user_id) user_id, r FROM unnest($2::TEXT[], $8::BIGINT[]) AS x(user_id, r)
                            ORDER BY user_id
                            ON CONFLICT (user_id) DO NOTHING)
                 INSERT INTO mirror_inbox
                    (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
                 SELECT w, u, t, e, b, c, s, r
                 FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BYTEA[], $6::TEXT[], $7::INT[], $8::BIGINT[])
                      WITH ORDINALITY AS x(w, u, t, e, b, c, s, r, o)
                 ORDER BY o
                 ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id",
                    &[&ids, &users, &types, &envelopes, &bodies, &content_types, &signed, &received],
                )
                .await;
            drop(c);
            let written: std::collections::HashSet<String> =
                result?.iter().map(|r| r.try_get::<_, String>(0)).collect::<std::result::Result<_, _>>()?;
            Ok(ids.iter().map(|id| written.contains(*id)).collect())
        })
    }

    fn committers(&self) -> usize {
        // The server groups concurrent commits' WAL flushes; a few transactions in flight
        // hide each other's round trips.
        4
    }

    fn claim_next<'a>(
        &'a self,
        now: i64,
        arrived_by: i64,
        limit: usize,
        exclude: &'a [String],
    ) -> BoxFuture<'a, Result<Option<Box<dyn ClaimedUser>>>> {
        Box::pin(async move {
            let claim: Result<_> = async move {
                let mut conn = self.get().await?;
                conn.batch("BEGIN").await?;
                let mut claim = PgClaim {
                    db: self.clone(),
                    conn: Some(conn),
                    user_id: String::new(),
                    events: Vec::new(),
                };
                let conn = claim.conn()?;
                let mut candidates: Vec<String> = conn
                    .query(
                        "SELECT user_id FROM mirror_inbox WHERE state = 0
                 GROUP BY user_id HAVING MIN(received_ms) <= $1 ORDER BY MIN(seq) LIMIT 256",
                        &[&arrived_by],
                    )
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                candidates.retain(|u| !exclude.contains(u));
                if candidates.is_empty() {
                    claim.release().await;
                    return Ok(None);
                }
                let rows = conn
                    .query(
                        "SELECT user_id FROM mirror_users WHERE user_id = ANY($1) AND not_before_ms <= $2
                 ORDER BY array_position($1, user_id) LIMIT 1 FOR UPDATE SKIP LOCKED",
                        &[&candidates, &now],
                    )
                    .await?;
                let Some(row) = rows.first() else {
                    claim.release().await;
                    return Ok(None);
                };
                let user_id: String = row.try_get(0)?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let mut events: Vec<InboxEvent> = conn
                    .query(
                        "SELECT seq, webhook_id, user_id, event_type, envelope, attempts FROM mirror_inbox
                 WHERE user_id = $1 AND state = 0 ORDER BY seq LIMIT $2",
                        &[&user_id, &limit],
                    )
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
                if events.first().is_some_and(|e| e.attempts > 0) {
                    events.truncate(1);
                }
                claim.user_id = user_id;
                claim.events = events;
                Ok(Some(claim))
            }
            .await;
            let claim = claim?;
            Ok(claim.map(|c| Box::new(c) as Box<dyn ClaimedUser>))
        })
    }

    fn lock_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Box<dyn ClaimedUser>>> {
        Box::pin(async move {
            let claim: Result<_> = async move {
                self.add_user(user_id).await?;
                let mut conn = self.get().await?;
                conn.batch("BEGIN").await?;
                let mut claim = PgClaim {
                    db: self.clone(),
                    conn: Some(conn),
                    user_id: user_id.to_owned(),
                    events: Vec::new(),
                };
                let owned = user_id.to_owned();
                claim
                    .conn()?
                    .query("SELECT user_id FROM mirror_users WHERE user_id = $1 FOR UPDATE", &[&owned])
                    .await?;
                Ok(claim)
            }
            .await;
            let claim = claim?;
            Ok(Box::new(claim) as Box<dyn ClaimedUser>)
        })
    }

    fn add_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let user_id = user_id.to_owned();
            self.with(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO mirror_users (user_id, first_seen_ms) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
                    &[&user_id, &now_ms()],
                )
                .await?;
                Ok(())
            })
        })
        .await
        })
    }

    fn settle_applied<'a>(&'a self, seqs: &'a [i64]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let seqs = seqs.to_vec();
            self.with(move |c| {
                Box::pin(async move {
                    c.execute(
                        "UPDATE mirror_inbox SET state = 1, applied_ms = $2 WHERE seq = ANY($1) AND state = 0
                       AND webhook_id IN (SELECT webhook_id FROM mirror_applied_events)",
                        &[&seqs, &now_ms()],
                    )
                    .await
                })
            })
            .await
        })
    }

    fn requeue_parked<'a>(&'a self, user_id: Option<&'a str>) -> BoxFuture<'a, Result<u64>> {
        let user_id = user_id.map(str::to_owned);
        Box::pin(async move {
            self.with(move |c| {
            Box::pin(async move {
                // One statement: the events and their users' back-off change together.
                let rows = c
                    .query(
                        "WITH r AS (UPDATE mirror_inbox SET state = 0, attempts = 0
                                    WHERE state = 2 AND ($1::TEXT IS NULL OR user_id = $1) RETURNING user_id),
                              u AS (UPDATE mirror_users SET not_before_ms = 0 WHERE user_id IN (SELECT user_id FROM r))
                         SELECT COUNT(*)::BIGINT FROM r",
                        &[&user_id],
                    )
                    .await?;
                let n: i64 = rows.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(0);
                Ok(u64::try_from(n).unwrap_or(0))
            })
        })
        .await
        })
    }

    fn known_users(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            self.with(|c| {
                Box::pin(async move {
                    let rows = c
                        .query("SELECT user_id FROM mirror_users WHERE user_id <> '' ORDER BY user_id", &[])
                        .await?;
                    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
                })
            })
            .await
        })
    }

    fn status(&self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            self.with(|c| {
            Box::pin(async move {
                let mut users: HashMap<String, UserStatus> = HashMap::new();
                let entry = |u: String| UserStatus { user_id: u, ..Default::default() };
                for r in c.query("SELECT user_id FROM mirror_users WHERE user_id <> ''", &[]).await? {
                    let u: String = r.try_get(0)?;
                    users.insert(u.clone(), entry(u));
                }
                for r in c
                    .query(
                        "SELECT user_id, COUNT(*) FILTER (WHERE deleted = 0), COUNT(*) FILTER (WHERE deleted <> 0)
                         FROM mirror_transactions GROUP BY user_id",
                        &[],
                    )
                    .await?
                {
                    let u: String = r.try_get(0)?;
                    let e = users.entry(u.clone()).or_insert_with(|| entry(u));
                    e.live = r.try_get(1)?;
                    e.tombstones = r.try_get(2)?;
                }
                for r in c
                    .query("SELECT user_id, COUNT(*) FROM mirror_connections WHERE removed = 0 GROUP BY user_id", &[])
                    .await?
                {
                    let u: String = r.try_get(0)?;
                    users.entry(u.clone()).or_insert_with(|| entry(u)).connections = r.try_get(1)?;
                }
                for r in c
                    .query(
                        "SELECT user_id, COUNT(*) FILTER (WHERE state = 0), MAX(received_ms) FROM mirror_inbox GROUP BY user_id",
                        &[],
                    )
                    .await?
                {
                    let u: String = r.try_get(0)?;
                    if u.is_empty() {
                        continue;
                    }
                    let e = users.entry(u.clone()).or_insert_with(|| entry(u));
                    e.pending = r.try_get(1)?;
                    e.last_event_ms = r.try_get(2)?;
                }
                let counts = inbox_counts(c).await?;
                let oldest = c.query("SELECT MIN(received_ms) FROM mirror_inbox WHERE state = 0", &[]).await?;
                let oldest_pending_ms: Option<i64> = oldest.first().map(|r| r.try_get(0)).transpose()?.flatten();
                let last = c
                    .query(
                        "SELECT received_ms, event_type, user_id, webhook_id FROM mirror_inbox ORDER BY seq DESC LIMIT 1",
                        &[],
                    )
                    .await?;
                let last_event = match last.first() {
                    Some(r) => Some(LastEvent {
                        received_ms: r.try_get(0)?,
                        event_type: r.try_get(1)?,
                        user_id: r.try_get(2)?,
                        webhook_id: r.try_get(3)?,
                    }),
                    None => None,
                };
                Ok(Status::assemble(users, &counts, oldest_pending_ms, last_event))
            })
        })
        .await
        })
    }

    fn inbox_counts(&self) -> BoxFuture<'_, Result<InboxCounts>> {
        Box::pin(async move { self.with(|c| Box::pin(inbox_counts(c))).await })
    }

    fn transactions_page<'a>(
        &'a self,
        user_id: Option<&'a str>,
        after: Option<(&'a str, &'a str)>,
        include_deleted: bool,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredTx>>> {
        Box::pin(async move {
            let user_id = user_id.map(str::to_owned);
            let (au, ai) = after.map(|(u, i)| (u.to_owned(), i.to_owned())).unzip();
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            self.with(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw
                         FROM mirror_transactions
                         WHERE ($1::TEXT IS NULL OR user_id = $1)
                           AND ($2::TEXT IS NULL OR (user_id, id) > ($2, $3::TEXT))
                           AND ($4 OR deleted = 0)
                         ORDER BY user_id COLLATE \"C\", id COLLATE \"C\" LIMIT $5",
                        &[&user_id, &au, &ai, &include_deleted, &limit],
                    )
                    .await?;
                rows.iter().map(stored_tx).collect()
            })
        })
        .await
        })
    }

    fn guard_load<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let id = connection_id.to_owned();
            self.with(move |c| {
                Box::pin(async move {
                    let rows =
                        c.query("SELECT record FROM mirror_guard WHERE connection_id = $1", &[&id]).await?;
                    Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
                })
            })
            .await
        })
    }

    fn guard_update<'a>(&'a self, connection_id: &'a str, change: GuardChange) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut c = self.get().await?;
            c.batch("BEGIN").await?;
            match guard_update_in(&mut c, connection_id, change).await {
                Ok(()) => c.batch("COMMIT").await,
                Err(e) => {
                    // A connection whose rollback failed is closed when dropped.
                    let _ = c.batch("ROLLBACK").await;
                    Err(e)
                }
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.work.retain(|_, _| false);
            self.inner.inbox.retain(|_, _| false);
        })
    }
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
            let rows = self
                .conn()?
                .query(
                    "SELECT connection_id, backfilled, watermark_ms, last_full_ms, removed
                 FROM mirror_connections WHERE user_id = $1 ORDER BY connection_id",
                    &[&user],
                )
                .await?;
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
            let rows = self
            .conn()?
            .query(
                "SELECT account_id, connection_id, removed FROM mirror_accounts WHERE user_id = $1 ORDER BY account_id",
                &[&user],
            )
            .await?;
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
            let rows = self
            .conn()?
            .query(
                "SELECT id, modified_ms, date_ms FROM mirror_transactions WHERE account_id = ANY($1) AND deleted = 0",
                &[&accounts],
            )
            .await?;
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
            write_all(self.conn()?, &user, &writes, now_ms()).await
        })
    }

    fn finish<'a>(&'a mut self, writes: Writes, worker: &'a str, now: i64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            let seqs: Vec<i64> = self.events.iter().map(|e| e.seq).collect();
            let ids: Vec<String> = self.events.iter().map(|e| e.webhook_id.clone()).collect();
            let worker = worker.to_owned();
            let conn = self.conn()?;
            write_all(conn, &user, &writes, now).await?;
            if !seqs.is_empty() {
                conn.execute(
                    "INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms)
                 SELECT w, s, $3, $4 FROM unnest($1::TEXT[], $2::BIGINT[]) AS u(w, s)",
                    &[&ids, &seqs, &worker, &now],
                )
                .await?;
                let applied = state::APPLIED;
                let n = conn
                .execute(
                    "UPDATE mirror_inbox SET state = $2, applied_ms = $3 WHERE seq = ANY($1) AND state = 0",
                    &[&seqs, &applied, &now],
                )
                .await?;
                if n != seqs.len() as u64 {
                    return Err(Error::data(format!(
                        "{} of {} claimed events were no longer pending",
                        (seqs.len() as u64).saturating_sub(n),
                        seqs.len()
                    )));
                }
                conn.execute(
                    "UPDATE mirror_users SET not_before_ms = 0 WHERE user_id = $1 AND not_before_ms <> 0",
                    &[&user],
                )
                .await?;
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
        Box::pin(async move {
            this.release().await;
            let seqs: Vec<i64> = this.events.iter().map(|e| e.seq).collect();
            let user = this.user_id.clone();
            let error = clip(error, 2000);
            let max = i32::try_from(max_attempts).unwrap_or(i32::MAX);
            let failed = state::FAILED;
            let until = now.saturating_add(retry_after_ms);
            this.db
                .with(move |c| {
                    Box::pin(async move {
                        c.execute(
                            "UPDATE mirror_inbox SET attempts = attempts + 1, last_error = $2,
                                state = CASE WHEN attempts + 1 >= $3 THEN $4 ELSE state END
                         WHERE seq = ANY($1) AND state = 0",
                            &[&seqs, &error, &max, &failed],
                        )
                        .await?;
                        c.execute(
                            "UPDATE mirror_users SET not_before_ms = $2 WHERE user_id = $1",
                            &[&user, &until],
                        )
                        .await?;
                        Ok(())
                    })
                })
                .await
        })
    }
}

async fn write_all(c: &mut PgConn, user: &str, w: &Writes, now: i64) -> Result<()> {
    let user = user.to_owned();
    for (account, connection) in &w.accounts {
        c.execute(
            "INSERT INTO mirror_accounts (account_id, user_id, connection_id, removed) VALUES ($1, $2, $3, 0)
             ON CONFLICT (account_id) DO UPDATE SET connection_id = excluded.connection_id, removed = 0",
            &[&account.as_str(), &user, &connection.as_str()],
        )
        .await?;
        c.execute(
            "UPDATE mirror_transactions SET connection_id = $2
             WHERE account_id = $1 AND connection_id IS DISTINCT FROM $2",
            &[&account.as_str(), &connection.as_str()],
        )
        .await?;
    }
    // One row per id per statement (ON CONFLICT may not touch a row twice): keep the newest.
    let mut newest: HashMap<&str, &TxRow> = HashMap::with_capacity(w.upserts.len());
    for r in &w.upserts {
        let e = newest.entry(r.id.as_str()).or_insert(r);
        if r.modified_ms > e.modified_ms {
            *e = r;
        }
    }
    let rows: Vec<&TxRow> = newest.into_values().collect();
    for chunk in rows.chunks(BATCH) {
        upsert_batch(c, chunk, now).await?;
    }
    for chunk in w.tombstones.chunks(BATCH) {
        let ids: Vec<&str> = chunk.iter().map(|t| t.0.as_str()).collect();
        let seen: Vec<i64> = chunk.iter().map(|t| t.1).collect();
        c.execute(
            "UPDATE mirror_transactions t SET deleted = 1, modified_ms = GREATEST(t.modified_ms, u.m) + 1, updated_ms = $3
             FROM unnest($1::TEXT[], $2::BIGINT[]) AS u(id, m) WHERE t.id = u.id AND t.deleted = 0",
            &[&ids, &seen, &now],
        )
        .await?;
    }
    for account in &w.dropped_accounts {
        c.execute(
            "UPDATE mirror_transactions SET deleted = 1, modified_ms = modified_ms + 1, updated_ms = $2
             WHERE account_id = $1 AND deleted = 0",
            &[&account.as_str(), &now],
        )
        .await?;
        c.execute("UPDATE mirror_accounts SET removed = 1 WHERE account_id = $1", &[&account.as_str()])
            .await?;
    }
    for connection in &w.purged_connections {
        c.execute(
            "DELETE FROM mirror_transactions WHERE connection_id = $1
                OR account_id IN (SELECT account_id FROM mirror_accounts WHERE connection_id = $1)",
            &[&connection.as_str()],
        )
        .await?;
        c.execute("UPDATE mirror_accounts SET removed = 1 WHERE connection_id = $1", &[&connection.as_str()])
            .await?;
        c.execute(
            "INSERT INTO mirror_connections (connection_id, user_id, first_seen_ms, removed) VALUES ($1, $2, $3, 1)
             ON CONFLICT (connection_id) DO UPDATE SET removed = 1",
            &[&connection.as_str(), &user, &now],
        )
        .await?;
    }
    for u in &w.connections {
        write_connection(c, &user, u, now).await?;
    }
    Ok(())
}

async fn write_connection(c: &mut PgConn, user: &String, u: &ConnectionUpdate, now: i64) -> Result<()> {
    let backfilled = i32::from(u.backfilled);
    c.execute(
        "INSERT INTO mirror_connections
            (connection_id, user_id, name, status, first_seen_ms, backfilled, watermark_ms, last_full_ms, last_reconciled_ms, removed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)
         ON CONFLICT (connection_id) DO UPDATE SET
            name = COALESCE(excluded.name, mirror_connections.name),
            status = COALESCE(excluded.status, mirror_connections.status),
            backfilled = GREATEST(mirror_connections.backfilled, excluded.backfilled),
            watermark_ms = GREATEST(mirror_connections.watermark_ms, excluded.watermark_ms),
            last_full_ms = GREATEST(mirror_connections.last_full_ms, excluded.last_full_ms),
            last_reconciled_ms = COALESCE(excluded.last_reconciled_ms, mirror_connections.last_reconciled_ms),
            removed = 0",
        &[
            &u.connection_id.as_str(),
            user,
            &u.name,
            &u.status,
            &now,
            &backfilled,
            &u.watermark_ms,
            &u.last_full_ms,
            &u.last_reconciled_ms,
        ],
    )
    .await?;
    Ok(())
}

/// The upsert of a batch: see the SQLite module for the rule (newer `dateModified` wins).
const UPSERT_BATCH: &str = concat!(
    "INSERT INTO mirror_transactions
        (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
     SELECT u.id, u.user_id, u.account_id, u.connection_id, u.date_ms, u.modified_ms, u.status, 0, u.raw, $9
     FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[], $8::TEXT[])
          AS u(id, user_id, account_id, connection_id, date_ms, modified_ms, status, raw)",
    upsert_on_conflict!()
);

async fn upsert_batch(c: &mut PgConn, rows: &[&TxRow], now: i64) -> Result<()> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let users: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
    let accounts: Vec<Option<&str>> =
        rows.iter().map(|r| r.account_id.as_ref().map(|a| a.as_str())).collect();
    let connections: Vec<Option<&str>> =
        rows.iter().map(|r| r.connection_id.as_ref().map(|c| c.as_str())).collect();
    let dates: Vec<i64> = rows.iter().map(|r| r.date_ms).collect();
    let modified: Vec<i64> = rows.iter().map(|r| r.modified_ms).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let raws: Vec<&str> = rows.iter().map(|r| r.raw.as_str()).collect();
    c.execute(
        UPSERT_BATCH,
        &[&ids, &users, &accounts, &connections, &dates, &modified, &statuses, &raws, &now],
    )
    .await?;
    Ok(())
}

/// The body of [`PgDb::guard_update`], inside its transaction.
async fn guard_update_in<F>(c: &mut PgConn, connection_id: &str, change: F) -> Result<()>
where
    F: FnOnce(Option<String>) -> Option<Option<String>>,
{
    let id = connection_id.to_owned();
    // A transaction-scoped advisory lock per connection id serialises updates across
    // processes, the first one included (when there is no row to lock yet).
    c.query("SELECT pg_advisory_xact_lock(7140, hashtext($1))", &[&id]).await?;
    let rows = c.query("SELECT record FROM mirror_guard WHERE connection_id = $1", &[&id]).await?;
    let current: Option<String> = rows.first().map(|r| r.try_get(0)).transpose()?;
    match change(current) {
        None => {}
        Some(Some(r)) => {
            c.execute(
                "INSERT INTO mirror_guard (connection_id, record, updated_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (connection_id) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms",
                &[&id, &r, &now_ms()],
            )
            .await?;
        }
        Some(None) => {
            c.execute("DELETE FROM mirror_guard WHERE connection_id = $1", &[&id]).await?;
        }
    }
    Ok(())
}

/// Upserts rows with the mirror's own statement in one transaction on a fresh connection:
/// the bench's ceiling.
#[cfg(feature = "test-util")]
pub(crate) async fn raw_upsert(db: &PgDb, rows: &[TxRow]) -> Result<()> {
    let mut c = db.get().await?;
    c.batch("BEGIN").await?;
    let refs: Vec<&TxRow> = rows.iter().collect();
    for chunk in refs.chunks(BATCH) {
        upsert_batch(&mut c, chunk, now_ms()).await?;
    }
    c.batch("COMMIT").await
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
