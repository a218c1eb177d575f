//! Control routes that set up state directly and read the request log.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::clock::iso;
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{json, no_content, ok, parse_body, Body};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewConnection {
    user_id: String,
    bank_id: String,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    enable_async: bool,
}

/// `POST /__sandbox/connections {userId, bankId, expiresAt?, enableAsync?}`: creates a
/// connection as a completed authorisation would, without the browser round trip. Answers
/// `{connectionId, syncId}`.
pub async fn create_connection(
    State(state): State<Arc<AppState>>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: NewConnection = parse_body(&body, false)?;
    let now = state.clock.now();
    if let Some(t) = req.expires_at {
        crate::clock::check_date("expiresAt", t, now).map_err(ApiError::bad_request)?;
    }
    let created = state.store.write().create_connection(
        &req.user_id,
        &req.bank_id,
        req.expires_at,
        req.enable_async,
        now,
    )?;
    if req.enable_async {
        state.finish_sync_later(created.sync_id);
    }
    Ok(json(
        StatusCode::CREATED,
        json!({"connectionId": created.connection_id, "syncId": created.sync_id.to_string()}),
    ))
}

/// `GET /__sandbox/requests?after=SEQ&limit=N`: the request log, oldest first.
pub async fn requests(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref());
    let after = q.int("after", 0, i64::MAX, 0)? as u64;
    let limit = q.int("limit", 1, 1_000_000, 10_000)? as usize;
    let entries = state.log.since(after, limit);
    Ok(ok(json!({"data": entries, "meta": {"lastSeq": state.log.last_seq()}})))
}

/// `DELETE /__sandbox/requests`: forgets the log (sequence numbers keep counting).
pub async fn clear_requests(State(state): State<Arc<AppState>>) -> Response {
    state.log.clear();
    no_content()
}

/// `GET /__sandbox/clock`: the virtual time.
pub async fn clock(State(state): State<Arc<AppState>>) -> Response {
    ok(json!({"now": iso(state.clock.now()), "frozen": state.clock.is_frozen()}))
}

/// `GET /__sandbox/stats`: how much the sandbox holds.
pub async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let store = state.store.read();
    let stored: usize = store.accounts.values().map(|a| a.txs.len()).sum();
    let live: usize = store.accounts.values().map(|a| a.txs.iter().filter(|t| !t.is_deleted()).count()).sum();
    ok(json!({
        "users": store.users.len(),
        "connections": store.connections.len(),
        "accounts": store.accounts.len(),
        "transactions": live,
        "transactionsStored": stored,
        "syncs": store.syncs.len(),
        "pendingEvents": store.outbox.len(),
        // What the bounded logs hold now (see `request_log` and `webhooks::log`).
        "retained": {
            "requestLogEntries": state.log.len(),
            "requestLogBytes": state.log.bytes(),
            "deliveryLogBytes": state.webhook_worker.log.bytes(),
            "metricSeries": state.route_counts.lock().len(),
        },
    }))
}
