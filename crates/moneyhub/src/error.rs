//! The crate's single error type.
//!
//! Every failure is an [`Error`], whose [`ErrorKind`] says what went wrong and, through
//! [`Error::sent`], whether the request never left the client ([`Sent::Never`]: validation,
//! configuration, the manual-sync guard), may have reached Moneyhub ([`Sent::Maybe`]: transport
//! failures and timeouts) or was answered ([`Sent::Answered`]: API and OAuth errors, bodies that
//! could not be decoded, rejected id_tokens).
//!
//! Messages never contain secrets: no client secret, key material, access token,
//! authorisation code or id_token, no request body and no full URL (routes are reported as
//! templates such as `/users/{userId}/connections`).
//!
//! Text that comes from a server (an error body's `message`, `code`, `correlationId` and
//! `details`, an OAuth `error_description`, a decode error's detail) is passed through
//! [`redact_credentials`] when it is captured, together with the exact credentials the request
//! carried (its bearer token, the client secret and its `Basic` value, a client assertion, form
//! values such as codes and refresh tokens): a server, proxy or gateway that echoes the request
//! into its error body cannot make a secret reach a message, a log line or `Debug` output.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::guard::NotBefore;

/// Whether a failed operation reached Moneyhub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sent {
    /// Nothing was sent: the request was refused locally (invalid argument, configuration,
    /// manual-sync guard) or the connection could not even be opened. Safe to fix and retry.
    Never,
    /// The request may have reached Moneyhub, but no answer arrived (connection dropped,
    /// timeout). A non-idempotent request may have taken effect.
    Maybe,
    /// Moneyhub (or the identity service) answered.
    Answered,
}

/// An error of the Data API or the identity service's REST routes (`{code, message,
/// correlationId, retryAfterSecs?}`), with where it happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP method.
    pub method: String,
    /// Route template, e.g. `/users/{userId}/connections`.
    pub route: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Moneyhub's error `code` (`TooManyRequests`, `NotFound`, …), when the body had one.
    pub code: Option<String>,
    /// Moneyhub's `message`.
    pub message: Option<String>,
    /// Request id to quote to Moneyhub support.
    pub correlation_id: Option<String>,
    /// How long to wait before retrying: `Retry-After` or `retryAfterSecs`.
    pub retry_after: Option<Duration>,
    /// Free-form `details`.
    pub details: Option<serde_json::Value>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: HTTP {}", self.method, self.route, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {}", shorten(message))?;
        }
        if let Some(after) = self.retry_after {
            write!(f, " (retry after {} s)", after.as_secs())?;
        }
        if let Some(id) = &self.correlation_id {
            write!(f, " [correlationId {id}]")?;
        }
        Ok(())
    }
}

