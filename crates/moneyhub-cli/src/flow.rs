//! Completing an authorisation flow (connect, reauth, refresh, reconsent), through PAR and
//! the client's code exchange or through Moneyhub's Auth Requests API (`--via auth-request`).
//!
//! * On a sandbox (unless `--browser`): the CLI plays the user's browser itself: it GETs the
//!   authorisation URL without following redirects (the sandbox consents at once) and hands the
//!   redirect's `Location` to the code exchange.
//! * Otherwise it prints the URL on stderr and waits for the callback: when the redirect URI is
//!   a loopback `http://` URI it listens there (a one-page HTTP server answering the browser);
//!   for any other redirect URI it asks for the URL the browser ended up on, read from stdin.

use std::time::Duration;

use moneyhub::{
    AuthFlow, AuthRequest, AuthRequestStatus, AuthorizationRequest, BankId, ConnectOptions, Connected,
    Connection, ConnectionId, NewAuthRequest, RenewOptions, UserId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::cli::{FlowArgs, Via};
use crate::context::{is_loopback, Ctx};
use crate::exit::{CmdResult, Failure, AUTH};
use crate::output;

/// Completes `request` and returns the verified outcome of the code exchange.
pub async fn complete(ctx: &Ctx, request: &AuthorizationRequest, flow: &FlowArgs) -> CmdResult<Connected> {
    let callback = if plays_the_browser(ctx, flow).await {
        sandbox_consent(ctx, request).await?
    } else {
        wait_for_callback(request, Duration::from_secs(flow.timeout.max(1))).await?
    };
    ctx.client.auth().exchange_code(request, callback.as_str()).await.map_err(|e| ctx.fail(e))
}

/// Runs an authorisation through the Auth Requests API: creates the request, lets the user
/// consent (on a sandbox the command plays the browser; otherwise it prints the auth URL and
/// waits for the callback as for PAR), hands the callback to Moneyhub, and returns the
/// completed request. A completion with `status: error` is an authentication failure naming
/// the error.
pub async fn via_auth_request(ctx: &Ctx, new: &NewAuthRequest, flow: &FlowArgs) -> CmdResult<AuthRequest> {
    let ars = ctx.client.auth_requests();
    let created = ars.create(new).await.map_err(|e| ctx.fail(e))?;
    let url = created.redirect_params.auth_url.clone().ok_or_else(|| {
        Failure::api(format!("auth request {} came back without redirectParams.authUrl", created.id))
    })?;
    let redirect = created.redirect_uri.clone().unwrap_or_else(|| new.body().redirect_uri.clone());
    let timeout = Duration::from_secs(flow.timeout.max(1));
    let callback = if plays_the_browser(ctx, flow).await {
        consent_at(ctx, &url).await?
    } else {
        output::warn(&format!("moneyhub: auth request {}", created.id));
        wait_for_callback_at(&url, &redirect, timeout).await?
    };
    let done = ars.complete_with_callback(&created.id, &callback).await.map_err(|e| ctx.fail(e))?;
    if done.status != AuthRequestStatus::Complete {
        let why = match (&done.error, &done.error_description) {
            (Some(e), Some(d)) => format!("{e}: {d}"),
            (Some(e), None) => e.clone(),
            _ => "no error given".to_owned(),
        };
        return Err(auth_failure(format!(
            "auth request {} ended with status {} ({why})",
            done.id, done.status
        )));
    }
    Ok(done)
}

/// Whether the command plays the user's browser itself: on a sandbox that consents at once,
/// unless `--browser`. A sandbox serving consent pages (`sandbox serve --consent
/// interactive`) wants a person: the command then does what `--browser` does.
async fn plays_the_browser(ctx: &Ctx, flow: &FlowArgs) -> bool {
    if !ctx.is_sandbox() || flow.browser {
        return false;
    }
    if ctx.sandbox_shows_consent_pages().await {
        output::warn(
            "moneyhub: the sandbox shows consent pages (interactive consent): open the URL below and click through",
        );
        return false;
    }
    true
}

/// Plays the browser on a sandbox: GET the authorisation URL, return the redirect target.
pub async fn sandbox_consent(ctx: &Ctx, request: &AuthorizationRequest) -> CmdResult<String> {
    consent_at(ctx, request.url.as_str()).await
}

async fn consent_at(ctx: &Ctx, url: &str) -> CmdResult<String> {
    let resp =
        ctx.http.get(url).send().await.map_err(|e| {
            Failure::api(format!("GET /oidc/auth on the sandbox failed: {}", without_url(&e)))
        })?;
    let status = resp.status();
    if status.is_redirection() {
        if let Some(location) = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()) {
            return Ok(location.to_owned());
        }
    }
    let body = resp.text().await.unwrap_or_default();
    Err(Failure::api(format!(
        "GET /oidc/auth on the sandbox answered HTTP {status} instead of redirecting: {}",
        body.chars().take(300).collect::<String>()
    )))
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

fn auth_failure(message: impl Into<String>) -> Failure {
    Failure { code: AUTH, message: message.into() }
}

/// Prints the URL and waits for the browser to come back to the redirect URI.
async fn wait_for_callback(request: &AuthorizationRequest, timeout: Duration) -> CmdResult<String> {
    wait_for_callback_at(request.url.as_str(), &request.redirect_uri, timeout).await
}

async fn wait_for_callback_at(url: &str, redirect_uri: &str, timeout: Duration) -> CmdResult<String> {
    let redirect = url::Url::parse(redirect_uri)
        .map_err(|e| Failure::usage(format!("redirect URI {redirect_uri:?}: {e}")))?;
    output::warn("Open this URL in a browser to continue:");
    output::warn(&format!("  {url}"));
    if redirect.scheme() == "http" && is_loopback(&redirect) {
        listen(&redirect, timeout).await
    } else {
        output::warn(&format!("Then paste here the URL the browser was sent to ({redirect_uri}?code=…):"));
        let read = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        });
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(Ok(line))) if !line.trim().is_empty() => Ok(line.trim().to_owned()),
            Ok(Ok(Ok(_))) => Err(auth_failure("no callback URL was pasted (end of input)")),
            Ok(Ok(Err(e))) => Err(Failure::internal(format!("could not read stdin: {e}"))),
            Ok(Err(e)) => Err(Failure::internal(format!("could not read stdin: {e}"))),
            Err(_) => Err(auth_failure(format!("no callback URL within {} s", timeout.as_secs()))),
        }
    }
}

