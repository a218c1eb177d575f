//! Configuration: [`ClientBuilder`], [`ClientAuth`], [`ApiVersion`], [`Timeouts`], [`Scopes`]
//! and [`Client::from_env`](crate::Client::from_env).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::guard::{DefaultSyncGuard, SyncGuard};
use crate::jose::{PrivateKey, SigningAlg};
use crate::secret::Secret;
use crate::transport::retry::RetryPolicy;
use crate::Client;

/// Production identity service.
pub const DEFAULT_IDENTITY_URL: &str = "https://identity.moneyhub.co.uk";
/// Production Data API host (the version path is added per [`ApiVersion`]).
pub const DEFAULT_API_HOST: &str = "https://api.moneyhub.co.uk";

/// How the client authenticates at the token and PAR endpoints.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret_basic`.
    Secret(Secret),
    /// `private_key_jwt`: a short-lived assertion signed with this key.
    PrivateKey(PrivateKey),
    /// `self_signed_tls_client_auth`: the TLS client certificate
    /// ([`ClientBuilder::tls_client_identity`]) authenticates the client; only `client_id` is
    /// sent. Tokens are then bound to the certificate (`cnf` `x5t#S256`).
    TlsClientAuth,
}

impl ClientAuth {
    /// `client_secret_basic` with this secret.
    pub fn secret(secret: impl Into<String>) -> Self {
        ClientAuth::Secret(Secret::new(secret))
    }

    /// `private_key_jwt` with this key.
    pub fn private_key(key: PrivateKey) -> Self {
        ClientAuth::PrivateKey(key)
    }

    /// `self_signed_tls_client_auth` (set the certificate with
    /// [`ClientBuilder::tls_client_identity`]).
    pub fn tls() -> Self {
        ClientAuth::TlsClientAuth
    }

    /// The OAuth name of the method (`client_secret_basic`, `private_key_jwt`,
    /// `self_signed_tls_client_auth`).
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::Secret(_) => "client_secret_basic",
            ClientAuth::PrivateKey(_) => "private_key_jwt",
            ClientAuth::TlsClientAuth => "self_signed_tls_client_auth",
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("Secret([redacted])"),
            ClientAuth::PrivateKey(k) => f.debug_tuple("PrivateKey").field(k).finish(),
            ClientAuth::TlsClientAuth => f.write_str("TlsClientAuth"),
        }
    }
}

/// A TLS client certificate and its private key (PEM), presented on every request to the
/// identity service and the Data API: for `self_signed_tls_client_auth` and for
/// certificate-bound access tokens.
///
/// `Debug` shows neither the certificate nor the key.
#[derive(Clone)]
pub struct TlsIdentity {
    cert_pem: Vec<u8>,
    key: Secret,
}

impl TlsIdentity {
    /// A certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, PKCS#1 or
    /// SEC1). Checked when the client is built.
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<String>) -> Self {
        TlsIdentity { cert_pem: cert_pem.into(), key: Secret::new(key_pem) }
    }

    /// Reads the certificate and key files.
    pub fn from_files(cert: impl AsRef<std::path::Path>, key: impl AsRef<std::path::Path>) -> Result<Self> {
        let read = |p: &std::path::Path, what: &str| {
            std::fs::read(p)
                .map_err(|e| Error::config_with(format!("could not read the {what} {}", p.display()), e))
        };
        let cert_pem = read(cert.as_ref(), "TLS client certificate")?;
        let key = read(key.as_ref(), "TLS client key")?;
        let key = String::from_utf8(key).map_err(|_| Error::config("the TLS client key is not PEM text"))?;
        Ok(Self::from_pem(cert_pem, key))
    }

    /// The certificate chain and key PEM, after a first check of their shape (rustls parses
    /// them when the client is built).
    fn checked_pem(&self) -> Result<(&[u8], &str)> {
        if !self.key.expose_secret().contains("PRIVATE KEY-----") {
            return Err(Error::config("the TLS client key is not a PEM private key"));
        }
        if !String::from_utf8_lossy(&self.cert_pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::config("the TLS client certificate is not a PEM certificate"));
        }
        Ok((&self.cert_pem, self.key.expose_secret()))
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsIdentity([redacted])")
    }
}

