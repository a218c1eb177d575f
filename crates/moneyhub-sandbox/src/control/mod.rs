//! The control API, for tests and demos, under `/__sandbox` (a prefix Moneyhub never uses).
//!
//! It needs no token: the sandbox listens on loopback and this is its remote control.
//! Everything here reaches the same store methods the public routes use.

mod setup;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The control routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/__sandbox/connections", post(setup::create_connection))
        .route("/__sandbox/requests", get(setup::requests).delete(setup::clear_requests))
        .route("/__sandbox/clock", get(setup::clock))
}
