//! The lifecycle rules of `docs/spec/lifecycle.md` §5, each driven through the virtual
//! clock and the control API, and checked through the public routes.

use chrono::Duration;
use moneyhub_sandbox::{ClockMode, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";

fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn manual_sync(
    sb: &moneyhub_sandbox::Sandbox,
    user: &str,
    conn: &str,
) -> (StatusCode, Value, Option<String>) {
    let tok = data_token(sb, user).await;
    let res = http()
        .post(format!("{}/v2.0/sync/{conn}", sb.base_url()))
        .bearer_auth(tok)
        .json(&json!({"customerIpAddress": "203.0.113.9"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, res.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn connect_sets_consent_and_fetches_three_months_then_history_in_the_background() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let c = connection(&sb, &user, &conns[0]).await;
    assert_eq!(c["connectedOn"], iso(t0()));
    assert_eq!(c["expiresAt"], iso(t0() + Duration::days(90)));
    assert_eq!(c["tppConsent"], true);
    assert_eq!(c["status"], "ok");
    assert_eq!(c["error"], Value::Null);
    assert_eq!(c["lastUpdated"], iso(t0()));
    let first = all_transactions(&sb, &user).await;
    assert!(first.len() > 200, "3 months of a busy current account, got {}", first.len());
    let earliest = first.iter().map(|t| t["date"].as_str().unwrap().to_string()).min().unwrap();
    assert!(earliest >= iso(t0() - Duration::days(92)), "initial fetch is 1-3 months, earliest {earliest}");
    // The rest of the history arrives shortly after, in the background.
    let ran = advance(&sb, json!({"minutes": 3})).await;
    assert_eq!(ran["ran"]["historyFetches"], 1, "{ran}");
    let all = all_transactions(&sb, &user).await;
    let earliest = all.iter().map(|t| t["date"].as_str().unwrap().to_string()).min().unwrap();
    assert!(earliest < iso(t0() - Duration::days(30 * 35)), "history back ~36 months, earliest {earliest}");
    assert!(all.len() > first.len() * 8, "{} vs {}", all.len(), first.len());
}

#[tokio::test]
async fn legacy_and_three_named_providers_never_carry_expires_at() {
    let sb = sandbox().await;
    let names = ["Handelsbanken", "PensionBee", "Société Générale"];
    let mut banks = vec![AVIVA.to_string()];
    for n in names {
        banks.push(bank(&sb, n).await);
    }
    let refs: Vec<&str> = banks.iter().map(String::as_str).collect();
    let (user, conns) = user_with(&sb, &refs).await;
    for c in &conns {
        let c = connection(&sb, &user, c).await;
        assert!(c.get("expiresAt").is_none(), "{c}");
        assert_eq!(c["status"], "ok");
    }
}

#[tokio::test]
async fn automatic_syncs_follow_each_types_schedule() {
    let sb = sandbox().await;
    let zoopla = bank(&sb, "Zoopla").await;
    let (user, conns) = user_with(&sb, &[MOCK, AVIVA, &zoopla]).await;
    let report = advance(&sb, json!({"days": 1})).await;
    // API-like: 14:00, 18:00, 22:00, then 06:00 and 10:00 (London = UTC in January).
    let api = syncs(&sb, &user, &conns[0]).await;
    let auto: Vec<&Value> = api.iter().filter(|s| s["action"] == "auto-update").collect();
    let times: Vec<&str> = auto.iter().map(|s| s["createdAt"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        vec![
            "2025-01-16T10:00:00.000Z",
            "2025-01-16T06:00:00.000Z",
            "2025-01-15T22:00:00.000Z",
            "2025-01-15T18:00:00.000Z",
            "2025-01-15T14:00:00.000Z"
        ],
        "{report}"
    );
    let c = connection(&sb, &user, &conns[0]).await;
    assert_eq!(c["lastSyncedAt"], "2025-01-16T10:00:00.000Z");
    assert_eq!(c["lastUpdated"], "2025-01-16T10:00:00.000Z");
    // Legacy: once overnight.
    let legacy = syncs(&sb, &user, &conns[1]).await;
    let auto: Vec<&str> = legacy
        .iter()
        .filter(|s| s["action"] == "auto-update")
        .map(|s| s["createdAt"].as_str().unwrap())
        .collect();
    assert_eq!(auto, vec!["2025-01-16T02:00:00.000Z"]);
    // Valuation: monthly, so nothing yet; then the 1st of the month.
    assert!(syncs(&sb, &user, &conns[2]).await.iter().all(|s| s["action"] != "auto-update"));
    advance(&sb, json!({"days": 20})).await;
    let val: Vec<String> = syncs(&sb, &user, &conns[2])
        .await
        .iter()
        .filter(|s| s["action"] == "auto-update")
        .map(|s| s["createdAt"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(val, vec!["2025-02-01T03:00:00.000Z"]);
    // A property valuation synced monthly is not stale after 20 days (40-day threshold).
    assert_eq!(connection(&sb, &user, &conns[2]).await["status"], "ok");
}

#[tokio::test]
async fn scripted_failures_show_as_connection_errors() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let conn = &conns[0];
    let cases = [
        ("credentials-error", "credentials_error"),
        ("mfa-required", "mfa_required"),
        ("partial", "sync_partial"),
        ("error", "sync_error"),
        ("success", ""),
    ];
    for (outcome, error) in cases {
        advance(&sb, json!({"minutes": 31})).await;
        let (s, _) = control(
            &sb,
            Method::PUT,
            &format!("/connections/{conn}/script"),
            Some(json!({"outcomes": [outcome]})),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let before = connection(&sb, &user, conn).await;
        let (status, body, _) = manual_sync(&sb, &user, conn).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let c = connection(&sb, &user, conn).await;
        if error.is_empty() {
            assert_eq!(c["status"], "ok", "{c}");
            assert_eq!(body["data"]["status"], "ok");
            assert_ne!(c["lastUpdated"], before["lastUpdated"], "success moves lastUpdated");
        } else {
            assert_eq!(
                (c["status"].as_str(), c["error"].as_str()),
                (Some("error"), Some(error)),
                "{outcome}: {c}"
            );
            assert_eq!(body["data"]["status"], "error");
            assert_eq!(c["lastUpdated"], before["lastUpdated"], "{outcome} must not move lastUpdated");
        }
        assert_ne!(c["lastSyncedAt"], before["lastSyncedAt"], "every attempt moves lastSyncedAt");
        let latest = &syncs(&sb, &user, conn).await[0];
        assert_eq!(latest["fetchStatus"], outcome);
    }
}

#[tokio::test]
async fn three_days_of_failures_stop_automatic_syncs() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let conn = &conns[0];
    control(
        &sb,
        Method::PUT,
        &format!("/connections/{conn}/script"),
        Some(json!({"outcomes": [], "thereafter": "error"})),
    )
    .await;
    advance(&sb, json!({"days": 2})).await;
    let c = connection(&sb, &user, conn).await;
    assert_eq!((c["error"].as_str(), c.get("extendedStatus")), (Some("sync_error"), None), "{c}");
    advance(&sb, json!({"days": 2})).await;
    let c = connection(&sb, &user, conn).await;
    assert_eq!(c["extendedStatus"], "stoppedSyncing", "{c}");
    let n = syncs(&sb, &user, conn).await.len();
    advance(&sb, json!({"days": 3})).await;
    assert_eq!(syncs(&sb, &user, conn).await.len(), n, "no automatic retries once stopped");
    // The first failure was at 14:00 on day 0; the last attempt is before day 3 14:00.
    let last = connection(&sb, &user, conn).await["lastSyncedAt"].as_str().unwrap().to_string();
    assert!(last < iso(t0() + Duration::days(3) + Duration::hours(4)), "{last}");
}

#[tokio::test]
async fn a_connection_not_updated_for_two_days_needs_a_resync() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let conn = &conns[0];
    control(&sb, Method::PATCH, &format!("/connections/{conn}"), Some(json!({"singleSyncOnly": true}))).await;
    advance(&sb, json!({"days": 2})).await;
    assert_eq!(connection(&sb, &user, conn).await["status"], "ok", "exactly 2 days is not stale yet");
    advance(&sb, json!({"minutes": 1})).await;
    let c = connection(&sb, &user, conn).await;
    assert_eq!((c["status"].as_str(), c["error"].as_str()), (Some("error"), Some("resync")), "{c}");
    assert_eq!(c["singleSyncOnly"], true);
}

#[tokio::test]
async fn expiry_freezes_data_and_tpp_consent_lapses_ninety_days_later() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let conn = &conns[0];
    advance(&sb, json!({"days": 90, "minutes": 1})).await;
    let c = connection(&sb, &user, conn).await;
    assert_eq!(
        (c["status"].as_str(), c["error"].as_str(), c["extendedStatus"].as_str()),
        (Some("error"), Some("sync_error"), Some("expired")),
        "{c}"
    );
    assert_eq!(c["tppConsent"], true);
    let frozen = all_transactions(&sb, &user).await;
    let n = syncs(&sb, &user, conn).await.len();
    advance(&sb, json!({"days": 10})).await;
    assert_eq!(syncs(&sb, &user, conn).await.len(), n, "no syncs after expiry");
    assert_eq!(all_transactions(&sb, &user).await, frozen, "data frozen");
    let (status, body, _) = manual_sync(&sb, &user, conn).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    advance(&sb, json!({"days": 80})).await;
    assert_eq!(connection(&sb, &user, conn).await["tppConsent"], false);
}

#[tokio::test]
async fn a_removed_provider_means_never_and_no_more_syncs() {
    let sb = sandbox().await;
    let northwind = bank(&sb, "Northwind Building Society").await;
    let (user, conns) = user_with(&sb, &[&northwind]).await;
    let (s, _) = control(&sb, Method::POST, &format!("/providers/{northwind}/remove"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let c = connection(&sb, &user, &conns[0]).await;
    assert_eq!((c["status"].as_str(), c["error"].as_str()), (Some("never"), None), "{c}");
    let n = syncs(&sb, &user, &conns[0]).await.len();
    advance(&sb, json!({"days": 2})).await;
    assert_eq!(syncs(&sb, &user, &conns[0]).await.len(), n);
    let all: Value = http()
        .get(format!("{}/oidc/.well-known/all-connections", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        all.as_array().unwrap().iter().all(|p| p["id"] != northwind.as_str()),
        "withdrawn from the catalogue"
    );
}

#[tokio::test]
async fn removing_a_connection_deletes_its_accounts_and_transactions() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK, AVIVA]).await;
    let txs = all_transactions(&sb, &user).await;
    let tok = data_token(&sb, &user).await;
    let (_, accounts) = get_json(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    let mock_accounts: Vec<&Value> = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["connectionId"] == conns[0].as_str())
        .collect();
    assert_eq!(mock_accounts.len(), 3);
    let mock_tx: Vec<&Value> =
        txs.iter().filter(|t| mock_accounts.iter().any(|a| a["id"] == t["accountId"])).collect();
    assert!(!mock_tx.is_empty());
    let del = token(&sb, "connection:delete", None).await;
    let res = http()
        .delete(format!("{}/users/{user}/connection/{}", sb.base_url(), conns[0]))
        .bearer_auth(del)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, accounts) = get_json(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    assert!(accounts["data"].as_array().unwrap().iter().all(|a| a["connectionId"] != conns[0].as_str()));
    let id = mock_tx[0]["id"].as_str().unwrap();
    let (status, _) = get_json(&format!("{}/v3/transactions/{id}", sb.base_url()), &tok).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, by_ids) = get_json(&format!("{}/v3/transactions?ids={id}", sb.base_url()), &tok).await;
    assert_eq!(by_ids["meta"]["missingTransactionIds"], json!([id]));
    let left = all_transactions(&sb, &user).await;
    assert_eq!(left.len(), txs.len() - mock_tx.len(), "only the removed connection's transactions go");
}

async fn pending(sb: &moneyhub_sandbox::Sandbox, user: &str) -> Vec<Value> {
    all_transactions(sb, user).await.into_iter().filter(|t| t["status"] == "pending").collect()
}

#[tokio::test]
async fn pending_transactions_post_in_place_by_default() {
    let sb = sandbox().await;
    let (user, _) = user_with(&sb, &[MOCK]).await;
    let before = pending(&sb, &user).await;
    assert!(!before.is_empty(), "recent card payments are pending");
    advance(&sb, json!({"days": 3})).await;
    let tok = data_token(&sb, &user).await;
    for p in &before {
        let (status, t) =
            get_json(&format!("{}/v3/transactions/{}", sb.base_url(), p["id"].as_str().unwrap()), &tok).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(t["data"]["status"], "posted");
        assert_eq!(t["data"]["amount"], p["amount"]);
        assert!(t["data"]["dateModified"].as_str() > p["dateModified"].as_str());
        assert_ne!(
            t["data"]["longDescription"], p["longDescription"],
            "the description settles when it posts"
        );
    }
}

#[tokio::test]
async fn pending_transactions_can_post_under_a_new_id() {
    let sb = sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        pending_replace_ratio: 1.0,
        ..Default::default()
    })
    .await;
    let (user, _) = user_with(&sb, &[MOCK]).await;
    let before = pending(&sb, &user).await;
    assert!(!before.is_empty());
    advance(&sb, json!({"days": 3})).await;
    let all = all_transactions(&sb, &user).await;
    for p in &before {
        assert!(all.iter().all(|t| t["id"] != p["id"]), "the pending one is deleted");
        let twin = all
            .iter()
            .find(|t| {
                t["date"] == p["date"] && t["amount"] == p["amount"] && t["accountId"] == p["accountId"]
            })
            .unwrap_or_else(|| panic!("posted twin of {p}"));
        assert_eq!(twin["status"], "posted");
    }
}

#[tokio::test]
async fn manual_syncs_are_limited_to_one_per_thirty_minutes_and_triodos_to_four_a_day() {
    let sb = sandbox().await;
    let triodos = bank(&sb, "Triodos Bank").await;
    let (user, conns) = user_with(&sb, &[MOCK, &triodos]).await;
    let (s, _, _) = manual_sync(&sb, &user, &conns[0]).await;
    assert_eq!(s, StatusCode::OK);
    advance(&sb, json!({"minutes": 10})).await;
    let (s, body, retry) = manual_sync(&sb, &user, &conns[0]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "TooManyRequests");
    assert_eq!(body["retryAfterSecs"], 20 * 60);
    assert_eq!(retry.as_deref(), Some("1200"));
    advance(&sb, json!({"minutes": 20})).await;
    assert_eq!(manual_sync(&sb, &user, &conns[0]).await.0, StatusCode::OK);
    // Triodos: four a day.
    for _ in 0..4 {
        let (s, body, _) = manual_sync(&sb, &user, &conns[1]).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        advance(&sb, json!({"minutes": 31})).await;
    }
    let (s, body, _) = manual_sync(&sb, &user, &conns[1]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let wait = body["retryAfterSecs"].as_u64().unwrap();
    // The first of the four was 4 × 31 minutes ago (plus the 30 earlier on the other).
    assert!(wait > 20 * 3600 && wait <= 24 * 3600 - 4 * 31 * 60 + 60, "{wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_real_time_the_lifecycle_runs_by_itself() {
    // The default clock follows the wall clock: what `moneyhub sandbox serve` uses.
    let sb = sandbox_with(SandboxConfig::default()).await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let first = all_transactions(&sb, &user).await.len();
    // Background history arrives on its own, shortly after connecting (polled, with a deadline).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut now_count = first;
    while now_count <= first && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, c) = control(&sb, Method::GET, &format!("/connections/{}", conns[0]), None).await;
        now_count = c["transactions"].as_u64().unwrap() as usize;
    }
    assert!(now_count > first * 5, "history arrived without advancing the clock: {first} -> {now_count}");
    // Moving the clock ahead still runs what became due (auto syncs every 4 hours).
    let before = syncs(&sb, &user, &conns[0]).await.len();
    let report = advance(&sb, json!({"hours": 9})).await;
    assert!(report["ran"]["autoSyncs"].as_u64().unwrap() >= 1, "{report}");
    assert!(syncs(&sb, &user, &conns[0]).await.len() > before);
}

#[tokio::test]
async fn consent_expiry_cannot_be_set_where_the_provider_has_none() {
    let sb = sandbox().await;
    let handelsbanken = bank(&sb, "Handelsbanken").await;
    let (user, conns) = user_with(&sb, &[&handelsbanken, AVIVA, MOCK]).await;
    let tok = token(&sb, "connection:update", None).await;
    let at = (t0() + Duration::days(30)).to_rfc3339();
    for (conn, want) in [
        (&conns[0], StatusCode::BAD_REQUEST),
        (&conns[1], StatusCode::BAD_REQUEST),
        (&conns[2], StatusCode::NO_CONTENT),
    ] {
        let res = http()
            .patch(format!("{}/users/{user}/connections/{conn}", sb.base_url()))
            .bearer_auth(&tok)
            .json(&json!({"expiresAt": at}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want, "{conn}");
    }
    assert!(connection(&sb, &user, &conns[0]).await.get("expiresAt").is_none());
    assert_eq!(connection(&sb, &user, &conns[2]).await["expiresAt"], iso(t0() + Duration::days(30)));
}

#[tokio::test]
async fn ids_must_be_canonical_uuids() {
    let sb = sandbox().await;
    let (user, _) = user_with(&sb, &[MOCK]).await;
    let tx = all_transactions(&sb, &user).await[0]["id"].as_str().unwrap().to_string();
    let tok = data_token(&sb, &user).await;
    let (status, _) = get_json(&format!("{}/v3/transactions/{tx}", sb.base_url()), &tok).await;
    assert_eq!(status, StatusCode::OK);
    for variant in [tx.replace('-', ""), format!("{{{tx}}}"), format!("urn:uuid:{tx}")] {
        let (status, body) = get_json(&format!("{}/v3/transactions/{variant}", sb.base_url()), &tok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variant}: {body}");
        let (status, body) =
            get_json(&format!("{}/v3/transactions?ids={variant}", sb.base_url()), &tok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variant}: {body}");
        assert!(body["message"].as_str().unwrap().contains("ids"), "{body}");
    }
}

#[tokio::test]
async fn syncs_started_at_the_same_instant_list_newest_first() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    // The connecting fetch and a manual sync share the frozen instant t0.
    let (status, body, _) = manual_sync(&sb, &user, &conns[0]).await;
    assert_eq!(status, StatusCode::OK);
    let list = syncs(&sb, &user, &conns[0]).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["createdAt"], list[1]["createdAt"]);
    assert_eq!(list[0]["id"], body["data"]["syncId"], "the manual sync is the latest");
    assert_eq!(list[1]["method"], "ADD");
}

#[tokio::test]
async fn renewal_flows_fetch_at_once_and_do_not_count_as_manual_syncs() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let conn = &conns[0];
    // Consent lapses; three days later the data is stale and frozen.
    advance(&sb, json!({"days": 93})).await;
    assert_eq!(connection(&sb, &user, conn).await["extendedStatus"], "expired");
    let renewed = renew(&sb, &user, conn, "reconsent").await;
    assert_eq!(&renewed, conn, "reconsent keeps the id");
    let c = connection(&sb, &user, conn).await;
    assert_eq!((c["status"].as_str(), c.get("extendedStatus")), (Some("ok"), None), "{c}");
    assert_eq!(
        c["lastUpdated"],
        iso(t0() + Duration::days(93)),
        "the exchange fetched under the new consent"
    );
    // That fetch was part of the flow, not a manual sync: POST /sync is still allowed.
    let (status, body, _) = manual_sync(&sb, &user, conn).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Same for reauth.
    advance(&sb, json!({"minutes": 31})).await;
    renew(&sb, &user, conn, "reauth").await;
    let (status, body, _) = manual_sync(&sb, &user, conn).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
