//! Storage: one schema on SQLite (default, one file, WAL) or PostgreSQL (several processes
//! share one inbox), versioned migrations applied at open.
//!
//! [`Db`] dispatches to the backend. The processor works on a [`Claim`]: exclusive ownership
//! of one user's pending events (and of that user's rows) until it is finished or failed.
//! On PostgreSQL a claim is a row lock on the user (`FOR UPDATE SKIP LOCKED`) held by an open
//! transaction, so a crashed worker's claim ends with its connection; on SQLite (one process)
//! it is an in-memory set of busy users.

pub(crate) mod migrations;
/// The conflict clause of both backends' upserts: a row replaces the stored one only when
/// its `dateModified` is newer (the rule itself is documented on the SQLite `UPSERT`).
macro_rules! upsert_on_conflict {
    () => {
        "
     ON CONFLICT (id) DO UPDATE SET
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
    };
}

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "postgres")]
pub mod tls;

use std::fmt;

use crate::error::{Error, Result};

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
    /// and pool parameters (`pool_max_size`, `pool_timeout`: see [`postgres`]). Other
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

/// A webhook as the receiver stores it.
#[derive(Debug, Clone)]
pub struct NewInboxEvent {
    /// The delivery id (`id` / `jti`).
    pub webhook_id: String,
    /// The user (`userId` / `sub`), or `""` when the event names none.
    pub user_id: String,
    /// The event type, camelCase.
    pub event_type: String,
    /// The verified event as a JSON envelope `{id, eventType, userId, payload}`.
    pub envelope: String,
    /// The body exactly as delivered.
    pub body: Vec<u8>,
    /// The delivery's `Content-Type`.
    pub content_type: String,
    /// Whether it was a verified signed JWT.
    pub signed: bool,
    /// When it arrived (local clock, ms since the epoch).
    pub received_ms: i64,
}

/// A stored event waiting to be applied.
#[derive(Debug, Clone)]
pub struct InboxEvent {
    /// Arrival order.
    pub seq: i64,
    /// The delivery id.
    pub webhook_id: String,
    /// The user.
    pub user_id: String,
    /// The event type.
    pub event_type: String,
    /// The verified envelope (JSON).
    pub envelope: String,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// A transaction row to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRow {
    /// Transaction id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Account, when known.
    pub account_id: Option<String>,
    /// Connection, when known.
    pub connection_id: Option<String>,
    /// `date`, ms since the epoch.
    pub date_ms: i64,
    /// `dateModified`, ms since the epoch.
    pub modified_ms: i64,
    /// `posted` / `pending`.
    pub status: String,
    /// The transaction's JSON.
    pub raw: String,
}

/// A live transaction's identity, version and date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRow {
    /// Transaction id.
    pub id: String,
    /// `dateModified`, ms.
    pub modified_ms: i64,
    /// `date`, ms.
    pub date_ms: i64,
}

/// A stored transaction (live or tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTx {
    /// Transaction id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Account, when known.
    pub account_id: Option<String>,
    /// Connection, when known.
    pub connection_id: Option<String>,
    /// `date`, ms.
    pub date_ms: i64,
    /// `dateModified` of the last version seen, ms.
    pub modified_ms: i64,
    /// `posted` / `pending`.
    pub status: String,
    /// A tombstone (deleted at Moneyhub).
    pub deleted: bool,
    /// The JSON of the last version seen.
    pub raw: String,
}

/// What the mirror knows about one of a user's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConnection {
    /// Connection id.
    pub connection_id: String,
    /// Whether its first full listing is done.
    pub backfilled: bool,
    /// Moneyhub time up to which modifications are known to be mirrored.
    pub watermark_ms: Option<i64>,
    /// Moneyhub time of the last full reconciliation.
    pub last_full_ms: Option<i64>,
    /// Gone from Moneyhub (purged).
    pub removed: bool,
}

/// What the mirror knows about one of a user's accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAccount {
    /// Account id.
    pub account_id: String,
    /// Its connection.
    pub connection_id: String,
    /// Dropped at Moneyhub.
    pub removed: bool,
}

