//! The lifecycle loop over real HTTP against the sandbox: connection states and advice kept
//! current from listings and from time alone, notifications signed, delivered at least once
//! and in order per connection through an unreachable receiver, on SQLite and PostgreSQL.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use moneyhub_mirror::lifecycle::ActionFilter;
use moneyhub_mirror::notify::{
    verify_signature, NotifyConfig, SignatureError, DEFAULT_TOLERANCE, SIGNATURE_HEADER,
};
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
                verify_signature(SECRET.as_bytes(), sig, body, now, DEFAULT_TOLERANCE)
                    .expect("signature verifies");
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
    let mirror =
        Mirror::open(client.clone(), db.url(), MirrorConfig::default().notify(Some(notify))).await.unwrap();
    let hsbc = bank(&sb, HSBC).await;
    let created = users(&sb, 1, std::slice::from_ref(&hsbc)).await;
    let (user, connections) = &created[0];
    let connection = &connections[0];
    // The consent ends in 6 days.
    let ends = sb.now() + chrono::Duration::days(6);
    Control::of(&sb)
        .tweak(connection, &Tweak { expires_at: Some(ends), ..Default::default() })
        .await
        .unwrap();

    mirror.backfill(&Scope::users(user_ids(std::slice::from_ref(user)))).await.unwrap();
    let states = mirror.actions(&ActionFilter::default()).await.unwrap();
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!((s.action.as_deref(), s.rule), (Some("none"), 16), "{s:?}");
    assert_eq!(
        s.due_ms,
        Some((ends - chrono::Duration::days(5)).timestamp_millis()),
        "due when the renewal window opens"
    );
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

