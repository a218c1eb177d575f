//! Client authentication at the token and PAR endpoints: `client_secret_basic`,
//! `client_secret_post` and `private_key_jwt` (RFC 7523 §2.2).
//!
//! The secret paths do no cryptography at all, so `client_credentials` stays fast (the
//! official Node client fetches a fresh token before every single API call).

use axum::http::{header, HeaderMap};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use super::jose;
use super::params::Params;
use super::Oidc;
use crate::config::ClientRegistration;
use crate::error::OAuthError;

/// `client_assertion_type` of `private_key_jwt`.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Standard base64 that accepts credentials with or without padding (some HTTP libraries
/// strip it).
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `Authorization: Basic`.
    SecretBasic,
    /// `client_id` + `client_secret` in the body.
    SecretPost,
    /// A signed client assertion.
    PrivateKeyJwt,
    /// The registered self-signed TLS client certificate (RFC 8705 §2.2).
    SelfSignedTls,
}

/// Undoes the `application/x-www-form-urlencoded` encoding RFC 6749 §2.3.1 applies to both
/// halves of Basic credentials (`+` is a space).
fn form_decode(s: &str) -> Result<String, OAuthError> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| OAuthError::invalid_client("client credentials are not valid UTF-8 once URL-decoded"))
}

/// Compares secrets in time independent of where they differ (habit more than need here).
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value =
        value.to_str().map_err(|_| OAuthError::invalid_client("invalid Authorization header"))?.trim();
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client("invalid Authorization header"));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(format!(
            "unsupported Authorization scheme {scheme:?} (use Basic, or client_secret_post / private_key_jwt)"
        )));
    }
    let raw = BASIC_B64
        .decode(rest.trim())
        .map_err(|_| OAuthError::invalid_client("Basic credentials are not valid base64"))?;
    let raw = String::from_utf8(raw)
        .map_err(|_| OAuthError::invalid_client("Basic credentials are not valid UTF-8"))?;
    let (id, secret) = raw
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client("Basic credentials must be client_id:client_secret"))?;
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

fn client<'a>(state: &'a Oidc, client_id: &str) -> Result<&'a ClientRegistration, OAuthError> {
    state
        .core
        .client(client_id)
        .ok_or_else(|| OAuthError::invalid_client("client authentication failed: unknown client"))
}

fn check_secret(client: &ClientRegistration, secret: &str) -> Result<(), OAuthError> {
    match &client.client_secret {
        Some(s) if same_secret(s, secret) => Ok(()),
        Some(_) => Err(OAuthError::invalid_client("client authentication failed: invalid secret")),
        None => Err(OAuthError::invalid_client(
            "client authentication failed: this client has no secret (use private_key_jwt)",
        )),
    }
}

/// For a client registered with a TLS certificate: the connection must present exactly it.
fn check_certificate(client: &ClientRegistration, headers: &HeaderMap) -> Result<(), OAuthError> {
    let Some(registered) = client.tls_cert_thumbprint() else { return Ok(()) };
    let presented = headers.get(crate::http::PEER_CERT_HEADER).and_then(|v| v.to_str().ok());
    match presented {
        Some(p) if same_secret(p, &registered) => Ok(()),
        Some(_) => Err(OAuthError::invalid_client(
            "client authentication failed: the TLS client certificate is not the one registered for this client",
        )),
        None => Err(OAuthError::invalid_client(
            "client authentication failed: this client is registered for self_signed_tls_client_auth and must present its TLS client certificate",
        )),
    }
}

/// Authenticates the client of a token or PAR request. Every failure is 401 `invalid_client`.
/// A client registered with a TLS certificate must present it whatever else it sends.
pub fn authenticate<'a>(
    state: &'a Oidc,
    headers: &HeaderMap,
    params: &Params,
    now: i64,
) -> Result<(&'a ClientRegistration, Method), OAuthError> {
    let (client, method) = authenticate_inner(state, headers, params, now)?;
    check_certificate(client, headers)?;
    Ok((client, method))
}

