//! The lifecycle loop through the binary: the demo's ten connections, the sandbox's webhooks
//! to a `mirror run` process for three virtual days; `mirror actions` then equals
//! `doctor --user` (and `doctor --mirror`) connection by connection, and the mirror listed a
//! user's connections only when a webhook asked for it. SQLite and (when MONEYHUB_TEST_PG_URL
//! is set) PostgreSQL.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{free_port, Env};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(env: &Env, args: &[&str]) -> (Running, String) {
    let port = free_port();
    let mut cmd = env.command();
    cmd.args(["mirror", "run", "--listen", &format!("127.0.0.1:{port}"), "--output", "json"])
        .args(args)
        .env("MONEYHUB_LOG", "moneyhub_mirror=debug,info")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(std::env::temp_dir().join(format!("mirror-run-{port}.log")))
                .expect("log file"),
        );
    let mut child = cmd.spawn().expect("spawn mirror run");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    while !first.ends_with("}\n") {
        let n = reader.read_line(&mut first).expect("stdout");
        assert!(n > 0, "mirror run ended before starting: {first:?}");
    }
    (Running(child), format!("http://127.0.0.1:{port}/webhooks"))
}

/// `connectionId → (action, notBefore)` of a `doctor` or `mirror actions` JSON array.
fn advice(rows: &Value) -> BTreeMap<String, (Value, Value)> {
    rows.as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (r["connectionId"].as_str().unwrap().to_owned(), (r["action"].clone(), r["notBefore"].clone()))
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn demo_days(env: &Env, db: &str) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/ten-connections.toml"
    ))
    .expect("scenario");
    let loaded =
        env.block(env.kit().load_scenario(&text, "ten-connections.toml", true)).expect("scenario loads");
    let user = loaded.users[0].user_id.clone();
    assert_eq!(loaded.users[0].connections.len(), 10);

    // The initial state: a backfill of the user.
    env.ok(&["mirror", "backfill", "--db", db, "--user", &user]);
    let (_mirror, hook) = start(env, &["--db", db]);
    env.block(env.kit().set_webhook_target(Some(&hook), Some("jwt"))).expect("webhooks to the mirror");
    let from = env.last_seq();

    for _ in 0..3 {
        env.advance(json!({"days": 1}));
        env.block(env.kit().flush()).expect("flushed");
        wait_for("the inbox drained", Duration::from_secs(180), || {
            env.json(&["mirror", "status", "--db", db])["inboxPending"] == 0
        });
    }
    // The lifecycle loop follows the sandbox's clock (read every 200 ms) and runs every 500 ms.
    let doctor = advice(&env.json(&["doctor", "--user", &user]));
    assert_eq!(doctor.len(), 10);
    wait_for("mirror actions equal doctor --user", Duration::from_secs(60), || {
        advice(&env.json(&["mirror", "actions", "--db", db, "--user", &user])) == doctor
    });
    // doctor --mirror answers the same, with no API request.
    let before = env.last_seq();
    let from_mirror = advice(&env.json(&["doctor", "--mirror", db, "--user", &user]));
    assert_eq!(from_mirror, doctor);
    let api: Vec<Value> = env
        .requests(before)
        .into_iter()
        .filter(|r| !r["path"].as_str().unwrap_or("").starts_with("/__sandbox"))
        .collect();
    assert!(api.is_empty(), "doctor --mirror made API requests: {api:?}");

    // Every connection listing the mirror made was asked for by a webhook that asks for one.
    let lists = env
        .requests(from)
        .iter()
        .filter(|r| {
            r["method"] == "GET"
                && r["path"].as_str().unwrap_or("").ends_with(&format!("/users/{user}/connections"))
        })
        .count();
    let asking = env
        .deliveries()
        .iter()
        .filter(|d| d["outcome"] == "delivered")
        .filter(|d| {
            matches!(
                d["eventType"].as_str(),
                Some("syncCompleted" | "reauthReminder" | "refreshReminder" | "deletedAccount")
            )
        })
        .count();
    assert!(lists >= 1, "the mirror followed the syncs");
    assert!(lists <= asking, "{lists} connection listings for {asking} webhooks asking for one");
    // The table and CSV forms.
    let csv = env.ok(&["mirror", "actions", "--db", db, "--format", "csv"]).stdout.clone();
    assert_eq!(csv.lines().count(), 11, "{csv}");
    assert!(csv.starts_with("connection_id,user_id,action,reason"));
    let due = env.json(&["mirror", "actions", "--db", db, "--due-within", "7d", "--action", "none"]);
    assert!(due.as_array().unwrap().iter().all(|r| r["action"] == "none" && !r["dueAt"].is_null()));
    let status = env.json(&["mirror", "status", "--db", db]);
    let by_action: i64 =
        status["lifecycle"]["byAction"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
    assert_eq!(by_action, 10, "{status}");
}

