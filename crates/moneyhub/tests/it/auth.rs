//! Authorisation flows: connect (sync and async), reauth, refresh, reconsent, the callback
//! checks and the never-retried code exchange.

use chrono::Duration;
use moneyhub::{
    AuthFlow, CallbackParams, ConnectOptions, ConsentOptions, ErrorKind, RenewOptions, Sent, WaitOptions,
};
use moneyhub_types::FetchStatus;
use serde_json::json;

use crate::support::{
    bank, browser, connect, env, fault, last_seq, matching, requests_after, token_requests, user_with,
    AVIVA_BANK, MOCK_BANK, REDIRECT_URI,
};

#[tokio::test]
async fn connect_and_exchange() {
    let e = env().await;
    let user = e.client.users().create(Some("flow")).await.unwrap();
    let request = e
        .client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()).state("my-state"))
        .await
        .unwrap();
    assert_eq!(request.flow, AuthFlow::Connect);
    assert_eq!(request.state, "my-state");
    assert!(request.nonce.len() >= 32);
    assert!(request.code_verifier.expose_secret().len() >= 43);
    assert!(request.url.as_str().starts_with(&format!("{}/oidc/auth?", e.sandbox.identity_url())));
    assert!(request
        .url
        .query()
        .unwrap()
        .contains("request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A"));
    assert!(request.expires_at > e.sandbox.now());
    // The request survives a round trip through a session store.
    let stored = serde_json::to_string(&request).unwrap();
    let request: moneyhub::AuthorizationRequest = serde_json::from_str(&stored).unwrap();

    let callback = browser(&request).await;
    assert!(callback.starts_with(REDIRECT_URI));
    let params = CallbackParams::from_url(&callback).unwrap();
    assert_eq!(params.state.as_deref(), Some("my-state"));
    assert_eq!(params.iss.as_deref(), Some(e.sandbox.issuer().as_str()));
    request.check_state("my-state").unwrap();
    assert!(request.check_state("other").is_err());

    let seq = last_seq(&e.sandbox).await;
    let connected = e.client.auth().exchange_code(&request, params).await.unwrap();
    assert_eq!(connected.user_id.as_ref(), Some(&user.user_id));
    assert_eq!(connected.sync_id, None);
    assert_eq!(connected.claims.nonce.as_deref(), Some(request.nonce.as_str()));
    assert_eq!(connected.claims.iss, e.sandbox.issuer());
    assert_eq!(connected.claims.aud, vec![e.sandbox.client_id().to_owned()]);
    assert!(connected.connection_id.is_for_bank(&bank(MOCK_BANK)));
    let list = e.client.connections().list(&user.user_id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, connected.connection_id);
    let log = requests_after(&e.sandbox, seq).await;
    let exchanges = token_requests(&log, "authorization_code", Some(user.user_id.as_str()));
    assert_eq!(exchanges.len(), 1);
    // PAR carried PKCE, the nonce and the claims; the callback's code went to the token
    // endpoint, never into a URL.
    assert!(log.iter().all(|e| !e["query"].as_str().unwrap_or("").contains("code=")));
}

#[tokio::test]
async fn async_connection_names_the_sync_to_wait_for() {
    let e = env().await;
    let user = e.client.users().create(None).await.unwrap();
    let consent = ConsentOptions::new()
        .expires_at(e.sandbox.now() + Duration::days(60))
        .transactions_from(e.sandbox.now() - Duration::days(365));
    let request = e
        .client
        .auth()
        .connect(
            ConnectOptions::new(bank(MOCK_BANK))
                .user(user.user_id.clone())
                .enable_async(true)
                .consent(consent),
        )
        .await
        .unwrap();
    let connected = e.client.auth().exchange_code(&request, browser(&request).await).await.unwrap();
    let sync_id = connected.sync_id.clone().expect("mh:sync");
    let done =
        e.client.connections().wait_for_sync(&user.user_id, &sync_id, WaitOptions::default()).await.unwrap();
    assert_eq!(done.fetch_status, Some(FetchStatus::Success));
    assert_eq!(done.connection_id, connected.connection_id);
    let conn = e.client.connections().get(&user.user_id, &connected.connection_id).await.unwrap();
    assert_eq!(conn.expires_at, Some(e.sandbox.now() + Duration::days(60)));

    // A consent more than 90 days ahead is refused before anything is pushed.
    let seq = last_seq(&e.sandbox).await;
    let err = e
        .client
        .auth()
        .connect(
            ConnectOptions::new(bank(MOCK_BANK))
                .user(user.user_id.clone())
                .consent(ConsentOptions::new().expires_at(e.sandbox.now() + Duration::days(91))),
        )
        .await
        .unwrap_err();
    assert_eq!(err.sent(), Sent::Never);
    assert!(requests_after(&e.sandbox, seq).await.is_empty());
}

