//! The four authorisation flows and their options: connect, reauth, refresh, reconsent.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use moneyhub_types::{BankId, ConnectionId, UserId};

use super::par::PushRequest;
use super::{Auth, AuthFlow, AuthorizationRequest};
use crate::connections::check_expiry;
use crate::error::{Error, Result};
use crate::jose::random_token;
use moneyhub_types::time::format_timestamp;

/// The AIS consent of a new connection (`mh:consent`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsentOptions {
    /// When the consent expires (at most 90 days ahead; checked before sending).
    pub expiration_date_time: Option<DateTime<Utc>>,
    /// How far back transactions are fetched.
    pub transaction_from_date_time: Option<DateTime<Utc>>,
    /// Extra permissions (`ReadStandingOrdersBasic`, `ReadStandingOrdersDetail`,
    /// `ReadBeneficiariesDetail`).
    pub permissions: Vec<String>,
}

impl ConsentOptions {
    /// No consent options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the consent expiry.
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expiration_date_time = Some(at);
        self
    }

    /// Sets the history start.
    pub fn transactions_from(mut self, at: DateTime<Utc>) -> Self {
        self.transaction_from_date_time = Some(at);
        self
    }

    /// Adds a permission.
    pub fn permission(mut self, permission: impl Into<String>) -> Self {
        self.permissions.push(permission.into());
        self
    }

    fn to_value(&self, now: DateTime<Utc>) -> Result<Value> {
        let mut v = Map::new();
        if let Some(at) = self.expiration_date_time {
            check_expiry(at, now, "the consent's expirationDateTime")?;
            v.insert("expirationDateTime".into(), json!(format_timestamp(&at)));
        }
        if let Some(at) = self.transaction_from_date_time {
            if at > now {
                return Err(Error::validation("the consent's transactionFromDateTime is in the future"));
            }
            v.insert("transactionFromDateTime".into(), json!(format_timestamp(&at)));
        }
        if !self.permissions.is_empty() {
            v.insert("permissions".into(), json!(self.permissions));
        }
        Ok(Value::Object(v))
    }
}

/// Options of a new connection ([`Auth::connect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The provider (`id:<bankId>` scope). Generic listings work too (`test`, `api`, …).
    pub bank_id: BankId,
    /// The client-managed user to attach the connection to (`sub`); `None` for one-time access.
    pub user_id: Option<UserId>,
    /// The `state` (random when `None`).
    pub state: Option<String>,
    /// The `nonce` (random when `None`).
    pub nonce: Option<String>,
    /// Asynchronous connection: the code exchange returns before the first fetch and the
    /// id_token names the sync to poll (`mh:sync`).
    pub enable_async: bool,
    /// AIS consent details (`mh:consent`).
    pub consent: Option<ConsentOptions>,
    /// Another registered redirect URI than the client's.
    pub redirect_uri: Option<String>,
    /// Ask for `offline_access`: the code exchange then returns a refresh token
    /// ([`Connected::refresh_token`](super::Connected), renewed with
    /// [`Auth::refresh_tokens`]).
    pub offline_access: bool,
    /// Scopes added to `openid id:<bankId>` (data scopes). Without a user (one-time access)
    /// the client's accounts and transactions scopes are always added, so the code
    /// exchange's token reads the data.
    pub extra_scopes: Vec<String>,
}

impl ConnectOptions {
    /// Connect to `bank_id`.
    pub fn new(bank_id: BankId) -> Self {
        ConnectOptions {
            bank_id,
            user_id: None,
            state: None,
            nonce: None,
            enable_async: false,
            consent: None,
            redirect_uri: None,
            offline_access: false,
            extra_scopes: Vec::new(),
        }
    }

    /// With `offline_access` (a refresh token).
    pub fn offline_access(mut self, offline: bool) -> Self {
        self.offline_access = offline;
        self
    }

    /// Adds scopes (space-separated) to the authorisation request.
    pub fn scope(mut self, scope: &str) -> Self {
        self.extra_scopes.extend(scope.split_whitespace().map(str::to_owned));
        self
    }

    /// For this user.
    pub fn user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// With this `state`.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// With this `nonce`.
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// As an asynchronous connection.
    pub fn enable_async(mut self, enable: bool) -> Self {
        self.enable_async = enable;
        self
    }

    /// With consent details.
    pub fn consent(mut self, consent: ConsentOptions) -> Self {
        self.consent = Some(consent);
        self
    }

    /// With another redirect URI.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }
}

/// Options of reauth, refresh and reconsent: the user and connection are required.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenewOptions {
    /// The user.
    pub user_id: UserId,
    /// The connection.
    pub connection_id: ConnectionId,
    /// The `state` (random when `None`).
    pub state: Option<String>,
    /// The `nonce` (random when `None`).
    pub nonce: Option<String>,
    /// Reconsent only: the new consent expiry (at most 90 days ahead).
    pub expires_at: Option<DateTime<Utc>>,
    /// Another registered redirect URI than the client's.
    pub redirect_uri: Option<String>,
}

