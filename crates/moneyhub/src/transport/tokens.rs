//! Access tokens: cached per (user, scope set) until shortly before expiry, with concurrent
//! callers for the same key sharing one token request (single flight). They come from
//! `client_credentials` (with `sub` for a user), or for users from the jwt-bearer grant when
//! configured ([`UserTokens::JwtBearer`](crate::UserTokens)); a jwt-bearer request is never
//! retried after an answer (its assertion's `jti` is single use).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moneyhub_types::{TokenResponse, UserId};

use super::route::{Grant, Route};
use crate::config::{ClientAuth, UserTokens};
use crate::error::Result;
use crate::secret::Secret;
use crate::ClientInner;

/// Which token: the user it is bound to (`sub`), if any, and its scopes (sorted, deduplicated).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    user: Option<UserId>,
    scope: String,
}

impl TokenKey {
    pub fn new(user: Option<&UserId>, scope: &str) -> Self {
        let mut scopes: Vec<&str> = scope.split_whitespace().collect();
        scopes.sort_unstable();
        scopes.dedup();
        TokenKey { user: user.cloned(), scope: scopes.join(" ") }
    }
}

struct Cached {
    token: Secret,
    fresh_until: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// The cache: one async mutex per key, held while its token is fetched, so concurrent
/// callers wait for that one request instead of sending their own.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: parking_lot::Mutex<HashMap<TokenKey, Slot>>,
}

/// Beyond this many keys, expired idle entries are dropped when a new key arrives.
const PRUNE_ABOVE: usize = 10_000;

impl TokenCache {
    fn slot(&self, key: &TokenKey) -> Slot {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        if slots.len() >= PRUNE_ABOVE {
            let now = Instant::now();
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(cached) => cached.as_ref().is_some_and(|c| c.fresh_until > now),
                Err(_) => true,
            });
        }
        slots.entry(key.clone()).or_default().clone()
    }
}

impl ClientInner {
    /// A valid access token for `key`, from the cache or the token endpoint.
    pub(crate) async fn access_token(&self, key: &TokenKey) -> Result<Secret> {
        // A user with a registered token of their own (one-time access) reads with it.
        if let Some(user) = &key.user {
            let slot = self.user_tokens.lock().get(user).cloned();
            if let Some(slot) = slot {
                return slot.access_token().await;
            }
        }
        let slot = self.tokens.slot(key);
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.fresh_until {
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = self.fetch_token(key).await?;
        // Replace the token `margin` before it expires (at most half its lifetime early).
        let margin = self.config.token_refresh_margin.min(lifetime / 2);
        *cached = Some(Cached { token: token.clone(), fresh_until: Instant::now() + lifetime - margin });
        Ok(token)
    }

    /// Drops the cached token of `key` if it is still `rejected` (a caller may already have
    /// replaced it).
    pub(crate) async fn invalidate_token(&self, key: &TokenKey, rejected: &Secret) {
        if let Some(user) = &key.user {
            let slot = self.user_tokens.lock().get(user).cloned();
            if let Some(slot) = slot {
                slot.invalidate(rejected).await;
                return;
            }
        }
        let slot = self.tokens.slot(key);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == rejected) {
            *cached = None;
        }
    }

    async fn fetch_token(&self, key: &TokenKey) -> Result<(Secret, Duration)> {
        let meta = self.metadata().await?;
        let url = self.endpoint(&meta.token_endpoint, "token endpoint")?;
        let jwt_bearer =
            match (&key.user, self.config.user_tokens, &self.config.auth, self.config.request_object_alg) {
                (Some(user), UserTokens::JwtBearer, ClientAuth::PrivateKey(signer), Some(alg)) => {
                    // reference §3.4 (the official Node client's assertion).
                    let now = self.config.clock.now().timestamp();
                    let claims = serde_json::json!({
                        "iss": self.config.client_id,
                        "sub": user.as_str(),
                        "aud": meta.issuer,
                        "jti": crate::jose::random_uuid().to_string(),
                        "iat": now,
                        "exp": now + 600,
                    });
                    Some(signer.sign_with(alg, "JWT", &claims)?)
                }
                _ => None,
            };
        let (grant, route) = match jwt_bearer {
            Some(_) => ("jwt-bearer", Route::Token(Grant::JwtBearer)),
            None => ("client_credentials", Route::Token(Grant::ClientCredentials)),
        };
        let form = match jwt_bearer {
            Some(assertion) => vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()),
                ("scope", key.scope.clone()),
                ("assertion", assertion),
            ],
            None => {
                let mut form =
                    vec![("grant_type", "client_credentials".to_owned()), ("scope", key.scope.clone())];
                if let Some(user) = &key.user {
                    form.push(("sub", user.as_str().to_owned()));
                }
                form
            }
        };
        let span = tracing::debug_span!("moneyhub.token", grant, scope = %key.scope, user_bound = key.user.is_some());
        // Client-credentials requests are retried; a jwt-bearer assertion is single use (the
        // route's retry class says so).
        let call = self.request_at(route, url).client_auth(&meta.token_endpoint).form(form);
        let reply = tracing::Instrument::instrument(self.execute_plain(call), span).await?;
        let body: TokenResponse = reply.decode()?;
        // Honour `expires_in`; without one, keep the token for a minute only.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60));
        Ok((Secret::new(body.access_token), lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_scopes() {
        assert_eq!(TokenKey::new(None, "b a  a"), TokenKey::new(None, "a b"));
        let u: UserId = "u1".parse().unwrap();
        assert_ne!(TokenKey::new(Some(&u), "a"), TokenKey::new(None, "a"));
    }
}
