//! Reading a user's data with the access token of a code exchange (one-time access) instead
//! of a client-credentials token with `sub`.
//!
//! With one-time access the authorisation names no user: Moneyhub makes one during consent,
//! and the access token from the code exchange carries the granted data scopes for that user
//! (24 hours of consent by default). [`Client::with_user_token`] registers that token for its
//! user on the client (clones share the registration); from then on every Data API call for
//! that user (accounts, transactions, unenriched transactions, sync) sends it. When it
//! expires, or is refused with a 401, it is renewed with the refresh token (granted only with
//! `offline_access`); without one, calls fail with an authentication error saying so.
//! Management routes (users, connections) keep using client credentials.
//!
//! ```no_run
//! # async fn demo(client: moneyhub::Client, request: moneyhub::AuthorizationRequest, callback: String) -> moneyhub::Result<()> {
//! let connected = client.auth().exchange_code(&request, callback.as_str()).await?;
//! let token = moneyhub::UserToken::from_connected(&connected)?;
//! let user = token.user_id().clone();
//! let client = client.with_user_token(token);
//! let page = client.transactions().list(&user, &Default::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Renewal uses [`Auth::refresh_tokens`](crate::Auth::refresh_tokens) (sent once: refresh
//! tokens rotate, so a repeat could burn the new one) and keeps the rotated refresh token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use moneyhub_types::UserId;

use crate::auth::{Connected, TokenPair};
use crate::error::{Error, Result, Sent};
use crate::secret::Secret;
use crate::{Client, ClientInner};

/// Without `expires_in`, a token is taken to live this long.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// Tokens are renewed this long before they expire (at most half their lifetime early).
const MARGIN: Duration = Duration::from_secs(30);

/// A user's access token (and refresh token) from a code exchange.
///
/// `Debug` redacts both tokens.
#[derive(Clone)]
pub struct UserToken {
    user_id: UserId,
    access_token: Secret,
    lifetime: Duration,
    refresh_token: Option<Secret>,
}

impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserToken")
            .field("user_id", &self.user_id)
            .field("access_token", &self.access_token)
            .field("lifetime", &self.lifetime)
            .field("refresh_token", &self.refresh_token)
            .finish()
    }
}

impl UserToken {
    /// A token for `user_id`, valid for `expires_in` seconds from now.
    pub fn new(
        user_id: UserId,
        access_token: Secret,
        expires_in: Option<u64>,
        refresh_token: Option<Secret>,
    ) -> Self {
        let lifetime = expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_LIFETIME);
        UserToken { user_id, access_token, lifetime, refresh_token }
    }

    /// The token of a code exchange; an error when the id_token named no user.
    pub fn from_connected(connected: &Connected) -> Result<Self> {
        let user = connected
            .user_id
            .clone()
            .ok_or_else(|| Error::validation("the code exchange named no user (id_token sub)"))?;
        Ok(Self::new(
            user,
            connected.access_token.clone(),
            connected.expires_in,
            connected.refresh_token.clone(),
        ))
    }

    /// The user.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The refresh token, when `offline_access` was granted.
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }
}

/// A registered token and when it stops being fresh.
struct Current {
    token: UserToken,
    fresh_until: Instant,
}

/// The client's registered user tokens; each behind an async mutex so concurrent callers
/// share one refresh.
pub(crate) struct UserTokenSlot {
    current: tokio::sync::Mutex<Current>,
    client: Weak<ClientInner>,
}

impl UserTokenSlot {
    fn new(token: UserToken, client: Weak<ClientInner>) -> Self {
        let fresh_until = Instant::now() + token.lifetime - MARGIN.min(token.lifetime / 2);
        UserTokenSlot { current: tokio::sync::Mutex::new(Current { token, fresh_until }), client }
    }
}

impl Client {
    /// Registers a user's own access token (one-time access: from
    /// [`Auth::exchange_code`](crate::Auth::exchange_code), see [`UserToken::from_connected`])
    /// on this client and its clones: Data API calls for that user send it, renewed with its
    /// refresh token when it expires. Replaces an earlier token of the same user.
    pub fn with_user_token(&self, token: UserToken) -> Client {
        let user = token.user_id.clone();
        let slot = UserTokenSlot::new(token, Arc::downgrade(&self.inner));
        self.inner().user_tokens.lock().insert(user, Arc::new(slot));
        self.clone()
    }

    /// Stops using the registered token of `user_id` (calls go back to client credentials
    /// with `sub`); returns it, with the latest refresh token, if there was one.
    pub async fn forget_user_token(&self, user_id: &UserId) -> Option<UserToken> {
        let slot = self.inner().user_tokens.lock().remove(user_id)?;
        let current = slot.current.lock().await;
        Some(current.token.clone())
    }

    /// The registered token of `user_id` as it is now (after any refresh), to persist it.
    pub async fn user_token(&self, user_id: &UserId) -> Option<UserToken> {
        let slot = self.inner().user_tokens.lock().get(user_id).cloned()?;
        let current = slot.current.lock().await;
        Some(current.token.clone())
    }
}

impl UserTokenSlot {
    /// The registered token, refreshed when stale.
    ///
    /// Boxed: a refresh goes through the same transport that asks for this token, and the
    /// boxed `Send` future breaks that cycle for the compiler.
    pub(crate) fn access_token(&self) -> Pin<Box<dyn Future<Output = Result<Secret>> + Send + '_>> {
        Box::pin(async move {
            let mut current = self.current.lock().await;
            if Instant::now() < current.fresh_until {
                return Ok(current.token.access_token.clone());
            }
            self.refresh(&mut current).await.map(|()| current.token.access_token.clone())
        })
    }

    /// Marks the token stale if it is still `rejected`.
    pub(crate) async fn invalidate(&self, rejected: &Secret) {
        let mut current = self.current.lock().await;
        if &current.token.access_token == rejected {
            current.fresh_until = Instant::now();
        }
    }

    async fn refresh(&self, current: &mut Current) -> Result<()> {
        let Some(refresh) = current.token.refresh_token.clone() else {
            return Err(Error::auth(
                format!(
                    "the access token of user {} has expired and there is no refresh token \
                     (offline_access was not granted): connect again",
                    current.token.user_id
                ),
                Sent::Never,
            ));
        };
        // The client this slot belongs to (held weakly: the client owns the slot).
        let client = self
            .client
            .upgrade()
            .map(|inner| Client { inner })
            .ok_or_else(|| Error::validation("the client of this user token has been dropped"))?;
        let pair: TokenPair = client.auth().refresh_tokens(&refresh, None).await?;
        let token = UserToken::new(
            current.token.user_id.clone(),
            pair.access_token,
            pair.expires_in,
            // Rotation: keep the new one; a server that does not rotate keeps the old one valid.
            Some(pair.refresh_token.unwrap_or(refresh)),
        );
        current.fresh_until = Instant::now() + token.lifetime - MARGIN.min(token.lifetime / 2);
        current.token = token;
        Ok(())
    }
}