/// A connection row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionUpdate {
    /// Connection id.
    pub connection_id: String,
    /// Provider name.
    pub name: Option<String>,
    /// Moneyhub's `status`.
    pub status: Option<String>,
    /// First full listing done.
    pub backfilled: bool,
    /// New watermark (kept when lower than the stored one).
    pub watermark_ms: Option<i64>,
    /// Time of a full reconciliation just done.
    pub last_full_ms: Option<i64>,
    /// Time of the reconciliation just done.
    pub last_reconciled_ms: Option<i64>,
}

/// Everything one step of processing writes, applied in one database transaction.
#[derive(Debug, Default, Clone)]
pub struct Writes {
    /// Account → connection mappings seen at Moneyhub (moves rows with the account).
    pub accounts: Vec<(String, String)>,
    /// Transactions to upsert (a row only replaces one with an older `dateModified`).
    pub upserts: Vec<TxRow>,
    /// Transactions deleted at Moneyhub: `(id, dateModified of the last live version seen)`.
    /// A tombstone records "deleted after version M" as `M + 1 ms`: a fetch of version M or
    /// older never brings it back, a restore (whose `dateModified` moves on) does.
    pub tombstones: Vec<(String, i64)>,
    /// Accounts dropped at Moneyhub: their live transactions become tombstones.
    pub dropped_accounts: Vec<String>,
    /// Connections gone from Moneyhub: their transactions and accounts are purged.
    pub purged_connections: Vec<String>,
    /// Connection bookkeeping.
    pub connections: Vec<ConnectionUpdate>,
}

impl Writes {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.upserts.is_empty()
            && self.tombstones.is_empty()
            && self.dropped_accounts.is_empty()
            && self.purged_connections.is_empty()
            && self.connections.is_empty()
    }
}

/// Counts for `mirror status`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Per user.
    pub users: Vec<UserStatus>,
    /// Events waiting to be applied.
    pub inbox_pending: i64,
    /// Events parked after too many failed attempts.
    pub inbox_failed: i64,
    /// Events applied.
    pub inbox_applied: i64,
    /// Arrival time of the oldest pending event (local ms), if any.
    pub oldest_pending_ms: Option<i64>,
    /// The last event received.
    pub last_event: Option<LastEvent>,
    /// Live transactions.
    pub live: i64,
    /// Tombstones.
    pub tombstones: i64,
}

impl Status {
    /// The status from per-user counts and the inbox's figures (both backends).
    pub(crate) fn assemble(
        users: std::collections::HashMap<String, UserStatus>,
        counts: &InboxCounts,
        oldest_pending_ms: Option<i64>,
        last_event: Option<LastEvent>,
    ) -> Status {
        let mut users: Vec<UserStatus> = users.into_values().collect();
        users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Status {
            live: users.iter().map(|u| u.live).sum(),
            tombstones: users.iter().map(|u| u.tombstones).sum(),
            users,
            inbox_pending: counts.pending,
            inbox_failed: counts.failed,
            inbox_applied: counts.applied,
            oldest_pending_ms,
            last_event,
        }
    }
}

/// One user's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserStatus {
    /// User id.
    pub user_id: String,
    /// Live transactions.
    pub live: i64,
    /// Tombstones.
    pub tombstones: i64,
    /// Connections mirrored (not removed).
    pub connections: i64,
    /// Events waiting.
    pub pending: i64,
    /// Last event received for the user (local ms).
    pub last_event_ms: Option<i64>,
}

/// The last event received.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastEvent {
    /// When (local ms).
    pub received_ms: i64,
    /// Its type.
    pub event_type: String,
    /// Its user.
    pub user_id: String,
    /// Its delivery id.
    pub webhook_id: String,
}

