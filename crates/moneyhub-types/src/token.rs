//! Token endpoint responses (`POST /oidc/token`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Successful response of the token endpoint (RFC 6749 §5.1).
///
/// Its `Debug` output never shows the tokens themselves: `access_token`, `refresh_token` and
/// `id_token` print as `"[redacted]"`, so the struct can be logged safely.
///
/// ```
/// use moneyhub_types::TokenResponse;
/// let t: TokenResponse = serde_json::from_str(
///     r#"{"access_token":"secret","token_type":"Bearer","expires_in":7200,"scope":"accounts:read"}"#,
/// )?;
/// assert!(!format!("{t:?}").contains("secret"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token (treat as opaque).
    pub access_token: String,
    /// Token type, `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds (Moneyhub: 7200 for client-credentials tokens). Always honour it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// ID token (authorisation-code grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Refresh token (only with `offline_access`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// The granted scopes, split on whitespace (empty when `scope` is absent).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or("").split_whitespace()
    }
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |token: &Option<String>| token.as_ref().map(|_| REDACTED);
        f.debug_struct("TokenResponse")
            .field("access_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("id_token", &redact(&self.id_token))
            .field("refresh_token", &redact(&self.refresh_token))
            .finish()
    }
}
