//! `POST /oidc/token`: the `client_credentials` (with Moneyhub's `sub` extension),
//! `authorization_code`, `refresh_token` and `urn:ietf:params:oauth:grant-type:jwt-bearer`
//! grants.
//!
//! Every response carries a request-log note `grant=<type> sub=<user or ->` (plus
//! ` error=<code>` on failure) so tests can count token requests per user.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::client_auth::authenticate;
use super::flow::complete;
use super::id_token::IdToken;
use super::jose;
use super::params::{
    no_store, normalise_scope, random_token, random_uuid, scope_is_well_formed, scope_tokens, with_note,
    Params,
};
use super::session::Refresh;
use super::Oidc;
use crate::auth::{Grant, ACCESS_TOKEN_TTL_SECS};
use crate::config::ClientRegistration;
use crate::error::OAuthError;
use crate::http::OAuthBody;
use crate::store::consent_period;

/// The jwt-bearer grant type (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A successful grant: the JSON body and the user it concerns (for the log note).
struct Issued {
    body: Map<String, Value>,
    sub: Option<String>,
}

/// `POST /oidc/token`.
pub async fn token(State(state): State<Oidc>, headers: HeaderMap, OAuthBody(body): OAuthBody) -> Response {
    let now = state.core.clock.now().timestamp();
    let mut grant = "-".to_string();
    let mut sub_hint = "-".to_string();
    let result = (|| {
        let params = Params::from_form(&headers, &body)?;
        grant = params.get("grant_type").unwrap_or("-").chars().take(100).collect();
        if let Some(s) = params.get("sub") {
            sub_hint = s.chars().take(100).collect();
        }
        let grant_type = params
            .get("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("missing required parameter 'grant_type'"))?;
        let (client, _method) = authenticate(&state, &headers, &params, now)?;
        match grant_type {
            "client_credentials" => client_credentials(&state, client, &params, now),
            "authorization_code" => authorization_code(&state, client, &params),
            "refresh_token" => refresh_token(&state, client, &params),
            JWT_BEARER_GRANT => jwt_bearer(&state, client, &params, now),
            other => Err(OAuthError::new(
                "unsupported_grant_type",
                format!("unsupported grant_type {:?}", other.chars().take(100).collect::<String>()),
            )),
        }
    })();
    match result {
        Ok(issued) => {
            let sub = issued.sub.unwrap_or_else(|| "-".into());
            with_note(
                no_store(StatusCode::OK, Value::Object(issued.body)),
                format!("grant={grant} sub={sub}"),
            )
        }
        Err(e) => {
            let note = format!("grant={grant} sub={sub_hint} error={}", e.error);
            with_note(e.into_response(), note)
        }
    }
}

/// The scope parameter, required and well formed.
fn scope_param(params: &Params) -> Result<String, OAuthError> {
    let scope = params
        .get("scope")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter 'scope'"))?;
    if !scope_is_well_formed(scope) {
        return Err(OAuthError::invalid_scope("scope is malformed"));
    }
    Ok(normalise_scope(scope))
}

fn access_token(state: &Oidc, client_id: &str, sub: Option<&str>, scope: &str, now: i64) -> String {
    state.identity.tokens.issue(&Grant {
        jti: random_uuid().simple().to_string(),
        cid: client_id.to_string(),
        sub: sub.map(str::to_string),
        scope: scope.to_string(),
        iat: now,
        exp: now + ACCESS_TOKEN_TTL_SECS,
        // Clients registered with a certificate get certificate-bound tokens (RFC 8705 §3).
        cnf: state.core.client(client_id).and_then(ClientRegistration::tls_cert_thumbprint),
    })
}

fn bearer_body(access_token: String, scope: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("access_token".into(), json!(access_token));
    m.insert("token_type".into(), json!("Bearer"));
    m.insert("expires_in".into(), json!(ACCESS_TOKEN_TTL_SECS));
    m.insert("scope".into(), json!(scope));
    m
}

/// Unknown users are `invalid_grant` everywhere at the token endpoint (the grant names a
/// subject the server does not know).
fn check_user(state: &Oidc, client_id: &str, user_id: &str) -> Result<(), OAuthError> {
    if state.data.store.read().user(client_id, user_id).is_some() {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant(format!("sub {user_id:?} is not a user of this client")))
    }
}

