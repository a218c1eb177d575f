//! Every client configuration Moneyhub supports, end to end against the in-process sandbox
//! (connect → code exchange → a Data API read): client_secret_basic; private_key_jwt with
//! RS256, PS256, RS512, ES256 and ES384 keys; self_signed_tls_client_auth (mTLS); each with
//! request objects `none` and signed where the key allows. Then the combinations refused
//! locally, mTLS refusals, refresh-token rotation and the jwt-bearer grant.

use std::sync::Arc;

use moneyhub::{
    Client, ClientAuth, ClientBuilder, ConnectOptions, KeyType, PrivateKey, SigningAlg, TlsIdentity,
    TransactionFilter, UserTokens,
};
use moneyhub_sandbox::{ClientRegistration, ClockMode, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    bank, fast_retries, fixture, last_seq, requests_after, sandbox_with, t0, token_requests, MOCK_BANK,
    REDIRECT_URI,
};

const CLIENT_ID: &str = "matrix-client";

/// How the API client is registered and configured.
#[derive(Clone)]
enum Method {
    Secret,
    Key { key: &'static str, alg: SigningAlg },
    Tls,
}

fn key(name: &str, alg: SigningAlg) -> PrivateKey {
    let text = fixture(&format!("{name}.jwk"));
    PrivateKey::from_jwk(&text).unwrap().with_kid(format!("{name}-kid")).with_alg(alg).unwrap()
}

fn identity(name: &str) -> TlsIdentity {
    TlsIdentity::from_pem(fixture(&format!("{name}.crt")), fixture(&format!("{name}.key")))
}

/// A sandbox served over TLS (test CA), with `registration` beside the default client.
async fn tls_sandbox(registration: ClientRegistration) -> Arc<Sandbox> {
    let tls = moneyhub_http::tls::server_config_from_pem(
        fixture("server.crt").as_bytes(),
        fixture("server.key").as_bytes(),
        moneyhub_http::tls::ClientAuth::Optional,
    )
    .unwrap();
    sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        clients: vec![ClientRegistration::default(), registration],
        http: moneyhub_http::ServeConfig::default().tls(tls),
        ..Default::default()
    })
    .await
}

fn registration(method: &Method, request_alg: Option<SigningAlg>) -> ClientRegistration {
    ClientRegistration {
        client_id: CLIENT_ID.into(),
        client_secret: matches!(method, Method::Secret).then(|| "matrix-secret".to_owned()),
        // Registered without `alg`, so one key serves assertions and request objects in
        // different algorithms.
        jwks: match method {
            Method::Key { key: name, alg } => {
                let mut jwk = key(name, *alg).public_jwk();
                jwk.as_object_mut().unwrap().remove("alg");
                Some(json!({"keys": [jwk]}))
            }
            _ => None,
        },
        request_object_signing_alg: request_alg.map_or("none".to_owned(), |a| a.to_string()),
        tls_client_cert: matches!(method, Method::Tls).then(|| fixture("client-a.crt")),
        ..Default::default()
    }
}

fn builder(sb: &Arc<Sandbox>, method: &Method, request_alg: Option<SigningAlg>) -> ClientBuilder {
    let clock_sb = sb.clone();
    let b = Client::builder()
        .identity_url(sb.identity_url())
        .api_url(sb.api_url_v3())
        .client_id(CLIENT_ID)
        .redirect_uri(REDIRECT_URI)
        .retry_policy(fast_retries(0))
        .clock(move || clock_sb.now())
        .add_root_certificates_pem(fixture("ca.crt"))
        .request_object_signing_alg(request_alg);
    match method {
        Method::Secret => b.client_auth(ClientAuth::secret("matrix-secret")),
        Method::Key { key: name, alg } => b.client_auth(ClientAuth::private_key(key(name, *alg))),
        Method::Tls => b.client_auth(ClientAuth::tls()).tls_client_identity(identity("client-a")),
    }
}

