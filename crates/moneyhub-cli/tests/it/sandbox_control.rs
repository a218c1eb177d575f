//! `moneyhub sandbox clock|trigger|connection set|faults|deliveries|reset|load` against an
//! in-process sandbox (`--sandbox-url`), and `sandbox serve --scenario` as a real process.

use std::process::Stdio;

use serde_json::{json, Value};

use crate::servers::{read_until, Server};
use crate::support::{banks, command, free_port, run_command, Env, TempDir};

const TEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/scenarios/ten-connections.toml");

/// `moneyhub sandbox <args> --sandbox-url <the env's sandbox> --output json`, asserted to
/// succeed and parsed.
fn sandbox_json(env: &Env, args: &[&str]) -> Value {
    let base = env.base();
    let mut all = vec!["sandbox"];
    all.extend_from_slice(args);
    all.extend(["--sandbox-url", base.as_str()]);
    env.json(&all)
}

/// The same in table form (exit code not asserted).
fn sandbox_table(env: &Env, args: &[&str]) -> crate::support::Run {
    let base = env.base();
    let mut all = vec!["sandbox"];
    all.extend_from_slice(args);
    all.extend(["--sandbox-url", base.as_str()]);
    env.run(&all)
}

#[test]
fn clock_show_advance_freeze_and_resume() {
    let env = Env::new();
    let shown = sandbox_json(&env, &["clock", "show"]);
    assert_eq!(shown, json!({"now": "2025-01-15T09:00:00Z", "frozen": true}));
    env.user_with(&[banks::MOCK]);
    let advanced = sandbox_json(&env, &["clock", "advance", "1d12h"]);
    assert_eq!(advanced["now"], "2025-01-16T21:00:00Z");
    assert!(advanced["ran"]["autoSyncs"].as_u64().unwrap() > 0, "{advanced}");
    let to = sandbox_json(&env, &["clock", "advance", "2025-01-20T00:00:00Z"]);
    assert_eq!(to["now"], "2025-01-20T00:00:00Z");
    let table = sandbox_table(&env, &["clock", "advance", "90m"]);
    table.ok();
    assert!(table.stdout.contains("sandbox clock: 2025-01-20 01:30 UTC, frozen"), "{}", table.stdout);
    assert!(table.stdout.contains("automatic syncs"), "{}", table.stdout);
    assert_eq!(sandbox_json(&env, &["clock", "resume"])["frozen"], false);
    assert_eq!(sandbox_json(&env, &["clock", "freeze"])["frozen"], true);
    // Bad durations are usage errors; moving back is the sandbox's refusal.
    let bad = sandbox_table(&env, &["clock", "advance", "3 weeks"]);
    bad.code(2);
    assert!(bad.stderr.contains("neither a duration"), "{}", bad.stderr);
    let back = sandbox_table(&env, &["clock", "advance", "2020-01-01T00:00:00Z"]);
    back.code(3);
    assert!(back.stderr.contains("HTTP 400") && back.stderr.contains("backwards"), "{}", back.stderr);
}

