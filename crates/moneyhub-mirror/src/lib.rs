//! # moneyhub-mirror
//!
//! A local copy of Moneyhub transactions, kept current from webhooks: SQLite by default (one
//! file), PostgreSQL at scale.
//!
//! * **Receiver** ([`Mirror::router`]): an HTTP endpoint for Moneyhub webhooks. Each delivery
//!   is verified with the client crate (signed JWT; unsigned JSON only by opt-in), stored
//!   durably in an inbox (concurrent deliveries share one commit and one sync) and answered
//!   `2xx` within milliseconds, after the commit holding it. Bad signatures get `401`
//!   and store nothing; a webhook id already stored is a no-op `200`.
//! * **Processor** ([`Mirror::spawn_workers`], [`Mirror::process_once`]): applies inbox
//!   events in order per user. Transaction ids are fetched by id (batches of 50, fetched
//!   concurrently) and upserted with the JSON Moneyhub sent (fields the client does not model
//!   included), an older `dateModified` never overwriting a newer one; deleted ids become
//!   tombstones; `deletedAccount` buries the account's
//!   transactions; `syncCompleted` triggers an incremental reconciliation of the connection
//!   (watermark minus a safety margin, plus a deletion check over recent dates), which
//!   repairs whatever a lost webhook missed. Connections that disappear from the user's list
//!   are purged; new ones are backfilled. See the `session` module docs for the rules.
//! * **Backfill and reconciliation on demand** ([`Mirror::backfill`],
//!   [`Mirror::reconcile`]): every transaction of every connection, compared and fixed.
//! * **Storage** ([`Db`]): the same schema on SQLite (WAL) and PostgreSQL, versioned
//!   migrations applied at open, each backend behind one storage contract (see [`db`]);
//!   database failures are [`Error`]s whatever the driver ([`Error::is_unavailable`]). On PostgreSQL any number of processes share one inbox: a
//!   worker claims one user at a time with `FOR UPDATE SKIP LOCKED`, so each user's events
//!   stay in order, and every applied event gets one row in a ledger whose primary key makes
//!   a second application impossible.
//! * [`DbGuardStore`] keeps the client's manual-sync guard in the same database.
//! * **The lifecycle loop** ([`lifecycle`], [`notify`]): every connection's health advice kept
//!   current from listings and from time alone, [`Mirror::actions`], signed notifications of
//!   every change of action, opt-in auto-sync ([`MirrorConfig::auto_sync`]).
//!
//! ## Schema (both backends, migration 1)
//!
//! | table | rows |
//! | --- | --- |
//! | `mirror_inbox` | every stored webhook: `seq`, `webhook_id` (unique), user, type, the body as delivered and verified (the only copy: the processor reads the envelope from it), content type, signed, `state` (0 pending, 1 applied, 2 parked), attempts, last error |
//! | `mirror_applied_events` | the ledger: one row per applied event, primary key `webhook_id` |
//! | `mirror_users` | users seen, with a retry back-off (`not_before_ms`); the row workers lock; (migration 7) the user's kept figures for `status`: `live`, `tombstones`, `connections`, `last_event_ms` |
//! | `mirror_connections` | per connection: backfilled, watermark and last full reconciliation (Moneyhub time), status, removed |
//! | `mirror_accounts` | account → connection, removed |
//! | `mirror_transactions` | `id`, user, account, connection, `date_ms`, `modified_ms`, status, `deleted` (tombstone), `raw` JSON; keyed by `(user_id, id)` (migration 8: a user's rows together) |
//! | `mirror_guard` | the manual-sync guard's record per connection |
//! | `mirror_migrations` | applied schema versions |
//! | `mirror_lifecycle` | (migration 4) per connection: its state, advice and indexed due time (see [`lifecycle`]) |
//! | `mirror_lifecycle_history` | (migration 4) the states each connection entered, and when (newest 100 per connection) |
//! | `mirror_outbox` | (migration 4) notifications of changes of action waiting for delivery (see [`notify`]) |
//! | `mirror_users_due` | (migration 2) the claim queue: one row per user with pending events (see [`db`]); (migration 7) its `pending` count and newest arrival `last_event_ms`, kept by the receiver |
//! | `mirror_inbox_counts` | (migration 5) the inbox's counts by state and the ledger's, kept by triggers |
//!
//! ```no_run
//! # async fn demo() -> moneyhub_mirror::Result<()> {
//! let client = moneyhub::Client::from_env()?;
//! let mirror = moneyhub_mirror::Mirror::open(client, "sqlite:mirror.db", Default::default()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! mirror.run(listener, 2, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "moneyhub-mirror needs a database: enable the `sqlite` feature, the `postgres` feature, or both"
);

