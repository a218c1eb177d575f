//! Sync records: per connection, per user, and by id (the poll target of async syncs).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value};

use crate::auth::BearerGrant;
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{ok, Path};
use crate::state::DataApi;
use crate::store::model::SyncRecord;
use crate::store::Store;

const SCOPES: &[&str] = &["connection:read", "user:read"];

fn page(
    store: &Store,
    records: Vec<&SyncRecord>,
    q: &Query,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, ApiError> {
    let limit = q.int("limit", 0, 1000, 100)? as usize;
    let offset = q.int("offset", 0, 1_000_000_000, 0)? as usize;
    let mut records = records;
    // Newest first: the latest sync is what a status check wants.
    records.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.seq.cmp(&a.seq)));
    let total = records.len();
    let data: Vec<Value> = records
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| r.to_json(now, store.connections.get(&r.connection_id).map(|c| c.enriched_at)))
        .collect();
    Ok(json!({"data": data, "meta": {"total": total}}))
}

/// `GET /users/{id}/connections/{cid}/syncs?limit&offset`.
pub async fn of_connection(
    State(state): State<DataApi>,
    Path((user_id, connection_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    let now = state.core.clock.now();
    let grant = super::for_user(grant, &user_id, SCOPES)?;
    let q = Query::parse(q.as_deref());
    let store = state.data.store.read();
    store.user(&grant.cid, &user_id).ok_or_else(|| ApiError::not_found("User not found"))?;
    let conn = store
        .connection(&user_id, &connection_id)
        .ok_or_else(|| ApiError::not_found("Connection not found"))?;
    let records = conn.sync_ids.iter().filter_map(|s| store.syncs.get(s)).collect();
    Ok(ok(page(&store, records, &q, now)?))
}

/// `GET /users/{id}/syncs?limit&offset`.
pub async fn of_user(
    State(state): State<DataApi>,
    Path(user_id): Path<String>,
    RawQuery(q): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    let now = state.core.clock.now();
    let grant = super::for_user(grant, &user_id, SCOPES)?;
    let q = Query::parse(q.as_deref());
    let store = state.data.store.read();
    store.user(&grant.cid, &user_id).ok_or_else(|| ApiError::not_found("User not found"))?;
    let records = store
        .connections_of(&user_id)
        .into_iter()
        .flat_map(|c| c.sync_ids.iter())
        .filter_map(|s| store.syncs.get(s))
        .collect();
    Ok(ok(page(&store, records, &q, now)?))
}

/// `GET /users/{id}/syncs/{syncId}`: `{"data": ConnectionSync}`.
pub async fn get(
    State(state): State<DataApi>,
    Path((user_id, sync_id)): Path<(String, String)>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    let now = state.core.clock.now();
    let grant = super::for_user(grant, &user_id, SCOPES)?;
    let id = crate::http::uuid_param("syncId", &sync_id)?;
    let store = state.data.store.read();
    store.user(&grant.cid, &user_id).ok_or_else(|| ApiError::not_found("User not found"))?;
    let rec = store
        .syncs
        .get(&id)
        .filter(|r| r.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("Sync not found"))?;
    let enriched = store.connections.get(&rec.connection_id).map(|c| c.enriched_at);
    Ok(ok(json!({"data": rec.to_json(now, enriched), "meta": {}})))
}
