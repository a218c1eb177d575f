//! The dashboard at `/__sandbox/ui`: server-rendered pages (no JavaScript, nothing loaded
//! from outside) that show the sandbox's state and drive it through the same store, clock
//! and lifecycle functions the control API uses (no HTTP to itself).
//!
//! Access follows the control API's rules ([`crate::control`]), adapted to a browser that
//! cannot set headers:
//!
//! * without a control token (loopback), `Host` must name the sandbox itself (DNS rebinding);
//! * with a control token (required beyond loopback), open `/__sandbox/ui?token=TOKEN` once:
//!   the sandbox answers with a cookie (`HttpOnly`, `SameSite=Strict`, path `/__sandbox/ui`)
//!   holding a SHA-256 digest of the token, never the token, and redirects to a URL without
//!   it. `Authorization: Bearer TOKEN` works too (scripts, tests);
//! * every POST (the dashboard's forms) must come from the dashboard itself: `Origin` present
//!   and equal to the sandbox's (`Sec-Fetch-Site`, when sent, `same-origin`), and a per-browser
//!   form token (a random cookie the forms repeat in a hidden field, double-submit) so that a
//!   page elsewhere cannot make the browser act.

mod actions;
mod dashboard;

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;

use crate::http::html;
use crate::state::AppState;

/// The cookie that proves the control token was given (a digest of it).
const AUTH_COOKIE: &str = "mh_sandbox_ui";
/// The double-submit form token's cookie.
const CSRF_COOKIE: &str = "mh_sandbox_ui_csrf";
/// The dashboard's path.
pub const PATH: &str = "/__sandbox/ui";

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(dashboard::show))
        .route("/__sandbox/ui/clock", post(actions::clock))
        .route("/__sandbox/ui/connection", post(actions::connection))
        .route("/__sandbox/ui/faults", post(actions::faults))
        .route("/__sandbox/ui/webhooks", post(actions::webhooks))
        .route("/__sandbox/ui/sandbox", post(actions::sandbox))
}

/// The digest the auth cookie holds for a token.
fn token_digest(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("moneyhub-sandbox-ui:{token}").as_bytes(),
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// What the gate found.
pub(crate) enum Access {
    /// Go on.
    Granted,
    /// `?token=` was right: set the cookie and go to the clean URL.
    TokenAccepted,
}

/// The access rules of the module docs; `Err` is the refusal page (boxed: a response is large).
pub(crate) fn gate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    token_param: Option<&str>,
) -> Result<Access, Box<Response>> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST).unwrap_or_default();
    let mut access = Access::Granted;
    match &state.core.config.control_token {
        Some(token) => {
            let bearer = text(header::AUTHORIZATION)
                .and_then(|v| v.split_once(' '))
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .is_some_and(|(_, t)| html::same_secret(t.trim(), token));
            let cookie = html::cookie(headers, AUTH_COOKIE)
                .is_some_and(|c| html::same_secret(c, &token_digest(token)));
            let param = method == Method::GET && token_param.is_some_and(|t| html::same_secret(t, token));
            if param {
                access = Access::TokenAccepted;
            } else if !bearer && !cookie {
                return Err(Box::new(html::message(
                    StatusCode::UNAUTHORIZED,
                    "The dashboard needs the control token",
                    "Open /__sandbox/ui?token=<control token> once; this browser then keeps a cookie.",
                )));
            }
        }
        None => {
            if !crate::control::accepted_host(state, host) {
                return Err(Box::new(html::message(
                    StatusCode::FORBIDDEN,
                    "Not this address",
                    "The dashboard answers only requests addressed to the sandbox itself.",
                )));
            }
        }
    }
    if method == Method::POST {
        let own = |o: &str| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .is_some_and(|h| h.eq_ignore_ascii_case(host))
        };
        if !text(header::ORIGIN).is_some_and(own) {
            return Err(Box::new(html::message(
                StatusCode::FORBIDDEN,
                "Refused",
                "Dashboard actions come only from the dashboard (Origin).",
            )));
        }
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
            if site != "same-origin" {
                return Err(Box::new(html::message(
                    StatusCode::FORBIDDEN,
                    "Refused",
                    "Dashboard actions come only from the dashboard (Sec-Fetch-Site).",
                )));
            }
        }
    }
    Ok(access)
}

/// Sets the cookies a dashboard page needs: the auth digest (after `?token=`) and the form
/// token (when the browser has none yet). Returns the form token the page's forms carry.
fn page_cookies(state: &AppState, headers: &HeaderMap, res: &mut Response, access: &Access) -> String {
    let secure = state.core.base_url.starts_with("https:");
    if let (Access::TokenAccepted, Some(token)) = (access, &state.core.config.control_token) {
        html::set_cookie(res, AUTH_COOKIE, &token_digest(token), PATH, secure);
    }
    match html::cookie(headers, CSRF_COOKIE) {
        Some(c)
            if c.len() >= 32 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            c.to_string()
        }
        _ => {
            let fresh = crate::identity::random_token();
            html::set_cookie(res, CSRF_COOKIE, &fresh, PATH, secure);
            fresh
        }
    }
}

/// Checks a form's token against the browser's cookie.
fn form_token_ok(headers: &HeaderMap, field: Option<&str>) -> bool {
    match (html::cookie(headers, CSRF_COOKIE), field) {
        (Some(c), Some(f)) => html::same_secret(c, f),
        _ => false,
    }
}
