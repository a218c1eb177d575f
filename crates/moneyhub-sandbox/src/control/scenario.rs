//! Control routes that reset the sandbox and load scenarios (see `crate::scenario`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::http::{no_content, parse_body, typed, Body, Path};
use crate::kit::types::ClockReading;
use crate::scenario::{Scenario, ScenarioFormat, StateRequest};
use crate::state::AppState;

/// `POST /__sandbox/reset`: back to the seeded state the sandbox started in (what resets and
/// what does not: `crate::scenario::reset`). Answers `{now, frozen}`.
pub async fn reset(State(state): State<AppState>) -> Result<Response, ApiError> {
    let st = state.clone();
    blocking(move || crate::scenario::reset(&st)).await?;
    Ok(typed(
        StatusCode::OK,
        &ClockReading { now: state.core.clock.now(), frozen: state.core.clock.is_frozen() },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LoadRequest {
    /// The scenario file's text.
    text: String,
    #[serde(default)]
    format: Option<ScenarioFormat>,
    /// A name for error messages (the file's).
    #[serde(default)]
    name: Option<String>,
    /// Reset the sandbox first.
    #[serde(default)]
    reset: bool,
}

/// `POST /__sandbox/scenario {text, format?: "toml"|"json", name?, reset?}`: loads a scenario
/// (TOML unless `format` says JSON or `name` ends in `.json`). Answers what it did (users and
/// connections with their ids); 400 with the line and column of anything wrong, before any
/// change.
///
/// Parsing the body, applying it and encoding the answer all run off the async threads (a
/// scenario of 100,000 users is tens of megabytes each way), and the store is locked only in
/// short chunks (`crate::scenario::apply`), so other requests go on meanwhile.
pub async fn load(State(state): State<AppState>, Body(body): Body) -> Result<Response, ApiError> {
    // A scenario may move the clock: no webhook in flight meanwhile (see `WebhookWorker::hold`).
    let held = state.webhooks.worker.hold().await;
    let st = state.clone();
    let res = tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let req: LoadRequest = parse_body(&body, false)?;
        drop(body);
        let name = req.name.unwrap_or_else(|| "scenario".to_owned());
        let format = req.format.unwrap_or_else(|| ScenarioFormat::for_file_name(&name));
        let scenario =
            Scenario::parse(&req.text, format, &name).map_err(|e| ApiError::bad_request(e.to_string()))?;
        drop(req.text);
        let loaded = crate::scenario::load(&st, &scenario, req.reset)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(axum::Json(loaded).into_response())
    })
    .await
    .map_err(|_| {
        ApiError::custom(StatusCode::INTERNAL_SERVER_ERROR, "InternalServer", "scenario task failed")
    })??;
    drop(held);
    state.data.notify_webhooks();
    Ok(res)
}

/// Runs store-heavy work (connections' accounts, the lifecycle up to a new time) off the
/// async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::scenario::ScenarioError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| {
            ApiError::custom(StatusCode::INTERNAL_SERVER_ERROR, "InternalServer", "scenario task failed")
        })?
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `PUT /__sandbox/connections/{id}/state {state, days?, since?, singleSyncOnly?}`: puts a
/// connection in one of the scenario states (`crate::scenario`).
pub async fn set_state(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: StateRequest = parse_body(&body, false)?;
    let connection_id = super::ids::connection(&state.data.store.read(), &connection_id)?;
    crate::scenario::set_state(&state, &connection_id, &req).map_err(|e| {
        if e.0.starts_with("unknown connection") {
            ApiError::not_found(e.to_string())
        } else {
            ApiError::bad_request(e.to_string())
        }
    })?;
    Ok(no_content())
}
