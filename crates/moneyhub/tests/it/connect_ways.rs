//! Issue 15 on the client side: one-time access read with the exchange token
//! (`with_user_token`, refreshed with `offline_access`), the Auth Requests API, unenriched
//! transactions and the new model fields.

use futures_util::TryStreamExt;
use moneyhub::{
    AuthParams, AuthRequestStatus, ConnectOptions, ErrorKind, NewAuthRequest, PageOptions, TransactionFilter,
    UserToken,
};
use moneyhub_types::ManagedBy;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn one_time_access_reads_with_the_exchange_token_and_refreshes_it() {
    let Env { sandbox: sb, client } = env().await;
    let request =
        client.auth().connect(ConnectOptions::new(bank(MOCK_BANK)).offline_access(true)).await.unwrap();
    assert!(request.user_id.is_none());
    let callback = browser(&request).await;
    let connected = client.auth().exchange_code(&request, callback.as_str()).await.unwrap();
    let user = connected.user_id.clone().expect("the id_token names the user consent made");
    assert!(connected.scope.as_deref().unwrap().contains("transactions:read:all"));
    let made = client.users().get(&user).await.unwrap();
    assert_eq!(made.managed_by, ManagedBy::User);

    let seq = last_seq(&sb).await;
    let reader = client.with_user_token(UserToken::from_connected(&connected).unwrap());
    let page = reader.transactions().list(&user, &TransactionFilter::new().limit(5)).await.unwrap();
    assert_eq!(page.transactions.len(), 5);
    let accounts = reader.accounts().list(&user, &Default::default()).await.unwrap();
    assert!(!accounts.is_empty());
    // Read with the exchange token: no client-credentials token for this user.
    let log = requests_after(&sb, seq).await;
    assert!(token_requests(&log, "client_credentials", Some(user.as_str())).is_empty(), "{log:?}");
    assert!(client.users().get(&user).await.unwrap().last_accessed.is_some());

    // Three virtual hours later the access token has expired: the refresh token renews it.
    advance(&sb, json!({"hours": 3})).await;
    let before = client.user_token(&user).await.unwrap();
    let seq = last_seq(&sb).await;
    let page = reader.transactions().list(&user, &TransactionFilter::new().limit(1)).await.unwrap();
    assert_eq!(page.transactions.len(), 1);
    let log = requests_after(&sb, seq).await;
    assert_eq!(token_requests(&log, "refresh_token", Some(user.as_str())).len(), 1, "{log:?}");
    let after = client.user_token(&user).await.unwrap();
    assert_ne!(before.refresh_token(), after.refresh_token(), "the refresh token rotated");

    // After the 24-hour consent nothing renews it any more.
    advance(&sb, json!({"hours": 22})).await;
    let err = reader.transactions().list(&user, &TransactionFilter::new().limit(1)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::OAuth(o) if o.error == "invalid_grant"), "{err:?}");
    // Forgetting the token goes back to client credentials + sub.
    assert!(client.forget_user_token(&user).await.is_some());
    client.transactions().list(&user, &TransactionFilter::new().limit(1)).await.unwrap();
}

#[tokio::test]
async fn a_token_without_refresh_says_so_when_it_expires() {
    let Env { sandbox: sb, client } = env().await;
    let request = client.auth().connect(ConnectOptions::new(bank(MOCK_BANK))).await.unwrap();
    let callback = browser(&request).await;
    let connected = client.auth().exchange_code(&request, callback.as_str()).await.unwrap();
    assert!(connected.refresh_token.is_none());
    let user = connected.user_id.clone().unwrap();
    let reader = client.with_user_token(UserToken::from_connected(&connected).unwrap());
    reader.transactions().list(&user, &TransactionFilter::new().limit(1)).await.unwrap();
    advance(&sb, json!({"hours": 3})).await;
    let err = reader.transactions().list(&user, &TransactionFilter::new().limit(1)).await.unwrap_err();
    assert!(err.to_string().contains("no refresh token"), "{err}");
    assert!(!format!("{:?}", client.user_token(&user).await.unwrap())
        .contains(connected.access_token.expose_secret()));
}

