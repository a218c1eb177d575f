//! The webhook endpoint (axum).
//!
//! `POST /webhooks` (also `POST /`): the body is verified with the client crate (a signed
//! JWT through Moneyhub's JWKS; unsigned JSON only when the mirror opted in), then stored in
//! the inbox, synced to disk, before the answer:
//!
//! | outcome | status |
//! | --- | --- |
//! | stored | `200 {"status":"stored"}` |
//! | an id already stored (a replay) | `200 {"status":"duplicate"}`, nothing written |
//! | bad signature, wrong `aud`/`iss`, `iat` out of window, unsigned JSON not allowed, not a webhook | `401`, nothing written |
//! | body too large | `413`, nothing written |
//! | the JWKS could not be fetched, or storage failed | `503`, so the sender may retry |
//!
//! `GET /healthz` answers `200 ok`. Nothing logged contains the body.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use moneyhub::ErrorKind;

use crate::db::NewInboxEvent;
use crate::Inner;

/// The receiver's routes.
pub(crate) fn router(inner: Arc<Inner>) -> Router {
    let limit = inner.config.max_body_bytes;
    Router::new()
        .route("/", post(receive))
        .route("/webhooks", post(receive))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(inner)
}

fn answer(status: StatusCode, what: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], format!("{{\"status\":\"{what}\"}}"))
        .into_response()
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let verified = match inner.verifier.verify(&body, &content_type).await {
        Ok(v) => v,
        Err(e) => {
            return match e.kind() {
                // Our side could not check it (JWKS unreachable): not the sender's fault.
                ErrorKind::Transport { .. }
                | ErrorKind::Timeout { .. }
                | ErrorKind::Api(_)
                | ErrorKind::Decode { .. } => {
                    tracing::warn!(error = %e, "webhook could not be verified");
                    inner.counters.unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                }
                _ => {
                    tracing::info!(error = %e, "webhook refused");
                    inner.counters.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    answer(StatusCode::UNAUTHORIZED, "refused")
                }
            };
        }
    };
    let envelope = match verified.event.to_envelope(verified.id.clone(), verified.user_id.clone()) {
        Ok(env) => env,
        Err(e) => {
            tracing::info!(error = %e, "webhook payload cannot be re-encoded");
            return answer(StatusCode::BAD_REQUEST, "invalid");
        }
    };
    let envelope = match serde_json::to_string(&envelope) {
        Ok(s) => s,
        Err(_) => return answer(StatusCode::BAD_REQUEST, "invalid"),
    };
    let event = NewInboxEvent {
        webhook_id: verified.id.as_str().to_owned(),
        user_id: verified.user_id.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default(),
        event_type: verified.event_type.as_str().to_owned(),
        envelope,
        body: body.to_vec(),
        content_type: crate::db::clip(&content_type, 200),
        signed: verified.signed,
        received_ms: chrono::Utc::now().timestamp_millis(),
    };
    match inner.db.insert_inbox(event).await {
        Ok(true) => {
            inner.counters.stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if inner.config.coalesce_window.is_zero() {
                inner.wake.notify_waiters();
            }
            answer(StatusCode::OK, "stored")
        }
        Ok(false) => {
            inner.counters.duplicates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            answer(StatusCode::OK, "duplicate")
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook could not be stored");
            answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }
}
