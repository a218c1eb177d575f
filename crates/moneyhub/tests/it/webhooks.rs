//! Webhook verification: signed JWTs from the sandbox (typed and unknown events), unsigned
//! JSON only by opt-in, tampering, wrong audience, stale `iat`, `alg: none`.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use moneyhub::{ErrorKind, WebhookEvent, WebhookEventType};
use moneyhub_sandbox::{ClientRegistration, ClockMode, SandboxConfig};
use moneyhub_types::ProcessingStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{advance, builder, control, env, sandbox_with, t0, user_with, MOCK_BANK};

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A local receiver recording every delivery (content type and body).
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                store.lock().unwrap().push((ct, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, received)
}

/// Sends a synthetic event through the sandbox and returns what the receiver got for it.
async fn deliver(
    sb: &moneyhub_sandbox::Sandbox,
    received: &Received,
    user: &str,
    event_type: &str,
    payload: Value,
) -> (String, String, Vec<u8>) {
    let (status, body) = control(
        sb,
        Method::POST,
        "/webhooks/test",
        Some(json!({"userId": user, "eventType": event_type, "payload": payload})),
    )
    .await;
    assert!(status.is_success(), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["deliveries"][0]["status"], 200, "{body}");
    // Our event was delivered last (pending events go first).
    let (ct, bytes) = received.lock().unwrap().last().cloned().unwrap();
    (id, ct, bytes)
}

async fn set_target(sb: &moneyhub_sandbox::Sandbox, url: &str, format: &str) {
    let (status, body) =
        control(sb, Method::PUT, "/webhooks", Some(json!({"url": url, "format": format}))).await;
    assert!(status.is_success(), "{body}");
}

#[tokio::test]
async fn signed_jwt_webhooks_are_verified_and_typed() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let (url, received) = receiver().await;
    set_target(&e.sandbox, &url, "jwt").await;

    let payload = json!({"completedAt": "2025-01-15T10:00:07.000Z", "processingStatus": "success",
        "syncId": "9f3678b2-9fd1-47dd-8b69-4eab49bd2d66", "connectionId": ids[0]});
    let (id, ct, body) = deliver(&e.sandbox, &received, user.as_str(), "syncCompleted", payload).await;
    assert_eq!(ct, "application/jwt");
    let verified = e.client.webhooks().verify(&body, &ct).await.unwrap();
    assert_eq!(verified.id.to_string(), id, "jti is the webhook id");
    assert!(verified.signed);
    assert_eq!(verified.user_id.as_ref(), Some(&user));
    assert_eq!(verified.event_type, WebhookEventType::SyncCompleted);
    assert_eq!(verified.issued_at, Some(e.sandbox.now()));
    match &verified.event {
        WebhookEvent::SyncCompleted(p) => {
            assert_eq!(p.processing_status, ProcessingStatus::Success);
            assert_eq!(p.connection_id, ids[0]);
        }
        other => panic!("unexpected {other:?}"),
    }

    // An event this crate does not know keeps its payload.
    let (_, ct, body) =
        deliver(&e.sandbox, &received, user.as_str(), "brandNewThing", json!({"a": [1, 2]})).await;
    let verified = e.client.webhooks().verify(&body, &ct).await.unwrap();
    assert_eq!(verified.event_type, WebhookEventType::Unknown("brandNewThing".into()));
    assert_eq!(
        verified.event,
        WebhookEvent::Unknown { event_type: "brandNewThing".into(), payload: json!({"a": [1, 2]}) }
    );

    // A known event with a bad payload names the field.
    let (_, ct, body) =
        deliver(&e.sandbox, &received, user.as_str(), "deletedAccount", json!({"accountId": 5})).await;
    let err = e.client.webhooks().verify(&body, &ct).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Webhook { .. }), "{err}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("payload.accountId"), "{source}");
}

