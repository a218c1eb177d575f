//! JOSE: the client's private key (JWK or PEM) for `private_key_jwt` client assertions,
//! signed request objects and jwt-bearer assertions, and verification of Moneyhub's signed
//! JWTs (id_tokens, JWT webhooks) against its JWKS.
//!
//! All signing and verification goes through [aws-lc-rs](https://docs.rs/aws-lc-rs) (the same
//! provider the client's TLS uses): no crate of this one depends on `rsa` (RUSTSEC-2023-0071).
//! The JWS compact serialisation itself is a few lines here rather than `jsonwebtoken`, because
//! jsonwebtoken 10 picks its backend from cargo features: an application that also enables its
//! `rust_crypto` feature would unify both backends into one build, and jsonwebtoken then panics
//! on every signature unless the application installs a provider by hand. Our signing does
//! not depend on which jsonwebtoken features an application enables; it cannot fail that way.
//!
//! Verification accepts RS256/384/512, PS256/384/512 and ES256/384/512 only: never `none`,
//! never an HMAC algorithm (whose "key" would be public), whatever the token's header says.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// A JWS algorithm the client signs with: client assertions (`private_key_jwt`), request
/// objects and jwt-bearer assertions.
///
/// RS* and PS* need an RSA key of at least 2048 bits; ES256 a P-256 key, ES384 a P-384 key,
/// ES512 a P-521 key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[default]
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
}

/// The kind of key an algorithm needs, or a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA.
    Rsa,
    /// EC on P-256.
    P256,
    /// EC on P-384.
    P384,
    /// EC on P-521.
    P521,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "an RSA key",
            KeyType::P256 => "an EC P-256 key",
            KeyType::P384 => "an EC P-384 key",
            KeyType::P521 => "an EC P-521 key",
        })
    }
}

impl SigningAlg {
    /// Every algorithm, in a stable order.
    pub const ALL: [SigningAlg; 9] = [
        SigningAlg::RS256,
        SigningAlg::RS384,
        SigningAlg::RS512,
        SigningAlg::PS256,
        SigningAlg::PS384,
        SigningAlg::PS512,
        SigningAlg::ES256,
        SigningAlg::ES384,
        SigningAlg::ES512,
    ];

    /// The JOSE name (`RS256`, `PS256`, `ES256`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::RS384 => "RS384",
            SigningAlg::RS512 => "RS512",
            SigningAlg::PS256 => "PS256",
            SigningAlg::PS384 => "PS384",
            SigningAlg::PS512 => "PS512",
            SigningAlg::ES256 => "ES256",
            SigningAlg::ES384 => "ES384",
            SigningAlg::ES512 => "ES512",
        }
    }

    /// The key type this algorithm signs with.
    pub fn key_type(self) -> KeyType {
        match self {
            SigningAlg::RS256
            | SigningAlg::RS384
            | SigningAlg::RS512
            | SigningAlg::PS256
            | SigningAlg::PS384
            | SigningAlg::PS512 => KeyType::Rsa,
            SigningAlg::ES256 => KeyType::P256,
            SigningAlg::ES384 => KeyType::P384,
            SigningAlg::ES512 => KeyType::P521,
        }
    }

    fn rsa_encoding(self) -> Option<&'static dyn signature::RsaEncoding> {
        Some(match self {
            SigningAlg::RS256 => &signature::RSA_PKCS1_SHA256,
            SigningAlg::RS384 => &signature::RSA_PKCS1_SHA384,
            SigningAlg::RS512 => &signature::RSA_PKCS1_SHA512,
            SigningAlg::PS256 => &signature::RSA_PSS_SHA256,
            SigningAlg::PS384 => &signature::RSA_PSS_SHA384,
            SigningAlg::PS512 => &signature::RSA_PSS_SHA512,
            _ => return None,
        })
    }

    /// The RSA verification parameters (`None` for EC algorithms).
    fn rsa_params(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            SigningAlg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SigningAlg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            SigningAlg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            SigningAlg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            SigningAlg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            SigningAlg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    /// The ECDSA verification algorithm (`None` for RSA algorithms).
    fn ec_verification(self) -> Option<&'static dyn signature::VerificationAlgorithm> {
        Some(match self {
            SigningAlg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            SigningAlg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            SigningAlg::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
            _ => return None,
        })
    }
}

