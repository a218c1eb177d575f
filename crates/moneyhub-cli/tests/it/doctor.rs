//! `moneyhub doctor`: every action, driven through the sandbox's control API (contact_support
//! from a saved body), the table, `--all-users` and its request budget, and offline input.

use serde_json::{json, Value};

use crate::support::{banks, bare, fits_80, snapshot, Env, TempDir};

/// The doctor's row for `connection` of `user`.
fn advice(env: &Env, user: &str, connection: &str) -> Value {
    let rows = env.json(&["doctor", "--user", user]);
    let rows = rows.as_array().expect("array");
    rows.iter()
        .find(|r| r["connectionId"] == connection)
        .cloned()
        .unwrap_or_else(|| panic!("no row for {connection}: {rows:?}"))
}

fn check_keys(row: &Value) {
    for key in [
        "connectionId",
        "userId",
        "name",
        "type",
        "status",
        "error",
        "extendedStatus",
        "action",
        "reason",
        "notBefore",
        "rule",
        "unknown",
    ] {
        assert!(row.get(key).is_some(), "key {key} in {row}");
    }
    assert!(row["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[test]
fn action_none_for_a_healthy_connection() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK]);
    let row = advice(&env, &user, &ids[0]);
    check_keys(&row);
    assert_eq!(row["action"], "none", "{row}");
    assert_eq!(row["userId"], user.as_str());
    assert!(row["notBefore"].is_null());
}

#[test]
fn action_sync_when_syncs_fail() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK]);
    env.control(
        "PUT",
        &format!("/connections/{}/script", ids[0]),
        json!({"outcomes": [], "thereafter": "error"}),
    );
    env.advance(json!({"hours": 2}));
    let row = advice(&env, &user, &ids[0]);
    assert_eq!((row["status"].as_str(), row["error"].as_str()), (Some("error"), Some("sync_error")), "{row}");
    assert_eq!(row["action"], "sync", "{row}");
}

#[test]
fn action_reauth_on_bad_credentials() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::BARCLAYS]);
    env.control(
        "PUT",
        &format!("/connections/{}/script", ids[0]),
        json!({"outcomes": ["credentials-error"]}),
    );
    env.advance(json!({"hours": 2}));
    let row = advice(&env, &user, &ids[0]);
    assert_eq!(row["error"], "credentials_error", "{row}");
    assert_eq!(row["action"], "reauth", "{row}");
}

#[test]
fn action_reconsent_on_expired_consent_with_tpp_consent() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::BARCLAYS]);
    env.control(
        "PATCH",
        &format!("/connections/{}", ids[0]),
        json!({"expiresAt": "2025-01-14T09:00:00.000Z"}),
    );
    let row = advice(&env, &user, &ids[0]);
    assert_eq!(row["extendedStatus"], "expired", "{row}");
    assert_eq!(row["action"], "reconsent", "{row}");
}

#[test]
fn action_refresh_when_a_legacy_provider_wants_mfa() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::AVIVA]);
    env.control("PUT", &format!("/connections/{}/script", ids[0]), json!({"outcomes": ["mfa-required"]}));
    // Legacy connections sync overnight (02:00).
    env.advance(json!({"hours": 18}));
    let row = advice(&env, &user, &ids[0]);
    assert_eq!(
        (row["type"].as_str(), row["error"].as_str()),
        (Some("legacy"), Some("mfa_required")),
        "{row}"
    );
    assert_eq!(row["action"], "refresh", "{row}");
}

#[test]
fn action_remove_when_the_provider_is_withdrawn() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::NORTHWIND]);
    env.control("POST", &format!("/providers/{}/remove", banks::NORTHWIND), json!({}));
    let row = advice(&env, &user, &ids[0]);
    assert_eq!(row["status"], "never", "{row}");
    assert_eq!(row["action"], "remove", "{row}");
}

/// A saved `GET /users/{id}/connections` body.
fn saved(connections: Value) -> Value {
    json!({"data": connections, "meta": {}})
}

