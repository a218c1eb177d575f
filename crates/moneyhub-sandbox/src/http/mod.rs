//! HTTP plumbing shared by every route: query-string parsing, JSON bodies, paging links.

pub mod query;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON response with a status.
pub fn json(status: StatusCode, v: Value) -> Response {
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
