//! Storage: one schema on SQLite (default, one file, WAL) or PostgreSQL (several processes
//! share one inbox), versioned migrations applied at open.
//!
//! [`Db`] is the database whatever its backend; the processor works on a [`Claim`]: exclusive
//! ownership of one user's pending events (and of that user's rows) until it is finished or
//! failed. Both hold a backend behind the storage contract (the `store` module: a database
//! trait and a claimed-user trait); the backends are private to this crate (their test and
//! bench helpers are in `moneyhub_mirror::testing`, behind the `test-util` feature). Adding a backend
//! is a file implementing the contract, a [`DbUrl`] form, and one line in [`Db::open_url`].
//! On PostgreSQL a claim is a row lock on the user (`FOR UPDATE SKIP LOCKED`) held by an open
//! transaction, so a crashed worker's claim ends with its connection; on SQLite (one process)
//! it is an in-memory set of busy users.
//!
//! # Claiming due rows by an indexed due time (the pattern)
//!
//! Work that comes due at a time (a user's pending events, a retry after back-off) is found
//! through a *queue table*, one row per unit of work, never by aggregating the history:
//!
//! * `mirror_users_due(user_id PRIMARY KEY, due_at_ms, oldest_pending_seq, oldest_pending_ms,
//!   attempts)` with an index on `(due_at_ms, oldest_pending_seq)`. A row exists while the user
//!   has pending events. `due_at_ms` is when it may next be claimed: the oldest pending event's
//!   arrival, or later while a failed attempt backs off.
//! * **Writers maintain the row in the transaction that makes the work**: the receiver stores
//!   an event and creates (or, on PostgreSQL, touches with `ON CONFLICT DO UPDATE`, which takes
//!   the row's lock) the user's row in one transaction.
//! * **A claim reads the index in due order** (`WHERE due_at_ms <= now ORDER BY due_at_ms
//!   LIMIT 1`), and locks the unit of work with `FOR UPDATE SKIP LOCKED` (on PostgreSQL the
//!   user's `mirror_users` row, joined; on SQLite the in-memory busy set): a unit held elsewhere
//!   or backing off is never in its way, so one failing user never delays another (no
//!   head-of-line blocking) and a poll costs the same whatever the number of workers.
//! * **The attempt is recorded before the work**: the claim writes the attempt number and moves
//!   `due_at_ms` past the back-off in a committed write, then returns. A database that cannot
//!   record it gets no work done (no API request spent); a crash mid-work still backs off.
//! * **The work per claim is bounded** (events per claim, and bytes of envelopes: see
//!   [`ClaimPolicy`]).
//! * **Finishing or failing ends the row's turn in the claim's transaction**: on success the
//!   row follows the next pending event (attempts reset) or is deleted; on failure the
//!   attempts and the back-off are written while the lock is still held, and released by the
//!   same commit. Deleting takes the row's lock first and looks for pending work in the next
//!   statement, so it cannot miss work a writer is adding (one of them waits for the other).
//! * A **repair** (`Db::repair_due`, run by `drain`) re-creates rows for work made behind the
//!   mirror's back; it reads only pending events, through their partial index.
//!
//! Another kind of due work (connection checks, an outbox) follows the same steps with its
//! own queue table: a key, a due time and its index, the attempt recorded before the work.
//!
//! # Figures kept, not counted (`mirror status`)
//!
//! A fleet's mirror holds hundreds of millions of transaction rows, so [`Db::status`] counts
//! none of them: every figure it shows is kept by whoever changes the data, in the same
//! transaction, and [`Db::status`] reads one row per user (bounded by
//! [`StatusQuery::limit`]) plus their sums.
//!
//! * Live transactions, tombstones, connections: columns of `mirror_users`, counted again
//!   over that user's rows only (its indexes) at the end of each write of a claim (the
//!   backends' `write_all`), which is the only writer of a user's transactions and
//!   connections. Not a trigger on `mirror_transactions`: a trigger runs once per row of a
//!   backfill (thousands a second), the count once per claim's write. On PostgreSQL the
//!   claim holds the user's row lock already, so the update waits for nobody.
//! * Pending events and the newest arrival: columns of the user's claim-queue row, which the
//!   receiver touches anyway in the statement that stores the event (no extra round trip);
//!   a re-queue or a settle adds or takes off what it moves (a delta under the row's lock),
//!   and a claim ending the row's turn counts the pending events again under the row's lock
//!   (see the pattern above) and carries the newest arrival to `mirror_users` before the row
//!   may go. The receiver never updates `mirror_users` rows: a claim may hold one for
//!   minutes (a backfill), and a webhook must not wait for it.

