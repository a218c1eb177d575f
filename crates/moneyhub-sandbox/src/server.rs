//! Starting a sandbox: the listener, the router and the request log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::data::ApiVersion;
use crate::error::ApiError;
use crate::faults::DropConnection;
use crate::http::PEER_CERT_HEADER;
use crate::request_log::{LogEntry, LogNote};
use crate::state::{AppState, Core, LogRoom};

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
}

/// A running sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct Sandbox {
    state: AppState,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts a sandbox on `config.bind` (use port 0 in tests) and returns its handle.
///
/// ```no_run
/// # async fn demo() -> Result<(), moneyhub_sandbox::SandboxError> {
/// let sandbox = moneyhub_sandbox::spawn(moneyhub_sandbox::SandboxConfig::default()).await?;
/// println!("identity at {}, data at {}", sandbox.identity_url(), sandbox.api_url_v3());
/// # Ok(()) }
/// ```
pub async fn spawn(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
    if let crate::config::ClockMode::Frozen(at) = config.clock {
        if !crate::clock::in_range(at) {
            return Err(SandboxError::Config(format!(
                "the clock start {at} must lie between 1970-01-01 and 9999-12-31"
            )));
        }
    }
    if config.clients.is_empty() {
        return Err(SandboxError::Config("at least one client must be registered".into()));
    }
    if !config.bind.ip().is_loopback() && config.control_token.as_deref().is_none_or(str::is_empty) {
        return Err(SandboxError::Config(format!(
            "listening on {} (not loopback) needs a control token: anyone who reaches the \
             address could otherwise drive the control API",
            config.bind.ip()
        )));
    }
    let bind = config.bind;
    let listener = moneyhub_http::bind(bind).map_err(|source| SandboxError::Bind { addr: bind, source })?;
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind { addr: bind, source })?;
    let scheme = if config.http.tls.is_some() { "https" } else { "http" };
    let base_url = match &config.public_url {
        Some(u) => {
            let parsed = url::Url::parse(u)
                .map_err(|e| SandboxError::Config(format!("public url {u:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(SandboxError::Config(format!("public url {u:?} must be http(s) with a host")));
            }
            u.trim_end_matches('/').to_owned()
        }
        None if addr.ip().is_unspecified() => format!("{scheme}://127.0.0.1:{}", addr.port()),
        None => format!("{scheme}://{addr}"),
    };
    let state = AppState::new(config, base_url).map_err(SandboxError::Config)?;
    if let Some(scenario) = &state.core.config.scenario {
        crate::scenario::apply(&state, scenario, true).map_err(|e| SandboxError::Config(e.to_string()))?;
    }
    crate::lifecycle::start_ticker(state.clone());
    crate::webhooks::start(state.clone());
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(listener, app, state.core.config.http.clone(), rx));
    Ok(Sandbox { state, addr, shutdown: Some(tx), task: Some(task) })
}

/// Starts a sandbox and serves it until `shutdown` completes; then stops gracefully (no new
/// connections, requests in flight answered, at most `config.http.shutdown_timeout`).
///
/// ```no_run
/// # async fn demo() -> Result<(), moneyhub_sandbox::SandboxError> {
/// moneyhub_sandbox::serve(moneyhub_sandbox::SandboxConfig::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve(
    config: SandboxConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), SandboxError> {
    let sandbox = spawn(config).await?;
    shutdown.await;
    sandbox.shutdown().await;
    Ok(())
}