mod budget;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
mod group_commit;
pub mod guard;
pub mod lifecycle;
pub mod notify;
mod receiver;
pub mod session;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use moneyhub::{Client, ConnectionId, UserId};

pub use config::{AutoSync, MirrorConfig};
pub use db::{Db, DbUrl, InboxCounts, Status, StatusQuery, StoredTx, UserStatus};
pub use error::{Error, Result};
pub use export::{ExportFormat, ExportOptions};
pub use guard::DbGuardStore;
pub use lifecycle::{ActionFilter, ConnectionState, HistoryEntry, LifecycleCounts};
pub use session::SessionReport;

use db::Claim;
use session::Session;

/// What a long-running step is doing, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The user.
    pub user_id: UserId,
    /// The connection being listed.
    pub connection_id: ConnectionId,
    /// Which kind of listing.
    pub phase: ProgressPhase,
    /// Transactions listed so far in this listing.
    pub done: u64,
    /// Transactions the listing will return, when Moneyhub says (`meta.count`).
    pub total: Option<u64>,
}

/// The kind of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressPhase {
    /// The first full listing of a connection.
    Backfill,
    /// A full reconciliation.
    Full,
    /// An incremental reconciliation.
    Incremental,
}

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Counters of the receiver (since start).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub refused: AtomicU64,
    pub unavailable: AtomicU64,
    pub double_apply_refused: AtomicU64,
    pub claims: AtomicU64,
    pub applied: AtomicU64,
    pub totals: parking_lot::Mutex<SessionReport>,
    /// Webhooks answered 400 (signed, but not a usable event).
    pub invalid: AtomicU64,
    /// Failed claims and processing errors of this process's workers.
    pub worker_errors: AtomicU64,
    /// Time from a webhook's arrival to its answer.
    pub ack_latency: moneyhub_http::metrics::Histogram,
}

/// A snapshot of the receiver's and processor's counters since this process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Counts {
    /// Webhooks stored.
    pub stored: u64,
    /// Replays answered without writing.
    pub duplicates: u64,
    /// Webhooks refused (401).
    pub refused: u64,
    /// Webhooks that could not be verified or stored (503).
    pub unavailable: u64,
    /// Attempts to apply an already applied event, stopped by the ledger (should stay 0).
    pub double_apply_refused: u64,
    /// Claims committed by this process's workers.
    pub claims: u64,
    /// Events applied by this process's workers.
    pub applied: u64,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) db: Db,
    pub(crate) config: MirrorConfig,
    pub(crate) verifier: moneyhub::WebhookVerifier,
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) counters: Counters,
    /// The lifecycle loop's run-time state (notification counters, HTTP client, auto-sync budget).
    pub(crate) lifecycle: lifecycle::run::Runtime,
    /// The budget of Moneyhub API requests per second.
    pub(crate) budget: budget::RequestBudget,
    /// The receiver's group commit of inbox writes.
    pub(crate) group: group_commit::GroupCommit,
    progress: Option<ProgressFn>,
    worker_prefix: String,
    /// Users whose failed attempt the database could not record (it refused writes): failed
    /// attempts so far and when they may be claimed again. See [`Mirror::process_once`].
    held_back: parking_lot::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
    /// When this process last purged past the retention.
    last_purge: parking_lot::Mutex<Option<std::time::Instant>>,
    /// When this process last folded the inbox counts (see [`Db::compact_counts`]).
    last_compact: parking_lot::Mutex<Option<std::time::Instant>>,
    /// Whether the workers are paused by the applying floor (for logging the change once).
    paused: std::sync::atomic::AtomicBool,
}

