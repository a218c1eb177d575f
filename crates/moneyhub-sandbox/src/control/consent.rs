//! `GET`/`PUT /__sandbox/consent`: how `/oidc/auth` obtains consent (see
//! [`crate::config::ConsentMode`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::config::ConsentMode;
use crate::error::ApiError;
use crate::http::{parse_body, typed, Body};
use crate::identity::{consent_mode, set_consent_mode, Oidc};
use crate::kit::types::ConsentSetting;

/// `GET /__sandbox/consent`: `{"mode": "instant" | "interactive"}`.
pub async fn get(State(oidc): State<Oidc>) -> Response {
    typed(StatusCode::OK, &ConsentSetting { mode: consent_mode(&oidc).as_str().to_owned() })
}

/// `PUT /__sandbox/consent {"mode": "instant" | "interactive"}`: from the next `/oidc/auth`
/// on (pages already shown keep working).
pub async fn set(State(oidc): State<Oidc>, Body(body): Body) -> Result<Response, ApiError> {
    let req: ConsentSetting = parse_body(&body, false)?;
    let mode: ConsentMode = req.mode.parse().map_err(ApiError::bad_request)?;
    set_consent_mode(&oidc, mode);
    Ok(typed(StatusCode::OK, &ConsentSetting { mode: mode.as_str().to_owned() }))
}
