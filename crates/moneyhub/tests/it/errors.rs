//! Error paths: 401 then a fresh token, a second 401, 403, 404, retried 5xx and dropped
//! connections, Retry-After, malformed JSON, timeouts, unreachable hosts, non-idempotent
//! requests never repeated, unknown enum values kept.

use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::{Json, Router};
use moneyhub::{Client, ClientAuth, ErrorKind, RetryPolicy, Scopes, Sent};
use moneyhub_types::{ConnectionError, ConnectionStatus, ConnectionType, ExtendedStatus};
use serde_json::json;

use crate::support::{
    advance, builder, env, fast_retries, fault, last_seq, matching, requests_after, token_requests,
    user_with, MOCK_BANK,
};

#[tokio::test]
async fn expired_token_401_then_one_fresh_token() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let seq = last_seq(&e.sandbox).await;
    e.client.accounts().list(&user, &Default::default()).await.unwrap();
    // The sandbox's tokens live 7200 virtual seconds; the client's cache measures real time,
    // so it still holds the token and Moneyhub is the one to reject it.
    advance(&e.sandbox, json!({"seconds": 7201})).await;
    let accounts = e.client.accounts().list(&user, &Default::default()).await.unwrap();
    assert!(!accounts.is_empty());
    let log = requests_after(&e.sandbox, seq).await;
    assert_eq!(token_requests(&log, "client_credentials", Some(user.as_str())).len(), 2);
    let statuses: Vec<u64> =
        matching(&log, "GET", "/v3/accounts").iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 401, 200]);
}

#[tokio::test]
async fn a_second_401_is_an_auth_error() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    fault(&e.sandbox, json!({"method": "GET", "path": "/v3/accounts", "status": 401, "times": 2})).await;
    let seq = last_seq(&e.sandbox).await;
    let err = e.client.accounts().list(&user, &Default::default()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unauthorized(_)), "{err}");
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("freshly issued token"), "{err}");
    let log = requests_after(&e.sandbox, seq).await;
    assert_eq!(token_requests(&log, "client_credentials", Some(user.as_str())).len(), 2);
    assert_eq!(matching(&log, "GET", "/v3/accounts").len(), 2);
    // The next call starts afresh and works.
    e.client.accounts().list(&user, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn missing_scope_is_a_403() {
    let sb = crate::support::sandbox().await;
    let (user, _) = user_with(&sb, &[MOCK_BANK]).await;
    let client = builder(&sb)
        .scopes({
            let mut scopes = Scopes::default();
            scopes.transactions = "accounts:read".into();
            scopes
        })
        .build()
        .unwrap();
    let seq = last_seq(&sb).await;
    let err = client.transactions().list(&user, &Default::default()).await.unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.code(), Some("Forbidden"));
    assert!(!err.is_retryable());
    assert_eq!(
        matching(&requests_after(&sb, seq).await, "GET", "/v3/transactions").len(),
        1,
        "403 is not retried"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    e.client.connections().list(&user).await.unwrap();
    fault(&e.sandbox, json!({"method": "GET", "path": "/users/", "status": 503, "times": 2})).await;
    let seq = last_seq(&e.sandbox).await;
    let list = e.client.connections().list(&user).await.unwrap();
    assert_eq!(list.len(), 1);
    let statuses: Vec<u64> = matching(&requests_after(&e.sandbox, seq).await, "GET", "/users/")
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 200]);

    // Exhausted retries: the last answer is the error.
    fault(&e.sandbox, json!({"method": "GET", "path": "/users/", "status": 502, "times": 10})).await;
    let err = e.client.connections().list(&user).await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.is_retryable());
    crate::support::clear_faults(&e.sandbox).await;

    // A dropped connection (no answer at all) is retried too.
    fault(&e.sandbox, json!({"method": "GET", "path": "/users/", "drop": true, "times": 1})).await;
    let seq = last_seq(&e.sandbox).await;
    assert_eq!(e.client.connections().list(&user).await.unwrap().len(), 1);
    let statuses: Vec<u64> = matching(&requests_after(&e.sandbox, seq).await, "GET", "/users/")
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [0, 200]);
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_cap() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    e.client.connections().list(&user).await.unwrap();
    fault(
        &e.sandbox,
        json!({"method": "GET", "path": "/users/", "status": 429, "retryAfterSecs": 1, "times": 1}),
    )
    .await;
    let started = Instant::now();
    e.client.connections().list(&user).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());

    // Longer than the cap: no retry, the wait is reported.
    fault(
        &e.sandbox,
        json!({"method": "GET", "path": "/users/", "status": 429, "retryAfterSecs": 120, "times": 1}),
    )
    .await;
    let started = Instant::now();
    let err = e.client.connections().list(&user).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(err.code(), Some("TooManyRequests"));
}

