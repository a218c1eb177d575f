//! Shared helpers: start a sandbox, get tokens, create users and connections over HTTP.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use moneyhub_sandbox::kit::Control;
use moneyhub_sandbox::{spawn, ClockMode, Sandbox, SandboxConfig};
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinHandle;

/// A fixed instant tests start at: a Wednesday 10:00 UTC, outside summer time.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap().with_timezone(&Utc)
}

/// A sandbox with a frozen clock at [`t0`].
pub async fn sandbox() -> Sandbox {
    sandbox_with(SandboxConfig { clock: ClockMode::Frozen(t0()), ..Default::default() }).await
}

/// A sandbox with the given configuration.
pub async fn sandbox_with(config: SandboxConfig) -> Sandbox {
    spawn(config).await.expect("sandbox starts")
}

/// A provider's bank id, looked up by name in the public catalogue.
pub async fn bank(sb: &Sandbox, name: &str) -> String {
    Control::of(sb).bank_id(name).await.unwrap_or_else(|e| panic!("{name} is in the catalogue: {e}"))
}

/// An HTTP client that never follows redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A client_credentials token (client_secret_basic with the default client).
pub async fn token(sb: &Sandbox, scope: &str, sub: Option<&str>) -> String {
    let kit = Control::of(sb);
    let token = kit.client_token(sb.client_id(), sb.client_secret(), scope, sub).await;
    token.unwrap_or_else(|e| panic!("token request for {scope}: {e}"))
}

/// Creates a user and returns its id.
pub async fn create_user(sb: &Sandbox) -> String {
    let tok = token(sb, "user:create", None).await;
    let res = http()
        .post(format!("{}/users", sb.base_url()))
        .bearer_auth(tok)
        .json(&serde_json::json!({"clientUserId": "test-user"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "create user: {}", res.status());
    let body: Value = res.json().await.unwrap();
    body["userId"].as_str().unwrap().to_string()
}

/// GET with a bearer token; returns status and JSON (Null for an empty body).
pub async fn get_json(url: &str, tok: &str) -> (StatusCode, Value) {
    let res = http().get(url).bearer_auth(tok).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        },
    )
}

/// Calls the control API; returns status and JSON (Null for an empty body).
pub async fn control(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    Control::of(sb).call(method, path, body).await.expect("the control API answers")
}

/// Creates one user connected to `banks` through the control API; returns the user id and
/// the connection ids.
pub async fn user_with(sb: &Sandbox, banks: &[&str]) -> (String, Vec<String>) {
    let user = Control::of(sb).create_user(banks).await.expect("user created");
    (user.user_id, user.connection_ids)
}

