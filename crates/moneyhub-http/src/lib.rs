//! # moneyhub-http
//!
//! Hardened HTTP/1 serving for the moneyhub-rs servers (the mirror's webhook receiver and
//! `moneyhub sandbox serve`): one accept loop, [`serve`], that takes an [`axum::Router`] and
//! defends it against the cheap ways of locking a server out.
//!
//! * **Header-read timeout** ([`ServeConfig::header_read_timeout`], 10 s): a new connection
//!   must deliver a complete request head within it, and so must a kept-alive connection once
//!   the first byte of its next request arrived. Slow-header (slowloris) connections are closed.
//! * **Idle keep-alive timeout** ([`ServeConfig::idle_timeout`], 60 s): a connection that
//!   completed a request and sends nothing more is closed.
//! * **Request timeout** ([`ServeConfig::request_timeout`], 30 s): reading the body and
//!   answering must finish within it, else the connection is closed (a trickled body cannot
//!   hold a connection for ever).
//! * **Connection cap that keeps room for real senders** ([`ServeConfig::max_connections`],
//!   by default derived from the open-file limit): when the cap is reached and a new
//!   connection arrives, the server closes the **oldest connection that has not completed a
//!   request** (else the oldest idle kept-alive one) to make room, instead of refusing the
//!   newcomer. Only a connection idle (or trickling its request head) for longer than
//!   [`ServeConfig::eviction_grace`] (500 ms) is ever closed this way: one that has just been
//!   accepted, or has just completed a request, is never the one evicted. Newcomers wait for
//!   a slot (up to the header-read timeout, at most half the cap of them; beyond that the
//!   oldest waiter that has not sent a complete request head is closed), and a waiter whose
//!   whole request head has arrived goes first. A flood of idle connections therefore only
//!   ever evicts itself, and a genuine sender is served at once.
//! * **Oversized bodies refused before they are sent** ([`ServeConfig::max_body_bytes`],
//!   2 MiB): a request announcing `Expect: 100-continue` with a larger `Content-Length` is
//!   answered `413` at once, without `100 Continue`.
//! * **Bodies read before an early answer**: when a handler answers without reading the whole
//!   request body (an error found in the head), the rest of the body, up to
//!   [`ServeConfig::max_body_bytes`], is read and discarded before the answer is sent, so a
//!   client streaming an upload reads the answer instead of a broken pipe.
//! * **A panicking handler** is answered `500` (the panic is logged); the connection and the
//!   process keep serving.
//! * **The open-file limit** ([`raise_nofile_limit`]): the soft `RLIMIT_NOFILE` is raised
//!   toward the hard limit when serving starts, so the default cap is as high as the process
//!   allows.
//! * **Graceful shutdown** from a future: stop accepting, close idle connections, let the
//!   requests in flight finish, and close whatever is left after
//!   [`ServeConfig::shutdown_timeout`] (10 s).
//! * **An optional TLS acceptor** ([`ServeConfig::tls`], built with [`tls::server_config`]):
//!   rustls, with optional client certificates. The client-certificate verifier accepts any
//!   well-formed certificate (self-signed included) whose holder proves it has the key; the
//!   handler sees the certificate as a [`PeerCertificate`] request extension and decides.
//!
//! Every request also carries the peer's address as [`axum::extract::ConnectInfo`]`<SocketAddr>`.
//! A response carrying the [`DropConnection`] extension is not sent: the connection is closed
//! instead (the sandbox's fault injection uses it).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! moneyhub_http::serve(listener, app, moneyhub_http::ServeConfig::default(), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod metrics;
pub mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use tls::PeerCertificate;

/// Marks a response that must not be sent: the server closes the connection instead, without
/// writing anything (as a network failure or a crashed gateway would).
#[derive(Debug, Clone, Copy, Default)]
pub struct DropConnection;

