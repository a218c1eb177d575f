//! Control routes for webhooks: the target, the delivery log, chaos, flushing, and synthetic
//! events for testing receivers.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::config::{WebhookFormat, WebhookTarget};
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{no_content, parse_body, typed, Body};
use crate::kit::types::{Chaos, FiredEvent, Listing, ListingMeta, TestEvent, WebhookSettings};
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
    let target = state.webhooks.target.lock().clone();
    let recording = state.data.store.read().record_events;
    let (url, format) = match target {
        Some(t) => (Some(t.url), Some(format_name(t.format).to_owned())),
        None => (None, None),
    };
    typed(StatusCode::OK, &WebhookSettings { url, format, recording })
}

/// `PUT /__sandbox/webhooks {url: string|null, format?: "json"|"jwt"}`: sets (or, with
/// `null`, clears) the target. Answers the new target.
pub async fn set_target(State(state): State<AppState>, Body(body): Body) -> Result<Response, ApiError> {
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
            validate_target(&t, state.core.config.allow_remote_webhooks).map_err(ApiError::bad_request)?;
            Some(t)
        }
    };
    state.set_webhook(target);
    Ok(target_json(&state))
}

/// `GET /__sandbox/webhooks`: the target, `{url, format, recording}`.
pub async fn get_target(State(state): State<AppState>) -> Response {
    target_json(&state)
}

/// `GET /__sandbox/webhooks/deliveries?after=SEQ&limit=N`: the delivery log, oldest first,
/// with `meta.lastSeq` and `meta.pending` (events not attempted yet).
pub async fn deliveries(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref());
    let after = q.int("after", 0, i64::MAX, 0)? as u64;
    let limit = q.int("limit", 1, 1_000_000, 10_000)? as usize;
    let log = &state.webhooks.worker.log;
    let data = log.since(after, limit);
    let pending = state.data.store.read().outbox.len();
    let meta = ListingMeta { last_seq: log.last_seq(), pending: Some(pending as u64) };
    Ok(typed(StatusCode::OK, &Listing { data, meta: Some(meta) }))
}

/// `DELETE /__sandbox/webhooks/deliveries`: forgets the log (sequence numbers keep counting).
pub async fn clear_deliveries(State(state): State<AppState>) -> Response {
    state.webhooks.worker.log.clear();
    no_content()
}

/// `GET /__sandbox/webhooks/chaos`: `{drop, duplicate, reorder}`.
pub async fn get_chaos(State(state): State<AppState>) -> Response {
    typed(StatusCode::OK, &chaos(state.webhooks.worker.chaos()))
}

/// `PUT /__sandbox/webhooks/chaos {drop?, duplicate?, reorder?: bool|number}`: probabilities
/// in `0..=1`; missing ones are off. Answers the settings.
pub async fn set_chaos(State(state): State<AppState>, Body(body): Body) -> Result<Response, ApiError> {
    let req: ChaosRequest = parse_body(&body, true)?;
    let settings = req.into_settings().map_err(ApiError::bad_request)?;
    state.webhooks.worker.set_chaos(settings);
    Ok(typed(StatusCode::OK, &chaos(settings)))
}

/// `POST /__sandbox/webhooks/flush`: delivers everything pending and answers when done,
/// `{attempts, delivered, failed, dropped, duplicates, lastSeq}`.
pub async fn flush(State(state): State<AppState>) -> Response {
    typed(StatusCode::OK, &deliver_pending(&state).await)
}

fn chaos(s: ChaosSettings) -> Chaos {
    Chaos { drop: s.drop, duplicate: s.duplicate, reorder: s.reorder }
}

