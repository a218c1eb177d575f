//! Access tokens and scope checks for the REST and Data API routes.

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

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

/// Issues and checks the sandbox's access tokens.
pub struct TokenMinter {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenMinter([redacted])")
    }
}

impl TokenMinter {
    /// A minter with a random secret.
    pub fn new() -> Self {
        let secret: [u8; 32] = rand::random();
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the virtual clock, not the system clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        TokenMinter {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
        }
    }

    /// Issues a token for `grant`.
    pub fn issue(&self, grant: &Grant) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), grant, &self.encoding).unwrap_or_default()
    }

    /// Reads a token: `None` when it is not one of ours, or has expired at `now`.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> Option<Grant> {
        let data = jsonwebtoken::decode::<Grant>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.exp > now.timestamp()).then_some(data.claims)
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
        self.check(token.trim(), now).ok_or_else(|| ApiError::unauthorized("Invalid or expired access token"))
    }
}

impl Default for TokenMinter {
    fn default() -> Self {
        Self::new()
    }
}
