//! The control API, for tests and demos, under `/__sandbox` (a prefix Moneyhub never uses).
//!
//! It needs no token: the sandbox listens on loopback and this is its remote control.
//! Everything here reaches the same store methods the public routes use.

mod lifecycle;
mod setup;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;

use crate::state::AppState;

/// The control routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/__sandbox/connections", post(setup::create_connection))
        .route("/__sandbox/requests", get(setup::requests).delete(setup::clear_requests))
        .route("/__sandbox/clock", get(setup::clock))
        .route("/__sandbox/clock/advance", post(lifecycle::advance))
        .route("/__sandbox/clock/freeze", post(lifecycle::freeze))
        .route("/__sandbox/clock/resume", post(lifecycle::resume))
        .route("/__sandbox/connections/{connection_id}", get(lifecycle::inspect).patch(lifecycle::tweak))
        .route("/__sandbox/connections/{connection_id}/script", put(lifecycle::script))
        .route("/__sandbox/providers/{bank_id}/remove", post(lifecycle::remove_provider))
        .route("/__sandbox/users", post(lifecycle::bulk_users))
}
