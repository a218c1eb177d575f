//! Authorisation flows (`client.auth()`): pushed authorisation requests for connecting a bank
//! and for renewing a connection (reauth, refresh, reconsent), and the code exchange that
//! completes them with a verified id_token.
//!
//! 1. [`Auth::connect`] (or [`Auth::reauth`], [`Auth::refresh`], [`Auth::reconsent`]) pushes the
//!    request to Moneyhub (PAR) and returns an [`AuthorizationRequest`]: send the user's browser
//!    to its `url` and **keep the request** (it holds the state, nonce and PKCE verifier; it is
//!    serde-serialisable for a session store).
//! 2. Moneyhub redirects to the redirect URI with `code`, `state` and `iss`.
//! 3. [`Auth::exchange_code`] checks the callback against the request, exchanges the code (once,
//!    never retried, 120 s), verifies the id_token and returns [`Connected`] with the
//!    connection id (and the sync id of an asynchronous connection).

mod exchange;
mod flows;
mod grants;
mod id_token;
mod par;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use moneyhub_types::{ConnectionId, SyncId, UserId};

use crate::error::{Error, Result, Sent};
use crate::secret::Secret;
use crate::Client;

pub use flows::{ConnectOptions, ConsentOptions, RenewOptions};
pub use grants::TokenPair;
pub use id_token::IdTokenClaims;

/// Which flow an [`AuthorizationRequest`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthFlow {
    /// A new connection (`openid id:<bankId>`).
    Connect,
    /// Re-authentication with the bank (`openid reauth`); the connection id may change.
    Reauth,
    /// Refresh of a legacy connection (`openid refresh`).
    Refresh,
    /// Renewed consent without the bank (`openid reconsent`).
    Reconsent,
}

/// A pushed authorisation request: the URL to send the user to, and what the code exchange
/// must check the callback against. Keep it until the callback arrives.
///
/// `Debug` redacts the PKCE code verifier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizationRequest {
    /// Where to send the user's browser (`<authorization_endpoint>?client_id&request_uri`).
    #[serde(with = "url_serde")]
    pub url: Url,
    /// The `state` the callback must echo.
    pub state: String,
    /// The `nonce` the id_token must carry.
    pub nonce: String,
    /// The PKCE code verifier (sent with the code exchange).
    pub code_verifier: Secret,
    /// The redirect URI the request named (sent again with the code exchange).
    pub redirect_uri: String,
    /// The flow.
    pub flow: AuthFlow,
    /// The user, when known (sent as `sub` with the code exchange; the id_token's `sub` must
    /// match).
    pub user_id: Option<UserId>,
    /// The connection being renewed (reauth, refresh, reconsent).
    pub connection_id: Option<ConnectionId>,
    /// When the pushed request expires (the user must open the URL before).
    #[serde(with = "moneyhub_types::time::timestamp")]
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url.as_str())
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("code_verifier", &self.code_verifier)
            .field("redirect_uri", &self.redirect_uri)
            .field("flow", &self.flow)
            .field("user_id", &self.user_id)
            .field("connection_id", &self.connection_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AuthorizationRequest {
    /// Checks a callback's `state` against this request's (constant time). A mismatch is a
    /// validation error: the callback does not belong to this request (or was forged).
    pub fn check_state(&self, state: &str) -> Result<()> {
        if Secret::ct_eq(state, &self.state) {
            Ok(())
        } else {
            Err(Error::auth("the callback's state does not match the authorisation request", Sent::Never))
        }
    }
}

mod url_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use url::Url;

    pub fn serialize<S: Serializer>(url: &Url, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(url.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
        let s = String::deserialize(deserializer)?;
        Url::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The parameters of the redirect back from Moneyhub.
///
/// `Debug` redacts the code.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackParams {
    /// The authorisation code.
    pub code: Option<Secret>,
    /// The echoed `state`.
    pub state: Option<String>,
    /// The issuer (RFC 9207), when sent.
    pub iss: Option<String>,
    /// An OAuth error instead of a code (`access_denied`, …).
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code)
            .field("state", &self.state)
            .field("iss", &self.iss)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

impl CallbackParams {
    /// A successful callback's `code` and `state`.
    pub fn new(code: impl Into<String>, state: impl Into<String>) -> Self {
        CallbackParams { code: Some(Secret::new(code)), state: Some(state.into()), ..Default::default() }
    }

    /// Adds the `iss` parameter.
    pub fn with_iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// Parses the full callback URL (query, or fragment for hybrid responses).
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = Url::parse(url).map_err(|_| Error::validation("the callback is not a URL"))?;
        match (parsed.query(), parsed.fragment()) {
            (Some(q), _) if !q.is_empty() => Ok(Self::from_query(q)),
            (_, Some(f)) if !f.is_empty() => Ok(Self::from_query(f)),
            _ => Err(Error::validation("the callback URL has no parameters")),
        }
    }

    /// Parses a callback query string (with or without the leading `?`).
    pub fn from_query(query: &str) -> Self {
        let mut out = CallbackParams::default();
        for (k, v) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            let v = v.into_owned();
            match &*k {
                "code" => out.code = Some(Secret::new(v)),
                "state" => out.state = Some(v),
                "iss" => out.iss = Some(v),
                "error" => out.error = Some(v),
                "error_description" => out.error_description = Some(v),
                _ => {}
            }
        }
        out
    }
}

