//! Access tokens and scope checks for the REST and Data API routes.

use aws_lc_rs::hmac;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::{Core, IdentityRoom};

/// How long client-credentials tokens live (Moneyhub: 7200 s).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 7200;

/// What a bearer token grants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// Token id.
    pub jti: String,
    /// The client it was issued to.
    pub cid: String,
    /// The user it is bound to (`sub` of the client-credentials request), if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub: Option<String>,
    /// Space-separated scopes.
    pub scope: String,
    /// Issued at (virtual time, seconds).
    pub iat: i64,
    /// Expires (virtual time, seconds).
    pub exp: i64,
    /// The `x5t#S256` of the TLS client certificate the token is bound to (RFC 8705 `cnf`),
    /// for clients registered with a certificate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<String>,
}

impl Grant {
    /// Whether the grant includes `scope`.
    pub fn has(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }

    /// 403 unless the grant has at least one of `scopes`.
    pub fn require_any(&self, scopes: &[&str]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.has(s)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("Missing required scope: one of {}", scopes.join(", "))))
        }
    }

    /// The user a Data API token is bound to; 403 for a token without `sub`.
    pub fn user(&self) -> Result<&str, ApiError> {
        self.sub.as_deref().ok_or_else(|| {
            ApiError::forbidden("This route needs a token bound to a user (client_credentials with sub)")
        })
    }
}

/// Issues and checks the sandbox's access tokens: HS256 JWTs (aws-lc-rs HMAC-SHA256) that
/// only this sandbox can read.
pub struct TokenMinter {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenMinter([redacted])")
    }
}

/// `{"alg":"HS256","typ":"JWT"}`, base64url.
const HS256_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

impl TokenMinter {
    /// A minter with a random secret.
    pub fn new() -> Self {
        let secret: [u8; 32] = rand::random();
        TokenMinter { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) }
    }

    /// Issues a token for `grant`.
    pub fn issue(&self, grant: &Grant) -> String {
        let payload = serde_json::to_vec(grant).unwrap_or_default();
        let input = format!("{HS256_HEADER}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = hmac::sign(&self.key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Reads a token: `None` when it is not one of ours, or has expired at `now`.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> Option<Grant> {
        let (input, tag) = token.rsplit_once('.')?;
        let (header, payload) = input.split_once('.')?;
        if header != HS256_HEADER {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, input.as_bytes(), &tag).ok()?;
        let grant: Grant = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (grant.exp > now.timestamp()).then_some(grant)
    }

    /// The grant of a request's `Authorization: Bearer` header: 401 when missing, malformed,
    /// unknown or expired.
    pub fn authorize(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<Grant, ApiError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("Missing authorization header"))?;
        let value = value.to_str().map_err(|_| ApiError::unauthorized("Invalid authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("Authorization header must be a Bearer token"))?;
        let grant = self
            .check(token.trim(), now)
            .ok_or_else(|| ApiError::unauthorized("Invalid or expired access token"))?;
        if let Some(bound) = &grant.cnf {
            let presented = headers.get(crate::http::PEER_CERT_HEADER).and_then(|v| v.to_str().ok());
            if presented != Some(bound.as_str()) {
                return Err(ApiError::unauthorized(
                    "This access token is bound to a TLS client certificate (cnf x5t#S256) that this connection did not present",
                ));
            }
        }
        Ok(grant)
    }
}

/// The grant of the request's `Authorization: Bearer` token, checked at the sandbox's time
/// ([`TokenMinter::authorize`]): the extractor every Data API and identity REST handler takes
/// instead of checking the header itself. It rejects with exactly that check's error
/// (Moneyhub's 401 body); scope checks (403) stay in the handler, which knows the route's
/// scopes.
///
/// Put it after the handler's `Path` (a malformed path answers 400 before the token is
/// looked at, as before) and before its `Body` (axum reads the body last). Decision: a
/// request without a valid token is refused before its body is read, as a gateway would;
/// one that is both unauthenticated and oversized now gets the 401 rather than the 413.
#[derive(Debug, Clone)]
pub(crate) struct BearerGrant {
    /// What the token grants.
    pub grant: Grant,
    /// The virtual time it was checked at: the handler's "now", so that it acts at the
    /// same instant the token was valid.
    pub at: DateTime<Utc>,
}

impl<S> FromRequestParts<S> for BearerGrant
where
    Arc<Core>: FromRef<S>,
    Arc<IdentityRoom>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let at = Arc::<Core>::from_ref(state).clock.now();
        let grant = Arc::<IdentityRoom>::from_ref(state).tokens.authorize(&parts.headers, at)?;
        Ok(BearerGrant { grant, at })
    }
}

impl Default for TokenMinter {
    fn default() -> Self {
        Self::new()
    }
}
