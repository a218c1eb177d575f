//! Several workers on one inbox: two mirror processes' worth of workers (separate
//! connection pools) on one PostgreSQL schema, and several workers on SQLite. Every event is
//! applied exactly once (the ledger's primary key would refuse a second application, and its
//! row count equals the inbox's), each user's events in arrival order, and the result equals
//! the sandbox.

use std::collections::HashMap;
use std::time::Duration;

use moneyhub_mirror::{Mirror, MirrorConfig, Scope};
use tokio_postgres::NoTls;

use crate::support::*;

/// A backlog: `users` users with history and `days` days of activity delivered (chaos:
/// duplicates, shuffles) to a receiver with no workers.
async fn backlog(db: &TestDb, users_n: usize, days: i64) -> (SandboxHandle, Vec<String>) {
    let sb = sandbox(0.5).await;
    let receiver =
        Running::start(client(&sb), db.url(), MirrorConfig::default().allow_unsigned_json(true)).await;
    set_webhooks(&sb, &receiver.url, "json").await;
    set_chaos(&sb, 0.0, 0.2, 1.0).await;
    let socgen = bank(&sb, SOCGEN).await;
    let ids: Vec<String> =
        users(&sb, users_n, std::slice::from_ref(&socgen)).await.into_iter().map(|u| u.0).collect();
    for _ in 0..days {
        advance_days(&sb, 1).await;
        flush(&sb).await;
    }
    receiver.stop().await;
    (sb, ids)
}

fn config() -> MirrorConfig {
    MirrorConfig::default().allow_unsigned_json(true).coalesce_window(Duration::ZERO).claim_limit(40)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_workers_of_two_processes_apply_each_event_once_in_order() {
    let Some(db) = TestDb::postgres("postgres_workers") else { return };
    init_tracing();
    let (sb, ids) = backlog(&db, 12, 4).await;
    let a = Mirror::open(client(&sb), db.url(), config()).await.unwrap();
    let b = Mirror::open(client(&sb), db.url(), config()).await.unwrap();
    let total = a.db().inbox_counts().await.unwrap().total;
    assert!(total > 100, "a backlog of {total} events");
    let wa = a.spawn_workers(2);
    let wb = b.spawn_workers(2);
    wait_inbox_empty(a.db(), Duration::from_secs(120)).await;
    wa.stop().await;
    wb.stop().await;
    let (ca, cb) = (a.counts(), b.counts());
    println!("process A {ca:?}\nprocess B {cb:?}");
    assert!(ca.applied > 0 && cb.applied > 0, "both processes took part");
    assert_eq!(ca.applied + cb.applied, total as u64, "every event applied once across processes");
    assert_eq!(ca.double_apply_refused + cb.double_apply_refused, 0);
    let counts = a.db().inbox_counts().await.unwrap();
    assert_eq!((counts.applied, counts.ledger, counts.pending), (total, total, 0));
    check_order_and_ledger_pg(&db).await;

    // The ledger refuses a second application: make an applied event pending again (as a
    // stale claim would see it) and let a worker try.
    let (base, schema) = match &db {
        TestDb::Postgres { base, schema, .. } => (base.clone(), schema.clone()),
        TestDb::Sqlite { .. } => unreachable!(),
    };
    let (pg, conn) = tokio_postgres::connect(&base, NoTls).await.unwrap();
    tokio::spawn(conn);
    pg.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();
    pg.execute("UPDATE mirror_inbox SET state = 0 WHERE seq = (SELECT MIN(seq) FROM mirror_inbox)", &[])
        .await
        .unwrap();
    let r = a.drain(1).await.unwrap();
    assert_eq!(r.failed, 1, "the commit was refused");
    assert_eq!(a.counts().double_apply_refused, 1);
    let counts = a.db().inbox_counts().await.unwrap();
    assert_eq!(
        (counts.applied, counts.ledger, counts.pending),
        (total, total, 0),
        "settled, not applied twice"
    );

    let report = a.reconcile(&Scope::users(user_ids(&ids))).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (problems, _) = compare(&sb, a.db(), &ids).await;
    assert!(problems.is_empty(), "{:#?}", &problems[..problems.len().min(5)]);
    a.db().close().await;
    b.db().close().await;
    db.cleanup().await;
}

/// Per user, events were applied in arrival order: the ledger's application times never go
/// backwards along the inbox order.
async fn check_order_and_ledger_pg(db: &TestDb) {
    let TestDb::Postgres { base, schema, .. } = db else { unreachable!() };
    let (pg, conn) = tokio_postgres::connect(base, NoTls).await.unwrap();
    tokio::spawn(conn);
    pg.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();
    let rows = pg
        .query(
            "SELECT i.user_id, i.seq, l.applied_ms, l.worker FROM mirror_inbox i
             JOIN mirror_applied_events l ON l.webhook_id = i.webhook_id ORDER BY i.user_id, i.seq",
            &[],
        )
        .await
        .unwrap();
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut workers = std::collections::HashSet::new();
    for r in rows {
        let (user, seq, at, worker): (String, i64, i64, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        workers.insert(worker);
        if let Some(prev) = last.insert(user.clone(), at) {
            assert!(at >= prev, "user {user}: event {seq} applied before an earlier one");
        }
    }
    assert!(workers.len() >= 2, "several workers applied events: {workers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_workers_apply_each_event_once_in_order() {
    init_tracing();
    let db = TestDb::sqlite("workers");
    let (sb, ids) = backlog(&db, 6, 3).await;
    let m = Mirror::open(client(&sb), db.url(), config()).await.unwrap();
    let total = m.db().inbox_counts().await.unwrap().total;
    let w = m.spawn_workers(3);
    wait_inbox_empty(m.db(), Duration::from_secs(120)).await;
    w.stop().await;
    let counts = m.db().inbox_counts().await.unwrap();
    assert_eq!((counts.applied, counts.ledger), (total, total));
    let conn = rusqlite::Connection::open(m.db().file().expect("an SQLite file")).unwrap();
    let mut st = conn
        .prepare(
            "SELECT i.user_id, l.applied_ms FROM mirror_inbox i
             JOIN mirror_applied_events l ON l.webhook_id = i.webhook_id ORDER BY i.user_id, i.seq",
        )
        .unwrap();
    let mut last: HashMap<String, i64> = HashMap::new();
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).unwrap() {
        let (user, at) = row.unwrap();
        if let Some(prev) = last.insert(user.clone(), at) {
            assert!(at >= prev, "user {user}: applied out of order");
        }
    }
    let report = m.reconcile(&Scope::users(user_ids(&ids))).await.unwrap();
    assert!(report.errors.is_empty());
    let (problems, _) = compare(&sb, m.db(), &ids).await;
    assert!(problems.is_empty(), "{:#?}", &problems[..problems.len().min(5)]);
    db.cleanup().await;
}
