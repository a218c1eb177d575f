//! No secret, key material or token in Debug/Display output or in trace output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use moneyhub::{ClientAuth, ConnectOptions, ErrorKind, PrivateKey, SyncOptions, TransactionFilter};
use serde_json::json;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::support::{
    bank, browser, builder, direct_token, fault, fixture, jwk_d, key_client, sandbox_with_key_client,
    test_key, user_with, MOCK_BANK,
};

/// Every window of `len` characters of `secret`.
fn windows(secret: &str, len: usize) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < len {
        return vec![secret.to_owned()];
    }
    chars.windows(len).map(|w| w.iter().collect()).collect()
}

fn assert_clean(output: &str, secrets: &[(&str, String)]) {
    for (what, secret) in secrets {
        for w in windows(secret, 20) {
            assert!(!output.contains(&w), "{what} leaked: {w:?} found in output");
        }
    }
    assert!(!output.contains("eyJ"), "a JWT (token, id_token or assertion) leaked");
    assert!(!output.contains("Bearer "), "an Authorization header leaked");
    assert!(!output.contains("Basic "), "client credentials leaked");
}

fn pem_body(pem: &str) -> Vec<String> {
    pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 20).map(str::to_owned).collect()
}

#[tokio::test]
async fn debug_and_display_never_show_secrets() {
    let key = PrivateKey::from_jwk(&test_key(0).jwk_private).unwrap().with_kid("k");
    let sb = sandbox_with_key_client("key-client", &key).await;
    let secret_client = builder(&sb).build().unwrap();
    let key_client = key_client(&sb, "key-client", key.clone());
    let (user, ids) = user_with(&sb, &[MOCK_BANK]).await;

    let key_user = key_client.users().create(None).await.unwrap().user_id;
    let request =
        key_client.auth().connect(ConnectOptions::new(bank(MOCK_BANK)).user(key_user)).await.unwrap();
    let callback = browser(&request).await;
    let code =
        moneyhub::CallbackParams::from_url(&callback).unwrap().code.unwrap().expose_secret().to_owned();
    let connected = key_client.auth().exchange_code(&request, callback.as_str()).await.unwrap();
    let replay = key_client.auth().exchange_code(&request, callback.as_str()).await.unwrap_err();
    let state_err = key_client
        .auth()
        .exchange_code(&request, moneyhub::CallbackParams::new(code.clone(), "wrong"))
        .await
        .unwrap_err();
    fault(&sb, json!({"method": "GET", "path": "/v3/accounts", "malformed": true, "times": 1})).await;
    let decode_err = secret_client.accounts().list(&user, &Default::default()).await.unwrap_err();
    fault(&sb, json!({"method": "GET", "path": "/v3/accounts", "status": 401, "times": 2})).await;
    let auth_err = secret_client.accounts().list(&user, &Default::default()).await.unwrap_err();
    let guard_ok = secret_client.connections().sync(&user, &ids[0], SyncOptions::new()).await;
    let guard_err = secret_client.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap_err();
    let bad_secret =
        builder(&sb).client_auth(ClientAuth::secret("wrong-secret-1234567890-abcdef")).build().unwrap();
    let oauth_err = bad_secret.users().list(Default::default()).await.unwrap_err();

    let token = direct_token(&sb, "accounts:read", Some(user.as_str())).await;
    let mut shown = String::new();
    for text in [
        format!("{secret_client:?}"),
        format!("{key_client:?}"),
        format!("{:?} {:?}", ClientAuth::secret("sandbox-secret"), ClientAuth::private_key(key.clone())),
        format!("{key:?}"),
        format!("{request:?}"),
        format!("{connected:?}"),
        format!("{:?}", moneyhub::CallbackParams::from_url(&callback).unwrap()),
        format!("{:?} {}", connected.access_token, connected.access_token),
        format!("{guard_ok:?}"),
    ] {
        shown.push_str(&text);
        shown.push('\n');
    }
    for err in [&replay, &state_err, &decode_err, &auth_err, &guard_err, &oauth_err] {
        shown.push_str(&format!("{err}\n{err:?}\n"));
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            shown.push_str(&format!("{s}\n{s:?}\n"));
            source = s.source();
        }
    }
    assert!(shown.contains("[redacted]"));
    let mut secrets = vec![
        ("client secret", "sandbox-secret".to_owned()),
        ("wrong client secret", "wrong-secret-1234567890-abcdef".to_owned()),
        ("JWK d", test_key(0).d_b64.clone()),
        ("code verifier", request.code_verifier.expose_secret().to_owned()),
        ("authorisation code", code),
        ("access token", connected.access_token.expose_secret().to_owned()),
        ("direct token", token),
    ];
    for line in pem_body(&test_key(0).pem_pkcs8) {
        secrets.push(("PEM body", line));
    }
    assert!(!shown.contains("sandbox-secret"));
    assert_clean(&shown, &secrets);
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The tests that capture trace output take turns, and each first makes sure a second
/// dispatcher is alive for the whole process. tracing-core caches, per callsite, whether any
/// subscriber wants it; while exactly one dispatcher is registered it asks only the
/// registering thread's subscriber, so a callsite first reached by a parallel test (no
/// subscriber on its thread) was cached as unwanted and the capture missed its events (seen
/// as "request failed" missing under load). With two dispatchers registered it asks all of them.
static TRACE_CAPTURE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn capture_every_callsite() {
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

#[tokio::test]
async fn trace_output_never_shows_secrets() {
    let _turn = TRACE_CAPTURE.lock().await;
    capture_every_callsite();
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace,moneyhub_sandbox=off")
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Thread-local, and #[tokio::test] runs everything on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let key = PrivateKey::from_pem(&test_key(1).pem_pkcs8).unwrap().with_kid("trace-key");
    let sb = sandbox_with_key_client("key-client", &key).await;
    let secret_client = builder(&sb).build().unwrap();
    let key_client = key_client(&sb, "key-client", key);
    let (user, ids) = user_with(&sb, &[MOCK_BANK]).await;

    // A bit of everything: PAR and code exchange with assertions, tokens, retries, errors.
    let new_user = key_client.users().create(Some("traced")).await.unwrap();
    let request = key_client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(new_user.user_id.clone()))
        .await
        .unwrap();
    let callback = browser(&request).await;
    let code =
        moneyhub::CallbackParams::from_url(&callback).unwrap().code.unwrap().expose_secret().to_owned();
    let connected = key_client.auth().exchange_code(&request, callback.as_str()).await.unwrap();
    let _ = key_client.auth().exchange_code(&request, callback.as_str()).await.unwrap_err();
    fault(&sb, json!({"method": "GET", "path": "/v3/transactions", "status": 503, "times": 1})).await;
    let page = secret_client.transactions().list(&user, &TransactionFilter::new().limit(5)).await.unwrap();
    let ids_to_fetch: Vec<String> = page.transactions.iter().map(|t| t.id.to_string()).collect();
    secret_client.transactions().by_ids(&user, &ids_to_fetch).await.unwrap();
    secret_client.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap();
    let _ = secret_client.connections().sync(&user, &ids[0], SyncOptions::new()).await.unwrap_err();
    fault(&sb, json!({"method": "GET", "path": "/v3/accounts", "status": 401, "times": 2})).await;
    let _ = secret_client.accounts().list(&user, &Default::default()).await.unwrap_err();
    let token = direct_token(&sb, "accounts:read", Some(user.as_str())).await;

    let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(output.contains("moneyhub.request"), "spans were captured");
    assert!(
        output.contains("/oidc/token") && output.contains("/users/{userId}/connections")
            || output.contains("/transactions")
    );
    assert!(output.contains("retrying"), "retry events were captured");
    let mut secrets = vec![
        ("client secret", "sandbox-secret".to_owned()),
        ("code verifier", request.code_verifier.expose_secret().to_owned()),
        ("authorisation code", code),
        ("access token", connected.access_token.expose_secret().to_owned()),
        ("direct token", token),
    ];
    for line in pem_body(&test_key(1).pem_pkcs8) {
        secrets.push(("PEM body", line));
    }
    assert!(!output.contains("sandbox-secret"));
    assert_clean(&output, &secrets);
}