/// A notification is due at once, not at the time of the evaluation that wrote it: a clock
/// read later may be earlier. `mirror run` against a frozen sandbox follows it by reading it
/// every 200 ms and adding the time elapsed since, so a reading late in a long interval is
/// ahead of the readings after the next re-read (and of another process's): here the clock
/// is a second ahead while the due row is evaluated, then back on the sandbox's time, which
/// stands still. (The flaky CLI test `notifications_survive_sigkill_mid_delivery_postgres`:
/// "the first delivery started: not within 90s".)
async fn clock_read_back(db: TestDb) {
    init_tracing();
    let sb = sandbox(0.0).await;
    let skew_ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let client = {
        let (clock, skew) = (sb.clone(), skew_ms.clone());
        moneyhub::Client::builder()
            .sandbox(sb.base_url())
            .clock(move || {
                clock.now() + chrono::Duration::milliseconds(skew.load(std::sync::atomic::Ordering::SeqCst))
            })
            .build()
            .unwrap()
    };
    let receiver = Receiver::default();
    let hook = receiver.start().await;
    let notify = NotifyConfig::new(&hook, SECRET).unwrap();
    let mirror =
        Mirror::open(client.clone(), db.url(), MirrorConfig::default().notify(Some(notify))).await.unwrap();
    let hsbc = bank(&sb, HSBC).await;
    let created = users(&sb, 1, std::slice::from_ref(&hsbc)).await;
    let (user, connections) = &created[0];
    let ends = sb.now() + chrono::Duration::days(6);
    Control::of(&sb)
        .tweak(&connections[0], &Tweak { expires_at: Some(ends), ..Default::default() })
        .await
        .unwrap();
    mirror.backfill(&Scope::users(user_ids(std::slice::from_ref(user)))).await.unwrap();
    advance_hours(&sb, 47).await;
    skew_ms.store(1000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(mirror.evaluate_due().await.unwrap(), 1);
    skew_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(mirror.deliver_notifications().await.unwrap(), 1, "the notification is due at once");
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        (bodies[0]["previous"].as_str(), bodies[0]["action"].as_str()),
        (Some("none"), Some("reconsent"))
    );
    // `at` is still the evaluation's time.
    let at = (sb.now() + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(bodies[0]["at"], at.as_str());
    mirror.db().close().await;
    drop(sb);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_due_at_once_whatever_the_clock_reads_later_sqlite() {
    clock_read_back(TestDb::sqlite("lc-clock-back")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_due_at_once_whatever_the_clock_reads_later_postgres() {
    let Some(db) = TestDb::postgres("a_notification_is_due_at_once_whatever_the_clock_reads_later_postgres")
    else {
        return;
    };
    clock_read_back(db).await;
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
    let mirror =
        Mirror::open(client.clone(), db.url(), MirrorConfig::default().notify(Some(notify))).await.unwrap();
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
    // The metrics show it.
    let served = Running::serve(mirror.clone()).await;
    let metrics =
        http().get(served.url.replace("/webhooks", "/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        "moneyhub_mirror_connections{action=\"sync\"} 2",
        "moneyhub_mirror_connection_states{status=\"ok\",error=\"\"} 2",
        "moneyhub_mirror_notifications{state=\"pending\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("moneyhub_mirror_notifications_total{outcome=\"failed\"} ")
            && !l.ends_with(" 0")));
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("moneyhub_mirror_oldest_undelivered_notification_seconds ")
            && !l.ends_with(" 0")));
    served.stop().await;
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

/// A client of the sandbox whose manual-sync guard lives in the mirror's database.
async fn guarded_client(sb: &std::sync::Arc<moneyhub_sandbox::Sandbox>, db_url: &str) -> moneyhub::Client {
    let store = moneyhub_mirror::DbGuardStore::open(db_url).await.unwrap();
    let clock = sb.clone();
    moneyhub::Client::builder()
        .sandbox(sb.base_url())
        .clock(move || clock.now())
        .sync_guard(moneyhub::guard::DefaultSyncGuard::with_store(
            moneyhub::guard::GuardRules::default(),
            store,
        ))
        .build()
        .unwrap()
}

async fn manual_syncs(sb: &moneyhub_sandbox::Sandbox) -> usize {
    let log = Control::of(sb).requests(0, 1_000_000).await.unwrap();
    log.data.iter().filter(|e| e.method == "POST" && e.path.contains("/sync/")).count()
}

/// `--auto-sync` across two mirrors sharing one database: a `sync_error` connection gets
/// exactly one manual sync per guard window, and once that sync has failed too the advice moves
/// on to the next remedy (spec §3 rows 9 → 10).
async fn auto_sync(db: TestDb) {
    init_tracing();
    let sb = sandbox(0.0).await;
    let hsbc = bank(&sb, HSBC).await;
    let created = users(&sb, 1, std::slice::from_ref(&hsbc)).await;
    let (user, connections) = &created[0];
    let connection = &connections[0];
    control_ok(
        &sb,
        reqwest::Method::PUT,
        &format!("/connections/{connection}/state"),
        Some(serde_json::json!({"state": "failing"})),
    )
    .await;
    // The next automatic sync fails.
    advance_hours(&sb, 5).await;
    let config = || MirrorConfig::default().auto_sync(Some(moneyhub_mirror::AutoSync::per_minute(10)));
    let a = Mirror::open(guarded_client(&sb, db.url()).await, db.url(), config()).await.unwrap();
    let b = Mirror::open(guarded_client(&sb, db.url()).await, db.url(), config()).await.unwrap();
    a.backfill(&Scope::users(user_ids(std::slice::from_ref(user)))).await.unwrap();
    let s = &a.actions(&ActionFilter::all()).await.unwrap()[0];
    assert_eq!((s.error(), s.action.as_deref(), s.rule), (Some("sync_error"), Some("sync"), 9), "{s:?}");

    // Both processes find it due at once; the shared guard lets one sync through.
    let (ra, rb) = tokio::join!(a.evaluate_due(), b.evaluate_due());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(manual_syncs(&sb).await, 1);
    for _ in 0..3 {
        a.evaluate_due().await.unwrap();
        b.evaluate_due().await.unwrap();
    }
    assert_eq!(manual_syncs(&sb).await, 1, "one manual sync per guard window");
    let s = &a.actions(&ActionFilter::all()).await.unwrap()[0];
    assert_eq!(s.action.as_deref(), Some("sync"));
    assert!(s.not_before_ms.is_some() && s.last_manual_sync_ms.is_some(), "{s:?}");

    // The sync runs (and fails); the next listing shows it: retried, so reconsent (row 10).
    // Through the control API, which runs the due events (the async sync's fetch) before it
    // answers; moving the clock alone leaves them to a later request and races the listing.
    control_ok(&sb, reqwest::Method::POST, "/clock/advance", Some(serde_json::json!({"minutes": 5}))).await;
    a.reconcile(&Scope::users(user_ids(std::slice::from_ref(user)))).await.unwrap();
    let s = &a.actions(&ActionFilter::all()).await.unwrap()[0];
    assert_eq!((s.action.as_deref(), s.rule), (Some("reconsent"), 10), "{s:?}");
    // Past the guard window: no further manual sync, the advice no longer asks for one.
    control_ok(&sb, reqwest::Method::POST, "/clock/advance", Some(serde_json::json!({"minutes": 31}))).await;
    a.evaluate_due().await.unwrap();
    b.evaluate_due().await.unwrap();
    assert_eq!(manual_syncs(&sb).await, 1);
    a.db().close().await;
    b.db().close().await;
    drop(sb);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_sync_makes_one_manual_sync_per_guard_window_sqlite() {
    auto_sync(TestDb::sqlite("lc-auto")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_sync_makes_one_manual_sync_per_guard_window_postgres() {
    let Some(db) = TestDb::postgres("auto_sync_makes_one_manual_sync_per_guard_window_postgres") else {
        return;
    };
    auto_sync(db).await;
}

/// A reauth through the sandbox's OIDC flow keeping only `accounts` of `connection`; returns
/// the connection id the id_token names.
async fn reauth_with(
    sb: &moneyhub_sandbox::Sandbox,
    user: &str,
    connection: &str,
    accounts: &[String],
) -> String {
    const REDIRECT: &str = "http://127.0.0.1:9999/cb";
    let claims = serde_json::json!({"id_token": {"sub": {"essential": true, "value": user},
        "mh:con_id": {"essential": true, "value": connection}}})
    .to_string();
    let subset = accounts.join(",");
    let form = [
        ("client_id", sb.client_id()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("prompt", "consent"),
        ("scope", "openid reauth"),
        ("claims", claims.as_str()),
        ("sandbox_accounts", subset.as_str()),
    ];
    let res = http()
        .post(format!("{}/oidc/request", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let res = http()
        .get(format!("{}/oidc/auth", sb.base_url()))
        .query(&[("request_uri", body["request_uri"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").expect("a code").1.into_owned();
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let body: Value = res.json().await.unwrap();
    let payload = body["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    use base64::Engine;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
            .unwrap();
    claims["mh:con_id"].as_str().unwrap().to_owned()
}

/// A reauth with a subset of accounts (spec §5): the chosen accounts move to a new connection
/// id, which the mirror records as moved from the old one; the old keeps the others.
async fn reauth_subset(db: TestDb) {
    init_tracing();
    let sb = sandbox(0.0).await;
    let client = client(&sb);
    let mirror = Mirror::open(client.clone(), db.url(), MirrorConfig::default()).await.unwrap();
    let hsbc = bank(&sb, HSBC).await;
    let created = users(&sb, 1, std::slice::from_ref(&hsbc)).await;
    let (user, connections) = &created[0];
    let old = &connections[0];
    let scope = Scope::users(user_ids(std::slice::from_ref(user)));
    mirror.backfill(&scope).await.unwrap();
    let before = &mirror.actions(&ActionFilter::all()).await.unwrap()[0];
    let accounts: Vec<String> = before.account_types.keys().cloned().collect();
    assert!(accounts.len() >= 2, "HSBC has several accounts: {accounts:?}");
    let moved = accounts[1..].to_vec();
    let new = reauth_with(&sb, user, old, &moved).await;
    assert_ne!(&new, old);
    mirror.reconcile(&scope).await.unwrap();
    let states = mirror.actions(&ActionFilter::all()).await.unwrap();
    assert_eq!(states.len(), 2, "{states:?}");
    let old_state = states.iter().find(|s| &s.connection_id == old).expect("the old connection");
    let new_state = states.iter().find(|s| s.connection_id == new).expect("the new connection");
    assert_eq!(new_state.moved_from.as_deref(), Some(old.as_str()));
    let mut got: Vec<String> = new_state.account_types.keys().cloned().collect();
    got.sort();
    let mut want = moved.clone();
    want.sort();
    assert_eq!(got, want, "the new connection holds the chosen accounts, with their types");
    assert_eq!(old_state.account_types.keys().cloned().collect::<Vec<_>>(), vec![accounts[0].clone()]);
    assert!(!old_state.removed);
    mirror.db().close().await;
    drop(sb);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauth_with_a_subset_of_accounts_sqlite() {
    reauth_subset(TestDb::sqlite("lc-reauth")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauth_with_a_subset_of_accounts_postgres() {
    let Some(db) = TestDb::postgres("reauth_with_a_subset_of_accounts_postgres") else { return };
    reauth_subset(db).await;
}

/// Retention (item 3 of the follow-up): a connection removed longer ago than the retention
/// goes with its state, history and notifications, and a notification parked longer ago than
/// it goes too, in the idle workers' purge; the cut-off is the mirror's clock (the sandbox's
/// virtual one: a wall-clock cut-off would purge nothing here), and nothing younger goes.
async fn retention(db: TestDb) {
    init_tracing();
    let sb = sandbox(0.0).await;
    let client = client(&sb);
    let receiver = Receiver::default();
    receiver.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let hook = receiver.start().await;
    let notify = NotifyConfig::new(&hook, SECRET).unwrap().max_attempts(1);
    let config =
        MirrorConfig::default().notify(Some(notify)).retention(std::time::Duration::from_secs(7 * 86_400));
    let mirror = Mirror::open(client.clone(), db.url(), config).await.unwrap();
    let hsbc = bank(&sb, HSBC).await;
    let created = users(&sb, 2, std::slice::from_ref(&hsbc)).await;
    let ids: Vec<String> = created.iter().map(|(u, _)| u.clone()).collect();
    mirror.backfill(&Scope::users(user_ids(&ids))).await.unwrap();
    // 3 days on both connections are stale (none → sync): two notifications, parked at once.
    advance_days(&sb, 3).await;
    assert_eq!(mirror.evaluate_due().await.unwrap(), 2);
    assert_eq!(mirror.deliver_notifications().await.unwrap(), 2);
    let counts = mirror.db().lifecycle_counts(client.now().timestamp_millis()).await.unwrap();
    assert_eq!((counts.outbox_pending, counts.outbox_parked), (0, 2), "{counts:?}");
    // The first user removes its connection.
    let (u0, c0) = (&created[0].0, &created[0].1[0]);
    let c1 = &created[1].1[0];
    client.connections().delete(&u0.parse().unwrap(), &c0.parse().unwrap()).await.unwrap();
    mirror.reconcile(&Scope::users(user_ids(std::slice::from_ref(u0)))).await.unwrap();
    let removed = ActionFilter::all().include_removed(true).connection(c0.clone());
    assert_eq!(mirror.actions(&removed).await.unwrap().len(), 1);
    // Nothing is past the retention yet.
    let cut = |now: chrono::DateTime<chrono::Utc>| (now - chrono::Duration::days(7)).timestamp_millis();
    assert_eq!(mirror.db().purge_lifecycle(cut(client.now()), 100).await.unwrap(), (0, 0));

    // 8 days later the idle workers' purge takes the removed connection and the other's
    // parked notification (written 8 days ago), and nothing of the second connection else.
    advance_days(&sb, 8).await;
    let cutoff = cut(client.now());
    let workers = mirror.spawn_workers(1);
    let start = std::time::Instant::now();
    loop {
        let gone = mirror.actions(&removed).await.unwrap().is_empty()
            && mirror.db().connection_history(c0).await.unwrap().is_empty();
        let counts = mirror.db().lifecycle_counts(client.now().timestamp_millis()).await.unwrap();
        if gone && counts.oldest_undelivered_ms.is_none_or(|t| t >= cutoff) {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "not purged: {counts:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let kept = mirror.actions(&ActionFilter::all().connection(c1.clone())).await.unwrap();
    assert_eq!(kept.len(), 1, "the live connection stays");
    assert!(!mirror.db().connection_history(c1).await.unwrap().is_empty(), "with its history");
    workers.stop().await;
    mirror.db().close().await;
    drop(sb);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_removed_connections_and_parked_notifications_sqlite() {
    retention(TestDb::sqlite("lc-retention")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_removed_connections_and_parked_notifications_postgres() {
    let Some(db) = TestDb::postgres("retention_purges_removed_connections_and_parked_notifications_postgres")
    else {
        return;
    };
    retention(db).await;
}