/// Inbox counts (tests and monitoring).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    /// Rows in the inbox.
    pub total: i64,
    /// Pending.
    pub pending: i64,
    /// Applied.
    pub applied: i64,
    /// Parked.
    pub failed: i64,
    /// Rows in the applied-events ledger.
    pub ledger: i64,
    /// Pending events that failed at least once and wait for their retry.
    pub retrying: i64,
    /// Arrival time of the oldest pending event (local ms), if any.
    pub oldest_pending_ms: Option<i64>,
}

/// Inbox states.
pub(crate) mod state {
    pub const APPLIED: i32 = 1;
    #[cfg(feature = "postgres")]
    pub const FAILED: i32 = 2;
}

/// The database behind a mirror. Each backend is a feature of this crate (`sqlite`,
/// `postgres`; both by default).
#[derive(Clone)]
pub enum Db {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteDb),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgDb),
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => write!(f, "Db::Sqlite({})", d.path().display()),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => f.write_str("Db::Postgres"),
        }
    }
}

/// Exclusive ownership of one user's pending events and rows.
pub enum Claim {
    /// On SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteClaim),
    /// On PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::PgClaim>),
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

    /// Opens a parsed URL.
    pub async fn open_url(url: &DbUrl) -> Result<Db> {
        match url {
            #[cfg(not(feature = "sqlite"))]
            DbUrl::Sqlite { .. } => Err(Error::Invalid(
                "this build of moneyhub-mirror has no SQLite support (the `sqlite` feature is off)".into(),
            )),
            #[cfg(not(feature = "postgres"))]
            DbUrl::Postgres { .. } => Err(Error::Invalid(
                "this build of moneyhub-mirror has no PostgreSQL support (the `postgres` feature is off)"
                    .into(),
            )),
            #[cfg(feature = "sqlite")]
            DbUrl::Sqlite { path } => Ok(Db::Sqlite(sqlite::SqliteDb::open(path).await?)),
            #[cfg(feature = "postgres")]
            DbUrl::Postgres { url, schema } => {
                Ok(Db::Postgres(postgres::PgDb::open(url, schema.clone()).await?))
            }
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => "postgres",
        }
    }

    /// The applied schema version.
    pub async fn schema_version(&self) -> Result<i64> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.schema_version().await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.schema_version().await,
        }
    }

    /// Stores a webhook; `false` when its id was already stored (a replay: nothing written).
    pub async fn insert_inbox(&self, event: NewInboxEvent) -> Result<bool> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.insert_inbox(event).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.insert_inbox(event).await,
        }
    }

    /// Claims the user with the oldest pending event that no one else holds, whose retry
    /// time has come (`now_ms`) and whose first pending event arrived by `arrived_by_ms`,
    /// with up to `limit` of its pending events in arrival order.
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
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => {
                Ok(d.claim_next(now_ms, arrived_by_ms, limit, exclude).await?.map(Claim::Sqlite))
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => Ok(d
                .claim_next(now_ms, arrived_by_ms, limit, exclude)
                .await?
                .map(|c| Claim::Postgres(Box::new(c)))),
        }
    }

    /// Waits for and takes one user (no events), for on-demand backfill and reconciliation.
    pub async fn lock_user(&self, user_id: &str) -> Result<Claim> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => Ok(Claim::Sqlite(d.lock_user(user_id).await?)),
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => Ok(Claim::Postgres(Box::new(d.lock_user(user_id).await?))),
        }
    }

    /// Users the mirror knows (from webhooks or reconciliation).
    pub async fn known_users(&self) -> Result<Vec<String>> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.known_users().await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.known_users().await,
        }
    }

    /// Counts for `mirror status`.
    pub async fn status(&self) -> Result<Status> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.status().await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.status().await,
        }
    }

    /// Inbox and ledger counts.
    pub async fn inbox_counts(&self) -> Result<InboxCounts> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.inbox_counts().await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.inbox_counts().await,
        }
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
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.transactions_page(user_id, after, include_deleted, limit).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.transactions_page(user_id, after, include_deleted, limit).await,
        }
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
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.guard_load(connection_id).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.guard_load(connection_id).await,
        }
    }

    /// Reads the guard record of a connection and writes what `change` returns (`None`: no
    /// change; `Some(None)`: delete) in one transaction that no other update of the record,
    /// from any process, can interleave with.
    pub async fn guard_update<F>(&self, connection_id: &str, change: F) -> Result<()>
    where
        F: FnOnce(Option<String>) -> Option<Option<String>> + Send + 'static,
    {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.guard_update(connection_id, change).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.guard_update(connection_id, change).await,
        }
    }

    /// Replaces (or with `None` deletes) the guard record of a connection.
    pub async fn guard_save(&self, connection_id: &str, record: Option<String>) -> Result<()> {
        self.guard_update(connection_id, move |_| Some(record)).await
    }

    /// Marks as applied those of these pending events the ledger says were applied already
    /// (after a commit refused because an event was in the ledger). Returns how many.
    pub async fn settle_applied(&self, seqs: &[i64]) -> Result<u64> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.settle_applied(seqs).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.settle_applied(seqs).await,
        }
    }

    /// Puts parked events (of one user, or of everyone) back in the queue with their attempts
    /// reset, and lifts their users' retry back-off. Returns how many.
    pub async fn requeue_parked(&self, user_id: Option<&str>) -> Result<u64> {
        let user_id = user_id.map(str::to_owned);
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.requeue_parked(user_id).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.requeue_parked(user_id).await,
        }
    }

    /// Remembers a user (found through the users API, say) so reconciliation covers it.
    pub async fn add_user(&self, user_id: &str) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(d) => d.add_user(user_id).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.add_user(user_id).await,
        }
    }

    /// Closes pooled connections (PostgreSQL); SQLite files close when the last handle goes.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => {}
            #[cfg(feature = "postgres")]
            Db::Postgres(d) => d.close().await,
        }
    }
}

