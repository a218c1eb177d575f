//! Control routes for fault injection (see `crate::faults`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::ApiError;
use crate::faults::Faults;
use crate::http::{json, no_content, ok, parse_body, Body, Path};
use crate::kit::types::FaultSpec;

/// `POST /__sandbox/faults {method?, path, exact?, status?, code?, message?, retryAfterSecs?,
/// latencyMs?, drop?, malformed?, rate?, times?}`: adds a rule; 201 with the rule (`id`...).
pub async fn add(State(faults): State<Arc<Faults>>, Body(body): Body) -> Result<Response, ApiError> {
    let req: FaultSpec = parse_body(&body, false)?;
    let rule = faults.add(req).map_err(ApiError::bad_request)?;
    Ok(json(StatusCode::CREATED, rule))
}

/// `GET /__sandbox/faults`: `{data: [rule...]}` with `matched`, `hits`, `remaining`, `active`.
pub async fn list(State(faults): State<Arc<Faults>>) -> Response {
    ok(json!({"data": faults.list()}))
}

/// `DELETE /__sandbox/faults/{id}`: removes one rule (404 if unknown).
pub async fn remove(State(faults): State<Arc<Faults>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if faults.remove(&id) {
        Ok(no_content())
    } else {
        Err(ApiError::not_found(format!("No fault rule {id}")))
    }
}

/// `DELETE /__sandbox/faults`: removes every rule.
pub async fn clear(State(faults): State<Arc<Faults>>) -> Response {
    faults.clear();
    no_content()
}