/// How [`serve`] treats connections. `ServeConfig::default()` is right for a server exposed
/// to the internet behind nothing; the builder methods change one setting each.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Time allowed for a request head (request line and headers): from accepting a
    /// connection, or from the first byte of a kept-alive connection's next request.
    pub header_read_timeout: Duration,
    /// Time a connection may stay idle after a completed request before it is closed.
    pub idle_timeout: Duration,
    /// Time allowed for the rest of a request (its body) and the answer.
    pub request_timeout: Duration,
    /// The most connections open at once; `None` derives it from the open-file soft limit
    /// (see [`default_max_connections`]).
    pub max_connections: Option<usize>,
    /// How long a graceful shutdown waits for requests in flight before closing them.
    pub shutdown_timeout: Duration,
    /// Raise the open-file soft limit toward the hard limit when serving starts (default on).
    pub raise_nofile_limit: bool,
    /// Serve HTTPS with this rustls configuration (see [`tls::server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a connection is safe from eviction at the cap after it was accepted or
    /// completed a request (default 500 ms).
    pub eviction_grace: Duration,
    /// The largest request body the application takes (default 2 MiB, axum's own default
    /// limit; set it to the router's limit). An `Expect: 100-continue` request announcing more
    /// is answered `413` at once, and at most this much of an unread body is drained before
    /// an early answer.
    pub max_body_bytes: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: None,
            shutdown_timeout: Duration::from_secs(10),
            raise_nofile_limit: true,
            tls: None,
            eviction_grace: Duration::from_millis(500),
            max_body_bytes: 2 * 1024 * 1024,
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("raise_nofile_limit", &self.raise_nofile_limit)
            .field("tls", &self.tls.as_ref().map(|_| "[rustls server config]"))
            .field("eviction_grace", &self.eviction_grace)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl ServeConfig {
    /// Sets [`ServeConfig::header_read_timeout`].
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }
    /// Sets [`ServeConfig::idle_timeout`].
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets [`ServeConfig::request_timeout`].
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }
    /// Sets [`ServeConfig::max_connections`] (at least 1).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }
    /// Sets [`ServeConfig::shutdown_timeout`].
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }
    /// Sets [`ServeConfig::raise_nofile_limit`].
    pub fn raise_nofile_limit(mut self, raise: bool) -> Self {
        self.raise_nofile_limit = raise;
        self
    }
    /// Sets [`ServeConfig::tls`].
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }
    /// Sets [`ServeConfig::eviction_grace`].
    pub fn eviction_grace(mut self, d: Duration) -> Self {
        self.eviction_grace = d;
        self
    }
    /// Sets [`ServeConfig::max_body_bytes`].
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) toward the hard limit and returns the
/// soft limit now in force. On platforms without the limit it returns `u64::MAX`.
pub fn raise_nofile_limit() -> io::Result<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX)
    }
    #[cfg(not(unix))]
    {
        Ok(u64::MAX)
    }
}

/// Binds a listener with a deep accept queue (4,096, capped by the system's `somaxconn`)
/// instead of the usual 1,024, so that a burst of connections is queued rather than made to
/// retry their handshake a second later.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// The current soft open-file limit (`u64::MAX` where there is none).
pub fn nofile_soft_limit() -> u64 {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024)
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

/// The connection cap used when [`ServeConfig::max_connections`] is `None`: half of what the
/// open-file soft limit leaves after 64 descriptors for everything else (database files, the
/// client's own connections), between 16 and 16,384. Under a 1,024 limit that is 480. A
/// process serving two servers under a low limit should set the caps itself.
pub fn default_max_connections() -> usize {
    let soft = nofile_soft_limit();
    let half = soft.saturating_sub(64) / 2;
    usize::try_from(half.clamp(16, 16_384)).unwrap_or(16_384)
}

/// The connection slots. When they are all taken, newcomers wait for a slot: those whose
/// whole request head has arrived first, then newest first, so that a burst of slow clients
/// that arrived earlier cannot queue a genuine sender behind it. At most `max_waiters` wait;
/// beyond that the oldest waiter that has sent no complete head is closed.
struct Slots {
    state: Mutex<SlotState>,
    max_waiters: usize,
}

struct SlotState {
    free: usize,
    /// Slots lent to ready waiters beyond the cap, each when a connection was asked to close
    /// to make room (see [`Slots::lend`]): the next slots dropped repay them instead of being
    /// handed over or freed.
    lent: usize,
    /// In arrival order.
    waiters: Vec<Waiter>,
}

struct Waiter {
    tx: tokio::sync::oneshot::Sender<Slot>,
    /// Its whole request head (or TLS hello) has arrived.
    ready: Arc<AtomicBool>,
}

/// A taken slot; dropping it hands it to the best waiter, or frees it.
struct Slot {
    slots: Arc<Slots>,
}

