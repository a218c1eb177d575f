//! HTTP plumbing shared by every route: query-string parsing, JSON bodies, paging links.

pub mod html;
pub mod query;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, OAuthError};

/// The header that carries, inside the sandbox, the `x5t#S256` of the TLS client certificate
/// of the request's connection. Whatever a client sends under this name is removed first.
pub const PEER_CERT_HEADER: &str = "x-sandbox-peer-cert-x5t-s256";

/// A JSON response with a status.
pub fn json(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// A typed JSON answer with a status (the control API's shared types, `crate::kit::types`).
pub fn typed<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    (status, axum::Json(v)).into_response()
}

/// 200 JSON.
pub fn ok(v: Value) -> Response {
    json(StatusCode::OK, v)
}

/// 204 No Content.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Parses a JSON body strictly into `T`; an empty body counts as `{}` when `empty_ok`.
/// Errors name what was wrong.
pub fn parse_body<T: DeserializeOwned>(body: &Bytes, empty_ok: bool) -> Result<T, ApiError> {
    let trimmed = body.iter().all(|b| b.is_ascii_whitespace());
    if trimmed {
        if empty_ok {
            return serde_json::from_slice(b"{}")
                .map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")));
        }
        return Err(ApiError::bad_request("Missing JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))
}

/// The request body, read whole (axum's default limit, 2 MB). Unlike axum's `Bytes`, whose
/// rejection is plain text, a failure is a Moneyhub JSON error: 413 `PayloadTooLarge` over
/// the limit, 400 for a body that cannot be read.
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(Body).map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::custom(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                "The request body is too large",
            ),
            _ => ApiError::bad_request(format!("Unreadable request body: {}", e.body_text())),
        })
    }
}

/// The request body for the OAuth endpoints: as [`Body`], but failures are OAuth errors
/// (`{error: "invalid_request", error_description}`, status 413 or 400).
#[derive(Debug, Clone)]
pub struct OAuthBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for OAuthBody {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(OAuthBody).map_err(|e| {
            let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            OAuthError {
                status,
                ..OAuthError::invalid_request(format!("unreadable request body: {}", e.body_text()))
            }
        })
    }
}

/// Path parameters. Unlike axum's `Path`, whose rejection is plain text (a segment whose
/// percent-escapes are not UTF-8, `%FF`), a failure is a Moneyhub JSON 400.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            // A route without the parameters it declares: the sandbox's own mistake.
            Err(e) if e.status().is_server_error() => {
                Err(ApiError::custom(e.status(), "InternalServer", e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request(format!("Invalid path: {}", e.body_text()))),
        }
    }
}

/// Parses an id that must be a UUID in its canonical hyphenated form (what Moneyhub issues);
/// braces, `urn:uuid:` or missing hyphens are refused like any other malformed id.
pub fn uuid_param(name: &str, value: &str) -> Result<uuid::Uuid, ApiError> {
    let canonical = value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    canonical
        .then(|| uuid::Uuid::parse_str(value).ok())
        .flatten()
        .ok_or_else(|| ApiError::bad_request(format!("{name} must be a UUID, got {value:?}")))
}
