//! Identity REST routes: users, user connections, sync records and provider catalogues.

use std::sync::Arc;

use axum::Router;

use crate::state::AppState;

/// The REST routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}