/// `POST /__sandbox/webhooks/test {userId, eventType, payload?, connectionId?, accountId?}`:
/// delivers a synthetic event now (after anything pending) and answers `{id, payload,
/// deliveries: [...]}` once it has been tried.
///
/// Ids may be any unique prefix (see `ids`). Without `payload`, the sandbox builds the one
/// Moneyhub would send from the user's real data (see [`default_payload`]), aimed with
/// `connectionId` / `accountId`, so that a receiver that fetches what an event names (the
/// mirror) finds it. With a `payload`, the user may be one the sandbox does not know.
pub async fn test_event(State(state): State<AppState>, Body(body): Body) -> Result<Response, ApiError> {
    let req: TestEvent = parse_body(&body, false)?;
    if req.user_id.is_empty() || req.event_type.is_empty() {
        return Err(ApiError::bad_request("userId and eventType must not be empty"));
    }
    if state.webhooks.target.lock().is_none() {
        return Err(ApiError::bad_request(
            "no webhook target is set: PUT /__sandbox/webhooks first (`moneyhub sandbox webhooks set URL`)",
        ));
    }
    let (user_id, payload) = {
        let store = state.data.store.read();
        match req.payload {
            Some(p) => {
                let user = match super::ids::user(&store, &req.user_id) {
                    Ok(u) => u,
                    Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => req.user_id.clone(),
                    Err(e) => return Err(e),
                };
                (user, p)
            }
            None => {
                let user = super::ids::user(&store, &req.user_id)?;
                // The payload names the user's stored transactions: their fetches first.
                drop(store);
                let store = state.data.read_user(&user);
                let payload = default_payload(
                    &store,
                    state.core.clock.now(),
                    &user,
                    &req.event_type,
                    req.connection_id.as_deref(),
                    req.account_id.as_deref(),
                )?;
                (user, payload)
            }
        }
    };
    let id = state.data.store.write().next_webhook_id();
    let event = Outgoing { id, user_id, event_type: req.event_type, payload: payload.clone() };
    let deliveries = deliver_test_event(&state, event).await;
    Ok(typed(StatusCode::OK, &FiredEvent { id: id.to_string(), payload, deliveries }))
}

/// The newest transactions a default payload names.
const DEFAULT_TRANSACTIONS: usize = 10;

/// The payload Moneyhub would send for `event_type`, from the user's data:
///
/// | event | payload |
/// | --- | --- |
/// | `newTransactions`, `updatedTransactions`, `restoredTransactions` | the account's newest 10 live transactions |
/// | `deletedTransactions` | the account's deleted transactions (newest 10), else its newest live ones (a receiver then removes them: the test says they were deleted) |
/// | `syncCompleted` | the connection's latest sync (a new sync id when it has none), `success`, now |
/// | `deletedAccount` | the account |
/// | `reauthReminder`, `refreshReminder`, `postConnectionEnrichmentCompleted` | the connection, as the lifecycle sends them |
/// | anything else | `{}` |
///
/// The connection is `connection` (any unique prefix, the user's own), else the user's first
/// with an account; the account is `account`, else the connection's first with transactions.
fn default_payload(
    store: &crate::store::Store,
    now: chrono::DateTime<chrono::Utc>,
    user_id: &str,
    event_type: &str,
    connection: Option<&str>,
    account: Option<&str>,
) -> Result<Value, ApiError> {
    use crate::clock::iso;
    let user = store.users.get(user_id).ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))?;
    let account = match account {
        Some(a) => {
            let id = super::ids::account(store, a)?;
            let acc = store.accounts.get(&id).filter(|acc| acc.user_id == user_id);
            Some(acc.ok_or_else(|| ApiError::bad_request(format!("account {id} is not user {user_id}'s")))?)
        }
        None => None,
    };
    let connection =
        match (connection, account) {
            (Some(c), _) => {
                let id = super::ids::connection(store, c)?;
                let conn = store.connections.get(&id).filter(|c| c.user_id == user_id);
                Some(conn.ok_or_else(|| {
                    ApiError::bad_request(format!("connection {id} is not user {user_id}'s"))
                })?)
            }
            (None, Some(acc)) => store.connections.get(&acc.connection_id),
            (None, None) => user
                .connection_ids
                .iter()
                .filter_map(|id| store.connections.get(id))
                .find(|c| !c.account_ids.is_empty())
                .or_else(|| user.connection_ids.iter().find_map(|id| store.connections.get(id))),
        };
    let need_connection = || {
        connection.ok_or_else(|| {
            ApiError::bad_request(format!(
                "user {user_id} has no connection for a {event_type} event: connect a bank first, or give a payload"
            ))
        })
    };
    let account = match account {
        Some(a) => Some(a),
        None => connection.and_then(|c| {
            let accounts = || c.account_ids.iter().filter_map(|a| store.accounts.get(a));
            accounts().find(|a| a.txs.iter().any(|t| !t.is_deleted())).or_else(|| accounts().next())
        }),
    };
    let need_account = || {
        account.ok_or_else(|| {
            ApiError::bad_request(format!(
                "user {user_id} has no account for a {event_type} event: connect a bank first, or give a payload"
            ))
        })
    };
    let newest = |acc: &crate::store::model::Account, deleted: bool| -> Vec<String> {
        let mut txs: Vec<_> = acc.txs.iter().filter(|t| t.is_deleted() == deleted).collect();
        txs.sort_by_key(|t| std::cmp::Reverse(t.date_ms));
        txs.iter().take(DEFAULT_TRANSACTIONS).map(|t| t.id.to_string()).collect()
    };
    let payload = match event_type {
        "newTransactions" | "updatedTransactions" | "restoredTransactions" | "deletedTransactions" => {
            let acc = need_account()?;
            let mut ids = if event_type == "deletedTransactions" { newest(acc, true) } else { Vec::new() };
            if ids.is_empty() {
                ids = newest(acc, false);
            }
            if ids.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "account {} has no transactions to name in a {event_type} event; give a payload",
                    acc.id
                )));
            }
            json!({"accounts": [{"id": acc.id.to_string(), "transactions": ids}]})
        }
        "syncCompleted" | "syncComplete" => {
            let c = need_connection()?;
            let sync = c.sync_ids.last().ok_or_else(|| {
                ApiError::bad_request(format!("connection {} has no sync yet; give a payload", c.id))
            })?;
            json!({
                "completedAt": iso(now),
                "processingStatus": "success",
                "syncId": sync.to_string(),
                "connectionId": c.id,
            })
        }
        "deletedAccount" => json!({"accountId": need_account()?.id.to_string()}),
        "reauthReminder" => {
            let c = need_connection()?;
            let days = c.expires_at.map(|e| (e - now).num_days().max(0)).unwrap_or(0);
            json!({
                "connectionId": c.id,
                "bankName": c.name,
                "timeUntilReauthorizationInDays": days,
                "tppConsent": c.tpp_consent(now),
            })
        }
        "refreshReminder" => {
            let c = need_connection()?;
            let since = c.last_updated.unwrap_or(c.connected_on);
            json!({
                "connectionId": c.id,
                "bankName": c.name,
                "periodSinceLastUpdateInDays": (now - since).num_days().max(0),
            })
        }
        "postConnectionEnrichmentCompleted" => {
            let c = need_connection()?;
            let accounts: Vec<Value> = c
                .account_ids
                .iter()
                .map(|a| {
                    json!({
                        "accountId": a.to_string(),
                        "postConnectionEnrichmentStatus": "completed",
                        "postConnectionEnrichedAt": iso(c.enriched_at),
                    })
                })
                .collect();
            json!({"connectionId": c.id, "accounts": accounts})
        }
        _ => json!({}),
    };
    Ok(payload)
}

