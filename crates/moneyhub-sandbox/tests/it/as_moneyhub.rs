//! Where the official Node client's own tests found the sandbox answering differently from
//! Moneyhub (issue 20, items 13-16): PAR validating too early, payments silently becoming
//! data connections, `Expect: 100-continue` and streamed uploads answered early.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";

/// `GET /oidc/auth?request_uri=...` (redirect not followed).
async fn auth_with(sb: &moneyhub_sandbox::Sandbox, request_uri: &str) -> reqwest::Response {
    http()
        .get(format!("{}/oidc/auth", sb.base_url()))
        .query(&[("client_id", sb.client_id()), ("request_uri", request_uri)])
        .send()
        .await
        .unwrap()
}

async fn pushed(sb: &moneyhub_sandbox::Sandbox, scope: &str, claims: &Value) -> String {
    let claims = claims.to_string();
    let res = par(sb, &[("scope", scope), ("claims", &claims)]).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "PAR {scope} {claims}: {body}");
    let uri = body["request_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"), "{uri}");
    uri
}

#[tokio::test]
async fn par_accepts_what_is_well_formed_and_oidc_auth_refuses_it_with_the_clients_state() {
    let sb = sandbox().await;
    // `getAuthorizeUrlForCreatedUser({userId: "some-user-id"})`: a user the client does not have.
    let claims = json!({"id_token": {"sub": {"essential": true, "value": "some-user-id"},
        "mh:con_id": {"essential": true}}});
    let uri = pushed(&sb, &format!("id:{MOCK} openid"), &claims).await;
    let res = auth_with(&sb, &uri).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let p = location_params(&res);
    assert!(res.headers()["location"].to_str().unwrap().starts_with(REDIRECT_URI));
    assert_eq!(p["error"], "invalid_request", "{p:?}");
    assert_eq!(p["state"], "st-1", "{p:?}");
    assert!(p["error_description"].contains("some-user-id"), "{p:?}");

    // `getReconsentAuthorizeUrlForCreatedUser` naming another user's connection.
    let (_owner, conns) = user_with(&sb, &[MOCK]).await;
    let other = create_user(&sb).await;
    for flow in ["reconsent", "reauth"] {
        let claims = json!({"id_token": {"sub": {"essential": true, "value": other},
            "mh:con_id": {"essential": true, "value": conns[0]}}});
        let uri = pushed(&sb, &format!("openid {flow}"), &claims).await;
        let res = auth_with(&sb, &uri).await;
        assert_eq!(res.status(), StatusCode::FOUND, "{flow}");
        let p = location_params(&res);
        assert_eq!(p["error"], "invalid_request", "{flow}: {p:?}");
        assert_eq!(p["state"], "st-1", "{flow}: {p:?}");
        assert!(p["error_description"].contains("not a connection of this user"), "{flow}: {p:?}");
    }
    // What is malformed is still refused at PAR.
    let res = par(&sb, &[("scope", "openid reconsent"), ("claims", "{\"id_token\": {}}")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn payment_scopes_and_claims_are_refused_as_not_implemented() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let payment = json!({"id_token": {"mh:con_id": {"essential": true},
        "mh:payment": {"essential": true, "value": {"amount": 1, "payeeRef": "ref", "payerRef": "r"}},
        "sub": {"essential": true, "value": user}}});
    let cases = [
        (format!("payment openid id:{MOCK}"), payment.clone(), "payment"),
        (format!("openid id:{MOCK}"), payment.clone(), "mh:payment"),
        (
            format!("reverse_payment openid id:{MOCK}"),
            json!({"id_token": {"mh:reverse_payment": {"value": {}}}}),
            "reverse_payment",
        ),
        (
            format!("recurring_payment:create openid id:{MOCK}"),
            json!({"id_token": {"mh:recurring_payment": {"value": {}}}}),
            "recurring_payment:create",
        ),
        (
            format!("standing_orders:create openid id:{MOCK}"),
            json!({"id_token": {"mh:standing_order": {"value": {}}}}),
            "standing_orders:create",
        ),
    ];
    for (scope, claims, named) in &cases {
        let claims_text = claims.to_string();
        let res = par(&sb, &[("scope", scope), ("claims", &claims_text)]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{scope}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_scope", "{scope}: {body}");
        let d = body["error_description"].as_str().unwrap();
        assert!(d.contains("does not implement payments") && d.contains(named), "{scope}: {d}");
    }
    // At /oidc/auth directly: the same error, redirected with the state.
    let claims = payment.to_string();
    let scope = format!("payment openid id:{MOCK}");
    let res = http()
        .get(format!("{}/oidc/auth", sb.base_url()))
        .query(&[
            ("client_id", sb.client_id()),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", &scope),
            ("state", "pay-1"),
            ("nonce", "n"),
            ("claims", &claims),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let p = location_params(&res);
    assert_eq!(p["error"], "invalid_scope", "{p:?}");
    assert_eq!(p["state"], "pay-1");
    // Reading standing orders is a data scope, not a payment.
    let claims = json!({"id_token": {"sub": {"essential": true, "value": user}}});
    pushed(&sb, &format!("openid id:{MOCK} standing_orders:read"), &claims).await;
}

/// Reads an answer until the peer closes or the body named by Content-Length arrived.
async fn read_answer(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .expect("the answer, not a reset");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0usize);
            if got.len() >= end + 4 + len && !text.starts_with("HTTP/1.1 100") {
                break;
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn expect_100_continue_with_a_50_mb_body_is_answered_413_at_once() {
    let sb = sandbox().await;
    let mut s = TcpStream::connect(sb.addr()).await.unwrap();
    let head = format!(
        "POST /users HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\
         Expect: 100-continue\r\nAuthorization: Bearer x\r\n\r\n",
        sb.addr()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("PayloadTooLarge"), "{answer}");
}

#[tokio::test]
async fn a_streamed_multipart_upload_to_a_route_the_sandbox_does_not_serve_reads_the_404() {
    let sb = sandbox().await;
    let (user, _) = user_with(&sb, &[MOCK]).await;
    let tok = data_token(&sb, &user).await;
    let txs = all_transactions(&sb, &user).await;
    let tx = txs[0]["id"].as_str().unwrap();
    // As the official client's `addFileToTransaction` sends it: multipart, streamed (chunked).
    for _ in 0..3 {
        let mut s = TcpStream::connect(sb.addr()).await.unwrap();
        let boundary = "----sandbox-upload";
        let head = format!(
            "POST /v2.0/transactions/{tx}/files HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {tok}\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n",
            sb.addr()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut parts = vec![format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"receipt.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .into_bytes()];
        parts.extend(std::iter::repeat_n(vec![0x89u8; 32 * 1024], 12));
        parts.push(format!("\r\n--{boundary}--\r\n").into_bytes());
        for part in parts {
            s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                .await
                .expect("the sandbox reads the upload");
            s.write_all(&part).await.expect("the sandbox reads the upload");
            s.write_all(b"\r\n").await.expect("the sandbox reads the upload");
            tokio::task::yield_now().await;
        }
        s.write_all(b"0\r\n\r\n").await.expect("the sandbox reads the upload");
        let answer = read_answer(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        assert!(answer.contains("The sandbox does not implement POST"), "{answer}");
    }
}
