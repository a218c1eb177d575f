//! The Data API, mounted under `/v2.0`, `/v3` and `/v3.0`.

use std::sync::Arc;

use axum::Router;

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
pub fn routes(_version: ApiVersion) -> Router<Arc<AppState>> {
    Router::new()
}
