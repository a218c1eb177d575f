//! `GET`/`PUT /__sandbox/consent`: how `/oidc/auth` obtains consent (see
//! [`crate::config::ConsentMode`]).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use crate::config::ConsentMode;
use crate::error::ApiError;
use crate::http::{ok, parse_body, Body};
use crate::identity::{consent_mode, set_consent_mode, Oidc};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMode {
    mode: String,
}

/// `GET /__sandbox/consent`: `{"mode": "instant" | "interactive"}`.
pub async fn get(State(oidc): State<Oidc>) -> Response {
    ok(json!({"mode": consent_mode(&oidc).as_str()}))
}

/// `PUT /__sandbox/consent {"mode": "instant" | "interactive"}`: from the next `/oidc/auth`
/// on (pages already shown keep working).
pub async fn set(State(oidc): State<Oidc>, Body(body): Body) -> Result<Response, ApiError> {
    let req: SetMode = parse_body(&body, false)?;
    let mode: ConsentMode = req.mode.parse().map_err(ApiError::bad_request)?;
    set_consent_mode(&oidc, mode);
    Ok(ok(json!({"mode": mode.as_str()})))
}
