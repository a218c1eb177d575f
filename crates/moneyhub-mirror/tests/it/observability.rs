//! `/healthz`, `/readyz` and `/metrics` of the receiver (issue 13 #3).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{client, control_ok, http, sandbox, set_webhooks, Running, TestDb};

/// The receiver's base URL (its webhook URL without `/webhooks`).
fn base(running: &Running) -> String {
    running.url.trim_end_matches("/webhooks").to_owned()
}

async fn get(url: &str) -> (StatusCode, String) {
    let res = http().get(url).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn metrics_have_the_documented_names() {
    let sb = sandbox(0.0).await;
    let db = TestDb::sqlite("metrics");
    let running = Running::start(client(&sb), db.url(), moneyhub_mirror::MirrorConfig::default()).await;
    set_webhooks(&sb, &running.url, "jwt").await;
    let sent = control_ok(
        &sb,
        Method::POST,
        "/webhooks/test",
        Some(json!({"userId": "5c79210bbac25ecb5e71ac40", "eventType": "deletedAccount",
                    "payload": {"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}})),
    )
    .await;
    assert_eq!(sent["deliveries"][0]["status"], 200, "{sent}");
    // A forged one: refused.
    let forged = http()
        .post(&running.url)
        .header("content-type", "application/jwt")
        .body("eyJhbGciOiJub25lIn0.e30.")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let res = http().get(format!("{}/metrics", base(&running))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    for line in [
        "moneyhub_mirror_webhooks_total{outcome=\"stored\"} 1",
        "moneyhub_mirror_webhooks_total{outcome=\"duplicate\"} 0",
        "moneyhub_mirror_webhooks_total{outcome=\"refused\"} 1",
        "moneyhub_mirror_webhooks_total{outcome=\"unavailable\"} 0",
        "moneyhub_mirror_webhooks_total{outcome=\"invalid\"} 0",
        "moneyhub_mirror_inbox_events{state=\"pending\"} 1",
        "moneyhub_mirror_inbox_events{state=\"failed\"} 0",
        "moneyhub_mirror_inbox_events{state=\"parked\"} 0",
        "moneyhub_mirror_webhook_ack_seconds_count 2",
        "# TYPE moneyhub_mirror_webhook_ack_seconds histogram",
        "# TYPE moneyhub_mirror_oldest_pending_seconds gauge",
        "moneyhub_mirror_events_applied_total 0",
        "moneyhub_mirror_transactions_written_total 0",
        "moneyhub_mirror_reconcile_differences_total 0",
        "moneyhub_mirror_worker_errors_total 0",
    ] {
        assert!(text.lines().any(|l| l == line || l.starts_with(line)), "missing {line:?} in:\n{text}");
    }
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let sb = sandbox(0.0).await;
    let db = TestDb::sqlite("readyz");
    let running = Running::start(client(&sb), db.url(), moneyhub_mirror::MirrorConfig::default()).await;
    let base = base(&running);
    assert_eq!(get(&format!("{base}/healthz")).await, (StatusCode::OK, "ok".into()));
    assert_eq!(get(&format!("{base}/readyz")).await, (StatusCode::OK, "ready".into()));
    // The database loses its tables (dropped, or a wrong file swapped in).
    let path = db.url().strip_prefix("sqlite:").unwrap().to_owned();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE mirror_applied_events; DROP TABLE mirror_inbox;").unwrap();
    let (status, _) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Alive all the same.
    assert_eq!(get(&format!("{base}/healthz")).await.0, StatusCode::OK);
    // The metrics still answer, without the inbox gauges.
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("moneyhub_mirror_webhooks_total") && !text.contains("moneyhub_mirror_inbox_events")
    );
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn readyz_is_503_when_postgresql_is_gone() {
    let Some(db) = TestDb::postgres("readyz_is_503_when_postgresql_is_gone") else { return };
    let sb = sandbox(0.0).await;
    let running = Running::start(client(&sb), db.url(), moneyhub_mirror::MirrorConfig::default()).await;
    let base = base(&running);
    assert_eq!(get(&format!("{base}/readyz")).await, (StatusCode::OK, "ready".into()));
    if let TestDb::Postgres { base: pg, schema, .. } = &db {
        moneyhub_mirror::testing::drop_schema(pg, schema).await.unwrap();
    }
    assert_eq!(get(&format!("{base}/readyz")).await.0, StatusCode::SERVICE_UNAVAILABLE);
    running.stop().await;
}