/// `POST /__sandbox/webhooks/deliveries/{seq}/resend`: delivers the event of delivery `seq`
/// again, as it was (same webhook id, user, type and payload: a receiver that deduplicates
/// answers "duplicate"), to the current target. Answers `{id, payload, deliveries}`; 404 when
/// the log no longer holds `seq`.
pub async fn resend(
    State(state): State<AppState>,
    axum::extract::Path(seq): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let seq: u64 =
        seq.parse().map_err(|_| ApiError::bad_request(format!("{seq:?} is not a delivery number")))?;
    if state.webhooks.target.lock().is_none() {
        return Err(ApiError::bad_request(
            "no webhook target is set: PUT /__sandbox/webhooks first (`moneyhub sandbox webhooks set URL`)",
        ));
    }
    let log = &state.webhooks.worker.log;
    let found = log.since(seq.saturating_sub(1), 1).into_iter().find(|d| d.seq == seq);
    let Some(d) = found else {
        return Err(ApiError::not_found(format!(
            "delivery #{seq} is not in the delivery log (it was cleared, or is too old); the last is #{}",
            log.last_seq()
        )));
    };
    let id = uuid::Uuid::parse_str(&d.webhook_id)
        .map_err(|e| ApiError::bad_request(format!("delivery #{seq} has no webhook id to resend: {e}")))?;
    let event = Outgoing { id, user_id: d.user_id, event_type: d.event_type, payload: d.payload.clone() };
    let deliveries = deliver_test_event(&state, event).await;
    Ok(typed(StatusCode::OK, &FiredEvent { id: id.to_string(), payload: d.payload, deliveries }))
}