impl KeyType {
    fn ec_signing(self) -> Option<&'static signature::EcdsaSigningAlgorithm> {
        match self {
            KeyType::Rsa => None,
            KeyType::P256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            KeyType::P384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            KeyType::P521 => Some(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
        }
    }

    fn crv(self) -> &'static str {
        match self {
            KeyType::Rsa => "",
            KeyType::P256 => "P-256",
            KeyType::P384 => "P-384",
            KeyType::P521 => "P-521",
        }
    }

    fn from_crv(crv: &str) -> Option<KeyType> {
        match crv {
            "P-256" => Some(KeyType::P256),
            "P-384" => Some(KeyType::P384),
            "P-521" => Some(KeyType::P521),
            _ => None,
        }
    }

    /// The algorithm used when none is given: RS256 for RSA, the curve's own ES* for EC.
    fn default_alg(self) -> SigningAlg {
        match self {
            KeyType::Rsa => SigningAlg::RS256,
            KeyType::P256 => SigningAlg::ES256,
            KeyType::P384 => SigningAlg::ES384,
            KeyType::P521 => SigningAlg::ES512,
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
        let upper = s.trim().to_ascii_uppercase();
        SigningAlg::ALL.into_iter().find(|a| a.as_str() == upper).ok_or_else(|| {
            Error::config(format!(
                "unsupported signing algorithm {:?}: use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512",
                s.chars().take(20).collect::<String>()
            ))
        })
    }
}

enum KeyPairKind {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, KeyType),
}

/// The client's private key (RSA, or EC on P-256, P-384 or P-521), for `private_key_jwt`
/// client assertions, signed request objects and jwt-bearer assertions.
///
/// Load it from a private JWK (`{"kty":"RSA","n","e","d","p","q","dp","dq","qi"}` or
/// `{"kty":"EC","crv","x","y","d"}`) or PEM (PKCS#8 `BEGIN PRIVATE KEY`, PKCS#1
/// `BEGIN RSA PRIVATE KEY`, SEC1 `BEGIN EC PRIVATE KEY`; unencrypted). An RSA JWK must carry
/// its CRT parameters (`p`, `q`, `dp`, `dq`, `qi`), as every JWK tool writes them.
///
/// The `kid` sent in headers is the one given with [`PrivateKey::with_kid`], else the JWK's own
/// `kid`. The algorithm is the one given with [`PrivateKey::with_alg`], else the JWK's `alg`,
/// else inferred from the key: RS256 for RSA, ES256/ES384/ES512 for P-256/P-384/P-521. An
/// algorithm that does not fit the key is a configuration error naming both.
///
/// `Debug` never shows key material. [`PrivateKey::public_jwk`] gives the public half to
/// register with Moneyhub.
#[derive(Clone)]
pub struct PrivateKey {
    key: Arc<KeyPairKind>,
    alg: SigningAlg,
    kid: Option<String>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("type", &self.key_type())
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl PrivateKey {
    fn new(key: KeyPairKind, alg: Option<SigningAlg>, kid: Option<String>) -> Result<Self> {
        if let KeyPairKind::Rsa(rsa) = &key {
            if rsa.public_modulus_len() < 256 {
                return Err(Error::config("the RSA key is shorter than 2048 bits"));
            }
        }
        let key = Arc::new(key);
        let key_type = match &*key {
            KeyPairKind::Rsa(_) => KeyType::Rsa,
            KeyPairKind::Ec(_, t) => *t,
        };
        let out = PrivateKey { key, alg: key_type.default_alg(), kid };
        match alg {
            Some(alg) => out.with_alg(alg),
            None => Ok(out),
        }
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match &*self.key {
            KeyPairKind::Rsa(_) => KeyType::Rsa,
            KeyPairKind::Ec(_, t) => *t,
        }
    }

    /// Generates a fresh key of `key_type` (RSA: 2048 bits), signing with its default
    /// algorithm (RS256, ES256, ES384, ES512). For tests and examples: register its
    /// [`public_jwks`](Self::public_jwks).
    pub fn generate(key_type: KeyType) -> Result<Self> {
        let fail = |_| Error::config("could not generate a key");
        let kind = match key_type.ec_signing() {
            None => KeyPairKind::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(fail)?),
            Some(alg) => KeyPairKind::Ec(EcdsaKeyPair::generate(alg).map_err(fail)?, key_type),
        };
        Self::new(kind, None, None)
    }

