//! Every implemented Data API route's responses, checked against Moneyhub's published
//! swagger (`tests/data/moneyhub-data-api-v2.swagger.json`) with the validator of
//! `swagger.rs`: 200 bodies against each operation's response schema, error bodies against
//! `#/definitions/Error`. The swagger documents `/v2.0`; `/v3` and `/v3.0` answer the same
//! shapes (only defaults differ), so they are checked against the same schemas.
//!
//! Unenriched transactions (`/transactions/unenriched`, `…/{id}`) are checked against the
//! swagger's `TransactionUnenriched` (via the operations' response schemas). The users route
//! (`GET /users`, `GET /users/{id}`) belongs to the identity service, which the swagger does
//! not describe: it is checked against a schema written here from the official client's
//! `User` type (`managedBy`, `lastAccessed` and the rest), see
//! `users_route_matches_the_official_clients_user_type`.
//!
//! Documented deviation: 429 bodies carry `retryAfterSecs` (reference §9 and §12, and the
//! swagger's own 429 schema of `GET /transactions/{id}`), which `Error`
//! (`additionalProperties: false`) does not list. The tests check a 429 body against the
//! swagger's 429 schema, and against `Error` with `retryAfterSecs` taken out, and check
//! `retryAfterSecs` itself (a positive integer equal to `Retry-After`).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;
use crate::swagger::{data_api, Swagger};

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const MODELO: &str = "b74f1a79f0be8bdb857d82d0f041d7d2";
const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";

const VERSIONS: [&str; 3] = ["v2.0", "v3", "v3.0"];

/// A user connected to the mock bank (current, savings, card), Modelo (current, savings,
/// mortgage, loan), Aviva (pension, investment) and Zoopla (property), with the mock bank's
/// background history fetched; returns the user and connection ids.
async fn rich_user(sb: &moneyhub_sandbox::Sandbox) -> (String, Vec<String>) {
    let zoopla = bank(sb, "Zoopla").await;
    let (user, conns) = user_with(sb, &[MOCK, MODELO, AVIVA, &zoopla]).await;
    assert_eq!(conns.len(), 4);
    let ran = advance(sb, json!({"minutes": 3})).await;
    assert!(ran["ran"]["historyFetches"].as_u64().unwrap_or(0) >= 1, "{ran}");
    (user, conns)
}

/// GET with a token: status, body and headers.
async fn get(url: &str, tok: &str) -> (StatusCode, Value) {
    get_json(url, tok).await
}

