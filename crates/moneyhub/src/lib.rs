//! # moneyhub
//!
//! An async, typed client for [Moneyhub](https://www.moneyhub.com)'s Open Finance API (UK open
//! banking): the OpenID Connect flows that create and renew bank connections, users and their
//! connections, manual syncs behind a guard that keeps them polite, accounts, transactions
//! (batched look-ups by id, paged listings as a `Stream`) and verified webhooks.
//!
//! * [`Client`] — built with [`Client::builder`] or [`Client::from_env`]; cheap to clone.
//! * [`Client::auth`] — PAR-based authorisation URLs (connect, reauth, refresh, reconsent) and the
//!   code exchange with full id_token verification.
//! * [`Client::users`], [`Client::connections`], [`Client::transactions`],
//!   [`Client::accounts`] — the REST surface; [`Client::webhooks`] — webhook verification.
//! * [`Client::auth_requests`] — the Auth Requests API; [`Client::with_user_token`] — read
//!   with the access token of a one-time access code exchange.
//! * One [`Error`] type saying whether a failed request was sent at all ([`Sent`]).
//!
//! Tokens are fetched with client credentials, cached per (user, scopes) and shared between
//! concurrent callers; requests that are safe to repeat are retried with backoff; a 401 gets
//! one retry with a fresh token. Nothing the client logs or prints contains a secret, key
//! material or token.
//!
//! ## Behaviour worth knowing
//!
//! * **Retries** (see [`RetryPolicy`]): only requests that are safe to repeat: `GET`,
//!   `DELETE` and client-credentials token requests, on 408/429/500/502/503/504 and transport
//!   failures, with exponential backoff and jitter, honouring `Retry-After`/`retryAfterSecs`
//!   up to a cap. Never the code exchange, `POST /sync`, `POST /users`, PAR or `PATCH`.
//! * **401**: the cached token is dropped, a new one fetched and the request sent once more
//!   (a 401 means the request was not processed, so this holds for `POST`s too); a second 401
//!   is [`ErrorKind::Unauthorized`].
//! * **Time**: JWT times (`exp`, `iat`) and the sync guard use the builder's [`Clock`] (system
//!   clock by default); cached token lifetimes use the monotonic clock.
//! * **Manual syncs** go through the [`guard`]: refused locally, with a not-before time, when
//!   Moneyhub would throttle them.
//!
//! ## Layout
//!
//! * **One module per API area**, each a handle on the [`Client`] with the area's methods:
//!   [`users`], [`connections`] (catalogues, connections, manual syncs and sync history),
//!   [`accounts`], [`transactions`], [`auth_requests`], [`auth`] (the OpenID Connect flows),
//!   [`webhooks`]. An area builds each request from a route of the request table and never
//!   writes a path, a scope or a retry rule itself.
//! * **The request table** (`transport::route`): one `Route` value per Moneyhub route, with
//!   its ids typed; from it come the method, the path template (the only form logs, metrics
//!   and errors show), the percent-encoded path segments (empty and dot segments refused), the
//!   token (scopes, bound to a user or not), the retry class and the timeout class. Adding a
//!   route is a variant there and the `match`es the compiler points to.
//! * **What clones share** (`ClientInner`) is implemented only in `transport` (building and
//!   sending requests, the token cache with users' own tokens) and [`discovery`] (the cached
//!   discovery document and JWKS). API areas call it; they do not extend it.
//! * **Paging**: one offset-paging type, [`Page`], and a `pages()` stream on every paged list
//!   ([`page`]); transaction listings follow Moneyhub's `links.next` instead
//!   ([`TransactionPage`]).
//! * **The guard** ([`guard`]): the manual-sync rules over an async store, keyed by connection
//!   and bank id.
//!
//! ## Example
//!
//! Against the local sandbox (`moneyhub-sandbox`), end to end: create a user, connect a bank
//! through the authorisation flow, read accounts and transactions.
//!
//! ```
//! use moneyhub::{Client, ClientAuth, ConnectOptions, TransactionFilter};
//! use moneyhub_types::BankId;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
//! let client = Client::builder()
//!     .identity_url(sandbox.identity_url())
//!     .api_url(sandbox.api_url_v3())
//!     .client_id(sandbox.client_id())
//!     .client_auth(ClientAuth::secret(sandbox.client_secret().unwrap()))
//!     .redirect_uri("http://127.0.0.1:8080/callback")
//!     .build()?;
//!
//! let user = client.users().create(Some("customer-42")).await?;
//! let bank: BankId = "1ffe704d39629a929c8e293880fb449a".parse()?;
//! let request = client.auth().connect(ConnectOptions::new(bank).user(user.user_id.clone())).await?;
//!
//! // Send the user's browser to `request.url`; Moneyhub redirects back with a code. The
//! // sandbox consents at once, so follow its redirect here instead of using a browser.
//! let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
//! let redirect = http.get(request.url.as_str()).send().await?;
//! let callback = redirect.headers()["location"].to_str()?;
//!
//! let connected = client.auth().exchange_code(&request, callback).await?;
//! println!("connected {}", connected.connection_id);
//!
//! let accounts = client.accounts().list(&user.user_id, &Default::default()).await?;
//! let mut filter = TransactionFilter::default();
//! filter.limit = Some(10);
//! let page = client.transactions().list(&user.user_id, &filter).await?;
//! assert!(!accounts.is_empty() && !page.transactions.is_empty());
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod accounts;
pub mod auth;
pub mod auth_requests;
pub mod clock;
pub mod config;
pub mod connections;
pub mod discovery;
pub mod error;
pub mod guard;
pub mod health;
pub mod jose;
pub mod page;
pub mod sandbox;
pub mod secret;
pub mod transactions;
pub mod transport;
pub mod user_token;
pub mod users;
pub mod webhooks;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use accounts::{AccountFilter, Accounts};
pub use auth::{
    Auth, AuthFlow, AuthorizationRequest, CallbackParams, ConnectOptions, Connected, ConsentOptions,
    IdTokenClaims, RenewOptions, TokenPair,
};
pub use auth_requests::{AuthRequests, NewAuthRequest};
pub use clock::{Clock, SystemClock};
pub use config::{ApiVersion, ClientAuth, ClientBuilder, Scopes, Timeouts, TlsIdentity, UserTokens};
pub use connections::{Catalogue, Connections, PendingSync, SyncOptions, SyncRecord, WaitOptions};
pub use discovery::ProviderMetadata;
pub use error::{redact_credentials, ApiError, Error, ErrorKind, OAuthError, Result, Sent, REDACTED};
pub use guard::{DefaultSyncGuard, GuardRules, NotBefore, SyncGuard};
pub use jose::{KeyType, PrivateKey, SigningAlg};
pub use page::{Page, PageOptions, Pages};
pub use secret::Secret;
pub use transactions::{
    CreditDebit, RawTransaction, TransactionFilter, TransactionItem, TransactionPage, TransactionRecord,
    Transactions, TransactionsByIds, Unenriched,
};
pub use transport::retry::RetryPolicy;
pub use user_token::UserToken;
pub use users::Users;
pub use webhooks::{VerifiedWebhook, WebhookVerifier};