/// The text of [`KEEP_TRANSACTION_FIGURES`], with an index hint for the tombstones' count.
macro_rules! keep_transaction_figures {
    ($hint:literal) => {
        concat!(
            "UPDATE mirror_users SET (live, tombstones) =
       (SELECT n.c - d.c, d.c FROM (SELECT COUNT(*) AS c FROM mirror_transactions WHERE user_id = $1) AS n,
               (SELECT COUNT(*) AS c FROM mirror_transactions",
            $hint,
            " WHERE user_id = $1 AND deleted <> 0) AS d)
     WHERE user_id = $1"
        )
    };
}

/// A user's kept figures of transactions (migration 7), counted again over that user's rows
/// only, at the end of a claim's write (in its transaction): every row through the table's
/// `(user_id, id)` key (migration 8), the tombstones through their partial index
/// `mirror_transactions_tombstones`; never a scan of the table. (Not a trigger: one count per
/// claim's write costs less than a trigger per row of a backfill.) One text for both
/// backends: `$1` is PostgreSQL's placeholder and a parameter SQLite numbers 1; SQLite is
/// told which index counts the tombstones ([`KEEP_TRANSACTION_FIGURES_SQLITE`]).
#[cfg(feature = "postgres")]
pub(crate) const KEEP_TRANSACTION_FIGURES: &str = keep_transaction_figures!("");

/// [`KEEP_TRANSACTION_FIGURES`] for SQLite: its planner would count the tombstones over the
/// user's whole range of the table (the key it is ordered by since migration 8, every row
/// read whole) rather than through their partial index, which holds only the tombstones.
#[cfg(feature = "sqlite")]
pub(crate) const KEEP_TRANSACTION_FIGURES_SQLITE: &str =
    keep_transaction_figures!(" INDEXED BY mirror_transactions_tombstones");

/// A user's kept count of connections, counted again over its rows (`mirror_connections_user`);
/// both backends, as [`KEEP_TRANSACTION_FIGURES`].
pub(crate) const KEEP_CONNECTION_FIGURES: &str = "UPDATE mirror_users SET connections =
       (SELECT COUNT(*) FROM mirror_connections WHERE user_id = $1 AND removed = 0)
     WHERE user_id = $1";

pub(crate) mod claim;
pub(crate) mod lifecycle;
pub(crate) mod migrations;
/// The conflict clause of both backends' upserts, on their key (`"(user_id, id)"`: the table
/// is keyed by user since migration 8): a row replaces
/// the stored one only when its `dateModified` is newer (the rule itself is documented on
/// the SQLite `UPSERT`).
macro_rules! upsert_on_conflict {
    ($key:literal) => {
        concat!(
            "
     ON CONFLICT ",
            $key,
            " DO UPDATE SET
        user_id = excluded.user_id,
        account_id = excluded.account_id,
        connection_id = COALESCE(excluded.connection_id, mirror_transactions.connection_id),
        date_ms = excluded.date_ms,
        modified_ms = excluded.modified_ms,
        status = excluded.status,
        deleted = 0,
        raw = excluded.raw,
        updated_ms = excluded.updated_ms
     WHERE excluded.modified_ms > mirror_transactions.modified_ms"
        )
    };
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub mod rows;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
pub(crate) mod store;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod tls;

use std::fmt;
use std::sync::Arc;

use moneyhub_types::{AccountId, UserId};

use crate::error::{Error, Result};
pub use claim::ClaimPolicy;
#[cfg(feature = "postgres")]
pub(crate) use rows::parse_id;
pub(crate) use rows::state;
pub use rows::{
    ConnectionUpdate, InboxCounts, InboxEvent, LastEvent, LiveRow, LocalAccount, LocalConnection,
    NewInboxEvent, Status, StatusQuery, StoredTx, TxRow, UserStatus, Writes,
};
use store::{ClaimRequest, ClaimedUser, Store};
pub use store::{QueueCounts, Readiness};

/// Where the mirror's data lives, parsed from a URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// An SQLite file: `sqlite:PATH`, `sqlite://PATH` or a plain path.
    Sqlite {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A PostgreSQL database: `postgres://user@host:port/db`, optionally with
    /// `?schema=NAME` (this crate's own parameter: the tables live in that schema, created if
    /// needed), TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`: see [`tls`])
    /// and pool parameters (`pool_max_size`, `pool_timeout`: at most this many pooled
    /// connections, default 32; wait at most this many seconds for one, default 30). Other
    /// parameters go to the driver.
    Postgres {
        /// The connection URL without `schema`.
        url: String,
        /// The schema, if one was named.
        schema: Option<String>,
    },
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for DbUrl {
    /// The URL with any password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            DbUrl::Postgres { url, schema } => {
                write!(f, "{}", redact(url))?;
                if let Some(s) = schema {
                    write!(f, " (schema {s})")?;
                }
                Ok(())
            }
        }
    }
}

/// Query parameters of a PostgreSQL URL whose values are credentials or point at them
/// (libpq's names and their aliases): redacted wherever a URL is shown.
const SECRET_PARAMS: &[&str] = &["password", "sslpassword", "sslkey", "sslcert", "passfile", "sslcrl"];

/// Whether a URL query parameter carries a credential: one of libpq's credential parameters,
/// or any name that says it is one (`…pass…`, `…secret…`, `…token…`, `…key…`).
fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&n.as_str())
        || ["pass", "secret", "token", "key", "credential", "auth"].iter().any(|w| n.contains(w))
}

