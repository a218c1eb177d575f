//! The OIDC identity service over real HTTP: discovery and JWKS, client authentication,
//! the token endpoint's grants, PAR, request objects, `/oidc/auth` and the connection flows
//! (new, async, reauth, refresh, reconsent).

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use moneyhub_sandbox::{ClientRegistration, ClockMode, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";
const JWT_CLIENT: &str = "jwt-client";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A test RSA key: the private half for signing, the public JWK for registration.
struct TestKey {
    encoding: EncodingKey,
    jwk: Value,
}

/// Two keys per test binary (RSA key generation is slow): the registered one and a stranger.
fn keys() -> &'static [TestKey; 2] {
    static KEYS: OnceLock<[TestKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = |name: &str, kid: &str| {
            let private: Value =
                serde_json::from_str(&crate::support::fixture(&format!("{name}.jwk"))).unwrap();
            TestKey {
                encoding: EncodingKey::from_rsa_pem(
                    crate::support::fixture(&format!("{name}.pkcs1.pem")).as_bytes(),
                )
                .unwrap(),
                jwk: json!({"kty": "RSA", "use": "sig", "kid": kid, "n": private["n"], "e": private["e"]}),
            }
        };
        [make("rsa0", "test-key-1"), make("rsa1", "test-key-2")]
    })
}

fn sign(alg: Algorithm, key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, &key.encoding).unwrap()
}

fn unsigned(claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"oauth-authz-req+jwt"}"#);
    format!("{h}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// A sandbox with the default client plus `jwt-client` (no secret, registered key 1,
/// request objects RS256).
async fn sandbox_with_jwt_client() -> Sandbox {
    let jwt_client = ClientRegistration {
        client_id: JWT_CLIENT.into(),
        client_secret: None,
        jwks: Some(json!({"keys": [keys()[0].jwk]})),
        redirect_uris: vec!["https://tpp.example/cb".into()],
        request_object_signing_alg: "RS256".into(),
        ..Default::default()
    };
    sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        clients: vec![ClientRegistration::default(), jwt_client],
        ..Default::default()
    })
    .await
}

fn assertion_claims(sb: &Sandbox, jti: &str) -> Value {
    let now = sb.now().timestamp();
    json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": [sb.issuer(), format!("{}/token", sb.issuer())],
        "jti": jti, "iat": now, "exp": now + 60})
}

/// Signs `claims` as `jwt-client` does: RS256 with its registered key (kid `test-key-1`).
fn sign_registered(claims: &Value) -> String {
    sign(Algorithm::RS256, &keys()[0], Some("test-key-1"), claims)
}

/// A client assertion of `jwt-client` with this `jti`, signed with its registered key.
fn client_assertion(sb: &Sandbox, jti: &str) -> String {
    sign_registered(&assertion_claims(sb, jti))
}