/// An OAuth 2.0 error (`{error, error_description}`) from the token or PAR endpoint, or
/// returned on the authorisation callback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthError {
    /// HTTP method (`GET` for a callback).
    pub method: String,
    /// Route template, e.g. `/oidc/token`.
    pub route: &'static str,
    /// HTTP status (`None` for an error delivered on the authorisation callback).
    pub status: Option<u16>,
    /// OAuth error code (`invalid_grant`, `invalid_client`, `access_denied`, …).
    pub error: String,
    /// `error_description`.
    pub description: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.method, self.route)?;
        if let Some(status) = self.status {
            write!(f, "HTTP {status} ")?;
        }
        write!(f, "{}", self.error)?;
        if let Some(d) = &self.description {
            write!(f, ": {}", shorten(d))?;
        }
        Ok(())
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client is misconfigured (missing client id, unreadable key, bad URL, …). Nothing
    /// was sent.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// An argument was refused before anything was sent (a malformed transaction id, a limit
    /// above 1000, an expiry more than 90 days ahead, a callback `state` that does not match…).
    #[error("invalid argument: {message}")]
    Validation {
        /// What is wrong, naming the offending value.
        message: String,
    },

    /// The manual-sync guard refused a `POST /sync` before it was sent.
    #[error(transparent)]
    Guard(NotBefore),

    /// The request failed in transit.
    #[error("{method} {route}: request failed")]
    Transport {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// Whether the request may have reached the server.
        sent: Sent,
        /// The HTTP client's error (its URL removed).
        #[source]
        source: reqwest::Error,
    },

    /// No answer arrived in time.
    #[error("{method} {route}: no answer within {} s", after.as_secs())]
    Timeout {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// The timeout that applied.
        after: Duration,
        /// The HTTP client's error (its URL removed).
        #[source]
        source: reqwest::Error,
    },

    /// Moneyhub answered with an error.
    #[error("{0}")]
    Api(ApiError),

    /// A request was refused with 401 twice: once with the cached token and once more with a
    /// freshly issued one. The client's credentials or scopes are not accepted.
    #[error("{0} (rejected again with a freshly issued token)")]
    Unauthorized(ApiError),

    /// The token or PAR endpoint (or the authorisation callback) answered with an OAuth error.
    #[error("{0}")]
    OAuth(OAuthError),

    /// Moneyhub answered, but the body was not what the API documents.
    #[error("{method} {route}: could not decode the response (HTTP {status}) at `{path}`: {detail}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Route template.
        route: &'static str,
        /// HTTP status of the answer.
        status: u16,
        /// JSON path of the field that failed, e.g. `data[3].amount.value` (`.` = the root).
        path: String,
        /// What was wrong (for token responses only the category and position, never values).
        detail: String,
        /// The JSON error (absent for token responses, whose values must not be echoed).
        #[source]
        source: Option<serde_json::Error>,
    },

    /// A resource Moneyhub has no route for was looked up in a listing and is not there
    /// (e.g. a connection id not among the user's connections).
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for (`connection`, …).
        what: &'static str,
        /// Its id.
        id: String,
    },

    /// The authorisation callback or id_token failed a check (state, issuer, signature,
    /// audience, expiry, nonce, algorithm…).
    #[error("authorisation failed: {message}")]
    Auth {
        /// Which check failed.
        message: String,
        /// Whether it was detected before the code exchange (`Never`) or on its answer.
        sent: Sent,
    },

    /// A webhook could not be verified.
    #[error("webhook rejected: {message}")]
    Webhook {
        /// Which check failed.
        message: String,
        /// The underlying error (e.g. an invalid payload), if any.
        #[source]
        source: Option<moneyhub_types::Error>,
    },

    /// A sync did not finish before the deadline of
    /// [`Connections::wait_for_sync`](crate::Connections::wait_for_sync).
    #[error("sync {sync_id} did not finish within {} s", waited.as_secs())]
    SyncPending {
        /// The sync.
        sync_id: String,
        /// How long was waited.
        waited: Duration,
    },
}