/// A URL with every credential-bearing part replaced by `***`: the password of
/// `user:pass@`, and the values of `password`, `sslpassword`, `sslkey`, `sslcert`,
/// `passfile` and any other parameter whose name says it is a secret (see
/// [`DbUrl`]'s `Display`). The fragment is dropped; unparsable input is not echoed.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.set_fragment(None);
            if u.query().is_some() {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if secret_param(&k) { "***".to_owned() } else { v.into_owned() };
                        (k.into_owned(), v)
                    })
                    .collect();
                if pairs.is_empty() {
                    u.set_query(None);
                } else {
                    u.query_pairs_mut().clear().extend_pairs(pairs);
                }
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// Whether `name` is a plain SQL identifier we are willing to use as a schema name.
pub fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

impl std::str::FromStr for DbUrl {
    type Err = Error;

    fn from_str(raw: &str) -> Result<DbUrl> {
        let s = raw.trim();
        let bad = |message: &str| Error::DbUrl { url: redact_any(s), message: message.to_owned() };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let mut url = url::Url::parse(s).map_err(|e| bad(&format!("not a URL ({e})")))?;
            let mut schema = None;
            let mut kept = Vec::new();
            for (k, v) in url.query_pairs() {
                if k == "schema" {
                    if !valid_schema_name(&v) {
                        return Err(bad("schema must be a plain identifier (letters, digits, _)"));
                    }
                    schema = Some(v.into_owned());
                } else {
                    kept.push((k.into_owned(), v.into_owned()));
                }
            }
            if kept.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(kept);
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("no host"));
            }
            // Our own parameters (TLS, pool) are checked here; the driver checks the rest now,
            // so a bad URL fails before anything runs. (A build without PostgreSQL refuses
            // the URL when it is opened.)
            #[cfg(feature = "postgres")]
            {
                let (driver_url, _) = tls::split(&url).map_err(|m| bad(&m))?;
                driver_url.as_str().parse::<tokio_postgres::Config>().map_err(|e| bad(&format!("{e}")))?;
            }
            return Ok(DbUrl::Postgres { url: url.to_string(), schema });
        }
        if looks_like_conninfo(s) {
            return Err(bad(
                "key=value connection strings are not supported: use postgres://user@host/db?...",
            ));
        }
        let path = if lower.starts_with("sqlite://") {
            &s[9..]
        } else if lower.starts_with("sqlite:") {
            &s[7..]
        } else if s.contains("://") {
            return Err(bad("unsupported scheme: use sqlite:PATH, a plain path, or postgres://..."));
        } else {
            s
        };
        if path.is_empty() || path == ":memory:" {
            return Err(bad("an SQLite file path is required (in-memory databases cannot be shared)"));
        }
        Ok(DbUrl::Sqlite { path: path.into() })
    }
}

