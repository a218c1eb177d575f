//! `moneyhub mirror run|backfill|reconcile|status|export`, on SQLite and (when
//! MONEYHUB_TEST_PG_URL is set) PostgreSQL. The mirror's own rules are tested in the
//! `moneyhub-mirror` crate; these tests check the commands: flags, output, exit codes, and
//! that what the commands leave in the database equals the sandbox's data.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use moneyhub_sandbox::kit::{Advance, Control};
use serde_json::{json, Value};

use crate::support::{banks, command, fits_80, free_port, run_command, Env, TempDir};

/// Transactions by id, from a `transactions list --output json` or the `transaction` field of
/// a `mirror export --format json`.
fn by_id<'a>(items: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, Value> {
    items.into_iter().map(|t| (t["id"].as_str().expect("id").to_owned(), t.clone())).collect()
}

/// The sandbox's transactions of `user`, as the CLI lists them.
fn sandbox_transactions(env: &Env, user: &str) -> BTreeMap<String, Value> {
    by_id(env.json(&["transactions", "list", "--user", user]).as_array().expect("array"))
}

/// The mirror's live transactions (`export --format json`).
fn mirrored(env: &Env, db: &str) -> BTreeMap<String, Value> {
    let exported = env.json(&["mirror", "export", "--db", db, "--format", "json"]);
    let items = exported.as_array().expect("array");
    assert!(items.iter().all(|i| i["deleted"] == false), "tombstones are left out by default");
    by_id(items.iter().map(|i| &i["transaction"]))
}

/// Asserts that the mirror equals the sandbox, field by field.
#[track_caller]
fn assert_converged(env: &Env, db: &str, user: &str) -> usize {
    let want = sandbox_transactions(env, user);
    let got = mirrored(env, db);
    assert!(want.len() > 100, "the user has history: {}", want.len());
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let differ: Vec<&String> =
        want.iter().filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v)).map(|e| e.0).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "missing {missing:?}, extra {extra:?}, different {differ:?}"
    );
    want.len()
}

/// A `mirror run` child process; killed on drop if still running.
struct Running {
    child: Child,
    addr: String,
}

impl Running {
    fn start(env: &Env, db: &str) -> Running {
        Running::spawn(env.command(), db).0
    }

    /// Starts `mirror run` from `cmd` (the target already configured); returns it and its
    /// start-up object.
    fn spawn(cmd: std::process::Command, db: &str) -> (Running, Value) {
        Running::spawn_with(cmd, db, &[])
    }

