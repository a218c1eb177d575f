//! Webhook delivery over real HTTP: a receiver inside the test records what arrives.
//!
//! No test sleeps blindly: deliveries are driven with `POST /__sandbox/webhooks/test`
//! (answers once the event has been tried) and `POST /__sandbox/webhooks/flush` (answers once
//! everything pending has been tried).

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{control, create_user, http, sandbox, set_target, Receiver};

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";

/// Sends a synthetic event; returns its id and its delivery log entries.
async fn test_event(
    sb: &moneyhub_sandbox::Sandbox,
    user: &str,
    event_type: &str,
    payload: Value,
) -> (String, Vec<Value>) {
    let (status, body) = control(
        sb,
        Method::POST,
        "/webhooks/test",
        Some(json!({"userId": user, "eventType": event_type, "payload": payload})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["id"].as_str().unwrap().to_string(), body["deliveries"].as_array().unwrap().clone())
}

async fn deliveries(sb: &moneyhub_sandbox::Sandbox) -> Vec<Value> {
    let (status, body) = control(sb, Method::GET, "/webhooks/deliveries", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn flush(sb: &moneyhub_sandbox::Sandbox) -> Value {
    let (status, body) = control(sb, Method::POST, "/webhooks/flush", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn json_webhook_reaches_the_receiver() {
    let sb = sandbox().await;
    let rx = Receiver::start(200, Duration::ZERO).await;
    set_target(&sb, &rx.url, "json").await;
    let payload = json!({"syncId": "s1", "connectionId": "c1", "processingStatus": "success"});
    let (id, log) = test_event(&sb, "user-1", "syncCompleted", payload.clone()).await;

    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content_type, "application/json");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body, json!({"id": id, "eventType": "syncCompleted", "userId": "user-1", "payload": payload}));

    assert_eq!(log.len(), 1);
    let d = &log[0];
    assert_eq!(d["outcome"], "delivered");
    assert_eq!(d["status"], 200);
    assert_eq!(d["error"], Value::Null);
    assert_eq!(d["webhookId"], id);
    assert_eq!(d["format"], "json");
    assert_eq!(d["url"], rx.url);
    assert_eq!(d["payload"], payload);
    assert_eq!(d["at"], "2025-01-15T10:00:00.000Z", "virtual time");
    // The log endpoint shows the same entry.
    assert_eq!(deliveries(&sb).await, log);
}

#[tokio::test]
async fn jwt_webhook_verifies_against_the_published_keys() {
    let sb = sandbox().await;
    let rx = Receiver::start(204, Duration::ZERO).await;
    set_target(&sb, &rx.url, "jwt").await;
    let payload = json!({"connectionId": "c1", "syncId": "s1"});
    let (id, log) = test_event(&sb, "user-2", "syncCompleted", payload.clone()).await;
    assert_eq!(log[0]["outcome"], "delivered", "204 counts: {log:?}");
    assert_eq!(log[0]["format"], "jwt");

    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content_type, "application/jwt");
    let jwt = got[0].body.trim();

    let jwks: JwkSet =
        http().get(format!("{}/oidc/certs", sb.base_url())).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("kid published in /oidc/certs");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[sb.client_id()]);
    validation.set_issuer(&[sb.base_url()]);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("signature, iss and aud verify")
        .claims;
    assert_eq!(claims["iss"], sb.base_url(), "iss has no /oidc");
    assert_eq!(claims["aud"], sb.client_id());
    assert_eq!(claims["sub"], "user-2");
    assert_eq!(claims["jti"], id);
    assert_eq!(claims["iat"], crate::support::t0().timestamp(), "virtual time");
    assert_eq!(claims["events"], json!({"urn:com:moneyhub:events:sync-completed": payload}));

    // A tampered token does not verify (the check above can fail).
    let mut parts: Vec<&str> = jwt.split('.').collect();
    let other = base64_claims(&json!({"sub": "someone-else"}));
    parts[1] = &other;
    assert!(jsonwebtoken::decode::<Value>(
        &parts.join("."),
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation
    )
    .is_err());
}

fn base64_claims(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn a_failed_delivery_is_logged_and_never_retried() {
    let sb = sandbox().await;
    let rx = Receiver::start(500, Duration::ZERO).await;
    set_target(&sb, &rx.url, "json").await;
    let (first, log) = test_event(&sb, "u", "newTransactions", json!({"accounts": []})).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["status"], 500);
    // Later deliveries go after anything pending (a retry would be pending): send another
    // event and flush, then each id must have reached the receiver exactly once.
    let (second, _) = test_event(&sb, "u", "newTransactions", json!({"accounts": []})).await;
    flush(&sb).await;
    let ids: Vec<String> = rx
        .received()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![first.clone(), second]);
    let log = deliveries(&sb).await;
    assert_eq!(log.iter().filter(|d| d["webhookId"] == first.as_str()).count(), 1);
    assert!(log.iter().all(|d| d["outcome"] == "failed"));
}

