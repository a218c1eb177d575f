//! Error responses, exactly as Moneyhub shapes them.
//!
//! Data API and identity REST errors are `{code, message, correlationId, ...}`; OAuth/OIDC
//! endpoint errors are `{error, error_description}`. Every handler returns one of these and
//! never panics, so no input can produce a 5xx the sandbox did not intend.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::store::Refusal;

/// A Data API / identity REST error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `code`.
    pub code: &'static str,
    /// `message`.
    pub message: String,
    /// `retryAfterSecs` (429 only), also sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// Extra fields (`details`, `id`, `userId`...).
    pub extra: Map<String, Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None, extra: Map::new() }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }
    /// 429 with `retryAfterSecs`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too Many Requests");
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }
    /// Any status with a code (used by fault injection).
    pub fn custom(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, code, message)
    }
    /// Adds `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.extra.insert("details".into(), details);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), json!(self.code));
        m.insert("message".into(), json!(self.message));
        m.insert("correlationId".into(), json!(correlation_id()));
        if let Some(r) = self.retry_after {
            m.insert("retryAfterSecs".into(), json!(r));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// A short unique-enough id for error bodies (not seeded: it identifies a request, not data).
fn correlation_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("sandbox-{:08x}", N.fetch_add(1, Ordering::Relaxed))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(r) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&r.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownUser => ApiError::not_found("User not found"),
            Refusal::UnknownConnection => ApiError::not_found("Connection not found"),
            Refusal::UnknownProvider => ApiError::not_found("Provider not found"),
            Refusal::ConsentExpired => ApiError::forbidden("The consent for this connection has expired"),
            Refusal::TooSoon(secs) => ApiError::too_many_requests(secs),
            Refusal::Invalid(m) => ApiError::bad_request(m),
        }
    }
}

/// An OAuth 2.0 / OIDC endpoint error: `{error, error_description}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// HTTP status (400 unless said otherwise; 401 for `invalid_client`).
    pub status: StatusCode,
    /// The OAuth error code.
    pub error: &'static str,
    /// Human-readable description.
    pub description: String,
}

impl OAuthError {
    /// An error with the usual status for its code.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status =
            if error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
        OAuthError { status, error, description: description.into() }
    }
    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    /// `invalid_client`.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut res =
            (self.status, axum::Json(json!({"error": self.error, "error_description": self.description})))
                .into_response();
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
