//! Request objects (JAR, RFC 9101 / OIDC Core §6): authorisation parameters inside a JWT,
//! sent as `request=` to `/oidc/auth` or the PAR endpoint, or posted to the legacy
//! `POST /request`.
//!
//! The client's registered `request_object_signing_alg` decides what is accepted: `none`
//! means unsigned objects only; anything else means objects signed with exactly that alg
//! and a key of the client's JWKS. A mismatch is Moneyhub's `invalid_request_object`
//! ("the preregistered alg must be used...").

use serde_json::Value;

use super::jose;
use super::params::{Params, MAX_VALUE_LEN};
use super::Oidc;
use crate::config::ClientRegistration;
use crate::error::OAuthError;

/// The parameters a request object may carry (everything else, like `iss`, `aud`, `jti`,
/// `iat` or `exp`, is about the object itself).
const CARRIED: &[&str] = &[
    "client_id",
    "scope",
    "state",
    "nonce",
    "redirect_uri",
    "response_type",
    "response_mode",
    "prompt",
    "claims",
    "code_challenge",
    "code_challenge_method",
    "max_age",
    "sandbox_accounts",
];

fn invalid(d: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_request_object", d)
}

/// The client a request object claims to come from (`client_id`, else `iss`), unverified:
/// used to pick the client whose keys then verify it.
pub fn claimed_client(jwt: &str) -> Option<String> {
    let jws = jose::parse(jwt).ok()?;
    jose::str_claim(&jws.claims, "client_id")
        .or_else(|| jose::str_claim(&jws.claims, "iss"))
        .map(str::to_string)
}

/// Verifies a request object of `client` and returns its parameters.
pub fn decode(state: &Oidc, client: &ClientRegistration, jwt: &str, now: i64) -> Result<Params, OAuthError> {
    let jws = jose::parse(jwt).map_err(|e| invalid(format!("could not parse the request object: {e}")))?;
    let registered = client.request_object_signing_alg.as_str();
    if registered.eq_ignore_ascii_case("none") {
        if jws.alg != "none" || !jws.unsigned {
            return Err(invalid(format!(
                "the preregistered alg none must be used in request or request_uri (got {})",
                jws.alg
            )));
        }
    } else {
        if jws.alg != registered {
            return Err(invalid(format!(
                "the preregistered alg {registered} must be used in request or request_uri (got {})",
                jws.alg
            )));
        }
        let alg = jose::asymmetric_alg(registered)
            .ok_or_else(|| invalid(format!("request objects signed with {registered} are not supported")))?;
        jose::verify(jwt, &jws, alg, client.jwks.as_ref())
            .map_err(|e| invalid(format!("request object verification failed: {e}")))?;
    }
    let claims = &jws.claims;
    if let Some(iss) = claims.get("iss") {
        if iss.as_str() != Some(client.client_id.as_str()) {
            return Err(invalid("request object iss must be the client_id"));
        }
    }
    if let Some(cid) = claims.get("client_id") {
        if cid.as_str() != Some(client.client_id.as_str()) {
            return Err(invalid("request object client_id must be the client_id of the request"));
        }
    }
    if claims.contains_key("aud") {
        let issuer = state.core.issuer();
        let par = format!("{issuer}/request");
        let auth = format!("{issuer}/auth");
        if !jose::aud_matches(claims, &[&issuer, &par, &auth]) {
            return Err(invalid(format!("request object aud must be {issuer}")));
        }
    }
    if claims.contains_key("exp") {
        jose::check_times_either(claims, now, "the request object").map_err(invalid)?;
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err(invalid("request objects must not contain request or request_uri"));
    }
    let mut params = Params::default();
    for &key in CARRIED {
        let Some(v) = claims.get(key) else { continue };
        let s = match (key, v) {
            (_, Value::Null) => continue,
            (_, Value::String(s)) => s.clone(),
            ("claims", Value::Object(_)) => v.to_string(),
            ("max_age", Value::Number(n)) => n.to_string(),
            ("sandbox_accounts", Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or(()))
                .collect::<Result<Vec<_>, ()>>()
                .map_err(|_| invalid("sandbox_accounts must be a list of account ids"))?
                .join(","),
            _ => return Err(invalid(format!("request object member {key} has the wrong type"))),
        };
        if s.len() > MAX_VALUE_LEN {
            return Err(invalid(format!("request object member {key} is too long")));
        }
        if !s.is_empty() {
            params.set(key, s);
        }
    }
    params.set("client_id", client.client_id.clone());
    Ok(params)
}
