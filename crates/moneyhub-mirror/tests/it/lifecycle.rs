//! The lifecycle loop over real HTTP against the sandbox: connection states and advice kept
//! current from listings and from time alone, notifications signed, delivered at least once
//! and in order per connection through an unreachable receiver, on SQLite and PostgreSQL.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use moneyhub_mirror::lifecycle::ActionFilter;
use moneyhub_mirror::notify::{verify_signature, NotifyConfig, SignatureError, DEFAULT_TOLERANCE, SIGNATURE_HEADER};
use moneyhub_mirror::{Mirror, MirrorConfig, Scope};
use moneyhub_sandbox::kit::{Control, Tweak};
use parking_lot::Mutex;
use serde_json::Value;

use crate::support::*;

const SECRET: &str = "a-test-secret-of-32-bytes-length";

/// A notification receiver: records every POST (signature header, body); answers 503 while
/// `down`.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(String, Bytes)>>>,
    pub down: Arc<std::sync::atomic::AtomicBool>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if r.down.load(std::sync::atomic::Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    r.got.lock().push((sig, body));
    StatusCode::NO_CONTENT
}

impl Receiver {
    /// Serves on a free port; returns the URL.
    pub async fn start(&self) -> String {
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// The verified bodies received so far (panics on a bad signature).
    pub fn bodies(&self) -> Vec<Value> {
        let now = chrono::Utc::now().timestamp();
        self.got
            .lock()
            .iter()
            .map(|(sig, body)| {
                verify_signature(SECRET.as_bytes(), sig, body, now, DEFAULT_TOLERANCE).expect("signature verifies");
                serde_json::from_slice(body).unwrap()
            })
            .collect()
    }
}

/// Connection-list requests (`GET /users/{id}/connections`) the sandbox served after `after`.
async fn connection_lists(sb: &moneyhub_sandbox::Sandbox, after: u64) -> usize {
    let log = Control::of(sb).requests(after, 100_000).await.unwrap();
    log.data.iter().filter(|e| e.method == "GET" && e.path.ends_with("/connections")).count()
}

async fn last_request(sb: &moneyhub_sandbox::Sandbox) -> u64 {
    Control::of(sb).requests(0, 1_000_000).await.unwrap().last_seq
}

/// Time alone: after the initial listing, with no webhooks at all, moving the clock until the
/// consent is 4 days from expiry makes the advice `reconsent` (rule 15), and the notification
/// arrives, signed, with no connection-list request made.
async fn time_alone(db: TestDb) {
    init_tracing();
    let sb = sandbox(0.0).await;
    let client = client(&sb);
    let receiver = Receiver::default();
    let hook = receiver.start().await;
    let notify = NotifyConfig::new(&hook, SECRET).unwrap();
    let mirror = Mirror::open(client.clone(), db.url(), MirrorConfig::default().notify(Some(notify)))
        .await
        .unwrap();
    let hsbc = bank(&sb, HSBC).await;
    let created = users(&sb, 1, std::slice::from_ref(&hsbc)).await;
    let (user, connections) = &created[0];
    let connection = &connections[0];
    // The consent ends in 6 days.
    let ends = sb.now() + chrono::Duration::days(6);
    Control::of(&sb).tweak(connection, &Tweak { expires_at: Some(ends), ..Default::default() }).await.unwrap();

    mirror.backfill(&Scope::users(user_ids(std::slice::from_ref(user)))).await.unwrap();
    let states = mirror.actions(&ActionFilter::default()).await.unwrap();
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!((s.action.as_deref(), s.rule), (Some("none"), 16), "{s:?}");
    assert_eq!(s.due_ms, Some((ends - chrono::Duration::days(5)).timestamp_millis()), "due when the renewal window opens");
    assert!(!s.account_types.is_empty(), "account types were read");
    assert_eq!(mirror.evaluate_due().await.unwrap(), 0, "nothing due yet");
    mirror.deliver_notifications().await.unwrap();
    assert!(receiver.got.lock().is_empty(), "a healthy first sighting is no news");

    let before = last_request(&sb).await;
    // 47 hours on: 4 days and 1 hour of consent left, data not yet stale (2 days).
    advance_hours(&sb, 47).await;
    assert_eq!(mirror.evaluate_due().await.unwrap(), 1);
    let s = &mirror.actions(&ActionFilter::default()).await.unwrap()[0];
    assert_eq!((s.action.as_deref(), s.rule), (Some("reconsent"), 15), "{s:?}");
    assert_eq!(mirror.deliver_notifications().await.unwrap(), 1);
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1);
    let n = &bodies[0];
    assert_eq!(n["type"], "connection.action_changed");
    assert_eq!((n["previous"].as_str(), n["action"].as_str()), (Some("none"), Some("reconsent")));
    assert_eq!(n["connectionId"], connection.as_str());
    assert_eq!(n["userId"], user.as_str());
    assert_eq!(connection_lists(&sb, before).await, 0, "time alone needs no API request");
    // Filtering: by action, by user, by due window.
    let f = ActionFilter::all().action("sync");
    assert!(mirror.actions(&f).await.unwrap().is_empty());
    let f = ActionFilter::all().action("reconsent").user(user.clone());
    assert_eq!(mirror.actions(&f).await.unwrap().len(), 1);
    // History: none, then reconsent.
    let history = mirror.db().connection_history(connection).await.unwrap();
    let actions: Vec<_> = history.iter().map(|h| h.action.as_deref()).collect();
    assert_eq!(actions, vec![Some("none"), Some("reconsent")]);
    mirror.db().close().await;
    drop(sb);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_alone_changes_the_advice_and_notifies_sqlite() {
    time_alone(TestDb::sqlite("lc-time")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_alone_changes_the_advice_and_notifies_postgres() {
    let Some(db) = TestDb::postgres("time_alone_changes_the_advice_and_notifies_postgres") else { return };
    time_alone(db).await;
}

/// Notifications through a receiver that answers 503 for a virtual hour: retried with back-off
/// on the mirror's clock, then delivered at least once each, in order per connection, the
/// signatures verifying; a forged or replayed one is refused by the documented check.
async fn unreachable_receiver(db: TestDb) {
    init_tracing();
    let sb = sandbox(0.0).await;
    let client = client(&sb);
    let receiver = Receiver::default();
    receiver.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let hook = receiver.start().await;
    let notify = NotifyConfig::new(&hook, SECRET).unwrap().max_attempts(1000);
    let mirror = Mirror::open(client.clone(), db.url(), MirrorConfig::default().notify(Some(notify)))
        .await
        .unwrap();
    let hsbc = bank(&sb, HSBC).await;
    let created = users(&sb, 2, std::slice::from_ref(&hsbc)).await;
    let ids: Vec<String> = created.iter().map(|(u, _)| u.clone()).collect();
    mirror.backfill(&Scope::users(user_ids(&ids))).await.unwrap();
    // Three changes per connection: stale after 2 days (sync), consent window (still sync),
    // ... made by time: 3 days on, every connection is stale (sync).
    advance_days(&sb, 3).await;
    mirror.evaluate_due().await.unwrap();
    // The receiver is down for an hour of virtual time: attempts fail and back off.
    let mut attempts = 0;
    for _ in 0..12 {
        attempts += mirror.deliver_notifications().await.unwrap();
        sb.advance_clock(chrono::Duration::minutes(5)).unwrap();
    }
    assert!(attempts >= 4, "retried while down: {attempts}");
    assert!(receiver.got.lock().is_empty());
    let counts = mirror.db().lifecycle_counts(client.now().timestamp_millis()).await.unwrap();
    assert_eq!(counts.outbox_pending, 2, "{counts:?}");
    assert!(counts.oldest_undelivered_ms.is_some());
    // A reconciliation after the user removes a connection: a second change for it, queued
    // behind the first.
    let (u0, c0) = (&created[0].0, &created[0].1[0]);
    client.connections().delete(&u0.parse().unwrap(), &c0.parse().unwrap()).await.unwrap();
    mirror.reconcile(&Scope::users(user_ids(std::slice::from_ref(u0)))).await.unwrap();
    // Back up: everything arrives, in order per connection.
    receiver.down.store(false, std::sync::atomic::Ordering::SeqCst);
    sb.advance_clock(chrono::Duration::minutes(10)).unwrap();
    for _ in 0..10 {
        if mirror.deliver_notifications().await.unwrap() == 0 {
            break;
        }
    }
    let bodies = receiver.bodies();
    let of_c0: Vec<(Option<&str>, Option<&str>)> = bodies
        .iter()
        .filter(|b| b["connectionId"] == c0.as_str())
        .map(|b| (b["previous"].as_str(), b["action"].as_str()))
        .collect();
    assert_eq!(of_c0, vec![(Some("none"), Some("sync")), (Some("sync"), None)], "in order: {bodies:?}");
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let counts = mirror.db().lifecycle_counts(client.now().timestamp_millis()).await.unwrap();
    assert_eq!((counts.outbox_pending, counts.outbox_parked), (0, 0));
    // Forged and replayed notifications fail the documented check.
    let (sig, body) = receiver.got.lock()[0].clone();
    let now = chrono::Utc::now().timestamp();
    let mut forged = body.to_vec();
    forged.extend_from_slice(b" ");
    assert_eq!(
        verify_signature(SECRET.as_bytes(), &sig, &forged, now, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        verify_signature(SECRET.as_bytes(), &sig, &body, now + 3600, DEFAULT_TOLERANCE),
        Err(SignatureError::Stale(_))
    ));
    mirror.db().close().await;
    drop(sb);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_survive_an_unreachable_receiver_sqlite() {
    unreachable_receiver(TestDb::sqlite("lc-down")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_survive_an_unreachable_receiver_postgres() {
    let Some(db) = TestDb::postgres("notifications_survive_an_unreachable_receiver_postgres") else { return };
    unreachable_receiver(db).await;
}
