//! The code exchange: `POST <token_endpoint>` `grant_type=authorization_code`. Sent once and
//! never retried (the code is single use and the call may create the connection), with the
//! long timeout (120 s).

use moneyhub_types::{ConnectionId, SyncId, TokenResponse, UserId};

use super::{Auth, AuthorizationRequest, Connected, IntoCallback};
use crate::error::{Error, ErrorKind, OAuthError, Result, Sent};
use crate::secret::Secret;
use crate::transport::route::{Grant, Route};

impl Auth {
    /// Completes an authorisation: checks the callback's `state` (and `iss` when present)
    /// against `request`, exchanges the code (with the PKCE verifier and, when the user is
    /// known, `sub`), verifies the id_token and returns the connection.
    ///
    /// `callback` is [`CallbackParams`](super::CallbackParams) or the raw callback URL or
    /// query string. The exchange is never retried: on a transport error or timeout the
    /// connection may or may not exist ([`Error::sent`] is `Maybe`); list the user's
    /// connections to find out.
    pub async fn exchange_code(
        &self,
        request: &AuthorizationRequest,
        callback: impl IntoCallback,
    ) -> Result<Connected> {
        let inner = self.client.inner();
        let callback = callback.into_callback()?;
        if let Some(error) = callback.error {
            // The state still has to match, or anyone could end the flow with an error.
            if let Some(state) = &callback.state {
                request.check_state(state)?;
            }
            return Err(Error::new(ErrorKind::OAuth(OAuthError {
                method: "GET".into(),
                route: "/oidc/auth",
                status: None,
                error: crate::redact_credentials(&error),
                description: callback.error_description.as_deref().map(crate::redact_credentials),
            })));
        }
        let state =
            callback.state.as_deref().ok_or_else(|| Error::auth("the callback has no state", Sent::Never))?;
        request.check_state(state)?;
        let meta = inner.metadata().await?;
        if let Some(iss) = &callback.iss {
            if iss != &meta.issuer {
                return Err(Error::auth(
                    format!(
                        "the callback's iss {iss:?} is not the issuer {:?} (mix-up attack?)",
                        meta.issuer
                    ),
                    Sent::Never,
                ));
            }
        }
        let code = callback.code.ok_or_else(|| Error::auth("the callback has no code", Sent::Never))?;
        let url = inner.endpoint(&meta.token_endpoint, "token_endpoint")?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.expose_secret().to_owned()),
            ("redirect_uri", request.redirect_uri.clone()),
            ("code_verifier", request.code_verifier.expose_secret().to_owned()),
        ];
        if let Some(user) = &request.user_id {
            form.push(("sub", user.as_str().to_owned()));
        }
        let call = inner
            .request_at(Route::Token(Grant::AuthorizationCode), url)
            .client_auth(&meta.token_endpoint)
            .form(form);
        let reply = inner.execute(call).await?;
        let tokens: TokenResponse = reply.decode()?;
        let access_token = Secret::new(tokens.access_token);
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| Error::auth("the token response has no id_token", Sent::Answered))?;
        let claims = super::id_token::verify_id_token(inner, id_token, request, Some(&access_token)).await?;
        let connection_id: ConnectionId = claims
            .connection_id()
            .ok_or_else(|| Error::auth("the id_token has no mh:con_id claim", Sent::Answered))?
            .parse()
            .map_err(|_| Error::auth("the id_token's mh:con_id is not a connection id", Sent::Answered))?;
        let sync_id =
            match claims.sync_id() {
                None => None,
                Some(s) => Some(s.parse::<SyncId>().map_err(|_| {
                    Error::auth("the id_token's mh:sync syncId is not a UUID", Sent::Answered)
                })?),
            };
        let user_id = claims.sub.as_deref().and_then(|s| s.parse::<UserId>().ok());
        Ok(Connected {
            connection_id,
            sync_id,
            user_id,
            claims,
            access_token,
            expires_in: tokens.expires_in,
            scope: tokens.scope,
            refresh_token: tokens.refresh_token.map(Secret::new),
        })
    }
}