impl Inner {
    pub(crate) fn progress(&self, p: &Progress) {
        if let Some(f) = &self.progress {
            f(p);
        }
    }

    /// Free bytes on the file system holding the database, when it is a file (SQLite) and
    /// the platform says.
    pub(crate) fn free_bytes(&self) -> Option<u64> {
        let file = self.db.file()?;
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        free_bytes_at(dir)
    }

    /// Below the receiving floor ([`MirrorConfig::refuse_below_free_bytes`]).
    pub(crate) fn below_refuse_floor(&self) -> bool {
        let floor = self.config.refuse_below_free_bytes;
        floor > 0 && self.free_bytes().is_some_and(|free| free < floor)
    }

    /// Below the applying floor ([`MirrorConfig::pause_below_free_bytes`]).
    pub(crate) fn below_pause_floor(&self) -> bool {
        let floor = self.config.pause_below_free_bytes;
        floor > 0 && self.free_bytes().is_some_and(|free| free < floor)
    }
}

/// Rows of each kind one purge transaction deletes at most.
const PURGE_BATCH: usize = 1000;

/// Removed connections (each with up to 100 history rows) and parked notifications one
/// lifecycle purge transaction deletes at most.
const LIFECYCLE_PURGE_BATCH: usize = 100;

/// Free bytes available to this process on the file system holding `dir`.
#[cfg(unix)]
fn free_bytes_at(dir: &std::path::Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Free space is not measured on this platform: the floors do not apply.
#[cfg(not(unix))]
fn free_bytes_at(_dir: &std::path::Path) -> Option<u64> {
    None
}

/// A transactions mirror: a client, a database and the settings. Cheap to clone.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("db", &self.inner.db)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What [`Mirror::drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Claims processed.
    pub claims: usize,
    /// Claims that failed (their events are retried later).
    pub failed: usize,
    /// The sum of the sessions' counts.
    pub totals: SessionReport,
}

/// Which users [`Mirror::reconcile`] and [`Mirror::backfill`] cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scope {
    /// Only these users (default: every user the mirror knows).
    pub users: Option<Vec<UserId>>,
    /// Also ask Moneyhub for every user of the API client (`GET /users`) and add them.
    pub discover_users: bool,
    /// Users processed at once (default 4).
    pub concurrency: usize,
}

impl Scope {
    /// Every known user.
    pub fn all() -> Self {
        Scope { users: None, discover_users: false, concurrency: 4 }
    }

    /// These users only.
    pub fn users(users: impl IntoIterator<Item = UserId>) -> Self {
        Scope { users: Some(users.into_iter().collect()), ..Scope::all() }
    }

    /// Also discover users through the users API.
    pub fn discover(mut self, discover: bool) -> Self {
        self.discover_users = discover;
        self
    }

    /// Users processed at once.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
}

/// What a backfill or reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// Users covered.
    pub users: usize,
    /// Users that failed, with the error.
    pub errors: Vec<(UserId, String)>,
    /// The sum of the sessions' counts.
    pub totals: SessionReport,
}

/// Running workers; [`Workers::stop`] ends them after their current claim.
#[derive(Debug)]
pub struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Asks the workers to stop and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }

    /// Asks the workers to stop and waits up to `bound` for them to finish their claims;
    /// then aborts the rest, which releases their claims uncommitted (the database rolls the
    /// claim back; its events stay pending for the next run). Returns `false` if any had to
    /// be aborted.
    pub async fn stop_within(mut self, bound: Duration) -> bool {
        let _ = self.stop.send(true);
        let finished = tokio::time::timeout(bound, async {
            for h in &mut self.handles {
                let _ = h.await;
            }
        })
        .await;
        if finished.is_err() {
            for h in &self.handles {
                h.abort();
            }
            for h in self.handles {
                let _ = h.await;
            }
            return false;
        }
        true
    }
}

impl Mirror {
    /// Opens the database at `db_url` (`sqlite:PATH`, a plain path, or `postgres://...`) and
    /// builds a mirror over it.
    pub async fn open(client: Client, db_url: &str, config: MirrorConfig) -> Result<Mirror> {
        let db = Db::open(db_url).await?;
        Ok(Mirror::new(client, db, config))
    }