#[test]
fn trigger_delivers_a_synthetic_event_with_a_payload_file() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK]);
    let refused = sandbox_table(&env, &["trigger", "newTransactions", "--user", &user]);
    refused.code(3);
    assert!(refused.stderr.contains("no webhook target"), "{}", refused.stderr);

    // Nothing listens on this port: the attempt is logged as failed.
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    env.block(env.kit().set_webhook_target(Some(&hook), Some("json"))).unwrap();
    let payload = env.dir.join("payload.json");
    std::fs::write(&payload, r#"{"accountId": "abc", "transactionIds": ["t1"]}"#).unwrap();
    // Issue 23 #1: a delivery nobody accepted is a failure (exit 3) that gives its status.
    let failed = sandbox_table(
        &env,
        &[
            "trigger",
            "newTransactions",
            "--user",
            &user,
            "--payload",
            payload.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    failed.code(3);
    assert!(
        failed.stderr.contains("did not accept") && failed.stderr.contains("no answer"),
        "{}",
        failed.stderr
    );
    let fired = failed.json();
    let d = &fired["deliveries"][0];
    assert_eq!(
        (d["eventType"].as_str(), d["userId"].as_str()),
        (Some("newTransactions"), Some(user.as_str()))
    );
    assert_eq!(d["payload"]["transactionIds"], json!(["t1"]));
    assert_eq!(d["outcome"], "failed");
    assert_eq!(d["url"], hook);

    let table = sandbox_table(&env, &["trigger", "syncComplete", "--user", &user]);
    table.code(3);
    assert!(table.stdout.contains("(syncComplete) for user"), "{}", table.stdout);
    assert!(table.stdout.contains("failed"), "{}", table.stdout);

    std::fs::write(&payload, "not json").unwrap();
    let bad = sandbox_table(&env, &["trigger", "x", "--user", &user, "--payload", payload.to_str().unwrap()]);
    bad.code(2);
    assert!(bad.stderr.contains("not JSON"), "{}", bad.stderr);
}

#[test]
fn connection_set_puts_a_connection_in_each_scripted_state() {
    let env = Env::new();
    let (_, ids) = env.user_with(&[banks::MOCK, banks::BARCLAYS, banks::NORTHWIND]);
    let set = |id: &str, args: &[&str]| {
        let mut all = vec!["connection", "set", id];
        all.extend_from_slice(args);
        sandbox_json(&env, &all)
    };
    assert_eq!(set(&ids[0], &["failing"])["thereafter"], "error");
    assert_eq!(set(&ids[0], &["mfa-due"])["thereafter"], "mfa-required");
    assert_eq!(set(&ids[0], &["credentials-rejected"])["thereafter"], "credentials-error");
    assert_eq!(set(&ids[0], &["healthy"])["thereafter"], Value::Null);
    let failing = set(&ids[0], &["failing", "--since", "2025-01-10T00:00:00Z"]);
    assert_eq!(failing["connection"]["status"], "error", "{failing}");
    let ending = set(&ids[1], &["consent-ending", "--days", "3"]);
    assert_eq!(ending["connection"]["expiresAt"], "2025-01-18T09:00:00.000Z", "{ending}");
    let lapsed = set(&ids[1], &["consent-lapsed"]);
    assert_eq!(lapsed["connection"]["tppConsent"], false, "{lapsed}");
    let withdrawn = set(&ids[2], &["provider-withdrawn"]);
    assert_eq!(withdrawn["connection"]["status"], "never", "{withdrawn}");
    let stale = set(&ids[0], &["healthy", "--single-sync-only", "true"]);
    assert_eq!(stale["state"], "healthy");

    let table = sandbox_table(&env, &["connection", "set", &ids[0], "failing"]);
    table.ok();
    assert!(table.stdout.contains("next syncs") && table.stdout.contains("error"), "{}", table.stdout);
    // Issue 23 #17: a missing value is `-`, never "null".
    let healthy = sandbox_table(&env, &["connection", "set", &ids[0], "healthy"]);
    healthy.ok();
    assert!(!healthy.stdout.contains("null"), "{}", healthy.stdout);

    // Each state's own checks, and an unknown connection.
    let no_days = sandbox_table(&env, &["connection", "set", &ids[1], "consent-ending"]);
    no_days.code(3);
    assert!(no_days.stderr.contains("needs days"), "{}", no_days.stderr);
    let unknown = sandbox_table(&env, &["connection", "set", "nope:nothing", "healthy"]);
    unknown.code(3);
    assert!(unknown.stderr.contains("HTTP 404"), "{}", unknown.stderr);
    let bad_state = sandbox_table(&env, &["connection", "set", &ids[0], "sleepy"]);
    bad_state.code(2);
}

#[test]
fn faults_add_list_and_clear() {
    let env = Env::new();
    let added = sandbox_json(&env, &["faults", "add", "/v3/transactions", "--status", "502", "--times", "2"]);
    assert_eq!(
        (added["id"].is_string(), added["status"].as_u64(), added["times"].as_u64()),
        (true, Some(502), Some(2))
    );
    sandbox_json(&env, &["faults", "add", "/v3/accounts", "--method", "get", "--latency", "5", "--drop"]);
    let listed = sandbox_json(&env, &["faults", "list"]);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
    let table = sandbox_table(&env, &["faults", "list"]);
    table.ok();
    assert!(
        table.stdout.contains("/v3/transactions") && table.stdout.contains("drop +5ms"),
        "{}",
        table.stdout
    );
    let bad = sandbox_table(&env, &["faults", "add", "/x", "--status", "200"]);
    bad.code(3);
    assert_eq!(sandbox_json(&env, &["faults", "clear"]), json!({"cleared": 2}));
    let empty = sandbox_table(&env, &["faults", "list"]);
    assert!(empty.stdout.contains("no fault rules"), "{}", empty.stdout);
}

#[test]
fn deliveries_lists_the_attempts() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK]);
    let none = sandbox_table(&env, &["deliveries"]);
    none.ok();
    assert!(none.stdout.contains("no deliveries"), "{}", none.stdout);
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    env.block(env.kit().set_webhook_target(Some(&hook), None)).unwrap();
    env.block(env.kit().fire(&user, "newTransactions", None)).unwrap();
    env.block(env.kit().fire(&user, "deletedAccount", None)).unwrap();
    let page = sandbox_json(&env, &["deliveries"]);
    let events: Vec<&str> =
        page["data"].as_array().unwrap().iter().map(|d| d["eventType"].as_str().unwrap()).collect();
    assert_eq!(events, ["newTransactions", "deletedAccount"]);
    assert_eq!(page["lastSeq"], 2);
    let after = sandbox_json(&env, &["deliveries", "--after", "1"]);
    assert_eq!(after["data"].as_array().unwrap().len(), 1);
    let table = sandbox_table(&env, &["deliveries"]);
    assert!(table.stdout.contains("deletedAccount") && table.stdout.contains("last #2"), "{}", table.stdout);
}

