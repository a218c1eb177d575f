//! One HTTP call: building it, sending it with retries, the 401-then-fresh-token retry, the
//! tracing span, and turning error answers into [`Error`]s.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use tracing::{field, Instrument};
use url::Url;

use moneyhub_types::{ApiErrorBody, OAuthErrorBody};

use super::retry::retry_after;
use super::tokens::TokenKey;
use crate::config::ClientAuth;
use crate::error::{is_retryable_status, ApiError, Error, ErrorKind, OAuthError, Result, Sent};
use crate::secret::Secret;
use crate::ClientInner;

/// `client_assertion_type` of `private_key_jwt`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How a call authenticates.
pub(crate) enum CallAuth {
    /// Not at all (discovery, JWKS, catalogues).
    None,
    /// A client-credentials bearer token for this user and scope.
    Bearer(TokenKey),
    /// Client authentication (token and PAR endpoints); `audience` is the assertion `aud`.
    Client { audience: String },
}

/// A request body.
pub(crate) enum Body {
    None,
    Json(Vec<u8>),
    Form(Vec<(&'static str, String)>),
}

/// Which error body shape the endpoint answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Errors {
    /// `{code, message, correlationId}`.
    Api,
    /// `{error, error_description}`.
    OAuth,
}

/// A call to make, built from its [`Route`](super::route::Route) by
/// [`ClientInner::request`]. Not `Debug`: form bodies hold codes and verifiers.
pub(crate) struct Call {
    pub method: Method,
    pub route: &'static str,
    pub url: Url,
    pub body: Body,
    pub auth: CallAuth,
    pub retry: bool,
    pub timeout: Duration,
    pub errors: Errors,
    /// The answer holds tokens: decode errors must not echo values.
    pub sensitive: bool,
}

impl Call {
    /// Authenticates as the client (token and PAR endpoints); `audience` is the assertion's
    /// `aud` (the token endpoint).
    pub fn client_auth(mut self, audience: &str) -> Self {
        self.auth = CallAuth::Client { audience: audience.to_owned() };
        self
    }

    pub fn query(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.url.query_pairs_mut().append_pair(key, value.as_ref());
        self
    }

    pub fn json(mut self, body: &impl Serialize) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::validation(format!("could not encode the request body: {e}")))?;
        self.body = Body::Json(bytes);
        Ok(self)
    }

    pub fn form(mut self, pairs: Vec<(&'static str, String)>) -> Self {
        self.body = Body::Form(pairs);
        self
    }
}

/// An HTTP answer (any status).
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub method: Method,
    pub route: &'static str,
    pub sensitive: bool,
    /// What the request carried, to redact from an error body that echoes it.
    pub credentials: Credentials,
}

/// The credentials one request carried: its bearer token, the client secret with its `Basic`
/// value, a client assertion, secret form values (codes, verifiers, refresh tokens). Kept with
/// the answer so that error text echoing any of them is redacted (see
/// [`redact_credentials`](crate::redact_credentials)). Not `Debug`.
#[derive(Default, Clone)]
pub(crate) struct Credentials(Vec<Secret>);

impl Credentials {
    fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.0.push(Secret::new(value));
        }
    }

    /// A secret as sent and in the encodings an echo may show it in (form/percent-encoded).
    fn add_encoded(&mut self, value: &str) {
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        if form != value {
            self.add(form.replace('+', "%20"));
            self.add(form);
        }
        self.add(value);
    }

    /// `text` with every credential of the request, and anything that looks like one, removed.
    pub fn redact(&self, text: &str) -> String {
        crate::error::redact(text, &self.values())
    }

    fn values(&self) -> Vec<&str> {
        self.0.iter().map(Secret::expose_secret).collect()
    }
}

/// Form fields whose values are secrets (echoed values are redacted).
const SECRET_FORM_FIELDS: &[&str] = &[
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "request",
    "id_token_hint",
];

