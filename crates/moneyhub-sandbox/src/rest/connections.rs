//! A user's connections: list, get (a harmless extra: Moneyhub has no such route), delete
//! (singular and plural paths), and `PATCH` of `expiresAt`.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::BearerGrant;
use crate::auth::Grant;
use crate::error::ApiError;
use crate::http::{no_content, ok, parse_body, Body, Path};
use crate::state::DataApi;
use crate::store::Store;

fn owned_user<'s>(
    store: &'s Store,
    grant: &Grant,
    user_id: &str,
) -> Result<&'s crate::store::model::User, ApiError> {
    store.user(&grant.cid, user_id).ok_or_else(|| ApiError::not_found("User not found"))
}

/// `GET /users/{id}/connections` (`connection:read` or `user:read`).
pub async fn list(
    State(state): State<DataApi>,
    Path(user_id): Path<String>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    let grant = super::for_user(grant, &user_id, &["connection:read", "user:read"])?;
    let now = state.core.clock.now();
    let store = state.data.store.read();
    owned_user(&store, &grant, &user_id)?;
    let data: Vec<Value> = store
        .connections_of(&user_id)
        .into_iter()
        .map(|c| c.to_json(now, store.provider_removed(c)))
        .collect();
    Ok(ok(json!({"data": data, "meta": {}})))
}

/// `GET /users/{id}/connections/{cid}`.
pub async fn get(
    State(state): State<DataApi>,
    Path((user_id, connection_id)): Path<(String, String)>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    let grant = super::for_user(grant, &user_id, &["connection:read", "user:read"])?;
    let now = state.core.clock.now();
    let store = state.data.store.read();
    owned_user(&store, &grant, &user_id)?;
    let c = store
        .connection(&user_id, &connection_id)
        .ok_or_else(|| ApiError::not_found("Connection not found"))?;
    Ok(ok(json!({"data": c.to_json(now, store.provider_removed(c)), "meta": {}})))
}

/// `DELETE /users/{id}/connection[s]/{cid}` (`connection:delete` or `user:delete`): 204;
/// the connection, its accounts and their transactions are deleted.
pub async fn delete(
    State(state): State<DataApi>,
    Path((user_id, connection_id)): Path<(String, String)>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    let grant = super::for_user(grant, &user_id, &["connection:delete", "user:delete"])?;
    let mut store = state.data.store.write();
    owned_user(&store, &grant, &user_id)?;
    store.delete_connection(&user_id, &connection_id)?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Patch {
    expires_at: String,
}

/// `PATCH /users/{id}/connections/{cid}` `{"expiresAt"}` (`connection:update` or
/// `user:update`): 204. Only `expiresAt` may change, at most 90 days ahead.
pub async fn patch(
    State(state): State<DataApi>,
    Path((user_id, connection_id)): Path<(String, String)>,
    BearerGrant { grant, .. }: BearerGrant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let grant = super::for_user(grant, &user_id, &["connection:update", "user:update"])?;
    let req: Patch = parse_body(&body, false)?;
    let expires_at = DateTime::parse_from_rfc3339(&req.expires_at)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "expiresAt must be an ISO 8601 date-time, got {:?}",
                req.expires_at
            ))
        })?
        .with_timezone(&Utc);
    let now = state.core.clock.now();
    let mut store = state.data.store.write();
    owned_user(&store, &grant, &user_id)?;
    store.set_expiry(&user_id, &connection_id, expires_at, now)?;
    Ok(no_content())
}