/// Where user-bound access tokens (Data API, `sub` = a user) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UserTokens {
    /// `client_credentials` with Moneyhub's `sub` extension (the default).
    #[default]
    ClientCredentials,
    /// The `urn:ietf:params:oauth:grant-type:jwt-bearer` grant: an assertion (`iss` =
    /// client_id, `sub` = user, `aud` = issuer, 10 minutes) signed with the private key and the
    /// request-object algorithm. Needs [`ClientBuilder::request_object_signing_alg`].
    JwtBearer,
}

/// Data API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ApiVersion {
    /// `/v2.0` (`enableAsync` defaults to false on sync).
    V2,
    /// `/v3`, the default (`enableAsync` defaults to true on sync).
    #[default]
    V3,
}

impl ApiVersion {
    /// The path segment (`v2.0`, `v3`).
    pub fn path(self) -> &'static str {
        match self {
            ApiVersion::V2 => "v2.0",
            ApiVersion::V3 => "v3",
        }
    }
}

/// Request timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Ordinary calls (60 s, Moneyhub's guidance).
    pub default: Duration,
    /// Calls that can start a provider fetch: the code exchange, `POST /sync`, connection
    /// `PATCH` (120 s).
    pub long: Duration,
    /// Opening a connection (10 s).
    pub connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            default: Duration::from_secs(60),
            long: Duration::from_secs(120),
            connect: Duration::from_secs(10),
        }
    }
}

/// The scopes requested for each family of calls (client-credentials tokens). Defaults follow
/// the reference's decisions (§18); older tenants may need `user:read`/`user:update`/
/// `user:delete` for the connection routes, or `accounts:write` for sync.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scopes {
    /// `POST /users` (`user:create`).
    pub user_create: String,
    /// `GET /users…` (`user:read`).
    pub user_read: String,
    /// `DELETE /users/{id}` (`user:delete`).
    pub user_delete: String,
    /// Connection list and sync history (`connection:read`).
    pub connection_read: String,
    /// Connection `PATCH` (`connection:update`).
    pub connection_update: String,
    /// Connection `DELETE` (`connection:delete`).
    pub connection_delete: String,
    /// `POST /sync` (`accounts:read accounts:write:all`).
    pub sync: String,
    /// Transactions (`transactions:read:all`).
    pub transactions: String,
    /// Accounts (`accounts:read`).
    pub accounts: String,
}

impl Default for Scopes {
    fn default() -> Self {
        Scopes {
            user_create: "user:create".into(),
            user_read: "user:read".into(),
            user_delete: "user:delete".into(),
            connection_read: "connection:read".into(),
            connection_update: "connection:update".into(),
            connection_delete: "connection:delete".into(),
            sync: "accounts:read accounts:write:all".into(),
            transactions: "transactions:read:all".into(),
            accounts: "accounts:read".into(),
        }
    }
}

/// The resolved configuration of a [`Client`].
pub(crate) struct Config {
    pub identity_url: Url,
    pub api_url: Url,
    pub api_version: ApiVersion,
    pub client_id: String,
    pub auth: ClientAuth,
    pub redirect_uri: Option<Url>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub user_agent: String,
    pub clock: Arc<dyn Clock>,
    pub scopes: Scopes,
    pub batch_concurrency: usize,
    pub token_refresh_margin: Duration,
    pub jwt_leeway: Duration,
    pub discovery_ttl: Duration,
    pub jwks_refetch_interval: Duration,
    pub webhook_iat_window: Duration,
    pub request_object_alg: Option<SigningAlg>,
    pub user_tokens: UserTokens,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("identity_url", &self.identity_url.as_str())
            .field("api_url", &self.api_url.as_str())
            .field("api_version", &self.api_version)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("redirect_uri", &self.redirect_uri.as_ref().map(Url::as_str))
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("user_agent", &self.user_agent)
            .field("scopes", &self.scopes)
            .field("batch_concurrency", &self.batch_concurrency)
            .field("request_object_alg", &self.request_object_alg)
            .field("user_tokens", &self.user_tokens)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]. Start with [`Client::builder`] or [`ClientBuilder::from_env`].