impl Reply {
    /// Decodes the body, naming the failing JSON path.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        moneyhub_types::decode(&self.body).map_err(|e| self.decode_error(e))
    }

    pub fn decode_error(&self, e: moneyhub_types::Error) -> Error {
        let (path, source) = match e {
            moneyhub_types::Error::Decode { path, source } => (path, source),
            other => {
                return Error::new(ErrorKind::Decode {
                    method: self.method.to_string(),
                    route: self.route,
                    status: self.status,
                    path: ".".into(),
                    detail: self.credentials.redact(&other.to_string()),
                    source: None,
                })
            }
        };
        let (detail, source) = if self.sensitive {
            (
                format!("{:?} error at line {} column {}", source.classify(), source.line(), source.column()),
                None,
            )
        } else {
            // serde's message may quote a value of the body: when that value is (or looks like)
            // a credential, only the redacted text is kept, not the error that holds it.
            let text = source.to_string();
            let clean = self.credentials.redact(&text);
            if clean == text {
                (text, Some(source))
            } else {
                (clean, None)
            }
        };
        Error::new(ErrorKind::Decode {
            method: self.method.to_string(),
            route: self.route,
            status: self.status,
            path,
            detail,
            source,
        })
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error this answer stands for.
    fn error(&self, errors: Errors) -> Error {
        if errors == Errors::OAuth {
            if let Ok(body) = serde_json::from_slice::<OAuthErrorBody>(&self.body) {
                return Error::new(ErrorKind::OAuth(OAuthError {
                    method: self.method.to_string(),
                    route: self.route,
                    status: Some(self.status),
                    error: self.credentials.redact(&body.error),
                    description: body.error_description.map(|d| self.credentials.redact(&d)),
                }));
            }
        }
        Error::new(ErrorKind::Api(self.api_error()))
    }

    fn api_error(&self) -> ApiError {
        let body = serde_json::from_slice::<ApiErrorBody>(&self.body).ok();
        let retry_after = retry_after(&self.headers, body.as_ref().and_then(|b| b.retry_after_secs));
        let reason = reqwest::StatusCode::from_u16(self.status).ok().and_then(|s| s.canonical_reason());
        match body {
            Some(b) => {
                let exact = self.credentials.values();
                let clean = |s: String| crate::error::redact(&s, &exact);
                ApiError {
                    method: self.method.to_string(),
                    route: self.route,
                    status: self.status,
                    code: Some(clean(b.code)),
                    message: b.message.map(clean),
                    correlation_id: b.correlation_id.map(clean),
                    retry_after,
                    details: b.details.map(|d| crate::error::redact_json(d, &exact)),
                }
            }
            // Not Moneyhub's shape (a proxy's page, an OAuth body…): the raw body is not
            // echoed, only the status's reason.
            None => ApiError {
                method: self.method.to_string(),
                route: self.route,
                status: self.status,
                code: None,
                message: reason.map(str::to_owned),
                correlation_id: None,
                retry_after,
                details: None,
            },
        }
    }
}

/// Runs `work` in a span naming the call (method, route template, status, attempts,
/// duration: never URLs, bodies or headers).
async fn traced(call: &Call, work: impl std::future::Future<Output = Result<(Reply, u32)>>) -> Result<Reply> {
    let span = tracing::info_span!(
        "moneyhub.request",
        method = %call.method,
        route = call.route,
        status = field::Empty,
        attempts = field::Empty,
        duration_ms = field::Empty,
    );
    let started = Instant::now();
    let result = work.instrument(span.clone()).await;
    span.record("duration_ms", started.elapsed().as_millis() as u64);
    match &result {
        Ok((reply, attempts)) => {
            span.record("status", reply.status);
            span.record("attempts", attempts);
        }
        Err(e) => {
            if let Some(status) = e.status() {
                span.record("status", status);
            }
            span.in_scope(|| tracing::debug!(error = %e, "request failed"));
        }
    }
    result.map(|(reply, _)| reply)
}

/// What one attempt produced.
enum Outcome {
    Reply(Reply),
    Failed(reqwest::Error),
}

