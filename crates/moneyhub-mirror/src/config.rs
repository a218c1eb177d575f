//! How a mirror behaves: reconciliation windows, retries, batch sizes, webhook acceptance.

use std::time::Duration;

/// Settings of a [`Mirror`](crate::Mirror). `MirrorConfig::default()` suits production.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MirrorConfig {
    /// Accept unsigned JSON webhooks (default `false`: only signed JWTs). Anyone who can
    /// reach the endpoint can forge JSON webhooks; enable only behind your own
    /// authentication or on a private network. Forged events can only make the mirror fetch
    /// from Moneyhub, never write data of their own, but they cost API calls.
    pub allow_unsigned_json: bool,
    /// How far a JWT's `iat` may be from now (`None`: the client's setting, ±10 minutes).
    pub webhook_iat_window: Option<Duration>,
    /// Largest accepted webhook body (default 8 MiB; 6000 ids fit in well under 1 MiB).
    pub max_body_bytes: usize,
    /// The incremental reconciliation after `syncCompleted` lists what Moneyhub modified
    /// since the connection's watermark minus this margin (default 1 day), then compares
    /// Moneyhub's count of the connection's transactions with the local one and, where they
    /// differ, narrows the difference down by date ranges and compares ids there.
    pub safety_margin: chrono::Duration,
    /// A connection gets a full reconciliation (every transaction listed and compared)
    /// when its last one is older than this in Moneyhub's time (default 30 days): a safety
    /// net beyond what counts can show.
    pub full_reconcile_every: chrono::Duration,
    /// Most events one worker takes for one user at a time (default 500).
    pub claim_limit: usize,
    /// Most bytes of event envelopes one claim takes (default 64 KiB, about 1,600
    /// transaction ids; the first event is always taken): bounds what one attempt fetches
    /// from Moneyhub, so a failing attempt costs little. A signed webhook counts the decoded
    /// size of its JWT's payload, so signing does not shrink a claim.
    pub claim_max_bytes: usize,
    /// Attempts before an event is parked as failed (default 8). Reconciliation still
    /// covers whatever it announced.
    pub max_attempts: u32,
    /// First retry delay after a failed attempt; doubles per attempt (default 1 s, at most
    /// 5 minutes).
    pub retry_backoff: Duration,
    /// How often an idle worker looks for due events (default 200 ms; with a zero
    /// `coalesce_window`, in-process deliveries wake it at once).
    pub poll_interval: Duration,
    /// A user's events wait this long after the first of them arrived before a worker takes
    /// them (default 3 s), so that the burst Moneyhub sends after a sync (one event per
    /// account and kind, then `syncCompleted`) is applied with one set of API calls.
    pub coalesce_window: Duration,
    /// A budget of Moneyhub API requests per second for this mirror (backfills,
    /// reconciliations and look-ups by id share it; see the `budget` module docs). Default
    /// `None`: unlimited. Moneyhub's rate limit binds in production: set it below your API
    /// client's limit, and let [`Scope::concurrency`](crate::Scope::concurrency) be high
    /// enough to use it (a first-seen user costs one connections list plus one request per
    /// 1,000 transactions per connection).
    pub api_requests_per_second: Option<u32>,
    /// How long applied events and their ledger rows are kept (default 7 days, at least 1
    /// hour): the workers purge older ones in batches of 1,000 when idle, at most once a
    /// minute. The ledger only has to outlive a redelivery: Moneyhub sends each webhook once
    /// (no retries, reference §13) and a signed webhook older than the `iat` window
    /// (10 minutes) is refused, so a week covers any replay by a margin; the inbox rows go with
    /// it because their unique webhook id is what makes a replay a no-op at the receiver.
    pub retention: Duration,
    /// Free-space floor for applying (default 32 MiB): when the file system holding an SQLite
    /// mirror has less free space than this, the workers pause (no claim, no API request)
    /// while the receiver keeps storing webhooks, so the space left goes to durable
    /// acknowledgements first. PostgreSQL's disk cannot be measured from a client: the floors
    /// do not apply there. `0` turns the floor off.
    pub pause_below_free_bytes: u64,
    /// Free-space floor for receiving (default 8 MiB, below the pause floor): under it the
    /// receiver answers `503` (Moneyhub retries the delivery later) and `/readyz` says so,
    /// rather than fail half-way through a write. `0` turns the floor off.
    pub refuse_below_free_bytes: u64,
    /// How the receiver treats connections: header-read, idle and request timeouts, the
    /// connection cap, the graceful-shutdown bound (10 s), TLS (see
    /// [`moneyhub_http::ServeConfig`]).
    pub http: moneyhub_http::ServeConfig,
    /// Tell the application about every change of a connection's action (see
    /// [`crate::notify`]); `None` (default): no outbox is written.
    pub notify: Option<crate::notify::NotifyConfig>,
    /// Start the manual syncs the advice asks for (see [`AutoSync`]); `None` (default): never.
    pub auto_sync: Option<AutoSync>,
    /// How often [`Mirror::run`](crate::Mirror::run) looks for connections whose advice fell
    /// due and notifications to deliver (default 500 ms, real time).
    pub lifecycle_interval: Duration,
}