    /// [`Running::spawn`] with more `mirror run` flags.
    fn spawn_with(mut cmd: std::process::Command, db: &str, flags: &[&str]) -> (Running, Value) {
        let port = free_port();
        cmd.args(["mirror", "run", "--db", db, "--listen", &format!("127.0.0.1:{port}"), "--workers", "2"])
            .args(flags)
            .args(["--output", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mirror run");
        // The start-up object, pretty-printed: read up to its closing line.
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        while !first.ends_with("}\n") {
            let n = reader.read_line(&mut first).expect("stdout");
            assert!(n > 0, "mirror run ended before starting: {first:?}");
        }
        let started: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
        assert_eq!(started["workers"], 2);
        let addr = started["listening"].as_str().expect("listening").to_owned();
        assert_eq!(addr, format!("127.0.0.1:{port}"));
        (Running { child, addr }, started)
    }

    /// Ctrl-C: the command stops accepting, lets its workers finish and exits 0.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "mirror run exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "mirror run did not stop within 30 s of SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `mirror status` until the inbox holds no pending event (the receiver's coalescing
/// window keeps events a few seconds); fails after `limit`.
fn wait_drained(env: &Env, db: &str, stored_at_least: i64, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = env.json(&["mirror", "status", "--db", db]);
        let applied = s["inboxApplied"].as_i64().expect("inboxApplied");
        if s["inboxPending"] == 0 && applied >= stored_at_least {
            return s;
        }
        assert!(Instant::now() < deadline, "inbox not drained within {limit:?}: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The whole life of a mirror through the commands, on one database URL.
fn lifecycle(env: &Env, db: &str) {
    let (user, connections) = env.user_with(&[banks::MOCK]);

    // An empty mirror.
    let s = env.json(&["mirror", "status", "--db", db]);
    assert_eq!(
        (s["users"].clone(), s["inboxPending"].clone(), s["live"].clone()),
        (json!([]), json!(0), json!(0))
    );

    // Backfill with an explicit user: every transaction listed and stored.
    let r = env.json(&["mirror", "backfill", "--db", db, "--user", &user]);
    assert_eq!(r["users"], 1);
    assert_eq!(r["errors"], json!([]));
    assert_eq!(r["totals"]["full"], 1, "{r}");
    let n = assert_converged(env, db, &user);
    assert_eq!(r["totals"]["listed"], n);
    // Nothing left to backfill.
    let again = env.json(&["mirror", "backfill", "--db", db]);
    assert_eq!((again["users"].clone(), again["totals"]["full"].clone()), (json!(1), json!(0)));

    // Live: the receiver stores the sandbox's signed webhooks, workers apply them.
    let running = Running::start(env, db);
    env.control(
        "PUT",
        "/webhooks",
        json!({"url": format!("http://{}/webhooks", running.addr), "format": "jwt"}),
    );
    let before = env.deliveries().len();
    env.advance(json!({"hours": 30}));
    env.control("POST", "/webhooks/flush", json!({}));
    let deliveries = env.deliveries();
    let new: Vec<&Value> = deliveries.iter().skip(before).collect();
    assert!(new.iter().any(|d| d["eventType"] == "syncCompleted"), "{new:?}");
    assert!(new.iter().all(|d| d["outcome"] == "delivered"), "every webhook answered 2xx: {new:?}");
    let s = wait_drained(env, db, new.len() as i64, Duration::from_secs(60));
    assert_eq!(s["inboxFailed"], 0, "{s}");
    assert_eq!(s["lastEvent"]["userId"], user.as_str(), "{s}");
    assert_converged(env, db, &user);

    // A removed connection is purged once the webhooks say something changed.
    env.run(&["connections", "delete", "--user", &user, "--connection", &connections[0], "--yes"]).ok();
    env.advance(json!({"hours": 1}));
    let sent = env.control(
        "POST",
        "/webhooks/test",
        json!({"userId": user, "eventType": "syncCompleted", "payload": {
            "completedAt": "2025-01-16T16:00:00.000Z",
            "processingStatus": "success",
            "syncId": "0b7d0b0e-2f9b-4b8e-9a56-6d3f0f4e8c11",
            "connectionId": connections[0],
        }}),
    );
    assert_eq!(sent["deliveries"][0]["outcome"], "delivered", "{sent}");
    let applied = s["inboxApplied"].as_i64().unwrap() + 1;
    let s = wait_drained(env, db, applied, Duration::from_secs(60));
    assert_eq!(s["users"][0]["connections"], 0, "{s}");
    assert!(mirrored(env, db).is_empty(), "the removed connection's transactions are gone");
    let with_deleted = env.json(&["mirror", "export", "--db", db, "--format", "json", "--include-deleted"]);
    assert!(with_deleted.as_array().unwrap().iter().all(|i| i["deleted"] == true), "{with_deleted}");
    running.interrupt();

    // The receiver and workers left nothing for `reconcile` to do.
    let r = env.json(&["mirror", "reconcile", "--db", db, "--all-users"]);
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(r["users"], 1, "{r}");
    assert_eq!((r["totals"]["upserts"].clone(), r["totals"]["purged"].clone()), (json!(0), json!(0)), "{r}");
}

#[test]
fn lifecycle_on_sqlite() {
    let env = Env::new();
    let db = format!("sqlite:{}", env.dir.join("mirror.db").display());
    lifecycle(&env, &db);
}

#[test]
fn lifecycle_on_postgres() {
    let Ok(base) = std::env::var("MONEYHUB_TEST_PG_URL") else {
        crate::support::skip("pg", "lifecycle_on_postgres", "MONEYHUB_TEST_PG_URL is not set");
        return;
    };
    let env = Env::new();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("cli_mirror_{}_{nanos:08x}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let db = format!("{base}{sep}schema={schema}");
    lifecycle(&env, &db);
    env.rt.block_on(moneyhub_mirror::testing::drop_schema(&base, &schema)).expect("schema dropped");
}

#[test]
fn status_table_and_exports() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK, banks::AVIVA]);
    let (other, _) = env.user_with(&[banks::MODELO]);
    let db = env.dir.join("plain-path.db").display().to_string();
    let r = env.ok(&["mirror", "backfill", "--db", &db, "--user", &user, "--user", &other]);
    assert!(r.stdout.starts_with("backfilled 2 users: 3 connections listed in full"), "{}", r.stdout);

    let table = env.ok(&["mirror", "status", "--db", &db]);
    fits_80(&table.stdout);
    for needle in
        [user.as_str(), other.as_str(), "USER", "LIVE", "inbox", "0 pending", "lag", "none", "2 users"]
    {
        assert!(table.stdout.contains(needle), "{needle:?} in\n{}", table.stdout);
    }
    assert!(!table.stdout.contains("showing"), "nothing was cut:\n{}", table.stdout);

    // A bounded list: `--limit` rows, and it says so; the totals still cover everyone.
    let full = env.json(&["mirror", "status", "--db", &db]);
    assert_eq!(full["usersTotal"], 2, "{full}");
    assert_eq!(full["users"].as_array().map(Vec::len), Some(2), "{full}");
    let cut = env.ok(&["mirror", "status", "--db", &db, "--limit", "1"]);
    fits_80(&cut.stdout);
    assert!(cut.stdout.contains("showing 1 of 2 users"), "{}", cut.stdout);
    assert_eq!(
        cut.stdout.matches(user.as_str()).count() + cut.stdout.matches(other.as_str()).count(),
        1,
        "{}",
        cut.stdout
    );
    let cut = env.json(&["mirror", "status", "--db", &db, "--limit", "1"]);
    assert_eq!(
        (cut["users"].as_array().map(Vec::len), cut["usersTotal"].clone()),
        (Some(1), json!(2)),
        "{cut}"
    );
    assert_eq!(
        (cut["live"].clone(), cut["tombstones"].clone()),
        (full["live"].clone(), full["tombstones"].clone())
    );
    assert_eq!(cut["users"][0], full["users"][0], "the first user of the same order");
    // One user by id: its row only.
    let one = env.json(&["mirror", "status", "--db", &db, "--user", &other]);
    let listed: Vec<&str> =
        one["users"].as_array().unwrap().iter().map(|u| u["userId"].as_str().unwrap()).collect();
    assert_eq!(listed, [other.as_str()], "{one}");
    assert!(one["users"][0]["live"].as_i64().unwrap() > 0, "{one}");
    assert_eq!(one["usersTotal"], 2);
    let table = env.ok(&["mirror", "status", "--db", &db, "--user", &other]);
    assert!(
        table.stdout.contains(other.as_str()) && !table.stdout.contains(user.as_str()),
        "{}",
        table.stdout
    );
    let unknown = env.ok(&["mirror", "status", "--db", &db, "--user", "5c79210bbac25ecb5e71afff"]);
    assert!(
        unknown.stdout.contains("5c79210bbac25ecb5e71afff is not known to the mirror"),
        "{}",
        unknown.stdout
    );

    // CSV to a file: a header and one line per live transaction of the user.
    let out = env.dir.join("one.csv");
    let r = env.ok(&[
        "mirror",
        "export",
        "--db",
        &db,
        "--format",
        "csv",
        "--user",
        &user,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.stdout.is_empty());
    let csv = std::fs::read_to_string(&out).expect("csv written");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,user_id,account_id,connection_id,date,date_modified,status,amount_minor,currency,category_id,short_description,long_description,deleted")
    );
    let want = sandbox_transactions(&env, &user);
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), want.len());
    assert!(r.stderr.contains(&format!("{} transactions written", want.len())), "{}", r.stderr);
    let leftovers: Vec<_> = std::fs::read_dir(&env.dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "the export was written through a temporary file: {leftovers:?}");
    for row in &rows {
        let id = row.split(',').next().unwrap();
        let t = &want[id];
        assert!(row.contains(&format!(",{},", t["amount"]["value"])), "{row} vs {t}");
        assert!(row.ends_with(",false"));
    }
    // JSON of everyone: both users.
    let all = env.json(&["mirror", "export", "--db", &db, "--format", "json"]);
    let users: std::collections::BTreeSet<&str> =
        all.as_array().unwrap().iter().map(|i| i["userId"].as_str().unwrap()).collect();
    assert_eq!(users, [user.as_str(), other.as_str()].into_iter().collect());

    // A parked event (failed past the attempt limit) is put back in the queue by `retry`.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO mirror_inbox (webhook_id, user_id, event_type, body, content_type, signed,
                                   received_ms, state, attempts, last_error)
         VALUES ('0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f9f', ?1, 'syncCompleted', x'7b7d',
                 'application/json', 0, 1, 2, 8, 'HTTP 500')",
        [&user],
    )
    .unwrap();
    let before = env.json(&["mirror", "status", "--db", &db]);
    assert_eq!((before["inboxPending"].as_i64(), before["inboxFailed"].as_i64()), (Some(0), Some(1)));
    let r = env.ok(&["mirror", "retry", "--db", &db, "--user", &other]);
    assert_eq!(r.stdout.trim(), "re-queued 0 parked events; `moneyhub mirror run` applies them");
    let r = env.json(&["mirror", "retry", "--db", &db]);
    assert_eq!(r["requeued"], 1);
    let after = env.json(&["mirror", "status", "--db", &db]);
    assert_eq!((after["inboxPending"].as_i64(), after["inboxFailed"].as_i64()), (Some(1), Some(0)));

    // An export that fails half-way (a corrupt stored row) leaves the file it was asked to
    // write as it was, and no temporary file.
    let corrupted = conn
        .execute(
            "UPDATE mirror_transactions SET raw = 'not json' WHERE id =
               (SELECT id FROM mirror_transactions ORDER BY user_id, id LIMIT 1 OFFSET 10)",
            [],
        )
        .unwrap();
    assert_eq!(corrupted, 1);
    drop(conn);
    let previous = env.dir.join("previous.json");
    std::fs::write(&previous, "an earlier export\n").unwrap();
    let r =
        env.run(&["mirror", "export", "--db", &db, "--format", "json", "--out", previous.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("stored data: transaction"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&previous).unwrap(), "an earlier export\n");
    let leftovers = std::fs::read_dir(&env.dir.0)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".partial"));
    assert_eq!(leftovers.count(), 0, "no temporary file is left behind");
}