impl RenewOptions {
    /// Renew `connection_id` of `user_id`.
    pub fn new(user_id: UserId, connection_id: ConnectionId) -> Self {
        RenewOptions {
            user_id,
            connection_id,
            state: None,
            nonce: None,
            expires_at: None,
            redirect_uri: None,
        }
    }

    /// With this `state`.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// With this `nonce`.
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Reconsent only: the new expiry.
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// With another redirect URI.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }
}

fn nonempty(value: Option<String>, what: &str) -> Result<String> {
    match value {
        None => Ok(random_token(24)),
        Some(v) if v.is_empty() => Err(Error::validation(format!("{what} must not be empty"))),
        Some(v) => Ok(v),
    }
}

impl Auth {
    /// Starts a new connection: pushes the authorisation request (PAR) with scope
    /// `openid id:<bankId>` (plus [`ConnectOptions::scope`]s; without a user, one-time access,
    /// also the accounts and transactions scopes), PKCE S256, a nonce, and the claims `sub` (valued when a user is
    /// given), `mh:con_id` (essential), `mh:sync` (async) and `mh:consent`.
    pub async fn connect(&self, options: ConnectOptions) -> Result<AuthorizationRequest> {
        let now = self.client.inner().config.clock.now();
        let mut id_token = Map::new();
        id_token.insert(
            "sub".into(),
            match &options.user_id {
                Some(u) => json!({"essential": true, "value": u}),
                None => json!({"essential": true}),
            },
        );
        id_token.insert("mh:con_id".into(), json!({"essential": true}));
        if options.enable_async {
            id_token.insert("mh:sync".into(), json!({"essential": true, "value": {"enableAsync": true}}));
        }
        if let Some(consent) = &options.consent {
            id_token.insert("mh:consent".into(), json!({"essential": true, "value": consent.to_value(now)?}));
        }
        let mut scope = if options.offline_access {
            format!("openid offline_access id:{}", options.bank_id)
        } else {
            format!("openid id:{}", options.bank_id)
        };
        let mut extra: Vec<&str> = options.extra_scopes.iter().map(String::as_str).collect();
        if options.user_id.is_none() {
            // One-time access: the code exchange's token is how the data is read.
            let scopes = &self.client.inner().config.scopes;
            extra.extend(scopes.accounts.split_whitespace().chain(scopes.transactions.split_whitespace()));
        }
        for s in extra {
            if !scope.split(' ').any(|have| have == s) {
                scope.push(' ');
                scope.push_str(s);
            }
        }
        self.push(PushRequest {
            flow: AuthFlow::Connect,
            scope,
            claims: json!({ "id_token": id_token }),
            state: nonempty(options.state, "state")?,
            nonce: nonempty(options.nonce, "nonce")?,
            user_id: options.user_id,
            connection_id: None,
            redirect_uri: options.redirect_uri,
        })
        .await
    }

    /// Re-authenticates a connection with the bank (`openid reauth`): for expired consent
    /// without `tppConsent`, `credentials_error`, or to change accounts. The connection id may
    /// change: read it from [`Connected::connection_id`](super::Connected).
    pub async fn reauth(&self, options: RenewOptions) -> Result<AuthorizationRequest> {
        self.renew(AuthFlow::Reauth, "reauth", options).await
    }

    /// Refreshes a legacy connection that needs user input (`openid refresh`).
    pub async fn refresh(&self, options: RenewOptions) -> Result<AuthorizationRequest> {
        self.renew(AuthFlow::Refresh, "refresh", options).await
    }

    /// Renews an open-banking connection's consent without the bank (`openid reconsent`,
    /// needs `tppConsent`), optionally with a new expiry (`mh:consent`).
    pub async fn reconsent(&self, options: RenewOptions) -> Result<AuthorizationRequest> {
        self.renew(AuthFlow::Reconsent, "reconsent", options).await
    }

    async fn renew(
        &self,
        flow: AuthFlow,
        scope: &str,
        options: RenewOptions,
    ) -> Result<AuthorizationRequest> {
        let now = self.client.inner().config.clock.now();
        let mut id_token = Map::new();
        id_token.insert("sub".into(), json!({"essential": true, "value": options.user_id}));
        id_token.insert("mh:con_id".into(), json!({"essential": true, "value": options.connection_id}));
        match (flow, options.expires_at) {
            (AuthFlow::Reconsent, Some(at)) => {
                check_expiry(at, now, "the new consent expiry")?;
                id_token.insert(
                    "mh:consent".into(),
                    json!({"essential": true, "value": {"expirationDateTime": format_timestamp(&at)}}),
                );
            }
            (_, Some(_)) => {
                return Err(Error::validation("a new consent expiry can only be given to a reconsent"))
            }
            (_, None) => {}
        }
        self.push(PushRequest {
            flow,
            scope: format!("openid {scope}"),
            claims: json!({ "id_token": id_token }),
            state: nonempty(options.state, "state")?,
            nonce: nonempty(options.nonce, "nonce")?,
            user_id: Some(options.user_id),
            connection_id: Some(options.connection_id),
            redirect_uri: options.redirect_uri,
        })
        .await
    }
}
