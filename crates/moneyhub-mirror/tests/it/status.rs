//! `mirror status` for a fleet (migration 7): every per-user figure (live transactions,
//! tombstones, connections, pending events, last event) is kept where the data changes and
//! read back without counting history; the list of users is bounded and ordered, one user can
//! be asked for, and a database of the previous schema gets its figures counted once.

use std::collections::BTreeMap;

use moneyhub_mirror::db::{ConnectionUpdate, NewInboxEvent, TxRow, Writes};
use moneyhub_mirror::{Db, StatusQuery};
use moneyhub_types::{AccountId, ConnectionId, TransactionId, UserId};

use crate::support::*;

/// Undoes migration 7 (its columns, its index, its record): a database of schema 6 again,
/// with its data (the figures' columns dropped).
pub const BACK_TO_6: &str = "ALTER TABLE mirror_users DROP COLUMN live;
    ALTER TABLE mirror_users DROP COLUMN tombstones; ALTER TABLE mirror_users DROP COLUMN connections;
    ALTER TABLE mirror_users DROP COLUMN last_event_ms; ALTER TABLE mirror_users_due DROP COLUMN pending;
    ALTER TABLE mirror_users_due DROP COLUMN last_event_ms; DROP INDEX mirror_transactions_tombstones;
    DELETE FROM mirror_migrations WHERE version >= 7";

const A: &str = "5c79210bbac25ecb5e71ad01";
const B: &str = "5c79210bbac25ecb5e71ad02";
const C: &str = "5c79210bbac25ecb5e71ad03";

fn user(id: &str) -> UserId {
    id.parse().unwrap()
}

/// A webhook for `user`, delivery number `n`, arriving at `at` (ms).
fn event(user: &str, n: u64, at: i64) -> NewInboxEvent {
    NewInboxEvent {
        webhook_id: format!("0d0d0d0d-1c1c-4d4d-8e8e-{n:012x}").parse().unwrap(),
        user_id: Some(user.parse().unwrap()),
        event_type: moneyhub_types::WebhookEventType::NewTransactions,
        body: bytes::Bytes::from_static(b"{}"),
        content_type: "application/json".into(),
        signed: false,
        received_ms: at,
    }
}

fn tx_id(i: usize) -> TransactionId {
    format!("{i:08x}-0000-4000-8000-00000000000d").parse().unwrap()
}

fn account(i: usize) -> AccountId {
    format!("{i:08x}-1111-4000-8000-00000000000d").parse().unwrap()
}

fn connection(i: usize) -> ConnectionId {
    format!("1ffe704d39629a929c8e293880fb449a:{i:08x}-2222-4000-8000-00000000000d").parse().unwrap()
}

/// Transactions `ids` of `user` in an account of a connection.
fn rows(user: &str, ids: std::ops::Range<usize>, account: usize, connection: usize) -> Vec<TxRow> {
    ids.map(|i| TxRow {
        id: tx_id(i),
        user_id: user.parse().unwrap(),
        account_id: Some(self::account(account)),
        connection_id: Some(self::connection(connection)),
        date_ms: 1,
        modified_ms: 10,
        status: "posted".into(),
        raw: "{}".into(),
    })
    .collect()
}

fn connection_update(i: usize) -> ConnectionUpdate {
    ConnectionUpdate {
        connection_id: connection(i),
        name: Some("Bank".into()),
        status: Some("ok".into()),
        backfilled: true,
        watermark_ms: Some(10),
        last_full_ms: Some(10),
        last_reconciled_ms: Some(10),
    }
}

/// One user's figures: `(live, tombstones, connections, pending, last event)`.
type Figures = (i64, i64, i64, i64, Option<i64>);

/// The figures as a count over the tables gives them, per known user.
const COUNTED: &str = "SELECT u.user_id,
        (SELECT COUNT(*) FROM mirror_transactions t WHERE t.user_id = u.user_id AND t.deleted = 0),
        (SELECT COUNT(*) FROM mirror_transactions t WHERE t.user_id = u.user_id AND t.deleted <> 0),
        (SELECT COUNT(*) FROM mirror_connections c WHERE c.user_id = u.user_id AND c.removed = 0),
        (SELECT COUNT(*) FROM mirror_inbox i WHERE i.user_id = u.user_id AND i.state = 0),
        (SELECT MAX(received_ms) FROM mirror_inbox i WHERE i.user_id = u.user_id)
     FROM mirror_users u WHERE u.user_id <> '' ORDER BY u.user_id";

