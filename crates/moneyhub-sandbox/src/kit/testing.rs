//! Test helpers shared by the workspace's integration tests (feature `test-kit`): the
//! `MONEYHUB_TEST_REQUIRE` switch and [`skip`], the instant sandboxes start at ([`t0`]),
//! sandboxes, tokens, catalogue look-ups and the control API, and the whole consent flow done
//! over raw HTTP (PAR → `/oidc/auth` → code exchange, [`connect`]).
//!
//! Everything here is independent of the client crate (`moneyhub`): the sandbox never depends
//! on the client, and a crate that does keeps its client-shaped helpers (typed ids, a
//! `Client` whose clock follows the sandbox) in its own `tests/it/support.rs`, next to
//! `pub use`s of these.
//!
//! # Panics
//!
//! These are assertions, not library calls: each panics, with what went wrong, when the
//! sandbox does not answer as a test needs (a refused token, a failed consent step). They are
//! for tests only and not covered by the crate's semver promise; without the feature, the
//! module does not exist.

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::Control;
use crate::{spawn, ClockMode, Sandbox, SandboxConfig};

/// The variable that turns a skip into a failure: a comma list of [`TOOLS`], or `all`.
pub const REQUIRE_VAR: &str = "MONEYHUB_TEST_REQUIRE";

/// What a test may be missing, as [`REQUIRE_VAR`] names it: PostgreSQL (a server or its
/// binaries), node/npm, chromium + chromedriver, a tmpfs mount, ~2,500 file descriptors,
/// util-linux `script`; `all` is every one.
pub const TOOLS: [&str; 7] = ["pg", "node", "chromium", "tmpfs", "fds", "pty", "all"];

/// A test that cannot run here (`tool`, one of [`TOOLS`], is missing) says why and returns,
/// unless [`REQUIRE_VAR`] names the tool (or `all`): then it fails, so that a run which must
/// exercise everything cannot pass by skipping. The caller returns right after it.
///
/// # Panics
///
/// When the tool is required, and when the variable names a tool that does not exist (a typo
/// would otherwise require nothing).
pub fn skip(tool: &str, test: &str, why: &str) {
    let required = std::env::var(REQUIRE_VAR).unwrap_or_default();
    let mut names = required.split(',').map(str::trim).filter(|t| !t.is_empty());
    if let Some(unknown) = names.clone().find(|t| !TOOLS.contains(t)) {
        panic!("{REQUIRE_VAR}={required}: unknown tool {unknown:?} (known: {})", TOOLS.join(","));
    }
    assert!(
        !names.any(|t| t == tool || t == "all"),
        "{test} cannot run: {why} (and {REQUIRE_VAR}={required} requires {tool})"
    );
    println!("skipping {test}: {why} ({REQUIRE_VAR}={tool} would make this a failure)");
}

/// The instant test sandboxes start at (frozen): Wednesday 15 January 2025, 10:00 UTC,
/// outside summer time.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).single().unwrap_or_default()
}

/// The default configuration with the clock frozen at [`t0`].
pub fn frozen() -> SandboxConfig {
    SandboxConfig { clock: ClockMode::Frozen(t0()), ..SandboxConfig::default() }
}

/// A sandbox frozen at [`t0`] (the default configuration otherwise).
pub async fn sandbox() -> Sandbox {
    sandbox_with(frozen()).await
}

/// A sandbox with the given configuration, on the current runtime.
pub async fn sandbox_with(config: SandboxConfig) -> Sandbox {
    spawn(config).await.unwrap_or_else(|e| panic!("the sandbox starts: {e}"))
}

/// An HTTP client that never follows redirects (the tests look at each one).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("an HTTP client: {e}"))
}

/// Calls the control API; returns status and JSON (`null` for an empty body), whatever the
/// status.
pub async fn control(sb: &Sandbox, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    Control::of(sb).call(method, path, body).await.unwrap_or_else(|e| panic!("the control API answers: {e}"))
}

/// Calls the control API and asserts a 2xx answer; returns its JSON.
pub async fn control_ok(sb: &Sandbox, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, value) = control(sb, method, path, body).await;
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

