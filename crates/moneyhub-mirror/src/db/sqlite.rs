//! SQLite: one file in WAL mode, two connections (the receiver's inbox writes are synced to
//! disk before the webhook is answered; the processor's writes use `synchronous=NORMAL`,
//! which in WAL mode survives a process crash and loses nothing a later synced commit does
//! not also flush). Blocking calls run on Tokio's blocking pool. One process owns a file:
//! claims are an in-memory set of busy users.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use futures_util::future::BoxFuture;
use moneyhub_types::AccountId;

use super::migrations::{self, SQLITE};
use super::store::{ClaimedUser, GuardChange, Store};
use super::{
    clip, state, ConnectionUpdate, InboxCounts, InboxEvent, LastEvent, LiveRow, LocalAccount,
    LocalConnection, NewInboxEvent, Status, StoredTx, UserStatus, Writes,
};
use crate::error::{DriverError, Error, Result};

#[doc(hidden)]
impl From<rusqlite::Error> for Error {
    /// Busy and locked (the write lock not granted within the busy timeout) mean the
    /// database is unavailable for now; a primary-key or unique constraint, an event applied
    /// twice.
    fn from(e: rusqlite::Error) -> Self {
        let code = e.sqlite_error().map(|f| (f.code, f.extended_code));
        let unavailable = matches!(
            code,
            Some((rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked, _))
        );
        let unique = matches!(
            code,
            Some((_, x)) if x == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY || x == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        );
        Error::Sqlite(DriverError::new(e.to_string(), unavailable, unique, Some(Box::new(e))))
    }
}

/// How long a connection waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS mirror_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 =
        tx.query_row("SELECT COALESCE(MAX(version), 0) FROM mirror_migrations", [], |r| r.get(0))?;
    let latest = migrations::latest(SQLITE);
    if current > latest {
        return Err(Error::Migration(format!(
            "the database is at schema version {current}, newer than this build knows ({latest}): upgrade moneyhub-mirror"
        )));
    }
    for (version, name, sql) in SQLITE.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql).map_err(|e| Error::Migration(format!("version {version} ({name}): {e}")))?;
        tx.execute(
            "INSERT INTO mirror_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            params![version, name, now_ms()],
        )?;
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
}

fn inbox_counts(c: &Connection) -> Result<InboxCounts> {
    let (total, pending, applied, failed): (i64, i64, i64, i64) = c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN state = 1 THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0)
         FROM mirror_inbox",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let ledger: i64 = c.query_row("SELECT COUNT(*) FROM mirror_applied_events", [], |r| r.get(0))?;
    let (retrying, oldest_pending_ms): (i64, Option<i64>) = c.query_row(
        "SELECT COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0), MIN(received_ms)
         FROM mirror_inbox WHERE state = 0",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(InboxCounts { total, pending, applied, failed, ledger, retrying, oldest_pending_ms })
}