#[test]
fn bad_input_is_a_clear_usage_error() {
    let env = Env::new();
    let db = format!("sqlite:{}", env.dir.join("m.db").display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["mirror", "status"], "--db"),
        (vec!["mirror", "status", "--db", ""], "database"),
        (vec!["mirror", "status", "--db", "mysql://localhost/x"], "mysql"),
        (vec!["mirror", "status", "--db", "postgres://u@127.0.0.1:5432/db?schema=bad;name"], "schema"),
        (vec!["mirror", "status", "--db", &db, "--limit", "0"], "--limit"),
        (vec!["mirror", "status", "--db", &db, "--limit", "many"], "--limit"),
        (vec!["mirror", "status", "--db", &db, "--limit", "-3"], "-3"),
        (vec!["mirror", "status", "--db", &db, "--user", "has space"], "--user"),
        (
            vec!["mirror", "status", "--db", &db, "--user", "5c79210bbac25ecb5e71afff", "--limit", "3"],
            "--limit",
        ),
        (vec!["mirror", "backfill", "--db", &db, "--user", "has space"], "--user"),
        (vec!["mirror", "reconcile", "--db", &db, "--user", "x", "--all-users"], "--all-users"),
        (vec!["mirror", "run", "--db", &db, "--workers", "0"], "--workers"),
        (vec!["mirror", "run", "--db", &db, "--listen", "nowhere"], "nowhere"),
        (vec!["mirror", "run", "--db", &db, "--api-requests-per-second", "0"], "--api-requests-per-second"),
        (
            vec!["mirror", "run", "--db", &db, "--api-requests-per-second", "many"],
            "--api-requests-per-second",
        ),
        (vec!["mirror", "export", "--db", &db], "--format"),
        (vec!["mirror", "export", "--db", &db, "--format", "xml"], "xml"),
        (vec!["mirror", "export", "--db", &db, "--format", "csv", "--user", "has space"], "--user"),
    ];
    for (args, needle) in cases {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(needle), "{args:?}: {needle:?} in {}", r.stderr);
    }
    // An unwritable place for the database or the export: a clear error, not a panic.
    let r = env.run(&["mirror", "status", "--db", "sqlite:/nonexistent-dir/m.db"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("/nonexistent-dir"), "{}", r.stderr);
    let r = env.run(&["mirror", "export", "--db", &db, "--format", "csv", "--out", "/nonexistent-dir/x.csv"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("/nonexistent-dir/x.csv"), "{}", r.stderr);
    // An export that cannot be put in place (a directory is in the way): a clear error, and
    // neither the directory nor a temporary file is left changed.
    let in_the_way = env.dir.join("in-the-way");
    std::fs::create_dir(&in_the_way).unwrap();
    std::fs::write(in_the_way.join("keep"), "x").unwrap();
    let r =
        env.run(&["mirror", "export", "--db", &db, "--format", "csv", "--out", in_the_way.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("in-the-way"), "{}", r.stderr);
    assert!(in_the_way.join("keep").exists());
    let leftovers = std::fs::read_dir(&env.dir.0)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".partial"));
    assert_eq!(leftovers.count(), 0, "no temporary file is left behind");
    // The PostgreSQL password never appears.
    let r = env.run(&["mirror", "status", "--db", "postgres://me:hunter2@127.0.0.1:1/db"]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("hunter2") && !r.stdout.contains("hunter2"), "{r:?}");
}