/// `--auto-sync`: when a connection's advice is `sync` and the guard allows one, the mirror
/// starts the manual sync itself (`enableAsync`), through the client's guard (give the client
/// a [`DbGuardStore`](crate::DbGuardStore) so every process shares it), at most
/// [`AutoSync::per_minute`] a minute in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutoSync {
    /// Most manual syncs this process starts per minute (default 60).
    pub per_minute: u32,
}

impl Default for AutoSync {
    fn default() -> Self {
        AutoSync { per_minute: 60 }
    }
}

impl AutoSync {
    /// At most `n` manual syncs per minute (at least 1).
    pub fn per_minute(n: u32) -> Self {
        AutoSync { per_minute: n.max(1) }
    }
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            allow_unsigned_json: false,
            webhook_iat_window: None,
            max_body_bytes: 8 * 1024 * 1024,
            safety_margin: chrono::Duration::days(1),
            full_reconcile_every: chrono::Duration::days(30),
            claim_limit: 500,
            claim_max_bytes: 64 * 1024,
            max_attempts: 8,
            retry_backoff: Duration::from_secs(1),
            poll_interval: Duration::from_millis(200),
            coalesce_window: Duration::from_secs(3),
            api_requests_per_second: None,
            retention: Duration::from_secs(7 * 24 * 3600),
            pause_below_free_bytes: 32 * 1024 * 1024,
            refuse_below_free_bytes: 8 * 1024 * 1024,
            http: moneyhub_http::ServeConfig::default(),
            notify: None,
            auto_sync: None,
            lifecycle_interval: Duration::from_millis(500),
        }
    }
}

impl MirrorConfig {
    /// Notifies the application of every change of action (see [`MirrorConfig::notify`]).
    pub fn notify(mut self, notify: Option<crate::notify::NotifyConfig>) -> Self {
        self.notify = notify;
        self
    }

    /// Starts the manual syncs the advice asks for (see [`AutoSync`]).
    pub fn auto_sync(mut self, auto_sync: Option<AutoSync>) -> Self {
        self.auto_sync = auto_sync;
        self
    }

    /// How often the lifecycle loop looks for due work (see [`MirrorConfig::lifecycle_interval`]).
    pub fn lifecycle_interval(mut self, interval: Duration) -> Self {
        self.lifecycle_interval = interval;
        self
    }

    /// Accept unsigned JSON webhooks too (see [`MirrorConfig::allow_unsigned_json`]).
    pub fn allow_unsigned_json(mut self, allow: bool) -> Self {
        self.allow_unsigned_json = allow;
        self
    }

    /// The accepted distance between a JWT's `iat` and now.
    pub fn webhook_iat_window(mut self, window: Duration) -> Self {
        self.webhook_iat_window = Some(window);
        self
    }

    /// The safety margin of incremental reconciliation.
    pub fn safety_margin(mut self, margin: chrono::Duration) -> Self {
        self.safety_margin = margin;
        self
    }

    /// How often each connection gets a full reconciliation.
    pub fn full_reconcile_every(mut self, every: chrono::Duration) -> Self {
        self.full_reconcile_every = every;
        self
    }

    /// Most events claimed per user at a time.
    pub fn claim_limit(mut self, limit: usize) -> Self {
        self.claim_limit = limit.max(1);
        self
    }

    /// Most envelope bytes per claim (see [`MirrorConfig::claim_max_bytes`]).
    pub fn claim_max_bytes(mut self, bytes: usize) -> Self {
        self.claim_max_bytes = bytes.max(1);
        self
    }

    /// Attempts before an event is parked.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// First retry delay.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Idle polling interval.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long a user's first pending event waits before it is taken.
    pub fn coalesce_window(mut self, window: Duration) -> Self {
        self.coalesce_window = window;
        self
    }

    /// At most this many Moneyhub API requests per second (`None` or 0: unlimited).
    pub fn api_requests_per_second(mut self, per_second: Option<u32>) -> Self {
        self.api_requests_per_second = per_second.filter(|n| *n > 0);
        self
    }

    /// How long applied events and ledger rows are kept (at least 1 hour; see
    /// [`MirrorConfig::retention`]).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention.max(Duration::from_secs(3600));
        self
    }

    /// The free-space floors: workers pause below `pause_below`, the receiver refuses below
    /// `refuse_below` (see [`MirrorConfig::pause_below_free_bytes`]).
    pub fn free_space_floors(mut self, pause_below: u64, refuse_below: u64) -> Self {
        self.pause_below_free_bytes = pause_below;
        self.refuse_below_free_bytes = refuse_below;
        self
    }

    /// How the receiver treats connections (see [`MirrorConfig::http`]).
    pub fn http(mut self, http: moneyhub_http::ServeConfig) -> Self {
        self.http = http;
        self
    }

    /// The database's claim policy from these settings.
    pub(crate) fn claim_policy(&self) -> crate::db::ClaimPolicy {
        crate::db::ClaimPolicy {
            retry_base_ms: i64::try_from(self.retry_backoff.as_millis()).unwrap_or(i64::MAX),
            retry_cap_ms: 300_000,
            max_claim_bytes: self.claim_max_bytes,
        }
    }

    /// The retry delay after `attempts` failed attempts.
    pub(crate) fn backoff_after(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        self.retry_backoff.saturating_mul(factor).min(Duration::from_secs(300))
    }
}