///
/// ```
/// use moneyhub::{Client, ClientAuth};
/// let client = Client::builder()
///     .identity_url("https://identity.moneyhub.co.uk")
///     .api_url("https://api.moneyhub.co.uk/v3")
///     .client_id("898c529b-c062-4f26-a136-fd8bc462d583")
///     .client_auth(ClientAuth::secret("s3cr3t"))
///     .redirect_uri("https://example.com/callback")
///     .build()?;
/// assert!(!format!("{client:?}").contains("s3cr3t"));
/// # Ok::<(), moneyhub::Error>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    identity_url: Option<String>,
    api_url: Option<String>,
    api_version: Option<ApiVersion>,
    client_id: Option<String>,
    auth: Option<ClientAuth>,
    redirect_uri: Option<String>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    user_agent: Option<String>,
    clock: Arc<dyn Clock>,
    scopes: Scopes,
    guard: Arc<dyn SyncGuard>,
    batch_concurrency: usize,
    token_refresh_margin: Duration,
    jwt_leeway: Duration,
    discovery_ttl: Duration,
    jwks_refetch_interval: Duration,
    webhook_iat_window: Duration,
    request_object_alg: Option<SigningAlg>,
    user_tokens: UserTokens,
    tls_identity: Option<TlsIdentity>,
    ca_pems: Vec<Vec<u8>>,
    http_client: Option<reqwest::Client>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("identity_url", &self.identity_url)
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("redirect_uri", &self.redirect_uri)
            .field("request_object_alg", &self.request_object_alg)
            .field("tls_identity", &self.tls_identity)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            identity_url: None,
            api_url: None,
            api_version: None,
            client_id: None,
            auth: None,
            redirect_uri: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            user_agent: None,
            clock: Arc::new(SystemClock),
            scopes: Scopes::default(),
            guard: Arc::new(DefaultSyncGuard::new()),
            batch_concurrency: 4,
            token_refresh_margin: Duration::from_secs(60),
            jwt_leeway: Duration::from_secs(30),
            discovery_ttl: Duration::from_secs(3600),
            jwks_refetch_interval: Duration::from_secs(60),
            webhook_iat_window: Duration::from_secs(600),
            request_object_alg: None,
            user_tokens: UserTokens::default(),
            tls_identity: None,
            ca_pems: Vec::new(),
            http_client: None,
        }
    }
}