const PAGE_OK: &str = "<!doctype html><meta charset=utf-8><title>moneyhub</title>\
<p>The authorisation came back to the <code>moneyhub</code> command. You can close this window.</p>";
const PAGE_NOT_FOUND: &str =
    "<!doctype html><meta charset=utf-8><title>moneyhub</title><p>Not the callback.</p>";

/// Serves the loopback redirect URI until the callback arrives (or the timeout passes).
async fn listen(redirect: &url::Url, timeout: Duration) -> CmdResult<String> {
    let host = match redirect.host() {
        Some(url::Host::Domain(_)) | None => "127.0.0.1".to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
    };
    let port = redirect.port_or_known_default().unwrap_or(80);
    let listener = TcpListener::bind(format!("{host}:{port}"))
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on the redirect URI {redirect}: {e}")))?;
    output::warn(&format!(
        "Waiting for the browser to come back to {redirect} (for up to {} s)…",
        timeout.as_secs()
    ));
    let wanted = redirect.path().to_owned();
    let serve = async {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { continue };
            let mut buf = Vec::with_capacity(2048);
            let mut chunk = [0u8; 2048];
            // Read the request head (at most 16 KiB, at most 5 s).
            let head = tokio::time::timeout(Duration::from_secs(5), async {
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if head.is_err() {
                continue;
            }
            let text = String::from_utf8_lossy(&buf);
            let target = text.lines().next().and_then(|l| {
                let mut parts = l.split_whitespace();
                (parts.next() == Some("GET")).then(|| parts.next()).flatten()
            });
            let (path, query) = match target {
                Some(t) => t.split_once('?').map_or((t, ""), |(p, q)| (p, q)),
                None => ("", ""),
            };
            let hit = path == wanted && !query.is_empty();
            let (status, page) = if hit { ("200 OK", PAGE_OK) } else { ("404 Not Found", PAGE_NOT_FOUND) };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
            if hit {
                let mut callback = redirect.clone();
                callback.set_query(Some(query));
                return callback.to_string();
            }
        }
    };
    tokio::time::timeout(timeout, serve).await.map_err(|_| {
        auth_failure(format!("the browser did not come back to {redirect} within {} s", timeout.as_secs()))
    })
}

// ----- starting the flows the commands share (connect, renewals) ----------------------------

/// Connects `user` to `bank` and returns the outcome of the code exchange.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub async fn connect_bank(
    ctx: &Ctx,
    user: &UserId,
    bank: &BankId,
    enable_async: bool,
    flow: &FlowArgs,
) -> CmdResult<Connected> {
    let options = ConnectOptions::new(bank.clone()).user(user.clone()).enable_async(enable_async);
    let request = ctx.client.auth().connect(options).await.map_err(|e| ctx.fail(e))?;
    complete(ctx, &request, flow).await
}

