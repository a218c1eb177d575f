//! Control routes that set up state directly and read the request log.

use std::sync::Arc;

use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{no_content, parse_body, typed, Body};
use crate::kit::types::{
    ClockReading, CreatedConnection, Listing, ListingMeta, NewConnection, Retained, Stats,
};
use crate::state::{Core, DataRoom, LogRoom, WebhookRoom};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

/// `POST /__sandbox/connections {userId, bankId, expiresAt?, enableAsync?}`: creates a
/// connection as a completed authorisation would, without the browser round trip. Answers
/// `{connectionId, syncId}`.
pub async fn create_connection(
    State(core): State<Arc<Core>>,
    State(data): State<Arc<DataRoom>>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: NewConnection = parse_body(&body, false)?;
    let now = core.clock.now();
    if let Some(t) = req.expires_at {
        crate::clock::check_date("expiresAt", t, now).map_err(ApiError::bad_request)?;
    }
    let created = data.store.write().create_connection(
        &req.user_id,
        &req.bank_id,
        req.expires_at,
        req.enable_async,
        now,
    )?;
    if req.enable_async {
        data.finish_sync_later(&core, created.sync_id);
    }
    Ok(typed(
        StatusCode::CREATED,
        &CreatedConnection { connection_id: created.connection_id, sync_id: created.sync_id.to_string() },
    ))
}

/// `GET /__sandbox/requests?after=SEQ&limit=N`: the request log, oldest first.
pub async fn requests(State(log): State<Arc<LogRoom>>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref());
    let after = q.int("after", 0, i64::MAX, 0)? as u64;
    let limit = q.int("limit", 1, 1_000_000, 10_000)? as usize;
    let entries = log.requests.since(after, limit);
    let meta = ListingMeta { last_seq: log.requests.last_seq(), pending: None };
    Ok(typed(StatusCode::OK, &Listing { data: entries, meta: Some(meta) }))
}

/// `DELETE /__sandbox/requests`: forgets the log (sequence numbers keep counting).
pub async fn clear_requests(State(log): State<Arc<LogRoom>>) -> Response {
    log.requests.clear();
    no_content()
}

/// `GET /__sandbox/clock`: the virtual time.
pub async fn clock(State(core): State<Arc<Core>>) -> Response {
    typed(StatusCode::OK, &ClockReading { now: core.clock.now(), frozen: core.clock.is_frozen() })
}

/// `GET /__sandbox/stats`: how much the sandbox holds.
pub async fn stats(
    State(data): State<Arc<DataRoom>>,
    State(log): State<Arc<LogRoom>>,
    State(webhooks): State<Arc<WebhookRoom>>,
) -> Response {
    // Counts what is generated; it does not generate what nobody has read yet (that is what
    // keeps a 100,000-user scenario small): see `accounts_unread`.
    let store = data.store.read();
    let stored: usize = store.accounts.values().map(|a| a.txs.len()).sum();
    let live: usize = store.accounts.values().map(|a| a.txs.iter().filter(|t| !t.is_deleted()).count()).sum();
    let n = |n: usize| n as u64;
    typed(
        StatusCode::OK,
        &Stats {
            users: n(store.users.len()),
            connections: n(store.connections.len()),
            accounts: n(store.accounts.len()),
            transactions: n(live),
            transactions_stored: n(stored),
            accounts_unread: n(store.accounts.values().filter(|a| a.has_deferred()).count()),
            syncs: n(store.syncs.len()),
            pending_events: n(store.outbox.len()),
            // What the bounded logs hold now (see `request_log` and `webhooks::log`).
            retained: Retained {
                request_log_entries: n(log.requests.len()),
                request_log_bytes: n(log.requests.bytes()),
                delivery_log_bytes: n(webhooks.worker.log.bytes()),
                metric_series: n(log.route_counts.lock().len()),
            },
        },
    )
}
