//! SQLite: one file in WAL mode, two connections (the receiver's inbox writes are synced to
//! disk before the webhook is answered; the processor's writes use `synchronous=NORMAL`,
//! which in WAL mode survives a process crash and loses nothing a later synced commit does
//! not also flush). Blocking calls run on Tokio's blocking pool. One process owns a file:
//! claims are an in-memory set of busy users.
//!
//! A file per concept: `inbox` (the receiver's writes, counts, settling and re-queueing),
//! `claim` (claiming users and the claimed user's reads and commits), `transactions` (the
//! rows a claim writes, exports), `status`, `guard`. This file opens the database and
//! implements the storage contract by calling them.

mod claim;
mod guard;
mod inbox;
mod lifecycle;
mod status;
mod transactions;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};

use futures_util::future::BoxFuture;

use super::migrations::{self, SQLITE};
use super::store::{ClaimRequest, ClaimedUser, GuardChange, QueueCounts, Readiness, Store};
use super::{InboxCounts, NewInboxEvent, Status, StatusQuery, StoredTx};
use crate::error::{DriverError, Error, Result};

#[doc(hidden)]
impl From<rusqlite::Error> for Error {
    /// Busy and locked (the write lock not granted within the busy timeout) mean the
    /// database is unavailable for now; a primary-key or unique constraint, an event applied
    /// twice.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
        let code = e.sqlite_error().map(|f| (f.code, f.extended_code));
        let unavailable = matches!(
            code,
            Some((rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked, _))
        );
        let unique = matches!(
            code,
            Some((_, x)) if x == SQLITE_CONSTRAINT_PRIMARYKEY || x == SQLITE_CONSTRAINT_UNIQUE
        );
        Error::Sqlite(DriverError::new(e.to_string(), unavailable, unique, Some(Box::new(e))))
    }
}

/// How long a connection waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The migrations table, created before anything else.
pub(crate) const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS mirror_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)";
/// The applied schema version.
const SCHEMA_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM mirror_migrations";
/// Whether a table exists.
const TABLE_EXISTS: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1";
/// Records an applied migration.
const RECORD_MIGRATION: &str =
    "INSERT INTO mirror_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)";

struct Inner {
    path: PathBuf,
    /// The receiver's connection (`synchronous=FULL`).
    inbox: Mutex<Connection>,
    /// The processor's and readers' connection (`synchronous=NORMAL`).
    work: Mutex<Connection>,
    /// Taken around every write transaction: SQLite has one writer at a time, and waiting
    /// here hands the lock over at once where SQLite's busy handler would sleep and poll.
    write: Mutex<()>,
    /// Users claimed by a worker of this process.
    busy: Mutex<HashSet<String>>,
    /// Signalled when a claim ends.
    released: tokio::sync::Notify,
}

/// An SQLite mirror database.
#[derive(Clone)]
pub(crate) struct SqliteDb {
    inner: Arc<Inner>,
}

fn open_connection(path: &Path, synchronous: &str) -> Result<Connection> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Invalid(format!("{} cannot use WAL mode (journal_mode={mode})", path.display())));
    }
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // A statement that writes several rows inside a transaction keeps the pages it changes in
    // a statement journal (to undo itself alone on a conflict), a temporary file by default:
    // one `pwrite` per page, 11% of the CPU of an SQLite backfill in a profile. In memory it
    // is bounded by what one statement changes (a batch of rows). Measured side by side
    // (`ingest_bench --users 200 --workers 2 --skip-webhooks`, four runs each, alternating):
    // the raw-upsert ceiling 84,197–94,962 rows/s against 76,730–88,811 with the file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(CREATE_MIGRATIONS)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(SCHEMA_VERSION, [], |r| r.get(0))?;
    let latest = migrations::latest(SQLITE);
    if current > latest {
        return Err(Error::Migration(format!(
            "the database is at schema version {current}, newer than this build knows ({latest}): \
             upgrade moneyhub-mirror"
        )));
    }
    for (version, name, sql) in SQLITE.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql).map_err(|e| Error::Migration(format!("version {version} ({name}): {e}")))?;
        tx.execute(RECORD_MIGRATION, params![version, name, now_ms()])?;
    }
    tx.commit()?;
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SqliteDb {
    /// Opens (creating) the file and applies migrations.
    pub async fn open(path: &Path) -> Result<SqliteDb> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.is_dir() {
                    return Err(Error::Invalid(format!("directory {} does not exist", parent.display())));
                }
            }
            let mut work = open_connection(&path, "NORMAL")?;
            migrate(&mut work)?;
            let inbox = open_connection(&path, "FULL")?;
            Ok(SqliteDb {
                inner: Arc::new(Inner {
                    path,
                    inbox: Mutex::new(inbox),
                    work: Mutex::new(work),
                    write: Mutex::new(()),
                    busy: Mutex::new(HashSet::new()),
                    released: tokio::sync::Notify::new(),
                }),
            })
        })
        .await
        .map_err(Error::task)?
    }

    /// Runs `f` on the processor's connection, on the blocking pool.
    async fn with_work<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.work.lock();
            f(&mut conn, &inner)
        })
        .await
        .map_err(Error::task)?
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) on the processor's connection,
    /// committed when it returns `Ok`.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.with_work(move |c, inner| {
            let _writer = inner.write.lock();
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

