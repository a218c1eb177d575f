//! Crash safety: the mirror runs as a real child process (the `mirror_node` example) and is
//! killed with SIGKILL at random points while webhooks arrive and are applied; after every
//! restart it carries on and, after a few more hours of activity, equals the sandbox again on
//! its own (no reconciliation called from outside). Nothing acknowledged is lost (every delivery the sandbox saw
//! answered 2xx is in the inbox), nothing is duplicated (one inbox row per webhook id, one
//! ledger row per applied event, transactions keyed by id), and after the final
//! reconciliation the mirror equals the sandbox exactly.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use moneyhub_mirror::{Db, Mirror, MirrorConfig, Scope};
use rand::{RngExt, SeedableRng};
use reqwest::Method;

use crate::node::{mirror_node, Node};
use crate::support::*;

/// `mirror_node`'s flags here: two workers, a 200 ms coalescing window, JSON webhooks.
const NODE_FLAGS: &[&str] = &["--workers", "2", "--coalesce-ms", "200", "--allow-unsigned-json"];

/// Webhook ids the sandbox saw acknowledged (2xx) since the log was last cleared.
async fn acknowledged(sb: &SandboxHandle, into: &mut HashSet<String>, failed: &mut u64) {
    let v = control_ok(sb, Method::GET, "/webhooks/deliveries?limit=1000000", None).await;
    for d in v["data"].as_array().unwrap() {
        match d["outcome"].as_str() {
            Some("delivered") | Some("duplicate") => {
                into.insert(d["webhookId"].as_str().unwrap().to_owned());
            }
            Some("failed") => *failed += 1,
            _ => {}
        }
    }
    control_ok(sb, Method::DELETE, "/webhooks/deliveries", None).await;
}

