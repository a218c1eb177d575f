//! Shared helpers: start a sandbox, get tokens, create users and connections over HTTP.
//! What every crate's tests share lives once in `moneyhub_sandbox::kit::testing` (feature
//! `test-kit`) and is re-exported here; this file keeps what only the sandbox's tests use.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::Router;
use bytes::Bytes;
use moneyhub_sandbox::kit::Control;
use moneyhub_sandbox::Sandbox;
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use moneyhub_sandbox::kit::testing::{
    advance, authorize_code, bank, connect, control, exchange, get_json, http, jwt_claims, location_params,
    par, renew, sandbox, sandbox_with, skip, t0, token, user_with, REDIRECT_URI,
};

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
