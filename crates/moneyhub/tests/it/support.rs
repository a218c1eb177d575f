//! Shared helpers: sandboxes with frozen clocks, clients that follow them, the control API,
//! the request log, test RSA keys and a full connect flow. What does not need the client
//! (the skip switch, `t0`, starting a sandbox) lives once in `moneyhub_sandbox::kit::testing`
//! (feature `test-kit`) and is re-exported here; this file keeps the client-shaped helpers.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use moneyhub::{
    AuthorizationRequest, Client, ClientAuth, ClientBuilder, ConnectOptions, Connected, PrivateKey,
    RetryPolicy,
};
use moneyhub_sandbox::kit::testing;
use moneyhub_sandbox::kit::{Control, FaultSpec};
use moneyhub_sandbox::{ClientRegistration, Sandbox, SandboxConfig};
use moneyhub_types::{BankId, ConnectionId, UserId};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[allow(unused_imports)]
pub use moneyhub_sandbox::kit::testing::{skip, t0};

/// Moneyhub Open Banking Mock (current, savings, card).
pub const MOCK_BANK: &str = "1ffe704d39629a929c8e293880fb449a";
/// Modelo Open Banking Mock.
pub const MODELO_BANK: &str = "b74f1a79f0be8bdb857d82d0f041d7d2";
/// Aviva (legacy).
pub const AVIVA_BANK: &str = "3c4637d3178c9a28ce655bfbf8e27a10";
/// Any loopback URL is accepted by the sandbox.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// A sandbox and a client whose clock follows the sandbox's virtual clock.
pub struct Env {
    pub sandbox: Arc<Sandbox>,
    pub client: Client,
}

/// A frozen sandbox with the default client.
pub async fn sandbox() -> Arc<Sandbox> {
    sandbox_with(testing::frozen()).await
}

/// A sandbox with the given configuration, shared (clients' clocks follow it).
pub async fn sandbox_with(config: SandboxConfig) -> Arc<Sandbox> {
    Arc::new(testing::sandbox_with(config).await)
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
    following(sb, Client::builder().sandbox(sb.base_url()))
}

/// `builder` with the test redirect URI, fast retries and the sandbox's clock.
fn following(sb: &Arc<Sandbox>, builder: ClientBuilder) -> ClientBuilder {
    let clock_sb = sb.clone();
    builder.redirect_uri(REDIRECT_URI).retry_policy(fast_retries(3)).clock(move || clock_sb.now())
}

/// The sandbox's control client (trusting the test CA of `testdata/keys`).
pub fn kit(sb: &Sandbox) -> Control {
    Control::of(sb).with_http(http())
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
    kit(sb).call(method, path, body).await.expect("the control API answers")
}

/// Adds a fault rule.
pub async fn fault(sb: &Sandbox, rule: Value) {
    let spec: FaultSpec = serde_json::from_value(rule).expect("a fault rule");
    kit(sb).add_fault(&spec).await.unwrap_or_else(|e| panic!("fault rule refused: {e}"));
}

/// Removes every fault rule.
pub async fn clear_faults(sb: &Sandbox) {
    kit(sb).clear_faults().await.expect("faults cleared");
}

/// Advances the sandbox clock.
pub async fn advance(sb: &Sandbox, by: Value) {
    let (status, body) = control(sb, Method::POST, "/clock/advance", Some(by)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The last request-log sequence number.
pub async fn last_seq(sb: &Sandbox) -> u64 {
    kit(sb).requests(0, 1).await.expect("request log").last_seq
}

/// Request-log entries after `seq`.
pub async fn requests_after(sb: &Sandbox, seq: u64) -> Vec<Value> {
    let log = kit(sb).requests(seq, 1_000_000).await.expect("request log");
    // The control API's own requests are logged too: leave them out.
    log.data
        .iter()
        .filter(|e| !e.path.starts_with("/__sandbox"))
        .map(|e| serde_json::to_value(e).expect("entry"))
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
    let user = kit(sb).create_user(banks).await.expect("user created");
    let ids = user.connection_ids.iter().map(|c| c.parse().unwrap()).collect();
    (user.user_id.parse().unwrap(), ids)
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
        ..testing::frozen()
    })
    .await
}

/// A client for a `private_key_jwt` client, clock following the sandbox.
pub fn key_client(sb: &Arc<Sandbox>, client_id: &str, key: PrivateKey) -> Client {
    following(
        sb,
        Client::builder()
            .sandbox(sb.base_url())
            .client_id(client_id)
            .client_auth(ClientAuth::private_key(key)),
    )
    .build()
    .unwrap()
}

/// A client_credentials token straight from the sandbox (default client).
pub async fn direct_token(sb: &Sandbox, scope: &str, sub: Option<&str>) -> String {
    kit(sb).client_token(sb.client_id(), sb.client_secret(), scope, sub).await.expect("a token")
}