    /// A mirror over an open database.
    pub fn new(client: Client, db: Db, config: MirrorConfig) -> Mirror {
        let mut verifier = client.webhooks().allow_unsigned_json(config.allow_unsigned_json);
        if let Some(w) = config.webhook_iat_window {
            verifier = verifier.iat_window(w);
        }
        let worker_prefix = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let lifecycle = lifecycle::run::Runtime::new(&config);
        let budget = budget::RequestBudget::new(config.api_requests_per_second);
        let db = db.with_claim_policy(config.claim_policy());
        let group = group_commit::GroupCommit::new(db.clone());
        Mirror {
            inner: Arc::new(Inner {
                client,
                db,
                lifecycle,
                group,
                config,
                verifier,
                wake: tokio::sync::Notify::new(),
                counters: Counters::default(),
                budget,
                progress: None,
                worker_prefix,
                held_back: parking_lot::Mutex::new(std::collections::HashMap::new()),
                last_purge: parking_lot::Mutex::new(None),
                last_compact: parking_lot::Mutex::new(None),
                paused: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Calls `f` as listings progress (backfills, reconciliations). Set it before cloning.
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Mirror {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.progress = Some(Arc::new(f)),
            None => tracing::warn!("on_progress ignored: the mirror is already shared"),
        }
        self
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The settings.
    pub fn config(&self) -> &MirrorConfig {
        &self.inner.config
    }

    /// The receiver's counters since start.
    pub fn counts(&self) -> Counts {
        let c = &self.inner.counters;
        Counts {
            stored: c.stored.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            unavailable: c.unavailable.load(Ordering::Relaxed),
            double_apply_refused: c.double_apply_refused.load(Ordering::Relaxed),
            claims: c.claims.load(Ordering::Relaxed),
            applied: c.applied.load(Ordering::Relaxed),
        }
    }

    /// The sum of the workers' session reports since start.
    pub fn totals(&self) -> SessionReport {
        self.inner.counters.totals.lock().clone()
    }

    /// The webhook receiver's routes: `POST /webhooks`, `POST /`, `GET /healthz` (alive),
    /// `GET /readyz` (the database answers and is migrated; `503` otherwise) and
    /// `GET /metrics` (Prometheus text; see the `receiver` module docs for the names).
    pub fn router(&self) -> axum::Router {
        receiver::router(self.inner.clone())
    }

    /// Serves the receiver on `listener` until `shutdown` completes, through the hardened
    /// accept loop of `moneyhub-http` (timeouts, a connection cap that evicts idle connections
    /// first, the open-file limit raised, graceful shutdown bounded by
    /// [`MirrorConfig::http`]'s `shutdown_timeout`).
    ///
    /// The receiver runs on a dedicated thread with its own runtime, so that acknowledging a
    /// webhook never waits behind processing work on the caller's runtime (Moneyhub allows
    /// 5 s; the receiver answers in milliseconds). That runtime has two worker threads: with
    /// one, a flood of slow connections (each trickled byte a wake-up) and a CPU-starved
    /// machine delay a genuine sender behind the whole run queue.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let listener = listener.into_std()?;
        let router = self.router();
        // The accept loop refuses an `Expect: 100-continue` body over the receiver's own limit
        // at once, and drains an unread body up to it.
        let body_limit = u64::try_from(self.inner.config.max_body_bytes).unwrap_or(u64::MAX);
        let http = self.inner.config.http.clone().max_body_bytes(body_limit);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        std::thread::Builder::new().name("mirror-receiver".into()).spawn(move || {
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("mirror-receiver-rt")
                .enable_all()
                .build()
                .map_err(Error::Io)
                .and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        moneyhub_http::serve(listener, router, http, async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                        Ok(())
                    })
                });
            let _ = done_tx.send(result);
        })?;
        tokio::select! {
            r = &mut done_rx => return r.map_err(|_| Error::task("the receiver thread ended"))?,
            () = shutdown => {}
        }
        let _ = stop_tx.send(());
        done_rx.await.map_err(|_| Error::task("the receiver thread ended"))?
    }

