//! Moneyhub misbehaving while the mirror applies events: 503s beyond the client's own
//! retries, malformed 200 bodies, dropped connections. The receiver is not affected (it
//! needs nothing from Moneyhub for JSON webhooks); events stay in the inbox and are retried
//! with back-off, so nothing is lost and nothing applied twice. An event that keeps failing
//! is parked, shown by `status`, and reconciliation still repairs what it announced.

use std::time::{Duration, Instant};

use moneyhub_mirror::{Db, MirrorConfig, Scope};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn add_fault(sb: &SandboxHandle, rule: Value) {
    control_ok(sb, Method::POST, "/faults", Some(rule)).await;
}

/// How often the fault rules fired, per rule, oldest first.
async fn fault_hits(sb: &SandboxHandle) -> Vec<u64> {
    let rules = control_ok(sb, Method::GET, "/faults", None).await;
    rules["data"].as_array().unwrap().iter().map(|r| r["hits"].as_u64().unwrap_or(0)).collect()
}

/// The highest attempt count of any inbox row (SQLite).
fn max_attempts(db: &Db) -> i64 {
    let conn = rusqlite::Connection::open(db.file().expect("SQLite only")).unwrap();
    conn.query_row("SELECT COALESCE(MAX(attempts), 0) FROM mirror_inbox", [], |r| r.get(0)).unwrap()
}

/// Three users, backfilled while Moneyhub is healthy; webhooks go to the mirror.
async fn set_up(config: MirrorConfig, name: &str) -> (SandboxHandle, TestDb, Running, Vec<String>) {
    let sb = sandbox(0.5).await;
    let db = TestDb::sqlite(name);
    let running = Running::start(client(&sb), db.url(), config.allow_unsigned_json(true)).await;
    let socgen = bank(&sb, SOCGEN).await;
    let ids: Vec<String> = users(&sb, 3, &[socgen]).await.into_iter().map(|(u, _)| u).collect();
    let report = running.mirror.backfill(&Scope::users(user_ids(&ids))).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    set_webhooks(&sb, &running.url, "json").await;
    (sb, db, running, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_fetches_are_retried_and_lose_nothing() {
    init_tracing();
    let config = MirrorConfig::default()
        .coalesce_window(Duration::ZERO)
        .retry_backoff(Duration::from_millis(20))
        .max_attempts(50);
    let (sb, db, running, ids) = set_up(config, "faults-retry").await;
    // Every transactions call fails for a while: 503s (the client retries 3 times, so claims
    // fail too), then half a JSON body, then connections closed without an answer.
    add_fault(&sb, json!({"method": "GET", "path": "/v3/transactions", "status": 503, "times": 16})).await;
    add_fault(&sb, json!({"method": "GET", "path": "/v3/transactions", "malformed": true, "times": 3})).await;
    add_fault(&sb, json!({"method": "GET", "path": "/v3/transactions", "drop": true, "times": 6})).await;

    // A day of activity while the workers are running: every delivery is stored.
    let workers = running.mirror.spawn_workers(2);
    control_ok(&sb, Method::POST, "/clock/advance", Some(json!({"hours": 24}))).await;
    flush(&sb).await;
    let mut stats = DeliveryStats::default();
    delivery_stats(&sb, &mut stats).await;
    assert_eq!(stats.failed, 0, "the receiver answers whatever Moneyhub does: {stats:?}");
    assert!(stats.delivered > 0, "{stats:?}");

    wait_inbox_empty(running.mirror.db(), Duration::from_secs(60)).await;
    workers.stop().await;
    let hits = fault_hits(&sb).await;
    assert_eq!(hits[..2], [16, 3], "the 503s and malformed bodies all reached the mirror: {hits:?}");
    control_ok(&sb, Method::DELETE, "/faults", None).await;

    assert!(max_attempts(running.mirror.db()) > 0, "some claims failed and were retried");
    let counts = running.mirror.db().inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 0), "{counts:?}");
    assert_eq!(counts.applied, counts.total);
    assert_eq!(counts.ledger, counts.applied, "each event applied once");
    assert_eq!(running.mirror.counts().double_apply_refused, 0);
    // No reconciliation from outside: the retried events alone brought the mirror level.
    let (problems, compared) = compare(&sb, running.mirror.db(), &ids).await;
    assert!(problems.is_empty(), "{} differences: {:#?}", problems.len(), &problems[..problems.len().min(5)]);
    assert!(compared > 1000);
    running.stop().await;
    db.cleanup().await;
}