#[tokio::test]
async fn non_idempotent_requests_are_never_repeated() {
    let e = env().await;
    e.client.users().create(None).await.unwrap();
    fault(&e.sandbox, json!({"method": "POST", "path": "/users", "exact": true, "status": 503, "times": 1}))
        .await;
    let seq = last_seq(&e.sandbox).await;
    let err = e.client.users().create(Some("once")).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(matching(&requests_after(&e.sandbox, seq).await, "POST", "/users").len(), 1);

    // A dropped POST: may have been sent, and is not repeated.
    fault(&e.sandbox, json!({"method": "POST", "path": "/users", "exact": true, "drop": true, "times": 1}))
        .await;
    let seq = last_seq(&e.sandbox).await;
    let err = e.client.users().create(Some("once")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Transport { .. }), "{err}");
    assert_eq!(err.sent(), Sent::Maybe);
    assert_eq!(matching(&requests_after(&e.sandbox, seq).await, "POST", "/users").len(), 1);
}

#[tokio::test]
async fn malformed_json_names_the_field() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    fault(&e.sandbox, json!({"method": "GET", "path": "/users/", "malformed": true, "times": 1})).await;
    let err = e.client.connections().list(&user).await.unwrap_err();
    match err.kind() {
        ErrorKind::Decode { route, path, status, .. } => {
            assert_eq!(*route, "/users/{userId}/connections");
            assert_eq!(*status, 200);
            assert!(path.starts_with("data"), "path {path}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(err.sent(), Sent::Answered);
    let text = err.to_string();
    assert!(text.contains("/users/{userId}/connections") && text.contains("`data"), "{text}");
    assert!(std::error::Error::source(&err).is_some(), "the JSON error is kept as the source");
}

#[tokio::test]
async fn timeouts_and_unreachable_hosts() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let client = builder(&e.sandbox)
        .timeout(Duration::from_millis(300))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    client.connections().list(&user).await.unwrap();
    fault(&e.sandbox, json!({"method": "GET", "path": "/users/", "latencyMs": 1500, "times": 1})).await;
    let err = client.connections().list(&user).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err}");
    assert_eq!(err.sent(), Sent::Maybe);
    assert!(err.is_retryable());

    // Nothing listens on port 9: the request never left.
    let client = Client::builder()
        .identity_url("http://127.0.0.1:9")
        .client_id("c")
        .client_auth(ClientAuth::secret("s"))
        .retry_policy(fast_retries(1))
        .build()
        .unwrap();
    let err = client.users().list(Default::default()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Transport { .. }), "{err}");
    assert_eq!(err.sent(), Sent::Never);
}

