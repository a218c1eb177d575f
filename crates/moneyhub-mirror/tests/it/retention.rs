//! Retention (issue 21): applied events and their ledger rows past the retention are purged in
//! bounded batches; pending and parked events are kept; the queue counts come from partial
//! indexes.

use moneyhub_mirror::db::{NewInboxEvent, Writes};
use moneyhub_mirror::Db;

use crate::support::*;

fn event(user: &str, n: usize) -> NewInboxEvent {
    NewInboxEvent {
        webhook_id: format!("0c0c0c0c-1c1c-4d4d-8e8e-{n:012x}").parse().unwrap(),
        user_id: Some(user.parse().unwrap()),
        event_type: moneyhub_types::WebhookEventType::SyncCompleted,
        body: bytes::Bytes::from_static(b"{}"),
        content_type: "application/json".into(),
        signed: false,
        received_ms: 1,
    }
}

async fn applied_events_are_purged_in_batches(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    let (a, b, c) = ("5c79210bbac25ecb5e71aa01", "5c79210bbac25ecb5e71aa02", "5c79210bbac25ecb5e71aa03");
    for n in 0..3 {
        assert!(store.insert_inbox(event(a, n)).await.unwrap());
    }
    let mut claim = store.claim_next(10, 10, 10).await.unwrap().expect("a is due");
    assert_eq!((claim.user_id(), claim.events().len()), (a, 3));
    claim.finish(Writes::default(), "test", 100).await.unwrap();
    drop(claim);
    // b stays pending (its event arrives later than the claims below look), c is parked.
    assert!(store.insert_inbox(event(c, 10)).await.unwrap());
    let claim = store.claim_next(20, 20, 10).await.unwrap().expect("c is due");
    assert_eq!(claim.user_id(), c);
    claim.fail("boom", 20, 1000, 1).await.unwrap();
    let mut late = event(b, 20);
    late.received_ms = 1_000_000;
    assert!(store.insert_inbox(late).await.unwrap());

    assert_eq!(store.purge_applied(100, 1000).await.unwrap(), (0, 0), "nothing applied before 100");
    assert_eq!(store.purge_applied(101, 2).await.unwrap(), (2, 2), "one bounded batch");
    assert_eq!(store.purge_applied(101, 2).await.unwrap(), (1, 1));
    assert_eq!(store.purge_applied(101, 2).await.unwrap(), (0, 0));
    let counts = store.inbox_counts().await.unwrap();
    assert_eq!(
        (counts.total, counts.applied, counts.ledger, counts.pending, counts.failed),
        (2, 0, 0, 1, 1),
        "{counts:?}"
    );
    let queue = store.queue_counts().await.unwrap();
    assert_eq!((queue.pending, queue.parked, queue.oldest_pending_ms), (1, 1, Some(1_000_000)));
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_events_are_purged_in_batches_on_sqlite() {
    applied_events_are_purged_in_batches(TestDb::sqlite("retention")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_events_are_purged_in_batches_on_postgres() {
    let Some(db) = TestDb::postgres("applied_events_are_purged_in_batches_on_postgres") else { return };
    applied_events_are_purged_in_batches(db).await;
}

/// The inbox's counts as a `COUNT(*)` over the tables gives them:
/// `(pending, retrying, applied, parked, ledger)`.
async fn counted(db: &TestDb) -> (i64, i64, i64, i64, i64) {
    let sql = "SELECT (SELECT COUNT(*) FROM mirror_inbox WHERE state = 0),
                      (SELECT COUNT(*) FROM mirror_inbox WHERE state = 0 AND attempts > 0),
                      (SELECT COUNT(*) FROM mirror_inbox WHERE state = 1),
                      (SELECT COUNT(*) FROM mirror_inbox WHERE state = 2),
                      (SELECT COUNT(*) FROM mirror_applied_events)";
    match db {
        TestDb::Sqlite { .. } => {
            let c = rusqlite::Connection::open(db.url().trim_start_matches("sqlite:")).unwrap();
            c.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).unwrap()
        }
        TestDb::Postgres { base, schema, .. } => {
            let (c, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();
            let r = c.query_one(sql, &[]).await.unwrap();
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
        }
    }
}

/// Issue 21: `/metrics` and `mirror status` read counts kept in the transactions that change
/// the inbox (migration 5), not a count over it. They agree with `COUNT(*)` after every kind
/// of change (stored, applied, failed, parked, re-queued, purged, folded), and a count changed
/// behind the inbox's back shows, so the inbox itself is not read.
async fn counts_are_kept_not_counted(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    let (a, b, c) = ("5c79210bbac25ecb5e71ab01", "5c79210bbac25ecb5e71ab02", "5c79210bbac25ecb5e71ab03");
    let check = |step: &'static str| {
        let store = store.clone();
        let db = &db;
        async move {
            let k = store.inbox_counts().await.unwrap();
            let kept = (k.pending, k.retrying, k.applied, k.failed, k.ledger);
            assert_eq!(kept, counted(db).await, "{step}: {k:?}");
            assert_eq!(k.total, k.pending + k.applied + k.failed, "{step}");
            let q = store.queue_counts().await.unwrap();
            assert_eq!((q.pending, q.retrying, q.parked), (k.pending, k.retrying, k.failed), "{step}");
        }
    };
    check("empty").await;
    for (n, user) in [a, a, b, c, c].into_iter().enumerate() {
        assert!(store.insert_inbox(event(user, 100 + n)).await.unwrap());
    }
    assert!(!store.insert_inbox(event(a, 100)).await.unwrap(), "a replay");
    check("stored").await;
    let mut claim = store.claim_next(10, 10, 10).await.unwrap().expect("a is due");
    claim.finish(Writes::default(), "test", 100).await.unwrap();
    drop(claim);
    check("applied").await;
    let claim = store.claim_next(10, 10, 10).await.unwrap().expect("b is due");
    claim.fail("boom", 10, 1, 3).await.unwrap();
    check("failed once").await;
    let claim = store.claim_next(10, 10, 10).await.unwrap().expect("c is due");
    claim.fail("boom", 10, 1, 1).await.unwrap();
    check("parked").await;
    assert_eq!(store.requeue_parked(Some(c)).await.unwrap(), 2);
    check("re-queued").await;
    assert_eq!(store.purge_applied(101, 1000).await.unwrap(), (2, 2));
    check("purged").await;
    store.compact_counts().await.unwrap();
    store.compact_counts().await.unwrap();
    check("folded").await;
    // A count changed behind the inbox's back shows: the reads use the kept counts.
    let behind = match &db {
        TestDb::Sqlite { .. } => "UPDATE mirror_inbox_counts SET pending = pending + 1000".to_owned(),
        TestDb::Postgres { schema, .. } => format!(
            "INSERT INTO {schema}.mirror_inbox_counts (pending, retrying, applied, parked, ledger) VALUES (1000, 0, 0, 0, 0)"
        ),
    };
    let before = store.queue_counts().await.unwrap().pending;
    match &db {
        TestDb::Sqlite { .. } => {
            let c = rusqlite::Connection::open(db.url().trim_start_matches("sqlite:")).unwrap();
            c.execute_batch(&behind).unwrap();
        }
        TestDb::Postgres { base, schema, .. } => {
            let (c, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(&behind).await.unwrap();
            // Folded into one row.
            store.compact_counts().await.unwrap();
            let rows: i64 = c
                .query_one(&format!("SELECT COUNT(*) FROM {schema}.mirror_inbox_counts"), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(rows, 1);
        }
    }
    assert_eq!(store.queue_counts().await.unwrap().pending, before + 1000);
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_kept_not_counted_on_sqlite() {
    counts_are_kept_not_counted(TestDb::sqlite("counts")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_kept_not_counted_on_postgres() {
    let Some(db) = TestDb::postgres("counts_are_kept_not_counted_on_postgres") else { return };
    counts_are_kept_not_counted(db).await;
}
