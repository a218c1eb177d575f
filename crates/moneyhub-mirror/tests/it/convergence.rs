//! Convergence: 60 virtual days of activity for 50 users (automatic syncs, pending → posted
//! in place and under new ids, withdrawn and restored transactions, a dropped account, a
//! deleted connection, a withdrawn provider) delivered over real HTTP through webhook chaos
//! (10 % dropped, 20 % duplicated, every batch shuffled), signed (SQLite) or unsigned JSON
//! (PostgreSQL). After the final reconciliation the
//! mirror equals the sandbox transaction by transaction, field by field.

use std::time::{Duration, Instant};

use moneyhub_mirror::{MirrorConfig, Scope};
use reqwest::Method;

use crate::support::*;

pub struct Scenario {
    pub users: usize,
    pub days: i64,
    /// `jwt` (signed, verified against the sandbox's JWKS) or `json` (unsigned, opted in).
    pub format: &'static str,
}

pub async fn run(db: TestDb, s: Scenario, workers: usize) {
    init_tracing();
    let started = Instant::now();
    let sb = sandbox(0.5).await;
    let client = client(&sb);
    let config = MirrorConfig::default().allow_unsigned_json(s.format == "json");
    let running = Running::start(client.clone(), db.url(), config).await;
    let workers_handle = running.mirror.spawn_workers(workers);
    set_webhooks(&sb, &running.url, s.format).await;
    set_chaos(&sb, 0.1, 0.2, 1.0).await;

    let socgen = bank(&sb, SOCGEN).await;
    let created = users(&sb, s.users, std::slice::from_ref(&socgen)).await;
    let ids: Vec<String> = created.iter().map(|(u, _)| u.clone()).collect();
    // Three users get a second bank: one will lose an account, one a connection, one its
    // provider.
    let hsbc_conn = connect(&sb, &ids[0], &bank(&sb, HSBC).await).await;
    let monzo_conn = connect(&sb, &ids[1], &bank(&sb, MONZO).await).await;
    let northwind = bank(&sb, NORTHWIND).await;
    connect(&sb, &ids[2], &northwind).await;
    let set_up = started.elapsed();

    let mut stats = DeliveryStats::default();
    let (mut t_adv, mut t_flush) = (Duration::ZERO, Duration::ZERO);
    for day in 1..=s.days {
        let t = Instant::now();
        advance_days(&sb, 1).await;
        t_adv += t.elapsed();
        if day == s.days / 3 {
            // The provider drops HSBC's savings account (`deletedAccount`).
            let c = client
                .connections()
                .get(&ids[0].parse().unwrap(), &hsbc_conn.parse().unwrap())
                .await
                .unwrap();
            let savings = c.account_ids.last().unwrap().as_str().to_owned();
            control_ok(&sb, Method::POST, &format!("/accounts/{savings}/drop"), None).await;
        }
        if day == s.days / 2 {
            // The user deletes the Monzo connection: no webhook; the mirror must notice.
            client
                .connections()
                .delete(&ids[1].parse().unwrap(), &monzo_conn.parse().unwrap())
                .await
                .unwrap();
        }
        if day == 2 * s.days / 3 {
            // Northwind is withdrawn: its connection stays, errors, and keeps its data.
            control_ok(&sb, Method::POST, &format!("/providers/{northwind}/remove"), None).await;
        }
        let t = Instant::now();
        flush(&sb).await;
        t_flush += t.elapsed();
        delivery_stats(&sb, &mut stats).await;
    }
    let simulated = started.elapsed();
    assert_eq!(stats.failed, 0, "every delivery is accepted: {stats:?}");
    wait_inbox_empty(running.mirror.db(), Duration::from_secs(120)).await;
    let caught_up = started.elapsed();
    workers_handle.stop().await;

    let report = running.mirror.reconcile(&Scope::all().discover(true)).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (problems, compared) = compare(&sb, running.mirror.db(), &ids).await;
    let counts = running.mirror.db().inbox_counts().await.unwrap();
    println!(
        "{} users x {} days on {}, {} webhooks: {} deliveries ({} dropped, {} duplicated), \
         inbox {} rows; set-up {:.1?}, simulated {:.1?} (advancing {t_adv:.1?}, delivering {t_flush:.1?}), \
         caught up {:.1?}, total {:.1?}, cpu {:.1?}; processor {:?}, {:?}; \
         final reconciliation {:?}, {compared} transactions compared",
        s.users,
        s.days,
        running.mirror.db().backend(),
        s.format,
        stats.delivered,
        stats.dropped,
        stats.duplicates,
        counts.total,
        set_up,
        simulated,
        caught_up,
        started.elapsed(),
        cpu_time(),
        running.mirror.counts(),
        running.mirror.totals(),
        report.totals,
    );
    assert!(
        problems.is_empty(),
        "{} differences, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert!(compared > s.users * 500, "the scenario produced data ({compared} transactions)");
    assert_eq!(counts.pending, 0);
    assert_eq!(counts.failed, 0);
    assert_eq!(counts.ledger, counts.applied, "one ledger row per applied event");
    assert!(stats.dropped > 0 && stats.duplicates > 0, "chaos happened: {stats:?}");
    assert_eq!(running.mirror.counts().double_apply_refused, 0);
    assert_eq!(running.mirror.counts().refused, 0, "every genuine webhook verifies");
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_mirror_equals_the_sandbox_after_60_days_of_50_users() {
    // Signed webhooks here, unsigned JSON on PostgreSQL: both formats go the whole way.
    run(TestDb::sqlite("convergence"), Scenario { users: 50, days: 60, format: "jwt" }, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_mirror_equals_the_sandbox_after_60_days_of_50_users() {
    let Some(db) = TestDb::postgres("postgres_mirror_equals_the_sandbox_after_60_days_of_50_users") else {
        return;
    };
    run(db, Scenario { users: 50, days: 60, format: "json" }, 2).await;
}