fn pending_events(c: &Connection, user_id: &str, limit: usize) -> Result<Vec<InboxEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut events: Vec<InboxEvent> = c
        .prepare_cached(
            "SELECT seq, webhook_id, user_id, event_type, envelope, attempts FROM mirror_inbox
             WHERE user_id = ?1 AND state = 0 ORDER BY seq LIMIT ?2",
        )?
        .query_map(params![user_id, limit], |r| {
            Ok(InboxEvent {
                seq: r.get(0)?,
                webhook_id: r.get(1)?,
                user_id: r.get(2)?,
                event_type: r.get(3)?,
                envelope: r.get(4)?,
                attempts: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // An event that failed before is retried alone, so one bad event cannot hold others back.
    if events.first().is_some_and(|e| e.attempts > 0) {
        events.truncate(1);
    }
    Ok(events)
}

/// A claimed user on SQLite. Dropping it releases the user.
pub(crate) struct SqliteClaim {
    db: SqliteDb,
    user_id: String,
    events: Vec<InboxEvent>,
}

impl Drop for SqliteClaim {
    fn drop(&mut self) {
        self.db.inner.busy.lock().remove(&self.user_id);
        self.db.inner.released.notify_waiters();
    }
}

impl Store for SqliteDb {
    fn backend(&self) -> &'static str {
        "sqlite"
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
        Box::pin(async move {
            self.with_work(|c, _| {
                Ok(c.query_row("SELECT COALESCE(MAX(version), 0) FROM mirror_migrations", [], |r| r.get(0))?)
            })
            .await
        })
    }

    fn insert_inbox(&self, e: NewInboxEvent) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || {
            let _writer = inner.write.lock();
            let mut conn = inner.inbox.lock();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Events that name no user are kept under the empty key.
            let user_id = e.user_id.as_ref().map_or("", |u| u.as_str());
            tx.prepare_cached("INSERT INTO mirror_users (user_id, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING")?
                .execute(params![user_id, e.received_ms])?;
            let n = tx
                .prepare_cached(
                    "INSERT INTO mirror_inbox
                        (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (webhook_id) DO NOTHING",
                )?
                .execute(params![
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
        })
    }

    fn insert_inbox_batch(&self, events: Vec<NewInboxEvent>) -> BoxFuture<'_, Result<Vec<bool>>> {
        Box::pin(async move {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || {
                let _writer = inner.write.lock();
                let mut conn = inner.inbox.lock();
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut stored = Vec::with_capacity(events.len());
                {
                    let mut user = tx.prepare_cached(
                        "INSERT INTO mirror_users (user_id, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING",
                    )?;
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO mirror_inbox
                            (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (webhook_id) DO NOTHING",
                    )?;
                    for e in &events {
                        // Events that name no user are kept under the empty key.
                        let user_id = e.user_id.as_ref().map_or("", |u| u.as_str());
                        user.execute(params![user_id, e.received_ms])?;
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
        })
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
                let db = self.clone();
                let exclude = exclude.to_vec();
                let found = self
                    .with_work(move |c, inner| {
                        let candidates: Vec<String> = c
                    .prepare_cached(
                        "SELECT i.user_id FROM mirror_inbox i JOIN mirror_users u ON u.user_id = i.user_id
                         WHERE i.state = 0 AND u.not_before_ms <= ?1
                         GROUP BY i.user_id HAVING MIN(i.received_ms) <= ?2 ORDER BY MIN(i.seq) LIMIT 256",
                    )?
                    .query_map([now, arrived_by], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                        let chosen = {
                            let mut busy = inner.busy.lock();
                            let chosen =
                                candidates.into_iter().find(|u| !busy.contains(u) && !exclude.contains(u));
                            if let Some(u) = &chosen {
                                busy.insert(u.clone());
                            }
                            chosen
                        };
                        let Some(user_id) = chosen else { return Ok(None) };
                        match pending_events(c, &user_id, limit) {
                            Ok(events) => Ok(Some((user_id, events))),
                            Err(e) => {
                                inner.busy.lock().remove(&user_id);
                                Err(e)
                            }
                        }
                    })
                    .await?;
                Ok(found.map(|(user_id, events)| SqliteClaim { db, user_id, events }))
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
                loop {
                    let notified = self.inner.released.notified();
                    if self.inner.busy.lock().insert(user_id.to_owned()) {
                        return Ok(SqliteClaim {
                            db: self.clone(),
                            user_id: user_id.to_owned(),
                            events: Vec::new(),
                        });
                    }
                    // A release may have happened between the check and here: poll as a fallback.
                    let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
                }
            }
            .await;
            let claim = claim?;
            Ok(Box::new(claim) as Box<dyn ClaimedUser>)
        })
    }

    fn add_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let user_id = user_id.to_owned();
            self.with_work(move |c, inner| {
            let _writer = inner.write.lock();
            c.prepare_cached("INSERT INTO mirror_users (user_id, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING")?
                .execute(params![user_id, now_ms()])?;
            Ok(())
        })
        .await
        })
    }

    fn settle_applied<'a>(&'a self, seqs: &'a [i64]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let seqs = seqs.to_vec();
            self.with_work(move |c, inner| {
                let _writer = inner.write.lock();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut n = 0;
                {
                    let mut st = tx.prepare_cached(
                        "UPDATE mirror_inbox SET state = 1, applied_ms = ?2 WHERE seq = ?1 AND state = 0
                       AND webhook_id IN (SELECT webhook_id FROM mirror_applied_events)",
                    )?;
                    for seq in &seqs {
                        n += st.execute(params![seq, now_ms()])? as u64;
                    }
                }
                tx.commit()?;
                Ok(n)
            })
            .await
        })
    }

    fn requeue_parked<'a>(&'a self, user_id: Option<&'a str>) -> BoxFuture<'a, Result<u64>> {
        let user_id = user_id.map(str::to_owned);
        Box::pin(async move {
            self.with_work(move |c, inner| {
            let _writer = inner.write.lock();
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "UPDATE mirror_users SET not_before_ms = 0 WHERE user_id IN
                   (SELECT user_id FROM mirror_inbox WHERE state = 2 AND (?1 IS NULL OR user_id = ?1))",
            )?
            .execute(params![user_id])?;
            let n = tx
                .prepare_cached(
                    "UPDATE mirror_inbox SET state = 0, attempts = 0 WHERE state = 2 AND (?1 IS NULL OR user_id = ?1)",
                )?
                .execute(params![user_id])?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
        })
    }

    fn known_users(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            self.with_work(|c, _| {
                Ok(c.prepare_cached("SELECT user_id FROM mirror_users WHERE user_id <> '' ORDER BY user_id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
        })
    }

    fn status(&self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            self.with_work(|c, _| {
            let mut users: HashMap<String, UserStatus> = HashMap::new();
            let entry = |u: String| -> UserStatus { UserStatus { user_id: u, ..Default::default() } };
            let mut s = c.prepare("SELECT user_id FROM mirror_users WHERE user_id <> ''")?;
            for u in s.query_map([], |r| r.get::<_, String>(0))? {
                let u = u?;
                users.insert(u.clone(), entry(u));
            }
            let mut s = c.prepare(
                "SELECT user_id, SUM(CASE WHEN deleted = 0 THEN 1 ELSE 0 END), SUM(CASE WHEN deleted = 0 THEN 0 ELSE 1 END)
                 FROM mirror_transactions GROUP BY user_id",
            )?;
            for row in s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))? {
                let (u, live, dead) = row?;
                let e = users.entry(u.clone()).or_insert_with(|| entry(u));
                e.live = live;
                e.tombstones = dead;
            }
            let mut s = c.prepare("SELECT user_id, COUNT(*) FROM mirror_connections WHERE removed = 0 GROUP BY user_id")?;
            for row in s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (u, n) = row?;
                users.entry(u.clone()).or_insert_with(|| entry(u)).connections = n;
            }
            let mut s = c.prepare(
                "SELECT user_id, SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), MAX(received_ms) FROM mirror_inbox GROUP BY user_id",
            )?;
            for row in s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))? {
                let (u, pending, last) = row?;
                if u.is_empty() {
                    continue;
                }
                let e = users.entry(u.clone()).or_insert_with(|| entry(u));
                e.pending = pending;
                e.last_event_ms = last;
            }
            let counts = inbox_counts(c)?;
            let oldest_pending_ms: Option<i64> =
                c.query_row("SELECT MIN(received_ms) FROM mirror_inbox WHERE state = 0", [], |r| r.get(0))?;
            let last_event = c
                .query_row(
                    "SELECT received_ms, event_type, user_id, webhook_id FROM mirror_inbox ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok(LastEvent { received_ms: r.get(0)?, event_type: r.get(1)?, user_id: r.get(2)?, webhook_id: r.get(3)? }),
                )
                .optional()?;
            Ok(Status::assemble(users, &counts, oldest_pending_ms, last_event))
        })
        .await
        })
    }

    fn inbox_counts(&self) -> BoxFuture<'_, Result<InboxCounts>> {
        Box::pin(async move { self.with_work(|c, _| inbox_counts(c)).await })
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
            let after = after.map(|(u, i)| (u.to_owned(), i.to_owned()));
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            self.with_work(move |c, _| {
                let (au, ai) = after.unzip();
                let mut s = c.prepare_cached(
                "SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw
                 FROM mirror_transactions
                 WHERE (?1 IS NULL OR user_id = ?1)
                   AND (?2 IS NULL OR user_id > ?2 OR (user_id = ?2 AND id > ?3))
                   AND (?4 OR deleted = 0)
                 ORDER BY user_id, id LIMIT ?5",
            )?;
                let rows = s
                    .query_map(params![user_id, au, ai, include_deleted, limit], |r| {
                        Ok(StoredTx {
                            id: r.get(0)?,
                            user_id: r.get(1)?,
                            account_id: r.get(2)?,
                            connection_id: r.get(3)?,
                            date_ms: r.get(4)?,
                            modified_ms: r.get(5)?,
                            status: r.get(6)?,
                            deleted: r.get::<_, i64>(7)? != 0,
                            raw: r.get(8)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            })
            .await
        })
    }

    fn guard_load<'a>(&'a self, connection_id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let id = connection_id.to_owned();
            self.with_work(move |c, _| {
                Ok(c.prepare_cached("SELECT record FROM mirror_guard WHERE connection_id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?)
            })
            .await
        })
    }

    fn guard_update<'a>(&'a self, connection_id: &'a str, change: GuardChange) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let id = connection_id.to_owned();
            self.with_work(move |c, inner| {
            let _writer = inner.write.lock();
            // IMMEDIATE takes SQLite's write lock before the read: another process's update of
            // the record waits until this one commits.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = tx
                .prepare_cached("SELECT record FROM mirror_guard WHERE connection_id = ?1")?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            match change(current) {
                None => {}
                Some(Some(r)) => {
                    tx.prepare_cached(
                        "INSERT INTO mirror_guard (connection_id, record, updated_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (connection_id) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms",
                    )?
                    .execute(params![id, r, now_ms()])?;
                }
                Some(None) => {
                    tx.prepare_cached("DELETE FROM mirror_guard WHERE connection_id = ?1")?.execute([&id])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
        })
    }
}