/// Redacts a password in anything that looks like a URL, without echoing the rest when it
/// does not parse.
fn redact_any(s: &str) -> String {
    if s.contains("://") {
        redact(s)
    } else if looks_like_conninfo(s) {
        "<a key=value connection string>".to_owned()
    } else {
        s.to_owned()
    }
}

/// Whether `s` looks like libpq's `key=value` form (`host=… password=…`), which this crate
/// does not take (and must not echo, nor mistake for an SQLite file name).
fn looks_like_conninfo(s: &str) -> bool {
    s.split_whitespace().filter_map(|w| w.split_once('=')).any(|(k, _)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "host" | "hostaddr" | "port" | "dbname" | "user" | "password" | "sslmode" | "sslpassword"
        )
    })
}

/// The database behind a mirror, whichever backend holds it (each backend is a feature of
/// this crate: `sqlite`, `postgres`; both by default). Cheap to clone.
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
    policy: ClaimPolicy,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.store.file() {
            Some(path) => write!(f, "Db({} {})", self.store.backend(), path.display()),
            None => write!(f, "Db({})", self.store.backend()),
        }
    }
}

/// Exclusive ownership of one user's pending events and rows. Dropping it releases the user
/// (on PostgreSQL, rolling back whatever it wrote since its last commit).
pub struct Claim {
    held: Box<dyn ClaimedUser>,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("user_id", &self.user_id())
            .field("events", &self.events().len())
            .finish()
    }
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Db> {
        let parsed: DbUrl = url.parse()?;
        Self::open_url(&parsed).await
    }

    /// Opens a parsed URL: the one place where a backend is chosen.
    pub async fn open_url(url: &DbUrl) -> Result<Db> {
        let store: Arc<dyn Store> = match url {
            #[cfg(feature = "sqlite")]
            DbUrl::Sqlite { path } => Arc::new(sqlite::SqliteDb::open(path).await?),
            #[cfg(feature = "postgres")]
            DbUrl::Postgres { url, schema } => Arc::new(postgres::PgDb::open(url, schema.clone()).await?),
            #[allow(unreachable_patterns)]
            other => {
                let (kind, feature) = match other {
                    DbUrl::Sqlite { .. } => ("SQLite", "sqlite"),
                    DbUrl::Postgres { .. } => ("PostgreSQL", "postgres"),
                };
                return Err(Error::Invalid(format!(
                    "this build of moneyhub-mirror has no {kind} support (the `{feature}` feature is off)"
                )));
            }
        };
        repair_if_needed(store.as_ref()).await?;
        Ok(Db { store, policy: ClaimPolicy::default() })
    }

    /// Deletes applied inbox events and ledger rows applied before `before_ms`, at most
    /// `batch` of each, in one short transaction. Returns how many of each went.
    pub async fn purge_applied(&self, before_ms: i64, batch: usize) -> Result<(u64, u64)> {
        self.store.purge_applied(before_ms, batch).await
    }

    /// The work queue's counts (pending, retrying, parked, oldest pending), read through
    /// partial indexes: cheap at any history size.
    pub async fn queue_counts(&self) -> Result<QueueCounts> {
        self.store.queue_counts().await
    }

    /// Readiness without reading history: the required tables that are missing and whether
    /// the database refuses writes (see [`Readiness`]).
    pub async fn readiness(&self) -> Result<Readiness> {
        self.store.readiness().await
    }

    /// The same database with another claim policy (the mirror sets its own from
    /// [`crate::MirrorConfig`]: back-off and bytes per claim).
    pub fn with_claim_policy(mut self, policy: ClaimPolicy) -> Db {
        self.policy = policy;
        self
    }

    /// The claim policy in use.
    pub fn claim_policy(&self) -> ClaimPolicy {
        self.policy
    }

    /// Queues every user with pending events that has no claim-queue row (after events were
    /// made pending behind the mirror's back; run at start and by `drain`). Returns how many.
    pub async fn repair_due(&self) -> Result<u64> {
        self.store.repair_due().await
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// The file holding the database, when it is one (SQLite): for tools that open it
    /// themselves (a backup, a test planting a row).
    pub fn file(&self) -> Option<&std::path::Path> {
        self.store.file()
    }

    /// The applied schema version.
    pub async fn schema_version(&self) -> Result<i64> {
        self.store.schema_version().await
    }

    /// Stores a webhook; `false` when its id was already stored (a replay: nothing written).
    pub async fn insert_inbox(&self, event: NewInboxEvent) -> Result<bool> {
        self.store.insert_inbox(event).await
    }

    /// Stores webhooks with distinct ids in one transaction (one sync to disk): per webhook,
    /// `false` when its id was stored already. On an error nothing of the batch is stored.
    pub async fn insert_inbox_batch(&self, events: Vec<NewInboxEvent>) -> Result<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.store.insert_inbox_batch(events).await
    }

    /// How many group commits the receiver runs at once on this backend.
    /// Folds the inbox counts that `/metrics` and `mirror status` read into one row
    /// (PostgreSQL keeps one delta row per statement that changes them; the workers call this
    /// every few seconds). A no-op on SQLite.
    pub async fn compact_counts(&self) -> Result<()> {
        self.store.compact_counts().await
    }

    /// Claims a due user that no one else holds: its retry time has come (`now_ms`) and its
    /// oldest pending event arrived by `arrived_by_ms`; the claim has up to `limit` of its
    /// pending events in arrival order, within the policy's bytes per claim (only the first
    /// when it failed before). The attempt is recorded before the claim is returned: the
    /// user's due time moves past the policy's back-off, and comes back when the claim
    /// finishes.
    pub async fn claim_next(&self, now_ms: i64, arrived_by_ms: i64, limit: usize) -> Result<Option<Claim>> {
        self.claim_next_excluding(now_ms, arrived_by_ms, limit, &[]).await
    }

    /// [`Db::claim_next`], passing over the users in `exclude` (users this process holds
    /// back in memory because the database could not record their failure).
    pub async fn claim_next_excluding(
        &self,
        now_ms: i64,
        arrived_by_ms: i64,
        limit: usize,
        exclude: &[String],
    ) -> Result<Option<Claim>> {
        let request = ClaimRequest { now_ms, arrived_by_ms, limit, exclude, policy: self.policy };
        let held = self.store.claim_next(request).await?;
        Ok(held.map(|held| Claim { held }))
    }

    /// Waits for and takes one user (no events), for on-demand backfill and reconciliation.
    pub async fn lock_user(&self, user_id: &UserId) -> Result<Claim> {
        Ok(Claim { held: self.store.lock_user(user_id.as_str()).await? })
    }

    /// Users the mirror knows (from webhooks or reconciliation).
    pub async fn known_users(&self) -> Result<Vec<String>> {
        self.store.known_users().await
    }

    /// Counts for `mirror status`: every user's totals, the inbox's, and at most
    /// `query.limit` users (or the one asked for), users with pending events first. Every
    /// figure is read from what the writers keep (see the `migrations` module, version 7):
    /// no history is counted, so it costs the same at any size of the mirror (a read of the
    /// per-user rows, one per user).
    pub async fn status(&self, query: &StatusQuery) -> Result<Status> {
        self.store.status(query).await
    }

    /// Inbox and ledger counts.
    pub async fn inbox_counts(&self) -> Result<InboxCounts> {
        self.store.inbox_counts().await
    }

    /// A page of stored transactions ordered by `(user_id, id)`, after `after` (exclusive),
    /// optionally of one user and optionally with tombstones.
    pub async fn transactions_page(
        &self,
        user_id: Option<&str>,
        after: Option<(&str, &str)>,
        include_deleted: bool,
        limit: usize,
    ) -> Result<Vec<StoredTx>> {
        self.store.transactions_page(user_id, after, include_deleted, limit).await
    }

    /// The live transactions of a user.
    pub async fn live_transactions(&self, user_id: &str) -> Result<Vec<StoredTx>> {
        let mut out = Vec::new();
        loop {
            let after = out.last().map(|t: &StoredTx| (t.user_id.clone(), t.id.clone()));
            let page = self
                .transactions_page(
                    Some(user_id),
                    after.as_ref().map(|(u, i)| (u.as_str(), i.as_str())),
                    false,
                    5000,
                )
                .await?;
            let n = page.len();
            out.extend(page);
            if n < 5000 {
                return Ok(out);
            }
        }
    }

    /// The stored guard record of a connection (JSON), if any.
    pub async fn guard_load(&self, connection_id: &str) -> Result<Option<String>> {
        self.store.guard_load(connection_id).await
    }

    /// Reads the guard record of a connection and writes what `change` returns (`None`: no
    /// change; `Some(None)`: delete) in one transaction that no other update of the record,
    /// from any process, can interleave with.
    pub async fn guard_update<F>(&self, connection_id: &str, change: F) -> Result<()>
    where
        F: FnOnce(Option<String>) -> Option<Option<String>> + Send + 'static,
    {
        self.store.guard_update(connection_id, Box::new(change)).await
    }

    /// Replaces (or with `None` deletes) the guard record of a connection.
    pub async fn guard_save(&self, connection_id: &str, record: Option<String>) -> Result<()> {
        self.guard_update(connection_id, move |_| Some(record)).await
    }

    /// Marks as applied those of these pending events the ledger says were applied already
    /// (after a commit refused because an event was in the ledger). Returns how many.
    pub async fn settle_applied(&self, seqs: &[i64]) -> Result<u64> {
        self.store.settle_applied(seqs).await
    }

    /// Puts parked events (of one user, or of everyone) back in the queue with their attempts
    /// reset, and lifts their users' retry back-off. Returns how many.
    pub async fn requeue_parked(&self, user_id: Option<&str>) -> Result<u64> {
        self.store.requeue_parked(user_id).await
    }

    /// Remembers a user (found through the users API, say) so reconciliation covers it.
    pub async fn add_user(&self, user_id: &UserId) -> Result<()> {
        self.store.add_user(user_id.as_str()).await
    }

    /// Evaluates and writes observations of a user's connections in one transaction (the
    /// lifecycle loop; see [`crate::lifecycle`]).
    pub async fn lifecycle_observe(
        &self,
        user_id: &str,
        batch: crate::lifecycle::LifecycleWrites,
    ) -> Result<()> {
        self.store.lifecycle().lc_observe(vec![(user_id.to_owned(), batch)]).await
    }

    /// Evaluates and writes observations of several users' connections (`(user id, writes)`,
    /// in order) in one transaction: a bulk load (an import, a benchmark). On PostgreSQL the
    /// whole batch costs two round trips (read and lock, write), whatever its size; keep
    /// batches to a few thousand connections.
    pub async fn lifecycle_observe_many(
        &self,
        users: Vec<(String, crate::lifecycle::LifecycleWrites)>,
    ) -> Result<()> {
        self.store.lifecycle().lc_observe(users).await
    }

    /// One batch of the lifecycle retention: deletes up to `limit` connections removed before
    /// `before_ms` (the mirror's clock) with their history, due time and notifications, and up
    /// to `limit` parked notifications written before `before_ms`, in one short transaction.
    /// Returns `(connections, parked notifications)` deleted.
    pub async fn purge_lifecycle(&self, before_ms: i64, limit: usize) -> Result<(u64, u64)> {
        self.store.lifecycle().lc_purge(before_ms, limit).await
    }

    /// Claims up to `limit` connection states due by `batch.now_ms` (rows another transaction
    /// holds are skipped), re-evaluates and writes them in one transaction.
    pub async fn lifecycle_due(
        &self,
        batch: crate::lifecycle::LifecycleWrites,
        limit: usize,
    ) -> Result<Vec<crate::lifecycle::DueResult>> {
        self.store.lifecycle().lc_due(batch, limit).await
    }

    /// The stored connection states (advice included) of the filter's user, or of everyone,
    /// ordered by user and connection. Only the filter's user and `include_removed` apply
    /// here; [`crate::Mirror::actions`] applies the rest.
    pub async fn connection_states(
        &self,
        filter: &crate::lifecycle::ActionFilter,
    ) -> Result<Vec<crate::lifecycle::ConnectionState>> {
        self.store.lifecycle().lc_states(filter).await
    }

    /// The connections (of `user`, if given) that `fragment` designates, at most `limit`,
    /// ordered: those whose UUID part starts with it (case-insensitive), and, for fragments
    /// of 8 characters or more, those whose id contains it (the CLI's rule for a connection
    /// given by a prefix). A full id finds itself.
    pub async fn find_connections(
        &self,
        fragment: &str,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let escaped: String = fragment
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let contains =
            if fragment.chars().count() >= 8 { format!("%{escaped}%") } else { format!("{escaped}%") };
        let patterns = [format!("%:{escaped}%"), format!("{escaped}%"), contains];
        self.store.lifecycle().lc_find(patterns, user, limit).await
    }

    /// A connection's history of states (status, error, extended status, action), oldest first.
    pub async fn connection_history(
        &self,
        connection_id: &str,
    ) -> Result<Vec<crate::lifecycle::HistoryEntry>> {
        self.store.lifecycle().lc_history(connection_id).await
    }

    /// Connections by action and by status, the notification outbox, rows due by `now_ms`.
    pub async fn lifecycle_counts(&self, now_ms: i64) -> Result<crate::lifecycle::LifecycleCounts> {
        self.store.lifecycle().lc_counts(now_ms).await
    }

    /// Puts parked notifications back in the queue, attempts reset, due at `now_ms`.
    pub async fn requeue_parked_notifications(&self, now_ms: i64) -> Result<u64> {
        self.store.lifecycle().outbox_requeue(now_ms).await
    }

    pub(crate) async fn outbox_next(
        &self,
        now_ms: i64,
        wall_ms: i64,
        lease_until_wall_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::lifecycle::OutboxItem>> {
        self.store.lifecycle().outbox_next(now_ms, wall_ms, lease_until_wall_ms, limit).await
    }

    pub(crate) async fn outbox_settle(&self, seq: i64, outcome: lifecycle::Settle) -> Result<()> {
        self.store.lifecycle().outbox_settle(seq, outcome).await
    }

    /// Closes pooled connections (PostgreSQL); SQLite files close when the last handle goes.
    pub async fn close(&self) {
        self.store.close().await
    }
}