impl ClientInner {
    /// Sends a call: with its bearer token when it has one (a 401 drops the cached token and
    /// the call is repeated once with a fresh one), retrying what is safe to retry. Error
    /// answers become [`Error`]s; success answers are returned.
    pub(crate) async fn execute(&self, call: Call) -> Result<Reply> {
        traced(&call, self.execute_inner(&call)).await
    }

    /// [`execute`](Self::execute) for calls without a bearer token (discovery, JWKS, the
    /// token endpoint itself): it never needs the token cache.
    pub(crate) async fn execute_plain(&self, call: Call) -> Result<Reply> {
        traced(&call, self.execute_unauthenticated(&call)).await
    }

    async fn execute_unauthenticated(&self, call: &Call) -> Result<(Reply, u32)> {
        let (reply, attempts) = self.send(call, None).await?;
        if reply.is_success() {
            Ok((reply, attempts))
        } else {
            Err(reply.error(call.errors))
        }
    }

    async fn execute_inner(&self, call: &Call) -> Result<(Reply, u32)> {
        let CallAuth::Bearer(key) = &call.auth else {
            return self.execute_unauthenticated(call).await;
        };
        let token = self.access_token(key).await?;
        let (reply, attempts) = self.send(call, Some(&token)).await?;
        if reply.status != 401 {
            return if reply.is_success() { Ok((reply, attempts)) } else { Err(reply.error(call.errors)) };
        }
        tracing::debug!("401 with the cached token: fetching a new one and trying once more");
        self.invalidate_token(key, &token).await;
        let token = self.access_token(key).await?;
        let (reply, more) = self.send(call, Some(&token)).await?;
        let attempts = attempts + more;
        match reply.status {
            s if (200..300).contains(&s) => Ok((reply, attempts)),
            401 => {
                self.invalidate_token(key, &token).await;
                Err(Error::new(ErrorKind::Unauthorized(reply.api_error())))
            }
            _ => Err(reply.error(call.errors)),
        }
    }