impl Slots {
    fn new(n: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(SlotState { free: n, lent: 0, waiters: Vec::new() }),
            max_waiters: (n / 2).max(16),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.lock();
        if state.free == 0 {
            return None;
        }
        state.free -= 1;
        Some(Slot { slots: self.clone() })
    }

    /// A slot now, or a place in the queue.
    fn take_or_wait(
        self: &Arc<Self>,
        ready: Arc<AtomicBool>,
    ) -> Result<Slot, tokio::sync::oneshot::Receiver<Slot>> {
        let mut state = self.lock();
        if state.free > 0 {
            state.free -= 1;
            return Ok(Slot { slots: self.clone() });
        }
        state.waiters.retain(|w| !w.tx.is_closed());
        if state.waiters.len() >= self.max_waiters {
            // Dropping its sender closes that waiter's connection.
            let i = state.waiters.iter().position(|w| !w.ready.load(Ordering::Acquire)).unwrap_or(0);
            state.waiters.remove(i);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        state.waiters.push(Waiter { tx, ready });
        Err(rx)
    }

    /// Hands a slot beyond the cap to the best ready waiter (whose whole request head has
    /// arrived, newest first), if any: called when a connection has just been asked to close,
    /// so that the waiter is served at once instead of after the closing connection's task
    /// has woken, closed and given its slot back (several wake-ups on a busy runtime). The
    /// cap is over-committed by at most the connections asked to close and not closed yet
    /// (each lends at most one slot, repaid by the next slot dropped), which the waiter
    /// already held a descriptor beside: the descriptors in use do not grow.
    fn lend(self: &Arc<Self>) -> bool {
        let mut state = self.lock();
        state.waiters.retain(|w| !w.tx.is_closed());
        while let Some(i) = state.waiters.iter().rposition(|w| w.ready.load(Ordering::Acquire)) {
            let waiter = state.waiters.remove(i);
            match waiter.tx.send(Slot { slots: self.clone() }) {
                Ok(()) => {
                    state.lent += 1;
                    return true;
                }
                // Its drop would lock again (and repay a debt not taken): forget it.
                Err(unsent) => std::mem::forget(unsent),
            }
        }
        false
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let slots = self.slots.clone();
        let mut state = slots.lock();
        if state.lent > 0 {
            state.lent -= 1;
            return;
        }
        loop {
            state.waiters.retain(|w| !w.tx.is_closed());
            let best = state
                .waiters
                .iter()
                .rposition(|w| w.ready.load(Ordering::Acquire))
                .or_else(|| state.waiters.len().checked_sub(1));
            let Some(i) = best else { break };
            let waiter = state.waiters.remove(i);
            // Hand the slot over without releasing it (a failed send returns the new slot,
            // whose drop would lock again: forget that one and keep looking).
            match waiter.tx.send(Slot { slots: slots.clone() }) {
                Ok(()) => return,
                Err(unsent) => std::mem::forget(unsent),
            }
        }
        state.free += 1;
    }
}

/// Whether the bytes waiting on `stream` hold a whole HTTP/1 request head (or a whole TLS
/// record, the start of a handshake); `None` when the peer closed.
async fn head_arrived(stream: &tokio::net::TcpStream) -> Option<bool> {
    let mut buf = [0u8; 8192];
    match tokio::time::timeout(Duration::ZERO, stream.peek(&mut buf)).await {
        Err(_) => Some(false),
        Ok(Err(_)) | Ok(Ok(0)) => None,
        Ok(Ok(n)) => {
            let got = &buf[..n];
            let tls = got.first() == Some(&0x16)
                && got.len() >= 5
                && got.len() >= 5 + usize::from(u16::from_be_bytes([got[3], got[4]]));
            Some(tls || got.windows(4).any(|w| w == b"\r\n\r\n"))
        }
    }
}

/// What happens on one connection, shared by its task, its I/O and the accept loop.
struct Conn {
    /// Requests answered.
    completed: AtomicU64,
    /// A request is being handled.
    in_flight: AtomicBool,
    /// Milliseconds (since the server's start) the connection became idle: accepted, or a
    /// request completed.
    idle_since: AtomicU64,
    /// Milliseconds (+1; 0 = none) the first byte arrived while idle.
    head_started: AtomicU64,
    /// Asked to close by the accept loop (cap reached).
    evicted: AtomicBool,
    /// Counted in [`Shared::closing`] (asked to close without lending its slot ahead).
    counted_closing: AtomicBool,
    evict: Notify,
    /// A request ended: the connection's deadline moved.
    request_done: Notify,
}

struct Shared {
    start: Instant,
    config: ServeConfig,
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// Newcomers queued for a slot.
    waiting: std::sync::atomic::AtomicUsize,
    /// Connections asked to close that have not closed yet.
    closing: std::sync::atomic::AtomicUsize,
    /// The connection slots.
    slots: Arc<Slots>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// When the connection must be closed if nothing changes; `None` while a request is in
    /// flight (the request timeout covers it).
    fn deadline(&self, c: &Conn) -> Option<Instant> {
        if c.in_flight.load(Ordering::Acquire) {
            return None;
        }
        let head = c.head_started.load(Ordering::Acquire);
        let at = if head != 0 {
            Duration::from_millis(head - 1) + self.config.header_read_timeout
        } else {
            let idle = Duration::from_millis(c.idle_since.load(Ordering::Acquire));
            if c.completed.load(Ordering::Acquire) == 0 {
                idle + self.config.header_read_timeout
            } else {
                idle + self.config.idle_timeout
            }
        };
        Some(self.start + at)
    }

