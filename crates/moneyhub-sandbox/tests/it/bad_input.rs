//! Hostile and sloppy input on every route: missing, garbage, expired, under-scoped and
//! other-user tokens; broken bodies; bad query values; unknown ids; the PATCH bounds; and
//! the quirks of the official client that must keep working. Every error must be JSON with
//! a string `code` (REST and Data API) or `error` (OAuth endpoints), never a 5xx.

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const MODELO: &str = "b74f1a79f0be8bdb857d82d0f041d7d2";
const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";
const UNKNOWN_UUID: &str = "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77";
const DATA_VERSIONS: [&str; 2] = ["v2.0", "v3"];

/// Every scope any of these routes asks for, and a few more.
const ALL_SCOPES: &[&str] = &[
    "user:create",
    "user:read",
    "user:update",
    "user:delete",
    "connection:read",
    "connection:update",
    "connection:delete",
    "accounts:read",
    "accounts:write",
    "accounts:write:all",
    "accounts_details:read",
    "transactions:read:all",
    "transactions:read:in",
    "transactions:read:out",
    "transactions:write:all",
    "auth_requests:read",
];
const MANAGEMENT: &str =
    "user:create user:read user:update user:delete connection:read connection:update connection:delete";

/// A response, read whole.
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.text).ok()
    }

    /// Asserts `status` and a REST/Data API error body (`code` and `message` strings);
    /// returns the body.
    #[track_caller]
    fn api_error(&self, status: StatusCode, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        self.is_api_error(what)
    }

    #[track_caller]
    fn is_api_error(&self, what: &str) -> Value {
        let ct = self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(ct.starts_with("application/json"), "{what}: content-type {ct:?}, body {:?}", self.text);
        let v = self
            .json()
            .unwrap_or_else(|| panic!("{what}: {} body is not JSON: {:?}", self.status, self.text));
        assert!(v["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: no string code in {v}");
        assert!(v["message"].is_string(), "{what}: no string message in {v}");
        v
    }

    /// Asserts `status` and an OAuth error body (`error` string); returns the body.
    #[track_caller]
    fn oauth_error(&self, status: StatusCode, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        let v = self.json().unwrap_or_else(|| panic!("{what}: body is not JSON: {:?}", self.text));
        assert!(v["error"].as_str().is_some_and(|c| !c.is_empty()), "{what}: no string error in {v}");
        v
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// A raw `Authorization` header.
    Raw(&'a str),
}

/// Sends a request with a raw string body (`Content-Type: application/json` unless `ct`).
/// A body one byte over the sandbox's 2 MiB limit. Only one byte over, so that the server has
/// read all of it when it answers: with more, it answers and closes while the client is still
/// writing, and the client may see a broken pipe instead of the answer (a race, not the
/// behaviour under test).
fn over_the_body_limit(prefix: &str, suffix: &str) -> String {
    let size = (2 << 20) + 1;
    format!("{prefix}{}{suffix}", "x".repeat(size - prefix.len() - suffix.len()))
}

async fn send(
    sb: &moneyhub_sandbox::Sandbox,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<&str>,
) -> Resp {
    send_with(sb, method, path, auth, body.map(|b| b.as_bytes().to_vec()), "application/json").await
}

async fn send_with(
    sb: &moneyhub_sandbox::Sandbox,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Vec<u8>>,
    ct: &str,
) -> Resp {
    let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", sb.base_url()) };
    let mut req = http().request(method.clone(), &url);
    match auth {
        Auth::None => {}
        Auth::Bearer(t) => req = req.bearer_auth(t),
        Auth::Raw(h) => req = req.header("authorization", h),
    }
    if let Some(b) = body {
        req = req.header(CONTENT_TYPE, ct).body(b);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: no response: {e}"));
    let status = res.status();
    assert!(status.as_u16() < 500, "{method} {url}: {status}");
    let headers = res.headers().clone();
    Resp { status, headers, text: res.text().await.unwrap() }
}

/// The world the tests poke at: a user with three connections and data, and another user.
struct World {
    sb: moneyhub_sandbox::Sandbox,
    user: String,
    conns: Vec<String>,
    other: String,
    other_conns: Vec<String>,
    account: String,
    other_account: String,
    tx: String,
    other_tx: String,
    sync: String,
    other_sync: String,
}

async fn first_account_and_tx(sb: &moneyhub_sandbox::Sandbox, user: &str) -> (String, String) {
    let tok = data_token(sb, user).await;
    let (_, a) = get_json(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    let (_, t) = get_json(&format!("{}/v3/transactions?limit=1", sb.base_url()), &tok).await;
    (a["data"][0]["id"].as_str().unwrap().to_string(), t["data"][0]["id"].as_str().unwrap().to_string())
}

async fn world() -> World {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK, MODELO, AVIVA]).await;
    let (other, other_conns) = user_with(&sb, &[MOCK]).await;
    let (account, tx) = first_account_and_tx(&sb, &user).await;
    let (other_account, other_tx) = first_account_and_tx(&sb, &other).await;
    let sync = syncs(&sb, &user, &conns[0]).await[0]["id"].as_str().unwrap().to_string();
    let other_sync = syncs(&sb, &other, &other_conns[0]).await[0]["id"].as_str().unwrap().to_string();
    World { sb, user, conns, other, other_conns, account, other_account, tx, other_tx, sync, other_sync }
}

/// A route, the scopes it needs (each group: one of), and whether it is a Data API route
/// (token bound to a user).
struct Route {
    method: Method,
    path: String,
    body: Option<String>,
    needs: Vec<Vec<&'static str>>,
    data: bool,
}

fn route(method: Method, path: String, body: Option<Value>, needs: &[&[&'static str]], data: bool) -> Route {
    Route {
        method,
        path,
        body: body.map(|b| b.to_string()),
        needs: needs.iter().map(|g| g.to_vec()).collect(),
        data,
    }
}

const READ: &[&str] = &["connection:read", "user:read"];

/// Every route but the catalogues, for `w.user`.
fn routes(w: &World) -> Vec<Route> {
    let (u, c, s) = (&w.user, &w.conns[0], &w.sync);
    let later = (w.sb.now() + chrono::Duration::days(30)).to_rfc3339();
    let mut r = vec![
        route(Method::POST, "/users".into(), Some(json!({"clientUserId": "x"})), &[&["user:create"]], false),
        route(Method::GET, "/users".into(), None, &[&["user:read"]], false),
        route(Method::GET, format!("/users/{u}"), None, &[&["user:read"]], false),
        route(Method::DELETE, format!("/users/{u}"), None, &[&["user:delete"]], false),
        route(Method::GET, format!("/users/{u}/connections"), None, &[READ], false),
        route(Method::GET, format!("/users/{u}/connections/{c}"), None, &[READ], false),
        route(
            Method::DELETE,
            format!("/users/{u}/connection/{c}"),
            None,
            &[&["connection:delete", "user:delete"]],
            false,
        ),
        route(
            Method::DELETE,
            format!("/users/{u}/connections/{c}"),
            None,
            &[&["connection:delete", "user:delete"]],
            false,
        ),
        route(
            Method::PATCH,
            format!("/users/{u}/connections/{c}"),
            Some(json!({"expiresAt": later})),
            &[&["connection:update", "user:update"]],
            false,
        ),
        route(Method::GET, format!("/users/{u}/connections/{c}/syncs"), None, &[READ], false),
        route(Method::GET, format!("/users/{u}/syncs"), None, &[READ], false),
        route(Method::GET, format!("/users/{u}/syncs/{s}"), None, &[READ], false),
        route(Method::GET, "/v2.0/accounts-list".into(), None, &[&["accounts:read"]], true),
    ];
    let tx_read: &[&str] = &["transactions:read:all", "transactions:read:in", "transactions:read:out"];
    for v in DATA_VERSIONS {
        r.push(route(
            Method::POST,
            format!("/{v}/sync/{c}"),
            Some(json!({})),
            &[&["accounts:read"], &["accounts:write", "accounts:write:all"]],
            true,
        ));
        r.push(route(Method::GET, format!("/{v}/accounts"), None, &[&["accounts:read"]], true));
        r.push(route(Method::GET, format!("/{v}/accounts/{}", w.account), None, &[&["accounts:read"]], true));
        r.push(route(Method::GET, format!("/{v}/accounts/syncs"), None, &[&["accounts:read"]], true));
        r.push(route(Method::GET, format!("/{v}/transactions"), None, &[tx_read], true));
        r.push(route(Method::GET, format!("/{v}/transactions/{}", w.tx), None, &[tx_read], true));
    }
    r
}

async fn call(w: &World, r: &Route, auth: Auth<'_>) -> Resp {
    send(&w.sb, r.method.clone(), &r.path, auth, r.body.as_deref()).await
}

/// The user still has everything (a refused request changed nothing).
async fn assert_untouched(w: &World) {
    let tok = token(&w.sb, "user:read", None).await;
    let (status, u) = get_json(&format!("{}/users/{}", w.sb.base_url(), w.user), &tok).await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["connectionIds"], json!(w.conns), "{u}");
    for c in &w.conns {
        let conn = connection(&w.sb, &w.user, c).await;
        if let Some(e) = conn.get("expiresAt") {
            assert_eq!(e, &json!("2025-04-15T10:00:00.000Z"), "expiry untouched: {conn}");
        }
    }
    assert_eq!(syncs(&w.sb, &w.user, &w.conns[0]).await.len(), 1, "no sync ran");
}

#[tokio::test]
async fn every_route_without_a_valid_token_is_401() {
    let w = world().await;
    // A token that expires: issued now, read after the clock moved past its 7200 s.
    let expiring = token(&w.sb, &ALL_SCOPES.join(" "), Some(&w.user)).await;
    let expiring_mgmt = token(&w.sb, MANAGEMENT, None).await;
    advance(&w.sb, json!({"seconds": 7201})).await;
    let forged = {
        // A well-formed JWT signed with another key.
        let h = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let p = "eyJqdGkiOiJ4IiwiY2lkIjoieCIsInNjb3BlIjoidXNlcjpyZWFkIiwiaWF0IjowLCJleHAiOjk5OTk5OTk5OTl9";
        format!("{h}.{p}.c2lnbmF0dXJl")
    };
    for r in routes(&w) {
        let what = format!("{} {}", r.method, r.path);
        let expired = if r.data { &expiring } else { &expiring_mgmt };
        for auth in [
            Auth::None,
            Auth::Bearer("garbage"),
            Auth::Bearer(""),
            Auth::Bearer(&forged),
            Auth::Bearer(expired),
            Auth::Raw("Basic dXNlcjpwYXNz"),
            Auth::Raw("Bearer"),
            Auth::Raw("garbage"),
        ] {
            let res = call(&w, &r, auth).await;
            let body = res.api_error(StatusCode::UNAUTHORIZED, &what);
            assert_eq!(body["code"], "Unauthorized", "{what}: {body}");
        }
    }
    // Nothing happened to the user (the clock moved, so compare what cannot change).
    let tok = token(&w.sb, "user:read", None).await;
    let (status, u) = get_json(&format!("{}/users/{}", w.sb.base_url(), w.user), &tok).await;
    assert_eq!((status, &u["connectionIds"]), (StatusCode::OK, &json!(w.conns)), "{u}");
}

#[tokio::test]
async fn every_route_refuses_a_token_without_its_scope() {
    let w = world().await;
    for r in routes(&w) {
        for (i, group) in r.needs.iter().enumerate() {
            // Every scope there is, except the ones that would satisfy this group.
            let scopes: Vec<&str> = ALL_SCOPES.iter().copied().filter(|s| !group.contains(s)).collect();
            let tok = token(&w.sb, &scopes.join(" "), r.data.then_some(w.user.as_str())).await;
            let what = format!("{} {} without {group:?}", r.method, r.path);
            let body = call(&w, &r, Auth::Bearer(&tok)).await.api_error(StatusCode::FORBIDDEN, &what);
            assert_eq!(body["code"], "Forbidden", "{what}: {body}");
            if i == 0 {
                // And a token with only unrelated scopes.
                let tok = token(&w.sb, "auth_requests:read", r.data.then_some(w.user.as_str())).await;
                call(&w, &r, Auth::Bearer(&tok)).await.api_error(StatusCode::FORBIDDEN, &what);
            }
        }
        if r.data {
            // The right scopes but no user: a Data API token must be bound to one.
            let tok = token(&w.sb, &ALL_SCOPES.join(" "), None).await;
            let what = format!("{} {} with an unbound token", r.method, r.path);
            call(&w, &r, Auth::Bearer(&tok)).await.api_error(StatusCode::FORBIDDEN, &what);
        }
    }
    assert_untouched(&w).await;
}

#[tokio::test]
async fn a_token_bound_to_another_user_reaches_none_of_this_users_data() {
    let w = world().await;
    let b = w.sb.base_url().to_string();
    // Management routes: a token bound to the other user is refused on this user's paths.
    let other_mgmt = token(&w.sb, MANAGEMENT, Some(&w.other)).await;
    for r in routes(&w).into_iter().filter(|r| !r.data && r.path.starts_with(&format!("/users/{}", w.user))) {
        let what = format!("{} {} (token of another user)", r.method, r.path);
        call(&w, &r, Auth::Bearer(&other_mgmt)).await.api_error(StatusCode::FORBIDDEN, &what);
    }
    // The other user was created second: a page of one must still show them, and the total
    // count only them.
    for q in ["", "?limit=1", "?limit=1&offset=0"] {
        let res = send(&w.sb, Method::GET, &format!("/users{q}"), Auth::Bearer(&other_mgmt), None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let body = res.json().unwrap();
        let listed: Vec<Value> =
            body["data"].as_array().unwrap().iter().map(|u| u["userId"].clone()).collect();
        assert_eq!(listed, vec![json!(w.other)], "/users{q}: a user-bound token lists only its user");
        assert_eq!(body["meta"]["total"], 1, "/users{q}: {body}");
    }
    let res = send(&w.sb, Method::GET, "/users?offset=1", Auth::Bearer(&other_mgmt), None).await;
    assert_eq!(res.json().unwrap()["data"], json!([]), "{}", res.text);

    // Data API: by id → 404 (never the data), lists → only the token's user.
    let other = data_token(&w.sb, &w.other).await;
    let (_, accounts) = get_json(&format!("{b}/v3/accounts"), &data_token(&w.sb, &w.user).await).await;
    let mine: Vec<String> =
        accounts["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(mine.len(), 9, "mock 3 + Modelo 4 + Aviva 2 accounts");
    for v in DATA_VERSIONS {
        for path in [format!("/{v}/accounts/{}", w.account), format!("/{v}/transactions/{}", w.tx)] {
            let body = send(&w.sb, Method::GET, &path, Auth::Bearer(&other), None).await;
            let e = body.api_error(StatusCode::NOT_FOUND, &path);
            assert!(!body.text.contains(&w.user), "{e}");
        }
        let path = format!("/{v}/sync/{}", w.conns[0]);
        send(&w.sb, Method::POST, &path, Auth::Bearer(&other), Some("{}"))
            .await
            .api_error(StatusCode::NOT_FOUND, &path);
        let all = [
            format!("{b}/{v}/accounts"),
            format!("{b}/{v}/accounts/syncs"),
            format!("{b}/{v}/accounts?connectionId={}", w.conns[0]),
            format!("{b}/{v}/transactions"),
            format!("{b}/{v}/transactions?accountId={}", w.account),
        ];
        for url in all {
            let (status, body) = get_json(&url, &other).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            let text = body["data"].to_string();
            assert!(!text.contains(&w.account) && !text.contains(&w.tx), "{url} leaks the other user's data");
            let rows = body["data"].as_array().unwrap();
            // Filtering on this user's connection or account finds nothing; the rest is the
            // other user's own data.
            let filtered = url.contains(&w.conns[0]) || url.contains(&w.account);
            assert_eq!(rows.is_empty(), filtered, "{url}: {body}");
            for item in rows {
                // Accounts carry `id` (and `connectionId`), transactions and syncs `accountId`.
                let acc = item.get("accountId").or(item.get("id")).and_then(Value::as_str).unwrap();
                assert!(!mine.contains(&acc.to_string()), "{url}: {item}");
            }
        }
        // By ids: this user's transaction is "missing" for the other user.
        let url = format!("{b}/{v}/transactions?ids={}&ids={}", w.tx, w.other_tx);
        let (status, body) = get_json(&url, &other).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["data"][0]["id"], w.other_tx.as_str());
        assert_eq!(body["meta"]["missingTransactionIds"], json!([w.tx]));
    }
    // The other user's own data is still theirs (the 404s are about ownership).
    let path = format!("/v3/accounts/{}", w.other_account);
    assert_eq!(send(&w.sb, Method::GET, &path, Auth::Bearer(&other), None).await.status, StatusCode::OK);
    assert_untouched(&w).await;
}

#[tokio::test]
async fn broken_bodies_are_400_and_huge_ones_413_or_400() {
    let w = world().await;
    let mgmt = token(&w.sb, MANAGEMENT, None).await;
    let data = data_token(&w.sb, &w.user).await;
    let (u, c) = (&w.user, &w.conns[0]);
    let ok_expiry = (w.sb.now() + chrono::Duration::days(30)).to_rfc3339();
    let not_json = ["not json", "{", "{\"a\":}", "\u{feff}{}", "{}{}"];
    let post_sync_bad = [
        json!([]),
        json!(null),
        json!("text"),
        json!(1),
        json!({"enableAsync": "yes"}),
        json!({"enableAsync": 1}),
        json!({"customerIpAddress": 5}),
        json!({"customerIpAddress": "not-an-ip"}),
        json!({"customerLastLoggedTime": "yesterday"}),
        json!({"customerLastLoggedTime": "2025-01-15T10:00:00"}),
        json!({"unknownField": true}),
        json!({"enableAsync": false, "connectionId": c}),
    ];
    for v in DATA_VERSIONS {
        let path = format!("/{v}/sync/{c}");
        for body in not_json.iter().map(|s| s.to_string()).chain(post_sync_bad.iter().map(Value::to_string)) {
            let res = send(&w.sb, Method::POST, &path, Auth::Bearer(&data), Some(&body)).await;
            let e = res.api_error(StatusCode::BAD_REQUEST, &format!("POST {path} {body}"));
            assert_eq!(e["code"], "BadRequest");
        }
    }
    let patch = format!("/users/{u}/connections/{c}");
    let patch_bad = [
        "".to_string(),
        "   ".to_string(),
        json!({}).to_string(),
        json!({"expiresAt": 5}).to_string(),
        json!({"expiresAt": null}).to_string(),
        json!({"expiresAt": [ok_expiry]}).to_string(),
        json!({"expiresAt": "next week"}).to_string(),
        json!({"expiresAt": ok_expiry, "status": "ok"}).to_string(),
        json!({"expiresAt": ok_expiry, "tppConsent": true}).to_string(),
        json!([{"expiresAt": ok_expiry}]).to_string(),
    ];
    for body in not_json.iter().map(|s| s.to_string()).chain(patch_bad) {
        let res = send(&w.sb, Method::PATCH, &patch, Auth::Bearer(&mgmt), Some(&body)).await;
        res.api_error(StatusCode::BAD_REQUEST, &format!("PATCH {body:?}"));
    }
    let users_bad = [
        json!({"clientUserId": 5}).to_string(),
        json!({"clientUserId": ""}).to_string(),
        json!({"clientUserId": "x".repeat(257)}).to_string(),
        json!({"clientUserId": "x", "userType": "live"}).to_string(),
        json!([]).to_string(),
        "null".to_string(),
    ];
    for body in not_json.iter().map(|s| s.to_string()).chain(users_bad) {
        let res = send(&w.sb, Method::POST, "/users", Auth::Bearer(&mgmt), Some(&body)).await;
        res.api_error(StatusCode::BAD_REQUEST, &format!("POST /users {body:?}"));
    }
    // Invalid UTF-8 inside a JSON string.
    let res = send_with(
        &w.sb,
        Method::POST,
        &format!("/v3/sync/{c}"),
        Auth::Bearer(&data),
        Some(b"{\"customerIpAddress\":\"\xff\xfe\"}".to_vec()),
        "application/json",
    )
    .await;
    res.api_error(StatusCode::BAD_REQUEST, "invalid UTF-8");

    // Over the 2 MiB body limit: refused with 413 (or 400), as JSON, whatever the route.
    let huge = over_the_body_limit("{\"clientUserId\":\"", "\"}");
    for (method, path, tok) in [
        (Method::POST, "/users".to_string(), &mgmt),
        (Method::POST, format!("/v3/sync/{c}"), &data),
        (Method::POST, format!("/v2.0/sync/{c}"), &data),
        (Method::PATCH, patch.clone(), &mgmt),
    ] {
        let res = send(&w.sb, method.clone(), &path, Auth::Bearer(tok), Some(&huge)).await;
        assert!(
            matches!(res.status, StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST),
            "{method} {path}: {}",
            res.status
        );
        res.is_api_error(&format!("huge {method} {path}"));
    }
    // A body on a GET is ignored, not an error.
    let res = send(&w.sb, Method::GET, "/v3/accounts", Auth::Bearer(&data), Some("garbage")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_untouched(&w).await;
    // Nothing was created by the refused POST /users either.
    let res = send(&w.sb, Method::GET, "/users", Auth::Bearer(&mgmt), None).await;
    assert_eq!(res.json().unwrap()["data"].as_array().unwrap().len(), 2, "{}", res.text);
}

#[tokio::test]
async fn bad_query_values_are_400_naming_the_parameter() {
    let w = world().await;
    let mgmt = token(&w.sb, MANAGEMENT, None).await;
    let data = data_token(&w.sb, &w.user).await;
    let fifty_one: Vec<String> = (0..51).map(|i| format!("ids={}", uuid_n(i))).collect();
    let fifty_one = fifty_one.join("&");
    let mut cases: Vec<(String, &str, &str)> = Vec::new();
    for v in DATA_VERSIONS {
        let t = format!("/{v}/transactions");
        for (q, name) in [
            ("limit=-1", "limit"),
            ("limit=1001", "limit"),
            ("limit=abc", "limit"),
            ("limit=", "limit"),
            ("limit=1.5", "limit"),
            ("limit=99999999999999999999999", "limit"),
            ("offset=-5", "offset"),
            ("offset=x", "offset"),
            ("offset=1000000001", "offset"),
            ("startDate=2025-13-01", "startDate"),
            ("startDate=2025-02-30", "startDate"),
            ("endDate=15/01/2025", "endDate"),
            ("startDateModified=yesterday", "startDateModified"),
            ("endDateModified=2025-01-15T00:00:00Z", "endDateModified"),
            ("creditDebitIndicator=both", "creditDebitIndicator"),
            ("onlyCount=maybe", "onlyCount"),
            ("onlyCount=1", "onlyCount"),
            ("hasProject=perhaps", "hasProject"),
            ("ids=not-a-uuid", "not-a-uuid"),
            ("ids=0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77&ids=nope-123", "nope-123"),
            // A bad paging value next to ids is still a bad query.
            ("ids=0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77&limit=abc", "limit"),
            ("ids=0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77&onlyCount=maybe", "onlyCount"),
        ] {
            cases.push((format!("{t}?{q}"), name, "data"));
        }
        cases.push((format!("{t}?{fifty_one}"), "50", "data"));
        for (q, name) in [
            ("showTransactionData=yes", "showTransactionData"),
            ("showPerformanceScore=1", "showPerformanceScore"),
            ("limit=-1", "limit"),
            ("limit=1001", "limit"),
            ("offset=-1", "offset"),
        ] {
            cases.push((format!("/{v}/accounts?{q}"), name, "data"));
        }
        cases.push((
            format!("/{v}/accounts/{}?showTransactionData=yes", w.account),
            "showTransactionData",
            "data",
        ));
    }
    cases.push(("/v2.0/accounts-list?limit=abc".into(), "limit", "data"));
    for (q, name) in
        [("limit=-1", "limit"), ("limit=abc", "limit"), ("offset=-5", "offset"), ("isDemo=maybe", "isDemo")]
    {
        cases.push((format!("/users?{q}"), name, "mgmt"));
    }
    for base in
        [format!("/users/{}/syncs", w.user), format!("/users/{}/connections/{}/syncs", w.user, w.conns[0])]
    {
        for (q, name) in [("limit=-1", "limit"), ("limit=1001", "limit"), ("offset=x", "offset")] {
            cases.push((format!("{base}?{q}"), name, "mgmt"));
        }
    }
    for (path, name, kind) in cases {
        let tok = if kind == "data" { &data } else { &mgmt };
        let res = send(&w.sb, Method::GET, &path, Auth::Bearer(tok), None).await;
        let e = res.api_error(StatusCode::BAD_REQUEST, &path);
        assert!(e["message"].as_str().unwrap().contains(name), "{path}: message should name {name:?}: {e}");
    }
    // The edges are fine: 50 ids, limit 0 and 1000, offset 0.
    let fifty: Vec<String> = (0..50).map(|i| format!("ids={}", uuid_n(i))).collect();
    let url = format!("{}/v3/transactions?{}", w.sb.base_url(), fifty.join("&"));
    let (status, body) = get_json(&url, &data).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["missingTransactionIds"].as_array().unwrap().len(), 50);
    for q in ["limit=0", "limit=1000", "offset=0", "limit=0&offset=1000000000"] {
        let (status, body) = get_json(&format!("{}/v3/transactions?{q}", w.sb.base_url()), &data).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
    }
    let (_, body) = get_json(&format!("{}/v3/transactions?limit=0", w.sb.base_url()), &data).await;
    assert_eq!(body["data"], json!([]));
}

/// A distinct valid UUID per `i`.
fn uuid_n(i: u32) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

#[tokio::test]
async fn unknown_ids_are_404_and_malformed_ones_400() {
    let w = world().await;
    let mgmt = token(&w.sb, MANAGEMENT, None).await;
    let data = data_token(&w.sb, &w.user).await;
    let (u, c) = (&w.user, &w.conns[0]);
    let ghost_user = "5c79210bbac25ecb5e71ac40";
    let ghost_conn = format!("{MOCK}:{UNKNOWN_UUID}");
    let later = json!({"expiresAt": (w.sb.now() + chrono::Duration::days(30)).to_rfc3339()}).to_string();
    let not_found: Vec<(Method, String, Option<&str>, &str)> = vec![
        (Method::GET, format!("/users/{ghost_user}"), None, "mgmt"),
        (Method::GET, "/users/not-even-an-id".into(), None, "mgmt"),
        (Method::DELETE, format!("/users/{ghost_user}"), None, "mgmt"),
        (Method::GET, format!("/users/{ghost_user}/connections"), None, "mgmt"),
        (Method::GET, format!("/users/{ghost_user}/connections/{c}"), None, "mgmt"),
        (Method::GET, format!("/users/{ghost_user}/syncs"), None, "mgmt"),
        (Method::GET, format!("/users/{ghost_user}/syncs/{}", w.sync), None, "mgmt"),
        (Method::GET, format!("/users/{u}/connections/{ghost_conn}"), None, "mgmt"),
        (Method::GET, format!("/users/{u}/connections/nonsense"), None, "mgmt"),
        (Method::DELETE, format!("/users/{u}/connection/{ghost_conn}"), None, "mgmt"),
        (Method::DELETE, format!("/users/{u}/connections/{ghost_conn}"), None, "mgmt"),
        (Method::PATCH, format!("/users/{u}/connections/{ghost_conn}"), Some(&later), "mgmt"),
        (Method::PATCH, format!("/users/{ghost_user}/connections/{c}"), Some(&later), "mgmt"),
        (Method::GET, format!("/users/{u}/connections/{ghost_conn}/syncs"), None, "mgmt"),
        (Method::GET, format!("/users/{u}/syncs/{UNKNOWN_UUID}"), None, "mgmt"),
        // Another user's connection and sync, through this user's path.
        (Method::GET, format!("/users/{u}/connections/{}", w.other_conns[0]), None, "mgmt"),
        (Method::DELETE, format!("/users/{u}/connection/{}", w.other_conns[0]), None, "mgmt"),
        (Method::GET, format!("/users/{u}/syncs/{}", w.other_sync), None, "mgmt"),
        (Method::GET, format!("/users/{u}/connections/{}/syncs", w.other_conns[0]), None, "mgmt"),
        (Method::GET, "/oidc/.well-known/nope-connections".into(), None, "none"),
        (Method::GET, "/oidc/.well-known/connections".into(), None, "none"),
        (Method::GET, "/nothing/here".into(), None, "none"),
    ];
    let mut cases = not_found;
    for v in DATA_VERSIONS {
        cases.push((Method::GET, format!("/{v}/accounts/{UNKNOWN_UUID}"), None, "data"));
        cases.push((Method::GET, format!("/{v}/transactions/{UNKNOWN_UUID}"), None, "data"));
        cases.push((Method::POST, format!("/{v}/sync/{ghost_conn}"), Some("{}"), "data"));
        cases.push((Method::POST, format!("/{v}/sync/nonsense"), Some("{}"), "data"));
    }
    for (method, path, body, kind) in cases {
        let auth = match kind {
            "mgmt" => Auth::Bearer(&mgmt),
            "data" => Auth::Bearer(&data),
            _ => Auth::None,
        };
        let res = send(&w.sb, method.clone(), &path, auth, body).await;
        let e = res.api_error(StatusCode::NOT_FOUND, &format!("{method} {path}"));
        assert_eq!(e["code"], "NotFound", "{method} {path}");
    }
    // Malformed UUIDs: 400 naming the value.
    let mut malformed = vec![(format!("/users/{u}/syncs/not-a-uuid"), "not-a-uuid", &mgmt)];
    for v in DATA_VERSIONS {
        malformed.push((format!("/{v}/accounts/acc-123"), "acc-123", &data));
        malformed.push((format!("/{v}/transactions/tx-123"), "tx-123", &data));
    }
    for (path, name, tok) in malformed {
        let res = send(&w.sb, Method::GET, &path, Auth::Bearer(tok), None).await;
        let e = res.api_error(StatusCode::BAD_REQUEST, &path);
        assert!(e["message"].as_str().unwrap().contains(name), "{path}: {e}");
    }
    // Methods a route does not have: the JSON 404 that says the sandbox does not implement them.
    for (method, path) in [
        (Method::PUT, "/users".to_string()),
        (Method::PATCH, format!("/users/{u}")),
        (Method::POST, "/v3/accounts".to_string()),
        (Method::GET, format!("/v3/sync/{c}")),
        (Method::DELETE, format!("/v3/transactions/{}", w.tx)),
        (Method::POST, format!("/users/{u}/connection/{c}")),
    ] {
        let res = send(&w.sb, method.clone(), &path, Auth::Bearer(&data), None).await;
        let e = res.api_error(StatusCode::NOT_FOUND, &format!("{method} {path}"));
        assert!(e["message"].as_str().unwrap().starts_with("The sandbox does not implement"), "{e}");
    }
    assert_untouched(&w).await;
}

#[tokio::test]
async fn patch_expires_at_must_be_in_the_future_and_at_most_ninety_days_ahead() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK, AVIVA]).await;
    let mgmt = token(&sb, MANAGEMENT, None).await;
    let path = format!("/users/{user}/connections/{}", conns[0]);
    let now = sb.now();
    let iso = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    for (t, why) in [
        (now + chrono::Duration::days(90) + chrono::Duration::seconds(1), "a second over 90 days"),
        (now + chrono::Duration::days(365), "a year ahead"),
        (now - chrono::Duration::days(1), "yesterday"),
        (now, "now"),
    ] {
        let body = json!({"expiresAt": iso(t)}).to_string();
        let res = send(&sb, Method::PATCH, &path, Auth::Bearer(&mgmt), Some(&body)).await;
        res.api_error(StatusCode::BAD_REQUEST, why);
        assert_eq!(
            connection(&sb, &user, &conns[0]).await["expiresAt"],
            iso(now + chrono::Duration::days(90)),
            "{why}"
        );
    }
    // Accepted: exactly 90 days, and a date with an offset.
    for (raw, expect) in [
        (iso(now + chrono::Duration::days(90)), iso(now + chrono::Duration::days(90))),
        ("2025-02-01T12:00:00+01:00".to_string(), "2025-02-01T11:00:00.000Z".to_string()),
    ] {
        let body = json!({"expiresAt": raw}).to_string();
        let res = send(&sb, Method::PATCH, &path, Auth::Bearer(&mgmt), Some(&body)).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{raw}: {}", res.text);
        assert_eq!(res.text, "");
        assert_eq!(connection(&sb, &user, &conns[0]).await["expiresAt"], expect);
    }
    // A legacy connection has no consent expiry to move.
    let body = json!({"expiresAt": iso(now + chrono::Duration::days(10))}).to_string();
    let legacy = format!("/users/{user}/connections/{}", conns[1]);
    send(&sb, Method::PATCH, &legacy, Auth::Bearer(&mgmt), Some(&body))
        .await
        .api_error(StatusCode::BAD_REQUEST, "legacy");
    assert!(connection(&sb, &user, &conns[1]).await.get("expiresAt").is_none());
}

#[tokio::test]
async fn the_official_clients_quirks_are_accepted() {
    let w = world().await;
    let b = w.sb.base_url().to_string();
    let mgmt = token(&w.sb, MANAGEMENT, None).await;
    let data = data_token(&w.sb, &w.user).await;

    // Catalogues: `?undefined`, `?clientId=...`, both, for every listing.
    for listing in ["all", "api", "legacy", "test", "payments", "beta", "zoopla", "mouseprice", "autotrader"]
    {
        let plain =
            send(&w.sb, Method::GET, &format!("/oidc/.well-known/{listing}-connections"), Auth::None, None)
                .await;
        assert_eq!(plain.status, StatusCode::OK, "{listing}");
        let expected = plain.json().unwrap();
        assert!(expected.is_array(), "{listing}");
        for q in
            ["undefined", "clientId=x", &format!("clientId={}", w.sb.client_id()), "undefined&clientId=x&x=1"]
        {
            let res = send(
                &w.sb,
                Method::GET,
                &format!("/oidc/.well-known/{listing}-connections?{q}"),
                Auth::None,
                None,
            )
            .await;
            assert_eq!(res.status, StatusCode::OK, "{listing}?{q}: {}", res.text);
            assert_eq!(res.json().unwrap(), expected, "{listing}?{q}");
        }
    }

    // Connection ids with a raw `:` and with `%3A`, on every connection route.
    let c0 = &w.conns[0];
    let escaped = c0.replace(':', "%3A");
    for id in [c0.clone(), escaped.clone(), c0.replace(':', "%3a")] {
        let res = send(
            &w.sb,
            Method::GET,
            &format!("/users/{}/connections/{id}", w.user),
            Auth::Bearer(&mgmt),
            None,
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{id}: {}", res.text);
        assert_eq!(res.json().unwrap()["data"]["id"], c0.as_str());
        let res = send(
            &w.sb,
            Method::GET,
            &format!("/users/{}/connections/{id}/syncs", w.user),
            Auth::Bearer(&mgmt),
            None,
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{id}: {}", res.text);
        let res =
            send(&w.sb, Method::GET, &format!("/v3/accounts?connectionId={id}"), Auth::Bearer(&data), None)
                .await;
        assert_eq!(res.status, StatusCode::OK, "{id}: {}", res.text);
        assert!(
            !res.json().unwrap()["data"].as_array().unwrap().is_empty(),
            "connectionId={id} finds the accounts"
        );
        let later = (w.sb.now() + chrono::Duration::days(20)).to_rfc3339();
        let body = json!({"expiresAt": later}).to_string();
        let res = send(
            &w.sb,
            Method::PATCH,
            &format!("/users/{}/connections/{id}", w.user),
            Auth::Bearer(&mgmt),
            Some(&body),
        )
        .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{id}: {}", res.text);
    }
    // POST /sync: raw, then escaped (31 minutes apart: one manual sync per 30 minutes).
    // An empty object, and no body at all, are both a sync with the defaults.
    for (id, body) in [(c0.clone(), Some("{}")), (escaped.clone(), None)] {
        let res = send(&w.sb, Method::POST, &format!("/v2.0/sync/{id}"), Auth::Bearer(&data), body).await;
        assert_eq!(res.status, StatusCode::OK, "{id}: {}", res.text);
        assert_eq!(res.json().unwrap()["data"]["status"], "ok");
        advance(&w.sb, json!({"minutes": 31})).await;
    }
    // DELETE, singular path with `%3A`, plural with a raw `:`.
    let res = send(
        &w.sb,
        Method::DELETE,
        &format!("/users/{}/connection/{}", w.user, w.conns[1].replace(':', "%3A")),
        Auth::Bearer(&mgmt),
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    let res = send(
        &w.sb,
        Method::DELETE,
        &format!("/users/{}/connections/{}", w.user, w.conns[2]),
        Auth::Bearer(&mgmt),
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    let res =
        send(&w.sb, Method::GET, &format!("/users/{}/connections", w.user), Auth::Bearer(&mgmt), None).await;
    let left: Vec<Value> =
        res.json().unwrap()["data"].as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
    assert_eq!(left, vec![json!(c0)]);

    // ids: repeated keys, the bracketed form, a mix.
    let (_, page) = get_json(&format!("{b}/v3/transactions?limit=3"), &data).await;
    let t: Vec<&str> = page["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(t.len(), 3);
    for q in [
        format!("ids={}&ids={}&ids={}", t[0], t[1], t[2]),
        format!("ids[]={}&ids[]={}&ids[]={}", t[0], t[1], t[2]),
        format!("ids%5B%5D={}&ids={}&ids[]={}", t[0], t[1], t[2]),
    ] {
        let (status, body) = get_json(&format!("{b}/v3/transactions?{q}"), &data).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let mut got: Vec<&str> =
            body["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
        got.sort_unstable();
        let mut want = t.clone();
        want.sort_unstable();
        assert_eq!(got, want, "{q}");
        assert!(body["meta"].get("missingTransactionIds").is_none(), "{q}: {body}");
    }
    // A repeated id (either spelling) names one transaction, answered once.
    for q in [
        format!("ids={}&ids={}&ids[]={}", t[0], t[0], t[0]),
        format!("ids={}&ids={}", t[0], t[0].to_uppercase()),
    ] {
        let (status, body) = get_json(&format!("{b}/v3/transactions?{q}"), &data).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let got: Vec<&str> =
            body["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
        assert_eq!(got, vec![t[0]], "{q}");
    }
    // A bare `?startDate` (how query-string serialises null) is no filter at all.
    let (_, all) = get_json(&format!("{b}/v3/transactions?onlyCount=true"), &data).await;
    for q in [
        "startDate",
        "startDate&endDate",
        "startDate&onlyCount=true&undefined",
        "accountId&creditDebitIndicator",
    ] {
        let (status, body) = get_json(&format!("{b}/v3/transactions?{q}&onlyCount=true"), &data).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(body["meta"]["count"], all["meta"]["count"], "{q}");
    }
    let (status, body) = get_json(&format!("{b}/v3/accounts?showTransactionData&undefined"), &data).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn oauth_endpoint_errors_are_json_with_an_error_code() {
    let sb = sandbox().await;
    let form = "application/x-www-form-urlencoded";
    let basic = {
        use base64::Engine;
        let raw = format!("{}:{}", sb.client_id(), sb.client_secret().unwrap());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    };
    let huge = over_the_body_limit("grant_type=client_credentials&scope=", "");
    // (path, Authorization, body, content type, expected status)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, &'a str, StatusCode);
    let cases: Vec<Case> = vec![
        (
            "/oidc/token",
            None,
            b"grant_type=client_credentials&scope=user:read".to_vec(),
            form,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/oidc/token",
            Some("Basic Zm9vOmJhcg=="),
            b"grant_type=client_credentials&scope=user:read".to_vec(),
            form,
            StatusCode::UNAUTHORIZED,
        ),
        ("/oidc/token", Some(&basic), b"".to_vec(), form, StatusCode::BAD_REQUEST),
        ("/oidc/token", Some(&basic), b"grant_type=password".to_vec(), form, StatusCode::BAD_REQUEST),
        (
            "/oidc/token",
            Some(&basic),
            b"grant_type=client_credentials".to_vec(),
            form,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/oidc/token",
            Some(&basic),
            b"{\"grant_type\":\"client_credentials\"}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/oidc/token",
            Some(&basic),
            b"grant_type=client_credentials&scope=a&sub=nobody".to_vec(),
            form,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/oidc/token",
            Some(&basic),
            b"grant_type=authorization_code&code=nope".to_vec(),
            form,
            StatusCode::BAD_REQUEST,
        ),
        ("/oidc/token", Some(&basic), b"grant_type=\xff\xfe".to_vec(), form, StatusCode::BAD_REQUEST),
        ("/oidc/request", None, b"scope=openid".to_vec(), form, StatusCode::UNAUTHORIZED),
        ("/oidc/request", Some(&basic), b"%%%".to_vec(), form, StatusCode::BAD_REQUEST),
        (
            "/oidc/request",
            Some(&basic),
            b"scope=openid&response_type=token".to_vec(),
            form,
            StatusCode::BAD_REQUEST,
        ),
        ("/request", None, b"not a jws".to_vec(), "application/jws", StatusCode::BAD_REQUEST),
        ("/request", None, b"a.b.c".to_vec(), "application/jws", StatusCode::BAD_REQUEST),
    ];
    for (path, auth, body, ct, want) in cases {
        let a = auth.map(Auth::Raw).unwrap_or(Auth::None);
        let res = send_with(&sb, Method::POST, path, a, Some(body.clone()), ct).await;
        res.oauth_error(want, &format!("{path} {:?}", String::from_utf8_lossy(&body)));
    }
    for (path, auth) in
        [("/oidc/token", Some(basic.as_str())), ("/oidc/request", Some(&basic)), ("/request", None)]
    {
        let a = auth.map(Auth::Raw).unwrap_or(Auth::None);
        let res = send_with(&sb, Method::POST, path, a, Some(huge.clone().into_bytes()), form).await;
        assert!(
            matches!(res.status, StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST),
            "{path}: {}",
            res.status
        );
        let v = res.json().unwrap_or_else(|| panic!("huge {path}: not JSON: {:?}", res.text));
        assert!(v["error"].is_string() || v["code"].is_string(), "huge {path}: {v}");
    }
    // /oidc/auth with nothing to redirect to: a direct JSON error.
    for q in ["", "?client_id=nope", "?request_uri=urn:ietf:params:oauth:request_uri:nope", "?%zz"] {
        let res = send(&sb, Method::GET, &format!("/oidc/auth{q}"), Auth::None, None).await;
        res.oauth_error(StatusCode::BAD_REQUEST, &format!("/oidc/auth{q}"));
    }
}

#[tokio::test]
async fn path_segments_that_are_not_utf8_or_oddly_escaped_get_json_answers() {
    let w = world().await;
    let mgmt = token(&w.sb, MANAGEMENT, None).await;
    let data = data_token(&w.sb, &w.user).await;
    let u = &w.user;
    for bad in ["%FF", "%C3%28", "a%E2%82", "%00", "%zz", "%", "caf%C3%A9", "%F0%9F%92%B8", ".."] {
        let cases = [
            (Method::GET, format!("/users/{bad}"), &mgmt, None),
            (Method::DELETE, format!("/users/{bad}"), &mgmt, None),
            (Method::GET, format!("/users/{u}/connections/{bad}"), &mgmt, None),
            (Method::PATCH, format!("/users/{u}/connections/{bad}"), &mgmt, Some("{}")),
            (Method::DELETE, format!("/users/{u}/connection/{bad}"), &mgmt, None),
            (Method::GET, format!("/users/{u}/connections/{bad}/syncs"), &mgmt, None),
            (Method::GET, format!("/users/{u}/syncs/{bad}"), &mgmt, None),
            (Method::GET, format!("/oidc/.well-known/{bad}"), &mgmt, None),
            (Method::GET, format!("/bank-icons/{bad}"), &mgmt, None),
            (Method::POST, format!("/v3/sync/{bad}"), &data, Some("{}")),
            (Method::GET, format!("/v3/accounts/{bad}"), &data, None),
            (Method::GET, format!("/v2.0/transactions/{bad}"), &data, None),
            (Method::GET, format!("/__sandbox/connections/{bad}"), &mgmt, None),
            (Method::PATCH, format!("/__sandbox/connections/{bad}"), &mgmt, Some("{}")),
            (Method::PUT, format!("/__sandbox/connections/{bad}/script"), &mgmt, Some("{\"outcomes\":[]}")),
            (Method::POST, format!("/__sandbox/providers/{bad}/remove"), &mgmt, None),
            (Method::POST, format!("/__sandbox/accounts/{bad}/drop"), &mgmt, None),
            (Method::DELETE, format!("/__sandbox/faults/{bad}"), &mgmt, None),
        ];
        for (method, path, tok, body) in cases {
            // reqwest would resolve `..` and re-encode: build the URL by hand.
            let url = url::Url::parse(&format!("{}{path}", w.sb.base_url())).ok();
            let Some(url) = url.filter(|x| x.path() == path.split('?').next().unwrap()) else { continue };
            let res = send(&w.sb, method.clone(), url.as_str(), Auth::Bearer(tok), body).await;
            let what = format!("{method} {path}");
            assert!(
                matches!(
                    res.status,
                    StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                ),
                "{what}: {} {}",
                res.status,
                res.text
            );
            res.is_api_error(&what);
        }
    }
    assert_untouched(&w).await;
}
