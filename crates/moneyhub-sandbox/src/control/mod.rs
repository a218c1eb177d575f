//! The control API, for tests and demos, under `/__sandbox` (a prefix Moneyhub never uses).
//!
//! Everything here reaches the same store methods the public routes use. Every control
//! request passes [`gate`] first, so that a web page the developer happens to open cannot
//! drive the sandbox (advance its clock, redirect its webhooks):
//!
//! * with a control token configured (required when the sandbox listens beyond loopback),
//!   `Authorization: Bearer <token>` must carry it (`401` otherwise);
//! * without one, `Host` must name the address served: `127.0.0.1:PORT`, `localhost:PORT`,
//!   `[::1]:PORT` or the base URL's own host (`403`; a DNS-rebinding page sends its own name);
//! * a browser's cross-site marks refuse the request (`403`): an `Origin` other than the
//!   sandbox's own (`http://` + an accepted `Host`; `Origin: null` included), or
//!   `Sec-Fetch-Site` other than `same-origin` / `none`;
//! * a request with a body must say `Content-Type: application/json` (`415`), which a page
//!   cannot send cross-origin without a CORS preflight the sandbox never grants.
//!
//! The public Moneyhub routes are not gated: they are what clients and browsers use.

mod consent;
mod faults;
mod ids;
mod lifecycle;
mod scenario;
mod setup;
mod webhooks;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::error::ApiError;
use crate::state::{AppState, LogRoom};

/// The control routes, behind [`gate`].
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/__sandbox/connections", post(setup::create_connection))
        .route("/__sandbox/requests", get(setup::requests).delete(setup::clear_requests))
        .route("/__sandbox/clock", get(setup::clock))
        .route("/__sandbox/stats", get(setup::stats))
        .route("/__sandbox/clock/advance", post(lifecycle::advance))
        .route("/__sandbox/clock/freeze", post(lifecycle::freeze))
        .route("/__sandbox/clock/resume", post(lifecycle::resume))
        .route("/__sandbox/connections/{connection_id}", get(lifecycle::inspect).patch(lifecycle::tweak))
        .route("/__sandbox/connections/{connection_id}/script", put(lifecycle::script))
        .route("/__sandbox/connections/{connection_id}/state", put(scenario::set_state))
        .route("/__sandbox/providers/{bank_id}/remove", post(lifecycle::remove_provider))
        .route("/__sandbox/accounts/{account_id}/drop", post(lifecycle::drop_account))
        .route("/__sandbox/users", post(lifecycle::bulk_users))
        .route("/__sandbox/webhooks", get(webhooks::get_target).put(webhooks::set_target))
        .route("/__sandbox/webhooks/deliveries", get(webhooks::deliveries).delete(webhooks::clear_deliveries))
        .route("/__sandbox/webhooks/chaos", get(webhooks::get_chaos).put(webhooks::set_chaos))
        .route("/__sandbox/webhooks/flush", post(webhooks::flush))
        .route("/__sandbox/webhooks/test", post(webhooks::test_event))
        .route("/__sandbox/webhooks/deliveries/{seq}/resend", post(webhooks::resend))
        .route("/__sandbox/faults", get(faults::list).post(faults::add).delete(faults::clear))
        .route("/__sandbox/faults/{fault_id}", delete(faults::remove))
        .route("/__sandbox/reset", post(scenario::reset))
        .route(
            "/__sandbox/scenario",
            post(scenario::load)
                .layer(axum::extract::DefaultBodyLimit::max(crate::server::SCENARIO_BODY_LIMIT)),
        )
        .route("/__sandbox/consent", get(consent::get).put(consent::set))
        .route("/__sandbox/healthz", get(|| async { "ok" }))
        .route("/__sandbox/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state, gate))
}

/// `GET /__sandbox/metrics`: `moneyhub_sandbox_requests_total{method,route,status}`
/// (Prometheus text; `route` is the route template, `unmatched` for unknown paths; status 0
/// is a connection dropped by fault injection).
async fn metrics(State(log): State<Arc<LogRoom>>) -> Response {
    let mut e = moneyhub_http::metrics::Exposition::new();
    let counts = log.route_counts.lock().clone();
    for ((method, route, status), n) in counts {
        e.counter(
            "moneyhub_sandbox_requests_total",
            "Requests answered, by method, route and status.",
            &[("method", method), ("route", &route), ("status", &status.to_string())],
            n,
        );
    }
    ([(header::CONTENT_TYPE, moneyhub_http::metrics::CONTENT_TYPE)], e.finish()).into_response()
}

/// Refuses control requests that a foreign web page, a DNS-rebinding page or a caller
/// without the token could make (see the module docs).
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if let Some(token) = &state.core.config.control_token {
        let given = text(header::AUTHORIZATION)
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return Err(ApiError::unauthorized(
                "the control API needs the sandbox's control token as a bearer token",
            ));
        }
    }
    let host = text(header::HOST).unwrap_or_default();
    let host_ok = accepted_host(state, host);
    if state.core.config.control_token.is_none() && !host_ok {
        return Err(ApiError::forbidden(format!(
            "the control API answers only requests addressed to the sandbox itself, not Host {host:?}"
        )));
    }
    if let Some(origin) = text(header::ORIGIN) {
        let same = host_ok || state.core.config.control_token.is_some();
        let own = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        if !same || own.is_none_or(|o| !o.eq_ignore_ascii_case(host)) {
            return Err(ApiError::forbidden(format!(
                "the control API refuses cross-origin requests (Origin {origin:?})"
            )));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site").map(|v| v.to_str().unwrap_or("")) {
        if !matches!(site, "same-origin" | "none") {
            return Err(ApiError::forbidden(format!(
                "the control API refuses cross-site requests (Sec-Fetch-Site {site:?})"
            )));
        }
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || text(header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0");
    if has_body {
        let ct = text(header::CONTENT_TYPE).unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::custom(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("control requests with a body must be Content-Type: application/json, not {ct:?}"),
            ));
        }
    }
    Ok(())
}

/// `Host` names the sandbox: a loopback name or its base URL's host, with its port.
pub(crate) fn accepted_host(state: &AppState, host: &str) -> bool {
    let Ok(base) = url::Url::parse(&state.core.base_url) else { return false };
    let Some(port) = base.port_or_known_default() else { return false };
    let own = base.host_str().map(|h| format!("{h}:{port}"));
    let host = host.to_ascii_lowercase();
    ["127.0.0.1", "localhost", "[::1]"].iter().any(|h| host == format!("{h}:{port}"))
        || own.is_some_and(|o| o.eq_ignore_ascii_case(&host))
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