#[test]
fn reset_and_load_a_scenario() {
    let env = Env::new();
    let loaded = sandbox_json(&env, &["load", TEN]);
    assert_eq!(loaded["users"][0]["clientUserId"], "demo-customer-42");
    assert_eq!(loaded["users"][0]["connections"].as_array().unwrap().len(), 10);
    assert_eq!(loaded["reset"], false);
    let states: Vec<&str> = loaded["users"][0]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"provider-withdrawn") && states.contains(&"consent-lapsed"), "{states:?}");

    // Moved on, the scenario's start is in the past: a reset makes room for it.
    env.advance(json!({"days": 1}));
    let refused = sandbox_table(&env, &["load", TEN]);
    refused.code(3);
    assert!(refused.stderr.contains("line 9") && refused.stderr.contains("--reset"), "{}", refused.stderr);
    let table = sandbox_table(&env, &["load", TEN, "--reset"]);
    table.ok();
    assert!(
        table.stdout.contains("after a reset") && table.stdout.contains("10 connections"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("natwest") && table.stdout.contains("failing"), "{}", table.stdout);

    let reset = sandbox_json(&env, &["reset"]);
    assert_eq!(reset, json!({"now": "2025-01-15T09:00:00Z", "frozen": true}));
    assert_eq!(env.block(env.kit().stats()).unwrap().users, 0);

    // Errors carry the file, the line and the column.
    let bad = env.dir.join("bad.toml");
    std::fs::write(&bad, "[[users]]\nclientUserId = \"x\"\nconnections = [{ bank = \"Bank of Nowhere\" }]\n")
        .unwrap();
    let r = sandbox_table(&env, &["load", bad.to_str().unwrap()]);
    r.code(3);
    assert!(r.stderr.contains("bad.toml: line 3, column 25: unknown bank"), "{}", r.stderr);
    let missing = sandbox_table(&env, &["load", "/nonexistent/scenario.toml"]);
    missing.code(2);
}

#[test]
fn the_sandbox_url_comes_from_the_configuration_or_is_asked_for() {
    let env = Env::new();
    // MONEYHUB_IDENTITY_URL (set by Env::command) names the sandbox.
    let shown = env.json(&["sandbox", "clock", "show"]);
    assert_eq!(shown["frozen"], true);
    let r = crate::support::bare(&["sandbox", "reset"]);
    r.code(2);
    assert!(r.stderr.contains("--sandbox-url"), "{}", r.stderr);
    let r = crate::support::bare(&[
        "sandbox",
        "reset",
        "--sandbox-url",
        &format!("http://127.0.0.1:{}", free_port()),
    ]);
    r.code(3);
    assert!(r.stderr.contains("is a sandbox running there?"), "{}", r.stderr);
}