fn connection(id: &str, kind: &str, status: &str, error: Value, last_updated: &str) -> Value {
    json!({"id": id, "name": "Some Bank", "type": kind, "connectedOn": "2025-01-01T10:00:00.000Z",
           "lastUpdated": last_updated, "lastSyncedAt": last_updated, "expiresAt": "2025-04-01T10:00:00.000Z",
           "accountIds": [], "status": status, "error": error, "tppConsent": true})
}

#[test]
fn action_contact_support_for_values_nobody_knows_yet() {
    let dir = TempDir::new();
    let file = dir.join("connections.json");
    std::fs::write(
        &file,
        saved(json!([
            connection("b:1", "api", "error", json!("provider_maintenance"), "2025-01-15T08:00:00.000Z"),
            connection("b:2", "api", "suspended", Value::Null, "2025-01-15T08:00:00.000Z"),
        ]))
        .to_string(),
    )
    .unwrap();
    let r = bare(&[
        "doctor",
        "--from-file",
        file.to_str().unwrap(),
        "--now",
        "2025-01-15T09:00:00Z",
        "-o",
        "json",
    ]);
    r.ok();
    assert!(r.stderr.is_empty(), "offline: no sandbox, no notice: {}", r.stderr);
    let rows = r.json();
    check_keys(&rows[0]);
    assert_eq!(rows[0]["action"], "contact_support");
    assert_eq!(rows[0]["unknown"], "error=provider_maintenance");
    assert!(rows[0]["reason"].as_str().unwrap().contains("provider_maintenance"));
    assert!(rows[0]["userId"].is_null());
    assert_eq!(rows[1]["action"], "contact_support");
    assert_eq!(rows[1]["unknown"], "status=suspended");
}

#[test]
fn from_file_uses_account_types_for_staleness() {
    let dir = TempDir::new();
    let conns = dir.join("c.json");
    let accounts = dir.join("a.json");
    // Fine 10 days after the last update for a mortgage, stale for a current account.
    std::fs::write(
        &conns,
        json!([
            connection("m:1", "api", "ok", Value::Null, "2025-01-05T09:00:00.000Z"),
            connection("c:1", "api", "ok", Value::Null, "2025-01-05T09:00:00.000Z"),
        ])
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        &accounts,
        json!({"data": [{"id": "6d0baf11-248e-4c11-9c04-97b7758b4e04", "type": "mortgage:repayment", "connectionId": "m:1"},
                         {"id": "6d0baf11-248e-4c11-9c04-97b7758b4e05", "type": "cash:current", "connectionId": "c:1"},
                         {"id": "6d0baf11-248e-4c11-9c04-97b7758b4e06", "type": "cash:current"}]})
        .to_string(),
    )
    .unwrap();
    let args =
        ["doctor", "--from-file", conns.to_str().unwrap(), "--now", "2025-01-15T09:00:00Z", "-o", "json"];
    let with = {
        let mut a = args.to_vec();
        a.extend(["--accounts-file", accounts.to_str().unwrap()]);
        bare(&a).json()
    };
    assert_eq!(with[0]["action"], "none", "{with}");
    assert_eq!(with[1]["action"], "sync", "{with}");
    // Without the accounts both use the 2-day default: both stale.
    let without = bare(&args).json();
    assert_eq!(without[0]["action"], "sync", "{without}");
    // A bare array works as well as the body; the table shows the reason under each row.
    let table = bare(&[&args[..5], &["--accounts-file", accounts.to_str().unwrap()]].concat());
    table.ok();
    fits_80(&table.stdout);
    snapshot("doctor_from_file", &table.stdout);
    // --actionable keeps only the rows that need something done.
    let actionable =
        bare(&[&args[..], &["--accounts-file", accounts.to_str().unwrap(), "--actionable"]].concat()).json();
    assert_eq!(actionable.as_array().map(Vec::len), Some(1));
}

