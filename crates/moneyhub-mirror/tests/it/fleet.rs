//! Issue 21: two mirror instances with their own connection pools (two processes' worth) on
//! one PostgreSQL database, where some users always fail (a sandbox fault on their
//! connections) and were queued first. The healthy users' events are all applied within
//! 60 s (the bound, on this project's loaded 2-core machine), and the failing users back off:
//! across both instances each is attempted at most as often as the back-off allows.

use std::time::{Duration, Instant};

use moneyhub_mirror::{Mirror, MirrorConfig, Scope};
use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// Requests the sandbox logged for `path` since `after`.
async fn requests_to(sb: &SandboxHandle, after: u64, path: &str) -> usize {
    let v = control_ok(sb, Method::GET, &format!("/requests?after={after}&limit=200000"), None).await;
    v["data"].as_array().unwrap().iter().filter(|e| e["method"] == "GET" && e["path"] == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_users_converge_beside_failing_ones_across_processes() {
    let Some(db) = TestDb::postgres("healthy_users_converge_beside_failing_ones_across_processes") else {
        return;
    };
    init_tracing();
    let config = MirrorConfig::default()
        .allow_unsigned_json(true)
        .coalesce_window(Duration::ZERO)
        .retry_backoff(Duration::from_millis(500))
        .max_attempts(1000);
    let sb = sandbox(0.5).await;
    let running = Running::start(client(&sb), db.url(), config.clone()).await;
    let socgen = bank(&sb, SOCGEN).await;
    let ids: Vec<String> = users(&sb, 12, &[socgen]).await.into_iter().map(|(u, _)| u).collect();
    let (failing, healthy) = ids.split_at(4);
    for user in failing {
        let rule = json!({"method": "GET", "path": format!("/users/{user}/connections"), "status": 500});
        control_ok(&sb, Method::POST, "/faults", Some(rule)).await;
    }
    let report = running.mirror.backfill(&Scope::users(user_ids(healthy))).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    set_webhooks(&sb, &running.url, "json").await;
    // The failing users' events first: their day is delivered before the others'.
    advance_days(&sb, 1).await;
    flush(&sb).await;
    let stored = running.mirror.db().inbox_counts().await.unwrap().total;
    assert!(stored > 0);

    let v = control_ok(&sb, Method::GET, "/requests?after=0&limit=200000", None).await;
    let start = v["data"].as_array().unwrap().last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let a = Mirror::open(client(&sb), db.url(), config.clone()).await.unwrap();
    let b = Mirror::open(client(&sb), db.url(), config).await.unwrap();
    let mut everyone = moneyhub_mirror::StatusQuery::default();
    everyone.limit = usize::MAX;
    let (wa, wb) = (a.spawn_workers(2), b.spawn_workers(2));
    let began = Instant::now();
    let bound = Duration::from_secs(60);
    loop {
        let status = a.status(&everyone).await.unwrap();
        let left: i64 = status.users.iter().filter(|u| healthy.contains(&u.user_id)).map(|u| u.pending).sum();
        if left == 0 {
            break;
        }
        assert!(began.elapsed() < bound, "{left} healthy users' events still pending after {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = began.elapsed();
    let window = took.max(Duration::from_secs(3));
    tokio::time::sleep(window.saturating_sub(took)).await;
    wa.stop().await;
    wb.stop().await;
    println!("healthy users converged in {took:?}");

    // The failing users are still pending, attempted within the back-off: 0.5 s doubling
    // allows attempts at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (+1 for timing).
    let status = a.status(&everyone).await.unwrap();
    let most = 2 + (window.as_secs_f64() / 0.5).log2().ceil() as usize;
    for user in failing {
        let pending = status.users.iter().find(|u| &u.user_id == user).map_or(0, |u| u.pending);
        assert!(pending > 0, "user {user}: its events are still pending");
        // Each attempt's listing is sent up to 4 times (the test client retries a 500 three
        // times).
        let n = requests_to(&sb, start, &format!("/users/{user}/connections")).await;
        let attempts = n.div_ceil(4);
        println!("failing user {user}: {n} requests, {attempts} attempts in {window:?}");
        assert!(
            (1..=most).contains(&attempts),
            "user {user}: {attempts} attempts in {window:?} (at most {most})"
        );
    }
    let (problems, _) = compare(&sb, a.db(), healthy).await;
    assert!(problems.is_empty(), "{} differences: {:#?}", problems.len(), &problems[..problems.len().min(5)]);
    a.db().close().await;
    b.db().close().await;
    running.stop().await;
    db.cleanup().await;
}
