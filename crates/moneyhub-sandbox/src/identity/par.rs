//! Pushed authorisation requests: `POST /oidc/request` (RFC 9126, client-authenticated like
//! the token endpoint) and Moneyhub's legacy `POST /request` (a raw request object, no client
//! authentication, answered with a plain-text request URI).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::authz::validate_pushed;
use super::client_auth::authenticate;
use super::params::{no_store, random_token, random_uuid, Params};
use super::request_object;
use super::session::Pushed;
use super::Oidc;
use crate::error::OAuthError;
use crate::http::OAuthBody;

/// How long a pushed request URI lives (virtual seconds). RFC 9126 suggests short lives;
/// Moneyhub's exact value is unpublished.
pub const PAR_TTL_SECS: i64 = 90;

/// How long a legacy `urn:x-mh-request:` URI lives (virtual seconds): the lifetime of the
/// authorisation codes, long enough for a user to open the link.
pub const LEGACY_TTL_SECS: i64 = 600;

/// Prefix of pushed request URIs.
pub const PAR_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Prefix of legacy request URIs.
pub const LEGACY_PREFIX: &str = "urn:x-mh-request:";

fn bad(e: OAuthError) -> Response {
    // The PAR endpoint never redirects: every validation error is JSON, 400 unless 401.
    e.into_response()
}

/// `POST /oidc/request`.
pub async fn par(State(state): State<Oidc>, headers: HeaderMap, OAuthBody(body): OAuthBody) -> Response {
    let now_t = state.core.clock.now();
    let now = now_t.timestamp();
    let mut params = match Params::from_form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let client = match authenticate(&state, &headers, &params, now) {
        Ok((c, _)) => c,
        Err(e) => return bad(e),
    };
    if params.has("request_uri") {
        return bad(OAuthError::invalid_request(
            "request_uri must not be used at the pushed authorization request endpoint",
        ));
    }
    if params.get("client_id").is_some_and(|c| c != client.client_id) {
        return bad(OAuthError::invalid_request("client_id must be the authenticated client"));
    }
    // Client-authentication parameters are not authorisation parameters.
    for k in ["client_assertion", "client_assertion_type", "client_secret"] {
        params.remove(k);
    }
    match params.remove("request") {
        Some(jwt) => match request_object::decode(&state, client, &jwt, now) {
            Ok(obj) => params.overlay(&obj),
            Err(e) => return bad(e),
        },
        // Moneyhub refuses plain parameters from a client registered with a signed
        // request-object algorithm (reference §3.6): only a signed request object will do.
        None if !client.request_object_signing_alg.eq_ignore_ascii_case("none") => {
            return bad(OAuthError::invalid_request(format!(
                "this client is registered with request_object_signing_alg {}: the pushed authorization request must carry a request object signed with it (request=<JWS>), not plain parameters",
                client.request_object_signing_alg
            )));
        }
        None => {}
    }
    params.set("client_id", client.client_id.clone());
    if let Err(rej) = validate_pushed(&state, &params, now_t) {
        return bad(super::authz::Rejection::direct(rej.error).error);
    }
    let request_uri = format!("{PAR_PREFIX}{}", random_token());
    let pushed = Pushed {
        client_id: client.client_id.clone(),
        params,
        expires_at: now + PAR_TTL_SECS,
        auth_request: None,
    };
    if let Err(refused) = state.identity.sessions.lock().push(request_uri.clone(), pushed, now) {
        return refused.oauth().into_response();
    }
    no_store(StatusCode::CREATED, json!({"request_uri": request_uri, "expires_in": PAR_TTL_SECS}))
}

/// `POST /request`: a raw request object (`Content-Type: application/jws`) for later use as
/// `request_uri` at `/oidc/auth`.
pub async fn legacy_request(State(state): State<Oidc>, OAuthBody(body): OAuthBody) -> Response {
    let now_t = state.core.clock.now();
    let now = now_t.timestamp();
    let Ok(jwt) = std::str::from_utf8(&body) else {
        return bad(OAuthError::new("invalid_request_object", "the body must be a compact JWS"));
    };
    let jwt = jwt.trim();
    if jwt.is_empty() || jwt.len() > super::params::MAX_VALUE_LEN {
        return bad(OAuthError::new("invalid_request_object", "the body must be a compact JWS"));
    }
    let Some(client_id) = request_object::claimed_client(jwt) else {
        return bad(OAuthError::new(
            "invalid_request_object",
            "the request object must be a JWT naming its client (client_id or iss)",
        ));
    };
    let Some(client) = state.core.client(&client_id) else {
        return bad(OAuthError {
            status: StatusCode::BAD_REQUEST,
            ..OAuthError::invalid_client("unknown client")
        });
    };
    let params = match request_object::decode(&state, client, jwt, now) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    if let Err(rej) = validate_pushed(&state, &params, now_t) {
        return bad(super::authz::Rejection::direct(rej.error).error);
    }
    let request_uri = format!("{LEGACY_PREFIX}{}", random_uuid());
    let pushed = Pushed {
        client_id: client.client_id.clone(),
        params,
        expires_at: now + LEGACY_TTL_SECS,
        auth_request: None,
    };
    if let Err(refused) = state.identity.sessions.lock().push(request_uri.clone(), pushed, now) {
        return refused.oauth().into_response();
    }
    let mut res = (StatusCode::CREATED, request_uri).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}
