//! Control routes that drive the lifecycle: the clock, scripted sync outcomes, provider
//! removal, direct connection tweaks and bulk set-up.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Duration;
use serde_json::json;

use crate::clock::iso;
use crate::error::ApiError;
use crate::http::{parse_body, typed, Body, Path};
use crate::kit::types::{
    Advance, Advanced, ClockReading, ConnectionView, CreatedUser, NewUsers, Outcome, Script, Tweak,
};
use crate::lifecycle::{next_due, run_until};
use crate::state::AppState;
use crate::store::model::FetchStatus;
use crate::store::Refusal;

/// `POST /__sandbox/clock/advance {days?, hours?, minutes?, seconds?} | {to}`: moves the
/// clock forward and runs everything that became due, each at its own time. Answers the new
/// time and what ran.
pub async fn advance(State(state): State<AppState>, Body(body): Body) -> Result<Response, ApiError> {
    let req: Advance = parse_body(&body, false)?;
    let now = state.core.clock.now();
    let by = match req.to {
        Some(to) => {
            if req.seconds.or(req.minutes).or(req.hours).or(req.days).is_some() {
                return Err(ApiError::bad_request("give either \"to\" or a duration, not both"));
            }
            crate::clock::check_date("to", to, now).map_err(ApiError::bad_request)?;
            to.signed_duration_since(now)
        }
        None => {
            let parts = [(req.days, 86_400i64), (req.hours, 3600), (req.minutes, 60), (req.seconds, 1)];
            let mut secs: i64 = 0;
            for (v, unit) in parts {
                let v = v.unwrap_or(0);
                secs = v
                    .checked_mul(unit)
                    .and_then(|s| secs.checked_add(s))
                    .filter(|s| *s <= 20 * 365 * 86_400)
                    .ok_or_else(|| ApiError::bad_request("the clock can move at most 20 years at once"))?;
            }
            Duration::seconds(secs)
        }
    };
    if by < Duration::zero() {
        return Err(ApiError::bad_request("the sandbox clock cannot move backwards"));
    }
    // No webhook is in flight while the clock jumps (see `WebhookWorker::hold`).
    let held = state.webhooks.worker.hold().await;
    let target = state.core.clock.advance(by).map_err(ApiError::bad_request)?;
    drop(held);
    let st = state.data.clone();
    let report = tokio::task::spawn_blocking(move || run_until(&st, target)).await.map_err(|_| {
        ApiError::custom(StatusCode::INTERNAL_SERVER_ERROR, "InternalServer", "lifecycle run failed")
    })?;
    Ok(typed(StatusCode::OK, &Advanced { now: state.core.clock.now(), ran: report }))
}

/// `POST /__sandbox/clock/freeze`.
pub async fn freeze(State(state): State<AppState>) -> Response {
    typed(StatusCode::OK, &ClockReading { now: state.core.clock.freeze(), frozen: true })
}

/// `POST /__sandbox/clock/resume`: follow the wall clock again from the current reading.
pub async fn resume(State(state): State<AppState>) -> Response {
    typed(StatusCode::OK, &ClockReading { now: state.core.clock.resume(), frozen: false })
}

/// The store's name for a scripted outcome.
fn outcome(o: Outcome) -> FetchStatus {
    match o {
        Outcome::Success => FetchStatus::Success,
        Outcome::Error => FetchStatus::Error,
        Outcome::Partial => FetchStatus::Partial,
        Outcome::MfaRequired => FetchStatus::MfaRequired,
        Outcome::CredentialsError => FetchStatus::CredentialsError,
    }
}

/// `PUT /__sandbox/connections/{id}/script {outcomes: [...], thereafter?, append?}`: the
/// outcomes of the connection's next fetches (automatic or manual), then `thereafter` for
/// every later one (default: success).
pub async fn script(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: Script = parse_body(&body, false)?;
    let outcomes = req.outcomes.into_iter().map(outcome).collect();
    let thereafter = req.thereafter.map(outcome);
    let mut store = state.data.store.write();
    let connection_id = super::ids::connection(&store, &connection_id)?;
    store.script(&connection_id, outcomes, thereafter, req.append)?;
    Ok(crate::http::no_content())
}

