//! Shared helpers: sandboxes with frozen clocks, clients that follow them, the control API,
//! the request log, test RSA keys and a full connect flow.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use moneyhub::{
    AuthorizationRequest, Client, ClientAuth, ClientBuilder, ConnectOptions, Connected, PrivateKey,
    RetryPolicy,
};
use moneyhub_sandbox::{spawn, ClientRegistration, ClockMode, Sandbox, SandboxConfig};
use moneyhub_types::{BankId, ConnectionId, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Moneyhub Open Banking Mock (current, savings, card).
pub const MOCK_BANK: &str = "1ffe704d39629a929c8e293880fb449a";
/// Modelo Open Banking Mock.
pub const MODELO_BANK: &str = "b74f1a79f0be8bdb857d82d0f041d7d2";
/// Aviva (legacy).
pub const AVIVA_BANK: &str = "3c4637d3178c9a28ce655bfbf8e27a10";
/// Any loopback URL is accepted by the sandbox.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// The instant every sandbox starts at (frozen): a Wednesday 10:00 UTC.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap().with_timezone(&Utc)
}

/// A sandbox and a client whose clock follows the sandbox's virtual clock.
pub struct Env {
    pub sandbox: Arc<Sandbox>,
    pub client: Client,
}

/// A frozen sandbox with the default client.
pub async fn sandbox() -> Arc<Sandbox> {
    sandbox_with(SandboxConfig { clock: ClockMode::Frozen(t0()), ..Default::default() }).await
}

pub async fn sandbox_with(config: SandboxConfig) -> Arc<Sandbox> {
    Arc::new(spawn(config).await.expect("sandbox starts"))
}

/// Fast retries, so fault tests stay quick.
pub fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(max_retries)
        .initial_backoff(Duration::from_millis(2))
        .max_backoff(Duration::from_millis(20))
        .max_retry_after(Duration::from_secs(30))
}

/// A builder for the sandbox's default client (secret), clock following the sandbox.
pub fn builder(sb: &Arc<Sandbox>) -> ClientBuilder {
    let clock_sb = sb.clone();
    Client::builder()
        .identity_url(sb.identity_url())
        .api_url(sb.api_url_v3())
        .client_id(sb.client_id())
        .client_auth(ClientAuth::secret(sb.client_secret().expect("default client has a secret")))
        .redirect_uri(REDIRECT_URI)
        .retry_policy(fast_retries(3))
        .clock(move || clock_sb.now())
}

pub async fn env() -> Env {
    let sandbox = sandbox().await;
    let client = builder(&sandbox).build().unwrap();
    Env { sandbox, client }
}

/// An HTTP client that never follows redirects (and trusts the test CA of `testdata/keys`,
/// for sandboxes served over TLS).
pub fn http() -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(fixture("ca.crt").as_bytes()).unwrap();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge([ca])
        .build()
        .unwrap()
}