/// connect → code exchange → transactions, as `CLIENT_ID` registered for `method`.
async fn run(method: Method, request_alg: Option<SigningAlg>) {
    let what = format!(
        "{} / request objects {}",
        match &method {
            Method::Secret => "client_secret_basic".to_owned(),
            Method::Key { key, alg } => format!("private_key_jwt {alg} ({key})"),
            Method::Tls => "self_signed_tls_client_auth".to_owned(),
        },
        request_alg.map_or("none".to_owned(), |a| a.to_string())
    );
    let sb = tls_sandbox(registration(&method, request_alg)).await;
    let client = builder(&sb, &method, request_alg).build().unwrap();
    let seq = last_seq(&sb).await;
    let user = client.users().create(Some("matrix")).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let request = client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()))
        .await
        .unwrap_or_else(|e| panic!("{what}: PAR: {e}"));
    let callback = crate::support::browser(&request).await;
    client.auth().exchange_code(&request, callback.as_str()).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let page = client
        .transactions()
        .list(&user.user_id, &TransactionFilter::new().limit(5))
        .await
        .unwrap_or_else(|e| panic!("{what}: Data API: {e}"));
    assert!(!page.transactions.is_empty(), "{what}");
    let log = requests_after(&sb, seq).await;
    let par: Vec<_> = log.iter().filter(|e| e["path"] == "/oidc/request").collect();
    assert_eq!(par.len(), 1, "{what}");
    assert_eq!(par[0]["status"], 201, "{what}");
    assert!(log.iter().filter(|e| e["path"] == "/oidc/token").all(|e| e["status"] == 200), "{what}");
}

#[tokio::test]
async fn client_secret_basic() {
    run(Method::Secret, None).await;
}

#[tokio::test]
async fn private_key_jwt_rs256() {
    let m = Method::Key { key: "rsa0", alg: SigningAlg::RS256 };
    run(m.clone(), None).await;
    run(m.clone(), Some(SigningAlg::RS256)).await;
    run(m, Some(SigningAlg::PS256)).await;
}

#[tokio::test]
async fn private_key_jwt_ps256() {
    let m = Method::Key { key: "rsa1", alg: SigningAlg::PS256 };
    run(m.clone(), None).await;
    run(m.clone(), Some(SigningAlg::PS256)).await;
    run(m, Some(SigningAlg::RS256)).await;
}

#[tokio::test]
async fn private_key_jwt_rs512() {
    let m = Method::Key { key: "rsa0", alg: SigningAlg::RS512 };
    run(m.clone(), None).await;
    run(m.clone(), Some(SigningAlg::RS256)).await;
    run(m, Some(SigningAlg::PS256)).await;
}

#[tokio::test]
async fn private_key_jwt_es256() {
    let m = Method::Key { key: "p256", alg: SigningAlg::ES256 };
    run(m.clone(), None).await;
    run(m, Some(SigningAlg::ES256)).await;
}

#[tokio::test]
async fn private_key_jwt_es384() {
    let m = Method::Key { key: "p384", alg: SigningAlg::ES384 };
    run(m.clone(), None).await;
    run(m, Some(SigningAlg::ES384)).await;
}

#[tokio::test]
async fn self_signed_tls_client_auth() {
    run(Method::Tls, None).await;
}