async fn inbox_ids(db: &Db) -> HashSet<String> {
    // The inbox is read through its JSON envelopes' ids (one row per webhook id).
    let mut ids = HashSet::new();
    let path = db.file().expect("the crash test runs on SQLite");
    {
        {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut st = conn.prepare("SELECT webhook_id FROM mirror_inbox").unwrap();
            for id in st.query_map([], |r| r.get::<_, String>(0)).unwrap() {
                assert!(ids.insert(id.unwrap()), "a webhook id stored twice");
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    init_tracing();
    let started = Instant::now();
    let bin = mirror_node();
    if std::env::var("CRASH_LOG").is_ok() {
        println!("example built in {:.1?}", started.elapsed());
    }
    let seed: u64 =
        std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("crash test seed {seed} (CRASH_SEED={seed} replays the kill points)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sb = sandbox(0.5).await;
    let db = TestDb::sqlite("crash");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    set_webhooks(&sb, &format!("http://{addr}/webhooks"), "json").await;
    set_chaos(&sb, 0.0, 0.2, 1.0).await;

    let mut node = Node::start(&bin, &sb, db.url(), &addr, NODE_FLAGS).await;
    let probe = Db::open(db.url()).await.unwrap();
    let socgen = bank(&sb, SOCGEN).await;
    let created = users(&sb, 8, std::slice::from_ref(&socgen)).await;
    let ids: Vec<String> = created.iter().map(|(u, _)| u.clone()).collect();
    if std::env::var("CRASH_LOG").is_ok() {
        println!("set up in {:.1?}", started.elapsed());
    }

    let mut acked = HashSet::new();
    let mut failed = 0u64;
    // Kill until 20 kills have hit ingestion in progress (deliveries arriving or events
    // pending), at most 40 times.
    let mut kills = 0;
    let mut in_flight = 0;
    let mut checked_restarts = 0;
    while in_flight < 20 && kills < 40 {
        let i = kills;
        kills += 1;
        // Activity; once deliveries have started arriving, a kill at a random moment while
        // they are received and applied.
        let before = probe.inbox_counts().await.unwrap();
        let hours = rng.random_range(4..30);
        // Half the kills while deliveries arrive, half while they are applied.
        let delay = Duration::from_millis(if i % 2 == 0 {
            rng.random_range(0..40)
        } else {
            rng.random_range(40..250)
        });
        let sbc = sb.sb.clone();
        let activity = tokio::spawn(async move {
            control_ok(&sbc, Method::POST, "/clock/advance", Some(serde_json::json!({"hours": hours}))).await;
            flush(&sbc).await;
        });
        let waited = Instant::now();
        while probe.inbox_counts().await.unwrap().total == before.total
            && waited.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(delay).await;
        let now = probe.inbox_counts().await.unwrap();
        in_flight += usize::from(now.pending > 0 || !activity.is_finished());
        node.kill().await;
        activity.await.unwrap();
        acknowledged(&sb, &mut acked, &mut failed).await;
        if i % 6 == 5 {
            // Deliveries while it is down: refused, lost, to be caught up by reconciliation.
            control_ok(&sb, Method::POST, "/clock/advance", Some(serde_json::json!({"hours": 3}))).await;
            flush(&sb).await;
            acknowledged(&sb, &mut acked, &mut failed).await;
        }
        let t = Instant::now();
        node = Node::start(&bin, &sb, db.url(), &addr, NODE_FLAGS).await;
        // Converged after this restart, by the mirror alone: nine more hours bring a sync of
        // every connection (API banks sync at least every 8 hours), and the reconciliation
        // each syncCompleted triggers repairs what the kill and the downtime lost.
        control_ok(&sb, Method::POST, "/clock/advance", Some(serde_json::json!({"hours": 9}))).await;
        flush(&sb).await;
        acknowledged(&sb, &mut acked, &mut failed).await;
        wait_inbox_empty(&probe, Duration::from_secs(60)).await;
        let (problems, _) = compare(&sb, &probe, &ids).await;
        assert!(
            problems.is_empty(),
            "not converged after restart {i}: {} differences, first: {:#?}",
            problems.len(),
            &problems[..problems.len().min(5)]
        );
        checked_restarts += 1;
        if std::env::var("CRASH_LOG").is_ok() {
            println!(
                "cycle {i}: restart {:.1?}, at {:.1?}, acked {}, refused {failed}",
                t.elapsed(),
                started.elapsed(),
                acked.len()
            );
        }
    }
    assert!(in_flight >= 20, "only {in_flight} kills hit ingestion in progress");
    assert_eq!(checked_restarts, kills, "convergence was checked after every restart");
    // A last stretch without kills, then the node drains and stops.
    control_ok(&sb, Method::POST, "/clock/advance", Some(serde_json::json!({"hours": 10}))).await;
    flush(&sb).await;
    acknowledged(&sb, &mut acked, &mut failed).await;
    wait_inbox_empty(&probe, Duration::from_secs(60)).await;
    node.kill().await;

    // Nothing acknowledged was lost, nothing stored twice (the primary key would refuse it).
    let stored = inbox_ids(&probe).await;
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged webhooks are not in the inbox: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let counts = probe.inbox_counts().await.unwrap();
    assert_eq!(counts.pending, 0);
    assert_eq!(counts.failed, 0);
    assert_eq!(counts.applied, counts.total);
    assert_eq!(counts.ledger, counts.applied, "one ledger row per applied event, none twice");

    // Deliveries refused while the node was down were lost: reconciliation catches up.
    let mirror = Mirror::new(client(&sb), probe.clone(), MirrorConfig::default());
    let report = mirror.reconcile(&Scope::users(user_ids(&ids))).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (problems, compared) = compare(&sb, &probe, &ids).await;
    println!(
        "{kills} SIGKILLs ({in_flight} with ingestion in progress), converged after each restart: {} webhooks acknowledged, {} refused while down, inbox {} rows; final reconciliation {:?}; \
         {compared} transactions compared in {:.1?}",
        acked.len(),
        failed,
        counts.total,
        report.totals,
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} differences, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    db.cleanup().await;
}
