//! Control routes for webhooks: the target, the delivery log, chaos, flushing, and synthetic
//! events for testing receivers.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::config::{WebhookFormat, WebhookTarget};
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{no_content, ok, parse_body, typed, Body};
use crate::kit::types::{Chaos, FlushReport, Listing, ListingMeta, WebhookSettings};
use crate::state::AppState;
use crate::webhooks::chaos::{ChaosRequest, ChaosSettings};
use crate::webhooks::delivery::{deliver_pending, deliver_test_event};
use crate::webhooks::envelope::Outgoing;
use crate::webhooks::{format_name, validate_target};

/// `url` must be present (`null` clears the target): a body that forgot it must not
/// silently switch webhooks off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetTarget {
    #[serde(default, deserialize_with = "present")]
    url: Option<Option<String>>,
    #[serde(default)]
    format: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn target_json(state: &AppState) -> Response {
    let target = state.webhook.lock().clone();
    let recording = state.store.read().record_events;
    let (url, format) = match target {
        Some(t) => (Some(t.url), Some(format_name(t.format).to_owned())),
        None => (None, None),
    };
    typed(StatusCode::OK, &WebhookSettings { url, format, recording })
}

/// `PUT /__sandbox/webhooks {url: string|null, format?: "json"|"jwt"}`: sets (or, with
/// `null`, clears) the target. Answers the new target.
pub async fn set_target(State(state): State<Arc<AppState>>, Body(body): Body) -> Result<Response, ApiError> {
    let req: SetTarget = parse_body(&body, false)?;
    let Some(url) = req.url else {
        return Err(ApiError::bad_request("url is required (null clears the target)"));
    };
    let format = match req.format.as_deref() {
        None => WebhookFormat::default(),
        Some(f) => f.parse::<WebhookFormat>().map_err(ApiError::bad_request)?,
    };
    let target = match url {
        None => None,
        Some(url) => {
            let t = WebhookTarget { url, format };
            validate_target(&t, state.config.allow_remote_webhooks).map_err(ApiError::bad_request)?;
            Some(t)
        }
    };
    state.set_webhook(target);
    Ok(target_json(&state))
}

/// `GET /__sandbox/webhooks`: the target, `{url, format, recording}`.
pub async fn get_target(State(state): State<Arc<AppState>>) -> Response {
    target_json(&state)
}

/// `GET /__sandbox/webhooks/deliveries?after=SEQ&limit=N`: the delivery log, oldest first,
/// with `meta.lastSeq` and `meta.pending` (events not attempted yet).
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref());
    let after = q.int("after", 0, i64::MAX, 0)? as u64;
    let limit = q.int("limit", 1, 1_000_000, 10_000)? as usize;
    let log = &state.webhook_worker.log;
    let data = log.since(after, limit);
    let pending = state.store.read().outbox.len();
    let meta = ListingMeta { last_seq: log.last_seq(), pending: Some(pending as u64) };
    Ok(typed(StatusCode::OK, &Listing { data, meta: Some(meta) }))
}

/// `DELETE /__sandbox/webhooks/deliveries`: forgets the log (sequence numbers keep counting).
pub async fn clear_deliveries(State(state): State<Arc<AppState>>) -> Response {
    state.webhook_worker.log.clear();
    no_content()
}

/// `GET /__sandbox/webhooks/chaos`: `{drop, duplicate, reorder}`.
pub async fn get_chaos(State(state): State<Arc<AppState>>) -> Response {
    typed(StatusCode::OK, &chaos(state.webhook_worker.chaos()))
}

/// `PUT /__sandbox/webhooks/chaos {drop?, duplicate?, reorder?: bool|number}`: probabilities
/// in `0..=1`; missing ones are off. Answers the settings.
pub async fn set_chaos(State(state): State<Arc<AppState>>, Body(body): Body) -> Result<Response, ApiError> {
    let req: ChaosRequest = parse_body(&body, true)?;
    let settings = req.into_settings().map_err(ApiError::bad_request)?;
    state.webhook_worker.set_chaos(settings);
    Ok(typed(StatusCode::OK, &chaos(settings)))
}

/// `POST /__sandbox/webhooks/flush`: delivers everything pending and answers when done,
/// `{attempts, delivered, failed, dropped, duplicates, lastSeq}`.
pub async fn flush(State(state): State<Arc<AppState>>) -> Response {
    let r = deliver_pending(&state).await;
    typed(
        StatusCode::OK,
        &FlushReport {
            attempts: r.attempts,
            delivered: r.delivered,
            failed: r.failed,
            dropped: r.dropped,
            duplicates: r.duplicates,
            last_seq: state.webhook_worker.log.last_seq(),
        },
    )
}

fn chaos(s: ChaosSettings) -> Chaos {
    Chaos { drop: s.drop, duplicate: s.duplicate, reorder: s.reorder }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TestEvent {
    user_id: String,
    event_type: String,
    #[serde(default)]
    payload: Option<Value>,
}

/// `POST /__sandbox/webhooks/test {userId, eventType, payload?}`: delivers a synthetic event
/// now (after anything pending) and answers `{id, deliveries: [...]}` once it has been tried.
pub async fn test_event(State(state): State<Arc<AppState>>, Body(body): Body) -> Result<Response, ApiError> {
    let req: TestEvent = parse_body(&body, false)?;
    if req.user_id.is_empty() || req.event_type.is_empty() {
        return Err(ApiError::bad_request("userId and eventType must not be empty"));
    }
    if state.webhook.lock().is_none() {
        return Err(ApiError::bad_request("no webhook target is set: PUT /__sandbox/webhooks first"));
    }
    let id = state.store.write().next_webhook_id();
    let event = Outgoing {
        id,
        user_id: req.user_id,
        event_type: req.event_type,
        payload: req.payload.unwrap_or_else(|| json!({})),
    };
    let deliveries = deliver_test_event(&state, event).await;
    Ok(ok(json!({"id": id.to_string(), "deliveries": deliveries})))
}
