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
        .stderr(std::fs::File::create(std::env::temp_dir().join(format!("mirror-run-{port}.log"))).expect("log file"));
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
        .map(|r| (r["connectionId"].as_str().unwrap().to_owned(), (r["action"].clone(), r["notBefore"].clone())))
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
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/scenarios/ten-connections.toml"))
        .expect("scenario");
    let loaded = env.block(env.kit().load_scenario(&text, "ten-connections.toml", true)).expect("scenario loads");
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
    wait_for("mirror actions equal doctor --user", Duration::from_secs(20), || {
        advice(&env.json(&["mirror", "actions", "--db", db, "--user", &user])) == doctor
    });
    // doctor --mirror answers the same, with no API request.
    let before = env.last_seq();
    let from_mirror = advice(&env.json(&["doctor", "--mirror", db, "--user", &user]));
    assert_eq!(from_mirror, doctor);
    let api: Vec<Value> =
        env.requests(before).into_iter().filter(|r| !r["path"].as_str().unwrap_or("").starts_with("/__sandbox")).collect();
    assert!(api.is_empty(), "doctor --mirror made API requests: {api:?}");

    // Every connection listing the mirror made was asked for by a webhook that asks for one.
    let lists = env
        .requests(from)
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap_or("").ends_with(&format!("/users/{user}/connections")))
        .count();
    let asking = env
        .deliveries()
        .iter()
        .filter(|d| d["outcome"] == "delivered")
        .filter(|d| matches!(d["eventType"].as_str(), Some("syncCompleted" | "reauthReminder" | "refreshReminder" | "deletedAccount")))
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
    let by_action: i64 = status["lifecycle"]["byAction"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
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