impl Claim {
    /// The user.
    pub fn user_id(&self) -> &str {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.user_id(),
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.user_id(),
        }
    }

    /// The claimed events, in arrival order.
    pub fn events(&self) -> &[InboxEvent] {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.events(),
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.events(),
        }
    }

    /// The user's connections as stored.
    pub async fn connections(&mut self) -> Result<Vec<LocalConnection>> {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.connections().await,
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.connections().await,
        }
    }

    /// The user's accounts as stored.
    pub async fn accounts(&mut self) -> Result<Vec<LocalAccount>> {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.accounts().await,
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.accounts().await,
        }
    }

    /// The live transactions of these accounts.
    pub async fn live_rows(&mut self, account_ids: &[String]) -> Result<Vec<LiveRow>> {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.live_rows(account_ids).await,
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.live_rows(account_ids).await,
        }
    }

    /// Writes an intermediate batch (large backfills). On SQLite it is committed at once; on
    /// PostgreSQL it commits with the claim.
    pub async fn apply(&mut self, writes: Writes) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.apply(writes).await,
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.apply(writes).await,
        }
    }

    /// Writes the last batch and marks the claimed events applied (one ledger row each: a
    /// second application would violate its primary key and roll everything back), all in
    /// one transaction. The user is released when the claim is dropped. On an error nothing
    /// of it is written and the claim is still held: give it up with [`Claim::fail`] (a
    /// failed commit counts as a failed attempt, with back-off and parking), or drop it.
    pub async fn finish(&mut self, writes: Writes, worker: &str, now_ms: i64) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.finish(writes, worker, now_ms).await,
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.finish(writes, worker, now_ms).await,
        }
    }

    /// Gives the claim up after an error: nothing it wrote in this attempt is kept
    /// (PostgreSQL) or harmful (SQLite: upserts are idempotent), the events' attempt counts
    /// grow, the user waits `retry_after_ms`, and events past `max_attempts` are parked.
    pub async fn fail(self, error: &str, now_ms: i64, retry_after_ms: i64, max_attempts: u32) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Claim::Sqlite(c) => c.fail(error, now_ms, retry_after_ms, max_attempts).await,
            #[cfg(feature = "postgres")]
            Claim::Postgres(c) => c.fail(error, now_ms, retry_after_ms, max_attempts).await,
        }
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