#[tokio::test]
async fn auth_requests_connect_renew_list_and_complete_once() {
    let Env { sandbox: _sb, client } = env().await;
    let user = client.users().create(Some("ar-user")).await.unwrap().user_id;
    let ars = client.auth_requests();
    let created = ars
        .create(&NewAuthRequest::connect(bank(MOCK_BANK)).user(user.clone()).enable_async(true))
        .await
        .unwrap();
    assert_eq!(created.status, AuthRequestStatus::Pending);
    let url = created.redirect_params.auth_url.clone().unwrap();
    let res = http().get(&url).send().await.unwrap();
    let callback = res.headers()["location"].to_str().unwrap().to_owned();
    let done = ars.complete_with_callback(&created.id, &callback).await.unwrap();
    assert_eq!(done.status, AuthRequestStatus::Complete);
    let con = done.connection_id.clone().unwrap();
    assert!(done.sync_id.is_some());
    assert_eq!(client.connections().list(&user).await.unwrap()[0].id, con);
    // A replayed completion is refused.
    let err = ars.complete_with_callback(&created.id, &callback).await.unwrap_err();
    assert_eq!(err.status(), Some(400));

    // A reconsent through an auth request.
    let renew =
        ars.create(&NewAuthRequest::renew("reconsent", user.clone(), con.clone()).unwrap()).await.unwrap();
    let res = http().get(renew.redirect_params.auth_url.as_deref().unwrap()).send().await.unwrap();
    let done =
        ars.complete_with_callback(&renew.id, res.headers()["location"].to_str().unwrap()).await.unwrap();
    assert_eq!((done.status, done.connection_id), (AuthRequestStatus::Complete, Some(con.clone())));

    // The user came back with an error.
    let failed = ars.create(&NewAuthRequest::connect(bank(MOCK_BANK)).user(user.clone())).await.unwrap();
    let done = ars
        .complete(
            &failed.id,
            &AuthParams::error(
                "access_denied",
                Some("cancelled".into()),
                failed.redirect_params.state.clone(),
            ),
        )
        .await
        .unwrap();
    assert_eq!((&done.status, done.error.as_deref()), (&AuthRequestStatus::Error, Some("access_denied")));

    // Read back: one, a page, all.
    assert_eq!(ars.get(&failed.id).await.unwrap(), done);
    let page = ars.list(PageOptions::new(2, 0)).await.unwrap();
    assert_eq!((page.items.len(), page.total), (2, Some(3)));
    assert_eq!(ars.list_all().await.unwrap().len(), 3);
    assert!(ars.get("4b6bd0f4-4f52-4f0e-9d7e-6f4f43a9b7a1").await.unwrap_err().is_not_found());
    // Bad input is refused before anything is sent.
    assert!(NewAuthRequest::renew("sync", user.clone(), con).is_err());
    assert!(ars.complete(&failed.id, &AuthParams::default()).await.is_err());
}

#[tokio::test]
async fn complete_is_never_retried() {
    let Env { sandbox: sb, client } = env().await;
    let user = client.users().create(None).await.unwrap().user_id;
    let ars = client.auth_requests();
    let created = ars.create(&NewAuthRequest::connect(bank(MOCK_BANK)).user(user)).await.unwrap();
    let res = http().get(created.redirect_params.auth_url.as_deref().unwrap()).send().await.unwrap();
    let callback = res.headers()["location"].to_str().unwrap().to_owned();
    fault(&sb, json!({"method": "PATCH", "path": "/auth-requests/", "status": 503, "times": 1})).await;
    let seq = last_seq(&sb).await;
    let err = ars.complete_with_callback(&created.id, &callback).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    let log = requests_after(&sb, seq).await;
    assert_eq!(matching(&log, "PATCH", "/auth-requests/").len(), 1, "sent exactly once");
}

#[tokio::test]
async fn unenriched_list_stream_and_get() {
    let Env { sandbox: sb, client } = env().await;
    let (user, _) = user_with(&sb, &[MOCK_BANK]).await;
    let un = client.transactions().unenriched();
    let page = un.list(&user, &TransactionFilter::new().limit(10)).await.unwrap();
    assert_eq!(page.transactions.len(), 10);
    let rich = client.transactions().list(&user, &TransactionFilter::new().limit(10)).await.unwrap();
    for (u, r) in page.transactions.iter().zip(&rich.transactions) {
        assert_eq!((&u.id, &u.amount, &u.long_description), (&r.id, &r.amount, &r.long_description));
        assert_eq!(u.proprietary_transaction_code, r.details().proprietary_transaction_code);
        assert!(u.extra.is_empty(), "nothing unmodelled: {:?}", u.extra);
    }
    assert!(page.transactions.iter().any(|t| t.proprietary_transaction_code.is_some()));
    let all: Vec<_> = un.stream(&user, TransactionFilter::new().limit(250)).try_collect().await.unwrap();
    let count = client.transactions().count(&user, &TransactionFilter::new()).await.unwrap().unwrap();
    assert_eq!(all.len() as u64, count);
    let one = un.get(&user, &page.transactions[0].id).await.unwrap();
    assert_eq!(one, page.transactions[0]);
    let missing = "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77".parse().unwrap();
    assert!(un.get(&user, &missing).await.unwrap_err().is_not_found());
}
