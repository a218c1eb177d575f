//! The `refresh_token` grant: a user's token pair renewed from a refresh token (issued when a
//! connection was made with `offline_access`). Sent once and never retried after an answer:
//! refresh tokens rotate, so the token sent is spent once the server has seen it.

use moneyhub_types::TokenResponse;

use super::Auth;
use crate::error::{Error, ErrorKind, Result, Sent};
use crate::secret::Secret;
use crate::transport::route::{Grant, Route};

/// A renewed token pair ([`Auth::refresh_tokens`]).
///
/// `Debug` redacts both tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPair {
    /// The new access token (bound to the user, with the granted scope).
    pub access_token: Secret,
    /// The new refresh token: the one sent is rotated out and must not be used again.
    pub refresh_token: Option<Secret>,
    /// The access token's lifetime in seconds.
    pub expires_in: Option<u64>,
    /// Its scope.
    pub scope: Option<String>,
}

impl Error {
    /// Whether the server refused a grant as `invalid_grant`: for a refresh token, it was
    /// rotated out (already used), expired or revoked; the user has to authorise again.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self.kind(), ErrorKind::OAuth(o) if o.error == "invalid_grant")
    }
}

impl Auth {
    /// Renews a user's tokens with `refresh_token` (`grant_type=refresh_token`), optionally
    /// for a narrower `scope`. The answer holds a new refresh token: keep it and discard the
    /// old one. A rotated-out, expired or revoked token gives an error for which
    /// [`Error::is_invalid_grant`] is true. Never retried (a transport failure leaves it
    /// unknown whether the token was spent: [`Error::sent`] says `Maybe`).
    pub async fn refresh_tokens(&self, refresh_token: &Secret, scope: Option<&str>) -> Result<TokenPair> {
        let inner = self.client.inner();
        if refresh_token.expose_secret().is_empty() {
            return Err(Error::validation("the refresh token is empty"));
        }
        let meta = inner.metadata().await?;
        let url = inner.endpoint(&meta.token_endpoint, "token_endpoint")?;
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope.to_owned()));
        }
        let call = inner
            .request_at(Route::Token(Grant::RefreshToken), url)
            .client_auth(&meta.token_endpoint)
            .form(form);
        let reply = inner.execute(call).await?;
        let tokens: TokenResponse = reply.decode()?;
        if tokens.access_token.is_empty() {
            return Err(Error::auth("the token response has no access_token", Sent::Answered));
        }
        Ok(TokenPair {
            access_token: Secret::new(tokens.access_token),
            refresh_token: tokens.refresh_token.map(Secret::new),
            expires_in: tokens.expires_in,
            scope: tokens.scope,
        })
    }
}
