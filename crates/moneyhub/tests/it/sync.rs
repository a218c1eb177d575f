//! Manual sync: the guard (30 minutes, Triodos cap, server 429), async syncs and waiting.

use chrono::Duration;
use moneyhub::guard::GuardReason;
use moneyhub::{ErrorKind, Sent, SyncOptions, WaitOptions};
use moneyhub_types::{ConnectionStatus, FetchStatus};
use serde_json::json;

use crate::support::{advance, builder, env, last_seq, matching, requests_after, user_with, MOCK_BANK};

#[tokio::test]
async fn second_sync_within_30_minutes_is_refused_without_a_request() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let c = e.client.connections();
    let ok = c
        .sync(&user, &ids[0], SyncOptions::new().customer_ip_address("203.0.113.7".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(ok.status, ConnectionStatus::Ok);

    let seq = last_seq(&e.sandbox).await;
    let err = c.sync(&user, &ids[0], SyncOptions::new()).await.unwrap_err();
    assert_eq!(err.sent(), Sent::Never);
    assert_eq!(err.not_before(), Some(e.sandbox.now() + Duration::minutes(30)));
    match err.kind() {
        ErrorKind::Guard(nb) => assert!(matches!(nb.reason, GuardReason::MinInterval { .. })),
        other => panic!("expected a guard refusal, got {other:?}"),
    }
    assert!(err.to_string().contains("refused locally"), "{err}");
    assert!(
        matching(&requests_after(&e.sandbox, seq).await, "POST", "/v3/sync").is_empty(),
        "no POST was sent"
    );

    // 31 minutes later (the client's clock follows the sandbox's) it is allowed again.
    advance(&e.sandbox, json!({"minutes": 31})).await;
    c.sync(&user, &ids[0], SyncOptions::new()).await.unwrap();
}

#[tokio::test]
async fn server_429_becomes_a_not_before_time() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    e.client.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap();

    // Another process (its own guard) does not know about that sync: Moneyhub answers 429.
    let other = builder(&e.sandbox).build().unwrap();
    let seq = last_seq(&e.sandbox).await;
    let err = other.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap_err();
    assert_eq!(err.status(), Some(429), "{err}");
    assert_eq!(err.code(), Some("TooManyRequests"));
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(30 * 60)));
    let log = requests_after(&e.sandbox, seq).await;
    assert_eq!(matching(&log, "POST", "/v3/sync").len(), 1, "a 429 on POST /sync is not retried");

    // The 429 was recorded: the next attempt is refused locally.
    let seq = last_seq(&e.sandbox).await;
    let err = other.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap_err();
    match err.kind() {
        ErrorKind::Guard(nb) => assert_eq!(nb.reason, GuardReason::ServerThrottle),
        other => panic!("expected a guard refusal, got {other:?}"),
    }
    assert!(matching(&requests_after(&e.sandbox, seq).await, "POST", "/v3/sync").is_empty());
}

#[tokio::test]
async fn triodos_fifth_sync_of_the_day_is_refused() {
    let e = env().await;
    let triodos = e
        .client
        .connections()
        .available()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == "Triodos Bank")
        .unwrap();
    let (user, ids) = user_with(&e.sandbox, &[triodos.id.as_str()]).await;
    let c = e.client.connections();
    for _ in 0..4 {
        c.sync(&user, &ids[0], SyncOptions::new().enable_async(false)).await.unwrap();
        advance(&e.sandbox, json!({"minutes": 31})).await;
    }
    let seq = last_seq(&e.sandbox).await;
    let err = c.sync(&user, &ids[0], SyncOptions::new()).await.unwrap_err();
    match err.kind() {
        ErrorKind::Guard(nb) => {
            assert_eq!(nb.reason, GuardReason::ProviderCap { provider: "Triodos Bank".into(), per_day: 4 });
        }
        other => panic!("expected a guard refusal, got {other:?}"),
    }
    // The first of the four syncs was at t0: allowed again 24 hours after it.
    assert_eq!(err.not_before(), Some(crate::support::t0() + Duration::days(1)));
    assert!(matching(&requests_after(&e.sandbox, seq).await, "POST", "/v3/sync").is_empty());
}

#[tokio::test]
async fn async_sync_then_wait_for_it() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let c = e.client.connections();
    let started = c.sync(&user, &ids[0], SyncOptions::new().enable_async(true)).await.unwrap();
    let sync_id = started.sync_id.unwrap();
    let done = c.wait_for_sync(&user, &sync_id, WaitOptions::default()).await.unwrap();
    assert_eq!(done.id, sync_id);
    assert_eq!(done.fetch_status, Some(FetchStatus::Success));
    assert!(done.fetched_at.is_some());

    let err = c
        .wait_for_sync(
            &user,
            &"00000000-0000-4000-8000-000000000000".parse().unwrap(),
            WaitOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn scripted_failure_and_unknown_connection() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let (status, body) = crate::support::control(
        &e.sandbox,
        reqwest::Method::PUT,
        &format!("/connections/{}/script", ids[0]),
        Some(json!({"outcomes": ["error"]})),
    )
    .await;
    assert!(status.is_success(), "{body}");
    advance(&e.sandbox, json!({"minutes": 5})).await;
    let res =
        e.client.connections().sync(&user, &ids[0], SyncOptions::new().enable_async(false)).await.unwrap();
    assert_eq!(res.status, ConnectionStatus::Error);
    let latest = e.client.connections().status(&user, &ids[0]).await.unwrap().unwrap();
    assert_eq!(latest.finished().unwrap().fetch_status, Some(FetchStatus::Error));

    let seq = last_seq(&e.sandbox).await;
    let unknown = format!("{MOCK_BANK}:00000000-0000-4000-8000-000000000000").parse().unwrap();
    let err = e.client.connections().sync(&user, &unknown, SyncOptions::new()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(matching(&requests_after(&e.sandbox, seq).await, "POST", "/v3/sync").is_empty());

    // With the provider named, the guard needs no look-up; Moneyhub's 404 does not count as
    // a sync for the guard.
    let err = e
        .client
        .connections()
        .sync(&user, &unknown, SyncOptions::new().provider_name("Moneyhub Open Banking Mock"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = e
        .client
        .connections()
        .sync(&user, &unknown, SyncOptions::new().provider_name("Moneyhub Open Banking Mock"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "not refused by the guard: {err}");
}

#[tokio::test]
async fn a_sync_that_never_left_does_not_count() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    e.client.connections().list(&user).await.unwrap();
    // The user-bound token cannot be fetched: the POST is never sent.
    crate::support::fault(
        &e.sandbox,
        json!({"method": "POST", "path": "/oidc/token", "status": 400, "code": "invalid_scope", "times": 1}),
    )
    .await;
    let seq = last_seq(&e.sandbox).await;
    let err = e.client.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_scope"), "{err}");
    assert_eq!(err.route(), Some("/oidc/token"));
    assert!(matching(&requests_after(&e.sandbox, seq).await, "POST", "/v3/sync").is_empty());
    // The guard did not count it.
    e.client.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap();
}

#[tokio::test]
async fn waiting_with_an_enormous_timeout_does_not_overflow() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let c = e.client.connections();
    let started = c.sync(&user, &ids[0], SyncOptions::new().enable_async(true)).await.unwrap();
    let sync_id = started.sync_id.unwrap();
    let options = WaitOptions::default().timeout(std::time::Duration::MAX);
    let done = c.wait_for_sync(&user, &sync_id, options).await.unwrap();
    assert_eq!(done.id, sync_id);
}
