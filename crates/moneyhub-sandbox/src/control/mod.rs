//! The control API, for tests and demos, under `/__sandbox` (a prefix Moneyhub never uses).
//!
//! It needs no token: the sandbox listens on loopback and this is its remote control.
//! Everything here reaches the same store methods the public routes use.

mod faults;
mod lifecycle;
mod setup;
mod webhooks;

use std::sync::Arc;

use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::state::AppState;

/// The control routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/__sandbox/connections", post(setup::create_connection))
        .route("/__sandbox/requests", get(setup::requests).delete(setup::clear_requests))
        .route("/__sandbox/clock", get(setup::clock))
        .route("/__sandbox/stats", get(setup::stats))
        .route("/__sandbox/clock/advance", post(lifecycle::advance))
        .route("/__sandbox/clock/freeze", post(lifecycle::freeze))
        .route("/__sandbox/clock/resume", post(lifecycle::resume))
        .route("/__sandbox/connections/{connection_id}", get(lifecycle::inspect).patch(lifecycle::tweak))
        .route("/__sandbox/connections/{connection_id}/script", put(lifecycle::script))
        .route("/__sandbox/providers/{bank_id}/remove", post(lifecycle::remove_provider))
        .route("/__sandbox/accounts/{account_id}/drop", post(lifecycle::drop_account))
        .route("/__sandbox/users", post(lifecycle::bulk_users))
        .route("/__sandbox/webhooks", get(webhooks::get_target).put(webhooks::set_target))
        .route("/__sandbox/webhooks/deliveries", get(webhooks::deliveries).delete(webhooks::clear_deliveries))
        .route("/__sandbox/webhooks/chaos", get(webhooks::get_chaos).put(webhooks::set_chaos))
        .route("/__sandbox/webhooks/flush", post(webhooks::flush))
        .route("/__sandbox/webhooks/test", post(webhooks::test_event))
        .route("/__sandbox/faults", get(faults::list).post(faults::add).delete(faults::clear))
        .route("/__sandbox/faults/{fault_id}", delete(faults::remove))
}