    /// Starts `n` processing workers on the current runtime.
    pub fn spawn_workers(&self, n: usize) -> Workers {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let handles = (0..n.max(1))
            .map(|i| {
                let mirror = self.clone();
                let mut rx = rx.clone();
                let name = format!("{}-w{i}", self.inner.worker_prefix);
                tokio::spawn(async move { mirror.worker_loop(&name, &mut rx).await })
            })
            .collect();
        Workers { stop, handles }
    }

    async fn worker_loop(&self, name: &str, stop: &mut tokio::sync::watch::Receiver<bool>) {
        let mut idle = self.inner.config.poll_interval;
        loop {
            if *stop.borrow() {
                return;
            }
            let wake = self.inner.wake.notified();
            self.compact_counts_if_due().await;
            match self.process_once(name).await {
                Ok(Some(_)) => {
                    idle = self.inner.config.poll_interval;
                    continue;
                }
                Ok(None) => self.purge_if_due().await,
                Err(e) => {
                    self.inner.counters.worker_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = name, error = %e, "processing failed");
                    idle = (idle * 2).min(Duration::from_secs(5));
                }
            }
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// At most every 5 s per process, busy or idle: folds the inbox counts' delta rows, so
    /// that a read of them sums a few thousand rows at most.
    async fn compact_counts_if_due(&self) {
        let now = std::time::Instant::now();
        {
            let mut last = self.inner.last_compact.lock();
            if last.is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(5)) {
                return;
            }
            *last = Some(now);
        }
        if let Err(e) = self.inner.db.compact_counts().await {
            tracing::warn!(error = %e, "folding the inbox counts failed; will try again later");
        }
    }

