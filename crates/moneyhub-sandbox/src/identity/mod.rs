//! The identity service: OpenID Connect provider under `/oidc` (discovery, JWKS, token
//! endpoint, PAR, authorisation with auto-consent) and the legacy `POST /request`.
//!
//! | Route | What |
//! | --- | --- |
//! | `GET /oidc/.well-known/openid-configuration` | discovery |
//! | `GET /oidc/certs` | the sandbox's public signing keys |
//! | `POST /oidc/token` | `client_credentials` (+ `sub`), `authorization_code`, `refresh_token`, jwt-bearer |
//! | `POST /oidc/request` | pushed authorisation requests (201 `{request_uri, expires_in}`) |
//! | `GET`/`POST /oidc/auth` | authorisation: validates, auto-consents, redirects with a code |
//! | `POST /request` | legacy request-object upload (201 text `urn:x-mh-request:<uuid>`) |
//! | `GET`/`POST /oidc/interaction/{id}` | the consent pages (interactive consent only) |
//!
//! Decisions where Moneyhub publishes nothing: a new connection names an existing user in
//! `claims.id_token.sub.value`, or no user at all for one-time access (reference §17): then
//! consent makes a user (`managedBy: "user"`), the id_token's `sub` is that user, and the
//! connection's consent lasts 24 hours (or the `mh:consent` expiry), after which its refresh
//! tokens stop working; reauth, refresh and reconsent always need the `sub` value; generic provider scopes (`id:test`,
//! `id:api`, `id:all`...) pick the first available provider of that listing; the code
//! exchange's access token is bound to the user and carries exactly the scope of the
//! authorisation request; unknown users at the token endpoint are `invalid_grant`; request
//! URIs are single use; refresh tokens rotate and live 90 virtual days.

mod authorize;
mod authz;
mod client_auth;
mod consent;
mod consent_pages;
mod discovery;
mod flow;
mod id_token;
mod interaction;
mod jose;
mod par;
mod params;
mod request_object;
mod session;
mod token;

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::http::ok;
use crate::state::{AppState, Core, DataRoom, IdentityRoom};

pub(crate) use consent::{consent_mode, set_consent_mode};
pub use discovery::discovery_document;
pub use session::IdentityState;

// For the Auth Requests API (`rest::auth_requests`), which goes through the same validation,
// consent and completion as PAR.
pub(crate) use authz::{validate, Flow};
pub(crate) use flow::complete;
pub(crate) use par::PAR_PREFIX;
pub(crate) use params::{normalise_scope, random_token, random_uuid, scope_tokens, Params};
pub(crate) use session::Pushed;

/// The rooms the identity service works in: its own, Moneyhub's data (users and
/// connections it grants access to) and the core. Never the webhooks, faults, log or the
/// Auth Requests API's requests.
#[derive(Debug, Clone)]
pub(crate) struct Oidc {
    /// Base URL, configuration, clock, catalogue.
    pub core: Arc<Core>,
    /// Keys, tokens, sessions, discovery.
    pub identity: Arc<IdentityRoom>,
    /// Moneyhub's data.
    pub data: Arc<DataRoom>,
}

impl FromRef<AppState> for Oidc {
    fn from_ref(state: &AppState) -> Self {
        Oidc { core: state.core.clone(), identity: state.identity.clone(), data: state.data.clone() }
    }
}

/// The identity routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oidc/.well-known/openid-configuration", get(discovery))
        .route("/oidc/certs", get(certs))
        .route("/oidc/token", post(token::token))
        .route("/oidc/request", post(par::par))
        .route("/oidc/auth", get(authorize::authorize_get).post(authorize::authorize_post))
        .route("/request", post(par::legacy_request))
        .route("/oidc/interaction/{id}", get(consent::show).post(consent::answer))
}

async fn discovery(State(identity): State<Arc<IdentityRoom>>) -> Response {
    ok(identity.discovery.clone())
}

async fn certs(State(identity): State<Arc<IdentityRoom>>) -> Response {
    ok(identity.key.jwks())
}
