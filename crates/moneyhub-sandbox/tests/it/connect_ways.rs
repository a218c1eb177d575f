//! Issue 15: one-time access (no `sub` value), the Auth Requests API, unenriched
//! transactions and the fields the official client's types declare (`managedBy`,
//! `lastAccessed`, `proprietaryTransactionCode`, `fetchStatus`/`fetchedAt` while running).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";

fn one_time_claims() -> Value {
    json!({"id_token": {"sub": {"essential": true}, "mh:con_id": {"essential": true}}})
}

/// Connects with one-time access; returns the token response.
async fn one_time(sb: &moneyhub_sandbox::Sandbox, scope: &str) -> Value {
    let code = authorize_code(sb, scope, &one_time_claims()).await;
    let (status, body) = exchange(sb, &code, &[]).await;
    assert_eq!(status, StatusCode::OK, "exchange: {body}");
    body
}

async fn refresh(sb: &moneyhub_sandbox::Sandbox, rt: &str) -> (StatusCode, Value) {
    let res = http()
        .post(format!("{}/oidc/token", sb.base_url()))
        .basic_auth(sb.client_id(), sb.client_secret())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

#[tokio::test]
async fn one_time_access_makes_a_user_and_its_token_reads_the_data_for_24_hours() {
    let sb = sandbox().await;
    let body =
        one_time(&sb, &format!("openid offline_access id:{MOCK} accounts:read transactions:read:all")).await;
    let claims = jwt_claims(body["id_token"].as_str().unwrap());
    let user = claims["sub"].as_str().expect("the id_token names the user consent made").to_string();
    let con = claims["mh:con_id"].as_str().unwrap().to_string();
    assert!(con.starts_with(MOCK));
    let at = body["access_token"].as_str().unwrap();
    assert!(body["scope"].as_str().unwrap().contains("transactions:read:all"));

    // The user is listed, managed by the user, and the exchange token reads its data.
    let mgmt = token(&sb, "user:read", None).await;
    let (_, users) = get_json(&format!("{}/users", sb.base_url()), &mgmt).await;
    let listed = users["data"].as_array().unwrap().iter().find(|u| u["userId"] == user.as_str()).cloned();
    let listed = listed.expect("GET /users lists the one-time user");
    assert_eq!(listed["managedBy"], "user");
    assert_eq!(listed["connectionIds"], json!([con]));
    assert!(listed.get("lastAccessed").is_none(), "not read yet: {listed}");
    let (status, accounts) = get_json(&format!("{}/accounts", sb.api_url_v3()), at).await;
    assert_eq!(status, StatusCode::OK, "{accounts}");
    assert!(!accounts["data"].as_array().unwrap().is_empty());
    let (status, txs) = get_json(&format!("{}/transactions?limit=5", sb.api_url_v3()), at).await;
    assert_eq!(status, StatusCode::OK, "{txs}");
    assert_eq!(txs["data"].as_array().unwrap().len(), 5);
    let (_, u) = get_json(&format!("{}/users/{user}", sb.base_url()), &mgmt).await;
    assert_eq!(u["lastAccessed"], "2025-01-15T10:00:00.000Z", "{u}");

    // Consent lasts 24 hours.
    let conns = token(&sb, "connection:read", None).await;
    let (_, list) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &conns).await;
    assert_eq!(list["data"][0]["expiresAt"], "2025-01-16T10:00:00.000Z");

    // Refresh works while the consent runs...
    let rt = body["refresh_token"].as_str().expect("offline_access gives a refresh token").to_string();
    advance(&sb, json!({"hours": 23})).await;
    let (status, refreshed) = refresh(&sb, &rt).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, _) = get_json(
        &format!("{}/transactions?limit=1", sb.api_url_v3()),
        refreshed["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // ...and neither the refresh token nor the access tokens outlive it.
    advance(&sb, json!({"hours": 2})).await;
    let conns = token(&sb, "connection:read", None).await;
    let (_, list) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &conns).await;
    assert_eq!(list["data"][0]["extendedStatus"], "expired", "{list}");
    let (status, body) = refresh(&sb, refreshed["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let (status, _) = get_json(&format!("{}/transactions?limit=1", sb.api_url_v3()), at).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The client may still read with client credentials + sub, as for any user.
    let dt = token(&sb, "transactions:read:all", Some(&user)).await;
    let (status, _) = get_json(&format!("{}/transactions?limit=1", sb.api_url_v3()), &dt).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn one_time_access_honours_mh_consent_and_legacy_providers_expire_too() {
    let sb = sandbox().await;
    let claims = json!({"id_token": {
        "sub": {"essential": true},
        "mh:consent": {"essential": true, "value": {"expirationDateTime": "2025-01-20T10:00:00.000Z"}}
    }});
    let code = authorize_code(&sb, &format!("openid id:{MOCK}"), &claims).await;
    let (_, body) = exchange(&sb, &code, &[]).await;
    let user = jwt_claims(body["id_token"].as_str().unwrap())["sub"].as_str().unwrap().to_string();
    let conns = token(&sb, "connection:read", None).await;
    let (_, list) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &conns).await;
    assert_eq!(list["data"][0]["expiresAt"], "2025-01-20T10:00:00.000Z");

    let body = one_time(&sb, &format!("openid id:{AVIVA}")).await;
    let user = jwt_claims(body["id_token"].as_str().unwrap())["sub"].as_str().unwrap().to_string();
    let (_, list) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &conns).await;
    assert_eq!(list["data"][0]["type"], "legacy");
    assert_eq!(list["data"][0]["expiresAt"], "2025-01-16T10:00:00.000Z");
    // A code exchanged without offline_access gives no refresh token.
    assert!(body.get("refresh_token").is_none());
}

// ----- Auth Requests API -------------------------------------------------------------

async fn call(
    sb: &moneyhub_sandbox::Sandbox,
    method: reqwest::Method,
    path: &str,
    tok: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http().request(method, format!("{}{path}", sb.base_url())).bearer_auth(tok);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Opens an auth URL as the user's browser; returns the callback parameters.
async fn consent(url: &str) -> std::collections::HashMap<String, String> {
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    location_params(&res)
}

async fn create_ar(sb: &moneyhub_sandbox::Sandbox, body: Value) -> (StatusCode, Value) {
    let tok = token(sb, "auth_requests:write", None).await;
    call(sb, reqwest::Method::POST, "/auth-requests", &tok, Some(body)).await
}

async fn complete_ar(sb: &moneyhub_sandbox::Sandbox, id: &str, params: Value) -> (StatusCode, Value) {
    let tok = token(sb, "auth_requests:write", None).await;
    call(
        sb,
        reqwest::Method::PATCH,
        &format!("/auth-requests/{id}"),
        &tok,
        Some(json!({"authParams": params})),
    )
    .await
}

/// Creates an auth request, consents, completes it; returns the completed request.
async fn through_auth_request(sb: &moneyhub_sandbox::Sandbox, body: Value) -> Value {
    let (status, created) = create_ar(sb, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let ar = &created["data"];
    assert_eq!(ar["status"], "pending");
    let cb = consent(ar["redirectParams"]["authUrl"].as_str().unwrap()).await;
    assert_eq!(cb.get("state"), ar["redirectParams"]["state"].as_str().map(str::to_string).as_ref());
    let (status, done) =
        complete_ar(sb, ar["id"].as_str().unwrap(), json!({"code": cb["code"], "state": cb["state"]})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    done["data"].clone()
}

#[tokio::test]
async fn auth_requests_connect_reauth_and_reconsent_end_to_end() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    // Both bank-id spellings: `id:<bankId>` and bare.
    let done = through_auth_request(
        &sb,
        json!({"redirectUri": REDIRECT_URI, "userId": user, "scope": format!("openid {MOCK}")}),
    )
    .await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["bankId"], MOCK);
    assert_eq!(done["scope"], format!("openid id:{MOCK}"));
    let con = done["connectionId"].as_str().unwrap().to_string();
    assert!(con.starts_with(MOCK) && done["completedAt"].is_string() && done.get("syncId").is_none());
    let conns = token(&sb, "connection:read", None).await;
    let (_, list) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &conns).await;
    assert_eq!(list["data"][0]["id"], con.as_str());

    // Asynchronous: the outcome names the running sync.
    let done = through_auth_request(
        &sb,
        json!({"redirectUri": REDIRECT_URI, "userId": user, "scope": format!("openid id:{MOCK}"), "sync": {"enableAsync": true}}),
    )
    .await;
    assert!(done["syncId"].is_string(), "{done}");

    // Reconsent with a new expiry, then a reauth.
    let done = through_auth_request(
        &sb,
        json!({"redirectUri": REDIRECT_URI, "userId": user, "scope": "openid reconsent", "connectionId": con,
               "expirationDateTime": "2025-03-01T00:00:00.000Z"}),
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["connectionId"].as_str()),
        (Some("complete"), Some(con.as_str()))
    );
    let (_, list) = get_json(&format!("{}/users/{user}/connections", sb.base_url()), &conns).await;
    assert_eq!(list["data"][0]["expiresAt"], "2025-03-01T00:00:00.000Z");
    let done = through_auth_request(
        &sb,
        json!({"redirectUri": REDIRECT_URI, "userId": user, "scope": "openid reauth", "connectionId": con}),
    )
    .await;
    assert_eq!(done["status"], "complete");
    assert!(done["connectionId"].as_str().unwrap().starts_with(MOCK));

    // One-time access through an auth request: the outcome names the user consent made.
    let done = through_auth_request(
        &sb,
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK} transactions:read:all")}),
    )
    .await;
    let made = done["userId"].as_str().expect("the made user").to_string();
    assert_ne!(made, user);
    let reader = token(&sb, "user:read", None).await;
    let (_, u) = get_json(&format!("{}/users/{made}", sb.base_url()), &reader).await;
    assert_eq!(u["managedBy"], "user");

    // GET one and the paged list.
    let read = token(&sb, "auth_requests:read", None).await;
    let id = done["id"].as_str().unwrap();
    let (status, one) = call(&sb, reqwest::Method::GET, &format!("/auth-requests/{id}"), &read, None).await;
    assert_eq!((status, &one["data"]), (StatusCode::OK, &done));
    let (status, page) =
        call(&sb, reqwest::Method::GET, "/auth-requests?limit=2&offset=1", &read, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["meta"]["total"], 5);
}