/// The crate's error: a boxed [`ErrorKind`] with accessors for what callers decide on.
///
/// ```
/// # async fn demo(client: moneyhub::Client, user: moneyhub::UserId) {
/// match client.users().get(&user).await {
///     Ok(u) => println!("{}", u.user_id),
///     Err(e) if e.is_not_found() => println!("no such user"),
///     Err(e) if e.is_retryable() => println!("try again in {:?}", e.retry_after()),
///     Err(e) => println!("failed ({:?}): {e}", e.sent()),
/// }
/// # }
/// ```
pub struct Error {
    kind: Box<ErrorKind>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind: Box::new(kind) }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Validation { message: message.into() })
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config { message: message.into(), source: None })
    }

    pub(crate) fn config_with(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::new(ErrorKind::Config { message: message.into(), source: Some(Box::new(source)) })
    }

    pub(crate) fn auth(message: impl Into<String>, sent: Sent) -> Self {
        Error::new(ErrorKind::Auth { message: message.into(), sent })
    }

    pub(crate) fn webhook(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Webhook { message: message.into(), source: None })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// For an error of [`WebhookVerifier::verify`](crate::WebhookVerifier::verify): whether
    /// the webhook was refused (a bad signature, wrong claims, an unsupported form, an invalid
    /// payload: answer `401`, the sender should not retry it) rather than left unchecked
    /// because Moneyhub's JWKS or identity metadata could not be fetched or read (a transport
    /// failure, a timeout, an API error, an unreadable answer: answer `503`, so the sender
    /// retries later).
    pub fn is_verification_failure(&self) -> bool {
        !matches!(
            &*self.kind,
            ErrorKind::Transport { .. }
                | ErrorKind::Timeout { .. }
                | ErrorKind::Api(_)
                | ErrorKind::Decode { .. }
        )
    }

    /// Consumes the error, returning its kind.
    pub fn into_kind(self) -> ErrorKind {
        *self.kind
    }

    /// Whether the request never left the client, may have reached Moneyhub, or was answered.
    pub fn sent(&self) -> Sent {
        match &*self.kind {
            ErrorKind::Config { .. } | ErrorKind::Validation { .. } | ErrorKind::Guard(_) => Sent::Never,
            ErrorKind::Webhook { .. } => Sent::Never,
            ErrorKind::Transport { sent, .. } => *sent,
            ErrorKind::Timeout { .. } => Sent::Maybe,
            ErrorKind::Auth { sent, .. } => *sent,
            ErrorKind::Api(_)
            | ErrorKind::Unauthorized(_)
            | ErrorKind::OAuth(_)
            | ErrorKind::Decode { .. }
            | ErrorKind::NotFound { .. }
            | ErrorKind::SyncPending { .. } => Sent::Answered,
        }
    }

    /// The HTTP status of an answered error.
    pub fn status(&self) -> Option<u16> {
        match &*self.kind {
            ErrorKind::Api(e) | ErrorKind::Unauthorized(e) => Some(e.status),
            ErrorKind::OAuth(e) => e.status,
            ErrorKind::Decode { status, .. } => Some(*status),
            ErrorKind::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// The route template of the request that failed (`/users/{userId}/connections`), when a
    /// request was involved.
    pub fn route(&self) -> Option<&'static str> {
        match &*self.kind {
            ErrorKind::Transport { route, .. }
            | ErrorKind::Timeout { route, .. }
            | ErrorKind::Decode { route, .. } => Some(route),
            ErrorKind::Api(e) | ErrorKind::Unauthorized(e) => Some(e.route),
            ErrorKind::OAuth(e) => Some(e.route),
            _ => None,
        }
    }

    /// Moneyhub's error `code` (`TooManyRequests`, …) or the OAuth `error`
    /// (`invalid_grant`, …).
    pub fn code(&self) -> Option<&str> {
        match &*self.kind {
            ErrorKind::Api(e) | ErrorKind::Unauthorized(e) => e.code.as_deref(),
            ErrorKind::OAuth(e) => Some(&e.error),
            _ => None,
        }
    }

    /// Moneyhub's `correlationId`, to quote to support.
    pub fn correlation_id(&self) -> Option<&str> {
        match &*self.kind {
            ErrorKind::Api(e) | ErrorKind::Unauthorized(e) => e.correlation_id.as_deref(),
            _ => None,
        }
    }

    /// Whether repeating the same request later may succeed: transport failures, timeouts,
    /// and HTTP 408, 429, 500, 502, 503, 504. (The client already retried requests that are
    /// safe to repeat; this is for the caller's own policy, e.g. for `POST /sync`.)
    pub fn is_retryable(&self) -> bool {
        match &*self.kind {
            ErrorKind::Transport { .. } | ErrorKind::Timeout { .. } | ErrorKind::SyncPending { .. } => true,
            ErrorKind::Api(e) => is_retryable_status(e.status),
            ErrorKind::OAuth(e) => e.status.is_some_and(is_retryable_status),
            _ => false,
        }
    }

    /// How long the server asked to wait (`Retry-After` / `retryAfterSecs`).
    pub fn retry_after(&self) -> Option<Duration> {
        match &*self.kind {
            ErrorKind::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// Whether the resource does not exist: HTTP 404, or an id not found in a listing.
    pub fn is_not_found(&self) -> bool {
        matches!(&*self.kind, ErrorKind::NotFound { .. }) || self.status() == Some(404)
    }

    /// For a sync refused by the manual-sync guard: the earliest time it will be allowed.
    pub fn not_before(&self) -> Option<DateTime<Utc>> {
        match &*self.kind {
            ErrorKind::Guard(nb) => Some(nb.not_before),
            _ => None,
        }
    }
}

pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The kind holds no secrets (see the module docs), so its derived Debug is safe.
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Skip the kind itself (its Display is ours): go straight to its source.
        std::error::Error::source(&*self.kind)
    }
}