fn ids(v: &Value) -> Vec<String> {
    v["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn accounts_validate_for_every_version_scope_and_account_type() {
    let sw = data_api();
    let sb = sandbox().await;
    let (user, conns) = rich_user(&sb).await;
    let with_details = data_token(&sb, &user).await;
    let without = token(&sb, "accounts:read transactions:read:all", Some(&user)).await;
    let list_schema = sw.response("get", "/accounts", 200);
    let one_schema = sw.response("get", "/accounts/{accountId}", 200);
    let mut expected_ids: Option<Vec<String>> = None;
    for v in VERSIONS {
        for (tok, details) in [(&with_details, true), (&without, false)] {
            // The version default, then both explicit values.
            for (query, tx_data) in [
                ("", v == "v2.0"),
                ("?showTransactionData=true", true),
                ("?showTransactionData=false", false),
            ] {
                let url = format!("{}/{v}/accounts{query}", sb.base_url());
                let (status, body) = get(&url, tok).await;
                assert_eq!(status, StatusCode::OK, "{url}: {body}");
                sw.assert_valid(&list_schema, &body, &format!("GET {url} (details scope: {details})"));
                assert_eq!(body["links"]["self"], url);
                let accounts = body["data"].as_array().unwrap();
                match &expected_ids {
                    None => expected_ids = Some(ids(&body)),
                    Some(e) => assert_eq!(&ids(&body), e, "same accounts on every version and scope"),
                }
                for a in accounts {
                    let kind = a["type"].as_str().unwrap();
                    assert_eq!(a.get("accountHolderName").is_some(), details, "{v} {kind}: {a}");
                    assert_eq!(a.get("accountReference").is_some(), details, "{v} {kind}: {a}");
                    if kind == "cash:current" || kind == "savings" {
                        assert_eq!(a["details"].get("sortCodeAccountNumber").is_some(), details, "{a}");
                    }
                    if kind == "card" {
                        assert_eq!(a["details"].get("pan").is_some(), details, "{a}");
                    }
                    if !tx_data {
                        assert!(a.get("transactionData").is_none(), "{url}: {a}");
                    }
                    let conn = a["connectionId"].as_str().unwrap();
                    assert!(conns.contains(&conn.to_string()), "{a}");
                    // The provider (bank) id: the connection id's prefix.
                    assert_eq!(a["providerId"].as_str(), conn.split(':').next(), "{a}");
                }
                if tx_data {
                    let current = accounts.iter().find(|a| a["type"] == "cash:current").unwrap();
                    assert!(current["transactionData"]["count"].as_u64().unwrap() > 1000, "{current}");
                }
            }
        }
    }
    let expected_ids = expected_ids.unwrap();
    // Every account type the catalogue's test banks, Aviva and Zoopla give.
    let (_, body) = get(&format!("{}/v2.0/accounts", sb.base_url()), &with_details).await;
    let mut types: Vec<&str> =
        body["data"].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
    types.sort_unstable();
    types.dedup();
    for t in [
        "cash:current",
        "savings",
        "card",
        "mortgage:repayment",
        "loan",
        "pension:definedContribution",
        "investment",
        "properties:residential",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    // transactionData.count agrees with the transactions route.
    let current =
        body["data"].as_array().unwrap().iter().find(|a| a["connectionId"] == conns[0].as_str()).unwrap();
    let (_, count) = get(
        &format!(
            "{}/v3/transactions?accountId={}&onlyCount=true",
            sb.base_url(),
            current["id"].as_str().unwrap()
        ),
        &with_details,
    )
    .await;
    assert_eq!(current["transactionData"]["count"], count["meta"]["count"], "{current}");

    // One by one, on every version and with both scopes.
    for id in &expected_ids {
        for v in VERSIONS {
            for tok in [&with_details, &without] {
                let url = format!("{}/{v}/accounts/{id}", sb.base_url());
                let (status, body) = get(&url, tok).await;
                assert_eq!(status, StatusCode::OK, "{url}: {body}");
                sw.assert_valid(&one_schema, &body, &format!("GET {url}"));
                assert_eq!(body["data"]["id"], id.as_str());
            }
        }
    }

    // Paging and the connection filter keep the shape.
    let url = format!("{}/v3/accounts?limit=2&offset=1&connectionId={}", sb.base_url(), conns[1]);
    let (status, body) = get(&url, &with_details).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sw.assert_valid(&list_schema, &body, &url);
    let modelo: Vec<&Value> = body["data"].as_array().unwrap().iter().collect();
    assert_eq!(modelo.len(), 2, "Modelo has 4 accounts: offset 1, limit 2 → 2");
    assert!(modelo.iter().all(|a| a["connectionId"] == conns[1].as_str()));

    // v2's accounts-list (gone in v3).
    let url = format!("{}/v2.0/accounts-list", sb.base_url());
    let (status, body) = get(&url, &with_details).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sw.assert_valid(&sw.response("get", "/accounts-list", 200), &body, &url);
    assert_eq!(ids(&body), expected_ids);
    let (status, body) = get(&format!("{}/v3/accounts-list", sb.base_url()), &with_details).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    sw.assert_valid(&Swagger::definition("Error"), &body, "v3 accounts-list 404");
}

#[tokio::test]
async fn account_syncs_validate() {
    let sw = data_api();
    let sb = sandbox().await;
    let (user, _) = rich_user(&sb).await;
    let tok = data_token(&sb, &user).await;
    let schema = sw.response("get", "/accounts/syncs", 200);
    let (_, accounts) = get(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    for v in VERSIONS {
        let url = format!("{}/{v}/accounts/syncs", sb.base_url());
        let (status, body) = get(&url, &tok).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sw.assert_valid(&schema, &body, &url);
        let rows = body["data"].as_array().unwrap();
        assert_eq!(rows.len(), accounts["data"].as_array().unwrap().len());
        for r in rows {
            // Every connection fetched successfully at t0.
            assert_eq!(r["lastSuccessfulSync"], "2025-01-15T10:00:00.000Z", "{r}");
        }
    }
}

#[tokio::test]
async fn transactions_validate_full_pages_filters_ids_and_counts() {
    let sw = data_api();
    let sb = sandbox().await;
    let (user, _) = rich_user(&sb).await;
    let tok = data_token(&sb, &user).await;
    let list_schema = sw.response("get", "/transactions", 200);
    let one_schema = sw.response("get", "/transactions/{transactionId}", 200);

    // A full page of 1000, every item validated; then the next page through links.next.
    let url = format!("{}/v3/transactions?limit=1000", sb.base_url());
    let (status, page1) = get(&url, &tok).await;
    assert_eq!(status, StatusCode::OK, "{page1}");
    assert_eq!(page1["data"].as_array().unwrap().len(), 1000);
    sw.assert_valid(&list_schema, &page1, &url);
    let total = page1["meta"]["count"].as_u64().unwrap();
    assert!(total > 1000, "{total}");
    let next = page1["links"]["next"].as_str().expect("a next link on a full page").to_string();
    let (status, page2) = get(&next, &tok).await;
    assert_eq!(status, StatusCode::OK, "{page2}");
    sw.assert_valid(&list_schema, &page2, &next);
    assert!(page2["links"]["prev"].is_string(), "{}", page2["links"]);
    let p1 = ids(&page1);
    assert!(ids(&page2).iter().all(|id| !p1.contains(id)), "pages do not overlap");

    // Every version, with filters.
    let (_, accounts) = get(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    let current = accounts["data"].as_array().unwrap().iter().find(|a| a["type"] == "cash:current").unwrap();
    let acc = current["id"].as_str().unwrap();
    for v in VERSIONS {
        let url = format!(
            "{}/{v}/transactions?accountId={acc}&startDate=2024-10-01&endDate=2024-12-31&creditDebitIndicator=debit&limit=500",
            sb.base_url()
        );
        let (status, body) = get(&url, &tok).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sw.assert_valid(&list_schema, &body, &url);
        let rows = body["data"].as_array().unwrap();
        assert!(!rows.is_empty());
        for t in rows {
            assert_eq!(t["accountId"], acc);
            assert!(t["amount"]["value"].as_i64().unwrap() < 0, "{t}");
            let d = t["date"].as_str().unwrap();
            assert!(("2024-10-01".."2025-01-01").contains(&d), "{d}");
        }
    }

    // By ids, one unknown.
    let missing = "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77";
    let wanted = &p1[..3];
    let url = format!(
        "{}/v3/transactions?ids={}&ids={}&ids={}&ids={missing}",
        sb.base_url(),
        wanted[0],
        wanted[1],
        wanted[2]
    );
    let (status, body) = get(&url, &tok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sw.assert_valid(&list_schema, &body, &url);
    let mut got = ids(&body);
    got.sort();
    let mut want = wanted.to_vec();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(body["meta"]["missingTransactionIds"], json!([missing]));

    // Only the count.
    for v in VERSIONS {
        let url = format!("{}/{v}/transactions?onlyCount=true", sb.base_url());
        let (status, body) = get(&url, &tok).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sw.assert_valid(&list_schema, &body, &url);
        assert_eq!(body["data"], json!([]));
        assert_eq!(body["meta"]["count"].as_u64(), Some(total));
    }

    // One by one: a sample across the whole first page, on every version.
    for (i, id) in p1.iter().enumerate().step_by(97) {
        let v = VERSIONS[i % 3];
        let url = format!("{}/{v}/transactions/{id}", sb.base_url());
        let (status, body) = get(&url, &tok).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sw.assert_valid(&one_schema, &body, &url);
        assert_eq!(&body["data"], &page1["data"][i], "same object as in the list");
    }
}

async fn post_sync(
    sb: &moneyhub_sandbox::Sandbox,
    v: &str,
    tok: &str,
    conn: &str,
    body: Value,
) -> reqwest::Response {
    http()
        .post(format!("{}/{v}/sync/{conn}", sb.base_url()))
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sync_responses_validate_including_the_429() {
    let sw = data_api();
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK, MODELO]).await;
    let tok = data_token(&sb, &user).await;
    let schema = sw.response("post", "/sync/{connectionId}", 200);
    // v2 (synchronous by default) on one connection, v3 (asynchronous) on the other.
    for (v, conn) in [("v2.0", &conns[0]), ("v3", &conns[1])] {
        let res = post_sync(&sb, v, &tok, conn, json!({"customerIpAddress": "203.0.113.9"})).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        sw.assert_valid(&schema, &body, &format!("POST /{v}/sync"));
        assert_eq!(body["data"]["status"], "ok");
        let sync_id = body["data"]["syncId"].as_str().unwrap();
        assert!(syncs(&sb, &user, conn).await.iter().any(|s| s["id"] == sync_id), "the sync is recorded");
    }
    // The 30-minute rule: 429.
    let res = post_sync(&sb, "v3.0", &tok, &conns[0], json!({})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "TooManyRequests");
    assert_eq!(body["message"], "Too Many Requests");
    assert_eq!(body["retryAfterSecs"].as_u64(), Some(retry_after));
    assert_eq!(retry_after, 30 * 60, "nothing moved the frozen clock since the first sync");
    // The swagger's own 429 schema lists retryAfterSecs...
    sw.assert_valid(&sw.response("get", "/transactions/{transactionId}", 429), &body, "429 body");
    // ...Error does not: every other field must still fit Error.
    let e = sw.validate(&Swagger::definition("Error"), &body);
    assert_eq!(e.len(), 1, "only retryAfterSecs falls outside Error: {e:?}");
    assert_eq!(e[0].path, "$.retryAfterSecs");
    let mut rest = body.clone();
    rest.as_object_mut().unwrap().remove("retryAfterSecs");
    sw.assert_valid(&Swagger::definition("Error"), &rest, "429 body without retryAfterSecs");
}

/// Sends `method url` with an optional token and body; returns status and JSON body.
async fn call(method: Method, url: &str, tok: Option<&str>, body: Option<&str>) -> (StatusCode, Value) {
    let mut req = http().request(method, url);
    if let Some(t) = tok {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let v =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: {status} body is not JSON: {text:?}"));
    (status, v)
}

#[tokio::test]
async fn error_bodies_validate_against_the_error_definition() {
    let sw = data_api();
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let (other, _) = user_with(&sb, &[MOCK]).await;
    let tok = data_token(&sb, &user).await;
    let other_tok = data_token(&sb, &other).await;
    let weak = token(&sb, "transactions:read:all", Some(&user)).await;
    let unbound = token(&sb, "accounts:read transactions:read:all", None).await;
    let (_, accounts) = get(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    let acc = accounts["data"][0]["id"].as_str().unwrap().to_string();
    let b = sb.base_url();
    let unknown = "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77";
    // (method, URL, token, body, expected status)
    type Case<'a> = (Method, String, Option<&'a str>, Option<&'a str>, StatusCode);
    let cases: Vec<Case> = vec![
        (Method::GET, format!("{b}/v3/transactions?limit=abc"), Some(&tok), None, StatusCode::BAD_REQUEST),
        (Method::GET, format!("{b}/v2.0/transactions?ids=nope"), Some(&tok), None, StatusCode::BAD_REQUEST),
        (
            Method::GET,
            format!("{b}/v2.0/accounts?showTransactionData=yes"),
            Some(&tok),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, format!("{b}/v3/accounts/not-a-uuid"), Some(&tok), None, StatusCode::BAD_REQUEST),
        (
            Method::POST,
            format!("{b}/v3/sync/{}", conns[0]),
            Some(&tok),
            Some("{\"x\":1}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("{b}/v3/sync/{}", conns[0]),
            Some(&tok),
            Some("not json"),
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, format!("{b}/v3/accounts"), None, None, StatusCode::UNAUTHORIZED),
        (Method::GET, format!("{b}/v2.0/transactions"), Some("garbage"), None, StatusCode::UNAUTHORIZED),
        (Method::POST, format!("{b}/v3/sync/{}", conns[0]), None, Some("{}"), StatusCode::UNAUTHORIZED),
        (Method::GET, format!("{b}/v3/accounts"), Some(&weak), None, StatusCode::FORBIDDEN),
        (Method::GET, format!("{b}/v3/accounts/syncs"), Some(&weak), None, StatusCode::FORBIDDEN),
        (Method::GET, format!("{b}/v3/transactions"), Some(&unbound), None, StatusCode::FORBIDDEN),
        (Method::POST, format!("{b}/v3/sync/{}", conns[0]), Some(&weak), Some("{}"), StatusCode::FORBIDDEN),
        (Method::GET, format!("{b}/v3/accounts/{acc}"), Some(&other_tok), None, StatusCode::NOT_FOUND),
        (Method::GET, format!("{b}/v3/accounts/{unknown}"), Some(&tok), None, StatusCode::NOT_FOUND),
        (Method::GET, format!("{b}/v3/transactions/{unknown}"), Some(&tok), None, StatusCode::NOT_FOUND),
        (
            Method::POST,
            format!("{b}/v3/sync/{}", conns[0]),
            Some(&other_tok),
            Some("{}"),
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, format!("{b}/v3/no-such-route"), Some(&tok), None, StatusCode::NOT_FOUND),
    ];
    let error = Swagger::definition("Error");
    for (method, url, t, body, want) in cases {
        let (status, v) = call(method.clone(), &url, t, body).await;
        assert_eq!(status, want, "{method} {url}: {v}");
        sw.assert_valid(&error, &v, &format!("{method} {url} ({status})"));
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {url}: {v}");
        assert!(v["correlationId"].is_string(), "{v}");
    }
}

#[tokio::test]
async fn unenriched_transactions_validate() {
    let sw = data_api();
    let sb = sandbox().await;
    let (user, _) = rich_user(&sb).await;
    let tok = token(&sb, "transactions_unenriched:read:all", Some(&user)).await;
    let list_schema = sw.response("get", "/transactions/unenriched", 200);
    let one_schema = sw.response("get", "/transactions/unenriched/{transactionId}", 200);
    let mut first = Value::Null;
    for v in VERSIONS {
        let url = format!("{}/{v}/transactions/unenriched?limit=1000", sb.base_url());
        let (status, page) = get(&url, &tok).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["data"].as_array().unwrap().len(), 1000);
        sw.assert_valid(&list_schema, &page, &url);
        let next = page["links"]["next"].as_str().expect("a next link").to_string();
        let (_, page2) = get(&next, &tok).await;
        sw.assert_valid(&list_schema, &page2, &next);
        first = page;
    }
    let p1 = ids(&first);
    let missing = "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77";
    let url = format!("{}/v3/transactions/unenriched?ids={}&ids={missing}", sb.base_url(), p1[0]);
    let (status, body) = get(&url, &tok).await;
    assert_eq!(status, StatusCode::OK);
    sw.assert_valid(&list_schema, &body, &url);
    let url =
        format!("{}/v3/transactions/unenriched?onlyCount=true&creditDebitIndicator=credit", sb.base_url());
    let (_, body) = get(&url, &tok).await;
    sw.assert_valid(&list_schema, &body, &url);
    for (i, id) in p1.iter().enumerate().step_by(97) {
        let url = format!("{}/{}/transactions/unenriched/{id}", sb.base_url(), VERSIONS[i % 3]);
        let (status, body) = get(&url, &tok).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sw.assert_valid(&one_schema, &body, &url);
        assert_eq!(&body["data"], &first["data"][i]);
    }
    // Errors have Moneyhub's error shape.
    let error = Swagger::definition("Error");
    let url = format!("{}/v3/transactions/unenriched/{missing}", sb.base_url());
    let (status, body) = get(&url, &tok).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    sw.assert_valid(&error, &body, &url);
}

/// The official client's `User` type (`src/schema/user.ts`) as a JSON schema: the swagger
/// does not describe the identity service's users.
fn user_schema() -> Value {
    let date = json!({"type": "string", "format": "date-time"});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["userId", "clientId", "createdAt", "updatedAt", "scopes", "managedBy", "userType", "connectionIds"],
        "properties": {
            "userId": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
            "clientUserId": {"type": "string"},
            "clientId": {"type": "string"},
            "createdAt": date,
            "updatedAt": date,
            "lastAccessed": date,
            "deletedAt": date,
            "scopes": {"type": "string"},
            "managedBy": {"type": "string", "enum": ["client", "user"]},
            "userType": {"type": "string", "enum": ["test", "demo", "live"]},
            "clientName": {"type": "string"},
            "connectionIds": {"type": "array", "items": {"type": "string"}}
        }
    })
}

#[tokio::test]
async fn users_route_matches_the_official_clients_user_type() {
    let sw = data_api();
    let sb = sandbox().await;
    let (managed, _) = user_with(&sb, &[MOCK]).await;
    // A one-time access user, and a read of the client-managed user's data.
    let claims = json!({"id_token": {"sub": {"essential": true}, "mh:con_id": {"essential": true}}});
    let code = authorize_code(&sb, &format!("openid id:{MOCK} transactions:read:all"), &claims).await;
    let (status, _) = exchange(&sb, &code, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let dt = data_token(&sb, &managed).await;
    let (status, _) = get(&format!("{}/v3/accounts", sb.base_url()), &dt).await;
    assert_eq!(status, StatusCode::OK);
    let tok = token(&sb, "user:read", None).await;
    let url = format!("{}/users", sb.base_url());
    let (status, body) = get(&url, &tok).await;
    assert_eq!(status, StatusCode::OK);
    let users = body["data"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    let schema = user_schema();
    for u in users {
        sw.assert_valid(&schema, u, &url);
        let url = format!("{}/users/{}", sb.base_url(), u["userId"].as_str().unwrap());
        let (_, one) = get(&url, &tok).await;
        sw.assert_valid(&schema, &one, &url);
    }
    let by_kind = |kind: &str| users.iter().find(|u| u["managedBy"] == kind).cloned().unwrap();
    assert!(by_kind("client")["lastAccessed"].is_string(), "read, so lastAccessed is set");
    assert!(by_kind("user").get("lastAccessed").is_none(), "never read");
}
