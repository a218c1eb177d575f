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
        let state = created.redirect_params.state.clone().or_else(|| state_in(&url));
        wait_for_callback_at(&url, &redirect, state.as_deref(), timeout).await?
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

/// The `state` a URL's query names, if any.
fn state_in(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned())
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
    wait_for_callback_at(request.url.as_str(), &request.redirect_uri, Some(&request.state), timeout).await
}

/// Waits for the callback of the authorisation at `url`.
///
/// On a loopback redirect URI the listener is bound **before** the URL is printed: a second
/// command that cannot listen fails at once and never hands out a URL whose callback would
/// reach another command's listener. A callback whose `state` is not `state` (another
/// command's, an older link's) is answered with a page that says so and does not end the
/// wait. `state: None` (an auth request whose URL names none) accepts any callback.
async fn wait_for_callback_at(
    url: &str,
    redirect_uri: &str,
    state: Option<&str>,
    timeout: Duration,
) -> CmdResult<String> {
    let redirect = url::Url::parse(redirect_uri)
        .map_err(|e| Failure::usage(format!("redirect URI {redirect_uri:?}: {e}")))?;
    if redirect.scheme() == "http" && is_loopback(&redirect) {
        let listener = bind(&redirect).await?;
        output::warn("Open this URL in a browser to continue:");
        output::warn(&format!("  {url}"));
        listen(listener, &redirect, state, timeout).await
    } else {
        output::warn("Open this URL in a browser to continue:");
        output::warn(&format!("  {url}"));
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

/// Escapes text for the callback pages (element content and quoted attributes).
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet of the callback pages (inline: the pages load nothing).
const CALLBACK_STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;\
background:#f4f5f9;color:#1d2333}header{background:#2b3a67;color:#fff;padding:12px 24px;font-weight:600}\
main{max-width:640px;margin:32px auto;padding:0 16px}section{background:#fff;border-radius:10px;\
padding:16px 20px;box-shadow:0 1px 3px rgba(0,0,0,.08);border-left:6px solid #2b3a67}\
section.ok{border-left-color:#17663a}section.bad{border-left-color:#a31d12}section.warn{border-left-color:#8a5a00}\
h1{font-size:1.3em;margin:0 0 12px}code{background:#eef0f6;padding:1px 4px;border-radius:4px;\
overflow-wrap:anywhere}p.next{font-weight:600}";

/// One callback page: `kind` is `ok`, `bad` or `warn` (the colour of its edge); `body` is HTML.
fn callback_page(kind: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · moneyhub</title><style>{CALLBACK_STYLE}</style></head><body>\
         <header>moneyhub</header><main><section class=\"{kind}\" id=\"outcome\" data-outcome=\"{kind}\">\
         <h1>{title}</h1>{body}</section></main></body></html>",
        title = escape_html(title)
    )
}

/// The page the browser gets when the callback is ours: which outcome, and what happens next.
fn outcome_page(query: &str) -> String {
    let params = moneyhub::CallbackParams::from_query(query);
    let error = params.error.as_deref();
    let description = params.error_description.as_deref().map(escape_html);
    let detail = description
        .map(|d| format!("<p>The server said: <q id=\"description\">{d}</q></p>"))
        .unwrap_or_default();
    match error {
        None if params.code.is_some() => callback_page(
            "ok",
            "Approved",
            "<p>The authorisation came back to the <code>moneyhub</code> command.</p>\
             <p class=\"next\">Next: the command exchanges the code and prints the connection. \
             You can close this window and go back to the terminal.</p>",
        ),
        Some("access_denied") => callback_page(
            "warn",
            "Cancelled",
            &format!(
                "<p>The request was cancelled (<code>access_denied</code>): nothing was shared.</p>{detail}\
                 <p class=\"next\">Next: the command stops with an authentication error. Run it again \
                 to start over. You can close this window.</p>"
            ),
        ),
        Some("server_error") | Some("temporarily_unavailable") => callback_page(
            "bad",
            "The bank or Moneyhub had a problem",
            &format!(
                "<p>The authorisation failed on the server's side (<code>{}</code>), not because of \
                 anything you entered.</p>{detail}<p class=\"next\">Next: the command stops with an \
                 authentication error. Try again in a moment. You can close this window.</p>",
                escape_html(error.unwrap_or_default())
            ),
        ),
        Some(other) => callback_page(
            "bad",
            "The authorisation failed",
            &format!(
                "<p>The authorisation came back with the error <code id=\"error\">{}</code>.</p>{detail}\
                 <p class=\"next\">Next: the command stops and prints the error in the terminal. \
                 You can close this window.</p>",
                escape_html(other)
            ),
        ),
        None => callback_page(
            "bad",
            "No code came back",
            "<p>The browser came back without an authorisation code or an error.</p>\
             <p class=\"next\">Next: the command stops and prints the error in the terminal. You can \
             close this window.</p>",
        ),
    }
}

/// The page for a callback that carries another flow's `state`.
fn foreign_state_page() -> String {
    callback_page(
        "warn",
        "This sign-in belongs to another command",
        "<p>The browser came back with a <code>state</code> that this <code>moneyhub</code> command \
         did not send: the link was started by another command (or is an older link).</p>\
         <p class=\"next\">Nothing was done with it, and this command keeps waiting for its own \
         sign-in: open the URL it printed. You can close this window.</p>",
    )
}

/// Binds the loopback redirect URI's address.
async fn bind(redirect: &url::Url) -> CmdResult<TcpListener> {
    let host = match redirect.host() {
        Some(url::Host::Domain(_)) | None => "127.0.0.1".to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
    };
    let port = redirect.port_or_known_default().unwrap_or(80);
    TcpListener::bind(format!("{host}:{port}")).await.map_err(|e| {
        let busy = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another program, perhaps another `moneyhub connect`, is waiting there: finish or \
             stop it, or give this one another --redirect-uri registered for the client)"
        } else {
            ""
        };
        Failure::usage(format!("cannot listen on the redirect URI {redirect}: {e}{busy}"))
    })
}

/// Serves the loopback redirect URI until our callback arrives (or the timeout passes).
async fn listen(
    listener: TcpListener,
    redirect: &url::Url,
    state: Option<&str>,
    timeout: Duration,
) -> CmdResult<String> {
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
            let callback = path == wanted && !query.is_empty();
            let ours = callback
                && state
                    .is_none_or(|s| moneyhub::CallbackParams::from_query(query).state.as_deref() == Some(s));
            let (status, page) = if ours {
                ("200 OK", outcome_page(query))
            } else if callback {
                output::warn(
                    "moneyhub: a callback with another sign-in's state came back (ignored; still waiting)",
                );
                ("400 Bad Request", foreign_state_page())
            } else {
                (
                    "404 Not Found",
                    callback_page(
                        "warn",
                        "Not the callback",
                        "<p>This address is where the browser comes back after the sign-in.</p>",
                    ),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                 cache-control: no-store\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n\
                 content-security-policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'\r\n\
                 connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
            if ours {
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