/// Advances the virtual clock (`by` as `POST /__sandbox/clock/advance` takes it, e.g.
/// `{"days": 3}`) and returns the report.
pub async fn advance(sb: &Sandbox, by: Value) -> Value {
    let (status, body) = control(sb, Method::POST, "/clock/advance", Some(by)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A provider's bank id, by name, `bankRef` or id, from the public catalogue.
pub async fn bank(sb: &Sandbox, name: &str) -> String {
    Control::of(sb).bank_id(name).await.unwrap_or_else(|e| panic!("{name} is in the catalogue: {e}"))
}

/// A client_credentials token of the default client (`client_secret_basic`): `scope` as the
/// token request takes it, `sub` for a user's token.
pub async fn token(sb: &Sandbox, scope: &str, sub: Option<&str>) -> String {
    let kit = Control::of(sb);
    let token = kit.client_token(sb.client_id(), sb.client_secret(), scope, sub).await;
    token.unwrap_or_else(|e| panic!("token request for {scope}: {e}"))
}

/// One user connected to `banks` through the control API (no consent flow); the user id and
/// the connection ids.
pub async fn user_with(sb: &Sandbox, banks: &[&str]) -> (String, Vec<String>) {
    let user = Control::of(sb).create_user(banks).await.unwrap_or_else(|e| panic!("user created: {e}"));
    (user.user_id, user.connection_ids)
}

/// The last request-log sequence number.
pub async fn last_seq(sb: &Sandbox) -> u64 {
    Control::of(sb).requests(0, 1).await.unwrap_or_else(|e| panic!("the request log: {e}")).last_seq
}

/// GET with a bearer token; returns status and JSON (`null` for an empty body, a string for
/// one that is not JSON).
pub async fn get_json(url: &str, tok: &str) -> (StatusCode, Value) {
    let res = http().get(url).bearer_auth(tok).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = res.status();
    let text = res.text().await.unwrap_or_else(|e| panic!("GET {url} body: {e}"));
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

// ----- the consent flow over raw HTTP -------------------------------------------------------

/// The redirect URI of the raw consent flow: a loopback URL, which the sandbox accepts for
/// clients that registered none (the default client).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/cb";

/// A JWT's payload, decoded without verification.
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap_or_else(|| panic!("a JWT has a payload: {jwt:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("a base64url payload: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("a JSON payload: {e}"))
}

/// The query (and fragment) parameters of a redirect's `Location`.
pub fn location_params(res: &reqwest::Response) -> HashMap<String, String> {
    let loc = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_else(|| panic!("a Location header ({})", res.status()));
    let url = url::Url::parse(loc).unwrap_or_else(|e| panic!("an absolute Location {loc:?}: {e}"));
    let mut out: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(f) = url.fragment() {
        out.extend(url::form_urlencoded::parse(f.as_bytes()).into_owned());
    }
    out
}

/// Pushes an authorisation request (PAR, `client_secret_basic`, default client) with `extra`
/// parameters on top of (and replacing) `client_id`, `redirect_uri` = [`REDIRECT_URI`],
/// `response_type=code`, `state=st-1`, `nonce=n-1` and `prompt=consent`; returns the response.
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
        .unwrap_or_else(|e| panic!("PAR: {e}"))
}

/// PAR then `/oidc/auth` (redirect not followed) for the default client, with `scope` and the
/// `claims` request parameter; returns the authorisation code.
///
/// # Panics
///
/// Unless PAR answers 201 and `/oidc/auth` redirects with a code.
pub async fn authorize_code(sb: &Sandbox, scope: &str, claims: &Value) -> String {
    let claims = claims.to_string();
    let res = par(sb, &[("scope", scope), ("claims", &claims)]).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::CREATED, "PAR: {body}");
    let request_uri = body["request_uri"].as_str().unwrap_or_else(|| panic!("PAR: no request_uri in {body}"));
    let res = http()
        .get(format!("{}/oidc/auth", sb.base_url()))
        .query(&[("request_uri", request_uri)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("/oidc/auth: {e}"));
    assert_eq!(res.status(), StatusCode::FOUND, "auth: {:?}", res.headers().get("location"));
    let params = location_params(&res);
    assert!(!params.contains_key("error"), "auth error: {params:?}");
    params.get("code").unwrap_or_else(|| panic!("a code in {params:?}")).clone()
}

/// Exchanges an authorisation code (default client, `client_secret_basic`, `extra` form
/// fields added); returns status and body (`null` when not JSON).
pub async fn exchange(sb: &Sandbox, code: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT_URI)];
    form.extend_from_slice(extra);
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("/oidc/token: {e}"));
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// The `mh:con_id` of a successful exchange's id_token.
fn connection_of(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::OK, "exchange: {body}");
    let id_token = body["id_token"].as_str().unwrap_or_else(|| panic!("an id_token in {body}"));
    let claims = jwt_claims(id_token);
    claims["mh:con_id"].as_str().unwrap_or_else(|| panic!("mh:con_id in {claims}")).to_owned()
}

/// Connects `user_id` to `bank_id` through the whole consent flow (PAR → `/oidc/auth` → code
/// exchange, default client); returns the new connection's id (the id_token's `mh:con_id`).
pub async fn connect(sb: &Sandbox, user_id: &str, bank_id: &str) -> String {
    let claims = json!({"id_token": {
        "sub": {"essential": true, "value": user_id},
        "mh:con_id": {"essential": true}
    }});
    let code = authorize_code(sb, &format!("openid id:{bank_id}"), &claims).await;
    let (status, body) = exchange(sb, &code, &[("sub", user_id)]).await;
    connection_of(status, &body)
}

/// Renews a connection through the whole consent flow, `flow` being `reauth`, `refresh` or
/// `reconsent`; returns the id_token's `mh:con_id`.
pub async fn renew(sb: &Sandbox, user_id: &str, connection_id: &str, flow: &str) -> String {
    let claims = json!({"id_token": {
        "sub": {"essential": true, "value": user_id},
        "mh:con_id": {"essential": true, "value": connection_id}
    }});
    let code = authorize_code(sb, &format!("openid {flow}"), &claims).await;
    let (status, body) = exchange(sb, &code, &[]).await;
    connection_of(status, &body)
}