impl ClaimedUser for SqliteClaim {
    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn events(&self) -> &[InboxEvent] {
        &self.events
    }

    fn connections(&mut self) -> BoxFuture<'_, Result<Vec<LocalConnection>>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            self.db
                .with_work(move |c, _| {
                    Ok(c.prepare_cached(
                        "SELECT connection_id, backfilled, watermark_ms, last_full_ms, removed
                     FROM mirror_connections WHERE user_id = ?1 ORDER BY connection_id",
                    )?
                    .query_map([user], |r| {
                        Ok(LocalConnection {
                            connection_id: id_at(r, 0)?,
                            backfilled: r.get::<_, i64>(1)? != 0,
                            watermark_ms: r.get(2)?,
                            last_full_ms: r.get(3)?,
                            removed: r.get::<_, i64>(4)? != 0,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?)
                })
                .await
        })
    }

    fn accounts(&mut self) -> BoxFuture<'_, Result<Vec<LocalAccount>>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            self.db
            .with_work(move |c, _| {
                Ok(c.prepare_cached(
                    "SELECT account_id, connection_id, removed FROM mirror_accounts WHERE user_id = ?1 ORDER BY account_id",
                )?
                .query_map([user], |r| {
                    Ok(LocalAccount { account_id: id_at(r, 0)?, connection_id: id_at(r, 1)?, removed: r.get::<_, i64>(2)? != 0 })
                })?
                .collect::<rusqlite::Result<_>>()?)
            })
            .await
        })
    }

    fn live_rows<'a>(&'a mut self, account_ids: &'a [AccountId]) -> BoxFuture<'a, Result<Vec<LiveRow>>> {
        Box::pin(async move {
            if account_ids.is_empty() {
                return Ok(Vec::new());
            }
            let accounts = account_ids.to_vec();
            self.db
            .with_work(move |c, _| {
                let marks = vec!["?"; accounts.len()].join(",");
                let sql = format!(
                    "SELECT id, modified_ms, date_ms FROM mirror_transactions WHERE account_id IN ({marks}) AND deleted = 0"
                );
                let mut s = c.prepare_cached(&sql)?;
                let rows = s.query_map(params_from_iter(accounts.iter().map(AccountId::as_str)), |r| {
                    Ok(LiveRow { id: id_at(r, 0)?, modified_ms: r.get(1)?, date_ms: r.get(2)? })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
        })
    }

    fn apply(&mut self, writes: Writes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if writes.is_empty() {
                return Ok(());
            }
            let user = self.user_id.clone();
            self.db
                .with_work(move |c, inner| {
                    let _writer = inner.write.lock();
                    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    write_all(&tx, &user, &writes, now_ms())?;
                    tx.commit()?;
                    Ok(())
                })
                .await
        })
    }

    fn finish<'a>(&'a mut self, writes: Writes, worker: &'a str, now: i64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            let events: Vec<(i64, String)> =
                self.events.iter().map(|e| (e.seq, e.webhook_id.clone())).collect();
            let worker = worker.to_owned();
            self.db
                .with_work(move |c, inner| {
                    let _writer = inner.write.lock();
                    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    write_all(&tx, &user, &writes, now)?;
                    mark_applied(&tx, &user, &events, &worker, now)?;
                    tx.commit()?;
                    Ok(())
                })
                .await
        })
    }

    fn fail<'a>(
        self: Box<Self>,
        error: &'a str,
        now: i64,
        retry_after_ms: i64,
        max_attempts: u32,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let user = self.user_id.clone();
            let seqs: Vec<i64> = self.events.iter().map(|e| e.seq).collect();
            let error = clip(error, 2000);
            let result = self
                .db
                .with_work(move |c, inner| {
                    let _writer = inner.write.lock();
                    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    {
                        let mut s = tx.prepare_cached(
                            "UPDATE mirror_inbox SET attempts = attempts + 1, last_error = ?2,
                                state = CASE WHEN attempts + 1 >= ?3 THEN 2 ELSE state END
                         WHERE seq = ?1 AND state = 0",
                        )?;
                        for seq in &seqs {
                            s.execute(params![seq, error, i64::from(max_attempts)])?;
                        }
                    }
                    tx.prepare_cached("UPDATE mirror_users SET not_before_ms = ?2 WHERE user_id = ?1")?
                        .execute(params![user, now.saturating_add(retry_after_ms)])?;
                    tx.commit()?;
                    Ok(())
                })
                .await;
            drop(self);
            result
        })
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

