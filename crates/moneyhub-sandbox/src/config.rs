//! How a sandbox is set up: its address, seed, registered API clients and webhook target.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};

/// The default client id registered in every sandbox.
pub const DEFAULT_CLIENT_ID: &str = "sandbox-client";
/// The default client secret of [`DEFAULT_CLIENT_ID`]. Not a secret: the sandbox is local.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-secret";

/// Everything a sandbox needs to start. `SandboxConfig::default()` gives a seeded sandbox on
/// `127.0.0.1:0` with one client (`sandbox-client` / `sandbox-secret`) and a clock that
/// follows the wall clock.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Address to listen on. Port 0 picks a free port (the handle reports the real one).
    pub bind: SocketAddr,
    /// Seed of all generated data: the same seed gives the same catalogue, ids and transactions.
    pub seed: u64,
    /// API clients known to the identity service. Must not be empty.
    pub clients: Vec<ClientRegistration>,
    /// Where webhooks go (per sandbox; every registered client shares it), if anywhere.
    pub webhook: Option<WebhookTarget>,
    /// How the sandbox's clock behaves.
    pub clock: ClockMode,
    /// Share of pending transactions that post under a *new* id (deleted + new) rather than in
    /// place (updated, same id). Moneyhub does both; the default (0.0) is the in-place path the
    /// reference names as the default. Clamped to `0.0..=1.0`.
    pub pending_replace_ratio: f64,
    /// How long after a new connection its background history fetch (everything older than
    /// the first 3 months) runs, in virtual time. In real-time mode the engine's ticker runs
    /// it (within a second of being due); with a frozen clock, advancing past it does.
    pub history_delay: std::time::Duration,
    /// How the server treats connections: timeouts, the connection cap, the graceful
    /// shutdown bound, TLS (see [`moneyhub_http::ServeConfig`]). The default is
    /// `ServeConfig::default()` with a request timeout of 5 minutes (long control calls).
    pub http: moneyhub_http::ServeConfig,
    /// A bearer token every control request (`/__sandbox/...`) must carry
    /// (`Authorization: Bearer <token>`). Required when `bind` is not a loopback address;
    /// with it, the `Host` check of the control API is lifted (the token is the defence), as
    /// a sandbox in a container is reached under names of its own.
    pub control_token: Option<String>,
    /// Allow a webhook target whose host is not a loopback address (`127.0.0.0/8`, `::1`,
    /// `localhost`). Off by default, so that a control request cannot send the sandbox's
    /// webhooks to another machine.
    pub allow_remote_webhooks: bool,
    /// The base URL clients reach the sandbox at, when it is not `http://` + the bound
    /// address (behind a container's name or a proxy). Discovery, the issuer and every URL
    /// the sandbox hands out use it. Without it, a sandbox bound to an unspecified address
    /// (`0.0.0.0`, `::`) names itself `http://127.0.0.1:PORT`.
    pub public_url: Option<String>,
    /// A scenario loaded when the sandbox starts, and again after every reset
    /// (`POST /__sandbox/reset`): see [`crate::scenario`]. Its clock start replaces
    /// [`SandboxConfig::clock`]'s.
    pub scenario: Option<crate::scenario::Scenario>,
    /// What `/oidc/auth` does with a valid request: consent at once and redirect (the
    /// default, what tests and programs want), or show the consent pages a person clicks
    /// through. Changeable at runtime through `PUT /__sandbox/consent`.
    pub consent: ConsentMode,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            clients: vec![ClientRegistration::default()],
            webhook: None,
            clock: ClockMode::default(),
            pending_replace_ratio: 0.0,
            history_delay: std::time::Duration::from_secs(1),
            // Control calls (advancing the clock by months, flushing thousands of webhooks)
            // may legitimately take long: a request gets 5 minutes, not the default 30 s.
            http: moneyhub_http::ServeConfig::default().request_timeout(std::time::Duration::from_secs(300)),
            control_token: None,
            allow_remote_webhooks: false,
            public_url: None,
            scenario: None,
            consent: ConsentMode::Instant,
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("bind", &self.bind)
            .field("seed", &self.seed)
            .field("clients", &self.clients)
            .field("webhook", &self.webhook)
            .field("clock", &self.clock)
            .field("pending_replace_ratio", &self.pending_replace_ratio)
            .field("history_delay", &self.history_delay)
            .field("http", &self.http)
            .field("control_token", &self.control_token.as_ref().map(|_| "[redacted]"))
            .field("allow_remote_webhooks", &self.allow_remote_webhooks)
            .field("public_url", &self.public_url)
            .field("scenario", &self.scenario.as_ref().map(|s| s.name()))
            .field("consent", &self.consent)
            .finish()
    }
}

