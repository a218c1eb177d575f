//! The Data API, mounted under `/v2.0`, `/v3` and `/v3.0` with each version's defaults.
//! Every route needs a client-credentials token bound to a user (`sub`) and sees only that
//! user's data.

mod accounts;
mod sync;
mod transactions;

use std::sync::Arc;

use axum::http::Uri;
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::state::AppState;

/// Which Data API version a route was reached through (defaults differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/v2.0`.
    V2,
    /// `/v3` and `/v3.0`.
    V3,
}

/// The Data API routes for one version.
pub fn routes(version: ApiVersion) -> Router<Arc<AppState>> {
    let mut r = Router::new()
        .route("/sync/{connection_id}", post(sync::sync))
        .route("/accounts", get(accounts::list))
        .route("/accounts/syncs", get(accounts::syncs))
        .route("/accounts/{account_id}", get(accounts::get))
        .route("/transactions", get(transactions::list))
        .route("/transactions/{transaction_id}", get(transactions::get));
    if version == ApiVersion::V2 {
        // Removed in v3.
        r = r.route("/accounts-list", get(accounts::list));
    }
    r.layer(Extension(version))
}

/// The absolute URL of the request (for `links.self`).
fn self_link(state: &AppState, uri: &Uri) -> String {
    format!("{}{}", state.base_url, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
}