/// Calls the control API; returns status and JSON (Null for an empty body).
pub async fn control(sb: &Sandbox, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = http().request(method, format!("{}/__sandbox{path}", sb.base_url()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
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

/// Adds a fault rule.
pub async fn fault(sb: &Sandbox, rule: Value) {
    let (status, body) = control(sb, Method::POST, "/faults", Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "fault rule refused: {body}");
}

/// Removes every fault rule.
pub async fn clear_faults(sb: &Sandbox) {
    let (status, _) = control(sb, Method::DELETE, "/faults", None).await;
    assert!(status.is_success());
}

/// Advances the sandbox clock.
pub async fn advance(sb: &Sandbox, by: Value) {
    let (status, body) = control(sb, Method::POST, "/clock/advance", Some(by)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The last request-log sequence number.
pub async fn last_seq(sb: &Sandbox) -> u64 {
    let (_, body) = control(sb, Method::GET, "/requests?after=0&limit=1", None).await;
    body["meta"]["lastSeq"].as_u64().unwrap()
}

/// Request-log entries after `seq`.
pub async fn requests_after(sb: &Sandbox, seq: u64) -> Vec<Value> {
    let (status, body) =
        control(sb, Method::GET, &format!("/requests?after={seq}&limit=1000000"), None).await;
    assert_eq!(status, StatusCode::OK);
    // The control API's own requests are logged too: leave them out.
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["path"].as_str().unwrap_or("").starts_with("/__sandbox"))
        .cloned()
        .collect()
}

/// Entries with this method whose path starts with `prefix`.
pub fn matching<'a>(log: &'a [Value], method: &str, prefix: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| e["method"] == method && e["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
        .collect()
}

/// Token requests of a grant (`grant=client_credentials sub=<user>` notes).
pub fn token_requests<'a>(log: &'a [Value], grant: &str, sub: Option<&str>) -> Vec<&'a Value> {
    let sub = sub.unwrap_or("-");
    log.iter()
        .filter(|e| e["path"] == "/oidc/token")
        .filter(|e| {
            e["note"]
                .as_str()
                .is_some_and(|n| n.contains(&format!("grant={grant} ")) && n.contains(&format!("sub={sub}")))
        })
        .collect()
}

/// One user connected to `banks` (control API); the user id and connection ids.
pub async fn user_with(sb: &Sandbox, banks: &[&str]) -> (UserId, Vec<ConnectionId>) {
    let (status, body) = control(sb, Method::POST, "/users", Some(json!({"count": 1, "banks": banks}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let u = &body[0];
    let ids =
        u["connectionIds"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().parse().unwrap()).collect();
    (u["userId"].as_str().unwrap().parse().unwrap(), ids)
}

pub fn bank(id: &str) -> BankId {
    id.parse().unwrap()
}

/// Follows the sandbox's auto-consent redirect: the callback URL Moneyhub would send the
/// browser to.
pub async fn browser(request: &AuthorizationRequest) -> String {
    let res = http().get(request.url.as_str()).send().await.unwrap();
    assert!(res.status().is_redirection(), "authorisation answered {}", res.status());
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// Connects `user` to `bank_id` through the whole flow.
pub async fn connect(client: &Client, user: &UserId, bank_id: &str) -> Connected {
    let request = client.auth().connect(ConnectOptions::new(bank(bank_id)).user(user.clone())).await.unwrap();
    let callback = browser(&request).await;
    client.auth().exchange_code(&request, callback.as_str()).await.unwrap()
}

/// A 2048-bit RSA test key from `testdata/keys` (`rsa0`, `rsa1`).
pub struct TestKey {
    pub jwk_private: String,
    pub pem_pkcs8: String,
    pub pem_pkcs1: String,
    pub d_b64: String,
}

/// A file of `testdata/keys` (test keys and certificates, see its README).
pub fn fixture(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keys/");
    std::fs::read_to_string(format!("{path}{name}")).unwrap_or_else(|e| panic!("testdata/keys/{name}: {e}"))
}

/// The path of a file of `testdata/keys`.
pub fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys").join(name)
}

/// The private `d` of a JWK fixture.
pub fn jwk_d(name: &str) -> String {
    let v: Value = serde_json::from_str(&fixture(&format!("{name}.jwk"))).unwrap();
    v["d"].as_str().unwrap().to_owned()
}

pub fn test_key(which: usize) -> &'static TestKey {
    static KEYS: OnceLock<Vec<TestKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..2)
            .map(|i| TestKey {
                jwk_private: fixture(&format!("rsa{i}.jwk")),
                pem_pkcs8: fixture(&format!("rsa{i}.pkcs8.pem")),
                pem_pkcs1: fixture(&format!("rsa{i}.pkcs1.pem")),
                d_b64: jwk_d(&format!("rsa{i}")),
            })
            .collect()
    });
    &keys[which]
}

/// A sandbox with a `private_key_jwt` client registered under `client_id` with `key`'s
/// public JWKS (and the default secret client first).
pub async fn sandbox_with_key_client(client_id: &str, key: &PrivateKey) -> Arc<Sandbox> {
    sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        clients: vec![
            ClientRegistration::default(),
            ClientRegistration {
                client_id: client_id.into(),
                client_secret: None,
                jwks: Some(key.public_jwks()),
                redirect_uris: Vec::new(),
                request_object_signing_alg: "none".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    })
    .await
}

/// A client for a `private_key_jwt` client, clock following the sandbox.
pub fn key_client(sb: &Arc<Sandbox>, client_id: &str, key: PrivateKey) -> Client {
    let clock_sb = sb.clone();
    Client::builder()
        .identity_url(sb.identity_url())
        .api_url(sb.api_url_v3())
        .client_id(client_id)
        .client_auth(ClientAuth::private_key(key))
        .redirect_uri(REDIRECT_URI)
        .retry_policy(fast_retries(3))
        .clock(move || clock_sb.now())
        .build()
        .unwrap()
}

/// A client_credentials token straight from the sandbox (default client).
pub async fn direct_token(sb: &Sandbox, scope: &str, sub: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
    if let Some(s) = sub {
        form.push(("sub", s));
    }
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}
