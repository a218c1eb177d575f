//! The webhook endpoint (axum).
//!
//! `POST /webhooks` (also `POST /`): the body is verified with the client crate (a signed
//! JWT through Moneyhub's JWKS; unsigned JSON only when the mirror opted in), then stored in
//! the inbox, synced to disk, before the answer. Concurrent webhooks share one transaction
//! and one sync (group commit, see the `group_commit` module): each is answered only after
//! the commit holding it returned, and all of a batch get `503` when it failed.
//!
//! | outcome | status |
//! | --- | --- |
//! | stored | `200 {"status":"stored"}` |
//! | an id already stored (a replay) | `200 {"status":"duplicate"}`, nothing written |
//! | bad signature, wrong `aud`/`iss`, `iat` out of window, unsigned JSON not allowed, not a webhook | `401`, nothing written |
//! | authentic, but its envelope or payload does not decode (an event's required field missing) | `422 {"status":"invalid"}`, nothing written |
//! | body too large | `413`, nothing written |
//! | the JWKS could not be fetched, or storage failed | `503`, so the sender may retry |
//!
//! `GET /healthz` answers `200 ok` while the process runs. `GET /readyz` answers `200 ready`
//! when the database answers a query on the (migrated) inbox within 2 s, `503` otherwise, so
//! that an orchestrator stops routing webhooks to a receiver that could only answer 503.
//! Nothing logged contains the body.
//!
//! `GET /metrics` (Prometheus text format 0.0.4):
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `moneyhub_mirror_webhooks_total{outcome}` | counter | webhooks answered, by outcome: `stored`, `duplicate`, `refused` (401), `unavailable` (503), `invalid` (400, 422) |
//! | `moneyhub_mirror_webhook_ack_seconds` | histogram | time from a webhook's arrival to its answer |
//! | `moneyhub_mirror_inbox_events{state}` | gauge | inbox events: `pending` (not tried yet), `failed` (failed at least once, waiting for a retry), `parked` (after too many attempts) |
//! | `moneyhub_mirror_oldest_pending_seconds` | gauge | age of the oldest pending event (0 when none) |
//! | `moneyhub_mirror_events_applied_total` | counter | events applied by this process |
//! | `moneyhub_mirror_transactions_written_total` | counter | transaction rows written by this process (live versions and tombstones) |
//! | `moneyhub_mirror_reconcile_differences_total` | counter | incremental reconciliations whose window count differed from Moneyhub's |
//! | `moneyhub_mirror_worker_errors_total` | counter | failed claims and processing errors |
//! | `moneyhub_mirror_connections{action}` | gauge | connections (not removed) by current advised action (lifecycle loop) |
//! | `moneyhub_mirror_connection_states{status,error}` | gauge | connections (not removed) by Moneyhub `status` and `error` (`""` for none); a second name because one metric cannot carry two label sets |
//! | `moneyhub_mirror_lifecycle_due` | gauge | connections whose advice is due for re-evaluation now |
//! | `moneyhub_mirror_notifications_total{outcome}` | counter | notification attempts by this process: `delivered`, `failed` (retried later), `parked` |
//! | `moneyhub_mirror_notifications{state}` | gauge | undelivered notifications: `pending`, `parked` |
//! | `moneyhub_mirror_oldest_undelivered_notification_seconds` | gauge | age of the oldest undelivered notification on the mirror's clock (0 when none) |
//! | `moneyhub_mirror_auto_syncs_total` | counter | manual syncs started by `--auto-sync` in this process |
//!
//! The counters count since the process started; the inbox gauges are read from the database
//! at each scrape (and left out when it does not answer).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;

use crate::db::NewInboxEvent;
use crate::Inner;

/// The receiver's routes.
pub(crate) fn router(inner: Arc<Inner>) -> Router {
    let limit = inner.config.max_body_bytes;
    Router::new()
        .route("/", post(receive))
        .route("/webhooks", post(receive))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(inner)
}

fn answer(status: StatusCode, what: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], format!("{{\"status\":\"{what}\"}}"))
        .into_response()
}