#[test]
fn demo_scenario_mirror_actions_equal_doctor_sqlite() {
    let dir = crate::support::TempDir::new();
    let db = format!("sqlite:{}", dir.join("m.db").display());
    demo_days(&Env::new(), &db);
}

#[test]
fn demo_scenario_mirror_actions_equal_doctor_postgres() {
    let Ok(base) = std::env::var("MONEYHUB_TEST_PG_URL") else {
        println!("skipping: MONEYHUB_TEST_PG_URL is not set");
        return;
    };
    let schema = format!("cli_lifecycle_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let env = Env::new();
    demo_days(&env, &format!("{base}{sep}schema={schema}"));
    env.rt.block_on(moneyhub_mirror::testing::drop_schema(&base, &schema)).expect("schema dropped");
}

/// A notification receiver on the test's runtime: records every POST (signature, body); holds
/// the first one unanswered for `hold` (a delivery in flight) when set.
#[derive(Clone, Default)]
struct Receiver {
    got: std::sync::Arc<parking_lot::Mutex<Vec<(String, axum::body::Bytes)>>>,
    hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let sig =
        headers.get("moneyhub-mirror-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    r.got.lock().push((sig, body));
    if r.hold.swap(false, std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    axum::http::StatusCode::NO_CONTENT
}

/// Notifications survive SIGKILL of `mirror run` in the middle of a delivery: the notification
/// whose delivery was cut short is sent again by the next process (same id, same body),
/// signed, and each change arrives at least once, in order.
fn sigkill_mid_delivery(env: &Env, db: &str) {
    let secret = "a-test-secret-of-32-bytes-length";
    let secret_file = env.dir.join("secret.txt");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let receiver = Receiver::default();
    receiver.hold.store(true, std::sync::atomic::Ordering::SeqCst);
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
    let listener = env.block(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    env.rt.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (user, connections) = env.user_with(&[crate::support::banks::MOCK]);
    let ends = env.sandbox().now() + chrono::Duration::days(6);
    env.block(env.kit().tweak(
        &connections[0],
        &moneyhub_sandbox::kit::Tweak { expires_at: Some(ends), ..Default::default() },
    ))
    .unwrap();
    env.ok(&["mirror", "backfill", "--db", db, "--user", &user]);
    let args =
        ["--db", db, "--notify-url", hook.as_str(), "--notify-secret-file", secret_file.to_str().unwrap()];
    let (mut first, _) = start(env, &args);
    // Time alone: the consent enters its 5-day window; the mirror notifies; the receiver holds
    // the request, and the mirror is killed with the delivery in flight.
    env.advance(json!({"hours": 47}));
    wait_for("the first delivery started", Duration::from_secs(90), || !receiver.got.lock().is_empty());
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let status = env.json(&["mirror", "status", "--db", db]);
    assert_eq!(status["lifecycle"]["notificationsPending"], 1, "still in the outbox: {status}");
    // The next process delivers it again once the dead one's lease (10 s + 5 s) ends.
    let (_second, _) = start(env, &args);
    wait_for("redelivered", Duration::from_secs(120), || receiver.got.lock().len() >= 2);
    wait_for("settled", Duration::from_secs(60), || {
        env.json(&["mirror", "status", "--db", db])["lifecycle"]["notificationsPending"] == 0
    });
    let got = receiver.got.lock().clone();
    let now = chrono::Utc::now().timestamp();
    let bodies: Vec<Value> = got
        .iter()
        .map(|(sig, body)| {
            moneyhub_mirror::notify::verify_signature(
                secret.as_bytes(),
                sig,
                body,
                now,
                moneyhub_mirror::notify::DEFAULT_TOLERANCE,
            )
            .expect("signature verifies");
            serde_json::from_slice(body).unwrap()
        })
        .collect();
    assert_eq!(bodies[0]["id"], bodies[1]["id"], "the same notification, same id");
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(
        (bodies[1]["previous"].as_str(), bodies[1]["action"].as_str()),
        (Some("none"), Some("reconsent"))
    );
}

#[test]
fn notifications_survive_sigkill_mid_delivery_sqlite() {
    let env = Env::new();
    let db = format!("sqlite:{}", env.dir.join("m.db").display());
    sigkill_mid_delivery(&env, &db);
}

#[test]
fn notifications_survive_sigkill_mid_delivery_postgres() {
    let Ok(base) = std::env::var("MONEYHUB_TEST_PG_URL") else {
        println!("skipping: MONEYHUB_TEST_PG_URL is not set");
        return;
    };
    let schema = format!("cli_lifecycle_kill_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let env = Env::new();
    sigkill_mid_delivery(&env, &format!("{base}{sep}schema={schema}"));
    env.rt.block_on(moneyhub_mirror::testing::drop_schema(&base, &schema)).expect("schema dropped");
}

/// Manual syncs (`POST …/sync/…`) the sandbox served.
fn manual_syncs(env: &Env) -> usize {
    env.requests(0)
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap_or("").contains("/sync/"))
        .count()
}

/// `--auto-sync` across two `mirror run` processes on one database: a connection whose sync
/// fails (`sync_error`, rule 9) gets exactly one manual sync per guard window (the guard's
/// records are in the shared database), in two windows running. (The advice moving on to rule
/// 10 once a listing shows the sync failed too is `moneyhub-mirror`'s `lifecycle::auto_sync`
/// test.) Then `mirror history` shows the
/// connection's states from a prefix of its id, and `--output csv` works for `mirror actions`.
fn auto_sync_two_processes(env: &Env, db: &str) {
    // Webhooks go to a sink first: the new connection's backlog (its transactions) is not
    // what this test is about.
    let sink = Receiver::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(sink.clone());
    let listener = env.block(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let sink_url = format!("http://{}/hook", listener.local_addr().unwrap());
    env.rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    env.block(env.kit().set_webhook_target(Some(&sink_url), Some("json"))).expect("webhooks to the sink");
    let (user, connections) = env.user_with(&[crate::support::banks::BARCLAYS]);
    let connection = connections[0].clone();
    env.ok(&["mirror", "backfill", "--db", db, "--user", &user]);
    // The provider starts failing; the automatic syncs of the next 5 hours fail, and a
    // reconciliation records it.
    env.control("PUT", &format!("/connections/{connection}/state"), json!({"state": "failing"}));
    env.advance(json!({"hours": 5}));
    env.block(env.kit().flush()).expect("flushed");
    env.ok(&["mirror", "reconcile", "--db", db, "--user", &user]);
    let row = &env.json(&["mirror", "actions", "--db", db, "--user", &user])[0];
    assert_eq!(
        (&row["error"], &row["action"], &row["rule"]),
        (&json!("sync_error"), &json!("sync"), &json!(9))
    );
    let args = ["--db", db, "--auto-sync"];
    let (_a, hook) = start(env, &args);
    let (_b, _) = start(env, &args);
    env.block(env.kit().set_webhook_target(Some(&hook), Some("jwt"))).expect("webhooks to the mirror");
    // A `syncCompleted` makes the mirror list the user's connections with --auto-sync on: the
    // connection is due at once, in both processes.
    env.block(env.kit().fire(&user, "syncCompleted", None)).expect("fired");
    // Bounds, not waits: on an idle machine this takes about a second.
    let deadline = Instant::now() + Duration::from_secs(30);
    while manual_syncs(env) == 0 {
        assert!(
            Instant::now() < deadline,
            "no manual sync within 30 s; actions {}",
            env.json(&["mirror", "actions", "--db", db, "--user", &user]),
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_for("the manual sync recorded", Duration::from_secs(30), || {
        let rows = env.json(&["mirror", "actions", "--db", db, "--user", &user]);
        !rows[0]["lastManualSync"].is_null() && !rows[0]["notBefore"].is_null()
    });
    // Both processes keep evaluating every 500 ms: a second of real time is several turns of
    // each, inside the guard's window (a second manual sync would show here).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(manual_syncs(env), 1, "one manual sync per guard window across two processes");
    // Past the guard window (30 minutes) the advice still asks for a sync (no listing has
    // shown the first one's outcome): exactly one more, across both processes.
    env.advance(json!({"minutes": 31}));
    wait_for("the second window's manual sync", Duration::from_secs(30), || manual_syncs(env) >= 2);
    wait_for("the second manual sync recorded", Duration::from_secs(30), || {
        let rows = env.json(&["mirror", "actions", "--db", db, "--user", &user]);
        rows[0]["lastManualSync"].as_str().is_some_and(|t| t >= "2025-01-15T14:31")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(manual_syncs(env), 2, "one manual sync per guard window across two processes");
    let rows = env.json(&["mirror", "actions", "--db", db, "--user", &user]);
    assert_eq!((&rows[0]["action"], &rows[0]["rule"]), (&json!("sync"), &json!(9)), "{rows}");

    // `mirror history` from a prefix of the connection's UUID: healthy, then failing (sync),
    // oldest first, each closed by the next.
    let uuid = connection.rsplit_once(':').map_or(connection.as_str(), |(_, u)| u);
    let history = env.json(&["mirror", "history", "--db", db, "--connection", &uuid[..8]]);
    let rows = history.as_array().expect("array");
    let states: Vec<(Value, Value, Value)> =
        rows.iter().map(|r| (r["status"].clone(), r["error"].clone(), r["action"].clone())).collect();
    assert_eq!(states.first(), Some(&(json!("ok"), Value::Null, json!("none"))), "{history}");
    assert!(states.contains(&(json!("error"), json!("sync_error"), json!("sync"))), "{history}");
    assert_eq!(states.last(), Some(&(json!("error"), json!("sync_error"), json!("sync"))), "{history}");
    assert!(rows.iter().all(|r| r["connectionId"] == connection.as_str() && r["userId"] == user.as_str()));
    assert!(
        rows[..rows.len() - 1].iter().all(|r| !r["leftAt"].is_null())
            && rows.last().unwrap()["leftAt"].is_null()
    );
    // The full id, the table and CSV forms.
    let table = env.ok(&["mirror", "history", "--db", db, "--connection", &connection]).stdout.clone();
    assert!(table.contains("(current)") && table.contains("sync_err"), "{table}");
    let csv = env.ok(&["mirror", "history", "--db", db, "-c", &connection, "--output", "csv"]).stdout.clone();
    assert!(
        csv.starts_with("connection_id,entered_at,left_at,duration_ms,status,error,extended_status,action\n")
    );
    assert_eq!(csv.lines().count(), rows.len() + 1, "{csv}");
    // Unknown, and malformed, ids are clear usage errors.
    let unknown = env.run(&["mirror", "history", "--db", db, "--connection", "ffffffff"]);
    unknown.code(2);
    assert!(unknown.stderr.contains("not in the mirror"), "{}", unknown.stderr);
    env.run(&["mirror", "history", "--db", db, "--connection", "x%_"]).code(2);
    // `mirror actions --output csv` (the former `--format csv` still works).
    let csv = env.ok(&["mirror", "actions", "--db", db, "--output", "csv"]).stdout.clone();
    assert!(csv.starts_with("connection_id,user_id,action,reason"), "{csv}");
    // Commands without CSV refuse it clearly.
    env.run(&["mirror", "status", "--db", db, "--output", "csv"]).code(2);
}

#[test]
fn auto_sync_across_two_mirror_processes_sqlite() {
    let env = Env::new();
    let db = format!("sqlite:{}", env.dir.join("m.db").display());
    auto_sync_two_processes(&env, &db);
}

#[test]
fn auto_sync_across_two_mirror_processes_postgres() {
    let Ok(base) = std::env::var("MONEYHUB_TEST_PG_URL") else {
        println!("skipping: MONEYHUB_TEST_PG_URL is not set");
        return;
    };
    let schema = format!("cli_lifecycle_auto_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let env = Env::new();
    auto_sync_two_processes(&env, &format!("{base}{sep}schema={schema}"));
    env.rt.block_on(moneyhub_mirror::testing::drop_schema(&base, &schema)).expect("schema dropped");
}
