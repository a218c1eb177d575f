//! The request table: one [`Route`] value per Moneyhub route the client calls, and everything a
//! request takes from it: method, path template (the only form that reaches logs, metrics and
//! errors), path segments (each percent-encoded, with its ids typed until then), the token it
//! needs, whether it may be retried, which timeout applies, and the shape of its error bodies.
//!
//! Adding a route is adding a variant here and answering each `match` the compiler points to
//! (every `match` lists every variant: none has a default arm, so a new route cannot silently
//! inherit a retry, timeout or error class); the API area's module then builds its request with
//! [`ClientInner::request`] (or [`ClientInner::request_at`] for endpoints the discovery document
//! names). This module depends on no API area: they depend on it.

use std::time::Duration;

use reqwest::Method;
use url::Url;

use moneyhub_types::{AccountId, ConnectionId, SyncId, TransactionId, UserId};

use super::http::{Body, Call, CallAuth, Errors};
use super::tokens::TokenKey;
use crate::config::Scopes;
use crate::error::{Error, Result};
use crate::ClientInner;

/// Scope to create and complete auth requests.
pub(crate) const AUTH_REQUESTS_WRITE: &str = "auth_requests:write";
/// Scope to read auth requests.
pub(crate) const AUTH_REQUESTS_READ: &str = "auth_requests:read";
/// Scope of the unenriched routes requested with client credentials.
pub(crate) const UNENRICHED: &str = "transactions_unenriched:read:all";

/// An auth request's id as a path segment: 1 to 200 characters (checked when made).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthRequestRef<'a>(&'a str);

impl<'a> AuthRequestRef<'a> {
    pub(crate) fn new(id: &'a str) -> Result<Self> {
        if id.is_empty() || id.len() > 200 {
            return Err(Error::validation("an auth request id must be 1 to 200 characters"));
        }
        Ok(AuthRequestRef(id))
    }
}

/// Which grant a token-endpoint request uses: it decides the retry and timeout classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// `client_credentials`: safe to repeat.
    ClientCredentials,
    /// `jwt-bearer`: its assertion's `jti` is single use.
    JwtBearer,
    /// The authorisation-code exchange: a code is single use, and it may start a first sync.
    AuthorizationCode,
    /// `refresh_token`: refresh tokens rotate, so a repeat could burn the new one.
    RefreshToken,
}

/// Which base URL a route's path hangs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Identity,
    Api,
}

/// Whether a request may be sent again after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryClass {
    /// Safe to repeat: reads, deletes, client-credentials token requests.
    Idempotent,
    /// Sent once: it creates, syncs, exchanges or spends something.
    Never,
}

/// Which of the configured timeouts applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutClass {
    /// [`Timeouts::default`](crate::Timeouts::default).
    Default,
    /// [`Timeouts::long`](crate::Timeouts::long): calls that can start a provider fetch.
    Long,
}

/// Which token a route needs.
enum Needs<'a> {
    /// None (discovery, JWKS, catalogues).
    None,
    /// Client authentication at the token or PAR endpoint.
    Client,
    /// A client-credentials token with these scopes, bound to the user when there is one.
    Bearer(Option<&'a UserId>, &'a str),
}