impl ClientBuilder {
    /// An empty builder (production URLs, no credentials).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from the environment:
    ///
    /// | Variable | Meaning |
    /// | --- | --- |
    /// | `MONEYHUB_IDENTITY_URL` | identity service (default production) |
    /// | `MONEYHUB_API_URL` | Data API, `…/v2.0` or `…/v3` (default production v3) |
    /// | `MONEYHUB_CLIENT_ID` | client id (required) |
    /// | `MONEYHUB_CLIENT_SECRET` | secret for `client_secret_basic` |
    /// | `MONEYHUB_PRIVATE_KEY` | for `private_key_jwt`: a file path, or an inline JWK / PEM |
    /// | `MONEYHUB_PRIVATE_KEY_ALG` | RS/PS 256/384/512, ES256/384/512 (default: from the key) |
    /// | `MONEYHUB_PRIVATE_KEY_KID` | the key's `kid` (default: the JWK's) |
    /// | `MONEYHUB_REQUEST_OBJECT_ALG` | `none` (default) or an algorithm above |
    /// | `MONEYHUB_TLS_CLIENT_CERT`, `MONEYHUB_TLS_CLIENT_KEY` | TLS client certificate and key (PEM files) |
    /// | `MONEYHUB_CA_CERT` | extra CA roots (PEM file) |
    /// | `MONEYHUB_REDIRECT_URI` | redirect URI for the authorisation flows |
    ///
    /// At most one of the secret and the private key may be set; with neither, a TLS client
    /// certificate means `self_signed_tls_client_auth`.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables (a config map, a test
    /// fixture): `lookup` returns a variable's value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let env = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut b = ClientBuilder::new();
        if let Some(v) = env("MONEYHUB_IDENTITY_URL") {
            b = b.identity_url(v);
        }
        if let Some(v) = env("MONEYHUB_API_URL") {
            b = b.api_url(v);
        }
        b.client_id =
            Some(env("MONEYHUB_CLIENT_ID").ok_or_else(|| Error::config("MONEYHUB_CLIENT_ID is not set"))?);
        let secret = env("MONEYHUB_CLIENT_SECRET");
        let key = env("MONEYHUB_PRIVATE_KEY");
        match (env("MONEYHUB_TLS_CLIENT_CERT"), env("MONEYHUB_TLS_CLIENT_KEY")) {
            (Some(cert), Some(key)) => b = b.tls_client_identity(TlsIdentity::from_files(cert, key)?),
            (None, None) => {}
            _ => {
                return Err(Error::config(
                    "set both MONEYHUB_TLS_CLIENT_CERT and MONEYHUB_TLS_CLIENT_KEY, or neither",
                ))
            }
        }
        if let Some(ca) = env("MONEYHUB_CA_CERT") {
            let pem = std::fs::read(&ca)
                .map_err(|e| Error::config_with(format!("could not read MONEYHUB_CA_CERT {ca}"), e))?;
            b = b.add_root_certificates_pem(pem);
        }
        if let Some(alg) = env("MONEYHUB_REQUEST_OBJECT_ALG").filter(|a| !a.eq_ignore_ascii_case("none")) {
            b = b.request_object_signing_alg(Some(alg.parse()?));
        }
        b.auth = Some(match (secret, key) {
            (Some(_), Some(_)) => {
                return Err(Error::config("set only one of MONEYHUB_CLIENT_SECRET and MONEYHUB_PRIVATE_KEY"))
            }
            (None, None) if b.tls_identity.is_some() => ClientAuth::TlsClientAuth,
            (None, None) => {
                return Err(Error::config(
                    "set MONEYHUB_CLIENT_SECRET, MONEYHUB_PRIVATE_KEY or MONEYHUB_TLS_CLIENT_CERT/KEY",
                ));
            }
            (Some(secret), None) => ClientAuth::secret(secret),
            (None, Some(key)) => {
                let t = key.trim_start();
                let mut key = if t.starts_with('{') || t.starts_with("-----BEGIN") {
                    PrivateKey::parse(&key)?
                } else {
                    PrivateKey::from_file(&key)?
                };
                if let Some(alg) = env("MONEYHUB_PRIVATE_KEY_ALG") {
                    key = key.with_alg(alg.parse::<SigningAlg>()?)?;
                }
                if let Some(kid) = env("MONEYHUB_PRIVATE_KEY_KID") {
                    key = key.with_kid(kid);
                }
                ClientAuth::PrivateKey(key)
            }
        });
        if let Some(v) = env("MONEYHUB_REDIRECT_URI") {
            b = b.redirect_uri(v);
        }
        Ok(b)
    }

    /// The identity service's base URL (e.g. `https://identity.moneyhub.co.uk`; a trailing
    /// `/oidc` is tolerated). Endpoints come from its discovery document.
    pub fn identity_url(mut self, url: impl Into<String>) -> Self {
        self.identity_url = Some(url.into());
        self
    }

    /// The Data API URL: a host (the version path is added) or a full base ending in `/v2.0`,
    /// `/v3` or `/v3.0` (the version is taken from it).
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// The Data API version when [`api_url`](Self::api_url) names only a host (default v3).
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = Some(version);
        self
    }

    /// The API client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// How to authenticate at the token and PAR endpoints.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The redirect URI of the authorisation flows (must be registered with Moneyhub).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Timeout of ordinary calls (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.default = timeout;
        self
    }

    /// Timeout of calls that can start a provider fetch (default 120 s).
    pub fn long_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.long = timeout;
        self
    }

    /// All timeouts at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// How requests that are safe to repeat are retried.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The `User-Agent` header (default `moneyhub-rs/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The clock JWT times and the sync guard are checked against (default: system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The scopes requested per family of calls.
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// The manual-sync guard (default: [`DefaultSyncGuard`] in memory).
    pub fn sync_guard(mut self, guard: impl SyncGuard) -> Self {
        self.guard = Arc::new(guard);
        self
    }

    /// The manual-sync guard, shared with other clients.
    pub fn shared_sync_guard(mut self, guard: Arc<dyn SyncGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// How many batches of transaction ids are fetched at once (default 4).
    pub fn batch_concurrency(mut self, n: usize) -> Self {
        self.batch_concurrency = n;
        self
    }

    /// How long before expiry a cached token is replaced (default 60 s).
    pub fn token_refresh_margin(mut self, margin: Duration) -> Self {
        self.token_refresh_margin = margin;
        self
    }

    /// Clock tolerance on id_token `exp` (default 30 s).
    pub fn jwt_leeway(mut self, leeway: Duration) -> Self {
        self.jwt_leeway = leeway;
        self
    }

    /// How long the discovery document is cached (default 1 h).
    pub fn discovery_ttl(mut self, ttl: Duration) -> Self {
        self.discovery_ttl = ttl;
        self
    }

    /// How often a token naming an unknown `kid` may make the client fetch Moneyhub's JWKS
    /// again (default: at most once a minute, so forged `kid`s cannot flood the JWKS endpoint).
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }

    /// Default accepted distance between a webhook's `iat` and now (±10 minutes).
    pub fn webhook_iat_window(mut self, window: Duration) -> Self {
        self.webhook_iat_window = window;
        self
    }

    /// The registered request-object signing algorithm: `None` (the default) pushes plain
    /// parameters (alg `none`); `Some(alg)` pushes a request object (JAR) signed with the
    /// private key ([`ClientAuth::PrivateKey`]) and `alg`, which must fit the key.
    pub fn request_object_signing_alg(mut self, alg: Option<SigningAlg>) -> Self {
        self.request_object_alg = alg;
        self
    }

    /// Where user-bound tokens come from (default: client credentials with `sub`).
    pub fn user_tokens(mut self, source: UserTokens) -> Self {
        self.user_tokens = source;
        self
    }

    /// A TLS client certificate and key presented on every request (identity service and
    /// Data API): for `self_signed_tls_client_auth` ([`ClientAuth::TlsClientAuth`]) and for
    /// certificate-bound tokens beside another method.
    pub fn tls_client_identity(mut self, identity: TlsIdentity) -> Self {
        self.tls_identity = Some(identity);
        self
    }

    /// Extra CA certificates (PEM, one or more) trusted for the servers, on top of the
    /// platform's trust store (or of Mozilla's bundled roots with the `webpki-roots` cargo
    /// feature).
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pems.push(pem.into());
        self
    }

    /// Sends every request through this `reqwest::Client` (proxies, corporate CAs, a client
    /// certificate: configure them on it). It must not follow redirects
    /// (`redirect::Policy::none()`): the authorisation flows read redirects themselves.
    /// Cannot be combined with [`tls_client_identity`](Self::tls_client_identity) or
    /// [`add_root_certificates_pem`](Self::add_root_certificates_pem).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Builds the client. Fails on a missing client id or credentials, an invalid URL, or a
    /// combination Moneyhub would refuse (an algorithm that does not fit the key, a signed
    /// request object without a private key, `self_signed_tls_client_auth` without a
    /// certificate).
    pub fn build(self) -> Result<Client> {
        let http = self.http()?;
        let (config, guard) = self.resolve()?;
        Client::from_config(config, guard, http)
    }

    fn http(&self) -> Result<reqwest::Client> {
        if let Some(client) = &self.http_client {
            if self.tls_identity.is_some() || !self.ca_pems.is_empty() {
                return Err(Error::config(
                    "with http_client, configure the TLS client certificate and CA roots on that reqwest::Client",
                ));
            }
            return Ok(client.clone());
        }
        let mut roots = Vec::new();
        for pem in &self.ca_pems {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| Error::config("the CA certificate PEM holds no usable certificate"))?;
            if certs.is_empty() {
                return Err(Error::config("the CA certificate PEM holds no certificate"));
            }
            roots.extend(certs);
        }
        let identity = match &self.tls_identity {
            Some(identity) => Some(identity.checked_pem()?),
            None => None,
        };
        // Our own rustls set-up: the trust store is loaded on the first HTTPS handshake, not
        // for every client built (see transport/tls.rs).
        let tls = crate::transport::tls::client_config(roots, identity)?;
        reqwest::Client::builder()
            .connect_timeout(self.timeouts.connect)
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| Error::config_with("could not build the HTTP client", e))
    }

    fn resolve(self) -> Result<(Config, Arc<dyn SyncGuard>)> {
        let client_id = self.client_id.ok_or_else(|| Error::config("client id is not set"))?;
        if client_id.trim().is_empty() {
            return Err(Error::config("client id is empty"));
        }
        let auth = self
            .auth
            .ok_or_else(|| Error::config("client authentication (secret or private key) is not set"))?;
        if let ClientAuth::Secret(s) = &auth {
            if s.expose_secret().is_empty() {
                return Err(Error::config("the client secret is empty"));
            }
        }
        if matches!(auth, ClientAuth::TlsClientAuth)
            && self.tls_identity.is_none()
            && self.http_client.is_none()
        {
            return Err(Error::config(
                "self_signed_tls_client_auth needs a TLS client certificate and key (tls_client_identity)",
            ));
        }
        if let Some(alg) = self.request_object_alg {
            match &auth {
                ClientAuth::PrivateKey(key) if key.key_type() == alg.key_type() => {}
                ClientAuth::PrivateKey(key) => {
                    return Err(Error::config(format!(
                        "request objects signed with {alg} need {}, but the private key is {}",
                        alg.key_type(),
                        key.key_type()
                    )))
                }
                other => {
                    return Err(Error::config(format!(
                        "a request-object algorithm ({alg}) needs a private key, but the client authenticates with {}",
                        other.method()
                    )))
                }
            }
        }
        if self.user_tokens == UserTokens::JwtBearer && self.request_object_alg.is_none() {
            return Err(Error::config(
                "the jwt-bearer grant signs its assertion with the request-object algorithm: set request_object_signing_alg (and a private key)",
            ));
        }
        let identity_url = parse_identity_url(self.identity_url.as_deref().unwrap_or(DEFAULT_IDENTITY_URL))?;
        let (api_url, api_version) = parse_api_url(self.api_url.as_deref(), self.api_version)?;
        let redirect_uri = match self.redirect_uri {
            None => None,
            Some(r) => {
                let url = Url::parse(&r)
                    .map_err(|e| Error::config_with(format!("invalid redirect URI {r:?}"), e))?;
                if url.fragment().is_some() {
                    return Err(Error::config("the redirect URI must not have a fragment"));
                }
                Some(url)
            }
        };
        if self.batch_concurrency == 0 {
            return Err(Error::config("batch concurrency must be at least 1"));
        }
        let config = Config {
            identity_url,
            api_url,
            api_version,
            client_id,
            auth,
            redirect_uri,
            timeouts: self.timeouts,
            retry: self.retry,
            user_agent: self
                .user_agent
                .unwrap_or_else(|| format!("moneyhub-rs/{}", env!("CARGO_PKG_VERSION"))),
            clock: self.clock,
            scopes: self.scopes,
            batch_concurrency: self.batch_concurrency,
            token_refresh_margin: self.token_refresh_margin,
            jwt_leeway: self.jwt_leeway,
            discovery_ttl: self.discovery_ttl,
            jwks_refetch_interval: self.jwks_refetch_interval,
            webhook_iat_window: self.webhook_iat_window,
            request_object_alg: self.request_object_alg,
            user_tokens: self.user_tokens,
        };
        Ok((config, self.guard))
    }
}