/// A tiny mock of Moneyhub that answers values the sandbox never sends.
async fn mock_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let app = Router::new()
        .route(
            "/oidc/.well-known/openid-configuration",
            get(move || {
                let b = b.clone();
                async move {
                    Json(json!({
                        "issuer": format!("{b}/oidc"),
                        "authorization_endpoint": format!("{b}/oidc/auth"),
                        "token_endpoint": format!("{b}/oidc/token"),
                        "jwks_uri": format!("{b}/oidc/certs"),
                    }))
                }
            }),
        )
        .route(
            "/oidc/token",
            post(|| async {
                Json(json!({"access_token": "mock-token", "token_type": "Bearer", "expires_in": 7200}))
            }),
        )
        .route(
            "/users/{user_id}/connections",
            get(|| async {
                Json(json!({"data": [{
                    "id": "1ffe704d39629a929c8e293880fb449a:7d235ab0-e951-487f-acde-73cae1a18be0",
                    "name": "Future Bank", "type": "openbanking-v9",
                    "connectedOn": "2025-01-02T10:00:00.000Z", "accountIds": [],
                    "status": "paused", "error": "brand_new_code", "extendedStatus": "hibernating",
                    "someNewField": {"x": 1}
                }], "meta": {}}))
            }),
        )
        .route(
            "/v3/transactions",
            get(|axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                let q = q.unwrap_or_default();
                // `?text=malformed`: an amount that is not a number.
                let value = if q.contains("text=malformed") { json!("-2323") } else { json!(-2323) };
                Json(json!({"data": [{
                    "id": "c390a94f-3824-4cdf-8d02-b0c5304d9f66",
                    "accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13",
                    "amount": {"value": value, "currency": "GBP"},
                    "categoryId": "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d", "categoryIdConfirmed": false,
                    "date": "2025-01-10T12:00:00.000Z", "dateModified": "2025-01-10T11:39:46.506Z",
                    "dateCreated": "2025-01-10T11:39:46.506Z", "longDescription": "CARD PAYMENT TO GROCER LTD",
                    "shortDescription": "Grocer Ltd", "notes": "", "status": "posted",
                    "carbonFootprint": {"kgCo2e": 1.25, "method": "spend-based"}
                }], "meta": {"missingTransactionIds": ["0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77"]}}))
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

#[tokio::test]
async fn raw_transactions_keep_fields_the_model_does_not_know() {
    use futures_util::TryStreamExt;
    let client = mock_client(&mock_server().await);
    let user = "5c79210bbac25ecb5e71ac40".parse().unwrap();
    let ids = ["c390a94f-3824-4cdf-8d02-b0c5304d9f66", "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77"];
    let raw = client.transactions().by_ids_raw(&user, ids).await.unwrap();
    assert_eq!(raw.missing.len(), 1);
    let one = &raw.transactions[0];
    assert_eq!(one.transaction.amount.value, -2323);
    let kept: serde_json::Value = serde_json::from_str(one.json.get()).unwrap();
    assert_eq!(kept["carbonFootprint"]["kgCo2e"], 1.25, "{kept}");
    // The typed look-up decodes the same transaction, without the unknown field.
    let typed = client.transactions().by_ids(&user, ids).await.unwrap();
    assert_eq!(typed.transactions[0], one.transaction);
    let encoded = serde_json::to_value(&typed.transactions[0]).unwrap();
    assert!(encoded.get("carbonFootprint").is_none());

    let pages: Vec<_> =
        client.transactions().pages_raw(&user, Default::default()).try_collect().await.unwrap();
    assert_eq!(pages[0].transactions[0], *one);

    // A malformed transaction fails the raw listing too, naming the field.
    let filter = moneyhub::TransactionFilter::new().text("malformed");
    let err = client.transactions().pages_raw(&user, filter).try_collect::<Vec<_>>().await.unwrap_err();
    match err.kind() {
        ErrorKind::Decode { path, .. } => assert_eq!(path, "data[0].amount.value", "{err}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

fn mock_client(base: &str) -> Client {
    Client::builder()
        .identity_url(base)
        .api_url(format!("{base}/v3"))
        .client_id("mock-client")
        .client_auth(ClientAuth::secret("mock-secret"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn unknown_enum_values_are_kept() {
    let client = mock_client(&mock_server().await);
    let list = client.connections().list(&"5c79210bbac25ecb5e71ac40".parse().unwrap()).await.unwrap();
    assert_eq!(list[0].status, ConnectionStatus::Unknown("paused".into()));
    assert_eq!(list[0].kind, ConnectionType::Unknown("openbanking-v9".into()));
    assert_eq!(list[0].error, Some(ConnectionError::Unknown("brand_new_code".into())));
    assert_eq!(list[0].extended_status, Some(ExtendedStatus::Unknown("hibernating".into())));
    assert!(list[0].status.is_unknown());
}
