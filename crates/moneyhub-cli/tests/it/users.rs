//! `moneyhub users create|get|list|delete`.

use crate::support::{fits_80, snapshot, Env};

#[test]
fn create_get_list_delete() {
    let env = Env::new();
    let created = env.json(&["users", "create", "--client-user-id", "customer-42"]);
    let id = created["userId"].as_str().expect("userId").to_owned();
    assert_eq!(created["clientUserId"], "customer-42");
    assert_eq!(created["createdAt"], "2025-01-15T09:00:00.000Z");

    let got = env.json(&["users", "get", "--user", &id]);
    assert_eq!(got["userId"], id.as_str());
    let table = env.ok(&["users", "get", "--user", &id]);
    snapshot("users_get", &table.stdout);

    env.user_with(&[crate::support::banks::MOCK, crate::support::banks::AVIVA]);
    let list = env.json(&["users", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let limited = env.json(&["users", "list", "--limit", "1"]);
    assert_eq!(limited.as_array().map(Vec::len), Some(1));
    let table = env.ok(&["users", "list"]);
    fits_80(&table.stdout);
    snapshot("users_list", &table.stdout);

    // Deleting needs --yes when stdin is not a terminal.
    let refused = env.run(&["users", "delete", "--user", &id]);
    refused.code(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let deleted = env.json(&["users", "delete", "--user", &id, "--yes"]);
    assert_eq!(deleted, serde_json::json!({"userId": id, "deleted": true}));
    let gone = env.run(&["users", "get", "--user", &id]);
    gone.code(3);
    assert!(gone.stderr.contains("404"), "{}", gone.stderr);
    assert_eq!(env.json(&["users", "list"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn empty_client_user_id_is_invalid_input() {
    let env = Env::new();
    let r = env.run(&["users", "create", "--client-user-id", ""]);
    r.code(2);
    assert!(r.stderr.contains("clientUserId"), "{}", r.stderr);
}

/// Issue 11 #7: a dot-segment id would change the route (`GET /users/..` is `GET /users`;
/// `DELETE /users/..` would be `DELETE /users`). It is refused locally as bad usage, and the
/// sandbox sees no request at all.
#[test]
fn dot_segment_ids_are_refused_before_anything_is_sent() {
    let env = Env::new();
    let before = env.last_seq();
    for args in [
        &["users", "get", "--user", ".."][..],
        &["users", "get", "--user", "."][..],
        &["users", "delete", "--user", "..", "--yes"][..],
        &["connections", "list", "--user", ".."][..],
        &["transactions", "list", "--user", ".."][..],
        &["doctor", "--user", ".."][..],
    ] {
        let r = env.run(args);
        r.code(2);
        assert!(r.stderr.contains("must not be `.` or `..`"), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    // The CLI reads a sandbox target's virtual clock (`GET /__sandbox/clock`) when it starts;
    // nothing may reach Moneyhub's routes (identity, token, Data API).
    let sent: Vec<_> = env
        .requests(before)
        .into_iter()
        .filter(|r| !r["path"].as_str().unwrap_or_default().starts_with("/__sandbox/"))
        .collect();
    assert!(sent.is_empty(), "requests were sent: {sent:#?}");
}
