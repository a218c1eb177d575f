//! JOSE: the client's private key (JWK or PEM) for `private_key_jwt` client assertions, and
//! verification of Moneyhub's signed JWTs (id_tokens, JWT webhooks) against its JWKS.
//!
//! Verification accepts RS256, PS256 and ES256 only: never `none`, never an HMAC algorithm
//! (whose "key" would be public), whatever the token's header says.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The algorithm the client signs its assertions with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[default]
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
}

impl SigningAlg {
    /// The JOSE name (`RS256`, `PS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::PS256 => "PS256",
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::PS256 => Algorithm::PS256,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SigningAlg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "RS256" => Ok(SigningAlg::RS256),
            "PS256" => Ok(SigningAlg::PS256),
            other => {
                Err(Error::config(format!("unsupported signing algorithm {other:?}: use RS256 or PS256")))
            }
        }
    }
}

/// The client's RSA private key, for `private_key_jwt` client authentication.
///
/// Load it from a private JWK (`{"kty":"RSA","n","e","d","p","q",…}`) or a PEM file (PKCS#8
/// `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`). The `kid` sent in assertion headers is
/// the one given with [`PrivateKey::with_kid`], else the JWK's own `kid`; the algorithm is the
/// one given with [`PrivateKey::with_alg`], else the JWK's `alg`, else RS256.
///
/// `Debug` never shows key material. [`PrivateKey::public_jwk`] gives the public half to
/// register with Moneyhub.
#[derive(Clone)]
pub struct PrivateKey {
    encoding: EncodingKey,
    alg: SigningAlg,
    kid: Option<String>,
    n: String,
    e: String,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl PrivateKey {
    fn from_rsa(key: &RsaPrivateKey, alg: SigningAlg, kid: Option<String>) -> Result<Self> {
        if key.size() < 256 {
            return Err(Error::config("the RSA key is shorter than 2048 bits"));
        }
        let der = key.to_pkcs1_der().map_err(|e| Error::config_with("could not encode the RSA key", e))?;
        Ok(PrivateKey {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            alg,
            kid,
            n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        })
    }

    /// A key from a private RSA JWK (JSON text).
    pub fn from_jwk(jwk: &str) -> Result<Self> {
        let v: Value =
            serde_json::from_str(jwk).map_err(|_| Error::config("the private key JWK is not valid JSON"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        if s("kty") != Some("RSA") {
            return Err(Error::config("the private key JWK must have kty RSA"));
        }
        let num = |k: &str| -> Result<Option<BigUint>> {
            match s(k) {
                None => Ok(None),
                Some(b64) => URL_SAFE_NO_PAD
                    .decode(b64.trim_end_matches('='))
                    .map(|b| Some(BigUint::from_bytes_be(&b)))
                    .map_err(|_| Error::config(format!("the private key JWK's `{k}` is not base64url"))),
            }
        };
        let (Some(n), Some(e)) = (num("n")?, num("e")?) else {
            return Err(Error::config("the private key JWK lacks `n` or `e`"));
        };
        let Some(d) = num("d")? else {
            return Err(Error::config("the JWK has no private exponent `d`: it is a public key"));
        };
        let primes = match (num("p")?, num("q")?) {
            (Some(p), Some(q)) => vec![p, q],
            _ => Vec::new(),
        };
        let key = RsaPrivateKey::from_components(n, e, d, primes)
            .map_err(|e| Error::config_with("the private key JWK is not a valid RSA key", e))?;
        let alg = match s("alg") {
            Some(a) => a.parse()?,
            None => SigningAlg::RS256,
        };
        Self::from_rsa(&key, alg, s("kid").map(str::to_owned))
    }

    /// A key from PEM text (PKCS#8 or PKCS#1, unencrypted).
    pub fn from_pem(pem: &str) -> Result<Self> {
        if pem.contains("ENCRYPTED") {
            return Err(Error::config("encrypted PEM keys are not supported: decrypt the key first"));
        }
        let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|_| Error::config("the PEM text is not an RSA private key (PKCS#8 or PKCS#1)"))?;
        Self::from_rsa(&key, SigningAlg::RS256, None)
    }

    /// A key from JWK or PEM text, whichever it is.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim_start();
        if t.starts_with('{') {
            Self::from_jwk(t)
        } else if t.starts_with("-----BEGIN") {
            Self::from_pem(t)
        } else {
            Err(Error::config("the private key is neither a JWK (JSON) nor PEM text"))
        }
    }

    /// A key from a file holding a JWK or PEM text.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config_with(format!("could not read the private key file {}", path.display()), e)
        })?;
        Self::parse(&text)
    }

    /// Signs assertions with `alg` instead.
    pub fn with_alg(mut self, alg: SigningAlg) -> Self {
        self.alg = alg;
        self
    }

    /// Names the key `kid` in assertion headers.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The signing algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public half as a JWK (`kty`, `n`, `e`, `use: sig`, `alg`, and `kid` when set), to
    /// register with Moneyhub.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = json!({"kty": "RSA", "use": "sig", "alg": self.alg.as_str(), "n": self.n, "e": self.e});
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// `{"keys": [public_jwk]}`.
    pub fn public_jwks(&self) -> Value {
        json!({"keys": [self.public_jwk()]})
    }

    /// Signs `claims` as a compact JWS with this key's algorithm and `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> Result<String> {
        let mut header = Header::new(self.alg.algorithm());
        header.kid = self.kid.clone();
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| Error::config_with("could not sign the client assertion", e))
    }
}