fn http_url(raw: &str, what: &str) -> Result<Url> {
    let url =
        Url::parse(raw.trim()).map_err(|e| Error::config_with(format!("invalid {what} URL {raw:?}"), e))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(Error::config(format!("the {what} URL must be an http(s) URL, got {raw:?}")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!("the {what} URL must not have a query or fragment")));
    }
    Ok(url)
}

fn trimmed_path(url: &Url) -> String {
    url.path().trim_end_matches('/').to_owned()
}

fn parse_identity_url(raw: &str) -> Result<Url> {
    let mut url = http_url(raw, "identity")?;
    let mut path = trimmed_path(&url);
    if let Some(stripped) = path.strip_suffix("/oidc") {
        path = stripped.to_owned();
    }
    url.set_path(&path);
    Ok(url)
}

fn parse_api_url(raw: Option<&str>, version: Option<ApiVersion>) -> Result<(Url, ApiVersion)> {
    let mut url = http_url(raw.unwrap_or(DEFAULT_API_HOST), "API")?;
    let path = trimmed_path(&url);
    let (from_path, base) = if let Some(b) = path.strip_suffix("/v2.0") {
        (Some(ApiVersion::V2), b.to_owned())
    } else if let Some(b) = path.strip_suffix("/v3.0").or_else(|| path.strip_suffix("/v3")) {
        (Some(ApiVersion::V3), b.to_owned())
    } else {
        (None, path)
    };
    let resolved = match (from_path, version) {
        (Some(p), Some(v)) if p != v => {
            return Err(Error::config(format!("the API URL names {p:?} but api_version is {v:?}")));
        }
        (Some(p), _) => p,
        (None, v) => v.unwrap_or_default(),
    };
    url.set_path(&format!("{base}/{}", resolved.path()));
    Ok((url, resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_identity_url("http://h:1/oidc/").unwrap().as_str(), "http://h:1/");
        assert_eq!(parse_api_url(Some("http://h/v2.0/"), None).unwrap().0.as_str(), "http://h/v2.0");
        assert_eq!(parse_api_url(Some("http://h"), None).unwrap().0.as_str(), "http://h/v3");
        assert_eq!(parse_api_url(Some("http://h/"), Some(ApiVersion::V2)).unwrap().1, ApiVersion::V2);
        assert!(parse_api_url(Some("http://h/v3"), Some(ApiVersion::V2)).is_err());
        assert!(parse_api_url(Some("ftp://h"), None).is_err());
    }
}
