//! The identity service: OpenID Connect provider under `/oidc` (discovery, JWKS, token
//! endpoint, PAR, authorisation with auto-consent) and the legacy `POST /request`.

mod discovery;

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::http::ok;
use crate::state::AppState;

pub use discovery::discovery_document;

/// Identity-service state: pushed authorisation requests, authorisation codes, client
/// assertion ids already used, refresh tokens.
#[derive(Debug, Default)]
pub struct IdentityState {}

/// The identity routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/oidc/.well-known/openid-configuration", get(discovery))
        .route("/oidc/certs", get(certs))
}

async fn discovery(State(state): State<Arc<AppState>>) -> Response {
    ok(state.discovery.clone())
}

async fn certs(State(state): State<Arc<AppState>>) -> Response {
    ok(state.key.jwks())
}