fn client_credentials(
    state: &Oidc,
    client: &ClientRegistration,
    params: &Params,
    now: i64,
) -> Result<Issued, OAuthError> {
    let scope = scope_param(params)?;
    let sub = params.get("sub");
    if let Some(user) = sub {
        check_user(state, &client.client_id, user)?;
    }
    let token = access_token(state, &client.client_id, sub, &scope, now);
    Ok(Issued { body: bearer_body(token, &scope), sub: sub.map(str::to_string) })
}

fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && URL_SAFE_NO_PAD.encode(crate::keys::sha256(verifier.as_bytes())) == challenge
}

fn authorization_code(
    state: &Oidc,
    client: &ClientRegistration,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let code =
        params.get("code").ok_or_else(|| OAuthError::invalid_request("missing required parameter 'code'"))?;
    let redirect_uri = params.get("redirect_uri");
    let now_t = state.core.clock.now();
    let now = now_t.timestamp();
    // Check and consume under one lock, so two concurrent exchanges cannot both succeed.
    let entry = {
        let mut id = state.identity.sessions.lock();
        let entry = id
            .code(code, now)
            .ok_or_else(|| OAuthError::invalid_grant("authorization code is invalid or expired"))?;
        if entry.client_id != client.client_id {
            return Err(OAuthError::invalid_grant("authorization code was issued to another client"));
        }
        if entry.used {
            return Err(OAuthError::invalid_grant("authorization code has already been used"));
        }
        if let Some(id) = &entry.auth_request {
            return Err(OAuthError::invalid_grant(format!(
                "this code belongs to auth request {id}: complete it with PATCH /auth-requests/{id}"
            )));
        }
        if redirect_uri != Some(entry.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri must be the one of the authorization request",
            ));
        }
        match (&entry.code_challenge, params.get("code_verifier")) {
            (Some(ch), Some(v)) if pkce_ok(v, ch) => {}
            (Some(_), Some(_)) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
            (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required (PKCE)")),
            (None, Some(_)) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier sent but the authorization request had no code_challenge",
                ))
            }
            (None, None) => {}
        }
        if let Some(sub) = params.get("sub") {
            if sub != entry.user_id {
                return Err(OAuthError::invalid_grant("sub is not the user of this authorization code"));
            }
        }
        let entry = entry.clone();
        id.use_code(code);
        entry
    };
    let done = complete(state, &entry.user_id, &entry.flow, now_t)?;
    let token = access_token(state, &client.client_id, Some(&entry.user_id), &entry.scope, now);
    let id_token = IdToken {
        client_id: &client.client_id,
        user_id: &entry.user_id,
        nonce: entry.nonce.as_deref(),
        sid: &entry.sid,
        auth_time: entry.auth_time,
        connection_id: Some(&done.connection_id),
        sync_id: done.async_sync,
        access_token: Some(&token),
        code: None,
    }
    .sign(state, now)?;
    let mut body = bearer_body(token, &entry.scope);
    body.insert("id_token".into(), json!(id_token));
    if scope_tokens(&entry.scope).any(|s| s == "offline_access") {
        let rt = random_token();
        let refresh = Refresh {
            client_id: client.client_id.clone(),
            user_id: entry.user_id.clone(),
            scope: entry.scope.clone(),
            connection_id: Some(done.connection_id.clone()),
            sid: entry.sid.clone(),
            expires_at: now + consent_period().num_seconds(),
        };
        state.identity.sessions.lock().add_refresh(rt.clone(), refresh, now);
        body.insert("refresh_token".into(), json!(rt));
    }
    Ok(Issued { body, sub: Some(entry.user_id) })
}