    /// A key from a private JWK (JSON text): RSA, or EC on P-256, P-384 or P-521.
    pub fn from_jwk(jwk: &str) -> Result<Self> {
        let v: Value =
            serde_json::from_str(jwk).map_err(|_| Error::config("the private key JWK is not valid JSON"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let bytes = |k: &str| -> Result<Option<Vec<u8>>> {
            match s(k) {
                None => Ok(None),
                Some(text) => URL_SAFE_NO_PAD
                    .decode(text.trim_end_matches('='))
                    .map(Some)
                    .map_err(|_| Error::config(format!("the private key JWK's `{k}` is not base64url"))),
            }
        };
        let alg = s("alg").map(str::parse::<SigningAlg>).transpose()?;
        let kid = s("kid").map(str::to_owned);
        let kind = match s("kty") {
            Some("RSA") => {
                let (Some(n), Some(e)) = (bytes("n")?, bytes("e")?) else {
                    return Err(Error::config("the RSA JWK lacks `n` or `e`"));
                };
                let Some(d) = bytes("d")? else {
                    return Err(Error::config("the JWK has no private exponent `d`: it is a public key"));
                };
                let (Some(p), Some(q), Some(dp), Some(dq), Some(qi)) =
                    (bytes("p")?, bytes("q")?, bytes("dp")?, bytes("dq")?, bytes("qi")?)
                else {
                    return Err(Error::config(
                        "the RSA JWK lacks its CRT parameters (`p`, `q`, `dp`, `dq`, `qi`): export the full private key",
                    ));
                };
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents { n, e },
                    d,
                    p,
                    q,
                    dP: dp,
                    dQ: dq,
                    qInv: qi,
                };
                KeyPairKind::Rsa(
                    RsaKeyPair::from_components(&components)
                        .map_err(|e| Error::config_with("the private key JWK is not a valid RSA key", e))?,
                )
            }
            Some("EC") => {
                let crv = s("crv").unwrap_or("");
                let key_type = KeyType::from_crv(crv).ok_or_else(|| {
                    Error::config(format!(
                        "unsupported EC curve {:?} in the private key JWK (use P-256, P-384 or P-521)",
                        crv.chars().take(20).collect::<String>()
                    ))
                })?;
                let (Some(x), Some(y)) = (bytes("x")?, bytes("y")?) else {
                    return Err(Error::config("the EC JWK lacks `x` or `y`"));
                };
                let Some(d) = bytes("d")? else {
                    return Err(Error::config("the JWK has no private key `d`: it is a public key"));
                };
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let alg = key_type.ec_signing().unwrap_or(&signature::ECDSA_P256_SHA256_FIXED_SIGNING);
                KeyPairKind::Ec(
                    EcdsaKeyPair::from_private_key_and_public_key(alg, &d, &point).map_err(|e| {
                        Error::config_with(format!("the private key JWK is not a valid {crv} key"), e)
                    })?,
                    key_type,
                )
            }
            Some(other) => {
                return Err(Error::config(format!(
                    "unsupported key type {:?} in the private key JWK (use RSA or EC)",
                    other.chars().take(20).collect::<String>()
                )))
            }
            None => return Err(Error::config("the private key JWK has no `kty`")),
        };
        Self::new(kind, alg, kid)
    }

    /// A key from PEM text: PKCS#8 (RSA or EC), PKCS#1 (RSA) or SEC1 (EC); unencrypted.
    pub fn from_pem(pem: &str) -> Result<Self> {
        if pem.contains("ENCRYPTED") {
            return Err(Error::config("encrypted PEM keys are not supported: decrypt the key first"));
        }
        let der = PrivateKeyDer::from_pem_slice(pem.trim().as_bytes()).map_err(|_| {
            Error::config("the PEM text holds no private key (PKCS#8, PKCS#1 RSA or SEC1 EC)")
        })?;
        let ec_curves = [KeyType::P256, KeyType::P384, KeyType::P521];
        let kind = match &der {
            PrivateKeyDer::Pkcs1(k) => KeyPairKind::Rsa(
                RsaKeyPair::from_der(k.secret_pkcs1_der())
                    .map_err(|e| Error::config_with("the PEM text is not a valid RSA private key", e))?,
            ),
            PrivateKeyDer::Sec1(k) => ec_curves
                .into_iter()
                .find_map(|t| {
                    let alg = t.ec_signing()?;
                    EcdsaKeyPair::from_private_key_der(alg, k.secret_sec1_der()).ok().map(|p| (p, t))
                })
                .map(|(p, t)| KeyPairKind::Ec(p, t))
                .ok_or_else(|| {
                    Error::config("the PEM text is not an EC private key on P-256, P-384 or P-521")
                })?,
            PrivateKeyDer::Pkcs8(k) => {
                let bytes = k.secret_pkcs8_der();
                if let Ok(rsa) = RsaKeyPair::from_pkcs8(bytes) {
                    KeyPairKind::Rsa(rsa)
                } else {
                    ec_curves
                        .into_iter()
                        .find_map(|t| {
                            let alg = t.ec_signing()?;
                            EcdsaKeyPair::from_pkcs8(alg, bytes).ok().map(|p| (p, t))
                        })
                        .map(|(p, t)| KeyPairKind::Ec(p, t))
                        .ok_or_else(|| {
                            Error::config("the PKCS#8 key is neither RSA nor EC on P-256, P-384 or P-521")
                        })?
                }
            }
            _ => return Err(Error::config("unsupported private key format")),
        };
        Self::new(kind, None, None)
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

    /// Signs with `alg` instead. Fails, naming both, when the key cannot sign with `alg`
    /// (an EC key with RS256, a P-256 key with ES384, …).
    pub fn with_alg(mut self, alg: SigningAlg) -> Result<Self> {
        let key_type = self.key_type();
        if alg.key_type() != key_type {
            return Err(Error::config(format!(
                "the private key is {key_type}, which cannot sign {alg} (that needs {})",
                alg.key_type()
            )));
        }
        self.alg = alg;
        Ok(self)
    }

    /// Names the key `kid` in headers.
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

    /// The public half as a JWK (`kty`, `n`/`e` or `crv`/`x`/`y`, `use: sig`, `alg`, and `kid`
    /// when set), to register with Moneyhub.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &*self.key {
            KeyPairKind::Rsa(k) => {
                let public = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            KeyPairKind::Ec(k, t) => {
                // Uncompressed point: 0x04 || x || y.
                let point = k.public_key().as_ref();
                let coords = point.get(1..).unwrap_or_default();
                let (x, y) = coords.split_at(coords.len() / 2);
                json!({"kty": "EC", "crv": t.crv(), "x": b64(x), "y": b64(y)})
            }
        };
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(self.alg.as_str());
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// `{"keys": [public_jwk]}`.
    pub fn public_jwks(&self) -> Value {
        json!({"keys": [self.public_jwk()]})
    }

    /// Signs `claims` as a compact JWS (`typ: JWT`) with this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        self.sign_typed("JWT", claims)
    }

    /// Signs `claims` as a compact JWS with header `typ` (e.g. `oauth-authz-req+jwt`).
    pub fn sign_typed(&self, typ: &str, claims: &Value) -> Result<String> {
        self.sign_with(self.alg, typ, claims)
    }

    /// Signs `claims` with another algorithm than the key's own (a request-object algorithm
    /// registered apart from the assertion's); it must fit the key.
    pub fn sign_with(&self, alg: SigningAlg, typ: &str, claims: &Value) -> Result<String> {
        if alg.key_type() != self.key_type() {
            return Err(Error::config(format!(
                "the private key is {}, which cannot sign {alg} (that needs {})",
                self.key_type(),
                alg.key_type()
            )));
        }
        let mut header = json!({"alg": alg.as_str(), "typ": typ});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let fail = |_| Error::config(format!("could not sign with {alg}"));
        let sig = match &*self.key {
            KeyPairKind::Rsa(k) => {
                let encoding = alg.rsa_encoding().ok_or_else(|| {
                    Error::config(format!("the private key is an RSA key, which cannot sign {alg}"))
                })?;
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(encoding, &rng, input.as_bytes(), &mut sig).map_err(fail)?;
                sig
            }
            KeyPairKind::Ec(k, _) => k.sign(&rng, input.as_bytes()).map_err(fail)?.as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

/// The algorithms accepted on Moneyhub's JWTs.
pub(crate) const ACCEPTED_ALGS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

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
            "algorithm {:?} is not accepted (only RS*, PS* and ES*)",
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

/// A public key from one JWK, if it can verify `alg`.
enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec(Vec<u8>),
}

impl PublicKey {
    fn verify(&self, alg: SigningAlg, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Rsa { n, e } => {
                let Some(params) = alg.rsa_params() else { return false };
                PublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, message, sig).is_ok()
            }
            PublicKey::Ec(point) => {
                let Some(verification) = alg.ec_verification() else { return false };
                signature::UnparsedPublicKey::new(verification, point).verify(message, sig).is_ok()
            }
        }
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn public_key(jwk: &Value, alg: SigningAlg) -> Option<PublicKey> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") || s("alg").is_some_and(|a| a != alg.as_str()) {
        return None;
    }
    match (alg.key_type(), s("kty")?) {
        (KeyType::Rsa, "RSA") => Some(PublicKey::Rsa { n: decode_b64(s("n")?)?, e: decode_b64(s("e")?)? }),
        (curve, "EC") if s("crv") == Some(curve.crv()) => {
            let mut point = vec![4u8];
            point.extend(decode_b64(s("x")?)?);
            point.extend(decode_b64(s("y")?)?);
            Some(PublicKey::Ec(point))
        }
        _ => None,
    }
}

/// Whether the JWKS has a key for this header (by `kid`; any suitable key without one).
pub(crate) fn has_key(keys: &[Value], header: &JwsHeader) -> bool {
    header.alg.parse::<SigningAlg>().is_ok_and(|alg| candidate_keys(keys, header, alg).next().is_some())
}

fn candidate_keys<'a>(
    keys: &'a [Value],
    header: &'a JwsHeader,
    alg: SigningAlg,
) -> impl Iterator<Item = PublicKey> + 'a {
    keys.iter()
        .filter(move |k| match &header.kid {
            Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid.as_str()),
            None => true,
        })
        .filter_map(move |k| public_key(k, alg))
}

