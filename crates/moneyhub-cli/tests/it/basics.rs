//! Help, version, usage errors, the embedded sandbox, and inputs that must never panic.

use crate::support::{bare, Env};

#[test]
fn help_and_version_exit_zero() {
    let r = bare(&["--help"]);
    r.ok();
    for cmd in [
        "catalog",
        "users",
        "connect",
        "reauth",
        "refresh",
        "reconsent",
        "connections",
        "doctor",
        "transactions",
        "demo",
        "sandbox",
    ] {
        assert!(r.stdout.contains(cmd), "help lists {cmd}: {}", r.stdout);
    }
    let v = bare(&["--version"]);
    v.ok();
    assert!(v.stdout.starts_with("moneyhub "), "{}", v.stdout);
    bare(&["doctor", "--help"]).ok();
}

#[test]
fn usage_errors_exit_two_and_name_the_problem() {
    let r = bare(&["frobnicate"]);
    r.code(2);
    assert!(r.stderr.contains("frobnicate"), "{}", r.stderr);
    // doctor needs exactly one source.
    let r = bare(&["doctor"]);
    r.code(2);
    assert!(r.stderr.contains("--user") || r.stderr.contains("<--user"), "{}", r.stderr);
    bare(&["doctor", "--user", "u", "--all-users"]).code(2);
    // --accounts-file needs --from-file.
    bare(&["doctor", "--user", "u", "--accounts-file", "a.json"]).code(2);
    let r = bare(&["--output", "yaml", "users", "list"]);
    r.code(2);
    assert!(r.stderr.contains("yaml"), "{}", r.stderr);
}

#[test]
fn nothing_configured_uses_the_embedded_sandbox_with_a_notice() {
    let r = bare(&["users", "list", "--output", "json"]);
    r.ok();
    assert!(r.stderr.contains("nothing configured"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one-line notice: {}", r.stderr);
    let users = r.json();
    assert_eq!(users.as_array().map(Vec::len), Some(1));
    assert_eq!(users[0]["clientUserId"], "sandbox-sample-user");
    assert_eq!(users[0]["connectionIds"].as_array().map(Vec::len), Some(3));
    // --sandbox: same sandbox, no notice; the same seed gives the same ids on every run.
    let again = bare(&["--sandbox", "users", "list", "--output", "json"]);
    again.ok();
    assert!(again.stderr.is_empty(), "{}", again.stderr);
    assert_eq!(again.json()[0]["userId"], users[0]["userId"]);
}

#[test]
fn embedded_sandbox_supports_multi_step_work_on_its_sample_user() {
    let users = bare(&["--sandbox", "users", "list", "-o", "json"]).json();
    let user = users[0]["userId"].as_str().unwrap().to_owned();
    let rows = bare(&["--sandbox", "doctor", "--user", &user, "-o", "json"]).json();
    assert_eq!(rows.as_array().map(Vec::len), Some(3));
    assert!(rows.as_array().unwrap().iter().all(|r| r["action"] == "none"), "{rows}");
}

#[test]
fn hostile_inputs_never_panic() {
    let env = Env::new();
    let long = "x".repeat(100_000);
    for args in [
        vec!["users", "get", "--user", ""],
        vec!["users", "get", "--user", "a/b"],
        vec!["users", "get", "--user", long.as_str()],
        vec!["users", "get", "--user", "\u{1}\u{7f}"],
        vec!["connections", "list", "--user", "💥"],
        vec!["connections", "get", "--user", "nobody", "--connection", ""],
        vec!["transactions", "get", "--user", "u", "--ids", ",,,"],
        vec!["transactions", "list", "--user", "u", "--from", "2025-13-45"],
        vec!["transactions", "list", "--user", "u", "--limit", "0"],
        vec!["transactions", "list", "--user", "u", "--limit", "-5"],
        vec!["doctor", "--user", "u", "--now", "yesterday"],
        vec!["doctor", "--all-users", "--concurrency", "0"],
        vec!["reconsent", "--user", "u", "--connection", "c", "--expires-at", "soon"],
        vec!["catalog", "--type", "nope"],
    ] {
        let r = env.run(&args);
        assert!(matches!(r.code, 2 | 3), "{args:?}: {r:?}");
        assert!(r.stderr.starts_with("moneyhub: ") || r.stderr.starts_with("error:"), "{args:?}: {r:?}");
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    use std::io::Read;
    use std::process::Stdio;
    let env = Env::new();
    let (user, _) = env.user_with(&[crate::support::banks::MOCK]);
    // The background history: thousands of transactions, far more than a pipe buffers.
    env.advance(serde_json::json!({"seconds": 2}));
    let mut cmd = env.command();
    cmd.args(["transactions", "list", "--user", &user, "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    // Read a little, then hang up.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 64];
    let _ = stdout.read(&mut buf);
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(matches!(out.status.code(), Some(0)), "{:?} {stderr}", out.status);
}