/// Shortens server-provided text for an error message.
fn shorten(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Patterns of text that is, or looks like, a credential: `Bearer`/`Basic` values, JWTs
/// (tokens, id_tokens, client assertions, request objects) and `key=value` / `"key": "value"`
/// pairs whose key names a secret.
fn credential_patterns() -> &'static [(regex::Regex, &'static str)] {
    static PATTERNS: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> = std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // `Authorization: Bearer <token>`, `Basic <base64>` (any case, any amount of blanks).
            (r"(?i)\b(bearer|basic)([ \t]+)[A-Za-z0-9._~+/=-]+", "${1}${2}[redacted]"),
            // A JWS (3 parts) or JWE (5 parts): base64url JSON headers start with `eyJ`.
            (r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){1,4}", REDACTED),
            // Form, query, JSON or header style pairs naming a secret.
            (
                r#"(?i)\b(client_secret|clientsecret|client_assertion|assertion|access_token|accesstoken|refresh_token|refreshtoken|id_token|idtoken|code_verifier|password|passwd|api[_-]?key|x-api-key|private_key|secret)(\\?["']?[ \t]*[:=][ \t]*\\?["']?)[^&\s"',;}\\]+"#,
                "${1}${2}[redacted]",
            ),
        ]
        .into_iter()
        .map(|(re, with)| (regex::Regex::new(re).expect("a valid built-in pattern"), with))
        .collect()
    })
}

/// Removes from `text` anything that looks like a credential: `Bearer` and `Basic` values,
/// JWTs (access tokens, id_tokens, client assertions) and `key=value` or `"key": "value"` pairs
/// whose key names a secret (`client_secret`, `client_assertion`, `access_token`,
/// `refresh_token`, `id_token`, `code_verifier`, `password`, `api_key`, `secret`, …). Each is
/// replaced with [`REDACTED`].
///
/// The client applies this to every text a server sends back in an error (together with the
/// exact credentials the request carried), so [`Error`]'s `Display` and `Debug` are already
/// clean; use it for server text you print yourself.
///
/// ```
/// let echoed = "denied: Authorization: Basic bW9jazpzZWNyZXQ= client_secret=hunter2 \
///               token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
/// assert_eq!(
///     moneyhub::redact_credentials(echoed),
///     "denied: Authorization: Basic [redacted] client_secret=[redacted] token [redacted]"
/// );
/// ```
pub fn redact_credentials(text: &str) -> String {
    redact(text, &[])
}

/// [`redact_credentials`], and every occurrence of each of `exact` (the credentials a request
/// carried) replaced too. Longer values first, so a value containing another is removed whole.
pub(crate) fn redact(text: &str, exact: &[&str]) -> String {
    let mut out = text.to_owned();
    let mut exact: Vec<&str> = exact.iter().copied().filter(|s| !s.is_empty()).collect();
    exact.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for value in exact {
        if out.contains(value) {
            out = out.replace(value, REDACTED);
        }
    }
    for (re, with) in credential_patterns() {
        if let std::borrow::Cow::Owned(o) = re.replace_all(&out, *with) {
            out = o;
        }
    }
    out
}

/// [`redact`] over every string of a JSON value (keys included).
pub(crate) fn redact_json(value: serde_json::Value, exact: &[&str]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(redact(&s, exact)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| redact_json(v, exact)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (redact(&k, exact), redact_json(v, exact))).collect())
        }
        other => other,
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