#[test]
fn run_on_the_embedded_sandbox_mirrors_its_webhooks() {
    // Nothing configured: `mirror run` starts an embedded sandbox and points its signed
    // webhooks at itself; moving that sandbox's clock makes activity to mirror.
    let dir = TempDir::new();
    let db = format!("sqlite:{}", dir.join("embedded.db").display());
    let (running, started) = Running::spawn(command(&dir), &db);
    let base = started["sandbox"].as_str().expect("the embedded sandbox's URL").to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let kit = Control::new(base.as_str());
    let target = rt.block_on(kit.webhook_target()).expect("webhook target");
    let target = json!(target);
    assert_eq!(target["url"], format!("http://{}/webhooks", running.addr));
    assert_eq!(target["format"], "jwt");

    rt.block_on(kit.advance(Advance::hours(30))).expect("advance");
    rt.block_on(kit.flush()).expect("flush");
    let log = json!({"data": rt.block_on(kit.deliveries(0, 100_000)).expect("deliveries").data});
    let deliveries = log["data"].as_array().expect("deliveries");
    assert!(deliveries.iter().any(|d| d["eventType"] == "syncCompleted"), "{log}");
    assert!(deliveries.iter().all(|d| d["outcome"] == "delivered"), "{log}");

    // Status needs no target; then a reconciliation against that same sandbox finds nothing
    // to change: the webhooks alone brought the mirror level (backfill included).
    let status_cmd = |args: &[&str]| {
        let mut cmd = command(&dir);
        cmd.args(args);
        run_command(cmd)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let r = status_cmd(&["mirror", "status", "--db", &db, "--output", "json"]);
        r.ok();
        let s = r.json();
        if s["inboxPending"] == 0 && s["inboxApplied"].as_u64() == Some(deliveries.len() as u64) {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "not drained: {s}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status["live"].as_u64().unwrap() > 100, "{status}");
    let mut cmd = command(&dir);
    cmd.env("MONEYHUB_IDENTITY_URL", &base)
        .env("MONEYHUB_API_URL", format!("{base}/v3"))
        .env("MONEYHUB_CLIENT_ID", "sandbox-client")
        .env("MONEYHUB_CLIENT_SECRET", "sandbox-secret")
        .args(["mirror", "reconcile", "--db", &db, "--output", "json"]);
    let r = run_command(cmd);
    r.ok();
    let report = r.json();
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report["users"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["totals"]["listed"].as_u64().unwrap() > 100, "{report}");
    let t = &report["totals"];
    assert_eq!(
        (t["upserts"].clone(), t["tombstones"].clone(), t["purged"].clone()),
        (json!(0), json!(0), json!(0)),
        "{report}"
    );
    running.interrupt();
}

/// Issue 21: `mirror run --api-requests-per-second N` reaches the mirror's configuration
/// (the pacing itself is the budget's unit tests'); without it there is no budget.
#[test]
fn run_takes_an_api_request_budget() {
    let dir = TempDir::new();
    let db = format!("sqlite:{}", dir.join("budget.db").display());
    let (running, started) = Running::spawn_with(command(&dir), &db, &["--api-requests-per-second", "7"]);
    assert_eq!(started["apiRequestsPerSecond"], 7, "{started}");
    running.interrupt();
    let (running, started) = Running::spawn(command(&dir), &db);
    assert_eq!(started["apiRequestsPerSecond"], Value::Null, "{started}");
    running.interrupt();
}

/// Issue 11 #8: each embedded sandbox (seed 42) used to reissue the same webhook ids, so a
/// second `mirror run` on an existing database answered its new events `200 duplicate` and
/// dropped them. Two embedded runs on one database: every delivery of both is stored.
#[test]
fn a_second_embedded_run_on_the_same_database_stores_its_events() {
    let dir = TempDir::new();
    let db = format!("sqlite:{}", dir.join("twice.db").display());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut delivered = 0;
    for (run, hours) in [(1, 30), (2, 50)] {
        let (running, started) = Running::spawn(command(&dir), &db);
        let base = started["sandbox"].as_str().expect("the embedded sandbox's URL").to_owned();
        let kit = Control::new(base.as_str());
        let log = rt.block_on(async {
            kit.advance(Advance::hours(hours)).await.expect("advance");
            kit.flush().await.expect("flush");
            json!({"data": kit.deliveries(0, 100_000).await.expect("deliveries").data})
        });
        let deliveries = log["data"].as_array().expect("deliveries");
        assert!(!deliveries.is_empty(), "run {run}: {log}");
        assert!(deliveries.iter().all(|d| d["outcome"] == "delivered"), "run {run}: {log}");
        delivered += deliveries.len();
        running.interrupt();
        // Every delivery so far is in the inbox: none of this run's was taken for a replay.
        let mut cmd = command(&dir);
        cmd.args(["mirror", "status", "--db", &db, "--output", "json"]);
        let status = run_command(cmd).json();
        let stored = ["inboxPending", "inboxFailed", "inboxApplied"]
            .iter()
            .map(|k| status[k].as_u64().expect("count"))
            .sum::<u64>();
        assert_eq!(stored, delivered as u64, "run {run}: {status}");
    }
}

/// Issue 11 #4: no credential-bearing part of a database URL is printed, by `mirror run`'s
/// start-up line (JSON and table) nor by its errors.
#[test]
fn database_credentials_are_never_printed() {
    let env = Env::new();
    let secrets = ["pw-userinfo", "pw-query", "key-path", "cert-path"];
    let shown_nowhere = |what: &str, text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what}: {s} in {text}");
        }
    };
    // Unreachable (port 1): the error names the database, redacted.
    for db in [
        "postgres://me:pw-userinfo@127.0.0.1:1/db?password=pw-query&sslmode=disable",
        "postgres://me@127.0.0.1:1/db?password=pw-query&sslmode=require&sslkey=/k/key-path&sslcert=/k/cert-path",
        "postgres://me@127.0.0.1:1/db?sslpassword=pw-query&sslkey=/k/key-path&sslcert=/k/cert-path",
        "host=127.0.0.1 port=1 password=pw-query",
    ] {
        let r = env.run(&["mirror", "run", "--db", db, "--listen", "127.0.0.1:0"]);
        assert_ne!(r.code, 0, "{db}: {r:?}");
        shown_nowhere(db, &format!("{}{}", r.stdout, r.stderr));
    }
    let Ok(base) = std::env::var("MONEYHUB_TEST_PG_URL") else {
        crate::support::skip(
            "pg",
            "the start-up half of database_credentials_are_never_printed",
            "MONEYHUB_TEST_PG_URL is not set",
        );
        return;
    };
    // Reachable (trust authentication ignores the password): the start-up object shows the
    // URL with every credential replaced.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("cli_redact_{}_{nanos:08x}", std::process::id());
    let mut url = url::Url::parse(&base).unwrap();
    url.set_password(Some("pw-userinfo")).unwrap();
    url.query_pairs_mut().append_pair("password", "pw-query").append_pair("schema", &schema);
    let (running, started) = Running::spawn(env.command(), url.as_str());
    let shown = started["db"].as_str().expect("db").to_owned();
    shown_nowhere("start-up object", &started.to_string());
    assert!(shown.contains(":***@") && shown.contains("password=***"), "{shown}");
    running.interrupt();
    env.rt.block_on(moneyhub_mirror::testing::drop_schema(&base, &schema)).expect("schema dropped");
}