#[test]
fn bad_saved_input_is_invalid_input() {
    let dir = TempDir::new();
    let f = dir.join("bad.json");
    for (content, needle) in [
        ("not json", "not JSON"),
        ("{\"data\": 3}", "array"),
        ("[{\"id\": \"b:1\"}]", "connection [0]"),
        ("[{\"id\": \"b:1\", \"name\": \"x\", \"type\": \"api\", \"connectedOn\": \"yesterday\", \"status\": \"ok\"}]", "connectedOn"),
    ] {
        std::fs::write(&f, content).unwrap();
        let r = bare(&["doctor", "--from-file", f.to_str().unwrap()]);
        r.code(2);
        assert!(r.stderr.contains(needle), "{content}: {}", r.stderr);
    }
    let r = bare(&["doctor", "--from-file", "/nonexistent/file.json"]);
    r.code(2);
    assert!(r.stderr.contains("/nonexistent/file.json"), "{}", r.stderr);
    std::fs::write(&f, "[]").unwrap();
    let a = dir.join("a.json");
    std::fs::write(&a, "[{\"connectionId\": \"b:1\"}]").unwrap();
    let r = bare(&["doctor", "--from-file", f.to_str().unwrap(), "--accounts-file", a.to_str().unwrap()]);
    r.code(2);
    assert!(r.stderr.contains("\"type\""), "{}", r.stderr);
    let r = bare(&["doctor", "--from-file", f.to_str().unwrap()]);
    r.ok();
    assert_eq!(r.stdout, "No connections.\n");
}

#[test]
fn doctor_table_for_a_user() {
    let env = Env::new();
    let (user, ids) =
        env.user_with(&[banks::MOCK, banks::MODELO, banks::AVIVA, banks::BARCLAYS, banks::NORTHWIND]);
    env.control(
        "PUT",
        &format!("/connections/{}/script", ids[2]),
        json!({"outcomes": [], "thereafter": "mfa-required"}),
    );
    env.control(
        "PUT",
        &format!("/connections/{}/script", ids[3]),
        json!({"outcomes": [], "thereafter": "credentials-error"}),
    );
    env.control(
        "PATCH",
        &format!("/connections/{}", ids[1]),
        json!({"expiresAt": "2025-01-19T09:00:00.000Z"}),
    );
    env.control("POST", &format!("/providers/{}/remove", banks::NORTHWIND), json!({}));
    env.advance(json!({"hours": 18}));
    let r = env.ok(&["doctor", "--user", &user]);
    fits_80(&r.stdout);
    snapshot("doctor_user", &r.stdout);
    let rows = env.json(&["doctor", "--user", &user]);
    let actions: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["none", "reconsent", "refresh", "reauth", "remove"]);
}

#[test]
fn all_users_within_the_request_budget() {
    let env = Env::new();
    let n = 60;
    env.control("POST", "/users", json!({"count": n, "banks": [banks::MOCK, banks::MODELO, banks::AVIVA]}));
    let (odd, ids) = env.user_with(&[banks::NORTHWIND]);
    env.control("POST", &format!("/providers/{}/remove", banks::NORTHWIND), json!({}));
    let before = env.last_seq();
    let rows = env.json(&["doctor", "--all-users", "--concurrency", "8"]);
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), n * 3 + 1);
    let removed: Vec<&Value> = rows.iter().filter(|r| r["action"] == "remove").collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["userId"], odd.as_str());
    assert_eq!(removed[0]["connectionId"], ids[0].as_str());
    let log = env.requests(before);
    let tokens = log.iter().filter(|e| e["path"] == "/oidc/token").count();
    let lists = log
        .iter()
        .filter(|e| {
            e["path"].as_str().is_some_and(|p| p.ends_with("/connections") && p.starts_with("/users/"))
        })
        .count();
    let users = n + 1;
    assert_eq!(lists, users, "one list request per user");
    assert!(tokens <= users, "at most one token request per user, got {tokens}");
    // In fact two client tokens serve it all: one for the user listing (user:read), one for
    // every connection listing (connection:read); none is bound to a user.
    assert_eq!(tokens, 2, "{tokens} token requests");
    assert!(
        !log.iter().any(|e| e["path"].as_str().is_some_and(|p| p.contains("/accounts"))),
        "no account reads"
    );
    // The table groups rows by user and fits 80 columns.
    let table = env.ok(&["doctor", "--all-users", "--actionable"]);
    fits_80(&table.stdout);
    assert!(table.stdout.contains(&format!("user {odd}")), "{}", table.stdout);
    assert!(table.stdout.trim_end().ends_with("1 connection: 1 remove"), "{}", table.stdout);
}