#[tokio::test]
async fn mtls_certificate_beside_a_private_key_with_signed_request_objects() {
    // The certificate presented for certificate-bound tokens, private_key_jwt beside it.
    let reg = ClientRegistration {
        tls_client_cert: Some(fixture("client-a.crt")),
        ..registration(&Method::Key { key: "p256", alg: SigningAlg::ES256 }, Some(SigningAlg::ES256))
    };
    let sb = tls_sandbox(reg).await;
    let m = Method::Key { key: "p256", alg: SigningAlg::ES256 };
    let with_cert =
        builder(&sb, &m, Some(SigningAlg::ES256)).tls_client_identity(identity("client-a")).build().unwrap();
    let user = with_cert.users().create(None).await.unwrap();
    let request = with_cert
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()))
        .await
        .unwrap();
    let callback = crate::support::browser(&request).await;
    with_cert.auth().exchange_code(&request, callback.as_str()).await.unwrap();
    with_cert.accounts().list(&user.user_id, &Default::default()).await.unwrap();
    // The same key without the certificate: the token endpoint refuses.
    let without = builder(&sb, &m, Some(SigningAlg::ES256)).build().unwrap();
    let err = without.users().list(Default::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(401), Some("invalid_client")), "{err}");
}

#[tokio::test]
async fn the_sandbox_refuses_plain_parameters_from_a_signed_client() {
    // Registered with PS256 request objects, configured (wrongly) with none.
    let m = Method::Key { key: "rsa0", alg: SigningAlg::RS256 };
    let sb = tls_sandbox(registration(&m, Some(SigningAlg::PS256))).await;
    let client = builder(&sb, &m, None).build().unwrap();
    let user = client.users().create(None).await.unwrap();
    let err = client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(400), Some("invalid_request")), "{err}");
    assert!(err.to_string().contains("request_object_signing_alg PS256"), "{err}");
    // Signed with another algorithm than the registered one: refused too.
    let rs256 = builder(&sb, &m, Some(SigningAlg::RS256)).build().unwrap();
    let err =
        rs256.auth().connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id)).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_request_object"), "{err}");
}

#[tokio::test]
async fn invalid_combinations_are_refused_before_anything_is_sent() {
    let sb = tls_sandbox(registration(&Method::Secret, None)).await;
    let seq = last_seq(&sb).await;
    // An EC key with an RSA algorithm, and the other way round.
    let err = PrivateKey::from_jwk(&fixture("p256.jwk")).unwrap().with_alg(SigningAlg::RS256).unwrap_err();
    assert!(err.to_string().contains("EC P-256") && err.to_string().contains("RS256"), "{err}");
    let err =
        PrivateKey::from_pem(&fixture("rsa0.pkcs1.pem")).unwrap().with_alg(SigningAlg::ES256).unwrap_err();
    assert!(err.to_string().contains("RSA") && err.to_string().contains("ES256"), "{err}");
    // A request-object algorithm without a private key.
    let err = builder(&sb, &Method::Secret, Some(SigningAlg::RS256)).build().unwrap_err();
    assert!(err.to_string().contains("needs a private key"), "{err}");
    let err = builder(&sb, &Method::Tls, Some(SigningAlg::ES256)).build().unwrap_err();
    assert!(err.to_string().contains("needs a private key"), "{err}");
    // A request-object algorithm the key cannot sign.
    let m = Method::Key { key: "rsa0", alg: SigningAlg::RS256 };
    let err = builder(&sb, &m, Some(SigningAlg::ES256)).build().unwrap_err();
    assert!(err.to_string().contains("ES256") && err.to_string().contains("RSA"), "{err}");
    // mTLS without a certificate; jwt-bearer without a signing algorithm.
    let err = builder(&sb, &Method::Secret, None).client_auth(ClientAuth::tls()).build().unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    let err = builder(&sb, &m, None).user_tokens(UserTokens::JwtBearer).build().unwrap_err();
    assert!(err.to_string().contains("request_object_signing_alg"), "{err}");
    // A certificate and key that are not PEM.
    let bad = TlsIdentity::from_pem("not a certificate", "not a key");
    let err = builder(&sb, &Method::Secret, None).tls_client_identity(bad).build().unwrap_err();
    assert!(err.to_string().contains("TLS client"), "{err}");
    assert!(requests_after(&sb, seq).await.is_empty(), "nothing may be sent");
}