/// Verifies the signature of `token` with the matching key of `keys` and returns its claims.
/// Time, audience and issuer checks are the caller's (against its own clock).
pub(crate) fn verify(
    token: &str,
    header: &JwsHeader,
    keys: &[Value],
) -> std::result::Result<Map<String, Value>, String> {
    let alg: SigningAlg = header.alg.parse().map_err(|_| "unsupported algorithm")?;
    if !ACCEPTED_ALGS.contains(&alg.as_str()) {
        return Err("unsupported algorithm".into());
    }
    let (input, sig) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let (_, payload) = input.split_once('.').ok_or("not a compact JWS")?;
    let sig = decode_b64(sig).ok_or("the JWS signature is not base64url")?;
    let mut tried = false;
    for key in candidate_keys(keys, header, alg) {
        tried = true;
        if key.verify(alg, input.as_bytes(), &sig) {
            return b64_json(payload).ok_or_else(|| "the JWS payload is not a base64url JSON object".into());
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

/// The claims of a compact JWS, signature not checked (for a token verified earlier).
pub(crate) fn unverified_claims(token: &str) -> std::result::Result<Map<String, Value>, String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS (three dot-separated parts expected)".into());
    };
    b64_json(payload).ok_or_else(|| "the JWS payload is not a base64url JSON object".into())
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
    let digest = sha256(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// SHA-256.
pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

/// PKCE S256 challenge of a verifier.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()))
}

/// `n` random bytes as base64url (for state, nonce, PKCE verifiers and `jti`s).
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
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
