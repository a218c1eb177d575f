//! Accounts: list (optionally by connection), get, and the per-account last successful sync.

use axum::extract::{OriginalUri, RawQuery, State};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};

use super::{self_link, ApiVersion};
use crate::auth::{BearerGrant, Grant};
use crate::clock::iso;
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{ok, Path};
use crate::state::DataApi;
use crate::store::model::Account;
use crate::store::Store;

fn user_accounts<'s>(store: &'s Store, user_id: &str) -> Vec<&'s Account> {
    store
        .connections_of(user_id)
        .into_iter()
        .flat_map(|c| c.account_ids.iter())
        .filter_map(|a| store.accounts.get(a))
        .collect()
}

/// `GET /accounts`: `limit` 0–1000, `offset`, `connectionId`, `showTransactionData` (default
/// true on v2, false on v3), `showPerformanceScore`.
pub async fn list(
    State(state): State<DataApi>,
    Extension(version): Extension<ApiVersion>,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    list_with(&state, version == ApiVersion::V2, &grant, &uri, q.as_deref())
}

/// v2's `GET /accounts-list`: as `/accounts`, but `showTransactionData` and
/// `showPerformanceScore` default to false (the swagger's defaults: the list is the quick
/// one, and the official client's "get accounts list" test expects no `transactionData`
/// unless `showTransactionData=true` is asked).
pub async fn accounts_list(
    State(state): State<DataApi>,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    list_with(&state, false, &grant, &uri, q.as_deref())
}

fn list_with(
    state: &DataApi,
    shown_by_default: bool,
    grant: &Grant,
    uri: &axum::http::Uri,
    q: Option<&str>,
) -> Result<Response, ApiError> {
    grant.require_any(&["accounts:read"])?;
    let user_id = grant.user()?;
    super::accessed(state, user_id);
    let q = Query::parse(q);
    let limit = q.int("limit", 0, 1000, 1000)? as usize;
    let offset = q.int("offset", 0, 1_000_000_000, 0)? as usize;
    let tx_data = q.bool("showTransactionData", shown_by_default)?;
    let _ = q.bool("showPerformanceScore", shown_by_default)?;
    let connection = q.get("connectionId");
    let details = grant.has("accounts_details:read");
    let store = state.data.read_user(user_id);
    let data: Vec<Value> = user_accounts(&store, user_id)
        .into_iter()
        .filter(|a| connection.is_none_or(|c| c == a.connection_id))
        .skip(offset)
        .take(limit)
        .map(|a| a.to_json(details, tx_data))
        .collect();
    Ok(ok(json!({"data": data, "links": {"self": self_link(state, uri)}, "meta": {}})))
}

/// `GET /accounts/{id}`: 404 for an account the user does not have.
pub async fn get(
    State(state): State<DataApi>,
    Extension(version): Extension<ApiVersion>,
    OriginalUri(uri): OriginalUri,
    Path(account_id): Path<String>,
    RawQuery(q): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    grant.require_any(&["accounts:read"])?;
    let user_id = grant.user()?;
    super::accessed(&state, user_id);
    let q = Query::parse(q.as_deref());
    let tx_data = q.bool("showTransactionData", version == ApiVersion::V2)?;
    let id = crate::http::uuid_param("accountId", &account_id)?;
    let store = state.data.read_user(user_id);
    let acc = store
        .accounts
        .get(&id)
        .filter(|a| a.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("Account not found"))?;
    let data = acc.to_json(grant.has("accounts_details:read"), tx_data);
    Ok(ok(json!({"data": data, "links": {"self": self_link(&state, &uri)}, "meta": {}})))
}

/// `GET /accounts/syncs`: `[{accountId, lastSuccessfulSync}]`.
pub async fn syncs(
    State(state): State<DataApi>,
    OriginalUri(uri): OriginalUri,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    grant.require_any(&["accounts:read"])?;
    let user_id = grant.user()?;
    super::accessed(&state, user_id);
    let store = state.data.read_user(user_id);
    let data: Vec<Value> = user_accounts(&store, user_id)
        .into_iter()
        .map(
            |a| json!({"accountId": a.id.to_string(), "lastSuccessfulSync": a.last_successful_sync.map(iso)}),
        )
        .collect();
    Ok(ok(json!({"data": data, "links": {"self": self_link(&state, &uri)}, "meta": {}})))
}