impl Sandbox {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT`: the identity service's base URL (REST routes live here).
    pub fn base_url(&self) -> &str {
        &self.state.core.base_url
    }
    /// The identity service URL to give clients (same as [`Sandbox::base_url`]).
    pub fn identity_url(&self) -> &str {
        &self.state.core.base_url
    }
    /// The OIDC issuer, `<base>/oidc`.
    pub fn issuer(&self) -> String {
        self.state.core.issuer()
    }
    /// The Data API v2.0 base URL.
    pub fn api_url_v2(&self) -> String {
        format!("{}/v2.0", self.state.core.base_url)
    }
    /// The Data API v3 base URL.
    pub fn api_url_v3(&self) -> String {
        format!("{}/v3", self.state.core.base_url)
    }
    /// The first registered client's id.
    pub fn client_id(&self) -> &str {
        self.state.core.config.clients.first().map(|c| c.client_id.as_str()).unwrap_or_default()
    }
    /// The first registered client's secret, if it has one.
    pub fn client_secret(&self) -> Option<&str> {
        self.state.core.config.clients.first().and_then(|c| c.client_secret.as_deref())
    }
    /// The sandbox's current (virtual) time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.state.core.clock.now()
    }
    /// Moves the sandbox's virtual clock forward by `by` (only the clock: nothing else runs)
    /// and returns the new time. Negative durations are refused.
    pub fn advance_clock(&self, by: chrono::Duration) -> Result<chrono::DateTime<chrono::Utc>, String> {
        self.state.core.clock.advance(by)
    }
    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        self.state.core.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
    /// Waits until the server stops (it only stops when shut down or dropped elsewhere).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.state.core.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::identity::routes())
        .merge(crate::rest::routes())
        .merge(crate::control::routes(state.clone()))
        .merge(crate::ui::routes())
        // The official Node client's `{version: "v2"}` asks `/v2/...`: the same routes.
        .nest("/v2.0", crate::data::routes(ApiVersion::V2))
        .nest("/v2", crate::data::routes(ApiVersion::V2))
        .nest("/v3", crate::data::routes(ApiVersion::V3))
        .nest("/v3.0", crate::data::routes(ApiVersion::V3))
        .fallback(not_implemented)
        .method_not_allowed_fallback(not_implemented)
        // A method a nested router's route lacks answers 405 inside it: the same 404.
        .layer(middleware::map_response(method_not_served))
        // Inside the log layer, so injected faults are logged too.
        .layer(middleware::from_fn_with_state(state.clone(), crate::faults::fault_layer))
        .layer(middleware::from_fn_with_state(state.clone(), log_requests))
        .layer(middleware::from_fn(peer_certificate))
        .with_state(state)
}

/// Every method and path the sandbox does not serve: the JSON 404 that says so (as Moneyhub
/// answers a route it does not have, and so that nobody mistakes it for a missing resource).
pub(crate) async fn not_implemented(method: axum::http::Method, uri: axum::extract::OriginalUri) -> Response {
    not_implemented_response(&method, uri.0.path())
}

fn not_implemented_response(method: &axum::http::Method, path: &str) -> Response {
    // The path is the client's: shown bounded, as the log keeps it.
    let path = crate::request_log::bounded(path, 256);
    ApiError::not_found(format!("The sandbox does not implement {method} {path}")).into_response()
}

/// Turns any 405 a nested router produced into [`not_implemented`]'s 404.
async fn method_not_served(
    method: axum::http::Method,
    uri: axum::extract::OriginalUri,
    res: Response,
) -> Response {
    if res.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        return not_implemented_response(&method, uri.0.path());
    }
    res
}

/// Turns the connection's client certificate ([`moneyhub_http::tls::PeerCertificate`]) into
/// [`PEER_CERT_HEADER`], where the token endpoint and the bearer-token checks read it.
async fn peer_certificate(mut req: Request, next: Next) -> Response {
    req.headers_mut().remove(PEER_CERT_HEADER);
    let thumbprint = req
        .extensions()
        .get::<moneyhub_http::tls::PeerCertificate>()
        .map(|cert| crate::keys::thumbprint(cert.der()));
    if let Some(t) = thumbprint.and_then(|t| axum::http::HeaderValue::from_str(&t).ok()) {
        req.headers_mut().insert(PEER_CERT_HEADER, t);
    }
    next.run(req).await
}

async fn log_requests(
    State(core): State<Arc<Core>>,
    State(log): State<Arc<LogRoom>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let at = crate::clock::iso(core.clock.now());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    // The route template, so that ids do not make a metric per request.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let query = req.uri().query().map(str::to_string);
    // The body, read here (up to the limit every handler has) so that the log can keep its
    // start, secrets redacted, whatever the route does with it (`logs tail --bodies`).
    let content_type =
        req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (parts, body) = req.into_parts();
    let limit = body_limit(&path);
    let (res, body) = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            let kept = crate::request_log::body_for_log(content_type.as_deref(), &bytes);
            (next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await, kept)
        }
        Err(_) => (too_large_or_unreadable(parts.uri.path(), limit), None),
    };
    let (body, body_cut) = match body {
        Some((b, cut)) => (Some(b), cut),
        None => (None, false),
    };
    let note = res.extensions().get::<LogNote>().map(|n| n.0.clone());
    // A dropped connection gets no status at all: log 0.
    let dropped = res.extensions().get::<DropConnection>().is_some();
    let status = if dropped { 0 } else { res.status().as_u16() };
    *log.route_counts.lock().entry((metric_method(&method), route, status)).or_insert(0) += 1;
    // Cut to the log's byte bounds, `?token=` redacted (see `request_log`).
    log.requests.push(LogEntry {
        seq: 0,
        at,
        method,
        path,
        query,
        status,
        duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        note,
        body,
        truncated: body_cut,
    });
    res
}

/// The most bytes of a request body the sandbox reads (axum's default limit, which every
/// handler's body extractor applies too).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The most bytes of a `POST /__sandbox/scenario` body: a fleet's scenario (100,000 users
/// with a connection each are 8.9 MB of JSON) must load in one request. Its route raises
/// its extractor's limit to the same (`control::routes`). The store's own bounds still
/// apply to what the scenario makes.
pub(crate) const SCENARIO_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The body limit of a request to `path`.
fn body_limit(path: &str) -> usize {
    if path == "/__sandbox/scenario" {
        SCENARIO_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// The answer to a body over `limit` (or one that could not be read), in the format of
/// the route: OAuth's error object under `/oidc/`, Moneyhub's elsewhere.
fn too_large_or_unreadable(path: &str, limit: usize) -> Response {
    let message = format!("The request body is too large (at most {limit} bytes) or could not be read");
    if path.starts_with("/oidc/") {
        crate::error::OAuthError {
            status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            ..crate::error::OAuthError::invalid_request(message)
        }
        .into_response()
    } else {
        ApiError::custom(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", message)
            .into_response()
    }
}

/// The `method` label of the request metrics: the methods HTTP defines, and `other` for any
/// made-up one, so that clients cannot make one series per method they invent.
fn metric_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"];
    KNOWN.iter().find(|m| **m == method).copied().unwrap_or("other")
}

async fn serve_on(
    listener: TcpListener,
    app: Router,
    config: moneyhub_http::ServeConfig,
    shutdown: oneshot::Receiver<()>,
) {
    moneyhub_http::serve(listener, app, config, async move {
        let _ = shutdown.await;
    })
    .await;
}