    /// Sends with retries. Returns the last answer whatever its status; errors only when no
    /// answer arrived.
    pub(crate) async fn send(&self, call: &Call, bearer: Option<&Secret>) -> Result<(Reply, u32)> {
        let policy = &self.config.retry;
        let mut attempt: u32 = 0;
        // Whether an earlier attempt may have reached the server without an answer.
        let mut maybe_sent = false;
        loop {
            attempt += 1;
            let (request, credentials) = self.build(call, bearer)?;
            let outcome = match self.http.execute(request).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => Outcome::Reply(Reply {
                            status,
                            headers,
                            body,
                            method: call.method.clone(),
                            route: call.route,
                            sensitive: call.sensitive,
                            credentials,
                        }),
                        Err(e) => Outcome::Failed(e),
                    }
                }
                Err(e) => Outcome::Failed(e),
            };
            let may_retry = call.retry && attempt <= policy.max_retries;
            match outcome {
                Outcome::Reply(mut reply) => {
                    if reply.status == 404 && maybe_sent && call.method == Method::DELETE {
                        // An earlier attempt probably deleted it: the caller's goal is met.
                        tracing::debug!(
                            "404 on a repeated DELETE after an unanswered attempt: treated as deleted"
                        );
                        reply.status = 204;
                        reply.body = Bytes::new();
                    }
                    if !(may_retry && is_retryable_status(reply.status)) {
                        return Ok((reply, attempt));
                    }
                    let body_secs = serde_json::from_slice::<serde_json::Value>(&reply.body)
                        .ok()
                        .and_then(|v| v.get("retryAfterSecs").and_then(serde_json::Value::as_u64));
                    let delay = match retry_after(&reply.headers, body_secs) {
                        Some(wait) if wait > policy.max_retry_after => {
                            tracing::debug!(
                                status = reply.status,
                                wait_s = wait.as_secs(),
                                "server asks to wait longer than the retry cap: giving up"
                            );
                            return Ok((reply, attempt));
                        }
                        Some(wait) => wait,
                        None => policy.backoff(attempt),
                    };
                    tracing::debug!(
                        status = reply.status,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Outcome::Failed(e) => {
                    let e = e.without_url();
                    if !may_retry || e.is_builder() {
                        return Err(self.transport_error(call, e));
                    }
                    maybe_sent |= !e.is_connect();
                    let delay = policy.backoff(attempt);
                    tracing::debug!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        timeout = e.is_timeout(),
                        connect = e.is_connect(),
                        "transport failure: retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn transport_error(&self, call: &Call, e: reqwest::Error) -> Error {
        let method = call.method.to_string();
        if e.is_timeout() {
            Error::new(ErrorKind::Timeout { method, route: call.route, after: call.timeout, source: e })
        } else {
            let sent = if e.is_connect() { Sent::Never } else { Sent::Maybe };
            Error::new(ErrorKind::Transport { method, route: call.route, sent, source: e })
        }
    }

    /// The request to send, and the credentials it carries.
    fn build(&self, call: &Call, bearer: Option<&Secret>) -> Result<(reqwest::Request, Credentials)> {
        let mut credentials = Credentials::default();
        let mut req = self
            .http
            .request(call.method.clone(), call.url.clone())
            .timeout(call.timeout)
            .header(USER_AGENT, self.config.user_agent.as_str())
            .header(ACCEPT, "application/json");
        if let Some(token) = bearer {
            credentials.add_encoded(token.expose_secret());
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| Error::config("the access token is not a valid header value"))?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let mut form: Vec<(&str, String)> = match &call.body {
            Body::Form(pairs) => pairs.clone(),
            _ => Vec::new(),
        };
        if let CallAuth::Client { audience } = &call.auth {
            match &self.config.auth {
                ClientAuth::Secret(secret) => {
                    // RFC 6749 §2.3.1: both halves form-urlencoded before base64.
                    let enc =
                        |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                    let raw = format!("{}:{}", enc(&self.config.client_id), enc(secret.expose_secret()));
                    let basic = STANDARD.encode(&raw);
                    credentials.add_encoded(secret.expose_secret());
                    // Whole, and without its padding (an echo may drop it).
                    credentials.add(basic.clone());
                    credentials.add(basic.trim_end_matches('='));
                    credentials.add(raw);
                    let mut value = HeaderValue::from_str(&format!("Basic {basic}"))
                        .map_err(|_| Error::config("the client credentials are not a valid header value"))?;
                    value.set_sensitive(true);
                    req = req.header(AUTHORIZATION, value);
                }
                ClientAuth::PrivateKey(key) => {
                    let now = self.config.clock.now().timestamp();
                    let claims = json!({
                        "iss": self.config.client_id,
                        "sub": self.config.client_id,
                        "aud": audience,
                        "jti": crate::jose::random_uuid().to_string(),
                        "iat": now,
                        "exp": now + 60,
                    });
                    if !form.iter().any(|(k, _)| *k == "client_id") {
                        form.push(("client_id", self.config.client_id.clone()));
                    }
                    form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                    let assertion = key.sign(&claims)?;
                    credentials.add_encoded(&assertion);
                    form.push(("client_assertion", assertion));
                }
                ClientAuth::TlsClientAuth => {
                    // RFC 8705 §2: the certificate of the TLS connection authenticates.
                    if !form.iter().any(|(k, _)| *k == "client_id") {
                        form.push(("client_id", self.config.client_id.clone()));
                    }
                }
            }
        }
        for (name, value) in &form {
            if SECRET_FORM_FIELDS.contains(name) {
                credentials.add_encoded(value);
            }
        }
        match &call.body {
            Body::None if form.is_empty() => {}
            Body::Json(bytes) => {
                req = req.header(CONTENT_TYPE, "application/json").body(bytes.clone());
            }
            Body::None | Body::Form(_) => {
                let encoded =
                    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter()).finish();
                req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(encoded);
            }
        }
        let request =
            req.build().map_err(|e| Error::config_with("could not build the request", e.without_url()))?;
        Ok((request, credentials))
    }
}
