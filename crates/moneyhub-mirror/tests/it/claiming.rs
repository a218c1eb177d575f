//! Claiming (issue 21): a failed attempt's back-off is recorded before the user is released
//! (defect 1), and users that cannot be claimed (backing off, held) never hide the users
//! that can (defect 2: head-of-line blocking).

use std::time::{Duration, Instant};

use moneyhub_mirror::db::NewInboxEvent;
use moneyhub_mirror::Db;

use crate::support::*;

/// A user id for test number `n` (24 hex digits, as Moneyhub's).
fn user(n: usize) -> String {
    format!("5c79210bbac25ecb{n:08x}")
}

/// An event for `user`, arrived at `received_ms`.
fn event(user: &str, n: usize, received_ms: i64) -> NewInboxEvent {
    NewInboxEvent {
        webhook_id: format!("0b0b0b0b-1c1c-4d4d-8e8e-{n:012x}").parse().unwrap(),
        user_id: Some(user.parse().unwrap()),
        event_type: moneyhub_types::WebhookEventType::SyncCompleted,
        body: bytes::Bytes::from_static(b"{}"),
        content_type: "application/json".into(),
        signed: false,
        received_ms,
    }
}

/// Defect 1: on PostgreSQL `fail` released the user's lock (a rollback) before it wrote the
/// attempt and the back-off, on another connection; another process claimed the user in
/// between and called Moneyhub again at once. Here the failure record is held up (a test
/// transaction locks the claimed event's inbox row) while another process (its own pool)
/// tries to claim: the user must stay unclaimable, during and after the failure record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failure_is_recorded_before_the_user_is_released() {
    let Some(db) = TestDb::postgres("postgres_failure_is_recorded_before_the_user_is_released") else {
        return;
    };
    let TestDb::Postgres { base, schema, .. } = &db else { unreachable!() };
    let a = Db::open(db.url()).await.unwrap();
    let b = Db::open(db.url()).await.unwrap();
    let u = user(1);
    assert!(a.insert_inbox(event(&u, 1, 1)).await.unwrap());
    let claim = a.claim_next(10, 10, 10).await.unwrap().expect("the user is due");
    assert_eq!(claim.user_id(), u);
    let seq = claim.events()[0].seq;

    // Hold the event's inbox row: the failure record waits for it.
    let (pg, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    pg.batch_execute(&format!("SET search_path TO {schema}; BEGIN")).await.unwrap();
    pg.execute("SELECT seq FROM mirror_inbox WHERE seq = $1 FOR UPDATE", &[&seq]).await.unwrap();
    let failing = tokio::spawn(async move { claim.fail("boom", 10, 60_000, 8).await });
    // Wait (bounded) until the failure record is blocked on that row lock.
    let began = Instant::now();
    let me: i32 = pg.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    loop {
        let waiting: i64 = pg
            .query_one("SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", &[&me])
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(20), "the failure record never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = b.claim_next(11, 11, 10).await.unwrap();
    assert!(
        other.is_none(),
        "another process claimed {:?} while the failure was being recorded",
        other.as_ref().map(|c| c.user_id().to_owned())
    );
    pg.batch_execute("COMMIT").await.unwrap();
    failing.await.unwrap().unwrap();
    assert!(b.claim_next(12, 12, 10).await.unwrap().is_none(), "the back-off holds");
    let later = b.claim_next(70_011, 70_011, 10).await.unwrap().expect("due after the back-off");
    assert_eq!(later.events()[0].attempts, 1);
    drop(later);
    a.close().await;
    b.close().await;
    db.cleanup().await;
}

/// Defect 2: claiming looked only at the 256 users with the oldest pending events; when all
/// of them were backing off, nothing was claimed. 300 users fail and back off, then one
/// healthy user's event arrives: it is claimed at once.
async fn a_backing_off_crowd_does_not_hide_a_due_user(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    for n in 0..300 {
        assert!(store.insert_inbox(event(&user(n), n, 1)).await.unwrap());
    }
    for _ in 0..300 {
        let claim = store.claim_next(10, 10, 10).await.unwrap().expect("a failing user is due");
        claim.fail("always fails", 10, 3_600_000, 100).await.unwrap();
    }
    let healthy = user(1000);
    assert!(store.insert_inbox(event(&healthy, 1000, 20)).await.unwrap());
    let claim = store.claim_next(30, 30, 10).await.unwrap();
    assert_eq!(
        claim.as_ref().map(|c| c.user_id().to_owned()),
        Some(healthy),
        "the due user was hidden behind 300 users backing off"
    );
    drop(claim);
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backing_off_crowd_does_not_hide_a_due_user_on_postgres() {
    let Some(db) = TestDb::postgres("a_backing_off_crowd_does_not_hide_a_due_user_on_postgres") else {
        return;
    };
    a_backing_off_crowd_does_not_hide_a_due_user(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backing_off_crowd_does_not_hide_a_due_user_on_sqlite() {
    a_backing_off_crowd_does_not_hide_a_due_user(TestDb::sqlite("crowd")).await;
}

/// Defect 2 on SQLite, where back-off was filtered in the query but claims held by workers
/// were not: 300 users held by claims, then a due user is still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_users_do_not_hide_a_due_user_on_sqlite() {
    let db = TestDb::sqlite("held");
    let store = Db::open(db.url()).await.unwrap();
    for n in 0..300 {
        assert!(store.insert_inbox(event(&user(n), n, 1)).await.unwrap());
    }
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(store.claim_next(10, 10, 10).await.unwrap().expect("a user is due"));
    }
    let due = user(1000);
    assert!(store.insert_inbox(event(&due, 1000, 20)).await.unwrap());
    let claim = store.claim_next(30, 30, 10).await.unwrap();
    assert_eq!(claim.as_ref().map(|c| c.user_id().to_owned()), Some(due), "hidden behind 300 held users");
    drop(held);
    store.close().await;
    db.cleanup().await;
}
