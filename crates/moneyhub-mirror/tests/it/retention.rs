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
        envelope: "{}".into(),
        body: b"{}".to_vec(),
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