#[test]
fn sandbox_serve_loads_its_scenario_at_start_and_after_a_reset() {
    let dir = TempDir::new();
    let port = free_port();
    let mut cmd = command(&dir);
    cmd.args(["sandbox", "serve", "--port", &port.to_string(), "--scenario", TEN])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = Server { child: cmd.spawn().expect("spawn sandbox serve") };
    let lines = read_until(&mut server.child, "Press Ctrl-C");
    assert!(lines.iter().any(|l| l.contains("ten-connections.toml")), "{lines:?}");
    let url = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let mut cmd = command(&dir);
        cmd.args(["sandbox"]).args(args).args(["--sandbox-url", &url, "--output", "json"]);
        let r = run_command(cmd);
        r.ok();
        r.json()
    };
    assert_eq!(run(&["clock", "show"]), json!({"now": "2025-01-15T09:00:00Z", "frozen": true}));
    run(&["clock", "advance", "2d"]);
    run(&["reset"]);
    assert_eq!(run(&["clock", "show"])["now"], "2025-01-15T09:00:00Z");
    let again = run(&["load", TEN]);
    assert!(again["users"][0]["existed"].as_bool().unwrap(), "the start-up scenario's user is back: {again}");

    let mut cmd = command(&dir);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[clock]\nstart = 12\n").unwrap();
    cmd.args(["sandbox", "serve", "--port", "0", "--scenario", bad.to_str().unwrap()]);
    let r = run_command(cmd);
    r.code(2);
    assert!(r.stderr.contains("--scenario") && r.stderr.contains("line 2"), "{}", r.stderr);
}

#[test]
fn ids_are_accepted_by_any_unique_prefix() {
    // Issue 23 #3: the short ids the tables show.
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK]);
    let (_, other) = env.user_with(&[banks::MOCK]);
    let short = ids[0].rsplit_once(':').unwrap().1[..8].to_owned();
    let set = sandbox_json(&env, &["connection", "set", &short, "failing"]);
    assert_eq!(set["connectionId"], ids[0].as_str(), "{set}");
    assert_eq!(set["thereafter"], "error");
    // The bank id starts both users' connections: ambiguous, and said so.
    let ambiguous = sandbox_table(&env, &["connection", "set", &banks::MOCK[..8], "healthy"]);
    ambiguous.code(3);
    assert!(
        ambiguous.stderr.contains("ambiguous")
            && ambiguous.stderr.contains(&ids[0])
            && ambiguous.stderr.contains(&other[0]),
        "{}",
        ambiguous.stderr
    );
    let none = sandbox_table(&env, &["connection", "set", "ffffffff", "healthy"]);
    none.code(3);
    assert!(none.stderr.contains("HTTP 404"), "{}", none.stderr);
    // A user by prefix, for trigger (the event goes to the full id).
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    env.block(env.kit().set_webhook_target(Some(&hook), Some("json"))).unwrap();
    let fired = sandbox_table(&env, &["trigger", "syncCompleted", "--user", &user[..10], "-o", "json"]);
    assert_eq!(fired.json()["deliveries"][0]["userId"], user.as_str(), "{}", fired.stdout);
}