/// At start-up: re-creates required tables that are missing (dropped by hand, a partial
/// restore) with the idempotent form of the migrations, or fails with a message naming them.
async fn repair_if_needed(store: &dyn Store) -> Result<()> {
    let found = store.readiness().await?;
    if found.missing_tables.is_empty() {
        return Ok(());
    }
    let missing = found.missing_tables.join(", ");
    tracing::warn!(tables = %missing, "required tables are missing; re-creating them");
    if let Err(e) = store.repair_schema().await {
        return Err(Error::Migration(format!(
            "required tables are missing ({missing}) and could not be re-created: {e}"
        )));
    }
    let again = store.readiness().await?;
    if !again.missing_tables.is_empty() {
        return Err(Error::Migration(format!(
            "required tables are missing ({}) and could not be re-created",
            again.missing_tables.join(", ")
        )));
    }
    Ok(())
}

/// Upserts rows through a PostgreSQL mirror's own batch statement (for `testing`).
#[cfg(all(feature = "test-util", feature = "postgres"))]
pub(crate) async fn postgres_upsert(db: &Db, rows: &[TxRow]) -> Result<()> {
    let Some(pg) = db.store.as_any().downcast_ref::<postgres::PgDb>() else {
        return Err(Error::Invalid("not a PostgreSQL mirror".into()));
    };
    postgres::raw_upsert(pg, rows).await
}

