//! A one-time access user (no `sub` value in the authorisation: Moneyhub made the user during
//! consent) that the mirror first hears of through a webhook: it reads the user's data with
//! client credentials + `sub`, as for any user, and ends level with Moneyhub.

use std::time::Duration;

use moneyhub_mirror::MirrorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const REDIRECT: &str = "http://127.0.0.1:9999/cb";

/// Connects a new one-time access user to the mock bank through the real flow; returns the
/// user Moneyhub made.
async fn one_time_user(sb: &moneyhub_sandbox::Sandbox) -> String {
    let claims =
        json!({"id_token": {"sub": {"essential": true}, "mh:con_id": {"essential": true}}}).to_string();
    let scope = format!("openid id:{MOCK} transactions:read:all");
    let form = [
        ("client_id", sb.client_id()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", "s"),
        ("nonce", "n"),
        ("prompt", "consent"),
        ("scope", scope.as_str()),
        ("claims", claims.as_str()),
    ];
    let res = http()
        .post(format!("{}/oidc/request", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let par: Value = res.json().await.unwrap();
    let res = http()
        .get(format!("{}/oidc/auth", sb.base_url()))
        .query(&[("request_uri", par["request_uri"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    use base64::Engine;
    let payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_access_user_first_heard_of_through_a_webhook_is_mirrored() {
    init_tracing();
    let sb = sandbox(0.5).await;
    let db = TestDb::sqlite("one-time");
    let config = MirrorConfig::default().coalesce_window(Duration::ZERO).allow_unsigned_json(true);
    let running = Running::start(client(&sb), db.url(), config).await;
    set_webhooks(&sb, &running.url, "json").await;
    let user = one_time_user(&sb).await;
    let workers = running.mirror.spawn_workers(2);
    // The background history, then half a day of syncs, all announced by webhooks only.
    control_ok(&sb, Method::POST, "/clock/advance", Some(json!({"hours": 12}))).await;
    flush(&sb).await;
    wait_inbox_empty(running.mirror.db(), Duration::from_secs(60)).await;
    workers.stop().await;
    let counts = running.mirror.db().inbox_counts().await.unwrap();
    assert!(counts.applied > 0 && counts.failed == 0, "{counts:?}");
    let (problems, compared) = compare(&sb, running.mirror.db(), std::slice::from_ref(&user)).await;
    assert!(problems.is_empty(), "{} differences: {:#?}", problems.len(), &problems[..problems.len().min(5)]);
    assert!(compared > 100, "{compared}");
    running.stop().await;
    db.cleanup().await;
}
