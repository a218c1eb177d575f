//! `private_key_jwt` client authentication (RS256 and PS256, JWK and PEM keys) at the token
//! and PAR endpoints, through a whole connect flow.

use moneyhub::{ConnectOptions, PrivateKey, SigningAlg};

use crate::support::{
    bank, browser, key_client, last_seq, requests_after, sandbox_with_key_client, test_key, token_requests,
    MOCK_BANK,
};

async fn full_flow(key: PrivateKey) {
    let client_id = "key-client";
    let sb = sandbox_with_key_client(client_id, &key).await;
    let client = key_client(&sb, client_id, key);
    let seq = last_seq(&sb).await;
    let user = client.users().create(Some("pkj")).await.unwrap();
    let request =
        client.auth().connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone())).await.unwrap();
    let connected = client.auth().exchange_code(&request, browser(&request).await).await.unwrap();
    let accounts = client.accounts().list(&user.user_id, &Default::default()).await.unwrap();
    assert!(accounts.iter().all(|a| a.connection_id.as_ref() == Some(&connected.connection_id)));
    let log = requests_after(&sb, seq).await;
    // Every token request authenticated with an assertion (no secret exists for this client).
    assert_eq!(token_requests(&log, "client_credentials", None).len(), 1);
    assert_eq!(token_requests(&log, "client_credentials", Some(user.user_id.as_str())).len(), 1);
    assert_eq!(token_requests(&log, "authorization_code", Some(user.user_id.as_str())).len(), 1);
    assert!(log.iter().filter(|e| e["path"] == "/oidc/token").all(|e| e["status"] == 200));
}

#[tokio::test]
async fn rs256_jwk_key() {
    let key = PrivateKey::from_jwk(&test_key(0).jwk_private).unwrap().with_kid("rs-key");
    assert_eq!(key.alg(), SigningAlg::RS256);
    full_flow(key).await;
}

#[tokio::test]
async fn ps256_pem_key() {
    let key = PrivateKey::from_pem(&test_key(1).pem_pkcs8)
        .unwrap()
        .with_alg(SigningAlg::PS256)
        .unwrap()
        .with_kid("ps-key");
    assert_eq!(key.public_jwk()["alg"], "PS256");
    full_flow(key).await;
}

#[tokio::test]
async fn a_key_the_server_does_not_know_is_invalid_client() {
    let registered = PrivateKey::from_jwk(&test_key(0).jwk_private).unwrap().with_kid("k1");
    let sb = sandbox_with_key_client("key-client", &registered).await;
    let other = PrivateKey::from_jwk(&test_key(1).jwk_private).unwrap().with_kid("k1");
    let client = key_client(&sb, "key-client", other);
    let err = client.users().list(Default::default()).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_client"), "{err}");
    assert_eq!(err.status(), Some(401));
}

#[test]
fn key_parsing() {
    assert!(PrivateKey::parse("nonsense").is_err());
    let public_only = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}).to_string();
    assert!(PrivateKey::from_jwk(&public_only).unwrap_err().to_string().contains("public key"));
    // An RSA JWK must carry its CRT parameters.
    let mut v: serde_json::Value = serde_json::from_str(&test_key(0).jwk_private).unwrap();
    let mut bare = v.clone();
    bare.as_object_mut().unwrap().remove("p");
    bare.as_object_mut().unwrap().remove("q");
    assert!(PrivateKey::from_jwk(&bare.to_string()).unwrap_err().to_string().contains("CRT parameters"));
    v["kid"] = "from-jwk".into();
    v["alg"] = "PS256".into();
    let k = PrivateKey::from_jwk(&v.to_string()).unwrap();
    assert_eq!((k.kid(), k.alg()), (Some("from-jwk"), SigningAlg::PS256));
    assert!(PrivateKey::from_pem(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nxx\n-----END ENCRYPTED PRIVATE KEY-----"
    )
    .is_err());
    let jwk = PrivateKey::parse(&test_key(0).pem_pkcs8).unwrap().public_jwk();
    assert!(jwk.get("d").is_none());
}