/// See [`crate::testing::postgres_page_plans`].
#[cfg(all(feature = "postgres", feature = "test-util"))]
pub(crate) async fn postgres_page_plans(db: &Db) -> Result<Vec<String>> {
    let Some(pg) = db.store.as_any().downcast_ref::<postgres::PgDb>() else {
        return Err(Error::Invalid("not a PostgreSQL mirror".into()));
    };
    postgres::page_plans(pg).await
}

impl Claim {
    /// The user (the inbox's key: `""` for events that name none).
    pub fn user_id(&self) -> &str {
        self.held.user_id()
    }

    /// The claimed events, in arrival order.
    pub fn events(&self) -> &[InboxEvent] {
        self.held.events()
    }

    /// The user's connections as stored.
    pub async fn connections(&mut self) -> Result<Vec<LocalConnection>> {
        self.held.connections().await
    }

    /// The user's accounts as stored.
    pub async fn accounts(&mut self) -> Result<Vec<LocalAccount>> {
        self.held.accounts().await
    }

    /// The live transactions of these accounts.
    pub async fn live_rows(&mut self, account_ids: &[AccountId]) -> Result<Vec<LiveRow>> {
        self.held.live_rows(account_ids).await
    }

    /// Writes an intermediate batch (large backfills). On SQLite it is committed at once; on
    /// PostgreSQL it commits with the claim.
    pub async fn apply(&mut self, writes: Writes) -> Result<()> {
        self.held.apply(writes).await
    }