/// Advances the sandbox clock (body as `/__sandbox/clock/advance` takes it) and returns the
/// report.
pub async fn advance(sb: &Sandbox, by: Value) -> Value {
    let (status, body) = control(sb, reqwest::Method::POST, "/clock/advance", Some(by)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The user's connection as `GET /users/{id}/connections` shows it.
pub async fn connection(sb: &Sandbox, user_id: &str, connection_id: &str) -> Value {
    let tok = token(sb, "connection:read", None).await;
    let (status, body) = get_json(&format!("{}/users/{user_id}/connections", sb.base_url()), &tok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().iter().find(|c| c["id"] == connection_id).cloned().unwrap_or(Value::Null)
}

/// A Data API token for a user with every scope the tests need.
pub async fn data_token(sb: &Sandbox, user_id: &str) -> String {
    token(sb, "accounts:read accounts:write:all transactions:read:all accounts_details:read", Some(user_id))
        .await
}

/// Every transaction of a user (paging through `links.next`).
pub async fn all_transactions(sb: &Sandbox, user_id: &str) -> Vec<Value> {
    let tok = data_token(sb, user_id).await;
    let mut url = format!("{}/v3/transactions?limit=1000", sb.base_url());
    let mut out = Vec::new();
    loop {
        let (status, body) = get_json(&url, &tok).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        out.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["links"]["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    out
}

/// The sync records of a connection, newest first.
pub async fn syncs(sb: &Sandbox, user_id: &str, connection_id: &str) -> Vec<Value> {
    let tok = token(sb, "connection:read", None).await;
    let (status, body) = get_json(
        &format!("{}/users/{user_id}/connections/{connection_id}/syncs?limit=1000", sb.base_url()),
        &tok,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

// ----- identity (OIDC) helpers ------------------------------------------------------------

/// The redirect URI the identity helpers use: a loopback URL, accepted for clients that
/// registered no redirect URIs (the default client).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/cb";

/// A JWT's payload, decoded without verification.
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// The query (or fragment) parameters of a redirect's `Location`.
pub fn location_params(res: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let loc = res.headers().get("location").expect("a Location header").to_str().unwrap();
    let url = url::Url::parse(loc).expect("an absolute Location");
    let mut out: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(f) = url.fragment() {
        out.extend(url::form_urlencoded::parse(f.as_bytes()).into_owned());
    }
    out
}

/// Pushes an authorisation request (PAR, client_secret_basic, default client) with `extra`
/// parameters on top of `client_id`, `redirect_uri`, `response_type=code`, `state`, `nonce`
/// and `prompt=consent`; returns the response.
pub async fn par(sb: &Sandbox, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![
        ("client_id", sb.client_id()),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("prompt", "consent"),
    ];
    for (k, v) in extra {
        form.retain(|(fk, _)| fk != k);
        form.push((k, v));
    }
    http()
        .post(format!("{}/oidc/request", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// PAR then `/oidc/auth` (redirect not followed) for the default client; returns the
/// authorisation code. Panics unless both steps succeed.
pub async fn authorize_code(sb: &Sandbox, scope: &str, claims: &Value) -> String {
    let claims = claims.to_string();
    let res = par(sb, &[("scope", scope), ("claims", &claims)]).await;
    assert_eq!(res.status(), StatusCode::CREATED, "PAR: {}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap();
    let res = http()
        .get(format!("{}/oidc/auth", sb.base_url()))
        .query(&[("request_uri", request_uri)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "auth: {:?}", res.headers().get("location"));
    let params = location_params(&res);
    assert!(!params.contains_key("error"), "auth error: {params:?}");
    params.get("code").expect("a code").clone()
}

/// Exchanges a code (default client, client_secret_basic); returns status and body.
pub async fn exchange(sb: &Sandbox, code: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT_URI)];
    form.extend_from_slice(extra);
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// Connects `user_id` to `bank_id` through the full flow (PAR → `/oidc/auth` → code
/// exchange, default client); returns the id_token's `mh:con_id`.
pub async fn connect(sb: &Sandbox, user_id: &str, bank_id: &str) -> String {
    let claims = serde_json::json!({"id_token": {
        "sub": {"essential": true, "value": user_id},
        "mh:con_id": {"essential": true}
    }});
    let code = authorize_code(sb, &format!("openid id:{bank_id}"), &claims).await;
    let (status, body) = exchange(sb, &code, &[("sub", user_id)]).await;
    assert_eq!(status, StatusCode::OK, "exchange: {body}");
    jwt_claims(body["id_token"].as_str().unwrap())["mh:con_id"].as_str().unwrap().to_string()
}

/// Renews a connection through the full flow with `flow` = `reauth`, `refresh` or
/// `reconsent`; returns the id_token's `mh:con_id`.
pub async fn renew(sb: &Sandbox, user_id: &str, connection_id: &str, flow: &str) -> String {
    let claims = serde_json::json!({"id_token": {
        "sub": {"essential": true, "value": user_id},
        "mh:con_id": {"essential": true, "value": connection_id}
    }});
    let code = authorize_code(sb, &format!("openid {flow}"), &claims).await;
    let (status, body) = exchange(sb, &code, &[]).await;
    assert_eq!(status, StatusCode::OK, "exchange: {body}");
    jwt_claims(body["id_token"].as_str().unwrap())["mh:con_id"].as_str().unwrap().to_string()
}

// ----- webhook receiver -------------------------------------------------------------

/// One request that reached the receiver.
#[derive(Debug, Clone)]
pub struct Received {
    pub content_type: String,
    pub body: String,
}

/// A webhook receiver on `127.0.0.1:0` that records each request on arrival, then waits
/// `delay` and answers `status`.
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(status: u16, delay: Duration) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = got.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                let content_type =
                    headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                record
                    .lock()
                    .push(Received { content_type, body: String::from_utf8_lossy(&body).into_owned() });
                tokio::time::sleep(delay).await;
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, got, task }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().clone()
    }
}

pub async fn set_target(sb: &moneyhub_sandbox::Sandbox, url: &str, format: &str) {
    let target = Control::of(sb).set_webhook_target(Some(url), Some(format)).await.expect("target set");
    assert_eq!(target.url.as_deref(), Some(url));
    assert!(target.recording);
}

/// A file of the workspace's `testdata/keys` (test keys and certificates).
pub fn fixture(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keys/");
    std::fs::read_to_string(format!("{path}{name}")).unwrap_or_else(|e| panic!("testdata/keys/{name}: {e}"))
}

/// A test that cannot run here (`tool` missing: `pg`, `node`, `chromium`, `tmpfs`, `fds`, `pty`)
/// says why and returns, unless `MONEYHUB_TEST_REQUIRE` (a comma list of those, or `all`) names
/// the tool: then it fails, so that a run which must exercise everything cannot pass by skipping.
/// The same function is in each crate's `tests/it/support.rs` (one test binary per crate).
pub fn skip(tool: &str, test: &str, why: &str) {
    const TOOLS: [&str; 7] = ["pg", "node", "chromium", "tmpfs", "fds", "pty", "all"];
    let required = std::env::var("MONEYHUB_TEST_REQUIRE").unwrap_or_default();
    let mut names = required.split(',').map(str::trim).filter(|t| !t.is_empty());
    if let Some(unknown) = names.clone().find(|t| !TOOLS.contains(t)) {
        panic!("MONEYHUB_TEST_REQUIRE={required}: unknown tool {unknown:?} (known: {})", TOOLS.join(","));
    }
    assert!(
        !names.any(|t| t == tool || t == "all"),
        "{test} cannot run: {why} (and MONEYHUB_TEST_REQUIRE={required} requires {tool})"
    );
    println!("skipping {test}: {why} (MONEYHUB_TEST_REQUIRE={tool} would make this a failure)");
}