    /// Makes room for a waiting newcomer when every slot is taken, unless enough connections
    /// are already closing for the newcomers waiting: asks the oldest connection that has
    /// not completed a request to close, but only one idle (or trickling a head) for longer
    /// than the eviction grace; while any such connection is younger than that, it waits for
    /// it to age rather than close a sender's kept-alive connection. Only when no connection
    /// is without a completed request does it ask the oldest kept-alive one idle past the
    /// grace. `false` when no connection may be asked now.
    fn make_room(&self) -> bool {
        if self.closing.load(Ordering::Acquire) >= self.waiting.load(Ordering::Acquire) {
            return true;
        }
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let closing = |c: &Arc<Conn>| c.evicted.load(Ordering::Acquire);
        let now = self.now_ms();
        let grace = u64::try_from(self.config.eviction_grace.as_millis()).unwrap_or(u64::MAX);
        let evictable = |c: &&Arc<Conn>| {
            !c.in_flight.load(Ordering::Acquire)
                && !closing(c)
                && now.saturating_sub(c.idle_since.load(Ordering::Acquire)) >= grace
        };
        let fresh = |c: &&Arc<Conn>| c.completed.load(Ordering::Acquire) == 0;
        let young_fresh =
            || conns.values().any(|c| fresh(&c) && !c.in_flight.load(Ordering::Acquire) && !closing(c));
        let victim = match conns.values().filter(evictable).find(fresh) {
            Some(c) => Some(c),
            None if young_fresh() => None,
            None => conns.values().find(evictable),
        };
        match victim {
            Some(c) => {
                c.evicted.store(true, Ordering::Release);
                // A ready waiter gets a slot now, lent ahead of this connection's close;
                // else the slot is handed over when it closes, and the connection counts as
                // closing for the waiters.
                if !self.slots.lend() {
                    c.counted_closing.store(true, Ordering::Release);
                    self.closing.fetch_add(1, Ordering::AcqRel);
                }
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then shuts down gracefully (see the
/// crate docs). Returns when every connection has closed, at most
/// [`ServeConfig::shutdown_timeout`] after `shutdown` completed.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    if config.raise_nofile_limit {
        match raise_nofile_limit() {
            Ok(limit) => tracing::debug!(limit, "open-file soft limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
        }
    }
    let max = config.max_connections.unwrap_or_else(default_max_connections).max(1);
    tracing::debug!(max_connections = max, "serving");
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let slots = Slots::new(max);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        config,
        conns: Mutex::new(BTreeMap::new()),
        waiting: std::sync::atomic::AtomicUsize::new(0),
        closing: std::sync::atomic::AtomicUsize::new(0),
        slots: slots.clone(),
    });
    let service = TowerToHyperService::new(app);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Per-connection failures (reset before accept) are harmless; anything else
                // (out of file descriptors) gets a pause instead of a hot loop.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                ) {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        // At the cap, the newcomer waits for a slot in its own task (the loop goes straight
        // back to accepting, so the listen queue never backs up) while an old idle connection
        // is asked to close (see `Shared::make_room`).
        let ready = slots.try_take();
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let shared = shared.clone();
        let service = service.clone();
        let stop_rx = stop_rx.clone();
        let tls = tls.clone();
        let slots = slots.clone();
        tasks.spawn(async move {
            let permit = match ready {
                Some(p) => p,
                None => match wait_for_slot(&stream, &slots, &shared).await {
                    Some(p) => p,
                    None => {
                        tracing::debug!(%peer, "no connection slot: closing the new one");
                        return;
                    }
                },
            };
            serve_conn(stream, peer, id, &shared, service, stop_rx, tls).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let bound = shared.config.shutdown_timeout;
    let drained = tokio::time::timeout(bound, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = tasks.len(), "shutdown bound reached: closing the remaining connections");
        tasks.shutdown().await;
    }
}

/// Waits for a slot (at most the header-read timeout), ready (first in line) when its request
/// head arrived within 20 ms, after asking an old idle connection to make room.
async fn wait_for_slot(
    stream: &tokio::net::TcpStream,
    slots: &Arc<Slots>,
    shared: &Arc<Shared>,
) -> Option<Slot> {
    let ready = Arc::new(AtomicBool::new(false));
    // A genuine client sends its whole request head at once: give it a moment (20 ms) to
    // arrive, so that it is queued as ready, goes first and is never the waiter closed when
    // too many wait.
    for pause in [0, 20] {
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        match head_arrived(stream).await {
            None => return None,
            Some(true) => {
                ready.store(true, Ordering::Release);
                break;
            }
            Some(false) => {}
        }
        if let Some(slot) = slots.try_take() {
            return Some(slot);
        }
    }
    let mut rx = match slots.take_or_wait(ready.clone()) {
        Ok(slot) => return Some(slot),
        Err(rx) => rx,
    };
    /// Counts the newcomer as waiting while it is queued.
    struct Queued<'a>(&'a Shared);
    impl Drop for Queued<'_> {
        fn drop(&mut self) {
            self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
    shared.waiting.fetch_add(1, Ordering::AcqRel);
    let _queued = Queued(shared);
    // Room now if an old idle connection may go; else the connections make it themselves as
    // their grace ends (see `run_conn`): the waiter itself only waits.
    shared.make_room();
    let give_up = Instant::now() + shared.config.header_read_timeout;
    tokio::select! {
        got = &mut rx => got.ok(),
        () = tokio::time::sleep_until(give_up) => None,
    }
}

/// One accepted connection, from registration to close.
async fn serve_conn(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: &Arc<Shared>,
    service: TowerToHyperService<axum::Router>,
    stop_rx: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    {
        let conn = Arc::new(Conn {
            completed: AtomicU64::new(0),
            in_flight: AtomicBool::new(false),
            idle_since: AtomicU64::new(shared.now_ms()),
            head_started: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            counted_closing: AtomicBool::new(false),
            evict: Notify::new(),
            request_done: Notify::new(),
        });
        shared.conns.lock().unwrap_or_else(|p| p.into_inner()).insert(id, conn.clone());
        let io = Watched { inner: stream, conn: conn.clone(), shared: shared.clone() };
        match tls {
            None => run_conn(io, None, peer, &conn, shared, service, stop_rx).await,
            Some(acceptor) => {
                let accepted =
                    tokio::time::timeout(shared.config.header_read_timeout, acceptor.accept(io)).await;
                if let Ok(Ok(tls_stream)) = accepted {
                    let cert = tls_stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| PeerCertificate(c.clone().into_owned()));
                    // The handshake is not a request: the head timeout starts afresh.
                    conn.head_started.store(0, Ordering::Release);
                    conn.idle_since.store(shared.now_ms(), Ordering::Release);
                    run_conn(tls_stream, cert, peer, &conn, shared, service, stop_rx).await;
                }
            }
        }
    }
    let removed = shared.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    if removed.is_some_and(|c| c.counted_closing.load(Ordering::Acquire)) {
        shared.closing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection was closed without an answer (the service's error, which makes hyper
/// drop the connection).
#[derive(Debug)]
enum Closed {
    Dropped,
    TimedOut,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Dropped => f.write_str("connection dropped on the handler's request"),
            Closed::TimedOut => f.write_str("request timed out"),
        }
    }
}

impl std::error::Error for Closed {}

/// Clears the in-flight mark when the request ends, however it ends.
struct InFlight {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.completed.fetch_add(1, Ordering::AcqRel);
        self.conn.head_started.store(0, Ordering::Release);
        self.conn.idle_since.store(self.shared.now_ms(), Ordering::Release);
        self.conn.in_flight.store(false, Ordering::Release);
        self.conn.request_done.notify_one();
    }
}

async fn run_conn<I>(
    io: I,
    cert: Option<PeerCertificate>,
    peer: SocketAddr,
    conn: &Arc<Conn>,
    shared: &Arc<Shared>,
    service: TowerToHyperService<axum::Router>,
    mut stop_rx: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let per_request = {
        let conn = conn.clone();
        let shared = shared.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            conn.in_flight.store(true, Ordering::Release);
            let guard = InFlight { conn: conn.clone(), shared: shared.clone() };
            let service = service.clone();
            let cert = cert.clone();
            let limits = (shared.config.request_timeout, shared.config.max_body_bytes);
            async move {
                let _guard = guard;
                handle(req, service, peer, cert, limits).await
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let http = builder.serve_connection(TokioIo::new(io), per_request);
    let mut http = std::pin::pin!(http);
    let mut stopping = *stop_rx.borrow();
    if stopping {
        return;
    }
    // The idle period (its start) whose end of grace has been seen to.
    let mut graced = None;
    loop {
        let now = Instant::now();
        // Woken at the deadline as it stands, and at least every header timeout so that a
        // kept-alive connection whose next request head started is held to that timeout.
        let mut wake = match shared.deadline(conn) {
            Some(d) if d <= now => break,
            Some(d) => d.min(now + shared.config.header_read_timeout),
            None => now + shared.config.header_read_timeout,
        };
        // Idle past the grace period, the connection may be evicted: if newcomers are waiting
        // for room, it makes some (itself, or an older idle one) then, instead of each
        // waiter polling for it.
        if !conn.in_flight.load(Ordering::Acquire) {
            let since = conn.idle_since.load(Ordering::Acquire);
            if graced != Some(since) {
                let grace_at = shared.start + Duration::from_millis(since) + shared.config.eviction_grace;
                if grace_at <= now {
                    graced = Some(since);
                    shared.make_room();
                } else {
                    wake = wake.min(grace_at);
                }
            }
        }
        tokio::select! {
            // Errors here are the client's, a timeout or a deliberate drop: nothing to report.
            _ = http.as_mut() => break,
            () = conn.evict.notified() => break,
            () = conn.request_done.notified() => {}
            () = tokio::time::sleep_until(wake) => {}
            _ = stop_rx.changed(), if !stopping => {
                stopping = true;
                if !conn.in_flight.load(Ordering::Acquire) {
                    break;
                }
                // Finish the request in flight, then close.
                http.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request: refused at once when it announces `Expect: 100-continue` with a body over
/// the limit, else handed to the application (a panic answered `500`), then the rest of a
/// body the application did not read drained (up to the limit) before the answer goes out.
async fn handle(
    mut req: hyper::Request<Incoming>,
    service: TowerToHyperService<axum::Router>,
    peer: SocketAddr,
    cert: Option<PeerCertificate>,
    (limit, max_body): (Duration, u64),
) -> Result<axum::response::Response, Closed> {
    let deadline = Instant::now() + limit;
    let expects_continue = req
        .headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let announced = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if expects_continue && announced.is_some_and(|n| n > max_body) {
        // Answered before the body is asked for: hyper sends no `100 Continue`.
        let mut res = json_answer(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            &format!("The request body is too large: at most {max_body} bytes are taken"),
        );
        close_after(&mut res);
        return Ok(res);
    }
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    if let Some(cert) = cert {
        req.extensions_mut().insert(cert);
    }
    let (parts, body) = req.into_parts();
    let body = Arc::new(Mutex::new(BodyState { body, polled: false }));
    let req = hyper::Request::from_parts(parts, axum::body::Body::new(SharedBody(body.clone())));
    let call = CatchPanic(Box::pin(hyper::service::Service::call(&service, req)));
    let mut res = match tokio::time::timeout_at(deadline, call).await {
        Ok(Ok(Ok(res))) => res,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(panic)) => {
            tracing::error!(panic = %panic, "a request handler panicked: answered 500");
            json_answer(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "The server failed on this request",
            )
        }
        Err(_) => return Err(Closed::TimedOut),
    };
    if res.extensions().get::<DropConnection>().is_some() {
        return Err(Closed::Dropped);
    }
    let (ended, polled) = {
        let st = body.lock().unwrap_or_else(|p| p.into_inner());
        (hyper::body::Body::is_end_stream(&st.body), st.polled)
    };
    if !ended {
        if expects_continue && !polled {
            // The client waits for `100 Continue` before sending the body: it sends none.
            close_after(&mut res);
        } else if !drain(&body, max_body, deadline).await {
            close_after(&mut res);
        }
    }
    Ok(res)
}

/// Reads and discards the rest of a request body, at most `max` bytes, until `deadline`;
/// `true` when it ended.
async fn drain(body: &Arc<Mutex<BodyState>>, max: u64, deadline: Instant) -> bool {
    let mut read = 0u64;
    let all = async {
        loop {
            let frame = std::future::poll_fn(|cx| {
                let mut st = body.lock().unwrap_or_else(|p| p.into_inner());
                Pin::new(&mut st.body).poll_frame(cx)
            })
            .await;
            match frame {
                None => return true,
                Some(Err(_)) => return false,
                Some(Ok(f)) => {
                    let n = f.data_ref().map_or(0, |d| d.len() as u64);
                    read = read.saturating_add(n);
                    if read > max {
                        return false;
                    }
                }
            }
        }
    };
    tokio::time::timeout_at(deadline, all).await.unwrap_or(false)
}

/// A request body shared between the application and [`handle`], which drains what the
/// application left.
struct BodyState {
    body: Incoming,
    polled: bool,
}

struct SharedBody(Arc<Mutex<BodyState>>);

impl hyper::body::Body for SharedBody {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        st.polled = true;
        Pin::new(&mut st.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.0.lock().unwrap_or_else(|p| p.into_inner()).body)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::Body::size_hint(&self.0.lock().unwrap_or_else(|p| p.into_inner()).body)
    }
}

/// A future whose panic becomes `Err(message)`.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned()))),
        }
    }
}

/// A small JSON answer `{code, message}` from the server itself.
fn json_answer(status: hyper::StatusCode, code: &str, message: &str) -> axum::response::Response {
    let body = format!("{{\"code\":\"{code}\",\"message\":\"{message}\"}}");
    let mut res = axum::response::Response::new(axum::body::Body::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    res
}

/// Marks the answer as the connection's last.
fn close_after(res: &mut axum::response::Response) {
    res.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
}

/// The connection's socket, noting when the head of a request starts arriving.
struct Watched<T> {
    inner: T,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && !this.conn.in_flight.load(Ordering::Acquire)
            && this.conn.head_started.load(Ordering::Acquire) == 0
        {
            this.conn.head_started.store(this.shared.now_ms() + 1, Ordering::Release);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot lent to a ready waiter beyond the cap is repaid by the next slot dropped: the
    /// cap is over-committed only until then, and only ready waiters are lent to.
    #[tokio::test]
    async fn a_lent_slot_is_repaid_by_the_next_slot_dropped() {
        let slots = Slots::new(1);
        let held = slots.try_take().expect("the one slot");
        let not_ready = slots.take_or_wait(Arc::new(AtomicBool::new(false))).err().expect("queued");
        assert!(!slots.lend(), "a waiter without its head is not lent a slot");
        let ready = slots.take_or_wait(Arc::new(AtomicBool::new(true))).err().expect("queued");
        assert!(slots.lend());
        let lent = ready.await.expect("lent slot");
        assert_eq!(slots.lock().lent, 1);
        // The victim closes: its slot repays the loan, and is not handed to the other waiter.
        drop(held);
        let counts = {
            let s = slots.lock();
            (s.lent, s.free)
        };
        assert_eq!(counts, (0, 0));
        // The next slot dropped goes to the waiter, as before.
        drop(lent);
        let got = not_ready.await.expect("handed over");
        drop(got);
        let counts = {
            let s = slots.lock();
            (s.lent, s.free)
        };
        assert_eq!(counts, (0, 1));
    }
}