#[test]
fn sandbox_trigger_sends_realistic_events_the_mirror_applies() {
    // Issue 23 #1: default payloads from the user's real data, accepted and applied by
    // `mirror run`; a payload that is authentic but invalid is answered 422, and the trigger
    // fails with that status.
    let env = Env::new();
    let (user, connections) = env.user_with(&[banks::MOCK]);
    let db = env.dir.join("trigger.db").display().to_string();
    let running = Running::start(&env, &db);
    let base = env.base();
    let sandbox = |args: &[&str]| {
        let mut all = vec!["sandbox", "--sandbox-url", base.as_str()];
        all.extend_from_slice(args);
        env.run(&all)
    };
    sandbox(&["webhooks", "set", &format!("http://{}/webhooks", running.addr), "--format", "jwt"]).ok();
    let short = connections[0].rsplit_once(':').unwrap().1[..8].to_owned();
    let mut named = Vec::new();
    for event in
        ["newTransactions", "updatedTransactions", "syncCompleted", "reauthReminder", "refreshReminder"]
    {
        let r = sandbox(&["trigger", event, "--user", &user[..12], "--connection", &short, "-o", "json"]);
        r.ok();
        let fired = r.json();
        assert_eq!(fired["deliveries"][0]["status"], 200, "{event}: {fired}");
        if let Some(accounts) = fired["payload"]["accounts"].as_array() {
            for id in accounts[0]["transactions"].as_array().unwrap() {
                named.push(id.as_str().unwrap().to_owned());
            }
        }
    }
    assert!(!named.is_empty());
    let s = wait_drained(&env, &db, 5, Duration::from_secs(60));
    assert_eq!(s["inboxFailed"].as_i64(), Some(0), "every event applied: {s}");
    let mirrored = mirrored(&env, &db);
    for id in &named {
        assert!(mirrored.contains_key(id), "transaction {id} named by the event is mirrored");
    }

    // Authentic, but not a newTransactions payload: 422, and the trigger says so.
    let bad = env.dir.join("bad.json");
    std::fs::write(&bad, r#"{"accounts": "not a list"}"#).unwrap();
    let r = sandbox(&["trigger", "newTransactions", "--user", &user, "--payload", bad.to_str().unwrap()]);
    r.code(3);
    assert!(r.stderr.contains("HTTP 422"), "{}", r.stderr);
    running.interrupt();
}