#[tokio::test]
async fn auth_request_completion_errors_replays_and_wrong_state() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let body = json!({"redirectUri": REDIRECT_URI, "userId": user, "scope": format!("openid id:{MOCK}")});
    let (_, created) = create_ar(&sb, body.clone()).await;
    let ar = created["data"].clone();
    let id = ar["id"].as_str().unwrap();
    let cb = consent(ar["redirectParams"]["authUrl"].as_str().unwrap()).await;

    // The code belongs to the auth request: the token endpoint refuses it.
    let (status, err) = exchange(&sb, &cb["code"], &[]).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    // A wrong state is refused and leaves the request pending.
    let (status, err) = complete_ar(&sb, id, json!({"code": cb["code"], "state": "forged"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["message"].as_str().unwrap().contains("state"));
    let (status, done) = complete_ar(&sb, id, json!({"code": cb["code"], "state": cb["state"]})).await;
    assert_eq!((status, done["data"]["status"].as_str()), (StatusCode::OK, Some("complete")));
    // Replayed completion.
    let (status, err) = complete_ar(&sb, id, json!({"code": cb["code"], "state": cb["state"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["message"].as_str().unwrap().contains("already been completed"));
    // Unknown id.
    let (status, _) =
        complete_ar(&sb, "4b6bd0f4-4f52-4f0e-9d7e-6f4f43a9b7a1", json!({"state": "x", "code": "y"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The user came back with an error.
    let (_, created) = create_ar(&sb, body.clone()).await;
    let ar = &created["data"];
    let (status, done) = complete_ar(
        &sb,
        ar["id"].as_str().unwrap(),
        json!({"error": "access_denied", "error_description": "the user cancelled", "state": ar["redirectParams"]["state"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let d = &done["data"];
    assert_eq!((d["status"].as_str(), d["error"].as_str()), (Some("error"), Some("access_denied")));
    assert_eq!(d["errorDescription"], "the user cancelled");
    let (status, _) = complete_ar(
        &sb,
        ar["id"].as_str().unwrap(),
        json!({"code": "c", "state": ar["redirectParams"]["state"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A code of another auth request does not complete this one.
    let (_, a) = create_ar(&sb, body.clone()).await;
    let (_, b) = create_ar(&sb, body).await;
    let cb_a = consent(a["data"]["redirectParams"]["authUrl"].as_str().unwrap()).await;
    let (status, _) = complete_ar(
        &sb,
        b["data"]["id"].as_str().unwrap(),
        json!({"code": cb_a["code"], "state": b["data"]["redirectParams"]["state"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn auth_request_validation_and_scopes() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let other = create_user(&sb).await;
    let con = connect(&sb, &user, MOCK).await;
    let cases = [
        json!({"scope": format!("openid id:{MOCK}")}),
        json!({"redirectUri": REDIRECT_URI}),
        json!({"redirectUri": "https://evil.example/cb", "scope": format!("openid id:{MOCK}")}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK} id:{AVIVA}")}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("id:{MOCK}")}),
        json!({"redirectUri": REDIRECT_URI, "scope": "openid reauth", "userId": user}),
        json!({"redirectUri": REDIRECT_URI, "scope": "openid reauth", "connectionId": con}),
        json!({"redirectUri": REDIRECT_URI, "scope": "openid reauth", "connectionId": con, "userId": other}),
        json!({"redirectUri": REDIRECT_URI, "scope": "openid reauth offline_access", "connectionId": con, "userId": user}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK}"), "connectionId": con}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK}"), "userId": "000000000000000000000000"}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK}"), "payment": {"amount": 1}}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK}"), "colour": "blue"}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK}"), "sync": {"enableAsync": "yes"}}),
        json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK}"), "expirationDateTime": "2099-01-01T00:00:00Z"}),
        json!({"redirectUri": REDIRECT_URI, "scope": 7}),
    ];
    for body in cases {
        let (status, err) = create_ar(&sb, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {err}");
        assert_eq!(err["code"], "BadRequest");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    // Scopes: read cannot create or complete, write cannot read.
    let read = token(&sb, "auth_requests:read", None).await;
    let write = token(&sb, "auth_requests:write", None).await;
    let body = json!({"redirectUri": REDIRECT_URI, "scope": format!("openid id:{MOCK}")});
    let (status, _) = call(&sb, reqwest::Method::POST, "/auth-requests", &read, Some(body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = call(&sb, reqwest::Method::POST, "/auth-requests", &write, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_str().unwrap();
    let (status, _) = call(&sb, reqwest::Method::GET, &format!("/auth-requests/{id}"), &write, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&sb, reqwest::Method::GET, "/auth-requests", &write, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &sb,
        reqwest::Method::PATCH,
        &format!("/auth-requests/{id}"),
        &read,
        Some(json!({"authParams": {"code": "x", "state": "y"}})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&sb, reqwest::Method::GET, "/auth-requests/nope", &read, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A token bound to a user may not use them.
    let bound = token(&sb, "auth_requests:read auth_requests:write", Some(&user)).await;
    let (status, _) = call(&sb, reqwest::Method::GET, "/auth-requests", &bound, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&sb, reqwest::Method::GET, &format!("/auth-requests/{id}"), &bound, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Bad completion bodies.
    for bad in [
        json!({}),
        json!({"authParams": 1}),
        json!({"authParams": {"code": "x"}}),
        json!({"authParams": {"state": 1}}),
    ] {
        let (status, _) =
            call(&sb, reqwest::Method::PATCH, &format!("/auth-requests/{id}"), &write, Some(bad.clone()))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

// ----- unenriched transactions and new fields ------------------------------------------

#[tokio::test]
async fn unenriched_transactions_are_the_providers_view() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    connect(&sb, &user, MOCK).await;
    let enriched_tok = token(&sb, "transactions:read:all", Some(&user)).await;
    let raw_tok = token(&sb, "transactions_unenriched:read:all", Some(&user)).await;
    let api = sb.api_url_v3();
    let (status, rich) = get_json(&format!("{api}/transactions?limit=20"), &enriched_tok).await;
    assert_eq!(status, StatusCode::OK);
    let (status, raw) = get_json(&format!("{api}/transactions/unenriched?limit=20"), &raw_tok).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    let (rich, raw) = (rich["data"].as_array().unwrap(), raw["data"].as_array().unwrap());
    assert_eq!(rich.len(), raw.len());
    for (r, u) in rich.iter().zip(raw) {
        assert_eq!(r["id"], u["id"]);
        assert_eq!(r["amount"], u["amount"]);
        assert_eq!(r["longDescription"], u["longDescription"]);
        for gone in [
            "categoryId",
            "categoryIdConfirmed",
            "notes",
            "shortDescription",
            "counterpartyId",
            "splits",
            "projectId",
        ] {
            assert!(u.get(gone).is_none(), "{gone} in {u}");
        }
        assert_eq!(r.get("proprietaryTransactionCode"), u.get("proprietaryTransactionCode"));
    }
    // Most current-account transactions carry a proprietary code.
    let coded = rich.iter().filter(|t| t["proprietaryTransactionCode"]["code"].is_string()).count();
    assert!(coded * 2 > rich.len(), "{coded} of {}", rich.len());

    // Same filters and paging as /transactions.
    let (_, count) = get_json(&format!("{api}/transactions/unenriched?onlyCount=true"), &raw_tok).await;
    let (_, count_rich) = get_json(&format!("{api}/transactions?onlyCount=true"), &enriched_tok).await;
    assert_eq!(count["meta"]["count"], count_rich["meta"]["count"]);
    let (_, page) = get_json(&format!("{api}/transactions/unenriched?limit=5&offset=5"), &raw_tok).await;
    assert_eq!(page["data"][0]["id"], rich[5]["id"]);
    assert!(page["links"]["next"].as_str().unwrap().contains("/transactions/unenriched?"));
    let (status, _) = get_json(&format!("{api}/transactions/unenriched?startDate=yesterday"), &raw_tok).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let ids = format!("ids={}&ids=0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77", rich[0]["id"].as_str().unwrap());
    let (_, by_ids) = get_json(&format!("{api}/transactions/unenriched?{ids}"), &raw_tok).await;
    assert_eq!(by_ids["data"][0]["id"], rich[0]["id"]);
    assert_eq!(by_ids["meta"]["missingTransactionIds"], json!(["0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77"]));

    // By id, with either scope; not with transactions:read:in or accounts:read.
    let id = rich[0]["id"].as_str().unwrap();
    for tok in [&raw_tok, &enriched_tok] {
        let (status, one) = get_json(&format!("{api}/transactions/unenriched/{id}"), tok).await;
        assert_eq!((status, &one["data"]), (StatusCode::OK, &raw[0]));
    }
    let (status, _) =
        get_json(&format!("{api}/transactions/unenriched/0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77"), &raw_tok)
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get_json(&format!("{api}/transactions/{id}"), &raw_tok).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the unenriched scope does not read enriched transactions");
    for scope in ["transactions:read:in", "accounts:read"] {
        let tok = token(&sb, scope, Some(&user)).await;
        let (status, err) = get_json(&format!("{api}/transactions/unenriched"), &tok).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{scope}: {err}");
    }
}

#[tokio::test]
async fn unserved_data_routes_say_so_with_a_404() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let tok = token(&sb, "accounts:read transactions:read:all", Some(&user)).await;
    for path in
        ["/v3/standing-orders", "/v2.0/categories", "/v3/accounts/x/balances", "/v3/transactions/x/splits"]
    {
        let (status, err) = get_json(&format!("{}{path}", sb.base_url()), &tok).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(err["message"].as_str().unwrap().contains("does not implement"), "{path}: {err}");
    }
}

#[tokio::test]
async fn syncs_always_carry_fetch_status_and_fetched_at() {
    let sb = sandbox().await;
    let user = create_user(&sb).await;
    let claims = json!({"id_token": {
        "sub": {"essential": true, "value": user},
        "mh:con_id": {"essential": true},
        "mh:sync": {"essential": true, "value": {"enableAsync": true}}
    }});
    let code = authorize_code(&sb, &format!("openid id:{MOCK}"), &claims).await;
    let (_, body) = exchange(&sb, &code, &[]).await;
    let sync =
        jwt_claims(body["id_token"].as_str().unwrap())["mh:sync"]["syncId"].as_str().unwrap().to_string();
    let tok = token(&sb, "connection:read", None).await;
    // Whether the sync is still running at this instant depends on the sandbox's background
    // worker; either way both keys are there (the running case's `null`s are checked
    // deterministically by the store's unit test `running_sync_has_null_outcome_keys`).
    let (_, s) = get_json(&format!("{}/users/{user}/syncs/{sync}", sb.base_url()), &tok).await;
    let obj = s["data"].as_object().unwrap();
    assert!(obj.contains_key("fetchStatus") && obj.contains_key("fetchedAt"), "{s}");
    advance(&sb, json!({"minutes": 5})).await;
    let (_, s) = get_json(&format!("{}/users/{user}/syncs/{sync}", sb.base_url()), &tok).await;
    assert_eq!(s["data"]["fetchStatus"], "success");
    assert!(s["data"]["fetchedAt"].is_string());
}