/// A day of activity while every transactions route answers 500: every event that needs one
/// fails twice and is parked. Then Moneyhub recovers (the fault is removed); the day's
/// changes are not in the mirror yet.
async fn park_a_days_events(name: &str) -> (SandboxHandle, TestDb, Running, Vec<String>) {
    init_tracing();
    let config = MirrorConfig::default()
        .coalesce_window(Duration::ZERO)
        .retry_backoff(Duration::from_millis(10))
        .max_attempts(2);
    let (sb, db, running, ids) = set_up(config, name).await;
    add_fault(&sb, json!({"method": "GET", "path": "/v3/transactions", "status": 500})).await;

    let workers = running.mirror.spawn_workers(2);
    control_ok(&sb, Method::POST, "/clock/advance", Some(json!({"hours": 24}))).await;
    flush(&sb).await;
    let started = Instant::now();
    let status = loop {
        let s = running.mirror.status(&Default::default()).await.unwrap();
        if s.inbox_pending == 0 && s.inbox_failed > 0 {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "events not parked: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    workers.stop().await;
    // (Events that need nothing from the transactions routes are applied.)
    assert!(status.inbox_failed > status.inbox_applied, "{status:?}");
    assert_eq!(max_attempts(running.mirror.db()), 2);

    control_ok(&sb, Method::DELETE, "/faults", None).await;
    let (problems, _) = compare(&sb, running.mirror.db(), &ids).await;
    assert!(!problems.is_empty(), "the day's changes are not in the mirror yet");
    (sb, db, running, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_keep_failing_are_parked_and_reconciliation_repairs() {
    let (sb, db, running, ids) = park_a_days_events("faults-park").await;
    // The parked events stay parked; a reconciliation brings the mirror level without them.
    let report = running.mirror.reconcile(&Scope::all()).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.users, 3);
    let (problems, _) = compare(&sb, running.mirror.db(), &ids).await;
    assert!(problems.is_empty(), "{} differences: {:#?}", problems.len(), &problems[..problems.len().min(5)]);
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_retried_after_recovery_are_applied() {
    let (sb, db, running, ids) = park_a_days_events("faults-retry").await;
    let parked = running.mirror.db().inbox_counts().await.unwrap();
    // Another user's events only: nothing of these users is re-queued.
    let stranger: moneyhub::UserId = "5c79210bbac25ecb5e71ac40".parse().unwrap();
    assert_eq!(running.mirror.retry_parked(Some(&stranger)).await.unwrap(), 0);
    let one: moneyhub::UserId = ids[0].parse().unwrap();
    let of_one = running.mirror.retry_parked(Some(&one)).await.unwrap();
    assert!(of_one > 0, "the first user had parked events");
    let rest = running.mirror.retry_parked(None).await.unwrap();
    assert_eq!(of_one + rest, parked.failed as u64, "every parked event re-queued once");
    let counts = running.mirror.db().inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (parked.failed, 0), "{counts:?}");
    let file = running.mirror.db().file().expect("SQLite only");
    let pending_attempts: i64 = rusqlite::Connection::open(file)
        .unwrap()
        .query_row("SELECT COALESCE(MAX(attempts), 0) FROM mirror_inbox WHERE state = 0", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending_attempts, 0, "attempts start again");

    // The workers apply them, and that alone brings the mirror level: no reconciliation.
    let drained = running.mirror.drain(2).await.unwrap();
    assert_eq!(drained.failed, 0, "{drained:?}");
    let counts = running.mirror.db().inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 0), "{counts:?}");
    assert_eq!(counts.ledger, counts.applied, "each event applied once");
    let (problems, _) = compare(&sb, running.mirror.db(), &ids).await;
    assert!(problems.is_empty(), "{} differences: {:#?}", problems.len(), &problems[..problems.len().min(5)]);
    running.stop().await;
    db.cleanup().await;
}