/// Anything [`Auth::exchange_code`] accepts as the callback: [`CallbackParams`], or the raw
/// callback URL / query string.
pub trait IntoCallback {
    /// Converts into callback parameters.
    fn into_callback(self) -> Result<CallbackParams>;
}

impl IntoCallback for CallbackParams {
    fn into_callback(self) -> Result<CallbackParams> {
        Ok(self)
    }
}

impl IntoCallback for &CallbackParams {
    fn into_callback(self) -> Result<CallbackParams> {
        Ok(self.clone())
    }
}

impl IntoCallback for &str {
    fn into_callback(self) -> Result<CallbackParams> {
        let s = self.trim();
        if s.contains("://") {
            CallbackParams::from_url(s)
        } else {
            Ok(CallbackParams::from_query(s))
        }
    }
}

impl IntoCallback for String {
    fn into_callback(self) -> Result<CallbackParams> {
        self.as_str().into_callback()
    }
}

impl IntoCallback for &String {
    fn into_callback(self) -> Result<CallbackParams> {
        self.as_str().into_callback()
    }
}

impl IntoCallback for &Url {
    fn into_callback(self) -> Result<CallbackParams> {
        CallbackParams::from_url(self.as_str())
    }
}

impl IntoCallback for Url {
    fn into_callback(self) -> Result<CallbackParams> {
        CallbackParams::from_url(self.as_str())
    }
}

/// The outcome of a successful code exchange.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Connected {
    /// The new or renewed connection (`mh:con_id`). After a reauth it may differ from the
    /// old id: always use this one.
    pub connection_id: ConnectionId,
    /// The first sync of an asynchronous connection (`mh:sync`), to poll with
    /// [`Connections::wait_for_sync`](crate::Connections::wait_for_sync).
    pub sync_id: Option<SyncId>,
    /// The user (`sub`).
    pub user_id: Option<UserId>,
    /// Every claim of the verified id_token.
    pub claims: IdTokenClaims,
    /// The access token issued with the code (bound to the user, with the request's scope).
    pub access_token: Secret,
    /// Its lifetime in seconds.
    pub expires_in: Option<u64>,
    /// Its scope.
    pub scope: Option<String>,
    /// A refresh token, when `offline_access` was granted.
    pub refresh_token: Option<Secret>,
}

/// The authorisation flows. Get one with [`Client::auth`].
#[derive(Debug, Clone)]
pub struct Auth {
    client: Client,
}

impl Auth {
    pub(crate) fn new(client: Client) -> Self {
        Auth { client }
    }
}