#[tokio::test]
async fn tampering_alg_none_and_stale_iat_are_refused() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let (url, received) = receiver().await;
    set_target(&e.sandbox, &url, "jwt").await;
    let (_, ct, body) = deliver(
        &e.sandbox,
        &received,
        user.as_str(),
        "deletedAccount",
        json!({"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}),
    )
    .await;
    let token = String::from_utf8(body.clone()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // Payload changed, signature kept.
    claims["sub"] = json!("ffffffffffffffffffffffff");
    let forged_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let err = e.client.webhooks().verify(tampered.as_bytes(), &ct).await.unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");

    // alg none, with or without the signature.
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    for forged in [format!("{none}.{}.", parts[1]), format!("{none}.{}.{}", parts[1], parts[2])] {
        let err = e.client.webhooks().verify(forged.as_bytes(), &ct).await.unwrap_err();
        assert!(err.to_string().contains("not accepted"), "{err}");
    }
    // HS256 "signed" with the public key would be the classic confusion attack.
    let hs = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let err = e
        .client
        .webhooks()
        .verify(format!("{hs}.{}.{}", parts[1], parts[2]).as_bytes(), &ct)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not accepted"), "{err}");

    // Genuine but too old: 11 minutes later (the client's clock follows the sandbox's).
    e.client.webhooks().verify(&body, &ct).await.unwrap();
    advance(&e.sandbox, json!({"minutes": 11})).await;
    let err = e.client.webhooks().verify(&body, &ct).await.unwrap_err();
    assert!(err.to_string().contains("iat"), "{err}");
    e.client.webhooks().iat_window(std::time::Duration::from_secs(3600)).verify(&body, &ct).await.unwrap();
    let err = e.client.webhooks().verify(b"garbage", "text/plain").await.unwrap_err();
    assert!(err.to_string().contains("content type"), "{err}");
}

#[tokio::test]
async fn unsigned_json_only_when_opted_in() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let (url, received) = receiver().await;
    set_target(&e.sandbox, &url, "json").await;
    let payload = json!({"accounts": [{"id": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13",
        "transactions": ["c390a94f-3824-4cdf-8d02-b0c5304d9f66"]}]});
    let (id, ct, body) = deliver(&e.sandbox, &received, user.as_str(), "newTransactions", payload).await;
    assert_eq!(ct, "application/json");
    let err = e.client.webhooks().verify(&body, &ct).await.unwrap_err();
    assert!(err.to_string().contains("unsigned JSON"), "{err}");
    let verified = e
        .client
        .webhooks()
        .allow_unsigned_json(true)
        .verify(&body, "application/json; charset=utf-8")
        .await
        .unwrap();
    assert!(!verified.signed);
    assert_eq!(verified.id.to_string(), id);
    match verified.event {
        WebhookEvent::NewTransactions(p) => assert_eq!(p.accounts[0].transactions.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_webhook_for_another_client_is_refused() {
    let sb = sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        clients: vec![
            ClientRegistration::default(),
            ClientRegistration {
                client_id: "other-client".into(),
                client_secret: Some("other-secret".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    })
    .await;
    let (user, _) = user_with(&sb, &[MOCK_BANK]).await;
    let (url, received) = receiver().await;
    set_target(&sb, &url, "jwt").await;
    let (_, ct, body) = deliver(
        &sb,
        &received,
        user.as_str(),
        "refreshReminder",
        json!({"connectionId": "b:1", "bankName": "Aviva", "periodSinceLastUpdateInDays": 2}),
    )
    .await;
    // Addressed to the user's client: the default one.
    builder(&sb).build().unwrap().webhooks().verify(&body, &ct).await.unwrap();
    let other = builder(&sb)
        .client_id("other-client")
        .client_auth(moneyhub::ClientAuth::secret("other-secret"))
        .build()
        .unwrap();
    let err = other.webhooks().verify(&body, &ct).await.unwrap_err();
    assert!(err.to_string().contains("aud"), "{err}");
}

/// A mock identity service whose JWKS can be rotated, counting JWKS fetches.
struct MockIdentity {
    base: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<std::sync::atomic::AtomicUsize>,
}

async fn mock_identity(initial: Vec<Value>) -> MockIdentity {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(initial));
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b, k, f) = (base.clone(), keys.clone(), fetches.clone());
    let app = Router::new()
        .route(
            "/oidc/.well-known/openid-configuration",
            get(move || {
                let b = b.clone();
                async move {
                    axum::Json(json!({"issuer": format!("{b}/oidc"), "authorization_endpoint": format!("{b}/oidc/auth"),
                        "token_endpoint": format!("{b}/oidc/token"), "jwks_uri": format!("{b}/oidc/certs")}))
                }
            }),
        )
        .route(
            "/oidc/certs",
            get(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    axum::Json(json!({"keys": *k.lock().unwrap()}))
                }
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    MockIdentity { base, keys, fetches }
}

/// A SET signed with test key `which`, named `kid`.
fn set_token(base: &str, which: usize, kid: &str) -> String {
    set_token_with(base, which, kid, |_| {})
}

/// A SET signed with test key `which`, named `kid`, its claims changed by `edit` first.
fn set_token_with(base: &str, which: usize, kid: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.into());
    let mut claims = json!({
        "iss": base, "aud": "mock-client", "sub": "5c79210bbac25ecb5e71ac40",
        "jti": "abe168ce-1b2f-4c38-9c92-db5730485cb3", "iat": chrono::Utc::now().timestamp(),
        "events": {"urn:com:moneyhub:events:deleted-account": {"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}},
    });
    edit(&mut claims);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(crate::support::test_key(which).pem_pkcs8.as_bytes())
        .unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn public_jwk(which: usize, kid: &str) -> Value {
    moneyhub::PrivateKey::from_pem(&crate::support::test_key(which).pem_pkcs8)
        .unwrap()
        .with_kid(kid)
        .public_jwk()
}

#[tokio::test]
async fn jwks_is_refetched_for_an_unknown_kid_at_most_once_per_interval() {
    use std::sync::atomic::Ordering::SeqCst;
    let mock = mock_identity(vec![public_jwk(0, "a")]).await;
    let client = |interval: std::time::Duration| {
        moneyhub::Client::builder()
            .identity_url(&mock.base)
            .client_id("mock-client")
            .client_auth(moneyhub::ClientAuth::secret("mock-secret"))
            .jwks_refetch_interval(interval)
            .build()
            .unwrap()
    };
    let patient = client(std::time::Duration::from_secs(60));
    let eager = client(std::time::Duration::ZERO);
    let a = set_token(&mock.base, 0, "a");
    let b = set_token(&mock.base, 1, "b");
    patient.webhooks().verify(a.as_bytes(), "application/jwt").await.unwrap();
    eager.webhooks().verify(a.as_bytes(), "application/jwt").await.unwrap();
    assert_eq!(mock.fetches.load(SeqCst), 2, "one fetch per client");
    patient.webhooks().verify(a.as_bytes(), "application/jwt").await.unwrap();
    assert_eq!(mock.fetches.load(SeqCst), 2, "known kid: cached");

    // Moneyhub rotates its keys.
    mock.keys.lock().unwrap().push(public_jwk(1, "b"));
    let err = patient.webhooks().verify(b.as_bytes(), "application/jwt").await.unwrap_err();
    assert!(err.to_string().contains("kid"), "{err}");
    assert_eq!(mock.fetches.load(SeqCst), 2, "no refetch within the interval");
    let ok = eager.webhooks().verify(b.as_bytes(), "application/jwt").await.unwrap();
    assert_eq!(ok.event_type, WebhookEventType::DeletedAccount);
    assert_eq!(mock.fetches.load(SeqCst), 3, "the unknown kid made the eager client refetch once");
    // A kid nobody knows: one refetch, then a clear error.
    let forged = set_token(&mock.base, 0, "zzz");
    assert!(eager.webhooks().verify(forged.as_bytes(), "application/jwt").await.is_err());
    assert_eq!(mock.fetches.load(SeqCst), 4);
    // Signed by key a but claiming to be b: the signature does not verify.
    let confused = set_token(&mock.base, 0, "b");
    let err = eager.webhooks().verify(confused.as_bytes(), "application/jwt").await.unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
}

#[tokio::test]
async fn exp_nbf_and_sub_are_enforced_on_signed_webhooks() {
    let mock = mock_identity(vec![public_jwk(0, "a")]).await;
    let client = moneyhub::Client::builder()
        .identity_url(&mock.base)
        .client_id("mock-client")
        .client_auth(moneyhub::ClientAuth::secret("mock-secret"))
        .build()
        .unwrap();
    let verify = |edit: Box<dyn FnOnce(&mut Value)>| {
        let token = set_token_with(&mock.base, 0, "a", edit);
        let client = client.clone();
        async move { client.webhooks().verify(token.as_bytes(), "application/jwt").await }
    };
    let now = chrono::Utc::now().timestamp();
    let new_tx = json!({"urn:com:moneyhub:events:new-transactions":
        {"accounts": [{"id": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13", "transactions": ["c390a94f-3824-4cdf-8d02-b0c5304d9f66"]}]}});

    // Accepted: exp ahead, nbf behind, and both within the leeway (60 s) either way.
    for (exp, nbf) in [(now + 300, now - 300), (now - 30, now + 30)] {
        let v = verify(Box::new(move |c| {
            c["exp"] = json!(exp);
            c["nbf"] = json!(nbf);
        }))
        .await
        .unwrap_or_else(|e| panic!("exp {exp} nbf {nbf}: {e}"));
        assert_eq!(v.event_type, WebhookEventType::DeletedAccount);
    }
    // Refused: expired, not yet valid, or a claim that is not a NumericDate.
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let refused: Vec<(Edit, &str)> = vec![
        (Box::new(move |c| c["exp"] = json!(now - 120)), "expired"),
        (Box::new(move |c| c["nbf"] = json!(now + 120)), "not valid before"),
        (Box::new(|c| c["exp"] = json!("tomorrow")), "exp"),
        (Box::new(|c| c["nbf"] = json!(null)), "nbf"),
        // A transaction or account event without a string sub.
        (Box::new(|c| c.as_object_mut().unwrap().remove("sub").map(drop).unwrap_or(())), "user"),
        (Box::new(|c| c["sub"] = json!(null)), "user"),
        (Box::new(|c| c["sub"] = json!(42)), "sub"),
        // (jsonwebtoken itself refuses this one while reading the claims.)
        (Box::new(|c| c["sub"] = json!(["5c79210bbac25ecb5e71ac40"])), "rejected"),
        (
            Box::new(move |c| {
                c["events"] = new_tx;
                c.as_object_mut().unwrap().remove("sub");
            }),
            "user",
        ),
    ];
    for (i, (edit, needle)) in refused.into_iter().enumerate() {
        let err = verify(edit).await.expect_err(&format!("case {i} is refused"));
        assert!(matches!(err.kind(), ErrorKind::Webhook { .. }), "case {i}: {err}");
        assert!(err.to_string().contains(needle), "case {i}: {needle:?} in {err}");
    }
    // An event about no user's data may omit sub.
    let v = verify(Box::new(|c| {
        c["events"] = json!({"urn:com:moneyhub:events:payment-completed": {"paymentId": "p1"}});
        c.as_object_mut().unwrap().remove("sub");
    }))
    .await
    .unwrap();
    assert_eq!(v.user_id, None);
}

#[tokio::test]
async fn unsigned_json_transaction_events_must_name_their_user() {
    let client = moneyhub::Client::builder()
        .identity_url("http://127.0.0.1:9")
        .client_id("c")
        .client_auth(moneyhub::ClientAuth::secret("s"))
        .build()
        .unwrap();
    let verifier = client.webhooks().allow_unsigned_json(true);
    let payload = json!({"accounts": [{"id": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13", "transactions": []}]});
    let body = |user: Option<Value>| {
        let mut v = json!({"id": "abe168ce-1b2f-4c38-9c92-db5730485cb3", "eventType": "newTransactions", "payload": payload});
        if let Some(u) = user {
            v["userId"] = u;
        }
        serde_json::to_vec(&v).unwrap()
    };
    verifier.verify(&body(Some(json!("5c79210bbac25ecb5e71ac40"))), "application/json").await.unwrap();
    for user in [None, Some(json!(null)), Some(json!(7))] {
        let err = verifier.verify(&body(user.clone()), "application/json").await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Webhook { .. }), "{user:?}: {err}");
    }
}