/// The connection as listed, if it can be read.
pub async fn find_connection(ctx: &Ctx, user: &UserId, id: &moneyhub::ConnectionId) -> Option<Connection> {
    ctx.client.connections().list(user).await.ok()?.into_iter().find(|c| &c.id == id)
}

/// The flow's name in messages and JSON.
pub fn flow_name(flow: AuthFlow) -> &'static str {
    match flow {
        AuthFlow::Connect => "connect",
        AuthFlow::Reauth => "reauth",
        AuthFlow::Refresh => "refresh",
        AuthFlow::Reconsent => "reconsent",
    }
}

/// Checks that `flow` makes sense for `connection` (reconsent needs `tppConsent`).
pub fn precheck(flow: AuthFlow, connection: &Connection) -> CmdResult {
    match flow {
        AuthFlow::Reconsent if connection.tpp_consent != Some(true) => Err(Failure::usage(format!(
            "connection {} has no tppConsent: a reconsent is not possible, the user must go back to the bank (`moneyhub reauth`)",
            connection.id
        ))),
        AuthFlow::Reconsent if connection.expires_at.is_none() => Err(Failure::usage(format!(
            "connection {} has no consent expiry to renew (legacy connections and some banks never expire)",
            connection.id
        ))),
        AuthFlow::Refresh if !connection.kind.is_legacy() => {
            output::warn(&format!(
                "moneyhub: note: refresh is meant for legacy connections; {} is of type {}",
                connection.name, connection.kind
            ));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Runs one renewal flow for `connection` and returns the code exchange's outcome.
pub async fn renew(
    ctx: &Ctx,
    flow: AuthFlow,
    user: &UserId,
    connection: &Connection,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    flow_args: &FlowArgs,
) -> CmdResult<Renewed> {
    precheck(flow, connection)?;
    let mut options = RenewOptions::new(user.clone(), connection.id.clone());
    if flow_args.via == Via::AuthRequest {
        let mut new = NewAuthRequest::renew(flow_name(flow), user.clone(), connection.id.clone())
            .map_err(|e| ctx.fail(e))?;
        if let Some(at) = expires_at {
            new = new.expires_at(at);
        }
        let done = via_auth_request(ctx, &new, flow_args).await?;
        let connection_id = done.connection_id.clone().ok_or_else(|| {
            Failure::api(format!("auth request {} completed without a connection id", done.id))
        })?;
        return Ok(Renewed { connection_id, auth_request: Some(done.id) });
    }
    if let Some(at) = expires_at {
        options = options.expires_at(at);
    }
    let auth = ctx.client.auth();
    let request = match flow {
        AuthFlow::Reauth => auth.reauth(options).await,
        AuthFlow::Refresh => auth.refresh(options).await,
        _ => auth.reconsent(options).await,
    }
    .map_err(|e| ctx.fail(e))?;
    let connected: Connected = complete(ctx, &request, flow_args).await?;
    Ok(Renewed { connection_id: connected.connection_id, auth_request: None })
}

/// What a renewal produced.
pub struct Renewed {
    /// The renewed connection (a reauth may give a new id).
    pub connection_id: ConnectionId,
    /// The auth request used, with `--via auth-request`.
    pub auth_request: Option<String>,
}
