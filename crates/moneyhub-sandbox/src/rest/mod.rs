//! Identity REST routes: users, user connections, sync records, provider catalogues and the
//! Auth Requests API.
//! None of them is versioned (they live at the identity host's root, as Moneyhub's do).

pub(crate) mod auth_requests;
mod catalogues;
mod connections;
mod syncs;
mod users;

use axum::routing::{delete, get};
use axum::Router;

use crate::auth::Grant;
use crate::error::ApiError;
use crate::state::AppState;

/// The REST routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oidc/.well-known/{listing}", get(catalogues::list))
        .route("/bank-icons/{bank_ref}", get(catalogues::icon))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{user_id}", get(users::get).delete(users::delete))
        .route("/users/{user_id}/connections", get(connections::list))
        .route(
            "/users/{user_id}/connections/{connection_id}",
            get(connections::get).delete(connections::delete).patch(connections::patch),
        )
        .route("/users/{user_id}/connection/{connection_id}", delete(connections::delete))
        .route("/users/{user_id}/connections/{connection_id}/syncs", get(syncs::of_connection))
        .route("/users/{user_id}/syncs", get(syncs::of_user))
        .route("/users/{user_id}/syncs/{sync_id}", get(syncs::get))
        .route("/auth-requests", get(auth_requests::list).post(auth_requests::create))
        .route("/auth-requests/{id}", get(auth_requests::get).patch(auth_requests::complete_request))
}

/// Checks that the (already checked) bearer grant has one of `scopes` and may reach `user_id`.
fn for_user(grant: Grant, user_id: &str, scopes: &[&str]) -> Result<Grant, ApiError> {
    grant.require_any(scopes)?;
    check_user_scope(&grant, user_id)?;
    Ok(grant)
}

/// Management routes are for the client's own users: a token bound to a user (`sub`) may
/// only reach that user.
fn check_user_scope(grant: &Grant, user_id: &str) -> Result<(), ApiError> {
    match &grant.sub {
        Some(sub) if sub != user_id => Err(ApiError::forbidden("This token is bound to another user")),
        _ => Ok(()),
    }
}