/// `POST /oidc/token` without client authentication beyond what `form` carries.
async fn post_token(sb: &Sandbox, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = http().post(format!("{}/oidc/token", sb.base_url())).form(form).send().await.unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// `POST /oidc/token` as the default client (`client_secret_basic`).
async fn secret_token(sb: &Sandbox, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// A user created with a `user:create` token of `jwt-client` (assertion `jti`).
async fn jwt_client_user(sb: &Sandbox, jti: &str, body: Value) -> String {
    let (_, token) = jwt_client_token(sb, "user:create", &client_assertion(sb, jti)).await;
    let res = http()
        .post(format!("{}/users", sb.base_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["userId"].as_str().unwrap().to_string()
}

/// PAR as `jwt-client` (`private_key_jwt`, assertion `jti`) carrying the request object
/// `request`.
async fn jwt_client_par(sb: &Sandbox, jti: &str, request: &str) -> reqwest::Response {
    let a = client_assertion(sb, jti);
    http()
        .post(format!("{}/oidc/request", sb.base_url()))
        .form(&[
            ("client_id", JWT_CLIENT),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &a),
            ("request", request),
        ])
        .send()
        .await
        .unwrap()
}

async fn jwt_client_token(sb: &Sandbox, scope: &str, assertion: &str) -> (StatusCode, Value) {
    post_token(
        sb,
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_id", JWT_CLIENT),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn auth_get(sb: &Sandbox, query: &[(&str, &str)]) -> reqwest::Response {
    http().get(format!("{}/oidc/auth", sb.base_url())).query(query).send().await.unwrap()
}

/// `/oidc/auth` with plain parameters (no PAR) for the default client: `client_id` and
/// `redirect_uri` = [`REDIRECT_URI`], then `rest`.
async fn auth_plain(sb: &Sandbox, rest: &[(&str, &str)]) -> reqwest::Response {
    let mut query = vec![("client_id", sb.client_id()), ("redirect_uri", REDIRECT_URI)];
    query.extend_from_slice(rest);
    auth_get(sb, &query).await
}

/// The `request_uri` of a PAR answer.
async fn request_uri_of(res: reqwest::Response) -> String {
    res.json::<Value>().await.unwrap()["request_uri"].as_str().unwrap().to_string()
}

/// PAR with `extra` (asserting 201), then `/oidc/auth` with its `request_uri`: the
/// parameters of the redirect.
async fn pushed_auth(sb: &Sandbox, extra: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let res = par(sb, extra).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ru = request_uri_of(res).await;
    location_params(&auth_get(sb, &[("request_uri", &ru)]).await)
}

/// The `mh:con_id` claim of a token answer's id_token (unverified).
fn con_id_of(body: &Value) -> Value {
    jwt_claims(body["id_token"].as_str().unwrap())["mh:con_id"].clone()
}

/// Verifies an id_token with `/oidc/certs` (signature, iss, aud; exp against iat since the
/// virtual clock is not the wall clock) and returns its claims.
async fn verify_id_token(sb: &Sandbox, id_token: &str, aud: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet =
        http().get(format!("{}/oidc/certs", sb.base_url())).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in /oidc/certs");
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.set_audience(&[aud]);
    v.set_issuer(&[sb.issuer()]);
    v.set_required_spec_claims(&["iss", "aud", "sub"]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap().claims;
    assert_eq!(claims["iat"], sb.now().timestamp());
    assert_eq!(claims["exp"], sb.now().timestamp() + 3600);
    claims
}

fn user_claims(user: &str) -> Value {
    json!({"id_token": {"sub": {"essential": true, "value": user}, "mh:con_id": {"essential": true}}})
}

fn renew_claims(user: &str, conn: &str) -> Value {
    json!({"id_token": {"sub": {"essential": true, "value": user}, "mh:con_id": {"essential": true, "value": conn}}})
}

/// PAR's error for these parameters (status, error code).
async fn par_error(sb: &Sandbox, scope: &str, claims: &Value) -> (StatusCode, String) {
    let c = claims.to_string();
    let res = par(sb, &[("scope", scope), ("claims", &c)]).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

/// Where a request is refused and with what: `("par", error)` when the pushed request is
/// malformed, else `("auth", error)` from `/oidc/auth`'s redirect to the client (what
/// depends on the store's users and connections is checked there, as Moneyhub does).
async fn refusal(sb: &Sandbox, scope: &str, claims: &Value) -> (&'static str, String) {
    let c = claims.to_string();
    let res = par(sb, &[("scope", scope), ("claims", &c)]).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    if status == StatusCode::BAD_REQUEST {
        return ("par", body["error"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let res = auth_get(sb, &[("request_uri", body["request_uri"].as_str().unwrap())]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let p = location_params(&res);
    assert_eq!(p.get("state").map(String::as_str), Some("st-1"), "{p:?}");
    ("auth", p.get("error").cloned().unwrap_or_default())
}

async fn account_ids(sb: &Sandbox, user: &str, conn: &str) -> Vec<String> {
    let tok = token(sb, "connection:read", None).await;
    let (status, body) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &tok).await;
    assert_eq!(status, StatusCode::OK);
    let c =
        body["data"].as_array().unwrap().iter().find(|c| c["id"] == conn).expect("connection listed").clone();
    c["accountIds"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

// ----- discovery, JWKS ---------------------------------------------------------------------

#[tokio::test]
async fn discovery_names_the_sandbox_endpoints() {
    let sb = sandbox().await;
    let d: Value = http()
        .get(format!("{}/oidc/.well-known/openid-configuration", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = sb.issuer();
    assert_eq!(d["issuer"], iss);
    assert_eq!(d["authorization_endpoint"], format!("{iss}/auth"));
    assert_eq!(d["token_endpoint"], format!("{iss}/token"));
    assert_eq!(d["jwks_uri"], format!("{iss}/certs"));
    assert_eq!(d["pushed_authorization_request_endpoint"], format!("{iss}/request"));
    assert!(d["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    let scopes = d["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!(format!("id:{MOCK}"))));
    let certs: Value = http().get(format!("{iss}/certs")).send().await.unwrap().json().await.unwrap();
    let k = &certs["keys"][0];
    assert_eq!(
        (k["kty"].as_str(), k["use"].as_str(), k["alg"].as_str()),
        (Some("RSA"), Some("sig"), Some("RS256"))
    );
    assert!(k["kid"].is_string());
}

// ----- client authentication ---------------------------------------------------------------

#[tokio::test]
async fn client_secret_basic_and_post() {
    let sb = sandbox().await;
    let url = format!("{}/oidc/token", sb.base_url());
    let form = [("grant_type", "client_credentials"), ("scope", "user:read")];
    let res =
        http().post(&url).basic_auth(sb.client_id(), sb.client_secret()).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["scope"], "user:read");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    for (id, secret) in [(sb.client_id(), "wrong"), ("nobody", "sandbox-secret")] {
        let res = http().post(&url).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{id}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // No authentication at all.
    let (status, body) = post_token(&sb, &form).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    // client_secret_post.
    let (status, _) = post_token(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "user:read"),
            ("client_id", sb.client_id()),
            ("client_secret", sb.client_secret().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Basic credentials are form-urlencoded: an encoded id still authenticates.
    let res = http()
        .post(&url)
        .header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("sandbox%2Dclient:sandbox-secret")
            ),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn private_key_jwt_accepts_rs256_and_ps256() {
    let sb = sandbox_with_jwt_client().await;
    for (i, alg) in [Algorithm::RS256, Algorithm::PS256].into_iter().enumerate() {
        let a = sign(alg, &keys()[0], Some("test-key-1"), &assertion_claims(&sb, &format!("ok-{i}")));
        let (status, body) = jwt_client_token(&sb, "user:read", &a).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
    }
    // No kid: every registered RSA key is tried; aud as a plain string.
    let mut c = assertion_claims(&sb, "no-kid");
    c["aud"] = json!(format!("{}/token", sb.issuer()));
    let (status, body) =
        jwt_client_token(&sb, "user:read", &sign(Algorithm::RS256, &keys()[0], None, &c)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn private_key_jwt_rejections_are_invalid_client() {
    let sb = sandbox_with_jwt_client().await;
    let now = sb.now().timestamp();
    let good = |jti: &str| assertion_claims(&sb, jti);
    let mut expired = good("expired");
    expired["exp"] = json!(now - 60);
    let mut wrong_aud = good("aud");
    wrong_aud["aud"] = json!("https://identity.moneyhub.co.uk/oidc");
    let mut no_jti = good("x");
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut wrong_sub = good("sub");
    wrong_sub["sub"] = json!("someone-else");
    let cases = [
        ("wrong key", sign(Algorithm::RS256, &keys()[1], Some("test-key-1"), &good("k"))),
        ("unknown kid", sign(Algorithm::RS256, &keys()[1], Some("test-key-2"), &good("k2"))),
        ("expired", sign(Algorithm::RS256, &keys()[0], Some("test-key-1"), &expired)),
        ("wrong aud", sign(Algorithm::RS256, &keys()[0], Some("test-key-1"), &wrong_aud)),
        ("no jti", sign(Algorithm::RS256, &keys()[0], Some("test-key-1"), &no_jti)),
        ("iss != sub", sign(Algorithm::RS256, &keys()[0], Some("test-key-1"), &wrong_sub)),
        (
            "HS256",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &good("hs"),
                &EncodingKey::from_secret(b"s"),
            )
            .unwrap(),
        ),
        ("alg none", unsigned(&good("none"))),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (what, a) in cases {
        let (status, body) = jwt_client_token(&sb, "user:read", &a).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}");
    }
    // Replay: the same jti twice.
    let a = sign(Algorithm::RS256, &keys()[0], Some("test-key-1"), &good("once"));
    assert_eq!(jwt_client_token(&sb, "user:read", &a).await.0, StatusCode::OK);
    let (status, body) = jwt_client_token(&sb, "user:read", &a).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    assert!(body["error_description"].as_str().unwrap().contains("jti"));
    // A client without a secret cannot use client_secret_basic.
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(JWT_CLIENT, Some("x"))
        .form(&[("grant_type", "client_credentials"), ("scope", "user:read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

// ----- client_credentials ------------------------------------------------------------------

#[tokio::test]
async fn client_credentials_with_and_without_sub() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    // Without sub: management routes work.
    let tok = token(&sb, "user:read", None).await;
    let (status, _) = get_json(&format!("{}/users/{user}", sb.base_url()), &tok).await;
    assert_eq!(status, StatusCode::OK);
    // With sub: a user-bound token.
    let tok = token(&sb, "accounts:read transactions:read:all", Some(&user)).await;
    let (status, _) = get_json(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    assert_eq!(status, StatusCode::OK);
    // Unknown user.
    let (status, body) = secret_token(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "accounts:read"),
            ("sub", "000000000000000000000000"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // Missing or malformed scope, unknown grant.
    for (form, err) in [
        (vec![("grant_type", "client_credentials")], "invalid_request"),
        (vec![("grant_type", "client_credentials"), ("scope", "a\"b")], "invalid_scope"),
        (vec![("grant_type", "password"), ("scope", "x")], "unsupported_grant_type"),
        (vec![("scope", "x")], "invalid_request"),
    ] {
        let (status, body) = secret_token(&sb, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(body["error"], err, "{form:?}");
    }
}

#[tokio::test]
async fn token_requests_are_noted_in_the_request_log() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    token(&sb, "accounts:read", Some(&user)).await;
    token(&sb, "accounts:read", Some(&user)).await;
    let (_, log) = control(&sb, reqwest::Method::GET, "/requests", None).await;
    let notes: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == "/oidc/token")
        .filter_map(|e| e["note"].as_str())
        .collect();
    let wanted = format!("grant=client_credentials sub={user}");
    assert_eq!(notes.iter().filter(|n| **n == wanted).count(), 2, "{notes:?}");
    assert!(notes.contains(&"grant=client_credentials sub=-"), "{notes:?}");
}

// ----- PAR, /oidc/auth, code exchange -----------------------------------------------------

#[tokio::test]
async fn par_answers_201_with_a_request_uri() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let claims = user_claims(&user).to_string();
    let res = par(&sb, &[("scope", &format!("openid id:{MOCK}")), ("claims", &claims)]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert!(body["request_uri"].as_str().unwrap().starts_with("urn:ietf:params:oauth:request_uri:"));
    assert!(body["expires_in"].is_u64(), "{body}");
    // Unauthenticated PAR.
    let res = http()
        .post(format!("{}/oidc/request", sb.base_url()))
        .form(&[("client_id", sb.client_id()), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn full_flow_creates_a_connection_and_a_verifiable_id_token() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let claims = user_claims(&user).to_string();
    let res = par(&sb, &[("scope", &format!("openid id:{MOCK}")), ("claims", &claims)]).await;
    let request_uri = request_uri_of(res).await;
    // As Node 5.2.1 builds it: the pushed values win over scope=openid etc.
    let res = auth_plain(
        &sb,
        &[
            ("scope", "openid"),
            ("response_type", "code"),
            ("request_uri", &request_uri),
            ("expires_in", "90"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(REDIRECT_URI), "{loc}");
    let p = location_params(&res);
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["iss"], sb.issuer());
    let code = p["code"].clone();
    // The request URI was single use.
    let again = auth_get(&sb, &[("request_uri", &request_uri)]).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);

    let (status, body) = exchange(&sb, &code, &[("sub", &user)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none(), "no offline_access, no refresh token");
    let claims = verify_id_token(&sb, body["id_token"].as_str().unwrap(), sb.client_id()).await;
    assert_eq!(claims["sub"], user);
    assert_eq!(claims["nonce"], "n-1");
    assert!(claims.get("auth_time").is_none());
    assert!(claims.get("mh:sync").is_none());
    assert!(claims["sid"].is_string());
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        claims["at_hash"],
        URL_SAFE_NO_PAD.encode(&moneyhub_sandbox::kit::sha256(at.as_bytes())[..16])
    );
    let con_id = claims["mh:con_id"].as_str().unwrap();
    assert!(con_id.starts_with(&format!("{MOCK}:")));
    assert_eq!(account_ids(&sb, &user, con_id).await.len(), 3);

    // Reuse of the code.
    let (status, body) = exchange(&sb, &code, &[]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn support_connect_and_renew_work() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let con = connect(&sb, &user, MOCK).await;
    assert_eq!(renew(&sb, &user, &con, "reauth").await, con, "reauth with the same accounts keeps the id");
    assert_eq!(renew(&sb, &user, &con, "reconsent").await, con);
    let legacy = connect(&sb, &user, AVIVA).await;
    assert_eq!(renew(&sb, &user, &legacy, "refresh").await, legacy);
}

#[tokio::test]
async fn code_exchange_checks_redirect_uri_client_sub_and_expiry() {
    let sb = sandbox_with_jwt_client().await;
    let user = create_user(&sb).await;
    let code = authorize_code(&sb, &format!("openid id:{MOCK}"), &user_claims(&user)).await;
    let (status, body) = exchange(&sb, &code, &[("redirect_uri", "http://127.0.0.1:9999/other")]).await;
    // The extra redirect_uri repeats the parameter: invalid_request; send only the wrong one.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, body) = secret_token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9999/other"),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, body) = exchange(&sb, &code, &[("sub", "000000000000000000000000")]).await;
    assert_eq!(body["error"], "invalid_grant");
    // Another client cannot redeem it.
    let a = client_assertion(&sb, "code-thief");
    let (status, body) = post_token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &a),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    // Failed attempts do not consume it...
    let (status, _) = exchange(&sb, &code, &[]).await;
    assert_eq!(status, StatusCode::OK);
    // ...and codes die after 10 virtual minutes.
    let code = authorize_code(&sb, &format!("openid id:{MOCK}"), &user_claims(&user)).await;
    sb.advance_clock(Duration::minutes(10) + Duration::seconds(1)).unwrap();
    let (status, body) = exchange(&sb, &code, &[]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn pkce_s256_is_enforced() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let verifier = "a-very-long-code-verifier-that-is-at-least-43-characters";
    let challenge = URL_SAFE_NO_PAD.encode(moneyhub_sandbox::kit::sha256(verifier.as_bytes()));
    let claims = user_claims(&user).to_string();
    let scope = format!("openid id:{MOCK}");
    let mut codes = Vec::new();
    for _ in 0..3 {
        let pushed: [(&str, &str); 4] = [
            ("scope", scope.as_str()),
            ("claims", &claims),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        codes.push(pushed_auth(&sb, &pushed).await["code"].clone());
    }
    let (_, body) = exchange(&sb, &codes[0], &[]).await;
    assert_eq!(body["error"], "invalid_grant", "missing verifier");
    let (_, body) =
        exchange(&sb, &codes[1], &[("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-xx")])
            .await;
    assert_eq!(body["error"], "invalid_grant", "wrong verifier");
    let (status, body) = exchange(&sb, &codes[2], &[("code_verifier", verifier)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // plain is not supported.
    let res = par(
        &sb,
        &[
            ("scope", &scope),
            ("claims", &claims),
            ("code_challenge", &challenge),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn auth_errors_redirect_only_to_trusted_redirect_uris() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let claims = user_claims(&user).to_string();
    // Unregistered redirect URI: a direct 400, never a redirect.
    let res = auth_get(
        &sb,
        &[
            ("client_id", sb.client_id()),
            ("redirect_uri", "https://evil.example/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Unknown client.
    let res =
        auth_get(&sb, &[("client_id", "nobody"), ("redirect_uri", REDIRECT_URI), ("response_type", "code")])
            .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A scope error with a good client + redirect goes back to the client.
    let two_banks = format!("openid id:{MOCK} id:{AVIVA}");
    let res = auth_plain(
        &sb,
        &[("response_type", "code"), ("scope", &two_banks), ("state", "s9"), ("claims", &claims)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let p = location_params(&res);
    assert_eq!(p["error"], "invalid_scope");
    assert_eq!(p["state"], "s9");
    assert_eq!(p["iss"], sb.issuer());
    // Unknown request_uri.
    let res = auth_get(&sb, &[("request_uri", "urn:ietf:params:oauth:request_uri:nope")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request_uri");
    // Plain parameters work too (no PAR).
    let scope = format!("openid id:{MOCK}");
    let res = auth_plain(&sb, &[("response_type", "code"), ("scope", &scope), ("claims", &claims)]).await;
    assert!(location_params(&res).contains_key("code"));
}

#[tokio::test]
async fn hybrid_code_id_token_puts_c_hash_in_the_fragment() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let claims = user_claims(&user).to_string();
    let scope = format!("openid id:{MOCK}");
    let hybrid: [(&str, &str); 3] =
        [("response_type", "code id_token"), ("scope", scope.as_str()), ("claims", &claims)];
    let res = auth_plain(&sb, &[&hybrid[..], &[("state", "hy"), ("nonce", "hn")]].concat()).await;
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let url = url::Url::parse(&loc).unwrap();
    assert!(url.query().is_none(), "{loc}");
    let p = location_params(&res);
    let front = verify_id_token(&sb, &p["id_token"], sb.client_id()).await;
    assert_eq!(front["nonce"], "hn");
    assert_eq!(
        front["c_hash"],
        URL_SAFE_NO_PAD.encode(&moneyhub_sandbox::kit::sha256(p["code"].as_bytes())[..16])
    );
    let (status, body) = exchange(&sb, &p["code"], &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(con_id_of(&body).is_string());
    // Without a nonce, a response type with an id_token is refused.
    let res = auth_plain(&sb, &hybrid).await;
    assert_eq!(location_params(&res)["error"], "invalid_request");
}

// ----- request objects ---------------------------------------------------------------------

fn request_object_claims(sb: &Sandbox, client_id: &str, redirect: &str, user: &str) -> Value {
    let now = sb.now().timestamp();
    json!({"iss": client_id, "aud": sb.issuer(), "iat": now, "exp": now + 300, "jti": "ro-1",
        "client_id": client_id, "scope": format!("openid id:{MOCK}"), "state": "ro-state", "nonce": "ro-nonce",
        "redirect_uri": redirect, "response_type": "code", "prompt": "consent", "max_age": 86400,
        "claims": user_claims(user)})
}

#[tokio::test]
async fn request_objects_follow_the_registered_alg() {
    let sb = sandbox_with_jwt_client().await;
    let user = create_user(&sb).await;
    // Default client registered alg none: an unsigned front-channel request object works,
    // and its values win over the plain ones (as Node 5.2.1 sends them).
    let ro = unsigned(&request_object_claims(&sb, sb.client_id(), REDIRECT_URI, &user));
    let res = auth_plain(
        &sb,
        &[
            ("scope", "openid"),
            ("response_type", "code"),
            ("state", "plain-state"),
            ("nonce", "plain-nonce"),
            ("prompt", "consent"),
            ("request", &ro),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let p = location_params(&res);
    assert_eq!(p["state"], "ro-state");
    let (status, body) = exchange(&sb, &p["code"], &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = verify_id_token(&sb, body["id_token"].as_str().unwrap(), sb.client_id()).await;
    assert_eq!(c["nonce"], "ro-nonce");
    assert_eq!(c["auth_time"], sb.now().timestamp(), "max_age asks for auth_time");
    // A signed object for the alg-none client is refused.
    let signed = sign_registered(&request_object_claims(&sb, sb.client_id(), REDIRECT_URI, &user));
    let res = auth_plain(&sb, &[("request", &signed)]).await;
    assert_eq!(location_params(&res)["error"], "invalid_request_object");

    // The RS256 client: unsigned → invalid_request_object naming the preregistered alg.
    let jwt_user = jwt_client_user(&sb, "mk-user", json!({})).await;
    let redirect = "https://tpp.example/cb";
    let claims = request_object_claims(&sb, JWT_CLIENT, redirect, &jwt_user);
    let res = jwt_client_par(&sb, "par-1", &unsigned(&claims)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request_object");
    assert!(body["error_description"].as_str().unwrap().contains("preregistered alg RS256"), "{body}");
    // Signed with PS256 (not the registered alg) → refused; RS256 with the wrong key → refused.
    for (alg, key) in [(Algorithm::PS256, &keys()[0]), (Algorithm::RS256, &keys()[1])] {
        let res = auth_get(
            &sb,
            &[("client_id", JWT_CLIENT), ("request", &sign(alg, key, Some("test-key-1"), &claims))],
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{alg:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request_object");
    }
    // Signed RS256 through PAR → 201, then /oidc/auth → code for the registered redirect.
    let res = jwt_client_par(&sb, "par-2", &sign_registered(&claims)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ru = request_uri_of(res).await;
    let res = auth_get(&sb, &[("request_uri", &ru)]).await;
    assert!(res.headers()["location"].to_str().unwrap().starts_with(redirect));
    assert!(location_params(&res).contains_key("code"));
}

#[tokio::test]
async fn legacy_post_request_gives_a_usable_request_uri() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let ro = unsigned(&request_object_claims(&sb, sb.client_id(), REDIRECT_URI, &user));
    let res = http()
        .post(format!("{}/request", sb.base_url()))
        .header("content-type", "application/jws")
        .body(ro)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let uri = res.text().await.unwrap();
    assert!(uri.starts_with("urn:x-mh-request:"), "{uri}");
    let res = auth_get(&sb, &[("request_uri", &uri)]).await;
    assert!(location_params(&res).contains_key("code"));
    let res = http().post(format!("{}/request", sb.base_url())).body("garbage").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

// ----- scope rules and connection flows -----------------------------------------------------

#[tokio::test]
async fn scope_rules() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let con = connect(&sb, &user, MOCK).await;
    let cases = [
        (format!("openid id:{MOCK} id:{AVIVA}"), user_claims(&user), "invalid_scope"),
        (format!("id:{MOCK}"), user_claims(&user), "invalid_scope"),
        ("openid".to_string(), user_claims(&user), "invalid_scope"),
        ("openid id:ffffffffffffffffffffffffffffffff".to_string(), user_claims(&user), "invalid_scope"),
        ("openid reauth accounts:read".to_string(), renew_claims(&user, &con), "invalid_scope"),
        ("openid reauth offline_access".to_string(), renew_claims(&user, &con), "invalid_scope"),
        (format!("openid reauth id:{MOCK}"), renew_claims(&user, &con), "invalid_scope"),
        ("openid reauth refresh".to_string(), renew_claims(&user, &con), "invalid_scope"),
        ("openid reauth".to_string(), user_claims(&user), "invalid_request"),
        // Renewals need the user even though new connections may leave it out (one-time access).
        ("openid reauth".to_string(), json!({"id_token": {"mh:con_id": {"value": con}}}), "invalid_request"),
        (
            format!("openid id:{MOCK}"),
            json!({"id_token": {"sub": {"value": user}, "mh:consent": {"value": {"expirationDateTime": "2099-01-01T00:00:00Z"}}}}),
            "invalid_request",
        ),
    ];
    for (scope, claims, err) in cases {
        let (status, got) = par_error(&sb, &scope, &claims).await;
        assert_eq!((status, got.as_str()), (StatusCode::BAD_REQUEST, err), "{scope} {claims}");
    }
    // Well-formed, but not possible with the store as it is: refused at /oidc/auth.
    let cases = [
        ("openid refresh".to_string(), renew_claims(&user, &con)),
        ("openid reauth".to_string(), renew_claims(&user, "nope")),
        (format!("openid id:{MOCK}"), user_claims("000000000000000000000000")),
    ];
    for (scope, claims) in cases {
        let got = refusal(&sb, &scope, &claims).await;
        assert_eq!(got, ("auth", "invalid_request".to_string()), "{scope} {claims}");
    }
    // Generic chooser scopes pick a provider of that listing.
    let code = authorize_code(&sb, "openid id:test", &user_claims(&user)).await;
    let (_, body) = exchange(&sb, &code, &[]).await;
    assert!(con_id_of(&body).as_str().unwrap().starts_with(MOCK));
}

#[tokio::test]
async fn reconsent_needs_tpp_consent_and_sets_the_requested_expiry() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let con = connect(&sb, &user, MOCK).await;
    let exp = (sb.now() + Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let claims = json!({"id_token": {"sub": {"value": user}, "mh:con_id": {"value": con},
        "mh:consent": {"value": {"expirationDateTime": exp}}}});
    let code = authorize_code(&sb, "openid reconsent", &claims).await;
    let (status, body) = exchange(&sb, &code, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tok = token(&sb, "connection:read", None).await;
    let (_, list) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &tok).await;
    assert_eq!(list["data"][0]["expiresAt"], exp);
    // Reconsent on a legacy connection is refused.
    let legacy = connect(&sb, &user, AVIVA).await;
    let got = refusal(&sb, "openid reconsent", &renew_claims(&user, &legacy)).await;
    assert_eq!(got, ("auth", "invalid_request".to_string()));
    // 90 days after expiry tppConsent is gone: only reauth remains.
    sb.advance_clock(Duration::days(30 + 91)).unwrap();
    let got = refusal(&sb, "openid reconsent", &renew_claims(&user, &con)).await;
    assert_eq!(got, ("auth", "invalid_request".to_string()));
    assert_eq!(renew(&sb, &user, &con, "reauth").await, con);
}

#[tokio::test]
async fn reauth_with_a_subset_of_accounts_gives_a_new_connection_id() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let con = connect(&sb, &user, MOCK).await;
    let accounts = account_ids(&sb, &user, &con).await;
    assert_eq!(accounts.len(), 3);
    let subset = accounts[1..].join(",");
    let claims = renew_claims(&user, &con).to_string();
    let p =
        pushed_auth(&sb, &[("scope", "openid reauth"), ("claims", &claims), ("sandbox_accounts", &subset)])
            .await;
    let (status, body) = exchange(&sb, &p["code"], &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_id = con_id_of(&body).as_str().unwrap().to_string();
    assert_ne!(new_id, con);
    assert!(new_id.starts_with(&format!("{MOCK}:")));
    let mut moved = account_ids(&sb, &user, &new_id).await;
    moved.sort();
    let mut want = accounts[1..].to_vec();
    want.sort();
    assert_eq!(moved, want);
    assert_eq!(account_ids(&sb, &user, &con).await, vec![accounts[0].clone()]);
    // An account of another connection is refused (at /oidc/auth: it depends on the store).
    let claims = renew_claims(&user, &new_id).to_string();
    let p = pushed_auth(
        &sb,
        &[("scope", "openid reauth"), ("claims", &claims), ("sandbox_accounts", &accounts[0])],
    )
    .await;
    assert_eq!(p["error"], "invalid_request", "{p:?}");
}

#[tokio::test]
async fn async_connection_reports_mh_sync() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let claims = json!({"id_token": {"sub": {"essential": true, "value": user}, "mh:con_id": {"essential": true},
        "mh:sync": {"essential": true, "value": {"enableAsync": true}}}});
    let code = authorize_code(&sb, &format!("openid id:{MOCK}"), &claims).await;
    let (status, body) = exchange(&sb, &code, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let c = jwt_claims(body["id_token"].as_str().unwrap());
    let sync_id = c["mh:sync"]["syncId"].as_str().expect("mh:sync.syncId").to_string();
    let tok = token(&sb, "connection:read", None).await;
    let mut done = false;
    for _ in 0..100 {
        let (status, s) = get_json(&format!("{}/users/{user}/syncs/{sync_id}", sb.base_url()), &tok).await;
        assert_eq!(status, StatusCode::OK, "{s}");
        if s["data"]["fetchStatus"] == "success" {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(done, "the async first sync finishes");
}

// ----- refresh_token and jwt-bearer grants --------------------------------------------------

#[tokio::test]
async fn refresh_tokens_only_with_offline_access_and_they_rotate() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let code = authorize_code(&sb, &format!("openid offline_access id:{MOCK}"), &user_claims(&user)).await;
    let (status, body) = exchange(&sb, &code, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let rt = body["refresh_token"].as_str().expect("a refresh token").to_string();
    let con = con_id_of(&body);
    let refresh = |rt: String| {
        let sb = &sb;
        async move { secret_token(sb, &[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())]).await }
    };
    let (status, body) = refresh(rt.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = verify_id_token(&sb, body["id_token"].as_str().unwrap(), sb.client_id()).await;
    assert_eq!(c["sub"], user);
    assert!(c.get("nonce").is_none());
    assert_eq!(c["mh:con_id"], con);
    assert!(body["refresh_token"].is_string());
    let (status, body) = refresh(rt).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn jwt_bearer_grant_binds_the_token_to_the_user() {
    let sb = sandbox_with_jwt_client().await;
    let user = jwt_client_user(&sb, "mk", json!({"clientUserId": "jb"})).await;
    let now = sb.now().timestamp();
    let grant = |jti: &str, sub: &str, alg: Algorithm| {
        let claims = json!({"iss": JWT_CLIENT, "sub": sub, "aud": sb.issuer(), "jti": jti, "iat": now, "exp": now + 600});
        sign(alg, &keys()[0], Some("test-key-1"), &claims)
    };
    let call = |assertion: String, auth_jti: &'static str| {
        let sb = &sb;
        async move {
            let ca = client_assertion(sb, auth_jti);
            post_token(
                sb,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("scope", "accounts:read"),
                    ("assertion", &assertion),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &ca),
                ],
            )
            .await
        }
    };
    let (status, body) = call(grant("g1", &user, Algorithm::RS256), "c1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) =
        get_json(&format!("{}/v3/accounts", sb.base_url()), body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    for (what, assertion) in [
        ("unknown user", grant("g2", "000000000000000000000000", Algorithm::RS256)),
        ("not the registered alg", grant("g3", &user, Algorithm::PS256)),
        ("replayed", grant("g1", &user, Algorithm::RS256)),
        (
            "unsigned",
            unsigned(
                &json!({"iss": JWT_CLIENT, "sub": user, "aud": sb.issuer(), "jti": "g4", "exp": now + 60}),
            ),
        ),
    ] {
        let (status, body) = call(assertion, Box::leak(format!("c-{what}").into_boxed_str())).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{what}: {body}"
        );
    }
}

// ----- robustness ---------------------------------------------------------------------------

#[tokio::test]
async fn garbage_never_yields_a_server_error() {
    let sb = sandbox().await;
    let base = sb.base_url().to_string();
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"grant_type".to_vec(),
        b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
        b"%ff%fe=%00".to_vec(),
        vec![0xff, 0xfe, 0x00],
        b"grant_type=authorization_code&code=x&redirect_uri=y".to_vec(),
        b"grant_type=refresh_token&refresh_token=x".to_vec(),
        b"grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=a.b.c&scope=x".to_vec(),
        b"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=e30.e30.&grant_type=client_credentials&scope=x".to_vec(),
        format!("grant_type=client_credentials&scope={}", "a".repeat(70_000)).into_bytes(),
        b"request=e30.e30.&scope=openid".to_vec(),
        b"claims=%7B&scope=openid&redirect_uri=http://127.0.0.1/cb&response_type=code".to_vec(),
    ];
    for path in ["/oidc/token", "/oidc/request", "/request", "/oidc/auth"] {
        for body in &bodies {
            for basic in [true, false] {
                let mut req = http()
                    .post(format!("{base}{path}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone());
                if basic {
                    req = req.basic_auth(sb.client_id(), sb.client_secret());
                }
                let res = req.send().await.unwrap();
                assert!(
                    res.status().is_client_error() || res.status().is_redirection(),
                    "{path} {} -> {}",
                    String::from_utf8_lossy(body).chars().take(80).collect::<String>(),
                    res.status()
                );
            }
        }
    }
    let claims = "%7B%22id_token%22%3A%7B%22sub%22%3A%5B%5D%7D%7D";
    for q in [
        "",
        "request_uri=x",
        "request=..",
        "request=e30.e30.",
        "client_id=sandbox-client&request=eyJhbGciOiJub25lIn0.W10.",
        &format!("client_id=sandbox-client&redirect_uri={REDIRECT_URI}&response_type=code&scope=openid%20id:x&claims={claims}"),
        &format!("client_id=sandbox-client&redirect_uri={REDIRECT_URI}&response_type=code&scope=openid&max_age=-1"),
        "client_id=%ff&redirect_uri=%00",
    ] {
        let res = http().get(format!("{base}/oidc/auth?{q}")).send().await.unwrap();
        assert!(res.status().is_client_error() || res.status() == StatusCode::FOUND, "{q} -> {}", res.status());
    }
    let res = http()
        .post(format!("{base}/oidc/token"))
        .header("authorization", "Basic %%%")
        .form(&[("grant_type", "client_credentials"), ("scope", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn id_token_response_type_completes_the_flow_at_authorisation_and_form_post_works() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let con = connect(&sb, &user, AVIVA).await;
    let claims = renew_claims(&user, &con).to_string();
    let res = auth_plain(
        &sb,
        &[("response_type", "id_token"), ("scope", "openid refresh"), ("nonce", "in"), ("claims", &claims)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let p = location_params(&res);
    assert!(!p.contains_key("code"));
    let c = verify_id_token(&sb, &p["id_token"], sb.client_id()).await;
    assert_eq!(c["mh:con_id"], con);
    assert_eq!(c["nonce"], "in");
    // form_post: an auto-submitting HTML form carrying the code.
    let claims = user_claims(&user).to_string();
    let scope = format!("openid id:{MOCK}");
    let res = auth_plain(
        &sb,
        &[
            ("response_type", "code"),
            ("response_mode", "form_post"),
            ("scope", &scope),
            ("state", "fp"),
            ("claims", &claims),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{REDIRECT_URI}\"")), "{html}");
    assert!(html.contains("name=\"code\"") && html.contains("value=\"fp\""), "{html}");
}
