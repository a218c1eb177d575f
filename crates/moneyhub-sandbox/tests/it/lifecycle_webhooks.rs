//! Every webhook the lifecycle produces, driven through the virtual clock and received by a
//! local receiver, in both delivery formats. The JWT form is verified with `jsonwebtoken`
//! against `/oidc/certs`, as a consumer would.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration as StdDuration;

use chrono::Duration;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moneyhub_sandbox::{ClockMode, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";

/// `urn:com:moneyhub:events:sync-completed` → `syncCompleted`.
fn camel(urn: &str) -> String {
    let kebab = urn.strip_prefix("urn:com:moneyhub:events:").expect("moneyhub event URN");
    let mut out = String::new();
    let mut up = false;
    for c in kebab.chars() {
        if c == '-' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes what the receiver got into `(webhook id, eventType, userId, payload)`, verifying
/// JWTs against the sandbox's published keys.
async fn decode(sb: &moneyhub_sandbox::Sandbox, got: &[Received]) -> Vec<(String, String, String, Value)> {
    let jwks: JwkSet =
        http().get(format!("{}/oidc/certs", sb.base_url())).send().await.unwrap().json().await.unwrap();
    got.iter()
        .map(|r| {
            if r.content_type.starts_with("application/jwt") {
                let header = jsonwebtoken::decode_header(&r.body).unwrap();
                assert_eq!(header.alg, Algorithm::RS256);
                let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid published at /oidc/certs");
                let mut v = Validation::new(Algorithm::RS256);
                v.set_audience(&[sb.client_id()]);
                v.set_issuer(&[sb.base_url()]);
                v.validate_exp = false;
                v.required_spec_claims = ["iss", "aud", "sub"].iter().map(|s| s.to_string()).collect();
                let claims = jsonwebtoken::decode::<Value>(&r.body, &DecodingKey::from_jwk(jwk).unwrap(), &v)
                    .expect("the SET verifies")
                    .claims;
                let events = claims["events"].as_object().unwrap();
                assert_eq!(events.len(), 1, "one event per SET");
                let (urn, payload) = events.iter().next().unwrap();
                (
                    claims["jti"].as_str().unwrap().to_string(),
                    camel(urn),
                    claims["sub"].as_str().unwrap().to_string(),
                    payload.clone(),
                )
            } else {
                assert!(r.content_type.starts_with("application/json"), "{}", r.content_type);
                let v: Value = serde_json::from_str(&r.body).unwrap();
                (
                    v["id"].as_str().unwrap().to_string(),
                    v["eventType"].as_str().unwrap().to_string(),
                    v["userId"].as_str().unwrap().to_string(),
                    v["payload"].clone(),
                )
            }
        })
        .collect()
}

async fn scenario(format: &str) {
    let sb = sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        pending_replace_ratio: 0.5,
        ..Default::default()
    })
    .await;
    let rx = Receiver::start(200, StdDuration::ZERO).await;
    set_target(&sb, &rx.url, format).await;
    let high_volume = bank(&sb, "Sandbox High Volume Bank").await;
    let (user, conns) = user_with(&sb, &[MOCK, AVIVA, &high_volume]).await;
    let (mock, aviva, hv) = (&conns[0], &conns[1], &conns[2]);
    // The legacy connection keeps failing: a refreshReminder after 2 days without an update.
    control(
        &sb,
        Method::PUT,
        &format!("/connections/{aviva}/script"),
        Some(json!({"outcomes": [], "thereafter": "error"})),
    )
    .await;
    // History and enrichment arrive a few minutes after connecting.
    advance(&sb, json!({"minutes": 3})).await;
    // Consent moved to within 5 days: a reauthReminder.
    let upd = token(&sb, "connection:update", None).await;
    let res = http()
        .patch(format!("{}/users/{user}/connections/{mock}", sb.base_url()))
        .bearer_auth(upd)
        .json(&json!({"expiresAt": (t0() + Duration::days(4)).to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Pending card payments post (some in place, some under new ids) over the next days.
    advance(&sb, json!({"days": 2, "hours": 1})).await;
    // The provider drops an account.
    let tok = data_token(&sb, &user).await;
    let (_, accounts) = get_json(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
    let dropped = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["connectionId"] == mock.as_str() && a["type"] == "savings")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = control(&sb, Method::POST, &format!("/accounts/{dropped}/drop"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // A month of the busy bank's syncs: it withdraws and restores a few transactions.
    advance(&sb, json!({"days": 30})).await;
    let (s, flushed) = control(&sb, Method::POST, "/webhooks/flush", None).await;
    assert_eq!(s, StatusCode::OK, "{flushed}");
    assert_eq!(flushed["failed"], 0, "{flushed}");

    let events = decode(&sb, &rx.received()).await;
    let kinds: BTreeSet<&str> = events.iter().map(|(_, k, _, _)| k.as_str()).collect();
    for kind in [
        "newTransactions",
        "updatedTransactions",
        "deletedTransactions",
        "restoredTransactions",
        "syncCompleted",
        "deletedAccount",
        "reauthReminder",
        "refreshReminder",
        "postConnectionEnrichmentCompleted",
    ] {
        assert!(kinds.contains(kind), "{format}: no {kind} among {kinds:?}");
    }
    let ids: HashSet<&str> = events.iter().map(|(id, _, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "each webhook has its own id");
    assert!(events.iter().all(|(_, _, u, _)| *u == user));
    // Transaction webhooks: one account each, at most 6000 ids.
    let mut per_account: HashMap<(String, String), usize> = HashMap::new();
    for (_, kind, _, payload) in &events {
        if kind.ends_with("Transactions") {
            let accs = payload["accounts"].as_array().unwrap();
            assert_eq!(accs.len(), 1, "{kind} is per account");
            let n = accs[0]["transactions"].as_array().unwrap().len();
            assert!((1..=6000).contains(&n), "{kind} carries {n} ids");
            *per_account.entry((kind.clone(), accs[0]["id"].as_str().unwrap().to_string())).or_default() += n;
        }
    }
    let hv_account =
        accounts["data"].as_array().unwrap().iter().find(|a| a["connectionId"] == hv.as_str()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let full = events
        .iter()
        .filter(|(_, k, _, p)| k == "newTransactions" && p["accounts"][0]["id"] == hv_account.as_str())
        .filter(|(_, _, _, p)| p["accounts"][0]["transactions"].as_array().unwrap().len() == 6000)
        .count();
    assert!(full >= 2, "the busy account's 3-year history is split into 6000-id events ({full} full ones)");
    // Payloads carry what the reference says.
    let reminder = events.iter().find(|(_, k, _, _)| k == "reauthReminder").unwrap();
    assert_eq!(reminder.3["connectionId"], mock.as_str());
    assert_eq!(reminder.3["tppConsent"], true);
    assert!(reminder.3["timeUntilReauthorizationInDays"].as_i64().unwrap() <= 5);
    let refresh = events.iter().find(|(_, k, _, _)| k == "refreshReminder").unwrap();
    assert_eq!(refresh.3["connectionId"], aviva.as_str());
    assert!(refresh.3["periodSinceLastUpdateInDays"].as_i64().unwrap() >= 2);
    let gone = events.iter().find(|(_, k, _, _)| k == "deletedAccount").unwrap();
    assert_eq!(gone.3["accountId"], dropped.as_str());
    let done = events.iter().find(|(_, k, _, p)| {
        k == "syncCompleted" && p["connectionId"] == aviva.as_str() && p["processingStatus"] == "error"
    });
    assert!(done.is_some(), "failed syncs are announced too");
    // Every id announced as new or restored is readable now unless later deleted.
    let deleted: HashSet<String> =
        per_account.keys().filter(|(k, _)| k == "deletedTransactions").map(|(_, a)| a.clone()).collect();
    assert!(!deleted.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_webhook_arrives_as_json() {
    scenario("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_webhook_arrives_as_a_verified_jwt() {
    scenario("jwt").await;
}