    /// Writes the last batch and marks the claimed events applied (one ledger row each: a
    /// second application would violate its primary key and roll everything back), all in
    /// one transaction. The user is released when the claim is dropped. On an error nothing
    /// of it is written and the claim is still held: give it up with [`Claim::fail`] (a
    /// failed commit counts as a failed attempt, with back-off and parking), or drop it.
    pub async fn finish(&mut self, writes: Writes, worker: &str, now_ms: i64) -> Result<()> {
        self.held.finish(writes, worker, now_ms).await
    }

    /// Gives the claim up after an error: nothing it wrote in this attempt is kept
    /// (PostgreSQL) or harmful (SQLite: upserts are idempotent), the events' attempt counts
    /// grow, the user waits `retry_after_ms`, and events past `max_attempts` are parked.
    pub async fn fail(self, error: &str, now_ms: i64, retry_after_ms: i64, max_attempts: u32) -> Result<()> {
        self.held.fail(error, now_ms, retry_after_ms, max_attempts).await
    }
}

/// Truncates an error message to keep rows small.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(matches!("sqlite:/tmp/x.db".parse::<DbUrl>(), Ok(DbUrl::Sqlite { .. })));
        assert!(matches!("sqlite:///tmp/x.db".parse::<DbUrl>(), Ok(DbUrl::Sqlite { .. })));
        assert!(matches!("./x.db".parse::<DbUrl>(), Ok(DbUrl::Sqlite { .. })));
        assert!("".parse::<DbUrl>().is_err());
        assert!("sqlite:".parse::<DbUrl>().is_err());
        assert!("mysql://h/db".parse::<DbUrl>().is_err());
        let pg: DbUrl =
            "postgres://u:secret@127.0.0.1:5432/test?schema=abc&connect_timeout=3".parse().unwrap();
        match &pg {
            DbUrl::Postgres { url, schema } => {
                assert_eq!(schema.as_deref(), Some("abc"));
                assert!(!url.contains("schema"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!pg.to_string().contains("secret"));
        let e = "postgres://u:secret@h/db?schema=a;drop".parse::<DbUrl>().unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!("postgres://".parse::<DbUrl>().is_err());
    }

    #[test]
    fn every_credential_of_a_url_is_redacted() {
        let secrets =
            ["pw-userinfo", "pw-query", "pw-ssl", "key-path", "cert-path", "pass-file", "tok-value"];
        let forms = [
            "postgres://u:pw-userinfo@db.example:5432/app",
            "postgres://u@db.example/app?password=pw-query",
            "postgresql://u@db.example/app?sslmode=verify-full&sslkey=/keys/key-path&sslcert=/keys/cert-path",
            "postgres://u@db.example/app?password=pw-query&schema=s1",
            "postgres://u@db.example/app?application_name=a#pw-query",
            "postgres://u:pw-userinfo@db.example/app?password=pw-query&application_name=keep-me",
        ];
        for form in forms {
            let parsed: DbUrl = form.parse().unwrap_or_else(|e| panic!("{form}: {e}"));
            for shown in [parsed.to_string(), format!("{parsed:?}"), redact(form)] {
                for secret in secrets {
                    assert!(!shown.contains(secret), "{secret} shown in {shown} (from {form})");
                }
                assert!(shown.contains("db.example"), "{shown}");
            }
        }
        let shown = "postgres://u:pw-userinfo@db.example/app?password=pw-query&application_name=keep-me"
            .parse::<DbUrl>()
            .unwrap()
            .to_string();
        assert_eq!(shown, "postgres://u:***@db.example/app?password=***&application_name=keep-me");
        // Refused URLs are shown redacted too.
        for bad in [
            "postgres://u:pw-userinfo@/app?password=pw-query",
            "postgres://u@h/app?password=pw-query&schema=a;b",
            "host=db.example user=u password=pw-query",
            "postgres://u@db.example/app?PASSWORD=pw-query&schema=s1",
            "postgres://u@db.example/app?api_token=tok-value",
            "postgresql://u@db.example/app?sslmode=verify-full&sslpassword=pw-ssl&sslkey=/keys/key-path",
            "postgres://u:pw-userinfo@db.example/app?sslcert=/keys/cert-path&passfile=/home/u/pass-file",
        ] {
            let e = bad.parse::<DbUrl>().unwrap_err().to_string();
            for secret in secrets {
                assert!(!e.contains(secret), "{secret} shown in {e}");
            }
        }
    }

    #[test]
    fn clipping() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("ééé", 3), "é…");
    }
}
