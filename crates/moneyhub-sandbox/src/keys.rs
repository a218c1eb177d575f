//! The sandbox's keys: an RS256 key that signs id_tokens and JWT webhooks (published at
//! `/oidc/certs`), and an HMAC secret for its access tokens.
//!
//! Access tokens are HS256 JWTs only the sandbox can read: Moneyhub says to treat access
//! tokens as opaque, and signing them with HMAC keeps the token endpoint at thousands of
//! requests a second, where RSA signing would cap it far lower.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

/// An RS256 signing key with its `kid` and public JWK.
pub struct SigningKey {
    kid: String,
    key: KeyPair,
    public_jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh 2048-bit RSA key (aws-lc-rs).
    pub fn generate() -> Result<Self, String> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|e| e.to_string())?;
        let public = key.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let kid = URL_SAFE_NO_PAD.encode(&sha256(n.as_bytes())[..12]);
        let public_jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        Ok(SigningKey { kid, key, public_jwk })
    }

    /// One key per process, generated on first use: generating RSA keys is slow, and tests
    /// start many sandboxes.
    pub fn shared() -> Result<Arc<SigningKey>, String> {
        static KEY: OnceLock<Result<Arc<SigningKey>, String>> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::generate().map(Arc::new)).clone()
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document served at `/oidc/certs`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.public_jwk]})
    }

    /// Signs claims as an RS256 JWS with this key's `kid` and the given `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, String> {
        let header = json!({"alg": "RS256", "typ": typ, "kid": self.kid});
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string().as_bytes()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|e| e.to_string())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// SHA-256 of `data` (aws-lc-rs, the workspace's one crypto stack).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Base64url (no padding) of SHA-256 of `s`, left half: the OIDC `at_hash`/`c_hash` rule
/// for RS256.
pub fn left_half_hash(s: &str) -> String {
    let d = sha256(s.as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}

/// Base64url (no padding) of SHA-256 of `der`: a certificate's `x5t#S256` (RFC 8705).
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha256(der))
}