#[test]
fn keys_load_from_every_format_and_infer_their_algorithm() {
    for (file, key_type, alg) in [
        ("rsa0.pkcs8.pem", KeyType::Rsa, SigningAlg::RS256),
        ("rsa0.pkcs1.pem", KeyType::Rsa, SigningAlg::RS256),
        ("rsa0.jwk", KeyType::Rsa, SigningAlg::RS256),
        ("p256.pkcs8.pem", KeyType::P256, SigningAlg::ES256),
        ("p256.sec1.pem", KeyType::P256, SigningAlg::ES256),
        ("p256.jwk", KeyType::P256, SigningAlg::ES256),
        ("p384.pkcs8.pem", KeyType::P384, SigningAlg::ES384),
        ("p384.sec1.pem", KeyType::P384, SigningAlg::ES384),
        ("p384.jwk", KeyType::P384, SigningAlg::ES384),
        ("p521.pkcs8.pem", KeyType::P521, SigningAlg::ES512),
        ("p521.sec1.pem", KeyType::P521, SigningAlg::ES512),
        ("p521.jwk", KeyType::P521, SigningAlg::ES512),
    ] {
        let k = PrivateKey::parse(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((k.key_type(), k.alg()), (key_type, alg), "{file}");
        let jwk = k.public_jwk();
        assert!(jwk.get("d").is_none(), "{file}");
        // The public JWK of every format of one key is the same.
        let same = PrivateKey::parse(&fixture(&format!("{}.jwk", &file[..4]))).unwrap().public_jwk();
        assert_eq!(jwk, same, "{file}");
    }
    // Every algorithm signs with a key that fits it.
    for alg in SigningAlg::ALL {
        let name = match alg.key_type() {
            KeyType::Rsa => "rsa0",
            KeyType::P256 => "p256",
            KeyType::P384 => "p384",
            KeyType::P521 => "p521",
            other => panic!("no test key of type {other:?}"),
        };
        let k = PrivateKey::parse(&fixture(&format!("{name}.jwk"))).unwrap().with_alg(alg).unwrap();
        let jws = k.sign(&json!({"a": 1})).unwrap();
        assert_eq!(jws.split('.').count(), 3, "{alg}");
    }
    assert!("HS256".parse::<SigningAlg>().unwrap_err().to_string().contains("unsupported"));
}

/// Connects `user` to the mock bank through the control API.
async fn connect_by_control(sb: &Sandbox, user: &str) {
    let (status, body) = crate::support::control(
        sb,
        reqwest::Method::POST,
        "/connections",
        Some(json!({"userId": user, "bankId": MOCK_BANK})),
    )
    .await;
    assert!(status.is_success(), "{body}");
}

/// A user of `matrix-client` (secret `matrix-secret`, certificate A) with a connection.
async fn matrix_user(sb: &Sandbox) -> String {
    let res = tls_http(Some("client-a"))
        .post(format!("{}/token", sb.issuer()))
        .basic_auth(CLIENT_ID, Some("matrix-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "user:create")])
        .send()
        .await
        .unwrap();
    let token: serde_json::Value = res.json().await.unwrap();
    let res = tls_http(Some("client-a"))
        .post(format!("{}/users", sb.base_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({"clientUserId": "mtls"}))
        .send()
        .await
        .unwrap();
    let user: serde_json::Value = res.json().await.unwrap();
    let id = user["userId"].as_str().unwrap_or_else(|| panic!("{user}")).to_owned();
    connect_by_control(sb, &id).await;
    id
}

/// A token from the sandbox's token endpoint over a connection with `cert` (or none).
async fn token_with_cert(sb: &Sandbox, cert: Option<&str>, user: &str) -> (StatusCode, serde_json::Value) {
    let http = tls_http(cert);
    let res = http
        .post(format!("{}/token", sb.issuer()))
        .basic_auth("matrix-client", Some("matrix-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "accounts:read"), ("sub", user)])
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

fn tls_http(cert: Option<&str>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(fixture("ca.crt").as_bytes()).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_merge([ca]);
    if let Some(name) = cert {
        let pem = format!("{}\n{}", fixture(&format!("{name}.crt")), fixture(&format!("{name}.key")));
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn mtls_refusals_and_certificate_bound_tokens() {
    let reg = ClientRegistration {
        tls_client_cert: Some(fixture("client-a.crt")),
        ..registration(&Method::Secret, None)
    };
    let sb = tls_sandbox(reg).await;
    let user = matrix_user(&sb).await;
    // No certificate, or another one: the token endpoint refuses.
    let (status, body) = token_with_cert(&sb, None, &user).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    let (status, body) = token_with_cert(&sb, Some("client-b"), &user).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    // Certificate A: a token bound to A.
    let (status, body) = token_with_cert(&sb, Some("client-a"), &user).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let read = |cert: Option<&'static str>| {
        let url = format!("{}/accounts", sb.api_url_v3());
        let token = token.clone();
        async move { tls_http(cert).get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(read(Some("client-a")).await, StatusCode::OK);
    assert_eq!(
        read(Some("client-b")).await,
        StatusCode::UNAUTHORIZED,
        "a token bound to A, presented with B"
    );
    assert_eq!(read(None).await, StatusCode::UNAUTHORIZED, "a bound token without a certificate");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_used_one_is_invalid_grant() {
    let m = Method::Key { key: "rsa0", alg: SigningAlg::RS256 };
    let sb = tls_sandbox(registration(&m, None)).await;
    let client = builder(&sb, &m, None).build().unwrap();
    let user = client.users().create(None).await.unwrap();
    let request = client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone()).offline_access(true))
        .await
        .unwrap();
    let callback = crate::support::browser(&request).await;
    let connected = client.auth().exchange_code(&request, callback.as_str()).await.unwrap();
    let first = connected.refresh_token.expect("offline_access gives a refresh token");
    let pair = client.auth().refresh_tokens(&first, None).await.unwrap();
    let second = pair.refresh_token.clone().expect("a rotated refresh token");
    assert_ne!(first, second);
    assert!(!format!("{pair:?}").contains(second.expose_secret()), "Debug redacts");
    // The new access token is valid (its scope is the authorisation's, which has no data
    // scope: 403, not 401), and the old one too until it expires.
    let res = tls_http(None)
        .get(format!("{}/accounts", sb.api_url_v3()))
        .bearer_auth(pair.access_token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The rotated-out token is spent; the new one works once.
    let seq = last_seq(&sb).await;
    let err = client.auth().refresh_tokens(&first, None).await.unwrap_err();
    assert!(err.is_invalid_grant(), "{err}");
    assert_eq!(
        token_requests(&requests_after(&sb, seq).await, "refresh_token", None).len(),
        1,
        "not retried"
    );
    let third = client.auth().refresh_tokens(&second, None).await.unwrap();
    assert!(third.refresh_token.is_some());
}

#[tokio::test]
async fn jwt_bearer_tokens_read_a_users_data_and_are_cached() {
    let m = Method::Key { key: "p256", alg: SigningAlg::ES256 };
    let sb = tls_sandbox(registration(&m, Some(SigningAlg::ES256))).await;
    let client =
        builder(&sb, &m, Some(SigningAlg::ES256)).user_tokens(UserTokens::JwtBearer).build().unwrap();
    let user = client.users().create(None).await.unwrap().user_id;
    connect_by_control(&sb, user.as_str()).await;
    let seq = last_seq(&sb).await;
    let accounts = client.accounts().list(&user, &Default::default()).await.unwrap();
    assert!(!accounts.is_empty());
    client.accounts().list(&user, &Default::default()).await.unwrap();
    let log = requests_after(&sb, seq).await;
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    assert_eq!(token_requests(&log, grant, Some(user.as_str())).len(), 1, "one jwt-bearer token, cached");
    assert!(token_requests(&log, "client_credentials", Some(user.as_str())).is_empty());
}
