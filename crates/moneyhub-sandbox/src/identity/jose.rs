//! Reading JWTs that clients send (client assertions, request objects, jwt-bearer
//! assertions) and verifying them against the client's registered public keys.
//!
//! The header is parsed by hand rather than with `jsonwebtoken::decode_header`, because that
//! refuses `alg: none` (which unsigned request objects legitimately use) and any algorithm it
//! does not know, and we want to answer both with a precise OAuth error instead.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// How much clock skew is tolerated on `exp` / `nbf` (seconds). openid-client uses the same.
pub const LEEWAY_SECS: i64 = 10;

/// A compact JWS split into its parts, header and payload decoded but nothing verified.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The header's `alg`.
    pub alg: String,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// The payload's claims.
    pub claims: Map<String, Value>,
    /// Whether the signature part is empty (as `alg: none` requires).
    pub unsigned: bool,
}

/// Decodes a base64url JSON object (padding tolerated).
fn b64_json(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| "is not valid base64url".to_string())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("is not a JSON object".into()),
        Err(_) => Err("is not valid JSON".into()),
    }
}

/// Splits and decodes a compact JWS without verifying it.
pub fn parse(token: &str) -> Result<Jws, String> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a compact JWS (three dot-separated parts expected)".into());
    };
    let header = b64_json(h).map_err(|e| format!("JWT header {e}"))?;
    let claims = b64_json(p).map_err(|e| format!("JWT payload {e}"))?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or("JWT header has no alg")?.to_string();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_string);
    Ok(Jws { alg, kid, claims, unsigned: s.is_empty() })
}

/// The JWS algorithms the sandbox verifies, by name. HMAC and `none` are deliberately
/// absent: client JWTs must be signed with the client's registered asymmetric key.
pub fn asymmetric_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        _ => return None,
    })
}

/// A decoding key built from one JWK of the client's set, if it suits `alg`.
fn key_for(jwk: &Value, alg: Algorithm, alg_name: &str) -> Option<DecodingKey> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") || s("alg").is_some_and(|a| a != alg_name) {
        return None;
    }
    match (alg, s("kty")?) {
        (Algorithm::ES256, "EC") if s("crv") == Some("P-256") => {
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()
        }
        (Algorithm::ES384, "EC") if s("crv") == Some("P-384") => {
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()
        }
        (
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
            "RSA",
        ) => DecodingKey::from_rsa_components(s("n")?, s("e")?).ok(),
        _ => None,
    }
}

/// Verifies `token` (whose parsed form is `jws`) with the client's JWKS: the key named by
/// `kid`, or every suitable key when the header has none. `alg` must already have been
/// checked against what the caller allows. Returns why verification failed.
pub fn verify(token: &str, jws: &Jws, alg: Algorithm, jwks: Option<&Value>) -> Result<(), String> {
    let keys = jwks
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .ok_or("the client has no registered JWKS")?;
    let candidates: Vec<DecodingKey> = keys
        .iter()
        .filter(|k| match &jws.kid {
            Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid.as_str()),
            None => true,
        })
        .filter_map(|k| key_for(k, alg, &jws.alg))
        .collect();
    if candidates.is_empty() {
        return Err(match &jws.kid {
            Some(kid) => format!("no {} key with kid {kid:?} in the client's JWKS", jws.alg),
            None => format!("no key in the client's JWKS suits {}", jws.alg),
        });
    }
    let mut validation = Validation::new(alg);
    // Claims are checked by the callers against the virtual clock, not here.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let ok = candidates
        .iter()
        .any(|key| jsonwebtoken::decode::<Map<String, Value>>(token.trim(), key, &validation).is_ok());
    if ok {
        Ok(())
    } else {
        Err("signature verification failed".into())
    }
}

/// A claim as a string.
pub fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// A numeric date claim (integer or float seconds).
pub fn time_claim(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// Whether `aud` (a string or an array of strings) names one of `accepted`.
pub fn aud_matches(claims: &Map<String, Value>, accepted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => accepted.contains(&a.as_str()),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| accepted.contains(&a)),
        _ => false,
    }
}

/// Checks `exp` (required) and `nbf` (if present) against `now` with [`LEEWAY_SECS`].
pub fn check_times(claims: &Map<String, Value>, now: i64, what: &str) -> Result<i64, String> {
    let exp = time_claim(claims, "exp").ok_or_else(|| format!("{what} has no numeric exp claim"))?;
    if exp.saturating_add(LEEWAY_SECS) < now {
        return Err(format!("{what} has expired"));
    }
    if let Some(nbf) = time_claim(claims, "nbf") {
        if nbf.saturating_sub(LEEWAY_SECS) > now {
            return Err(format!("{what} is not valid yet (nbf)"));
        }
    }
    Ok(exp)
}

/// Like [`check_times`], but valid when the times hold on *either* the sandbox's virtual clock
/// or the wall clock: clients sign assertions and request objects with their own (real) clock,
/// and a test that moved the sandbox weeks ahead must not lock them out.
pub fn check_times_either(claims: &Map<String, Value>, virtual_now: i64, what: &str) -> Result<i64, String> {
    let wall_now = chrono::Utc::now().timestamp();
    check_times(claims, virtual_now, what).or_else(|e| check_times(claims, wall_now, what).map_err(|_| e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_garbage_without_panicking() {
        for bad in ["", ".", "..", "a.b.c", "e30.e30", "e30.e30.x.y", "W10.e30.", "e30.W10."] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // {"alg":"none"} . {"a":1} . (empty)
        let jws = parse("eyJhbGciOiJub25lIn0.eyJhIjoxfQ.").unwrap();
        assert_eq!(jws.alg, "none");
        assert!(jws.unsigned);
        assert_eq!(jws.claims.get("a"), Some(&Value::from(1)));
    }

    #[test]
    fn aud_string_or_array() {
        let mut c = Map::new();
        c.insert("aud".into(), Value::from("x"));
        assert!(aud_matches(&c, &["x"]));
        c.insert("aud".into(), serde_json::json!(["y", "x"]));
        assert!(aud_matches(&c, &["x"]));
        c.insert("aud".into(), serde_json::json!([1]));
        assert!(!aud_matches(&c, &["x"]));
    }
}