/// The algorithms accepted on Moneyhub's JWTs.
pub(crate) const ACCEPTED_ALGS: &[&str] = &["RS256", "PS256", "ES256"];

/// The decoded, unverified header of a compact JWS.
#[derive(Debug, Clone)]
pub(crate) struct JwsHeader {
    pub alg: String,
    pub kid: Option<String>,
}

fn b64_json(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Reads the header of a compact JWS and checks its algorithm against the allow-list.
pub(crate) fn header(token: &str) -> std::result::Result<JwsHeader, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a compact JWS (three dot-separated parts expected)".into());
    };
    let header = b64_json(h).ok_or("the JWS header is not base64url JSON")?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or("the JWS header has no alg")?;
    if !ACCEPTED_ALGS.contains(&alg) {
        return Err(format!(
            "algorithm {:?} is not accepted (only RS256, PS256, ES256)",
            alg.chars().take(20).collect::<String>()
        ));
    }
    if sig.is_empty() {
        return Err("the JWS has no signature".into());
    }
    if header.contains_key("crit") {
        return Err("the JWS header has critical extensions this client does not understand".into());
    }
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(JwsHeader { alg: alg.to_owned(), kid })
}

fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "PS256" => Some(Algorithm::PS256),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}

/// A decoding key from one JWK, if it can verify `alg`.
fn decoding_key(jwk: &Value, alg: &str) -> Option<DecodingKey> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") || s("alg").is_some_and(|a| a != alg) {
        return None;
    }
    match (alg, s("kty")?) {
        ("RS256" | "PS256", "RSA") => DecodingKey::from_rsa_components(s("n")?, s("e")?).ok(),
        ("ES256", "EC") if s("crv") == Some("P-256") => {
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()
        }
        _ => None,
    }
}

/// Whether the JWKS has a key for this header (by `kid`; any suitable key without one).
pub(crate) fn has_key(keys: &[Value], header: &JwsHeader) -> bool {
    candidate_keys(keys, header).next().is_some()
}

fn candidate_keys<'a>(keys: &'a [Value], header: &'a JwsHeader) -> impl Iterator<Item = DecodingKey> + 'a {
    keys.iter()
        .filter(move |k| match &header.kid {
            Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid.as_str()),
            None => true,
        })
        .filter_map(move |k| decoding_key(k, &header.alg))
}

/// Verifies the signature of `token` with the matching key of `keys` and returns its claims.
/// Time, audience and issuer checks are the caller's (against its own clock).
pub(crate) fn verify(
    token: &str,
    header: &JwsHeader,
    keys: &[Value],
) -> std::result::Result<Map<String, Value>, String> {
    let alg = algorithm(&header.alg).ok_or("unsupported algorithm")?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut tried = false;
    for key in candidate_keys(keys, header) {
        tried = true;
        if let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            return Ok(data.claims);
        }
    }
    if tried {
        Err("signature verification failed".into())
    } else {
        Err(match &header.kid {
            Some(kid) => format!("no {} key with kid {kid:?} in Moneyhub's JWKS", header.alg),
            None => format!("no {} key in Moneyhub's JWKS", header.alg),
        })
    }
}

/// A string claim.
pub(crate) fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// A NumericDate claim (integer or fractional seconds).
pub(crate) fn time_claim(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// Whether `aud` (a string or an array of strings) contains `expected`.
pub(crate) fn aud_contains(claims: &Map<String, Value>, expected: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == expected,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expected)),
        _ => false,
    }
}

/// Number of audiences.
pub(crate) fn aud_len(claims: &Map<String, Value>) -> usize {
    match claims.get("aud") {
        Some(Value::String(_)) => 1,
        Some(Value::Array(list)) => list.len(),
        _ => 0,
    }
}

/// OIDC `at_hash`: base64url of the left half of SHA-256 of the token (RS256/PS256/ES256).
pub(crate) fn left_half_sha256(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// PKCE S256 challenge of a verifier.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `n` random bytes as base64url (for state, nonce, PKCE verifiers and `jti`s).
pub(crate) fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random (v4) UUID.
pub(crate) fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_refuses_none_and_hmac() {
        // {"alg":"none"}.{}.
        assert!(header("eyJhbGciOiJub25lIn0.e30.").unwrap_err().contains("not accepted"));
        // {"alg":"HS256"}.{}.x
        assert!(header("eyJhbGciOiJIUzI1NiJ9.e30.eA").unwrap_err().contains("not accepted"));
        // {"alg":"RS256"}.{}. (empty signature)
        assert!(header("eyJhbGciOiJSUzI1NiJ9.e30.").is_err());
        assert!(header("a.b").is_err());
        assert_eq!(header("eyJhbGciOiJSUzI1NiJ9.e30.eA").unwrap().alg, "RS256");
    }

    #[test]
    fn pkce_s256() {
        // base64url(sha256(verifier)) without padding, computed independently (Python hashlib).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ92K27uhbUJU1p1r-wW1gXk7-EjXk"),
            "5-McichUFVEkSKD3uaHJmdDCPBG61tNbA07nfiDAxjw"
        );
    }
}