/// `POST /__sandbox/providers/{bankId}/remove`: the provider is withdrawn for good.
pub async fn remove_provider(
    State(state): State<AppState>,
    Path(bank_id): Path<String>,
) -> Result<Response, ApiError> {
    state.data.store.write().remove_provider(&bank_id)?;
    Ok(crate::http::no_content())
}

/// `PATCH /__sandbox/connections/{id} {singleSyncOnly?, forceNewIdOnReauth?, expiresAt?}`.
pub async fn tweak(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: Tweak = parse_body(&body, false)?;
    if let Some(t) = req.expires_at {
        crate::clock::check_date("expiresAt", t, state.core.clock.now()).map_err(ApiError::bad_request)?;
    }
    let mut store = state.data.store.write();
    let connection_id = super::ids::connection(&store, &connection_id)?;
    let c = store.connections.get_mut(&connection_id).ok_or(Refusal::UnknownConnection)?;
    if let Some(v) = req.single_sync_only {
        c.single_sync_only = v;
    }
    if let Some(v) = req.force_new_id_on_reauth {
        c.force_new_id_on_reauth = v;
    }
    if let Some(t) = req.expires_at {
        if c.expires_at.is_none() {
            return Err(ApiError::bad_request("this connection's provider never sets expiresAt"));
        }
        c.expires_at = Some(t);
        c.last_reauth_reminder = None;
    }
    Ok(crate::http::no_content())
}

/// `GET /__sandbox/connections/{id}`: the sandbox's view of a connection (script, failure
/// run, next due event) beside its public JSON.
pub async fn inspect(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.core.clock.now();
    let (connection_id, user_id) = {
        let store = state.data.store.read();
        let id = super::ids::connection(&store, &connection_id)?;
        let user = store.connections.get(&id).ok_or(Refusal::UnknownConnection)?.user_id.clone();
        (id, user)
    };
    // The count of transactions reads them: the user's deferred fetches first.
    let store = state.data.read_user(&user_id);
    let c = store.connections.get(&connection_id).ok_or(Refusal::UnknownConnection)?;
    let next = next_due(&store, c, now).map(|(t, d)| json!({"at": iso(t), "event": format!("{d:?}")}));
    let txs: usize = c
        .account_ids
        .iter()
        .filter_map(|a| store.accounts.get(a))
        .map(|a| a.txs.iter().filter(|t| !t.is_deleted()).count())
        .sum();
    Ok(typed(
        StatusCode::OK,
        &ConnectionView {
            connection: c.to_json(now, store.provider_removed(c)),
            user_id: c.user_id.clone(),
            script: c.script.iter().map(|s| kit_outcome(*s)).collect(),
            thereafter: c.sticky_outcome.map(kit_outcome),
            failing_since: c.failing_since,
            history_from: c.history_from,
            history_pending: c.history_target.is_some(),
            transactions: txs as u64,
            next,
        },
    ))
}

/// A sync outcome as the control API names it.
fn kit_outcome(s: FetchStatus) -> Outcome {
    match s {
        FetchStatus::Success => Outcome::Success,
        FetchStatus::Error => Outcome::Error,
        FetchStatus::Partial => Outcome::Partial,
        FetchStatus::MfaRequired => Outcome::MfaRequired,
        FetchStatus::CredentialsError => Outcome::CredentialsError,
    }
}

/// Estimated bytes one stored user, connection, account and transaction hold (measured on the
/// seeded data, rounded up): what [`MAX_BULK_DATA_BYTES`] counts.
const USER_BYTES: usize = 256;
const CONNECTION_BYTES: usize = 1024;
const ACCOUNT_BYTES: usize = 1024;
const TRANSACTION_BYTES: usize = 512;

/// The most data (estimated bytes: users, connections, accounts, transactions) the store may
/// hold for `POST /__sandbox/users` to add more: 4 GiB, room for a fleet of 100,000 users with
/// three connections each (~1.3 GB estimated; nothing is generated until it is read). A call
/// that would go over stops there and answers 413 with how many users it made; repeating it
/// does not grow the sandbox further.
pub const MAX_BULK_DATA_BYTES: usize = 4 * 1024 * 1024 * 1024;