#[test]
fn webhooks_set_show_clear_resend_and_logs_tail() {
    // Issue 23 #2.
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK]);
    let none = sandbox_table(&env, &["webhooks", "show"]);
    none.ok();
    assert!(none.stdout.contains("no webhook target"), "{}", none.stdout);
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    let set = sandbox_json(&env, &["webhooks", "set", &hook, "--format", "jwt"]);
    assert_eq!((set["url"].as_str(), set["format"].as_str()), (Some(hook.as_str()), Some("jwt")), "{set}");
    let shown = sandbox_table(&env, &["webhooks", "show"]);
    assert!(shown.stdout.contains(&hook) && shown.stdout.contains("jwt"), "{}", shown.stdout);

    // Nobody listens: the delivery fails; resend sends the same event again.
    sandbox_table(&env, &["trigger", "newTransactions", "--user", &user]).code(3);
    let resent = sandbox_table(&env, &["deliveries", "resend", "1", "-o", "json"]);
    resent.code(3);
    let again = resent.json();
    let log = sandbox_json(&env, &["deliveries"]);
    let first = &log["data"][0];
    assert_eq!(again["deliveries"][0]["webhookId"], first["webhookId"], "{again}");
    assert_eq!(again["deliveries"][0]["payload"], first["payload"]);
    let gone = sandbox_table(&env, &["deliveries", "resend", "99"]);
    gone.code(3);
    assert!(gone.stderr.contains("#99"), "{}", gone.stderr);

    // The request log: method, path, status.
    env.ok(&["users", "list"]);
    let tail = sandbox_table(&env, &["logs", "tail", "-n", "50"]);
    tail.ok();
    assert!(
        tail.stdout.lines().any(|l| l.contains("GET /users?limit=") && l.contains(" 200 (")),
        "{}",
        tail.stdout
    );

    let cleared = sandbox_json(&env, &["webhooks", "clear"]);
    assert_eq!(cleared["url"], Value::Null);
    let nothing = sandbox_table(&env, &["deliveries", "--after", "5"]);
    assert!(nothing.stdout.contains("no webhook target is set"), "{}", nothing.stdout);
}

#[test]
fn listen_prints_each_delivery_as_it_happens() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK]);
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    let base = env.base();
    let mut cmd = env.command();
    cmd.args([
        "sandbox",
        "--sandbox-url",
        &base,
        "listen",
        "--forward-to",
        &hook,
        "--format",
        "json",
        "--count",
        "1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Wait until listen has set the target, then fire.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while env.block(env.kit().webhook_target()).unwrap().url.as_deref() != Some(hook.as_str()) {
        assert!(std::time::Instant::now() < deadline, "listen did not set the target");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = env.block(env.kit().fire(&user, "syncCompleted", None));
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("syncCompleted") && stdout.contains("connection ") && stdout.contains("failed"),
        "{stdout}"
    );
    // The previous target (none) is back.
    assert_eq!(env.block(env.kit().webhook_target()).unwrap().url, None);
}

/// Issue 23 #2: `logs tail --bodies` shows each request's body as the sandbox kept it:
/// secrets redacted (form and JSON), at most 4 KiB, and through the CLI's sanitizer (a bidi
/// override in a body is printed escaped). Without `--bodies`, no body.
#[test]
fn logs_tail_shows_request_bodies_on_request_redacted_and_sanitized() {
    let env = Env::new();
    let base = env.base();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    env.block(async {
        http.post(format!("{base}/v3/accounts"))
            .header("content-type", "application/json")
            .body("{\"note\":\"\u{202e}evil\",\"nested\":{\"password\":\"hunter2\"},\"n\":1}")
            .send()
            .await
            .unwrap();
        http.post(format!("{base}/oidc/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "x"),
                ("client_secret", "s3cr3t-form"),
            ])
            .send()
            .await
            .unwrap();
        http.post(format!("{base}/v3/transactions"))
            .header("content-type", "text/plain")
            .body("y".repeat(10_000))
            .send()
            .await
            .unwrap();
    });
    let plain = sandbox_table(&env, &["logs", "tail", "-n", "5"]);
    plain.ok();
    assert!(!plain.stdout.contains("body:"), "{}", plain.stdout);
    let tail = sandbox_table(&env, &["logs", "tail", "-n", "5", "--bodies"]);
    tail.ok();
    let out = &tail.stdout;
    assert!(out.contains("\"nested\":{\"password\":\"[redacted]\"}"), "{out}");
    assert!(
        out.contains("client_secret=[redacted]") && out.contains("grant_type=client_credentials"),
        "{out}"
    );
    assert!(!out.contains("hunter2") && !out.contains("s3cr3t-form"), "{out}");
    assert!(!out.contains('\u{202e}') && out.contains("\\u202e"), "the bidi override escaped: {out}");
    let long = out.lines().find(|l| l.contains("body: yyy")).expect("the long body");
    assert!(long.len() < 4200 && long.ends_with("...[truncated]"), "{} bytes", long.len());
    let json = sandbox_table(&env, &["logs", "tail", "-n", "5", "--bodies", "-o", "json"]);
    json.ok();
    assert!(json.stdout.contains("\"body\":"), "{}", json.stdout);
}