#[tokio::test]
async fn wrong_state_and_foreign_issuer_are_refused_before_the_exchange() {
    let e = env().await;
    let user = e.client.users().create(None).await.unwrap();
    let request = e
        .client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()))
        .await
        .unwrap();
    let callback = CallbackParams::from_url(&browser(&request).await).unwrap();
    let code = callback.code.clone().unwrap();

    let seq = last_seq(&e.sandbox).await;
    let forged = CallbackParams::new(code.expose_secret(), "forged-state");
    let err = e.client.auth().exchange_code(&request, forged).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Auth { .. }), "{err}");
    assert_eq!(err.sent(), Sent::Never);
    assert!(err.to_string().contains("state"));

    let mixed_up = CallbackParams::new(code.expose_secret(), request.state.clone())
        .with_iss("https://evil.example/oidc");
    let err = e.client.auth().exchange_code(&request, mixed_up).await.unwrap_err();
    assert!(err.to_string().contains("iss"), "{err}");

    let denied = format!("{REDIRECT_URI}?error=access_denied&error_description=no&state={}", request.state);
    let err = e.client.auth().exchange_code(&request, denied.as_str()).await.unwrap_err();
    assert_eq!(err.code(), Some("access_denied"));

    let log = requests_after(&e.sandbox, seq).await;
    assert!(token_requests(&log, "authorization_code", None).is_empty());
    assert!(matching(&log, "POST", "/oidc/token").is_empty(), "no code exchange was sent");

    // The genuine callback still works (the code was never spent).
    let connected = e.client.auth().exchange_code(&request, callback).await.unwrap();
    assert!(connected.connection_id.is_for_bank(&bank(MOCK_BANK)));
}

#[tokio::test]
async fn a_replayed_code_fails_once_and_is_not_retried() {
    let e = env().await;
    let user = e.client.users().create(None).await.unwrap();
    let request = e
        .client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()))
        .await
        .unwrap();
    let callback = browser(&request).await;
    e.client.auth().exchange_code(&request, callback.as_str()).await.unwrap();

    let seq = last_seq(&e.sandbox).await;
    let err = e.client.auth().exchange_code(&request, callback.as_str()).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_grant"), "{err}");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.sent(), Sent::Answered);
    let log = requests_after(&e.sandbox, seq).await;
    assert_eq!(
        token_requests(&log, "authorization_code", Some(user.user_id.as_str())).len(),
        1,
        "exactly one request"
    );
}

#[tokio::test]
async fn a_failing_exchange_is_never_retried() {
    let e = env().await;
    let user = e.client.users().create(None).await.unwrap();
    let request = e
        .client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()))
        .await
        .unwrap();
    let callback = browser(&request).await;
    fault(&e.sandbox, json!({"method": "POST", "path": "/oidc/token", "status": 503, "times": 1})).await;
    let seq = last_seq(&e.sandbox).await;
    let err = e.client.auth().exchange_code(&request, callback.as_str()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    let log = requests_after(&e.sandbox, seq).await;
    assert_eq!(matching(&log, "POST", "/oidc/token").len(), 1, "one attempt only");
}

#[tokio::test]
async fn tampered_nonce_is_caught_in_the_id_token() {
    let e = env().await;
    let user = e.client.users().create(None).await.unwrap();
    let request = e
        .client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()))
        .await
        .unwrap();
    let callback = browser(&request).await;
    let mut tampered = request.clone();
    tampered.nonce = "another-nonce".into();
    let err = e.client.auth().exchange_code(&tampered, callback.as_str()).await.unwrap_err();
    assert!(err.to_string().contains("nonce"), "{err}");
    assert_eq!(err.sent(), Sent::Answered);
}

#[tokio::test]
async fn reauth_reconsent_and_refresh() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK, AVIVA_BANK]).await;
    let auth = e.client.auth();

    let reauth = auth.reauth(RenewOptions::new(user.clone(), ids[0].clone())).await.unwrap();
    assert_eq!(reauth.flow, AuthFlow::Reauth);
    let done = auth.exchange_code(&reauth, browser(&reauth).await).await.unwrap();
    assert_eq!(done.connection_id, ids[0], "same accounts: the id is kept");

    let new_expiry = e.sandbox.now() + Duration::days(80);
    let reconsent =
        auth.reconsent(RenewOptions::new(user.clone(), ids[0].clone()).expires_at(new_expiry)).await.unwrap();
    let done = auth.exchange_code(&reconsent, browser(&reconsent).await).await.unwrap();
    assert_eq!(done.connection_id, ids[0]);
    let conn = e.client.connections().get(&user, &ids[0]).await.unwrap();
    assert_eq!(conn.expires_at, Some(new_expiry));

    let refresh = auth.refresh(RenewOptions::new(user.clone(), ids[1].clone())).await.unwrap();
    let done = auth.exchange_code(&refresh, browser(&refresh).await).await.unwrap();
    assert_eq!(done.connection_id, ids[1]);

    // Moneyhub refuses a refresh of an open-banking connection when the user arrives at
    // /oidc/auth (PAR only checks that the request is well-formed): the callback's error is
    // typed.
    let refresh = auth.refresh(RenewOptions::new(user.clone(), ids[0].clone())).await.unwrap();
    let err = auth.exchange_code(&refresh, browser(&refresh).await).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_request"), "{err}");
    // A new expiry only goes with a reconsent.
    let err = auth.reauth(RenewOptions::new(user, ids[0].clone()).expires_at(new_expiry)).await.unwrap_err();
    assert_eq!(err.sent(), Sent::Never);
}

#[tokio::test]
async fn connect_without_redirect_uri_is_a_configuration_error() {
    let sb = crate::support::sandbox().await;
    let clock_sb = sb.clone();
    let client = moneyhub::Client::builder()
        .identity_url(sb.identity_url())
        .api_url(sb.api_url_v3())
        .client_id(sb.client_id())
        .client_auth(moneyhub::ClientAuth::secret(sb.client_secret().unwrap()))
        .clock(move || clock_sb.now())
        .build()
        .unwrap();
    let err = client.auth().connect(ConnectOptions::new(bank(MOCK_BANK))).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Config { .. }), "{err}");
    let connected = connect(
        &crate::support::builder(&sb).build().unwrap(),
        &client.users().create(None).await.unwrap().user_id,
        MOCK_BANK,
    )
    .await;
    assert!(connected.connection_id.is_for_bank(&bank(MOCK_BANK)));
}
