//! Users: `POST /users`, `GET /users`, `GET /users/{id}`, `DELETE /users/{id}`.
//! `POST` and `GET /users/{id}` answer with the bare user object (not enveloped).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::check_user_scope;
use crate::auth::BearerGrant;
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{json, no_content, ok, parse_body, Body, Path};
use crate::state::DataApi;

/// Longest accepted `clientUserId`.
const MAX_CLIENT_USER_ID: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewUser {
    client_user_id: Option<String>,
}

/// `POST /users` (`user:create`).
pub async fn create(
    State(state): State<DataApi>,
    BearerGrant { grant, at: now }: BearerGrant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    grant.require_any(&["user:create"])?;
    let req: NewUser = parse_body(&body, true)?;
    if let Some(c) = &req.client_user_id {
        if c.is_empty() || c.chars().count() > MAX_CLIENT_USER_ID {
            return Err(ApiError::bad_request(format!(
                "clientUserId must be 1 to {MAX_CLIENT_USER_ID} characters"
            )));
        }
    }
    let mut store = state.data.store.write();
    let user = store.create_user(&grant.cid, req.client_user_id, now);
    Ok(json(StatusCode::CREATED, user.to_json()))
}

/// `GET /users?limit&offset` (`user:read`): `{data, meta: {total}}`; default limit 100.
pub async fn list(
    State(state): State<DataApi>,
    RawQuery(q): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    grant.require_any(&["user:read"])?;
    let q = Query::parse(q.as_deref());
    let limit = q.int("limit", 0, 1000, 100)? as usize;
    let offset = q.int("offset", 0, 1_000_000_000, 0)? as usize;
    let _ = q.bool("isDemo", false)?;
    let store = state.data.store.read();
    // A token bound to a user (`sub`) sees only that user: page over it alone, so `total`
    // and the page agree.
    let (users, total) = match grant.sub.as_deref() {
        Some(sub) => {
            let own: Vec<_> = store.user(&grant.cid, sub).into_iter().collect();
            let total = own.len();
            (own.into_iter().skip(offset).take(limit).collect(), total)
        }
        None => store.users_page(&grant.cid, offset, limit),
    };
    let data: Vec<Value> = users.into_iter().map(|u| u.to_json()).collect();
    Ok(ok(json!({"data": data, "meta": {"total": total, "limit": limit, "offset": offset}})))
}

/// `GET /users/{id}` (`user:read`): the bare user.
pub async fn get(
    State(state): State<DataApi>,
    Path(user_id): Path<String>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    grant.require_any(&["user:read"])?;
    check_user_scope(&grant, &user_id)?;
    let store = state.data.store.read();
    let user = store.user(&grant.cid, &user_id).ok_or_else(|| ApiError::not_found("User not found"))?;
    Ok(ok(user.to_json()))
}

/// `DELETE /users/{id}` (`user:delete`): 204; deletes all the user's data.
pub async fn delete(
    State(state): State<DataApi>,
    Path(user_id): Path<String>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    grant.require_any(&["user:delete"])?;
    check_user_scope(&grant, &user_id)?;
    state.data.store.write().delete_user(&grant.cid, &user_id)?;
    Ok(no_content())
}
