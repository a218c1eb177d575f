//! `POST /sync/{connectionId}`: a manual sync, refused when consent has expired (403) or
//! when the 30-minute rule or a provider's daily cap says not yet (429 with
//! `retryAfterSecs` and `Retry-After`).

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use chrono::DateTime;
use serde::Deserialize;
use serde_json::json;

use super::ApiVersion;
use crate::auth::BearerGrant;
use crate::error::ApiError;
use crate::http::{ok, parse_body, Body, Path};
use crate::state::DataApi;
use crate::store::Refusal;

/// The `SyncPost` body: every field optional, nothing else allowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SyncPost {
    customer_ip_address: Option<String>,
    customer_last_logged_time: Option<String>,
    enable_async: Option<bool>,
}

/// The handler.
pub async fn sync(
    State(state): State<DataApi>,
    Extension(version): Extension<ApiVersion>,
    Path(connection_id): Path<String>,
    BearerGrant { grant, at: now }: BearerGrant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    grant.require_any(&["accounts:read"])?;
    grant.require_any(&["accounts:write", "accounts:write:all"])?;
    let user_id = grant.user()?.to_string();
    let req: SyncPost = parse_body(&body, true)?;
    if let Some(ip) = &req.customer_ip_address {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ApiError::bad_request(format!(
                "customerIpAddress must be an IP address, got {ip:?}"
            )));
        }
    }
    if let Some(t) = &req.customer_last_logged_time {
        if DateTime::parse_from_rfc3339(t).is_err() {
            return Err(ApiError::bad_request(format!(
                "customerLastLoggedTime must be an ISO 8601 date-time with a time zone, got {t:?}"
            )));
        }
    }
    let asynchronous = req.enable_async.unwrap_or(version == ApiVersion::V3);
    let mut store = state.data.store.write();
    let conn = store.connection(&user_id, &connection_id).ok_or(Refusal::UnknownConnection)?;
    if conn.is_expired(now) {
        return Err(Refusal::ConsentExpired.into());
    }
    store.check_manual_sync(&connection_id, now)?;
    store.record_manual_sync(&connection_id, now);
    let sync_id = store.start_sync(&connection_id, "client-update", "UPDATE", now)?;
    if !asynchronous {
        store.finish_sync(sync_id, now);
    }
    let conn = store.connection(&user_id, &connection_id).ok_or(Refusal::UnknownConnection)?;
    // The swagger allows only ok|error here; a withdrawn provider's `never` reads as error.
    let status = if conn.health(now, store.provider_removed(conn)).status == "ok" { "ok" } else { "error" };
    drop(store);
    if asynchronous {
        state.data.finish_sync_later(&state.core, sync_id);
    }
    Ok(ok(json!({"data": {"syncId": sync_id.to_string(), "status": status}, "meta": {}})))
}
