//! Issue 21: group commit in the receiver. Concurrent webhooks share one transaction; each
//! is answered only after the commit holding it, and a failed commit answers none of its
//! batch `2xx`. Fault injection in the store itself: a trigger refusing one "poison" webhook
//! id with the error a full disk gives, which fails the whole transaction it is in.
//!
//! What must hold, whatever the batching: every webhook answered `200` is in the inbox, every
//! webhook answered `503` is not (its batch rolled back: nothing half-stored), and once the
//! fault is gone the senders' retries (and replays of what was stored) leave each webhook
//! exactly once in the inbox: no loss, no duplicate.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use moneyhub_mirror::{Db, MirrorConfig};
use serde_json::json;

use crate::support::*;

const FULL: &str = "database or disk is full (injected)";

/// Refuses (or with `false`, allows again) inbox inserts of the poison webhook ids
/// (`00000000-…`).
async fn poison(db: &TestDb, mirror_db: &Db, on: bool) {
    match mirror_db.file() {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch("DROP TRIGGER IF EXISTS poison_inbox;").unwrap();
            if on {
                conn.execute_batch(&format!(
                    "CREATE TRIGGER poison_inbox BEFORE INSERT ON mirror_inbox
                     WHEN NEW.webhook_id LIKE '00000000-%' BEGIN SELECT RAISE(ABORT, '{FULL}'); END;"
                ))
                .unwrap();
            }
        }
        None => {
            let TestDb::Postgres { base, schema: s, .. } = db else { unreachable!() };
            let (pg, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            let task = tokio::spawn(conn);
            let mut sql = format!(
                "CREATE OR REPLACE FUNCTION {s}.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN IF NEW.webhook_id LIKE '00000000-%' THEN
                        RAISE EXCEPTION '{FULL}' USING ERRCODE = '53100'; END IF; RETURN NEW; END $$;
                 DROP TRIGGER IF EXISTS poison_inbox ON {s}.mirror_inbox;"
            );
            if on {
                sql.push_str(&format!(
                    "CREATE TRIGGER poison_inbox BEFORE INSERT ON {s}.mirror_inbox FOR EACH ROW EXECUTE FUNCTION {s}.refuse_poison();"
                ));
            }
            pg.batch_execute(&sql).await.unwrap();
            drop(pg);
            let _ = task.await;
        }
    }
}