async fn counted(db: &TestDb) -> BTreeMap<String, Figures> {
    match db {
        TestDb::Sqlite { .. } => {
            let c = rusqlite::Connection::open(db.url().trim_start_matches("sqlite:")).unwrap();
            let mut s = c.prepare(COUNTED).unwrap();
            let rows = s
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))))
                .unwrap();
            rows.map(Result::unwrap).collect()
        }
        TestDb::Postgres { base, schema, .. } => {
            let (c, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();
            let rows = c.query(COUNTED, &[]).await.unwrap();
            rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))).collect()
        }
    }
}

/// Runs statements on the test database behind the mirror's back.
async fn behind(db: &TestDb, sql: &str) {
    match db {
        TestDb::Sqlite { .. } => {
            let c = rusqlite::Connection::open(db.url().trim_start_matches("sqlite:")).unwrap();
            c.execute_batch(sql).unwrap();
        }
        TestDb::Postgres { base, schema, .. } => {
            let (c, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(&format!("SET search_path TO {schema}; {sql}")).await.unwrap();
        }
    }
}

fn everyone() -> StatusQuery {
    let mut q = StatusQuery::default();
    q.limit = usize::MAX;
    q
}

/// The figures `status` shows, per user, checked against its totals.
async fn kept(store: &Db) -> BTreeMap<String, Figures> {
    let s = store.status(&everyone()).await.unwrap();
    let users: BTreeMap<String, Figures> = s
        .users
        .iter()
        .map(|u| (u.user_id.clone(), (u.live, u.tombstones, u.connections, u.pending, u.last_event_ms)))
        .collect();
    assert_eq!(users.len(), s.users.len(), "each user listed once: {s:?}");
    assert_eq!(s.users_total, users.len() as i64, "{s:?}");
    assert_eq!(s.live, users.values().map(|f| f.0).sum::<i64>(), "{s:?}");
    assert_eq!(s.tombstones, users.values().map(|f| f.1).sum::<i64>(), "{s:?}");
    users
}

/// (a) After webhooks (one by one and in a batch), a backfill in several batches, applied
/// events with tombstones and a dropped account, a failure that parks, a re-queue, a purged
/// connection and events settled from the ledger, every user's kept figures (and the totals)
/// equal a count over the tables.
async fn figures_follow_every_write(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    let check = |step: &'static str| {
        let (store, db) = (&store, &db);
        async move {
            let counted = counted(db).await;
            assert_eq!(kept(store).await, counted, "{step}");
            counted
        }
    };
    check("empty").await;
    let stored =
        store.insert_inbox_batch(vec![event(A, 1, 10), event(B, 2, 20), event(A, 3, 30)]).await.unwrap();
    assert_eq!(stored, vec![true; 3]);
    assert!(store.insert_inbox(event(C, 4, 40)).await.unwrap());
    assert!(!store.insert_inbox(event(C, 4, 40)).await.unwrap(), "a replay counts nothing");
    let n = check("stored").await;
    assert_eq!(n[A], (0, 0, 0, 2, Some(30)));

    // A backfill of A in two batches (the first written by `apply`): 300 rows, 2 connections.
    let mut claim = store.lock_user(&user(A)).await.unwrap();
    let first = Writes {
        accounts: vec![(account(1), connection(1)), (account(2), connection(1)), (account(3), connection(2))],
        upserts: [rows(A, 0..100, 1, 1), rows(A, 100..150, 2, 1)].concat(),
        connections: vec![connection_update(1), connection_update(2)],
        ..Default::default()
    };
    claim.apply(first).await.unwrap();
    let last = Writes { upserts: rows(A, 150..300, 3, 2), ..Default::default() };
    claim.finish(last, "test", 50).await.unwrap();
    drop(claim);
    let n = check("backfilled").await;
    assert_eq!(n[A], (300, 0, 2, 2, Some(30)));

    // A's events applied: 10 transactions deleted, account 2 dropped (50 rows buried).
    let mut claim = store.claim_next(100, 100, 10).await.unwrap().expect("A is due");
    assert_eq!(claim.user_id(), A);
    let w = Writes {
        tombstones: (0..10).map(|i| (tx_id(i), 10)).collect(),
        dropped_accounts: vec![account(2)],
        ..Default::default()
    };
    claim.finish(w, "test", 100).await.unwrap();
    drop(claim);
    let n = check("applied").await;
    assert_eq!(n[A], (240, 60, 2, 0, Some(30)));

    // A new webhook for A; B fails past its last attempt (parked), then is re-queued.
    assert!(store.insert_inbox(event(A, 5, 60)).await.unwrap());
    check("new webhook").await;
    let claim = store.claim_next(100, 100, 10).await.unwrap().expect("B is due");
    assert_eq!(claim.user_id(), B);
    claim.fail("boom", 100, 1, 1).await.unwrap();
    let n = check("parked").await;
    assert_eq!(n[B].3, 0);
    assert_eq!(store.requeue_parked(Some(B)).await.unwrap(), 1);
    let n = check("re-queued").await;
    assert_eq!(n[B].3, 1);

    // B applied with rows of its own; C with nothing; A's second connection purged.
    for (expected, writes) in [
        (
            B,
            Writes {
                upserts: rows(B, 1000..1010, 9, 9),
                connections: vec![connection_update(9)],
                ..Default::default()
            },
        ),
        (C, Writes::default()),
        (A, Writes { purged_connections: vec![connection(2)], ..Default::default() }),
    ] {
        let mut claim = store.claim_next(1000, 1000, 10).await.unwrap().expect("a user is due");
        assert_eq!(claim.user_id(), expected);
        claim.finish(writes, "test", 1000).await.unwrap();
    }
    let n = check("purged").await;
    assert_eq!(n[A], (90, 60, 1, 0, Some(60)));
    assert_eq!(n[B], (10, 0, 1, 0, Some(20)));

    // Two events of C settled from the ledger (a commit refused for an event applied before).
    assert!(store.insert_inbox(event(C, 6, 70)).await.unwrap());
    assert!(store.insert_inbox(event(C, 7, 80)).await.unwrap());
    check("C pending").await;
    let claim = store.claim_next(2000, 2000, 10).await.unwrap().expect("C is due");
    let seqs: Vec<i64> = claim.events().iter().map(|e| e.seq).collect();
    let ids: Vec<String> =
        claim.events().iter().map(|e| format!("('{}', 0, 'elsewhere', 1)", e.webhook_id)).collect();
    drop(claim);
    behind(
        &db,
        &format!(
            "INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms) VALUES {}",
            ids.join(",")
        ),
    )
    .await;
    assert_eq!(store.settle_applied(&seqs).await.unwrap(), 2);
    let n = check("settled").await;
    assert_eq!(n[C], (0, 0, 0, 0, Some(80)));
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_follow_every_write_on_sqlite() {
    figures_follow_every_write(TestDb::sqlite("status-figures")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_follow_every_write_on_postgres() {
    let Some(db) = TestDb::postgres("figures_follow_every_write_on_postgres") else { return };
    figures_follow_every_write(db).await;
}

/// (b) `status` reads the kept figures, never a count over history: with the history
/// deleted behind the mirror's back the figures stay, and figures changed behind its back
/// show, per user and in the totals.
async fn status_reads_kept_figures(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    assert!(store.insert_inbox(event(A, 1, 10)).await.unwrap());
    assert!(store.insert_inbox(event(B, 2, 20)).await.unwrap());
    let mut claim = store.lock_user(&user(A)).await.unwrap();
    let w = Writes {
        accounts: vec![(account(1), connection(1))],
        upserts: rows(A, 0..5, 1, 1),
        connections: vec![connection_update(1)],
        ..Default::default()
    };
    claim.finish(w, "test", 10).await.unwrap();
    drop(claim);
    let before = kept(&store).await;
    assert_eq!(before[A], (5, 0, 1, 1, Some(10)));
    assert_eq!(before[B], (0, 0, 0, 1, Some(20)));

    // The history goes: the figures stay.
    behind(&db, "DELETE FROM mirror_transactions; DELETE FROM mirror_connections").await;
    assert_eq!(kept(&store).await, before, "status counted history");

    // The kept figures change: status shows the change.
    behind(
        &db,
        &format!(
            "UPDATE mirror_users SET live = 1234, tombstones = 56, connections = 7, last_event_ms = 999
               WHERE user_id = '{A}';
             UPDATE mirror_users_due SET pending = 42, last_event_ms = 777 WHERE user_id = '{B}'"
        ),
    )
    .await;
    let after = kept(&store).await;
    assert_eq!(after[A], (1234, 56, 7, 1, Some(999)));
    assert_eq!(after[B], (0, 0, 0, 42, Some(777)));
    let s = store.status(&StatusQuery::default()).await.unwrap();
    assert_eq!((s.live, s.tombstones, s.users_total), (1234, 56, 2));
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_kept_figures_on_sqlite() {
    status_reads_kept_figures(TestDb::sqlite("status-kept")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_kept_figures_on_postgres() {
    let Some(db) = TestDb::postgres("status_reads_kept_figures_on_postgres") else { return };
    status_reads_kept_figures(db).await;
}

/// (c) The list is bounded by the limit and ordered: users with pending events first, oldest
/// pending first, then by most recent event, newest first (users with none last); the totals
/// cover everyone whatever is listed; one user can be asked for.
async fn status_lists_a_bounded_ordered_page(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    let u = |i: u8| format!("5c79210bbac25ecb5e71ae{i:02x}");
    // Users 1, 2 and 6 had events, all applied (the latest at 50, 70 and 60).
    for (n, (i, at)) in [(1, 50), (2, 70), (6, 60)].into_iter().enumerate() {
        assert!(store.insert_inbox(event(&u(i), 100 + n as u64, at)).await.unwrap());
    }
    for k in 0..3 {
        let mut claim = store.claim_next(1000, 1000, 10).await.unwrap().expect("a user is due");
        let w = Writes { upserts: rows(claim.user_id(), k * 10..k * 10 + 3, 1, 1), ..Default::default() };
        claim.finish(w, "test", 1000).await.unwrap();
    }
    // Users 3 and 5 have pending events (the oldest at 10 and 20; 5's newest at 90); user 4
    // is known without any event.
    assert!(store.insert_inbox(event(&u(5), 200, 20)).await.unwrap());
    assert!(store.insert_inbox(event(&u(3), 201, 10)).await.unwrap());
    assert!(store.insert_inbox(event(&u(5), 202, 90)).await.unwrap());
    store.add_user(&user(&u(4))).await.unwrap();

    let order = |s: &moneyhub_mirror::Status| s.users.iter().map(|x| x.user_id.clone()).collect::<Vec<_>>();
    let all = store.status(&everyone()).await.unwrap();
    assert_eq!(order(&all), [3, 5, 2, 6, 1, 4].map(u));
    let five = &all.users[1];
    assert_eq!((five.pending, five.oldest_pending_ms, five.last_event_ms), (2, Some(20), Some(90)));
    assert_eq!((all.users[2].pending, all.users[2].oldest_pending_ms), (0, None));
    assert_eq!((all.users_total, all.live, all.inbox_pending), (6, 9, 3));

    let mut q = StatusQuery::default();
    q.limit = 3;
    let page = store.status(&q).await.unwrap();
    assert_eq!(order(&page), [3, 5, 2].map(u));
    assert_eq!((page.users_total, page.live, page.inbox_pending), (6, 9, 3), "totals cover everyone");
    assert_eq!(page.users[..], all.users[..3]);
    q.limit = 0;
    let none = store.status(&q).await.unwrap();
    assert!(none.users.is_empty());
    assert_eq!(none.users_total, 6);
    // The default lists at most 20.
    assert_eq!(StatusQuery::default().limit, 20);

    let mut one = StatusQuery::default();
    one.user = Some(user(&u(6)));
    let s = store.status(&one).await.unwrap();
    assert_eq!(s.users, vec![all.users[3].clone()]);
    assert_eq!((s.users_total, s.live), (6, 9));
    one.user = Some(user("5c79210bbac25ecb5e71aeff"));
    let s = store.status(&one).await.unwrap();
    assert!(s.users.is_empty(), "an unknown user: {s:?}");
    assert_eq!(s.users_total, 6);
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_a_bounded_ordered_page_on_sqlite() {
    status_lists_a_bounded_ordered_page(TestDb::sqlite("status-page")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_a_bounded_ordered_page_on_postgres() {
    let Some(db) = TestDb::postgres("status_lists_a_bounded_ordered_page_on_postgres") else { return };
    status_lists_a_bounded_ordered_page(db).await;
}

/// A database of schema 6 with data (transactions live and buried, connections, applied,
/// pending and parked events) gets its figures counted once by migration 7.
async fn figures_of_an_older_database_are_counted_once(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    for (n, (who, at)) in [(A, 10), (B, 20), (A, 30), (C, 40), (C, 45)].into_iter().enumerate() {
        assert!(store.insert_inbox(event(who, 300 + n as u64, at)).await.unwrap());
    }
    let mut claim = store.claim_next(100, 100, 10).await.unwrap().expect("A is due");
    let w = Writes {
        accounts: vec![(account(1), connection(1)), (account(2), connection(2))],
        upserts: [rows(A, 0..20, 1, 1), rows(A, 20..30, 2, 2)].concat(),
        connections: vec![connection_update(1), connection_update(2)],
        ..Default::default()
    };
    claim.finish(w, "test", 100).await.unwrap();
    drop(claim);
    let mut claim = store.lock_user(&user(A)).await.unwrap();
    let w = Writes { tombstones: (0..4).map(|i| (tx_id(i), 10)).collect(), ..Default::default() };
    claim.finish(w, "test", 100).await.unwrap();
    drop(claim);
    let claim = store.claim_next(100, 100, 10).await.unwrap().expect("B is due");
    claim.fail("boom", 100, 1, 1).await.unwrap();
    let before = kept(&store).await;
    assert_eq!(before, counted(&db).await);
    store.close().await;

    behind(&db, BACK_TO_6).await;
    // Rows written at schema 6, by a build that kept no figures.
    behind(
        &db,
        &format!(
            "UPDATE mirror_transactions SET deleted = 1 WHERE id = '{}';
             UPDATE mirror_connections SET removed = 1 WHERE connection_id = '{}'",
            tx_id(25),
            connection(2)
        ),
    )
    .await;
    let store = Db::open(db.url()).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), TestDb::LATEST_SCHEMA);
    let after = kept(&store).await;
    assert_eq!(after, counted(&db).await);
    assert_eq!(after[A], (25, 5, 1, 0, Some(30)));
    assert_eq!(after[B], (0, 0, 0, 0, Some(20)));
    assert_eq!(after[C], (0, 0, 0, 2, Some(45)));
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_of_an_older_database_are_counted_once_on_sqlite() {
    figures_of_an_older_database_are_counted_once(TestDb::sqlite("status-migrate")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_of_an_older_database_are_counted_once_on_postgres() {
    let Some(db) = TestDb::postgres("figures_of_an_older_database_are_counted_once_on_postgres") else {
        return;
    };
    figures_of_an_older_database_are_counted_once(db).await;
}

/// The receiver never waits for a claim (PostgreSQL). A claim holds its user's row and, once
/// it has written, has updated that row's kept figures without committing; a webhook for the
/// same user must still be stored at once. Before known users were left out of the
/// receiver's `INSERT … ON CONFLICT` into `mirror_users`, the insert waited for the claim's
/// transaction, holding the user's queue row the claim locks when it finishes: a deadlock
/// PostgreSQL broke after a second by refusing the webhook (a 503 to Moneyhub).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_for_a_claimed_user_is_stored_without_waiting_on_postgres() {
    let Some(db) = TestDb::postgres("a_webhook_for_a_claimed_user_is_stored_without_waiting") else {
        return;
    };
    let store = Db::open(db.url()).await.unwrap();
    assert!(store.insert_inbox(event(A, 1, 10)).await.unwrap());
    let mut claim = store.claim_next(100, 100, 10).await.unwrap().expect("A is due");
    let w = Writes {
        accounts: vec![(account(1), connection(1))],
        upserts: rows(A, 0..10, 1, 1),
        connections: vec![connection_update(1)],
        ..Default::default()
    };
    claim.apply(w).await.unwrap();
    for (n, batch) in [(2, false), (3, true)] {
        let store = store.clone();
        let insert = async move {
            if batch {
                store.insert_inbox_batch(vec![event(A, n, 20), event(B, n + 100, 20)]).await.map(|s| s[0])
            } else {
                store.insert_inbox(event(A, n, 20)).await
            }
        };
        let stored = tokio::time::timeout(std::time::Duration::from_secs(3), insert)
            .await
            .unwrap_or_else(|_| panic!("webhook {n} (batch: {batch}) waited for the claim"));
        assert!(stored.unwrap(), "webhook {n} stored");
    }
    claim.finish(Writes::default(), "test", 100).await.unwrap();
    drop(claim);
    let mut everyone = StatusQuery::default();
    everyone.limit = 10;
    let status = store.status(&everyone).await.unwrap();
    let a = status.users.iter().find(|u| u.user_id == A).unwrap();
    assert_eq!((a.live, a.pending), (10, 2), "the claim's rows and the two webhooks after it");
    store.close().await;
    db.cleanup().await;
}