pub use moneyhub_types::{
    Account, AccountId, AuthParams, AuthRequest, AuthRequestStatus, BankId, CatalogueEntry, Connection,
    ConnectionId, ConnectionSync, SyncId, Transaction, TransactionId, UnenrichedTransaction, User, UserId,
    WebhookEvent, WebhookEventType, WebhookId,
};

use config::Config;
use discovery::DiscoveryCache;
use transport::tokens::TokenCache;

/// A Moneyhub client. Cheap to clone (clones share the token cache, discovery and guard).
///
/// `Debug` shows the configuration with the client secret and key material redacted.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// What clones of a [`Client`] share.
pub(crate) struct ClientInner {
    pub(crate) config: Config,
    pub(crate) http: reqwest::Client,
    pub(crate) tokens: TokenCache,
    pub(crate) discovery: DiscoveryCache,
    pub(crate) guard: Arc<dyn SyncGuard>,
    /// Users' own access tokens (one-time access), used instead of client credentials + `sub`.
    pub(crate) user_tokens: parking_lot::Mutex<HashMap<UserId, Arc<user_token::UserTokenSlot>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with production URLs and no credentials.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `MONEYHUB_*` environment variables (see
    /// [`ClientBuilder::from_env`]).
    pub fn from_env() -> Result<Client> {
        ClientBuilder::from_env()?.build()
    }

    pub(crate) fn from_config(
        config: Config,
        guard: Arc<dyn SyncGuard>,
        http: reqwest::Client,
    ) -> Result<Client> {
        Ok(Client {
            inner: Arc::new(ClientInner {
                config,
                http,
                tokens: TokenCache::default(),
                discovery: DiscoveryCache::default(),
                guard,
                user_tokens: parking_lot::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.config.client_id
    }

    /// Now, on the client's [`Clock`] (the one JWT times and the sync guard use).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.config.clock.now()
    }

    /// The Data API version in use.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.config.api_version
    }

    /// The identity service's discovery document (cached).
    pub async fn provider_metadata(&self) -> Result<Arc<ProviderMetadata>> {
        self.inner.metadata().await
    }

    /// Authorisation flows: connect, reauth, refresh, reconsent and the code exchange.
    pub fn auth(&self) -> Auth {
        Auth::new(self.clone())
    }

    /// Users.
    pub fn users(&self) -> Users {
        Users::new(self.clone())
    }

    /// Connections: catalogues, listing, sync, sync history, expiry, deletion.
    pub fn connections(&self) -> Connections {
        Connections::new(self.clone())
    }

    /// Transactions.
    pub fn transactions(&self) -> Transactions {
        Transactions::new(self.clone())
    }

    /// Accounts.
    pub fn accounts(&self) -> Accounts {
        Accounts::new(self.clone())
    }

    /// The Auth Requests API: Moneyhub builds the authorisation URL and exchanges the code.
    pub fn auth_requests(&self) -> AuthRequests {
        AuthRequests::new(self.clone())
    }

    /// Webhook verification.
    pub fn webhooks(&self) -> WebhookVerifier {
        WebhookVerifier::new(self.clone())
    }

    pub(crate) fn inner(&self) -> &ClientInner {
        &self.inner
    }
}