/// A fault-injecting mock that answers every request but discovery with an error body echoing
/// the request: its headers (`Authorization` included), its body (form values, assertions) and
/// the bare credential without its scheme, in the message, the correlation id and the details.
/// The token endpoint answers a token when `token_ok`, else a 401 OAuth error echoing too.
async fn echo_server(token_ok: bool) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use axum::{Json, Router};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let echo = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
        let body = String::from_utf8_lossy(&body).into_owned();
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bare = auth.split_once(' ').map(|(_, v)| v.to_owned()).unwrap_or_default();
        let all: Vec<String> =
            headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect();
        let text = format!(
            "refused {method} {uri}; headers: {}; body: {body}; credential was {bare}",
            all.join("; ")
        );
        if uri.path() == "/oidc/token" {
            if token_ok {
                return Json(json!({
                    "access_token": "echo-access-token-0123456789abcdef", "token_type": "Bearer", "expires_in": 7200
                }))
                .into_response();
            }
            let body = json!({"error": format!("invalid_client {bare}"), "error_description": text});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
        let body = json!({
            "code": "Forbidden",
            "message": text,
            "correlationId": bare,
            "details": {"authorization": auth, "body": body, "nested": [{"echo": text}]},
        });
        (StatusCode::FORBIDDEN, Json(body)).into_response()
    };
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
        .fallback(echo);
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