fn authenticate_inner<'a>(
    state: &'a Oidc,
    headers: &HeaderMap,
    params: &Params,
    now: i64,
) -> Result<(&'a ClientRegistration, Method), OAuthError> {
    let basic = basic_credentials(headers)?;
    let assertion = params.get("client_assertion");
    let post_secret = params.get("client_secret");
    let methods =
        usize::from(basic.is_some()) + usize::from(assertion.is_some()) + usize::from(post_secret.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_client(
            "client authentication must only be provided using one mechanism",
        ));
    }
    let body_id = params.get("client_id");
    if let Some((id, secret)) = basic {
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_client(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        let c = client(state, &id)?;
        check_secret(c, &secret)?;
        return Ok((c, Method::SecretBasic));
    }
    if let Some(secret) = post_secret {
        let id = body_id.ok_or_else(|| OAuthError::invalid_client("client_secret without client_id"))?;
        let c = client(state, id)?;
        check_secret(c, secret)?;
        return Ok((c, Method::SecretPost));
    }
    if let Some(assertion) = assertion {
        let c = private_key_jwt(state, params, assertion, now)?;
        return Ok((c, Method::PrivateKeyJwt));
    }
    if let Some(c) = body_id.and_then(|id| state.core.client(id)).filter(|c| c.tls_client_cert.is_some()) {
        // self_signed_tls_client_auth: the certificate (checked by the caller) is the proof.
        return Ok((c, Method::SelfSignedTls));
    }
    Err(OAuthError::invalid_client(
        "no client authentication provided (client_secret_basic, client_secret_post, private_key_jwt or self_signed_tls_client_auth)",
    ))
}

fn private_key_jwt<'a>(
    state: &'a Oidc,
    params: &Params,
    assertion: &str,
    now: i64,
) -> Result<&'a ClientRegistration, OAuthError> {
    let fail = |why: String| OAuthError::invalid_client(format!("invalid client assertion: {why}"));
    if params.get("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
        return Err(OAuthError::invalid_client(format!(
            "client_assertion_type must be {JWT_BEARER_ASSERTION}"
        )));
    }
    let jws = jose::parse(assertion).map_err(fail)?;
    // RFC 7523 asks for a signature by the client's key; the sandbox accepts every asymmetric
    // algorithm Moneyhub advertises (RS*, PS*, ES*; never none / HS*).
    let alg = jose::asymmetric_alg(&jws.alg).ok_or_else(|| {
        fail(format!(
            "alg {} is not accepted (use RS256/384/512, PS256/384/512 or ES256/384/512)",
            jws.alg.chars().take(20).collect::<String>()
        ))
    })?;
    let iss = jose::str_claim(&jws.claims, "iss").ok_or_else(|| fail("iss claim missing".into()))?;
    let sub = jose::str_claim(&jws.claims, "sub").ok_or_else(|| fail("sub claim missing".into()))?;
    if iss != sub {
        return Err(fail("iss and sub must both be the client_id".into()));
    }
    if params.get("client_id").is_some_and(|b| b != iss) {
        return Err(fail("client_id in the body differs from the assertion's iss".into()));
    }
    let c = client(state, iss)?;
    let issuer = state.core.issuer();
    let token_ep = format!("{issuer}/token");
    let par_ep = format!("{issuer}/request");
    if !jose::aud_matches(&jws.claims, &[&issuer, &token_ep, &par_ep]) {
        return Err(fail(format!("aud must be (or contain) {issuer}, {token_ep} or {par_ep}")));
    }
    let exp = jose::check_times_either(&jws.claims, now, "the assertion").map_err(fail)?;
    let jti = jose::str_claim(&jws.claims, "jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| fail("jti claim missing".into()))?;
    jose::verify(assertion, &jws, alg, c.jwks.as_ref()).map_err(fail)?;
    // Only a verified assertion may burn its jti, or anyone could block a client's next one.
    // Remember the jti for at least an hour of virtual time, even when `exp` was judged on
    // the wall clock (far behind an advanced sandbox clock), so it cannot be replayed.
    if !state.identity.sessions.lock().use_jti(&c.client_id, jti, exp.max(now + 3600), now) {
        return Err(fail("jti has already been used".into()));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut h = HeaderMap::new();
        // base64("a%3Ab:s+c%25") without padding
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode("a%3Ab:s+c%25");
        h.insert(header::AUTHORIZATION, format!("Basic {enc}").parse().unwrap());
        assert_eq!(basic_credentials(&h).unwrap(), Some(("a:b".to_string(), "s c%".to_string())));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(basic_credentials(&h).is_err());
    }
}