fn refresh_token(state: &Oidc, client: &ClientRegistration, params: &Params) -> Result<Issued, OAuthError> {
    let rt = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter 'refresh_token'"))?;
    let now = state.core.clock.now().timestamp();
    let entry = {
        let mut id = state.identity.sessions.lock();
        let entry = id
            .take_refresh(rt, now)
            .ok_or_else(|| OAuthError::invalid_grant("refresh token is invalid or expired"))?;
        if entry.client_id != client.client_id {
            id.restore_refresh(rt.to_string(), entry);
            return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
        }
        entry
    };
    check_user(state, &client.client_id, &entry.user_id)?;
    // One-time access ends with its consent: once the connection's consent has expired (or
    // the connection is gone), its refresh token renews nothing.
    {
        let store = state.data.store.read();
        let one_time = store
            .users
            .get(&entry.user_id)
            .is_some_and(|u| u.managed_by == crate::store::model::ManagedBy::User);
        if one_time {
            let live = entry
                .connection_id
                .as_deref()
                .and_then(|c| store.connection(&entry.user_id, c))
                .is_some_and(|c| !c.is_expired(state.core.clock.now()));
            if !live {
                return Err(OAuthError::invalid_grant("the one-time access consent has expired"));
            }
        }
    }
    let scope = match params.get("scope") {
        // A narrower scope may be asked for (RFC 6749 §6), never a wider one.
        Some(s) => {
            if !scope_is_well_formed(s) {
                return Err(OAuthError::invalid_scope("scope is malformed"));
            }
            let wanted = normalise_scope(s);
            if let Some(extra) = scope_tokens(&wanted).find(|w| !scope_tokens(&entry.scope).any(|g| g == *w))
            {
                return Err(OAuthError::invalid_scope(format!("{extra} was not granted originally")));
            }
            wanted
        }
        None => entry.scope.clone(),
    };
    let token = access_token(state, &client.client_id, Some(&entry.user_id), &scope, now);
    let id_token = IdToken {
        client_id: &client.client_id,
        user_id: &entry.user_id,
        sid: &entry.sid,
        connection_id: entry.connection_id.as_deref(),
        access_token: Some(&token),
        ..IdToken::default()
    }
    .sign(state, now)?;
    let new_rt = random_token();
    let mut body = bearer_body(token, &scope);
    body.insert("id_token".into(), json!(id_token));
    body.insert("refresh_token".into(), json!(new_rt));
    let user = entry.user_id.clone();
    state.identity.sessions.lock().add_refresh(
        new_rt,
        Refresh { expires_at: now + consent_period().num_seconds(), ..entry },
        now,
    );
    Ok(Issued { body, sub: Some(user) })
}

fn jwt_bearer(
    state: &Oidc,
    client: &ClientRegistration,
    params: &Params,
    now: i64,
) -> Result<Issued, OAuthError> {
    let assertion = params
        .get("assertion")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter 'assertion'"))?;
    let scope = scope_param(params)?;
    let fail = |why: String| OAuthError::invalid_grant(format!("invalid assertion: {why}"));
    let jws = jose::parse(assertion).map_err(fail)?;
    let registered = client.request_object_signing_alg.as_str();
    if registered.eq_ignore_ascii_case("none") {
        return Err(fail(
            "the client's registered request_object_signing_alg is none; jwt-bearer assertions must be signed".into(),
        ));
    }
    if jws.alg != registered {
        return Err(fail(format!("the preregistered alg {registered} must be used (got {})", jws.alg)));
    }
    let alg =
        jose::asymmetric_alg(registered).ok_or_else(|| fail(format!("alg {registered} is not supported")))?;
    if jose::str_claim(&jws.claims, "iss") != Some(client.client_id.as_str()) {
        return Err(fail("iss must be the client_id".into()));
    }
    let sub =
        jose::str_claim(&jws.claims, "sub").ok_or_else(|| fail("sub claim missing".into()))?.to_string();
    let issuer = state.core.issuer();
    let token_ep = format!("{issuer}/token");
    if !jose::aud_matches(&jws.claims, &[&issuer, &token_ep]) {
        return Err(fail(format!("aud must be {issuer}")));
    }
    let exp = jose::check_times_either(&jws.claims, now, "the assertion").map_err(fail)?;
    let jti = jose::str_claim(&jws.claims, "jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| fail("jti claim missing".into()))?;
    jose::verify(assertion, &jws, alg, client.jwks.as_ref()).map_err(fail)?;
    check_user(state, &client.client_id, &sub)?;
    // Assertion ids share the client-assertion namespace: one jti, one use.
    if !state.identity.sessions.lock().use_jti(&client.client_id, jti, exp.max(now + 3600), now) {
        return Err(fail("jti has already been used".into()));
    }
    let token = access_token(state, &client.client_id, Some(&sub), &scope, now);
    Ok(Issued { body: bearer_body(token, &scope), sub: Some(sub) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256() {
        // base64url(sha256(v)), computed independently.
        let v = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r-wW1gXk7-EjXk";
        assert!(pkce_ok(v, "5-McichUFVEkSKD3uaHJmdDCPBG61tNbA07nfiDAxjw"));
        assert!(!pkce_ok(v, "5-McichUFVEkSKD3uaHJmdDCPBG61tNbA07nfiDAxjx"));
        assert!(!pkce_ok("short", "x"));
    }
}