fn mark_applied(
    tx: &Transaction<'_>,
    user: &str,
    events: &[(i64, String)],
    worker: &str,
    now: i64,
) -> Result<()> {
    {
        let mut ledger = tx.prepare_cached(
            "INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut done = tx.prepare_cached(
            "UPDATE mirror_inbox SET state = ?2, applied_ms = ?3 WHERE seq = ?1 AND state = 0",
        )?;
        for (seq, webhook_id) in events {
            ledger.execute(params![webhook_id, seq, worker, now])?;
            if done.execute(params![seq, state::APPLIED, now])? != 1 {
                return Err(Error::data(format!("inbox event {seq} was no longer pending")));
            }
        }
    }
    tx.prepare_cached("UPDATE mirror_users SET not_before_ms = 0 WHERE user_id = ?1 AND not_before_ms <> 0")?
        .execute([user])?;
    Ok(())
}

fn write_all(tx: &Transaction<'_>, user: &str, w: &Writes, now: i64) -> Result<()> {
    if !w.accounts.is_empty() {
        let mut acc = tx.prepare_cached(
            "INSERT INTO mirror_accounts (account_id, user_id, connection_id, removed) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (account_id) DO UPDATE SET connection_id = excluded.connection_id, removed = 0",
        )?;
        let mut move_rows = tx.prepare_cached(
            "UPDATE mirror_transactions SET connection_id = ?2 WHERE account_id = ?1 AND (connection_id IS NULL OR connection_id <> ?2)",
        )?;
        for (account, connection) in &w.accounts {
            acc.execute(params![account.as_str(), user, connection.as_str()])?;
            move_rows.execute(params![account.as_str(), connection.as_str()])?;
        }
    }
    if !w.upserts.is_empty() {
        upsert_rows(tx, &w.upserts, now)?;
    }
    if !w.tombstones.is_empty() {
        let mut tomb = tx.prepare_cached(
            "UPDATE mirror_transactions SET deleted = 1, modified_ms = MAX(modified_ms, ?2) + 1, updated_ms = ?3
             WHERE id = ?1 AND deleted = 0",
        )?;
        for (id, seen) in &w.tombstones {
            tomb.execute(params![id.as_str(), seen, now])?;
        }
    }
    for account in &w.dropped_accounts {
        tx.prepare_cached(
            "UPDATE mirror_transactions SET deleted = 1, modified_ms = modified_ms + 1, updated_ms = ?2
             WHERE account_id = ?1 AND deleted = 0",
        )?
        .execute(params![account.as_str(), now])?;
        tx.prepare_cached("UPDATE mirror_accounts SET removed = 1 WHERE account_id = ?1")?
            .execute([account.as_str()])?;
    }
    for connection in &w.purged_connections {
        tx.prepare_cached(
            "DELETE FROM mirror_transactions WHERE connection_id = ?1
                OR account_id IN (SELECT account_id FROM mirror_accounts WHERE connection_id = ?1)",
        )?
        .execute([connection.as_str()])?;
        tx.prepare_cached("UPDATE mirror_accounts SET removed = 1 WHERE connection_id = ?1")?
            .execute([connection.as_str()])?;
        tx.prepare_cached(
            "INSERT INTO mirror_connections (connection_id, user_id, first_seen_ms, removed) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (connection_id) DO UPDATE SET removed = 1",
        )?
        .execute(params![connection.as_str(), user, now])?;
    }
    for c in &w.connections {
        write_connection(tx, user, c, now)?;
    }
    Ok(())
}

