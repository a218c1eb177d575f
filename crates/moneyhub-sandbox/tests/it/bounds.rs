//! The second round of attacks (issue 20, items 1-5): dates out of range, memory kept without
//! a byte bound, the form_post page's headers and the control token in the request log.

use moneyhub_sandbox::kit::Control;
use moneyhub_sandbox::{ClockMode, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const FAR: &str = "+262142-12-31T23:59:57Z";

/// The sandbox still answers (its process, and its clock, are fine).
async fn still_serving(sb: &moneyhub_sandbox::Sandbox) {
    let (status, body) = control(sb, Method::GET, "/clock", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = control(sb, Method::GET, "/stats", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn dates_beyond_the_clocks_range_are_refused_and_nothing_overflows() {
    let sb = sandbox().await;
    // The clock cannot be sent to year 262142 (the process died on the next tick).
    let (status, body) = control(&sb, Method::POST, "/clock/advance", Some(json!({"to": FAR}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("to must lie"), "{body}");
    let (status, body) =
        control(&sb, Method::POST, "/clock/advance", Some(json!({"to": "2046-01-15T10:00:00Z"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "more than 20 years at once: {body}");
    assert_eq!(sb.now(), t0());
    still_serving(&sb).await;

    // A connection whose consent ends in year 262142 (listing the connections died).
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let (status, body) = control(
        &sb,
        Method::POST,
        "/connections",
        Some(json!({"userId": user, "bankId": MOCK, "expiresAt": FAR})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("expiresAt"), "{body}");
    let (status, body) =
        control(&sb, Method::PATCH, &format!("/connections/{}", conns[0]), Some(json!({"expiresAt": FAR})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = control(
        &sb,
        Method::PUT,
        &format!("/connections/{}/state", conns[0]),
        Some(json!({"state": "failing", "since": FAR})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(connection(&sb, &user, &conns[0]).await["id"], conns[0]);

    // Scenario files: the same range for their dates, the API's limits for their texts.
    for (scenario, field) in [
        (json!({"clock": {"start": FAR}}), "start"),
        (
            json!({"users": [{"clientUserId": "u", "connections": [{"bank": MOCK, "state": "failing", "since": FAR}]}]}),
            "since",
        ),
        (json!({"users": [{"clientUserId": "u".repeat(257)}]}), "clientUserId"),
        (
            json!({"users": [{"clientUserId": "u", "connections": [{"bank": MOCK, "key": "k".repeat(257)}]}]}),
            "key",
        ),
    ] {
        let (status, body) = control(
            &sb,
            Method::POST,
            "/scenario",
            Some(json!({"text": scenario.to_string(), "format": "json"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scenario}: {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{field}: {body}");
    }
    still_serving(&sb).await;
}

#[tokio::test]
async fn the_clock_stops_at_the_end_of_year_9999_instead_of_overflowing() {
    let end = chrono::DateTime::parse_from_rfc3339("9999-12-01T00:00:00Z").unwrap().to_utc();
    let sb = sandbox_with(SandboxConfig { clock: ClockMode::Frozen(end), ..Default::default() }).await;
    let (user, _) = user_with(&sb, &[MOCK]).await;
    let (status, body) = control(&sb, Method::POST, "/clock/advance", Some(json!({"days": 60}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("9999"), "{body}");
    let (status, body) = control(&sb, Method::POST, "/clock/advance", Some(json!({"days": 20}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tok = token(&sb, "connection:read", None).await;
    let (status, body) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &tok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A start out of range is refused before serving.
    let far: chrono::DateTime<chrono::Utc> = FAR.parse().unwrap();
    let refused =
        moneyhub_sandbox::spawn(SandboxConfig { clock: ClockMode::Frozen(far), ..Default::default() });
    assert!(refused.await.is_err());
}

async fn retained(sb: &moneyhub_sandbox::Sandbox) -> Value {
    let (status, body) = control(sb, Method::GET, "/stats", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["retained"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_kept_within_a_byte_bound() {
    let sb = sandbox().await;
    let base = sb.base_url().to_string();
    let client = http();
    // 300 public requests with 60 KB query strings: the log keeps at most 2 KiB of each.
    let long = "q=".to_string() + &"x".repeat(60_000);
    for _ in 0..300 {
        let res = client.get(format!("{base}/oidc/certs?{long}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let r = retained(&sb).await;
    let bytes = r["requestLogBytes"].as_u64().unwrap();
    let entries = r["requestLogEntries"].as_u64().unwrap();
    assert!(entries >= 300, "{r}");
    assert!(bytes < entries * 3 * 1024, "60 KB queries kept whole: {r}");
    let (_, log) = control(&sb, Method::GET, "/requests?limit=5", None).await;
    let e = log["data"].as_array().unwrap().iter().find(|e| e["path"] == "/oidc/certs").unwrap().clone();
    assert_eq!(e["truncated"], true, "{e}");
    assert!(e["query"].as_str().unwrap().ends_with("...[truncated]"), "{e}");

    // 2,000 made-up methods (60 KB long for some): one `other` series, not one per method.
    let long_method = "X".repeat(60_000);
    for i in 0..2000 {
        let m = if i % 100 == 0 { long_method.clone() } else { format!("M{i}") };
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let _ = client.request(method, format!("{base}/v3/accounts")).send().await;
    }
    let r = retained(&sb).await;
    assert!(r["metricSeries"].as_u64().unwrap() < 20, "{r}");
    let (_, metrics) = control(&sb, Method::GET, "/metrics", None).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(metrics.len() < 64 * 1024, "{} bytes of metrics", metrics.len());

    // 40 webhooks of 1 MiB each: the delivery log keeps a marker, not the payloads.
    let receiver = Receiver::start(200, std::time::Duration::ZERO).await;
    set_target(&sb, &receiver.url, "json").await;
    let before = retained(&sb).await["deliveryLogBytes"].as_u64().unwrap();
    let big = "y".repeat(1024 * 1024);
    for _ in 0..40 {
        let (status, body) = control(
            &sb,
            Method::POST,
            "/webhooks/test",
            Some(json!({"userId": "u", "eventType": "syncCompleted", "payload": {"blob": big}})),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    let after = retained(&sb).await["deliveryLogBytes"].as_u64().unwrap();
    assert!(after - before < 40 * 16 * 1024, "{before} -> {after}");
    let (_, d) = control(&sb, Method::GET, "/webhooks/deliveries", None).await;
    let last = d["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["payloadTruncated"], true, "{last}");
    assert_eq!(last["payload"]["truncated"], true, "{last}");
}

#[tokio::test]
async fn the_control_token_given_as_a_query_parameter_is_never_kept() {
    let sb = sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        control_token: Some("s3cret-token".into()),
        ..Default::default()
    })
    .await;
    let ui = format!("{}/__sandbox/ui", sb.base_url());
    // A control route (the dashboard keeps its own `/__sandbox/ui` traffic out of the log it
    // shows, so that would prove nothing about the page).
    let clock = format!("{}/__sandbox/clock", sb.base_url());
    for guess in ["wrong-guess-1", "s3cret-token"] {
        let _ = http().get(format!("{clock}?token={guess}&x=1")).send().await.unwrap();
        let _ = http().get(format!("{clock}?%74oken={guess}")).send().await.unwrap();
    }
    let kit = Control::of(&sb).with_token(Some("s3cret-token".into()));
    let (status, log) = kit.call(Method::GET, "/requests", None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let text = log.to_string();
    assert!(!text.contains("s3cret-token") && !text.contains("wrong-guess-1"), "{text}");
    assert!(text.contains("token=[redacted]&x=1"), "{text}");
    // The dashboard shows the log: redacted there too.
    let page = http().get(&ui).bearer_auth("s3cret-token").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("redacted"), "the dashboard shows the requests");
    assert!(!page.contains("s3cret-token") && !page.contains("wrong-guess-1"));
}

#[tokio::test]
async fn the_form_post_page_has_the_headers_of_every_other_page() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let claims = json!({"id_token": {"sub": {"essential": true, "value": user}}}).to_string();
    let scope = format!("openid id:{MOCK}");
    let res = http()
        .get(format!("{}/oidc/auth", sb.base_url()))
        .query(&[
            ("client_id", sb.client_id()),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("response_mode", "form_post"),
            ("scope", &scope),
            ("state", "fp"),
            ("claims", &claims),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    let csp = h.get("content-security-policy").expect("a CSP").to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let origin = url::Url::parse(REDIRECT_URI).unwrap().origin().ascii_serialization();
    assert!(csp.contains(&format!("form-action {origin}")), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"code\"") && !html.contains("onload="), "{html}");
}

#[tokio::test]
async fn methods_the_sandbox_does_not_serve_answer_the_not_implemented_404() {
    let sb = sandbox().await;
    let (user, conns) = user_with(&sb, &[MOCK]).await;
    let tok = data_token(&sb, &user).await;
    let txs = all_transactions(&sb, &user).await;
    let tx = txs[0]["id"].as_str().unwrap();
    for (method, path) in [
        (Method::POST, "/v3/accounts".to_string()),
        (Method::PATCH, format!("/v3/transactions/{tx}")),
        (Method::DELETE, format!("/v2.0/transactions/{tx}")),
        (Method::PUT, "/users".to_string()),
        (Method::GET, format!("/v3/sync/{}", conns[0])),
        (Method::DELETE, "/oidc/token".to_string()),
        (Method::from_bytes(b"BREW").unwrap(), "/v3/accounts".to_string()),
        (Method::GET, "/no/such/route".to_string()),
    ] {
        let res =
            http().request(method.clone(), format!("{}{path}", sb.base_url())).bearer_auth(&tok).send().await;
        let res = res.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "NotFound", "{method} {path}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("The sandbox does not implement {method} ")), "{message}");
    }
}

#[tokio::test]
async fn v2_serves_the_v2_0_routes_and_accounts_list_leaves_transaction_data_out_unless_asked() {
    let sb = sandbox().await;
    let (user, _) = user_with(&sb, &[MOCK]).await;
    let tok = data_token(&sb, &user).await;
    let base = sb.base_url();
    let (status, v20) = get_json(&format!("{base}/v2.0/accounts"), &tok).await;
    assert_eq!(status, StatusCode::OK, "{v20}");
    let (status, v2) = get_json(&format!("{base}/v2/accounts"), &tok).await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["data"], v20["data"]);
    assert!(v2["data"].as_array().unwrap().iter().any(|a| a.get("transactionData").is_some()));
    for prefix in ["v2", "v2.0"] {
        let (status, list) = get_json(&format!("{base}/{prefix}/accounts-list"), &tok).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert!(!list["data"].as_array().unwrap().is_empty());
        assert!(
            list["data"].as_array().unwrap().iter().all(|a| a.get("transactionData").is_none()),
            "{list}"
        );
        let (_, asked) =
            get_json(&format!("{base}/{prefix}/accounts-list?showTransactionData=true"), &tok).await;
        assert!(
            asked["data"].as_array().unwrap().iter().any(|a| a.get("transactionData").is_some()),
            "{asked}"
        );
    }
    let (status, body) = get_json(&format!("{base}/v2/transactions?limit=1"), &tok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Fault rules and pushed authorisation requests are bounded by bytes, not only by count:
/// a clear 4xx when over (issue 20, noticed after item 2).
#[tokio::test]
async fn fault_rules_and_pushed_requests_are_bounded_by_bytes() {
    let sb = sandbox().await;
    // One rule of 20 KB: refused, saying why.
    let big = "m".repeat(20_000);
    let (status, body) =
        control(&sb, Method::POST, "/faults", Some(json!({"path": "/v3/accounts", "message": big}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most 16384"), "{body}");
    // Rules of 10 KB each: about a hundred fit in 1 MiB, then a clear refusal.
    let ten = "m".repeat(10_000);
    let mut added = 0;
    let refused = loop {
        let (status, body) =
            control(&sb, Method::POST, "/faults", Some(json!({"path": "/v3/accounts", "message": ten})))
                .await;
        if status != StatusCode::CREATED {
            break (status, body);
        }
        added += 1;
        assert!(added < 200, "1 MiB of rules not enforced");
    };
    assert_eq!(refused.0, StatusCode::BAD_REQUEST, "{}", refused.1);
    assert!(refused.1["message"].as_str().unwrap().contains("remove some"), "{}", refused.1);
    assert!((90..=105).contains(&added), "{added} rules of 10 KB");
    let (status, _) = control(&sb, Method::DELETE, "/faults", None).await;
    assert!(status.is_success());

    // One pushed request of 300 KB of parameters: 413, as OAuth's error object.
    let state = "s".repeat(60_000);
    let mut form: Vec<(String, String)> = (0..5).map(|i| (format!("x{i}"), state.clone())).collect();
    form.push(("scope".into(), "openid id:1ffe704d39629a929c8e293880fb449a".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let res = par(&sb, &form).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("at most 262144"), "{body}");
    still_serving(&sb).await;
}