/// One Moneyhub route, with the ids of its path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Route<'a> {
    /// `GET /oidc/.well-known/openid-configuration`.
    Discovery,
    /// `GET /oidc/certs` (at the discovery document's `jwks_uri`).
    Jwks,
    /// `GET /oidc/.well-known/all-connections`.
    CatalogueAll,
    /// `GET /oidc/.well-known/api-connections`.
    CatalogueApi,
    /// `GET /oidc/.well-known/legacy-connections`.
    CatalogueLegacy,
    /// `GET /oidc/.well-known/payments-connections`.
    CataloguePayments,
    /// `GET /oidc/.well-known/test-connections`.
    CatalogueTest,
    /// `POST /oidc/token` (at the discovery document's `token_endpoint`).
    Token(Grant),
    /// `POST /oidc/request` (pushed authorisation request).
    Par,
    /// `POST /users`.
    CreateUser,
    /// `GET /users`.
    ListUsers,
    /// `GET /users/{userId}`.
    GetUser(&'a UserId),
    /// `DELETE /users/{userId}`.
    DeleteUser(&'a UserId),
    /// `GET /users/{userId}/connections`.
    ListConnections(&'a UserId),
    /// `DELETE /users/{userId}/connection/{connectionId}`.
    DeleteConnection(&'a UserId, &'a ConnectionId),
    /// `PATCH /users/{userId}/connections/{connectionId}`.
    UpdateConnection(&'a UserId, &'a ConnectionId),
    /// `GET /users/{userId}/connections/{connectionId}/syncs`.
    ConnectionSyncs(&'a UserId, &'a ConnectionId),
    /// `GET /users/{userId}/syncs`.
    UserSyncs(&'a UserId),
    /// `GET /users/{userId}/syncs/{syncId}`.
    GetSync(&'a UserId, &'a SyncId),
    /// `POST /sync/{connectionId}` (Data API, token bound to the user).
    Sync(&'a UserId, &'a ConnectionId),
    /// `GET /accounts`.
    ListAccounts(&'a UserId),
    /// `GET /accounts/{accountId}`.
    GetAccount(&'a UserId, &'a AccountId),
    /// `GET /transactions` (listings, counts and look-ups by id).
    ListTransactions(&'a UserId),
    /// `GET /transactions/{transactionId}`.
    GetTransaction(&'a UserId, &'a TransactionId),
    /// `GET /transactions/unenriched`.
    ListUnenriched(&'a UserId),
    /// `GET /transactions/unenriched/{transactionId}`.
    GetUnenriched(&'a UserId, &'a TransactionId),
    /// `POST /auth-requests`.
    CreateAuthRequest,
    /// `GET /auth-requests`.
    ListAuthRequests,
    /// `GET /auth-requests/{id}`.
    GetAuthRequest(AuthRequestRef<'a>),
    /// `PATCH /auth-requests/{id}`: Moneyhub exchanges the code and may create a connection.
    CompleteAuthRequest(AuthRequestRef<'a>),
}

impl<'a> Route<'a> {
    /// The HTTP method.
    pub(crate) fn method(&self) -> Method {
        use Route::*;
        match self {
            Discovery | Jwks | CatalogueAll | CatalogueApi | CatalogueLegacy | CataloguePayments
            | CatalogueTest | ListUsers | GetUser(_) | ListConnections(_) | ConnectionSyncs(..)
            | UserSyncs(_) | GetSync(..) | ListAccounts(_) | GetAccount(..) | ListTransactions(_)
            | GetTransaction(..) | ListUnenriched(_) | GetUnenriched(..) | ListAuthRequests
            | GetAuthRequest(_) => Method::GET,
            Token(_) | Par | CreateUser | Sync(..) | CreateAuthRequest => Method::POST,
            DeleteUser(_) | DeleteConnection(..) => Method::DELETE,
            UpdateConnection(..) | CompleteAuthRequest(_) => Method::PATCH,
        }
    }

    /// The path template: what logs, metrics and errors name (never the ids themselves).
    pub(crate) fn template(&self) -> &'static str {
        use Route::*;
        match self {
            Discovery => "/oidc/.well-known/openid-configuration",
            Jwks => "/oidc/certs",
            CatalogueAll => "/oidc/.well-known/all-connections",
            CatalogueApi => "/oidc/.well-known/api-connections",
            CatalogueLegacy => "/oidc/.well-known/legacy-connections",
            CataloguePayments => "/oidc/.well-known/payments-connections",
            CatalogueTest => "/oidc/.well-known/test-connections",
            Token(_) => "/oidc/token",
            Par => "/oidc/request",
            CreateUser | ListUsers => "/users",
            GetUser(_) | DeleteUser(_) => "/users/{userId}",
            ListConnections(_) => "/users/{userId}/connections",
            DeleteConnection(..) => "/users/{userId}/connection/{connectionId}",
            UpdateConnection(..) => "/users/{userId}/connections/{connectionId}",
            ConnectionSyncs(..) => "/users/{userId}/connections/{connectionId}/syncs",
            UserSyncs(_) => "/users/{userId}/syncs",
            GetSync(..) => "/users/{userId}/syncs/{syncId}",
            Sync(..) => "/sync/{connectionId}",
            ListAccounts(_) => "/accounts",
            GetAccount(..) => "/accounts/{accountId}",
            ListTransactions(_) => "/transactions",
            GetTransaction(..) => "/transactions/{transactionId}",
            ListUnenriched(_) => "/transactions/unenriched",
            GetUnenriched(..) => "/transactions/unenriched/{transactionId}",
            CreateAuthRequest | ListAuthRequests => "/auth-requests",
            GetAuthRequest(_) | CompleteAuthRequest(_) => "/auth-requests/{id}",
        }
    }

    /// The base URL and the path segments under it, ids as they go on the wire.
    fn path(&self) -> (Base, Vec<&'a str>) {
        use Base::{Api, Identity};
        use Route::*;
        let (base, segments): (Base, Vec<&'a str>) = match *self {
            Discovery => (Identity, vec!["oidc", ".well-known", "openid-configuration"]),
            Jwks => (Identity, vec!["oidc", "certs"]),
            CatalogueAll => (Identity, vec!["oidc", ".well-known", "all-connections"]),
            CatalogueApi => (Identity, vec!["oidc", ".well-known", "api-connections"]),
            CatalogueLegacy => (Identity, vec!["oidc", ".well-known", "legacy-connections"]),
            CataloguePayments => (Identity, vec!["oidc", ".well-known", "payments-connections"]),
            CatalogueTest => (Identity, vec!["oidc", ".well-known", "test-connections"]),
            Token(_) => (Identity, vec!["oidc", "token"]),
            Par => (Identity, vec!["oidc", "request"]),
            CreateUser | ListUsers => (Identity, vec!["users"]),
            GetUser(u) | DeleteUser(u) => (Identity, vec!["users", u.as_str()]),
            ListConnections(u) => (Identity, vec!["users", u.as_str(), "connections"]),
            DeleteConnection(u, c) => (Identity, vec!["users", u.as_str(), "connection", c.as_str()]),
            UpdateConnection(u, c) => (Identity, vec!["users", u.as_str(), "connections", c.as_str()]),
            ConnectionSyncs(u, c) => {
                (Identity, vec!["users", u.as_str(), "connections", c.as_str(), "syncs"])
            }
            UserSyncs(u) => (Identity, vec!["users", u.as_str(), "syncs"]),
            GetSync(u, s) => (Identity, vec!["users", u.as_str(), "syncs", s.as_str()]),
            Sync(_, c) => (Api, vec!["sync", c.as_str()]),
            ListAccounts(_) => (Api, vec!["accounts"]),
            GetAccount(_, a) => (Api, vec!["accounts", a.as_str()]),
            ListTransactions(_) => (Api, vec!["transactions"]),
            GetTransaction(_, t) => (Api, vec!["transactions", t.as_str()]),
            ListUnenriched(_) => (Api, vec!["transactions", "unenriched"]),
            GetUnenriched(_, t) => (Api, vec!["transactions", "unenriched", t.as_str()]),
            CreateAuthRequest | ListAuthRequests => (Identity, vec!["auth-requests"]),
            GetAuthRequest(id) | CompleteAuthRequest(id) => (Identity, vec!["auth-requests", id.0]),
        };
        (base, segments)
    }

    /// The token the route needs, with the scopes configured for it.
    fn needs(&self, scopes: &'a Scopes) -> Needs<'a> {
        use Route::*;
        match *self {
            Discovery | Jwks | CatalogueAll | CatalogueApi | CatalogueLegacy | CataloguePayments
            | CatalogueTest => Needs::None,
            Token(_) | Par => Needs::Client,
            CreateUser => Needs::Bearer(None, &scopes.user_create),
            ListUsers | GetUser(_) => Needs::Bearer(None, &scopes.user_read),
            DeleteUser(_) => Needs::Bearer(None, &scopes.user_delete),
            ListConnections(_) | ConnectionSyncs(..) | UserSyncs(_) | GetSync(..) => {
                Needs::Bearer(None, &scopes.connection_read)
            }
            DeleteConnection(..) => Needs::Bearer(None, &scopes.connection_delete),
            UpdateConnection(..) => Needs::Bearer(None, &scopes.connection_update),
            Sync(u, _) => Needs::Bearer(Some(u), &scopes.sync),
            ListAccounts(u) | GetAccount(u, _) => Needs::Bearer(Some(u), &scopes.accounts),
            ListTransactions(u) | GetTransaction(u, _) => Needs::Bearer(Some(u), &scopes.transactions),
            ListUnenriched(u) | GetUnenriched(u, _) => Needs::Bearer(Some(u), UNENRICHED),
            CreateAuthRequest | CompleteAuthRequest(_) => Needs::Bearer(None, AUTH_REQUESTS_WRITE),
            ListAuthRequests | GetAuthRequest(_) => Needs::Bearer(None, AUTH_REQUESTS_READ),
        }
    }

    /// Whether the request may be repeated: reads and deletes yes, and client-credentials
    /// token requests; never a request that creates (users, auth requests), syncs, patches,
    /// pushes an authorisation request or spends a code, assertion or refresh token.
    pub(crate) fn retry(&self) -> RetryClass {
        use Route::*;
        match self {
            Token(Grant::ClientCredentials)
            | Discovery
            | Jwks
            | CatalogueAll
            | CatalogueApi
            | CatalogueLegacy
            | CataloguePayments
            | CatalogueTest
            | ListUsers
            | GetUser(_)
            | DeleteUser(_)
            | ListConnections(_)
            | DeleteConnection(..)
            | ConnectionSyncs(..)
            | UserSyncs(_)
            | GetSync(..)
            | ListAccounts(_)
            | GetAccount(..)
            | ListTransactions(_)
            | GetTransaction(..)
            | ListUnenriched(_)
            | GetUnenriched(..)
            | ListAuthRequests
            | GetAuthRequest(_) => RetryClass::Idempotent,
            Token(Grant::JwtBearer | Grant::AuthorizationCode | Grant::RefreshToken)
            | Par
            | CreateUser
            | UpdateConnection(..)
            | Sync(..)
            | CreateAuthRequest
            | CompleteAuthRequest(_) => RetryClass::Never,
        }
    }

    /// The long timeout for calls that can start a provider fetch (the code exchange, a
    /// manual sync, a connection's expiry update, an auth request's completion).
    pub(crate) fn timeout(&self) -> TimeoutClass {
        use Route::*;
        match self {
            Token(Grant::AuthorizationCode) | Sync(..) | UpdateConnection(..) | CompleteAuthRequest(_) => {
                TimeoutClass::Long
            }
            Token(Grant::ClientCredentials | Grant::JwtBearer | Grant::RefreshToken)
            | Discovery
            | Jwks
            | CatalogueAll
            | CatalogueApi
            | CatalogueLegacy
            | CataloguePayments
            | CatalogueTest
            | Par
            | CreateUser
            | ListUsers
            | GetUser(_)
            | DeleteUser(_)
            | ListConnections(_)
            | DeleteConnection(..)
            | ConnectionSyncs(..)
            | UserSyncs(_)
            | GetSync(..)
            | ListAccounts(_)
            | GetAccount(..)
            | ListTransactions(_)
            | GetTransaction(..)
            | ListUnenriched(_)
            | GetUnenriched(..)
            | CreateAuthRequest
            | ListAuthRequests
            | GetAuthRequest(_) => TimeoutClass::Default,
        }
    }

    /// OAuth error bodies (`{error, error_description}`) at the token and PAR endpoints.
    fn errors(&self) -> Errors {
        use Route::*;
        match self {
            Token(_) | Par => Errors::OAuth,
            Discovery
            | Jwks
            | CatalogueAll
            | CatalogueApi
            | CatalogueLegacy
            | CataloguePayments
            | CatalogueTest
            | CreateUser
            | ListUsers
            | GetUser(_)
            | DeleteUser(_)
            | ListConnections(_)
            | DeleteConnection(..)
            | UpdateConnection(..)
            | ConnectionSyncs(..)
            | UserSyncs(_)
            | GetSync(..)
            | Sync(..)
            | ListAccounts(_)
            | GetAccount(..)
            | ListTransactions(_)
            | GetTransaction(..)
            | ListUnenriched(_)
            | GetUnenriched(..)
            | CreateAuthRequest
            | ListAuthRequests
            | GetAuthRequest(_)
            | CompleteAuthRequest(_) => Errors::Api,
        }
    }

    /// Token answers hold tokens: decode errors must not echo values.
    fn sensitive(&self) -> bool {
        use Route::*;
        match self {
            Token(_) => true,
            Discovery
            | Jwks
            | CatalogueAll
            | CatalogueApi
            | CatalogueLegacy
            | CataloguePayments
            | CatalogueTest
            | Par
            | CreateUser
            | ListUsers
            | GetUser(_)
            | DeleteUser(_)
            | ListConnections(_)
            | DeleteConnection(..)
            | UpdateConnection(..)
            | ConnectionSyncs(..)
            | UserSyncs(_)
            | GetSync(..)
            | Sync(..)
            | ListAccounts(_)
            | GetAccount(..)
            | ListTransactions(_)
            | GetTransaction(..)
            | ListUnenriched(_)
            | GetUnenriched(..)
            | CreateAuthRequest
            | ListAuthRequests
            | GetAuthRequest(_)
            | CompleteAuthRequest(_) => false,
        }
    }
}

impl ClientInner {
    /// `base` with `segments` appended, each percent-encoded (`/`, `%`, `?`, `#` included) so
    /// it stays exactly one path segment. An empty segment or a dot-segment (`.`, `..`) is
    /// refused before anything is sent: URL normalisation would drop it or climb a level
    /// (`/users/..` is `/`), so the request would go to another route. Ids already refuse
    /// these values when parsed; this is the last line of defence.
    fn join(base: &Url, segments: &[&str]) -> Result<Url> {
        if let Some(bad) = segments.iter().find(|s| s.is_empty() || **s == "." || **s == "..") {
            return Err(Error::validation(format!(
                "{bad:?} cannot be used as a URL path segment (empty, `.` and `..` are refused)"
            )));
        }
        let mut url = base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    /// The URL of `route` under the configured identity or Data API base.
    pub(crate) fn route_url(&self, route: &Route<'_>) -> Result<Url> {
        let (base, segments) = route.path();
        let base = match base {
            Base::Identity => &self.config.identity_url,
            Base::Api => &self.config.api_url,
        };
        Self::join(base, &segments)
    }

    /// The request for `route`, at its URL under the configured base.
    pub(crate) fn request(&self, route: Route<'_>) -> Result<Call> {
        Ok(self.request_at(route, self.route_url(&route)?))
    }

    /// The request for `route` at `url`: an endpoint the discovery document names, or a
    /// `links.next` of a listing.
    pub(crate) fn request_at(&self, route: Route<'_>, url: Url) -> Call {
        let auth = match route.needs(&self.config.scopes) {
            Needs::None => CallAuth::None,
            Needs::Client => CallAuth::Client { audience: String::new() },
            Needs::Bearer(user, scope) => CallAuth::Bearer(TokenKey::new(user, scope)),
        };
        let timeout: Duration = match route.timeout() {
            TimeoutClass::Default => self.config.timeouts.default,
            TimeoutClass::Long => self.config.timeouts.long,
        };
        Call {
            method: route.method(),
            route: route.template(),
            url,
            body: Body::None,
            auth,
            retry: route.retry() == RetryClass::Idempotent,
            timeout,
            errors: route.errors(),
            sensitive: route.sensitive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_never_retried() {
        let u: UserId = "u1".parse().unwrap();
        let c: ConnectionId = "b:1".parse().unwrap();
        let id = AuthRequestRef::new("ar1").unwrap();
        for never in [
            Route::CreateUser,
            Route::Sync(&u, &c),
            Route::UpdateConnection(&u, &c),
            Route::CreateAuthRequest,
            Route::CompleteAuthRequest(id),
            Route::Par,
            Route::Token(Grant::AuthorizationCode),
            Route::Token(Grant::RefreshToken),
            Route::Token(Grant::JwtBearer),
        ] {
            assert_eq!(never.retry(), RetryClass::Never, "{never:?}");
        }
        for again in [Route::ListUsers, Route::DeleteUser(&u), Route::Token(Grant::ClientCredentials)] {
            assert_eq!(again.retry(), RetryClass::Idempotent, "{again:?}");
        }
        assert_eq!(Route::Sync(&u, &c).timeout(), TimeoutClass::Long);
        assert_eq!(Route::ListUsers.timeout(), TimeoutClass::Default);
        assert!(AuthRequestRef::new("").is_err());
    }

    #[test]
    fn templates_match_segments() {
        let u: UserId = "u1".parse().unwrap();
        let c: ConnectionId = "b:1".parse().unwrap();
        let route = Route::ConnectionSyncs(&u, &c);
        let (_, segments) = route.path();
        assert_eq!(segments.len(), route.template().trim_start_matches('/').split('/').count());
    }

    /// Every route's classes, listed out, keep the rule they were written from: reads and
    /// deletes (and client-credentials token requests) are repeated, nothing else is; only
    /// the token and PAR endpoints answer OAuth errors; only token answers are sensitive.
    #[test]
    fn every_route_keeps_the_rule() {
        let (u, c) = ("u1".parse::<UserId>().unwrap(), "b:1".parse::<ConnectionId>().unwrap());
        let (a, t, s) = (
            "6d0baf11-248e-4c11-9c04-97b7758b4e04".parse::<AccountId>().unwrap(),
            "6d0baf11-248e-4c11-9c04-97b7758b4e05".parse::<TransactionId>().unwrap(),
            "6d0baf11-248e-4c11-9c04-97b7758b4e06".parse::<SyncId>().unwrap(),
        );
        let id = AuthRequestRef::new("ar1").unwrap();
        let grants =
            [Grant::ClientCredentials, Grant::JwtBearer, Grant::AuthorizationCode, Grant::RefreshToken];
        let mut routes = vec![
            Route::Discovery,
            Route::Jwks,
            Route::CatalogueAll,
            Route::CatalogueApi,
            Route::CatalogueLegacy,
            Route::CataloguePayments,
            Route::CatalogueTest,
            Route::Par,
            Route::CreateUser,
            Route::ListUsers,
            Route::GetUser(&u),
            Route::DeleteUser(&u),
            Route::ListConnections(&u),
            Route::DeleteConnection(&u, &c),
            Route::UpdateConnection(&u, &c),
            Route::ConnectionSyncs(&u, &c),
            Route::UserSyncs(&u),
            Route::GetSync(&u, &s),
            Route::Sync(&u, &c),
            Route::ListAccounts(&u),
            Route::GetAccount(&u, &a),
            Route::ListTransactions(&u),
            Route::GetTransaction(&u, &t),
            Route::ListUnenriched(&u),
            Route::GetUnenriched(&u, &t),
            Route::CreateAuthRequest,
            Route::ListAuthRequests,
            Route::GetAuthRequest(id),
            Route::CompleteAuthRequest(id),
        ];
        routes.extend(grants.map(Route::Token));
        for route in routes {
            let repeatable = matches!(route, Route::Token(Grant::ClientCredentials))
                || (!matches!(route, Route::Token(_))
                    && matches!(route.method(), Method::GET | Method::DELETE));
            assert_eq!(route.retry() == RetryClass::Idempotent, repeatable, "{route:?}");
            let oauth = matches!(route, Route::Token(_) | Route::Par);
            assert_eq!(matches!(route.errors(), Errors::OAuth), oauth, "{route:?}");
            assert_eq!(route.sensitive(), matches!(route, Route::Token(_)), "{route:?}");
            let (_, segments) = route.path();
            assert_eq!(
                segments.len(),
                route.template().trim_start_matches('/').split('/').count(),
                "{route:?}"
            );
        }
    }
}
