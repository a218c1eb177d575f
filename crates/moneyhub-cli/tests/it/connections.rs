//! `moneyhub connections list|get|status|sync|delete`.

use serde_json::json;

use crate::support::{banks, fits_80, snapshot, Env};

#[test]
fn list_get_and_status() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK, banks::MODELO, banks::AVIVA]);
    env.control(
        "PUT",
        &format!("/connections/{}/script", ids[1]),
        json!({"outcomes": [], "thereafter": "partial"}),
    );
    env.advance(json!({"hours": 2}));
    let table = env.ok(&["connections", "list", "--user", &user]);
    fits_80(&table.stdout);
    snapshot("connections_list", &table.stdout);
    let list = env.json(&["connections", "list", "--user", &user]);
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    assert_eq!(list[1]["error"], "sync_partial");

    let short = &ids[0][ids[0].len() - 36..ids[0].len() - 28];
    let got = env.json(&["connections", "get", "--user", &user, "--connection", short]);
    assert_eq!(got["id"], ids[0].as_str());
    let table = env.ok(&["connections", "get", "--user", &user, "--connection", &ids[0]]);
    snapshot("connections_get", &table.stdout);

    let status = env.json(&["connections", "status", "--user", &user, "--connection", &ids[1]]);
    assert_eq!(status["connection"]["status"], "error");
    let syncs = status["syncs"].as_array().expect("syncs");
    assert!(!syncs.is_empty());
    assert_eq!(syncs[0]["fetchStatus"], "partial", "{status}");
    let table = env.ok(&["connections", "status", "--user", &user, "--connection", &ids[1]]);
    fits_80(&table.stdout);
    snapshot("connections_status", &table.stdout);

    // Unknown connection and unknown user: API errors.
    env.run(&["connections", "get", "--user", &user, "--connection", "00000000"]).code(3);
    env.run(&["connections", "list", "--user", "ffffffffffffffffffffffff"]).code(3);
}

#[test]
fn sync_wait_then_rate_limited() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK]);
    let out = env.json(&["connections", "sync", "--user", &user, "--connection", &ids[0], "--wait"]);
    assert_eq!(out["connectionId"], ids[0].as_str());
    assert!(out["syncId"].is_string());
    assert_eq!(out["fetchStatus"], "success");
    assert_eq!(out["status"], "ok");
    // A second sync within 30 minutes: the sandbox answers 429 and the CLI says when (exit 5).
    let r = env.run(&["connections", "sync", "--user", &user, "--connection", &ids[0]]);
    r.code(5);
    assert!(
        r.stderr.contains("rate limited") && r.stderr.contains("allowed again from 2025-01-15T09:30"),
        "{}",
        r.stderr
    );
    // Without --wait the sync is started and reported.
    env.advance(json!({"minutes": 31}));
    let r = env.ok(&["connections", "sync", "--user", &user, "--connection", &ids[0]]);
    assert!(r.stdout.contains("Started a sync of Moneyhub Open Banking Mock"), "{}", r.stdout);
}

#[test]
fn the_local_guard_refuses_a_second_sync_without_sending_it() {
    // As against Moneyhub itself: no sandbox detection, the guard's history kept on disk.
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK]);
    let run = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.env("MONEYHUB_SANDBOX_PROBE", "0").args(args);
        crate::support::run_command(cmd)
    };
    run(&["connections", "sync", "--user", &user, "--connection", &ids[0]]).ok();
    let before = env.last_seq();
    let r = run(&["connections", "sync", "--user", &user, "--connection", &ids[0]]);
    r.code(5);
    assert!(
        r.stderr.contains("refused locally (not sent)") && r.stderr.contains("allowed again from"),
        "{}",
        r.stderr
    );
    let posts = env
        .requests(before)
        .iter()
        .filter(|e| e["method"] == "POST" && e["path"].as_str().is_some_and(|p| p.contains("/sync/")))
        .count();
    assert_eq!(posts, 0, "the refused sync was not sent");
    let files: Vec<_> = std::fs::read_dir(env.dir.join("state")).expect("state dir").collect();
    assert_eq!(files.len(), 1, "one guard file");
}

#[test]
fn two_syncs_started_at_once_let_exactly_one_through() {
    // Two processes sharing the guard's file (no sandbox detection, as against Moneyhub),
    // started together: the file lock makes their read-modify-writes take turns.
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK]);
    let before = env.last_seq();
    let spawn = || {
        let mut cmd = env.command();
        cmd.env("MONEYHUB_SANDBOX_PROBE", "0")
            .args(["connections", "sync", "--user", &user, "--connection", &ids[0]])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("start moneyhub")
    };
    let children = [spawn(), spawn()];
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().expect("wait")).collect();
    let mut codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    codes.sort_unstable();
    let stderr: Vec<_> = outputs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
    assert_eq!(codes, vec![0, 5], "one sync through, one refused by the guard: {stderr:?}");
    assert!(stderr.iter().any(|e| e.contains("refused locally (not sent)")), "{stderr:?}");
    let posts = env
        .requests(before)
        .iter()
        .filter(|e| e["method"] == "POST" && e["path"].as_str().is_some_and(|p| p.contains("/sync/")))
        .count();
    assert_eq!(posts, 1, "exactly one sync was sent");
}

#[test]
fn delete_a_connection() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK, banks::AVIVA]);
    env.run(&["connections", "delete", "--user", &user, "--connection", &ids[0]]).code(2);
    let out = env.json(&["connections", "delete", "--user", &user, "--connection", &ids[0], "--yes"]);
    assert_eq!(out, json!({"connectionId": ids[0], "deleted": true}));
    let left = env.json(&["connections", "list", "--user", &user]);
    assert_eq!(left.as_array().map(Vec::len), Some(1));
    assert_eq!(left[0]["id"], ids[1].as_str());
    let r = env.ok(&["connections", "delete", "--user", &user, "--connection", &ids[1], "-y"]);
    assert!(r.stdout.starts_with("Deleted connection"), "{}", r.stdout);
}
