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