fn echo_client(base: &str, auth: ClientAuth) -> moneyhub::Client {
    moneyhub::Client::builder()
        .identity_url(base)
        .api_url(format!("{base}/v3"))
        .client_id("echo-client")
        .client_auth(auth)
        .retry_policy(crate::support::fast_retries(0))
        .build()
        .unwrap()
}

/// Everything an error shows: Display, Debug, the source chain, and the API error's fields.
fn everything(err: &moneyhub::Error) -> String {
    let mut shown = format!("{err}\n{err:?}\n");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        shown.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    shown
}

/// Issue 11 #3: a server (or a proxy) that echoes the request into its error body cannot make
/// the client secret, the `Basic` value, the bearer token or a client assertion reach an
/// error's `Display`/`Debug` or the trace output.
#[tokio::test]
async fn error_bodies_echoing_the_request_are_redacted() {
    use base64::Engine;
    let _turn = TRACE_CAPTURE.lock().await;
    capture_every_callsite();
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let secret = "echo-secret-1234567890-abcdef";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("echo-client:{secret}"));
    let user: moneyhub::UserId = "5c79210bbac25ecb5e71ac40".parse().unwrap();

    // The token endpoint echoes `Authorization: Basic …` into an OAuth error.
    let refused = echo_client(&echo_server(false).await, ClientAuth::secret(secret));
    let oauth_err = refused.users().get(&user).await.unwrap_err();
    assert!(matches!(oauth_err.kind(), ErrorKind::OAuth(_)), "{oauth_err:?}");
    // The echo of a private_key_jwt client's form body (client_assertion=eyJ…).
    let key = PrivateKey::from_jwk(&test_key(0).jwk_private).unwrap().with_kid("k");
    let key_refused = echo_client(&echo_server(false).await, ClientAuth::private_key(key));
    let assertion_err = key_refused.users().get(&user).await.unwrap_err();
    // The API echoes `Authorization: Bearer …` (and the bare token as the correlation id).
    let accepted = echo_client(&echo_server(true).await, ClientAuth::secret(secret));
    let api_err = accepted.users().get(&user).await.unwrap_err();
    let ErrorKind::Api(api) = api_err.kind() else { panic!("expected an API error: {api_err:?}") };
    assert_eq!(api.status, 403);
    let fields = format!("{:?} {:?} {:?} {:?}", api.code, api.message, api.correlation_id, api.details);
    let tx_err = accepted.transactions().list(&user, &TransactionFilter::new()).await.unwrap_err();

    let mut shown = String::new();
    for err in [&oauth_err, &assertion_err, &api_err, &tx_err] {
        shown.push_str(&everything(err));
    }
    shown.push_str(&fields);
    // What is not a credential is still there to diagnose the failure.
    assert!(shown.contains("refused GET /users/5c79210bbac25ecb5e71ac40"), "{shown}");
    assert!(shown.contains("grant_type=client_credentials"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    // A value is removed whole (no padding left behind).
    assert!(!shown.contains("[redacted]="), "{shown}");
    let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(output.contains("request failed"), "the failures were traced: {output}");
    shown.push_str(&output);
    let secrets = vec![
        ("client secret", secret.to_owned()),
        ("Basic value", basic),
        ("access token", "echo-access-token-0123456789abcdef".to_owned()),
    ];
    // The schemes may stay (they help to read the echo), their values may not.
    let without_schemes = shown.replace("Bearer [redacted]", "").replace("Basic [redacted]", "");
    assert_clean(&without_schemes, &secrets);
}

#[test]
fn redact_credentials_covers_the_usual_shapes() {
    let cases = [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
        ("authorization: basic Zm9vOmJhcg==", "authorization: basic [redacted]"),
        ("client_secret=s3cr3t&grant_type=x", "client_secret=[redacted]&grant_type=x"),
        (
            r#"{"access_token": "tok", "token_type": "Bearer"}"#,
            r#"{"access_token": "[redacted]", "token_type": "Bearer"}"#,
        ),
        (r#"{\"refresh_token\":\"rt-1\"}"#, r#"{\"refresh_token\":\"[redacted]\"}"#),
        ("assertion eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "assertion [redacted]"),
        (
            "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("invalid client secret", "invalid client secret"),
        ("User not found", "User not found"),
    ];
    for (input, expected) in cases {
        assert_eq!(moneyhub::redact_credentials(input), expected, "{input}");
    }
}

#[tokio::test]
async fn ec_keys_client_certificate_keys_and_refresh_tokens_are_redacted() {
    // EC keys (P-256 from SEC1 PEM, P-384 from a JWK) signing assertions through a flow that
    // also yields refresh tokens.
    let p256 = PrivateKey::parse(&fixture("p256.sec1.pem")).unwrap().with_kid("ec");
    let p384 = PrivateKey::parse(&fixture("p384.jwk")).unwrap();
    let sb = sandbox_with_key_client("key-client", &p256).await;
    let client = key_client(&sb, "key-client", p256.clone());
    let user = client.users().create(None).await.unwrap().user_id;
    let request = client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user).offline_access(true))
        .await
        .unwrap();
    let callback = browser(&request).await;
    let connected = client.auth().exchange_code(&request, callback.as_str()).await.unwrap();
    let first = connected.refresh_token.clone().unwrap();
    let pair = client.auth().refresh_tokens(&first, None).await.unwrap();
    let reuse = client.auth().refresh_tokens(&first, None).await.unwrap_err();
    assert!(reuse.is_invalid_grant());

    // A client certificate's key: in a builder, in a client, and in the error of a pair that
    // does not match (certificate A with key B) or of a key that is not PEM.
    let identity = moneyhub::TlsIdentity::from_pem(fixture("client-a.crt"), fixture("client-a.key"));
    let with_cert = builder(&sb).tls_client_identity(identity.clone());
    let shown_builder = format!("{with_cert:?}");
    let with_cert = with_cert.build().unwrap();
    let mismatched = builder(&sb)
        .tls_client_identity(moneyhub::TlsIdentity::from_pem(
            fixture("client-a.crt"),
            fixture("client-b.key"),
        ))
        .build();
    let garbled_key = fixture("client-b.key").replace("MIG", "XXX");
    let garbled = builder(&sb)
        .tls_client_identity(moneyhub::TlsIdentity::from_pem(fixture("client-a.crt"), garbled_key))
        .build()
        .unwrap_err();
    // A broken EC JWK: its error must not quote `d`.
    let mut broken: serde_json::Value = serde_json::from_str(&fixture("p384.jwk")).unwrap();
    broken["x"] = json!("AAAA");
    let jwk_err = PrivateKey::from_jwk(&broken.to_string()).unwrap_err();

    let mut shown = String::new();
    for text in [
        format!("{p256:?} {p384:?}"),
        format!("{:?}", ClientAuth::private_key(p384.clone())),
        format!("{client:?}"),
        format!("{connected:?}"),
        format!("{pair:?}"),
        format!("{reuse} {reuse:?}"),
        format!("{identity:?}"),
        shown_builder,
        format!("{with_cert:?}"),
        format!("{:?}", mismatched.map(|_| ())),
        format!("{garbled} {garbled:?}"),
        format!("{jwk_err} {jwk_err:?}"),
    ] {
        shown.push_str(&text);
        shown.push('\n');
    }
    assert!(shown.contains("[redacted]"));
    let mut secrets = vec![
        ("P-256 d", jwk_d("p256")),
        ("P-384 d", jwk_d("p384")),
        ("refresh token", first.expose_secret().to_owned()),
        ("rotated refresh token", pair.refresh_token.clone().unwrap().expose_secret().to_owned()),
        ("refreshed access token", pair.access_token.expose_secret().to_owned()),
    ];
    for file in ["p256.sec1.pem", "client-a.key", "client-b.key"] {
        for line in pem_body(&fixture(file)) {
            secrets.push(("PEM body", line));
        }
    }
    assert_clean(&shown, &secrets);
}
