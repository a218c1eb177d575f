//! Reading JWTs that clients send (client assertions, request objects, jwt-bearer
//! assertions) and verifying them against the client's registered public keys.
//!
//! The JWS is parsed and verified here on aws-lc-rs (no `rsa` crate, no JOSE library whose
//! backend an embedding application's cargo features could change): `alg: none` (which
//! unsigned request objects legitimately use) and unknown algorithms get a precise OAuth error.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
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
pub const ASYMMETRIC_ALGS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

/// The JWS algorithm named `name`, if the sandbox verifies it.
pub fn asymmetric_alg(name: &str) -> Option<&'static str> {
    ASYMMETRIC_ALGS.iter().copied().find(|a| *a == name)
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Whether `sig` over `message` verifies with one JWK of the client's set under `alg`.
fn verify_with(jwk: &Value, alg: &str, message: &[u8], sig: &[u8]) -> Option<bool> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") || s("alg").is_some_and(|a| a != alg) {
        return None;
    }
    let ec = |crv: &str, v: &'static signature::EcdsaVerificationAlgorithm| -> Option<bool> {
        if s("kty")? != "EC" || s("crv")? != crv {
            return None;
        }
        let mut point = vec![4u8];
        point.extend(b64(s("x")?)?);
        point.extend(b64(s("y")?)?);
        Some(UnparsedPublicKey::new(v, point).verify(message, sig).is_ok())
    };
    let rsa = |params: &'static signature::RsaParameters| -> Option<bool> {
        if s("kty")? != "RSA" {
            return None;
        }
        let key = RsaPublicKeyComponents { n: b64(s("n")?)?, e: b64(s("e")?)? };
        Some(key.verify(params, message, sig).is_ok())
    };
    match alg {
        "RS256" => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => rsa(&signature::RSA_PSS_2048_8192_SHA256),
        "PS384" => rsa(&signature::RSA_PSS_2048_8192_SHA384),
        "PS512" => rsa(&signature::RSA_PSS_2048_8192_SHA512),
        "ES256" => ec("P-256", &signature::ECDSA_P256_SHA256_FIXED),
        "ES384" => ec("P-384", &signature::ECDSA_P384_SHA384_FIXED),
        "ES512" => ec("P-521", &signature::ECDSA_P521_SHA512_FIXED),
        _ => None,
    }
}

/// Verifies `token` (whose parsed form is `jws`) with the client's JWKS: the key named by
/// `kid`, or every suitable key when the header has none. `alg` must already have been
/// checked against what the caller allows (and equal the header's). Returns why verification
/// failed.
pub fn verify(token: &str, jws: &Jws, alg: &str, jwks: Option<&Value>) -> Result<(), String> {
    let keys = jwks
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .ok_or("the client has no registered JWKS")?;
    if jws.alg != alg || asymmetric_alg(alg).is_none() {
        return Err(format!("alg {} is not accepted here", jws.alg));
    }
    let token = token.trim();
    let (input, sig) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let sig = b64(sig).ok_or("the signature is not base64url")?;
    let outcomes: Vec<bool> = keys
        .iter()
        .filter(|k| match &jws.kid {
            Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid.as_str()),
            None => true,
        })
        .filter_map(|k| verify_with(k, alg, input.as_bytes(), &sig))
        .collect();
    if outcomes.is_empty() {
        return Err(match &jws.kid {
            Some(kid) => format!("no {} key with kid {kid:?} in the client's JWKS", jws.alg),
            None => format!("no key in the client's JWKS suits {}", jws.alg),
        });
    }
    if outcomes.contains(&true) {
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