#[tokio::test]
async fn unreachable_receiver_fails_with_a_connection_error() {
    let sb = sandbox().await;
    // Bind then close a port, so nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    set_target(&sb, &format!("http://127.0.0.1:{port}/hook"), "json").await;
    let (_, log) = test_event(&sb, "u", "syncCompleted", json!({})).await;
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["status"], Value::Null);
    assert!(log[0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{log:?}");
}

#[tokio::test]
async fn a_slow_receiver_is_cut_at_five_seconds() {
    let sb = sandbox().await;
    let rx = Receiver::start(200, Duration::from_secs(7)).await;
    set_target(&sb, &rx.url, "json").await;
    let (_, log) = test_event(&sb, "u", "syncCompleted", json!({})).await;
    assert_eq!(log.len(), 1);
    let d = &log[0];
    assert_eq!(d["outcome"], "failed", "{d}");
    assert_eq!(d["status"], Value::Null);
    assert!(d["error"].as_str().unwrap().contains("timed out"), "{d}");
    let ms = d["durationMs"].as_u64().unwrap();
    // Cut at 5 s, not at 6 (nor when the receiver finally answers at 7).
    assert!((4900..5800).contains(&ms), "durationMs {ms}");
    flush(&sb).await;
    assert_eq!(rx.received().len(), 1, "exactly one request reached the receiver");
}

#[tokio::test]
async fn chaos_drop_sends_nothing_and_logs_dropped() {
    let sb = sandbox().await;
    let rx = Receiver::start(200, Duration::ZERO).await;
    set_target(&sb, &rx.url, "json").await;
    let (status, body) = control(&sb, Method::PUT, "/webhooks/chaos", Some(json!({"drop": 1.0}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"drop": 1.0, "duplicate": 0.0, "reorder": 0.0}));
    for _ in 0..3 {
        let (_, log) = test_event(&sb, "u", "syncCompleted", json!({})).await;
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["outcome"], "dropped");
    }
    flush(&sb).await;
    assert!(rx.received().is_empty());
    // Switching chaos off delivers again.
    control(&sb, Method::PUT, "/webhooks/chaos", Some(json!({}))).await;
    let (_, log) = test_event(&sb, "u", "syncCompleted", json!({})).await;
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test]
async fn chaos_duplicate_sends_twice() {
    let sb = sandbox().await;
    let rx = Receiver::start(200, Duration::ZERO).await;
    set_target(&sb, &rx.url, "json").await;
    let (status, _) =
        control(&sb, Method::PUT, "/webhooks/chaos", Some(json!({"duplicate": 1.0, "reorder": true}))).await;
    assert_eq!(status, StatusCode::OK);
    let (id, log) = test_event(&sb, "u", "syncCompleted", json!({"n": 1})).await;
    let outcomes: Vec<&str> = log.iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["delivered", "duplicate"]);
    assert_eq!(log[1]["duplicate"], true);
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body, "the same webhook twice");
    assert_eq!(serde_json::from_str::<Value>(&got[0].body).unwrap()["id"], id);
}

