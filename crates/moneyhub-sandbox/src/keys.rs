//! The sandbox's keys: an RS256 key that signs id_tokens and JWT webhooks (published at
//! `/oidc/certs`), and an HMAC secret for its access tokens.
//!
//! Access tokens are HS256 JWTs only the sandbox can read: Moneyhub says to treat access
//! tokens as opaque, and signing them with HMAC keeps the token endpoint at thousands of
//! requests a second, where RSA signing would cap it far lower.

use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// An RS256 signing key with its `kid` and public JWK.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public_jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh 2048-bit RSA key.
    pub fn generate() -> Result<Self, String> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| e.to_string())?;
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &RsaPrivateKey) -> Result<Self, String> {
        let der = key.to_pkcs1_der().map_err(|e| e.to_string())?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(n.as_bytes())[..12]);
        let public_jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        Ok(SigningKey { kid, encoding, public_jwk })
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
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }
}

/// Base64url (no padding) of SHA-256 of `s`, left half: the OIDC `at_hash`/`c_hash` rule
/// for RS256.
pub fn left_half_hash(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}