/// Ready when the database answers, has every table the mirror needs, accepts writes, and
/// (SQLite) its file system is above the receiving floor. Reads no history: a catalogue
/// lookup per table and the database's settings.
async fn readyz(State(inner): State<Arc<Inner>>) -> Response {
    if inner.below_refuse_floor() {
        return (StatusCode::SERVICE_UNAVAILABLE, "disk almost full").into_response();
    }
    match tokio::time::timeout(std::time::Duration::from_secs(2), inner.db.readiness()).await {
        Ok(Ok(r)) if r.ok() => (StatusCode::OK, "ready").into_response(),
        Ok(Ok(r)) if !r.missing_tables.is_empty() => {
            let missing = r.missing_tables.join(", ");
            tracing::warn!(tables = %missing, "not ready: tables are missing");
            (StatusCode::SERVICE_UNAVAILABLE, format!("tables missing: {missing}")).into_response()
        }
        Ok(Ok(_)) => {
            tracing::warn!("not ready: the database refuses writes");
            (StatusCode::SERVICE_UNAVAILABLE, "database is read-only").into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database timed out").into_response(),
    }
}

async fn metrics(State(inner): State<Arc<Inner>>) -> Response {
    use moneyhub_http::metrics::Exposition;
    use std::sync::atomic::Ordering::Relaxed;
    let c = &inner.counters;
    let mut e = Exposition::new();
    let webhooks = "Webhooks answered, by outcome.";
    for (outcome, n) in [
        ("stored", &c.stored),
        ("duplicate", &c.duplicates),
        ("refused", &c.refused),
        ("unavailable", &c.unavailable),
        ("invalid", &c.invalid),
    ] {
        e.counter("moneyhub_mirror_webhooks_total", webhooks, &[("outcome", outcome)], n.load(Relaxed));
    }
    e.histogram(
        "moneyhub_mirror_webhook_ack_seconds",
        "Time from a webhook's arrival to its answer.",
        &c.ack_latency,
    );
    // Read through partial indexes over pending and parked events: cheap at any history size.
    let counts = tokio::time::timeout(std::time::Duration::from_secs(2), inner.db.queue_counts()).await;
    if let Ok(Ok(counts)) = counts {
        let help = "Inbox events by state (pending: not tried yet; failed: waiting for a retry; parked).";
        let not_tried = counts.pending.saturating_sub(counts.retrying);
        for (state, n) in [("pending", not_tried), ("failed", counts.retrying), ("parked", counts.parked)] {
            e.gauge("moneyhub_mirror_inbox_events", help, &[("state", state)], n as f64);
        }
        let oldest = counts
            .oldest_pending_ms
            .map(|ms| (chrono::Utc::now().timestamp_millis() - ms).max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        e.gauge("moneyhub_mirror_oldest_pending_seconds", "Age of the oldest pending event.", &[], oldest);
    }
    let totals = c.totals.lock().clone();
    e.counter(
        "moneyhub_mirror_events_applied_total",
        "Events applied by this process.",
        &[],
        c.applied.load(Relaxed),
    );
    e.counter(
        "moneyhub_mirror_transactions_written_total",
        "Transaction rows written (live versions and tombstones).",
        &[],
        (totals.upserts + totals.tombstones) as u64,
    );
    e.counter(
        "moneyhub_mirror_reconcile_differences_total",
        "Incremental reconciliations whose window count differed from Moneyhub's.",
        &[],
        totals.window_mismatches as u64,
    );
    e.counter(
        "moneyhub_mirror_worker_errors_total",
        "Failed claims and processing errors.",
        &[],
        c.worker_errors.load(Relaxed),
    );
    lifecycle_metrics(&inner, &mut e).await;
    ([(header::CONTENT_TYPE, moneyhub_http::metrics::CONTENT_TYPE)], e.finish()).into_response()
}

/// The lifecycle loop's metrics (gauges read from the database, left out when it does not
/// answer within 2 s).
async fn lifecycle_metrics(inner: &Inner, e: &mut moneyhub_http::metrics::Exposition) {
    use std::sync::atomic::Ordering::Relaxed;
    let now = inner.client.now().timestamp_millis();
    let counts =
        tokio::time::timeout(std::time::Duration::from_secs(2), inner.db.lifecycle_counts(now)).await;
    if let Ok(Ok(counts)) = counts {
        let help = "Connections by advised action.";
        for action in moneyhub::health::Action::ALL {
            let n = counts.by_action.get(action.as_str()).copied().unwrap_or(0);
            e.gauge("moneyhub_mirror_connections", help, &[("action", action.as_str())], n as f64);
        }
        let help = "Connections by Moneyhub status and error.";
        for ((status, error), n) in &counts.by_status {
            let status = moneyhub::redact_credentials(status);
            let error = moneyhub::redact_credentials(error);
            e.gauge(
                "moneyhub_mirror_connection_states",
                help,
                &[("status", &status), ("error", &error)],
                *n as f64,
            );
        }
        e.gauge(
            "moneyhub_mirror_lifecycle_due",
            "Connections due for re-evaluation.",
            &[],
            counts.due_now as f64,
        );
        let help = "Undelivered notifications by state.";
        e.gauge("moneyhub_mirror_notifications", help, &[("state", "pending")], counts.outbox_pending as f64);
        e.gauge("moneyhub_mirror_notifications", help, &[("state", "parked")], counts.outbox_parked as f64);
        let oldest = counts.oldest_undelivered_ms.map(|ms| (now - ms).max(0) as f64 / 1000.0).unwrap_or(0.0);
        e.gauge(
            "moneyhub_mirror_oldest_undelivered_notification_seconds",
            "Age of the oldest undelivered notification.",
            &[],
            oldest,
        );
    }
    let help = "Notification attempts by outcome.";
    for (outcome, n) in inner.lifecycle.counters.snapshot() {
        e.counter("moneyhub_mirror_notifications_total", help, &[("outcome", outcome)], n);
    }
    e.counter(
        "moneyhub_mirror_auto_syncs_total",
        "Manual syncs started by --auto-sync.",
        &[],
        inner.lifecycle.auto_syncs.load(Relaxed),
    );
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let res = receive_inner(&inner, headers, body).await;
    if matches!(res.status(), StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY) {
        inner.counters.invalid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    inner.counters.ack_latency.observe(started.elapsed());
    res
}

async fn receive_inner(inner: &Arc<Inner>, headers: HeaderMap, body: Bytes) -> Response {
    // Nearly out of disk: refuse before any work, so the sender retries later (see
    // `MirrorConfig::refuse_below_free_bytes`).
    if inner.below_refuse_floor() {
        tracing::error!("webhook refused: free disk space is below the receiving floor");
        inner.counters.unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let verified = match inner.verifier.verify(&body, &content_type).await {
        Ok(v) => v,
        // Authentic (or, for unsigned JSON, allowed), but its content is not an event we can
        // read: the sender's bug, not a forgery. 422 says so (a 401 would send people looking
        // at keys and audiences).
        Err(e) if matches!(e.kind(), moneyhub::ErrorKind::Webhook { source: Some(_), .. }) => {
            tracing::info!(error = %e, "webhook payload invalid");
            return answer(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        }
        Err(e) if e.is_verification_failure() => {
            tracing::info!(error = %e, "webhook refused");
            inner.counters.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return answer(StatusCode::UNAUTHORIZED, "refused");
        }
        Err(e) => {
            // Our side could not check it (JWKS unreachable): not the sender's fault.
            tracing::warn!(error = %e, "webhook could not be verified");
            inner.counters.unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        }
    };
    // The inbox keeps the verified body as delivered, and nothing decoded from it but the
    // keys it is found by; the processor reads the envelope from it once, when it applies it.
    let event = NewInboxEvent {
        webhook_id: verified.id,
        user_id: verified.user_id,
        event_type: verified.event_type,
        body,
        content_type: crate::db::clip(&content_type, 200),
        signed: verified.signed,
        received_ms: chrono::Utc::now().timestamp_millis(),
    };
    // Committed with the webhooks arriving beside it (one transaction, one sync), answered
    // once that commit returned.
    match inner.group.insert(event).await {
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
            inner.counters.unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }
}