/// An API client registered with the sandbox's identity service, as the Moneyhub Admin portal
/// would hold it.
#[derive(Clone)]
pub struct ClientRegistration {
    /// The client id.
    pub client_id: String,
    /// The secret for `client_secret_basic` / `client_secret_post`; `None` disables both.
    pub client_secret: Option<String>,
    /// The client's public JWK set (`{"keys": [...]}`), for `private_key_jwt` assertions,
    /// signed request objects and the jwt-bearer grant.
    pub jwks: Option<serde_json::Value>,
    /// Registered redirect URIs. Empty means: any `http://` loopback URL is accepted.
    pub redirect_uris: Vec<String>,
    /// The registered request-object signing algorithm: `none` (unsigned request objects only)
    /// or a JWS algorithm (RS256/384/512, PS256/384/512, ES256/384/512) that request objects
    /// and jwt-bearer assertions must be signed with. A signed algorithm also makes PAR refuse
    /// plain parameters (`400 invalid_request`), as Moneyhub does.
    pub request_object_signing_alg: String,
    /// A self-signed TLS client certificate (PEM) registered for
    /// `self_signed_tls_client_auth` (RFC 8705). When set, the token and PAR endpoints require
    /// a TLS connection presenting exactly this certificate: it authenticates the client on
    /// its own (only `client_id` in the body), or beside a secret or assertion. Every access
    /// token issued is then bound to it (`cnf` `x5t#S256`), and the REST and Data API routes
    /// answer 401 to a bound token over a connection without that certificate. Needs a sandbox
    /// served over TLS ([`SandboxConfig::http`]).
    pub tls_client_cert: Option<String>,
}

impl ClientRegistration {
    /// The SHA-256 thumbprint (base64url, the `x5t#S256` of RFC 8705) of the registered TLS
    /// client certificate, if any and if it is PEM holding a certificate.
    pub fn tls_cert_thumbprint(&self) -> Option<String> {
        use rustls_pki_types::pem::PemObject;
        let pem = self.tls_client_cert.as_deref()?;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
        Some(crate::keys::thumbprint(der.as_ref()))
    }
}

impl Default for ClientRegistration {
    fn default() -> Self {
        ClientRegistration {
            client_id: DEFAULT_CLIENT_ID.to_string(),
            client_secret: Some(DEFAULT_CLIENT_SECRET.to_string()),
            jwks: None,
            redirect_uris: Vec::new(),
            request_object_signing_alg: "none".to_string(),
            tls_client_cert: None,
        }
    }
}

impl std::fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("jwks", &self.jwks.as_ref().map(|_| "[public keys]"))
            .field("redirect_uris", &self.redirect_uris)
            .field("request_object_signing_alg", &self.request_object_signing_alg)
            .field("tls_client_cert", &self.tls_client_cert.as_ref().map(|_| "[certificate]"))
            .finish()
    }
}

/// The format webhooks are delivered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// `application/json` envelope `{id, eventType, userId, payload}` (Moneyhub's default).
    #[default]
    Json,
    /// `application/jwt`: an RS256 Security Event Token signed with the key in `/oidc/certs`.
    Jwt,
}

impl std::str::FromStr for WebhookFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(WebhookFormat::Json),
            "jwt" => Ok(WebhookFormat::Jwt),
            other => Err(format!("unknown webhook format {other:?}: expected json or jwt")),
        }
    }
}

/// Where and how webhooks are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The receiver's URL.
    pub url: String,
    /// The delivery format.
    pub format: WebhookFormat,
}

/// How the sandbox clock starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// Follow the wall clock (time only jumps when told to advance). What `sandbox serve` uses.
    #[default]
    RealTime,
    /// Stand still at the given instant until advanced: what tests use for determinism.
    Frozen(DateTime<Utc>),
}

/// How the authorisation endpoint (`/oidc/auth`) obtains the user's consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConsentMode {
    /// The user is taken to have logged in and consented: the browser goes straight back to
    /// the client with a code. What tests and the CLI use.
    #[default]
    Instant,
    /// Server-rendered pages a person clicks through: a bank chooser for group scopes, the
    /// bank's login with mock credentials and the accounts to share, the consent summary, and
    /// pages of their own for reauth, refresh and reconsent (see the crate README).
    Interactive,
}

impl ConsentMode {
    /// The name used by the CLI flag and the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMode::Instant => "instant",
            ConsentMode::Interactive => "interactive",
        }
    }
}

impl std::str::FromStr for ConsentMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "instant" => Ok(ConsentMode::Instant),
            "interactive" => Ok(ConsentMode::Interactive),
            other => Err(format!("unknown consent mode {other:?}: expected instant or interactive")),
        }
    }
}
