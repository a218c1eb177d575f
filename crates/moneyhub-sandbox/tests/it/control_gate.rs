//! The control API refuses what a foreign web page, a DNS-rebinding page or a caller without
//! the token could send (issue 11 #6, issue 13 #4), and the webhook target stays on loopback
//! unless opted out.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{control, http, sandbox, sandbox_with, t0};

fn advance_url(sb: &moneyhub_sandbox::Sandbox) -> String {
    format!("{}/__sandbox/clock/advance", sb.base_url())
}

/// Sends a raw HTTP/1.1 request with the given `Host` and returns the status code.
async fn raw_status(sb: &moneyhub_sandbox::Sandbox, request: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(sb.addr()).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    let text = String::from_utf8_lossy(&got);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"))
}

#[tokio::test]
async fn a_text_plain_post_does_not_advance_the_clock() {
    let sb = sandbox().await;
    let before = sb.now();
    let res = http()
        .post(advance_url(&sb))
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"hours": 24}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("application/json"), "{body}");
    assert_eq!(sb.now(), before);
    // A body without any Content-Type is refused too; JSON is accepted.
    let res = http().post(advance_url(&sb)).body(r#"{"hours": 24}"#).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = http()
        .post(advance_url(&sb))
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(r#"{"hours": 24}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(sb.now(), before + chrono::Duration::hours(24));
}

#[tokio::test]
async fn a_foreign_origin_is_refused() {
    let sb = sandbox().await;
    let before = sb.now();
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let res = http()
            .post(advance_url(&sb))
            .header(ORIGIN, origin)
            .json(&json!({"hours": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "Origin {origin}");
    }
    let res = http()
        .post(advance_url(&sb))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"hours": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(sb.now(), before);
    // The sandbox's own origin (a page it served, or a tool that sends it) is fine.
    let res = http()
        .post(advance_url(&sb))
        .header(ORIGIN, sb.base_url())
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"hours": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The public routes are not the control API: a browser may call them from anywhere.
    let res = http()
        .get(format!("{}/oidc/.well-known/openid-configuration", sb.base_url()))
        .header(ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_host_cannot_redirect_the_webhooks() {
    let sb = sandbox().await;
    let port = sb.addr().port();
    let body = r#"{"url": "http://127.0.0.1:9/stolen"}"#;
    let put = |host: &str| {
        format!(
            "PUT /__sandbox/webhooks HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    // A DNS-rebinding page reaches 127.0.0.1 under its own name.
    assert_eq!(raw_status(&sb, &put(&format!("evil.example:{port}"))).await, 403);
    assert_eq!(raw_status(&sb, &put("127.0.0.1:1")).await, 403);
    let (_, target) = control(&sb, Method::GET, "/webhooks", None).await;
    assert_eq!(target["url"], Value::Null);
    // The names of the address served are accepted.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("LOCALHOST:{port}")] {
        assert_eq!(raw_status(&sb, &put(&host)).await, 200, "Host {host}");
    }
}

#[tokio::test]
async fn a_webhook_target_off_loopback_needs_the_opt_in() {
    let sb = sandbox().await;
    for url in ["https://example.com/hook", "http://10.1.2.3/hook", "http://[2001:db8::1]/hook"] {
        let (status, body) = control(&sb, Method::PUT, "/webhooks", Some(json!({"url": url}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(body["message"].as_str().unwrap().contains("loopback"), "{body}");
    }
    let opted = sandbox_with(moneyhub_sandbox::SandboxConfig {
        clock: moneyhub_sandbox::ClockMode::Frozen(t0()),
        allow_remote_webhooks: true,
        ..Default::default()
    })
    .await;
    let (status, body) =
        control(&opted, Method::PUT, "/webhooks", Some(json!({"url": "https://example.com/hook"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A target in the configuration is held to the same rule.
    let refused = moneyhub_sandbox::spawn(moneyhub_sandbox::SandboxConfig {
        webhook: Some(moneyhub_sandbox::WebhookTarget {
            url: "https://example.com/hook".into(),
            format: moneyhub_sandbox::WebhookFormat::Json,
        }),
        ..Default::default()
    })
    .await;
    assert!(refused.unwrap_err().to_string().contains("loopback"));
}

#[tokio::test]
async fn with_a_control_token_every_control_request_needs_it() {
    let sb = sandbox_with(moneyhub_sandbox::SandboxConfig {
        clock: moneyhub_sandbox::ClockMode::Frozen(t0()),
        control_token: Some("s3cret-token".into()),
        ..Default::default()
    })
    .await;
    let url = format!("{}/__sandbox/clock", sb.base_url());
    assert_eq!(http().get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let wrong = http().get(&url).header(AUTHORIZATION, "Bearer s3cret-tokeN").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let text = wrong.text().await.unwrap();
    assert!(!text.contains("s3cret"), "the token is not echoed: {text}");
    let ok = http().get(&url).header(AUTHORIZATION, "Bearer s3cret-token").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // With the token, the sandbox may be reached under a container's name.
    let port = sb.addr().port();
    let get = format!(
        "GET /__sandbox/clock HTTP/1.1\r\nHost: sandbox:{port}\r\nAuthorization: Bearer s3cret-token\r\n\
         Connection: close\r\n\r\n"
    );
    assert_eq!(raw_status(&sb, &get).await, 200);
    // The public routes need no token.
    let res = http().get(format!("{}/oidc/.well-known/openid-configuration", sb.base_url())).send().await;
    assert_eq!(res.unwrap().status(), StatusCode::OK);
    assert!(!format!(
        "{:?}",
        moneyhub_sandbox::SandboxConfig { control_token: Some("s3cret-token".into()), ..Default::default() }
    )
    .contains("s3cret"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_healthz_answers() {
    let sb = sandbox().await;
    let (status, body) = control(&sb, Method::GET, "/healthz", None).await;
    assert_eq!((status, body), (StatusCode::OK, Value::String("ok".into())));
    for _ in 0..2 {
        let res = http().get(format!("{}/oidc/.well-known/openid-configuration", sb.base_url())).send().await;
        assert_eq!(res.unwrap().status(), StatusCode::OK);
    }
    let res = http().get(format!("{}/no/such/route", sb.base_url())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = http().get(format!("{}/__sandbox/metrics", sb.base_url())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    for line in [
        "# TYPE moneyhub_sandbox_requests_total counter",
        "moneyhub_sandbox_requests_total{method=\"GET\",route=\"/oidc/.well-known/openid-configuration\",status=\"200\"} 2",
        "moneyhub_sandbox_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "moneyhub_sandbox_requests_total{method=\"GET\",route=\"/__sandbox/healthz\",status=\"200\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
}