fn write_connection(tx: &Transaction<'_>, user: &str, c: &ConnectionUpdate, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO mirror_connections
            (connection_id, user_id, name, status, first_seen_ms, backfilled, watermark_ms, last_full_ms, last_reconciled_ms, removed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)
         ON CONFLICT (connection_id) DO UPDATE SET
            name = COALESCE(excluded.name, name),
            status = COALESCE(excluded.status, status),
            backfilled = MAX(backfilled, excluded.backfilled),
            watermark_ms = CASE WHEN excluded.watermark_ms IS NULL THEN watermark_ms
                                WHEN watermark_ms IS NULL OR excluded.watermark_ms > watermark_ms THEN excluded.watermark_ms
                                ELSE watermark_ms END,
            last_full_ms = CASE WHEN excluded.last_full_ms IS NULL THEN last_full_ms
                                WHEN last_full_ms IS NULL OR excluded.last_full_ms > last_full_ms THEN excluded.last_full_ms
                                ELSE last_full_ms END,
            last_reconciled_ms = COALESCE(excluded.last_reconciled_ms, last_reconciled_ms),
            removed = 0",
    )?
    .execute(params![
        c.connection_id.as_str(),
        user,
        c.name,
        c.status,
        now,
        i64::from(c.backfilled),
        c.watermark_ms,
        c.last_full_ms,
        c.last_reconciled_ms
    ])?;
    Ok(())
}

/// The upsert: a row replaces the stored one only when its `dateModified` is newer, so an
/// older version never overwrites a newer one and a tombstone only comes back with a version
/// newer than the one it buried (Moneyhub moves `dateModified` on restore).
pub(crate) const UPSERT: &str = concat!(
    "INSERT INTO mirror_transactions
        (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9)",
    upsert_on_conflict!()
);

fn upsert_rows(tx: &rusqlite::Transaction<'_>, rows: &[super::TxRow], now: i64) -> Result<()> {
    let mut up = tx.prepare_cached(UPSERT)?;
    for r in rows {
        up.execute(params![
            r.id.as_str(),
            r.user_id.as_str(),
            r.account_id.as_ref().map(|a| a.as_str()),
            r.connection_id.as_ref().map(|c| c.as_str()),
            r.date_ms,
            r.modified_ms,
            r.status,
            r.raw,
            now
        ])?;
    }
    Ok(())
}

/// Upserts rows with the mirror's own statement in one transaction: the bench's ceiling.
#[cfg(feature = "test-util")]
pub(crate) fn raw_upsert(conn: &mut Connection, rows: &[super::TxRow]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    upsert_rows(&tx, rows, now_ms())?;
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
