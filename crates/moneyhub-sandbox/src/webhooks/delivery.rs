//! Delivering webhooks: drain the store's outbox and POST each event to the current target,
//! once, with a 5 s limit, logging every attempt.
//!
//! Deliveries happen one at a time, in outbox order (unless chaos reorders a batch): Moneyhub
//! makes no ordering promise, but sequential delivery keeps the sandbox's behaviour
//! reproducible, and a consumer test that wants disorder asks for it through chaos. The cost
//! is that one slow receiver delays later events by up to 5 s each, which is also what a
//! receiver that is slow under Moneyhub's load should expect.

use std::time::Instant;

use axum::http::header::CONTENT_TYPE;

use super::envelope::{json_body, jwt_body, Outgoing};
use super::log::{Delivery, Outcome};
use super::{format_name, DELIVERY_TIMEOUT};
use crate::config::{WebhookFormat, WebhookTarget};
use crate::kit::types::FlushReport;
use crate::state::AppState;

/// What one drain did (the answer to `POST /__sandbox/webhooks/flush`), counted as
/// [`deliver_pending`] goes; `last_seq` is set at its end.
impl FlushReport {
    fn count(&mut self, d: &Delivery) {
        match d.outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Dropped => self.dropped += 1,
            Outcome::Duplicate => self.duplicates += 1,
        }
        if d.outcome != Outcome::Dropped {
            self.attempts += 1;
        }
    }
}

/// Delivers everything in the outbox (including events added meanwhile) and returns what
/// happened. Waits for a delivery already in progress first, so on return every event
/// recorded before the call has been attempted.
pub async fn deliver_pending(state: &AppState) -> FlushReport {
    let _turn = state.webhooks.worker.delivering.lock().await;
    let mut report = FlushReport::default();
    drain(state, &mut report).await;
    report.last_seq = state.webhooks.worker.log.last_seq();
    report
}

/// Delivers a synthetic event (after whatever is pending, to keep order) and returns its
/// log entries.
pub async fn deliver_test_event(state: &AppState, event: Outgoing) -> Vec<Delivery> {
    let _turn = state.webhooks.worker.delivering.lock().await;
    let mut report = FlushReport::default();
    drain(state, &mut report).await;
    // Nobody else delivers while we hold the turn, so every entry after this one is ours.
    let before = state.webhooks.worker.log.last_seq();
    deliver_one(state, &event, &mut report).await;
    state.webhooks.worker.log.since(before, usize::MAX)
}

/// Takes the outbox under the store lock and delivers it outside the lock (a delivery can
/// take 5 s; the API must not stall meanwhile). Repeats until the outbox stays empty.
async fn drain(state: &AppState, report: &mut FlushReport) {
    loop {
        let events = std::mem::take(&mut state.data.store.write().outbox);
        if events.is_empty() {
            return;
        }
        let mut batch: Vec<Outgoing> = events.into_iter().map(Outgoing::from).collect();
        state.webhooks.worker.chaos.lock().maybe_shuffle(&mut batch);
        for event in &batch {
            deliver_one(state, event, report).await;
        }
    }
}

/// One event: chaos may drop it or send it twice.
async fn deliver_one(state: &AppState, event: &Outgoing, report: &mut FlushReport) {
    // Read per event, so a target change takes effect at once.
    let target = state.webhooks.target.lock().clone();
    let Some(target) = target else {
        let d = dropped(state, event, None, "no webhook target is set");
        report.count(&d);
        return;
    };
    let drop_it = state.webhooks.worker.chaos.lock().drop_next();
    if drop_it {
        let d = dropped(state, event, Some(&target), "dropped by chaos");
        report.count(&d);
        return;
    }
    let d = attempt(state, &target, event, false).await;
    report.count(&d);
    let again = state.webhooks.worker.chaos.lock().duplicate_next();
    if again {
        let d = attempt(state, &target, event, true).await;
        report.count(&d);
    }
}

fn dropped(state: &AppState, event: &Outgoing, target: Option<&WebhookTarget>, why: &str) -> Delivery {
    state.webhooks.worker.log.push(Delivery {
        seq: 0,
        webhook_id: event.id.to_string(),
        event_type: event.event_type.clone(),
        user_id: event.user_id.clone(),
        url: target.map(|t| t.url.clone()),
        format: target.map(|t| format_name(t.format).to_owned()),
        at: state.core.clock.now(),
        status: None,
        error: Some(why.to_string()),
        duration_ms: 0,
        outcome: Outcome::Dropped,
        duplicate: false,
        payload: event.payload.clone(),
        payload_truncated: false,
    })
}

/// One POST: once, no retry, cut at 5 s.
async fn attempt(state: &AppState, target: &WebhookTarget, event: &Outgoing, duplicate: bool) -> Delivery {
    let at = state.core.clock.now();
    let started = Instant::now();
    let body = match target.format {
        WebhookFormat::Json => Ok(("application/json", json_body(event))),
        WebhookFormat::Jwt => sign(state, event).map(|jwt| ("application/jwt", jwt.into_bytes())),
    };
    let (status, error) = match body {
        Err(e) => (None, Some(format!("could not sign the webhook: {e}"))),
        Ok((content_type, body)) => send(state, &target.url, content_type, body).await,
    };
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    let outcome = match (delivered, duplicate) {
        (true, false) => Outcome::Delivered,
        (true, true) => Outcome::Duplicate,
        (false, _) => Outcome::Failed,
    };
    state.webhooks.worker.log.push(Delivery {
        seq: 0,
        webhook_id: event.id.to_string(),
        event_type: event.event_type.clone(),
        user_id: event.user_id.clone(),
        url: Some(target.url.clone()),
        format: Some(format_name(target.format).to_owned()),
        at,
        status,
        error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        outcome,
        duplicate,
        payload: event.payload.clone(),
        payload_truncated: false,
    })
}

/// The SET for `event`: `aud` is the client owning the user (the first registered client
/// for users the store does not know, such as synthetic test events' users).
fn sign(state: &AppState, event: &Outgoing) -> Result<String, String> {
    let owner = state.data.store.read().users.get(&event.user_id).map(|u| u.client_id.clone());
    let aud =
        owner.or_else(|| state.core.config.clients.first().map(|c| c.client_id.clone())).unwrap_or_default();
    let iat = state.core.clock.now().timestamp();
    jwt_body(&state.identity.key, &state.core.base_url, &aud, iat, event)
}

/// Sends one request; `(status, error)`. Only the status line matters (2xx within 5 s), so
/// the receiver's body is never read.
async fn send(
    state: &AppState,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (Option<u16>, Option<String>) {
    let request = state.webhooks.worker.client.post(url).header(CONTENT_TYPE, content_type).body(body).send();
    // The client has the same timeout; this outer one also bounds connection set-up however
    // the client is configured.
    match tokio::time::timeout(DELIVERY_TIMEOUT, request).await {
        Err(_) => (None, Some(timeout_text())),
        Ok(Err(e)) if e.is_timeout() => (None, Some(timeout_text())),
        Ok(Err(e)) => (None, Some(error_chain(&e))),
        Ok(Ok(res)) => (Some(res.status().as_u16()), None),
    }
}

fn timeout_text() -> String {
    format!("timed out after {} s", DELIVERY_TIMEOUT.as_secs())
}

/// The error and its causes: reqwest's own message alone ("error sending request") hides
/// the useful part ("connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