#[tokio::test]
async fn chaos_settings_are_validated() {
    let sb = sandbox().await;
    for bad in [json!({"drop": 1.5}), json!({"duplicate": -0.1}), json!({"reorder": 2}), json!({"bogus": 1})]
    {
        let (status, body) = control(&sb, Method::PUT, "/webhooks/chaos", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, body) = control(&sb, Method::GET, "/webhooks/chaos", None).await;
    assert_eq!(body, json!({"drop": 0.0, "duplicate": 0.0, "reorder": 0.0}));
}

#[tokio::test]
async fn the_target_is_validated_and_controls_recording() {
    let sb = sandbox().await;
    let (_, body) = control(&sb, Method::GET, "/webhooks", None).await;
    assert_eq!(body, json!({"url": null, "format": null, "recording": false}));
    for bad in [
        json!({"url": "ftp://example.com/x"}),
        json!({"url": "not a url"}),
        json!({"url": "http://example.com", "format": "xml"}),
        json!({"format": "json"}),
        json!({"url": 7}),
    ] {
        let (status, body) = control(&sb, Method::PUT, "/webhooks", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let (status, body) =
        control(&sb, Method::POST, "/webhooks/test", Some(json!({"userId": "u", "eventType": "x"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no target: {body}");

    // Off loopback only with the opt-in (see control_gate for the refusal).
    let (status, body) = control(
        &sb,
        Method::PUT,
        "/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/hook", "format": "JWT"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"url": "http://127.0.0.1:9/hook", "format": "jwt", "recording": true}));
    let (_, body) = control(&sb, Method::GET, "/webhooks", None).await;
    assert_eq!(body["format"], "jwt");
    let (status, body) = control(&sb, Method::PUT, "/webhooks", Some(json!({"url": null}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"url": null, "format": null, "recording": false}));
}

#[tokio::test]
async fn a_target_in_the_config_is_used_from_the_start() {
    let rx = Receiver::start(200, Duration::ZERO).await;
    let sb = crate::support::sandbox_with(moneyhub_sandbox::SandboxConfig {
        clock: moneyhub_sandbox::ClockMode::Frozen(crate::support::t0()),
        webhook: Some(moneyhub_sandbox::WebhookTarget {
            url: rx.url.clone(),
            format: moneyhub_sandbox::WebhookFormat::Json,
        }),
        ..Default::default()
    })
    .await;
    let (_, body) = control(&sb, Method::GET, "/webhooks", None).await;
    assert_eq!(body["recording"], true);
    let (_, log) = test_event(&sb, "u", "syncCompleted", json!({})).await;
    assert_eq!(log[0]["outcome"], "delivered");

    let bad = moneyhub_sandbox::spawn(moneyhub_sandbox::SandboxConfig {
        webhook: Some(moneyhub_sandbox::WebhookTarget {
            url: "nonsense".into(),
            format: moneyhub_sandbox::WebhookFormat::Json,
        }),
        ..Default::default()
    })
    .await;
    assert!(bad.is_err(), "an invalid configured target is refused at start");
}

#[tokio::test]
async fn store_events_of_a_new_connection_are_delivered() {
    let sb = sandbox().await;
    let rx = Receiver::start(200, Duration::ZERO).await;
    set_target(&sb, &rx.url, "json").await;
    let user = create_user(&sb).await;
    let (status, body) =
        control(&sb, Method::POST, "/connections", Some(json!({"userId": user, "bankId": MOCK}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let connection_id = body["connectionId"].as_str().unwrap().to_string();

    // The worker delivers by itself (woken or within its 100 ms poll): wait for the
    // `syncCompleted` of this connection, with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let events: Vec<Value> = loop {
        let events: Vec<Value> =
            rx.received().iter().map(|r| serde_json::from_str::<Value>(&r.body).unwrap()).collect();
        if events.iter().any(|e| e["eventType"] == "syncCompleted") {
            break events;
        }
        assert!(tokio::time::Instant::now() < deadline, "no syncCompleted within 10 s: {events:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let done = events.iter().find(|e| e["eventType"] == "syncCompleted").unwrap();
    assert_eq!(done["userId"], user.as_str());
    assert_eq!(done["payload"]["connectionId"], connection_id.as_str());
    assert_eq!(done["payload"]["processingStatus"], "success");
    assert!(events.iter().all(|e| e["userId"] == user.as_str()));

    // Every delivery is logged as delivered, and ids are unique.
    flush(&sb).await;
    let log = deliveries(&sb).await;
    assert!(!log.is_empty());
    assert!(log.iter().all(|d| d["outcome"] == "delivered"), "{log:?}");
    let ids: HashSet<&str> = log.iter().map(|d| d["webhookId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), log.len());
}

#[tokio::test]
async fn nothing_is_recorded_without_a_target() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let (status, _) =
        control(&sb, Method::POST, "/connections", Some(json!({"userId": user, "bankId": MOCK}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let report = flush(&sb).await;
    assert_eq!(report["attempts"], 0);
    assert_eq!(report["dropped"], 0);
    let (_, body) = control(&sb, Method::GET, "/webhooks/deliveries", None).await;
    assert_eq!(body["meta"]["pending"], 0);
    assert_eq!(body["data"], json!([]));
}

/// The clock never jumps while a webhook is in flight: `POST /__sandbox/clock/advance` waits
/// for the delivery under way to end. A receiver that checks `iat` against the sandbox's clock
/// (a client built on it, as the mirror's tests are) refused the webhook signed before a jump
/// and checked after it: a day away from "now" (1 delivery in ~30,000 of a 60-day run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_does_not_jump_while_a_webhook_is_in_flight() {
    let sb = std::sync::Arc::new(sandbox().await);
    let rx = Receiver::start(200, Duration::from_millis(800)).await;
    set_target(&sb, &rx.url, "jwt").await;
    let payload = json!({"syncId": "s1", "connectionId": "c1", "processingStatus": "success"});
    let fire = {
        let sb = sb.clone();
        tokio::spawn(async move { test_event(&sb, "user-1", "syncCompleted", payload).await })
    };
    // The receiver holds the delivery for 800 ms once it has arrived (a bounded wait for that).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while rx.received().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the delivery arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let signed_at = sb.now();
    let (status, body) = control(&sb, Method::POST, "/clock/advance", Some(json!({"days": 1}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The delivery ended (its log entry is written when the receiver answers) before the
    // clock moved, so it was checked at the time it was signed.
    let log = deliveries(&sb).await;
    assert_eq!(log.len(), 1, "the delivery was over when the clock moved: {log:?}");
    assert_eq!(log[0]["status"], 200, "{log:?}");
    assert_eq!(
        log[0]["at"].as_str().map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap()),
        Some(signed_at)
    );
    let (_, entries) = fire.await.unwrap();
    assert_eq!(entries.len(), 1);
}
