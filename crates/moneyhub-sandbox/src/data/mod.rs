//! The Data API, mounted under `/v2.0` (and `/v2`, which the official Node client's
//! `{version: "v2"}` asks), `/v3` and `/v3.0` with each version's defaults.
//! Every route needs a client-credentials token bound to a user (`sub`) and sees only that
//! user's data.

mod accounts;
mod sync;
mod transactions;

use axum::extract::OriginalUri;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::error::ApiError;

use crate::state::{AppState, DataApi};

/// Which Data API version a route was reached through (defaults differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/v2.0`.
    V2,
    /// `/v3` and `/v3.0`.
    V3,
}

/// The Data API routes for one version.
pub fn routes(version: ApiVersion) -> Router<AppState> {
    let mut r = Router::new()
        .route("/sync/{connection_id}", post(sync::sync))
        .route("/accounts", get(accounts::list))
        .route("/accounts/syncs", get(accounts::syncs))
        .route("/accounts/{account_id}", get(accounts::get))
        .route("/transactions", get(transactions::list))
        .route("/transactions/unenriched", get(transactions::list_unenriched))
        .route("/transactions/unenriched/{transaction_id}", get(transactions::get_unenriched))
        .route("/transactions/{transaction_id}", get(transactions::get));
    if version == ApiVersion::V2 {
        // Removed in v3.
        r = r.route("/accounts-list", get(accounts::accounts_list));
    }
    r.fallback(not_implemented).layer(Extension(version))
}

/// Every other Data API route Moneyhub documents (standing orders, categories, projects,
/// write calls...) or not: a 404 that says the sandbox does not implement it, so nobody
/// mistakes it for a scope problem or a missing resource.
async fn not_implemented(method: axum::http::Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::not_found(format!(
        "The sandbox does not implement {method} {}: only sync, accounts and transactions \
         (with /transactions/unenriched) are served on the Data API",
        uri.path()
    ))
    .into_response()
}

/// Records a read of `user_id`'s data (`lastAccessed`, to the second). Takes the write lock
/// only when the recorded time is a second or more old, so a burst of reads does not
/// serialise on it.
fn accessed(state: &DataApi, user_id: &str) {
    let now = state.core.clock.now();
    let stale = state
        .data
        .store
        .read()
        .users
        .get(user_id)
        .is_some_and(|u| u.last_accessed.is_none_or(|t| now - t >= chrono::Duration::seconds(1)));
    if stale {
        state.data.store.write().touch_user(user_id, now);
    }
}

/// The absolute URL of the request (for `links.self`).
fn self_link(state: &DataApi, uri: &Uri) -> String {
    format!("{}{}", state.core.base_url, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
}