/// The store's data in estimated bytes (see [`MAX_BULK_DATA_BYTES`]): what it holds now. The
/// first fetch of a new connection generates nothing until the user's data is read (it is
/// kept as a recipe of a few bytes, counted in [`ACCOUNT_BYTES`]: `store/fetch.rs`), so a
/// fleet of users that nobody reads costs users, connections and accounts only.
fn data_bytes(store: &crate::store::Store) -> usize {
    let txs: usize = store.accounts.values().map(|a| a.txs.len()).sum();
    store.users.len() * USER_BYTES
        + store.connections.len() * CONNECTION_BYTES
        + store.accounts.len() * ACCOUNT_BYTES
        + txs * TRANSACTION_BYTES
}

/// `POST /__sandbox/users {count, clientId?, banks: [bankId...]}`: creates `count` users
/// (at most 100,000 per call), each connected to every listed bank. For load tests and
/// demos that need many users fast. Answers `[{userId, connectionIds}]`; 413 once the
/// store's data would go over [`MAX_BULK_DATA_BYTES`] (the users made until then stay).
pub async fn bulk_users(State(state): State<AppState>, Body(body): Body) -> Result<Response, ApiError> {
    let req: NewUsers = parse_body(&body, false)?;
    if req.count == 0 || req.count > 100_000 {
        return Err(ApiError::bad_request("count must be between 1 and 100000"));
    }
    let client_id = req.client_id.unwrap_or_else(|| {
        state.core.config.clients.first().map(|c| c.client_id.clone()).unwrap_or_default()
    });
    if state.core.client(&client_id).is_none() {
        return Err(ApiError::bad_request(format!("unknown client {client_id:?}")));
    }
    for b in &req.banks {
        if state.core.catalogue.get(b).is_none() {
            return Err(ApiError::bad_request(format!("unknown bank id {b:?}")));
        }
    }
    let st = state.clone();
    let req_count = req.count;
    let created = tokio::task::spawn_blocking(move || {
        let now = st.core.clock.now();
        let mut out = Vec::with_capacity(req.count.min(1024));
        let mut bytes = data_bytes(&st.data.store.read());
        for _ in 0..req.count {
            if bytes > MAX_BULK_DATA_BYTES {
                return Err(out.len());
            }
            let mut store = st.data.store.write();
            let user_id = store.create_user(&client_id, None, now).user_id.clone();
            bytes += USER_BYTES;
            let mut ids = Vec::new();
            for b in &req.banks {
                if let Ok(c) = store.create_connection(&user_id, b, None, false, now) {
                    let accounts = store.connections.get(&c.connection_id).map(|c| c.account_ids.clone());
                    for a in accounts.unwrap_or_default() {
                        let txs = store.accounts.get(&a).map_or(0, |a| a.txs.len());
                        bytes += ACCOUNT_BYTES + txs * TRANSACTION_BYTES;
                    }
                    bytes += CONNECTION_BYTES;
                    ids.push(c.connection_id);
                }
            }
            out.push(CreatedUser { user_id, connection_ids: ids });
        }
        Ok(out)
    })
    .await
    .map_err(|_| {
        ApiError::custom(StatusCode::INTERNAL_SERVER_ERROR, "InternalServer", "bulk creation failed")
    })?
    .map_err(|made| {
        ApiError::custom(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!(
                "the sandbox's data would exceed {MAX_BULK_DATA_BYTES} bytes (estimated): made {made} of \
                 {} users; reset the sandbox or ask for fewer",
                req_count
            ),
        )
    })?;
    Ok(typed(StatusCode::CREATED, &created))
}

/// `POST /__sandbox/accounts/{accountId}/drop`: the provider stops reporting the account
/// (deleted with its transactions; `deletedAccount` webhook).
pub async fn drop_account(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = crate::http::uuid_param("accountId", &account_id)?;
    let now = state.core.clock.now();
    state.data.store.write().drop_account(&id, now)?;
    state.data.notify_webhooks();
    Ok(crate::http::no_content())
}
