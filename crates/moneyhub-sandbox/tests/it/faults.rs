//! Fault injection over real HTTP: errors, latency, dropped connections, malformed bodies,
//! rates, limits, and what faults must never touch.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{control, http, sandbox};

/// A public route that needs no token.
const ROUTE: &str = "/oidc/.well-known/test-connections";

async fn add_fault(sb: &moneyhub_sandbox::Sandbox, rule: Value) -> String {
    let (status, body) = control(sb, Method::POST, "/faults", Some(rule.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{rule}: {body}");
    body["id"].as_str().unwrap().to_string()
}

async fn rules(sb: &moneyhub_sandbox::Sandbox) -> Vec<Value> {
    let (status, body) = control(sb, Method::GET, "/faults", None).await;
    assert_eq!(status, StatusCode::OK);
    body["data"].as_array().unwrap().clone()
}

async fn get_route(client: &reqwest::Client, sb: &moneyhub_sandbox::Sandbox) -> reqwest::Response {
    client.get(format!("{}{ROUTE}", sb.base_url())).send().await.unwrap()
}

/// The request log's entries for `path`.
async fn logged(sb: &moneyhub_sandbox::Sandbox, path: &str) -> Vec<Value> {
    let (_, body) = control(sb, Method::GET, "/requests", None).await;
    body["data"].as_array().unwrap().iter().filter(|e| e["path"] == path).cloned().collect()
}

#[tokio::test]
async fn an_error_fault_reaches_the_client_exactly() {
    let sb = sandbox().await;
    let id = add_fault(
        &sb,
        json!({"path": ROUTE, "status": 503, "code": "ServiceUnavailable", "message": "down for a bit", "retryAfterSecs": 2}),
    )
    .await;
    let res = get_route(&http(), &sb).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "2");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "ServiceUnavailable");
    assert_eq!(body["message"], "down for a bit");
    assert_eq!(body["retryAfterSecs"], 2);
    assert!(body["correlationId"].is_string());

    let log = logged(&sb, ROUTE).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], 503);
    assert_eq!(log[0]["note"], format!("fault:{id} status=503"));
    assert_eq!(rules(&sb).await[0]["hits"], 1);
}

