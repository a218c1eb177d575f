//! Shared helpers: start a sandbox, get tokens, create users and connections over HTTP.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use moneyhub_sandbox::{spawn, ClockMode, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::Value;

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

/// An HTTP client that never follows redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A client_credentials token (client_secret_basic with the default client).
pub async fn token(sb: &Sandbox, scope: &str, sub: Option<&str>) -> String {
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
    assert_eq!(res.status(), StatusCode::OK, "token request for {scope}");
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
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
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}