    /// When idle, at most once a minute per process: deletes applied events and ledger rows
    /// older than [`MirrorConfig::retention`], a batch of 1,000 of each per transaction (so
    /// the receiver waits at most one short batch), at most 20 batches per turn; then, the
    /// same way, connections removed longer ago than the retention (their lifecycle state, due
    /// time, history and notifications; 100 connections per batch, so at most 10,000 history
    /// rows) and parked notifications written longer ago than it (100 per batch). A parked
    /// notification is kept for the retention so that `mirror notifications --requeue` can
    /// still send it after an outage shorter than that; a removed connection's rows are kept
    /// as long so that `mirror actions --include-removed` and `mirror history` can still tell
    /// what became of it.
    async fn purge_if_due(&self) {
        let now = std::time::Instant::now();
        {
            let mut last = self.inner.last_purge.lock();
            if last.is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(60)) {
                return;
            }
            *last = Some(now);
        }
        let keep = i64::try_from(self.inner.config.retention.as_millis()).unwrap_or(i64::MAX);
        let before = chrono::Utc::now().timestamp_millis().saturating_sub(keep);
        let (mut inbox, mut ledger) = (0u64, 0u64);
        for _ in 0..20 {
            match self.inner.db.purge_applied(before, PURGE_BATCH).await {
                Ok((i, l)) => {
                    inbox += i;
                    ledger += l;
                    if i < PURGE_BATCH as u64 && l < PURGE_BATCH as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging applied events failed; will try again later");
                    break;
                }
            }
        }
        if inbox > 0 || ledger > 0 {
            tracing::info!(inbox, ledger, "purged applied events past the retention");
        }
        // The lifecycle's rows are timed by the mirror's clock (the client's: virtual against
        // a sandbox), so their cut-off is too.
        let before = self.inner.client.now().timestamp_millis().saturating_sub(keep);
        let (mut connections, mut parked) = (0u64, 0u64);
        for _ in 0..20 {
            match self.inner.db.purge_lifecycle(before, LIFECYCLE_PURGE_BATCH).await {
                Ok((c, p)) => {
                    connections += c;
                    parked += p;
                    if c < LIFECYCLE_PURGE_BATCH as u64 && p < LIFECYCLE_PURGE_BATCH as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging removed connections and parked notifications failed; will try again later");
                    break;
                }
            }
        }
        if connections > 0 || parked > 0 {
            tracing::info!(
                connections,
                parked,
                "purged removed connections and parked notifications past the retention"
            );
        }
    }

    /// Claims one user with due events, applies them and commits. `None` when nothing is due.
    ///
    /// A failed attempt — fetching or applying failed, or the commit did (a full disk, a
    /// database refusing writes) — is recorded: the events' attempt counts grow, the user
    /// waits [`MirrorConfig::retry_backoff`] doubled per attempt (at most 5 minutes), and
    /// events past [`MirrorConfig::max_attempts`] are parked; it is reported as
    /// `Ok(Some(Err(..)))` with its error logged. When the database cannot record even that,
    /// this process holds the user back in memory with the same back-off (no parking, which
    /// needs a write), so that a database refusing writes never makes a worker call Moneyhub
    /// again at once. Only database errors while claiming are returned.
    pub async fn process_once(
        &self,
        worker: &str,
    ) -> Result<Option<std::result::Result<SessionReport, String>>> {
        self.process_next(worker, self.inner.config.coalesce_window).await
    }

    async fn process_next(
        &self,
        worker: &str,
        window: Duration,
    ) -> Result<Option<std::result::Result<SessionReport, String>>> {
        if self.inner.below_pause_floor() {
            // The space left goes to the receiver's durable acknowledgements first.
            if !self.inner.paused.swap(true, Ordering::Relaxed) {
                tracing::warn!(worker, "free disk space is below the applying floor; workers pause");
            }
            return Ok(None);
        }
        if self.inner.paused.swap(false, Ordering::Relaxed) {
            tracing::info!(worker, "free disk space is above the applying floor again; workers resume");
        }
        let now = chrono::Utc::now().timestamp_millis();
        let arrived_by = now.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let held_back = self.held_back_users();
        let Some(mut claim) = self
            .inner
            .db
            .claim_next_excluding(now, arrived_by, self.inner.config.claim_limit, &held_back)
            .await?
        else {
            return Ok(None);
        };
        let seqs: Vec<i64> = claim.events().iter().map(|e| e.seq).collect();
        match self.apply_claim(&mut claim).await {
            Ok((writes, report)) => {
                match claim.finish(writes, worker, chrono::Utc::now().timestamp_millis()).await {
                    Ok(()) => {
                        self.inner.held_back.lock().remove(claim.user_id());
                        self.inner.counters.claims.fetch_add(1, Ordering::Relaxed);
                        self.inner.counters.applied.fetch_add(report.events as u64, Ordering::Relaxed);
                        self.inner.counters.totals.lock().add(&report);
                        Ok(Some(Ok(report)))
                    }
                    Err(e) if e.is_unique_violation() => {
                        // An event of the claim is in the ledger already: it was applied
                        // once, and the ledger refused a second application (nothing of
                        // this claim was written). Settle it; the others are retried.
                        drop(claim);
                        self.inner.counters.worker_errors.fetch_add(1, Ordering::Relaxed);
                        self.inner.counters.double_apply_refused.fetch_add(1, Ordering::Relaxed);
                        let settled = self.inner.db.settle_applied(&seqs).await?;
                        tracing::warn!(worker, settled, "the ledger refused to apply an event twice");
                        Ok(Some(Err(e.to_string())))
                    }
                    Err(e) => {
                        self.inner.counters.worker_errors.fetch_add(1, Ordering::Relaxed);
                        let message = format!("could not commit: {e}");
                        let user = claim.user_id();
                        tracing::warn!(
                            worker, user, error = %message,
                            "committing a claim failed; will retry"
                        );
                        self.record_failure(claim, &message).await;
                        Ok(Some(Err(message)))
                    }
                }
            }
            Err(e) => {
                self.inner.counters.worker_errors.fetch_add(1, Ordering::Relaxed);
                let message = e.to_string();
                let user = claim.user_id();
                tracing::warn!(worker, user, error = %message, "applying events failed; will retry");
                self.record_failure(claim, &message).await;
                Ok(Some(Err(message)))
            }
        }
    }

    /// The users held back in memory whose time has not come; forgets the others.
    fn held_back_users(&self) -> Vec<String> {
        let now = std::time::Instant::now();
        let mut held = self.inner.held_back.lock();
        // An entry whose time has passed is kept (its attempt count matters if the next
        // attempt fails too) but no longer excludes the user.
        held.retain(|_, (_, until)| now.saturating_duration_since(*until) < Duration::from_secs(3600));
        held.iter().filter(|(_, (_, until))| *until > now).map(|(u, _)| u.clone()).collect()
    }

    /// Records a failed attempt of `claim` (attempts, back-off, parking) in the database, or,
    /// when the database refuses that too, holds the user back in this process.
    async fn record_failure(&self, claim: Claim, message: &str) {
        let user = claim.user_id().to_owned();
        let stored = claim.events().first().map(|e| e.attempts).unwrap_or(0);
        let in_memory = self.inner.held_back.lock().get(&user).map_or(0, |(n, _)| *n);
        let attempts = u32::try_from(stored).unwrap_or(u32::MAX).max(in_memory).saturating_add(1);
        let retry = self.inner.config.backoff_after(attempts);
        let retry_ms = i64::try_from(retry.as_millis()).unwrap_or(i64::MAX);
        let now = chrono::Utc::now().timestamp_millis();
        match claim.fail(message, now, retry_ms, self.inner.config.max_attempts).await {
            Ok(()) => {
                self.inner.held_back.lock().remove(&user);
            }
            Err(e) => {
                tracing::warn!(
                    user = %user,
                    error = %e,
                    attempts,
                    retry_in_ms = retry_ms,
                    "the database could not record a failed attempt; holding the user back in memory"
                );
                self.inner.held_back.lock().insert(user, (attempts, std::time::Instant::now() + retry));
            }
        }
    }

    async fn apply_claim(&self, claim: &mut Claim) -> Result<(db::Writes, SessionReport)> {
        let mut session = Session::load(&self.inner, claim).await?;
        session.apply_events(claim).await?;
        Ok(session.finish())
    }

    /// Processes until no due event is left (events waiting for a retry are left alone; the
    /// coalescing window is ignored), with `workers` claims at a time.
    pub async fn drain(&self, workers: usize) -> Result<DrainReport> {
        // Events made pending behind the mirror's back (a manual fix, a restored backup) get
        // their claim-queue rows first.
        self.inner.db.repair_due().await?;
        let results: Vec<Result<DrainReport>> = stream::iter(0..workers.max(1))
            .map(|i| {
                let mirror = self.clone();
                async move {
                    let name = format!("{}-d{i}", mirror.inner.worker_prefix);
                    let mut report = DrainReport::default();
                    while let Some(r) = mirror.process_next(&name, Duration::ZERO).await? {
                        report.claims += 1;
                        match r {
                            Ok(s) => report.totals.add(&s),
                            Err(_) => report.failed += 1,
                        }
                    }
                    Ok(report)
                }
            })
            .buffer_unordered(workers.max(1))
            .collect()
            .await;
        let mut total = DrainReport::default();
        for r in results {
            let r = r?;
            total.claims += r.claims;
            total.failed += r.failed;
            total.totals.add(&r.totals);
        }
        Ok(total)
    }

    /// Runs the receiver on `listener` and `workers` processing workers until `shutdown`
    /// completes; then, within [`MirrorConfig::http`]'s `shutdown_timeout` (10 s by default):
    /// stops accepting, answers the webhooks in flight (every webhook answered `200` is in
    /// the inbox), and lets the workers finish their claims. Workers still busy at the bound
    /// are aborted, which releases their claims uncommitted: their events stay pending and
    /// are applied once, by the next run.
    pub async fn run(
        &self,
        listener: tokio::net::TcpListener,
        workers: usize,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let running = self.spawn_workers(workers);
        // The lifecycle loop: due advice, auto syncs, notifications (see `lifecycle`).
        let (loop_stop, loop_rx) = tokio::sync::watch::channel(false);
        let looping = {
            let mirror = self.clone();
            tokio::spawn(async move { mirror.lifecycle_loop(loop_rx).await })
        };
        let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = self.serve(listener, async move {
            shutdown.await;
            let _ = fired_tx.send(());
        });
        // The workers start finishing as soon as the shutdown fires, beside the receiver's
        // drain; `None` when the receiver ended by itself.
        let fired = async {
            match fired_rx.await {
                Ok(()) => {
                    tracing::info!("shutting down: no new webhooks, finishing the work in hand");
                    let _ = running.stop.send(true);
                    Some(std::time::Instant::now())
                }
                Err(_) => None,
            }
        };
        let (served, fired) = tokio::join!(serving, fired);
        let _ = loop_stop.send(true);
        let _ = looping.await;
        let bound = self.inner.config.http.shutdown_timeout;
        let left = fired.map(|at| bound.saturating_sub(at.elapsed())).unwrap_or(bound);
        if !running.stop_within(left).await {
            tracing::warn!(
                ?bound,
                "workers still busy at the shutdown bound were stopped; their claims were released"
            );
        }
        served
    }

    /// Backfills every connection of the scope's users that has never been fully listed.
    pub async fn backfill(&self, scope: &Scope) -> Result<ReconcileReport> {
        self.for_users(scope, false).await
    }

    /// Fully reconciles every connection of the scope's users: every transaction Moneyhub
    /// lists is upserted, every local one it no longer has is buried, removed connections are
    /// purged. Afterwards the mirror equals Moneyhub (as of the listing).
    pub async fn reconcile(&self, scope: &Scope) -> Result<ReconcileReport> {
        self.for_users(scope, true).await
    }

    async fn for_users(&self, scope: &Scope, full: bool) -> Result<ReconcileReport> {
        let mut users = match &scope.users {
            Some(u) => u.clone(),
            None => self
                .inner
                .db
                .known_users()
                .await?
                .into_iter()
                // Events without a (valid) user id are kept in the inbox but name nobody
                // whose data could be listed.
                .filter_map(|u| u.parse::<UserId>().ok())
                .collect(),
        };
        if scope.discover_users {
            users.extend(self.inner.client.users().list_all().await?.into_iter().map(|u| u.user_id));
        }
        users.sort();
        users.dedup();
        let results: Vec<(UserId, Result<SessionReport>)> = stream::iter(users)
            .map(|user| {
                let mirror = self.clone();
                async move {
                    let r = mirror.reconcile_user(&user, full).await;
                    (user, r)
                }
            })
            .buffer_unordered(scope.concurrency.max(1))
            .collect()
            .await;
        let mut report = ReconcileReport::default();
        for (user, r) in results {
            report.users += 1;
            match r {
                Ok(s) => report.totals.add(&s),
                Err(e) => report.errors.push((user, e.to_string())),
            }
        }
        report.errors.sort();
        Ok(report)
    }

    async fn reconcile_user(&self, user: &UserId, full: bool) -> Result<SessionReport> {
        let mut claim = self.inner.db.lock_user(user).await?;
        let mut session = Session::load(&self.inner, &mut claim).await?;
        session.reconcile_all(&mut claim, full).await?;
        let (writes, report) = session.finish();
        let name = format!("{}-r", self.inner.worker_prefix);
        claim.finish(writes, &name, chrono::Utc::now().timestamp_millis()).await?;
        drop(claim);
        Ok(report)
    }

    /// Puts the events parked after [`MirrorConfig::max_attempts`] failed attempts (of one
    /// user, or of everyone) back in the queue, attempts reset, for the workers to apply
    /// again — once whatever made them fail is fixed. Returns how many. (A reconciliation
    /// repairs the data without them; this also settles the events themselves.)
    pub async fn retry_parked(&self, user: Option<&UserId>) -> Result<u64> {
        let n = self.inner.db.requeue_parked(user.map(UserId::as_str)).await?;
        if n > 0 {
            self.inner.wake.notify_waiters();
        }
        Ok(n)
    }

    /// Totals, inbox depth and lag, last event, and a bounded list of users (see
    /// [`Db::status`]).
    pub async fn status(&self, query: &StatusQuery) -> Result<Status> {
        self.inner.db.status(query).await
    }

    /// Writes the mirror's transactions to `out`; returns how many.
    pub async fn export(
        &self,
        format: ExportFormat,
        options: &ExportOptions,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64> {
        export::export(&self.inner.db, format, options, out).await
    }
}