#[tokio::test]
async fn oauth_endpoints_get_oauth_error_bodies() {
    let sb = sandbox().await;
    add_fault(&sb, json!({"path": "/oidc/token", "status": 503, "retryAfterSecs": 1})).await;
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn a_latency_fault_delays_the_normal_answer() {
    let sb = sandbox().await;
    let client = http();
    let started = Instant::now();
    let res = get_route(&client, &sb).await;
    let normal = started.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    let id = add_fault(&sb, json!({"path": ROUTE, "latencyMs": 400})).await;
    let started = Instant::now();
    let res = get_route(&client, &sb).await;
    let slow = started.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.unwrap().as_array().is_some_and(|a| !a.is_empty()));
    assert!(slow >= Duration::from_millis(400), "took {slow:?} (normally {normal:?})");
    let log = logged(&sb, ROUTE).await;
    assert_eq!(log[1]["note"], format!("fault:{id} latency=400ms"));
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_an_answer() {
    let sb = sandbox().await;
    let client = http();
    // A keep-alive connection exists before the fault.
    assert_eq!(get_route(&client, &sb).await.status(), StatusCode::OK);
    let id = add_fault(&sb, json!({"path": ROUTE, "drop": true, "times": 1})).await;
    let err = client.get(format!("{}{ROUTE}", sb.base_url())).send().await.expect_err("no response at all");
    assert!(err.status().is_none());
    assert!(err.is_request() || err.is_connect() || err.to_string().contains("connection"), "{err:?}");
    // The next request works again (on a new connection).
    assert_eq!(get_route(&client, &sb).await.status(), StatusCode::OK);
    let log = logged(&sb, ROUTE).await;
    assert_eq!(log.len(), 3);
    assert_eq!(log[1]["status"], 0, "dropped requests log status 0");
    assert_eq!(log[1]["note"], format!("fault:{id} drop"));
}

#[tokio::test]
async fn a_malformed_fault_answers_200_with_broken_json() {
    let sb = sandbox().await;
    add_fault(&sb, json!({"path": ROUTE, "malformed": true})).await;
    let res = get_route(&http(), &sb).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let text = res.text().await.unwrap();
    assert!(!text.is_empty());
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn a_rate_fires_on_about_that_share_of_requests() {
    let sb = sandbox().await;
    add_fault(&sb, json!({"path": ROUTE, "status": 500, "rate": 0.5})).await;
    let client = http();
    let mut failed = 0;
    for _ in 0..200 {
        match get_route(&client, &sb).await.status() {
            StatusCode::INTERNAL_SERVER_ERROR => failed += 1,
            StatusCode::OK => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!((60..=140).contains(&failed), "{failed} of 200");
    let r = &rules(&sb).await[0];
    assert_eq!(r["matched"], 200);
    assert_eq!(r["hits"], failed);
}

#[tokio::test]
async fn rates_are_seeded() {
    async fn pattern() -> Vec<u16> {
        let sb = sandbox().await;
        add_fault(&sb, json!({"path": ROUTE, "rate": 0.3})).await;
        let client = http();
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(get_route(&client, &sb).await.status().as_u16());
        }
        out
    }
    let a = pattern().await;
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
    assert_eq!(a, pattern().await, "same seed, same faults");
}

#[tokio::test]
async fn times_limits_a_rule_and_delete_switches_it_off() {
    let sb = sandbox().await;
    let client = http();
    add_fault(&sb, json!({"path": ROUTE, "status": 502, "times": 2})).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(get_route(&client, &sb).await.status().as_u16());
        }
        v
    };
    assert_eq!(statuses, [502, 502, 200, 200, 200]);
    let r = &rules(&sb).await[0];
    assert_eq!(r["hits"], 2);
    assert_eq!(r["remaining"], 0);
    assert_eq!(r["active"], false);

    let id = add_fault(&sb, json!({"path": ROUTE})).await;
    assert_eq!(get_route(&client, &sb).await.status(), StatusCode::SERVICE_UNAVAILABLE, "default 503");
    let (status, _) = control(&sb, Method::DELETE, &format!("/faults/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get_route(&client, &sb).await.status(), StatusCode::OK);
    let (status, _) = control(&sb, Method::DELETE, &format!("/faults/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    add_fault(&sb, json!({"path": "/oidc"})).await;
    add_fault(&sb, json!({"path": ROUTE, "status": 500})).await;
    assert_eq!(get_route(&client, &sb).await.status(), StatusCode::SERVICE_UNAVAILABLE, "oldest rule wins");
    let (status, _) = control(&sb, Method::DELETE, "/faults", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(rules(&sb).await.is_empty());
    assert_eq!(get_route(&client, &sb).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn control_routes_are_never_faulted() {
    let sb = sandbox().await;
    // "/" matches every path, and a drop would make the control API unusable.
    add_fault(&sb, json!({"path": "/", "drop": true})).await;
    let (status, body) = control(&sb, Method::GET, "/clock", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(rules(&sb).await.len(), 1);
    assert!(http().get(format!("{}{ROUTE}", sb.base_url())).send().await.is_err(), "public routes are");
    let (status, body) =
        control(&sb, Method::POST, "/faults", Some(json!({"path": "/__sandbox/clock"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_fault_on_one_method_leaves_the_others_alone() {
    let sb = sandbox().await;
    add_fault(&sb, json!({"method": "post", "path": "/users/*/connections", "status": 500})).await;
    add_fault(&sb, json!({"method": "DELETE", "path": ROUTE, "status": 500})).await;
    assert_eq!(get_route(&http(), &sb).await.status(), StatusCode::OK);
    let res = http().delete(format!("{}{ROUTE}", sb.base_url())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "the DELETE rule fires");
    // The glob rule: POST on any user's connections fails, GET reaches the route (401: no token).
    let res = http().post(format!("{}/users/abc/connections", sb.base_url())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let res = http().get(format!("{}/users/abc/connections", sb.base_url())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_rules_are_refused() {
    let sb = sandbox().await;
    for bad in [
        json!({}),
        json!({"path": "no-slash"}),
        json!({"path": "/x", "status": 200}),
        json!({"path": "/x", "rate": 2}),
        json!({"path": "/x", "times": 0}),
        json!({"path": "/x", "drop": true, "malformed": true}),
        json!({"path": "/x", "drop": true, "status": 500}),
        json!({"path": "/x", "latencyMs": 10_000_000}),
        json!({"path": "/x", "unknown": 1}),
    ] {
        let (status, body) = control(&sb, Method::POST, "/faults", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(rules(&sb).await.is_empty());
}

#[tokio::test]
async fn shutdown_still_stops_the_listener() {
    let sb = sandbox().await;
    let client = http();
    // Leave an idle keep-alive connection open: shutdown must not wait for it.
    assert_eq!(get_route(&client, &sb).await.status(), StatusCode::OK);
    let url = format!("{}{ROUTE}", sb.base_url());
    tokio::time::timeout(Duration::from_secs(5), sb.shutdown()).await.expect("shutdown finishes");
    assert!(http().get(&url).send().await.is_err(), "nothing listens any more");
}