impl Store for SqliteDb {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn lifecycle(&self) -> &dyn super::lifecycle::LifecycleStore {
        self
    }

    #[cfg(feature = "test-util")]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.inner.path)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        // The file closes when the last handle goes.
        Box::pin(async {})
    }

    fn schema_version(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(self.with_work(|c, _| Ok(c.query_row(SCHEMA_VERSION, [], |r| r.get(0))?)))
    }

    fn insert_inbox(&self, e: NewInboxEvent) -> BoxFuture<'_, Result<bool>> {
        Box::pin(inbox::insert(self.inner.clone(), e))
    }

    fn insert_inbox_batch(&self, events: Vec<NewInboxEvent>) -> BoxFuture<'_, Result<Vec<bool>>> {
        Box::pin(inbox::insert_batch(self.inner.clone(), events))
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
        Box::pin(self.with_work(|c, _| {
            let mut missing_tables = Vec::new();
            let mut st = c.prepare_cached(TABLE_EXISTS)?;
            for table in migrations::TABLES {
                if !st.exists([table])? {
                    missing_tables.push((*table).to_owned());
                }
            }
            let read_only = c.is_readonly(rusqlite::MAIN_DB)?;
            Ok(Readiness { missing_tables, read_only })
        }))
    }

    fn repair_schema(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.write(|tx| {
            tx.execute_batch(&migrations::repair_sql(SQLITE))?;
            tx.execute_batch(inbox::REPAIR_DUE)?;
            tx.execute_batch(inbox::RECOUNT)?;
            Ok(())
        }))
    }

    fn purge_applied(&self, before_ms: i64, batch: usize) -> BoxFuture<'_, Result<(u64, u64)>> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        Box::pin(self.write(move |tx| inbox::purge_applied(tx, before_ms, batch)))
    }

    fn queue_counts(&self) -> BoxFuture<'_, Result<QueueCounts>> {
        Box::pin(self.with_work(|c, _| inbox::queue_counts(c)))
    }

    fn repair_due(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.write(|tx| Ok(tx.prepare_cached(inbox::REPAIR_DUE)?.execute([])? as u64)))
    }

    fn lock_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Box<dyn ClaimedUser>>> {
        Box::pin(async move { Ok(Box::new(claim::lock(self, user_id).await?) as Box<dyn ClaimedUser>) })
    }

    fn add_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<()>> {
        let user_id = user_id.to_owned();
        Box::pin(self.write(move |tx| inbox::add_user(tx, &user_id, now_ms())))
    }

    fn settle_applied<'a>(&'a self, seqs: &'a [i64]) -> BoxFuture<'a, Result<u64>> {
        let seqs = seqs.to_vec();
        Box::pin(self.write(move |tx| inbox::settle_applied(tx, &seqs, now_ms())))
    }

    fn requeue_parked<'a>(&'a self, user_id: Option<&'a str>) -> BoxFuture<'a, Result<u64>> {
        let user_id = user_id.map(str::to_owned);
        Box::pin(self.write(move |tx| inbox::requeue_parked(tx, user_id.as_deref())))
    }

    fn known_users(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.with_work(|c, _| status::known_users(c)))
    }

    fn status<'a>(&'a self, query: &'a StatusQuery) -> BoxFuture<'a, Result<Status>> {
        let query = query.clone();
        Box::pin(self.with_work(move |c, _| status::status(c, &query)))
    }

    fn inbox_counts(&self) -> BoxFuture<'_, Result<InboxCounts>> {
        Box::pin(self.with_work(|c, _| inbox::counts(c)))
    }

    fn transactions_page<'a>(
        &'a self,
        user_id: Option<&'a str>,
        after: Option<(&'a str, &'a str)>,
        include_deleted: bool,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredTx>>> {
        let user_id = user_id.map(str::to_owned);
        let after = after.map(|(u, i)| (u.to_owned(), i.to_owned()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(
            self.with_work(move |c, _| {
                transactions::page(c, user_id.as_deref(), after, include_deleted, limit)
            }),
        )
    }

    fn guard_load<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let id = connection_id.to_owned();
        Box::pin(self.with_work(move |c, _| guard::load(c, &id)))
    }

    fn guard_update<'a>(&'a self, connection_id: &'a str, change: GuardChange) -> BoxFuture<'a, Result<()>> {
        let id = connection_id.to_owned();
        // IMMEDIATE takes SQLite's write lock before the read: another process's update of
        // the record waits until this one commits.
        Box::pin(self.write(move |tx| guard::update(tx, &id, change, now_ms())))
    }
}

/// Column `i` of a row as a typed id (a stored id that does not parse is a conversion
/// failure: corrupt data).
fn id_at<T>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let raw: String = r.get(i)?;
    raw.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

/// Upserts rows with the mirror's own statement in one transaction: the bench's ceiling.
#[cfg(feature = "test-util")]
pub(crate) fn raw_upsert(conn: &mut Connection, rows: &[super::TxRow]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    transactions::upsert_rows(&tx, rows, now_ms())?;
    tx.commit()?;
    Ok(())
}

/// Opens a plain connection to a mirror file with the processor's settings (for the bench).
#[cfg(feature = "test-util")]
pub(crate) fn open_raw(path: &Path) -> Result<Connection> {
    let mut c = open_connection(path, "NORMAL")?;
    migrate(&mut c)?;
    Ok(c)
}