/// The webhook ids in the inbox, each with how many rows it has.
async fn inbox_ids(db: &TestDb, mirror_db: &Db) -> Vec<String> {
    match mirror_db.file() {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut s = conn.prepare("SELECT webhook_id FROM mirror_inbox ORDER BY seq").unwrap();
            s.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        }
        None => {
            let TestDb::Postgres { base, schema, .. } = db else { unreachable!() };
            let (pg, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            let task = tokio::spawn(conn);
            let rows = pg
                .query(&format!("SELECT webhook_id FROM {schema}.mirror_inbox ORDER BY seq"), &[])
                .await
                .unwrap();
            drop(pg);
            let _ = task.await;
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}

/// The poison ids' first group.
const POISON: &str = "00000000";

/// A webhook id (a UUID) starting with `prefix`.
fn uuid(prefix: &str, i: usize) -> String {
    format!("{prefix}-0000-4000-8000-{i:012}")
}

fn webhook(id: &str, user: &str) -> serde_json::Value {
    json!({"id": id, "eventType": "deletedAccount", "userId": user,
           "payload": {"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}})
}

/// Posts every webhook, `concurrency` at once; returns each id with its status.
async fn post_all(url: &str, ids: &[String], user: &str, concurrency: usize) -> Vec<(String, u16)> {
    let http = http();
    futures_util::stream::iter(ids.iter().cloned())
        .map(|id| {
            let http = http.clone();
            let body = webhook(&id, user);
            async move {
                let status = http.post(url).json(&body).send().await.expect("the receiver answers").status();
                (id, status.as_u16())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

async fn a_failed_group_commit_acknowledges_nothing_of_its_batch(db: TestDb) {
    let sb = sandbox(0.0).await;
    // No workers: the inbox keeps what the receiver stored.
    let config = MirrorConfig::default().allow_unsigned_json(true);
    let running = Running::start(client(&sb), db.url(), config).await;
    let user = "5c79210bbac25ecb5e71ac40";
    poison(&db, running.mirror.db(), true).await;

    // 400 webhooks from 16 senders at once; every 25th is refused by the store.
    let ids: Vec<String> =
        (0..400).map(|i| if i % 25 == 7 { uuid(POISON, i) } else { uuid("11111111", i) }).collect();
    let answers = post_all(&running.url, &ids, user, 16).await;
    let ok: BTreeSet<String> = answers.iter().filter(|(_, s)| *s == 200).map(|(id, _)| id.clone()).collect();
    let refused: BTreeSet<String> =
        answers.iter().filter(|(_, s)| *s == 503).map(|(id, _)| id.clone()).collect();
    assert_eq!(ok.len() + refused.len(), ids.len(), "only 200 and 503: {answers:?}");
    assert!(ok.iter().all(|id| !id.starts_with(POISON)), "a refused webhook was acknowledged");
    assert_eq!(refused.iter().filter(|id| id.starts_with(POISON)).count(), 16);
    let stored: Vec<String> = inbox_ids(&db, running.mirror.db()).await;
    let stored_set: BTreeSet<String> = stored.iter().cloned().collect();
    // Acknowledged ⇔ durable: nothing answered 200 is missing, nothing answered 503 is stored.
    assert_eq!(stored_set, ok, "the inbox holds exactly the acknowledged webhooks");
    assert_eq!(stored.len(), stored_set.len(), "no webhook stored twice");
    let counts = running.mirror.counts();
    println!(
        "{}: {} acknowledged, {} refused ({} innocent webhooks shared a failed commit)",
        running.mirror.db().backend(),
        ok.len(),
        refused.len(),
        refused.len() - 16
    );
    assert_eq!(counts.stored as usize, ok.len());

    // The fault goes; the senders retry what was refused and replay what was stored.
    poison(&db, running.mirror.db(), false).await;
    let again = post_all(&running.url, &ids, user, 16).await;
    assert!(again.iter().all(|(_, s)| *s == 200), "{again:?}");
    let stored: Vec<String> = inbox_ids(&db, running.mirror.db()).await;
    let stored_set: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), ids.len(), "each webhook exactly once");
    assert_eq!(stored_set, ids.iter().cloned().collect::<BTreeSet<_>>());
    let counts = running.mirror.counts();
    assert_eq!(counts.stored as usize, ids.len());
    assert_eq!(counts.duplicates as usize, ok.len());
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_acknowledges_nothing_of_its_batch_on_sqlite() {
    a_failed_group_commit_acknowledges_nothing_of_its_batch(TestDb::sqlite("group-commit")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_acknowledges_nothing_of_its_batch_on_postgres() {
    let Some(db) = TestDb::postgres("group_commit") else { return };
    a_failed_group_commit_acknowledges_nothing_of_its_batch(db).await;
}

/// Copies of one webhook arriving together (a sender retrying while its first delivery is
/// in flight) are stored once: the first copy `stored`, the others `duplicate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_a_webhook_are_stored_once() {
    let db = TestDb::sqlite("group-commit-copies");
    let sb = sandbox(0.0).await;
    let running =
        Running::start(client(&sb), db.url(), MirrorConfig::default().allow_unsigned_json(true)).await;
    let user = "5c79210bbac25ecb5e71ac40";
    let ids: Vec<String> = (0..64).map(|i| uuid("22222222", i % 8)).collect();
    let answers = post_all(&running.url, &ids, user, 16).await;
    assert!(answers.iter().all(|(_, s)| *s == 200), "{answers:?}");
    let stored = inbox_ids(&db, running.mirror.db()).await;
    assert_eq!(stored.len(), 8, "{stored:?}");
    let counts = running.mirror.counts();
    assert_eq!((counts.stored, counts.duplicates), (8, 56));
    running.stop().await;
    db.cleanup().await;
}
