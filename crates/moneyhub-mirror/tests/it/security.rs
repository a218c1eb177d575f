//! The receiver refuses what it cannot trust and stores nothing for it: tampered, expired
//! and wrongly addressed JWTs, unsigned JSON unless allowed, garbage, oversized bodies.
//! Replays (an id already stored) are acknowledged without a new row. Nothing panics.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use moneyhub_mirror::{Db, MirrorConfig};
use moneyhub_sandbox::{ClientRegistration, ClockMode, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

async fn post(url: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
    let res = http().post(url).header("content-type", content_type).body(body).send().await.unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

/// The raw bodies stored in the inbox, newest first (SQLite).
fn stored_bodies(db: &Db) -> Vec<Vec<u8>> {
    let conn = rusqlite::Connection::open(db.file().expect("SQLite test")).unwrap();
    let mut st = conn.prepare("SELECT body FROM mirror_inbox ORDER BY seq DESC").unwrap();
    st.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap().map(Result::unwrap).collect()
}

fn tamper(jwt: &str, f: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    f(&mut claims);
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()), parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_misaddressed_webhooks_are_refused_and_replays_are_no_ops() {
    init_tracing();
    let other = ClientRegistration { client_id: "other-client".into(), ..Default::default() };
    let sb = sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        clients: vec![ClientRegistration::default(), other],
        ..Default::default()
    })
    .await;
    let db = TestDb::sqlite("security");
    let running = Running::start(client(&sb), db.url(), MirrorConfig::default()).await;
    let mirror_db = running.mirror.db().clone();
    set_webhooks(&sb, &running.url, "jwt").await;
    let socgen = bank(&sb, SOCGEN).await;
    let user = users(&sb, 1, std::slice::from_ref(&socgen)).await.remove(0).0;
    flush(&sb).await;
    let baseline = mirror_db.inbox_counts().await.unwrap().total;
    assert!(baseline >= 1, "the connection's syncCompleted arrived signed and was stored");

    // A genuine signed event through the sandbox.
    let sent = control_ok(
        &sb,
        Method::POST,
        "/webhooks/test",
        Some(json!({"userId": user, "eventType": "deletedAccount", "payload": {"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}})),
    )
    .await;
    assert_eq!(sent["deliveries"][0]["status"], 200, "{sent}");
    assert_eq!(mirror_db.inbox_counts().await.unwrap().total, baseline + 1);
    let jwt = String::from_utf8(stored_bodies(&mirror_db).remove(0)).unwrap();
    let count = || async { mirror_db.inbox_counts().await.unwrap().total };

    // A replay of the same delivery: acknowledged, nothing new.
    let (status, body) = post(&running.url, "application/jwt", jwt.clone()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"status":"duplicate"}"#));
    assert_eq!(count().await, baseline + 1);

    // Tampered claims (a new jti, another user, another payload): the signature fails.
    let refused = [
        tamper(&jwt, |c| c["jti"] = json!("6f1c1d7e-0f0e-4c41-9a57-1a2b3c4d5e6f")),
        tamper(&jwt, |c| c["sub"] = json!("5c79210bbac25ecb5e71ac40")),
        tamper(
            &jwt,
            |c| c["events"] = json!({"urn:com:moneyhub:events:deleted-account": {"accountId": "00000000-0000-4000-8000-000000000000"}}),
        ),
        // Signature of another token.
        format!("{}.{}", jwt.rsplit_once('.').unwrap().0, "AAAA"),
        // `alg: none`.
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"secevent+jwt"}"#),
            jwt.split('.').nth(1).unwrap()
        ),
    ];
    for token in refused {
        let (status, _) = post(&running.url, "application/jwt", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(count().await, baseline + 1, "refused deliveries store nothing");

    // Wrongly addressed: a user of another API client (the SET's aud is that client).
    let theirs =
        control_ok(&sb, Method::POST, "/users", Some(json!({"count": 1, "clientId": "other-client"}))).await;
    let their_user = theirs[0]["userId"].as_str().unwrap();
    let sent = control_ok(
        &sb,
        Method::POST,
        "/webhooks/test",
        Some(json!({"userId": their_user, "eventType": "syncCompleted", "payload": {
            "completedAt": "2025-01-15T10:00:00.000Z", "processingStatus": "success",
            "syncId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "connectionId": format!("{socgen}:1b4e28ba-2fa1-11d2-883f-0016d3cca427")}})),
    )
    .await;
    assert_eq!(sent["deliveries"][0]["status"], 401, "{sent}");
    assert_eq!(count().await, baseline + 1);

    // Expired: the genuine token, replayed an hour (of the sandbox's clock) later.
    advance_hours(&sb, 1).await;
    flush(&sb).await;
    let now = count().await;
    let (status, _) = post(&running.url, "application/jwt", jwt.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "iat is outside the window");
    assert_eq!(count().await, now);

    // Unsigned JSON is refused unless allowed; garbage and odd content types too.
    let envelope = json!({"id": "0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f9f", "eventType": "syncCompleted", "userId": user, "payload": {}});
    for (ct, body) in [
        ("application/json", envelope.to_string().into_bytes()),
        ("application/jwt", b"not.a.jwt".to_vec()),
        ("application/jwt", Vec::new()),
        ("application/jwt", vec![0xff, 0xfe, 0x00, 0x80]),
        ("text/plain", b"hello".to_vec()),
        ("", b"{}".to_vec()),
        ("application/json; charset=utf-8", b"{\"id\": 1}".to_vec()),
    ] {
        let (status, _) = post(&running.url, ct, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{ct}");
    }
    // Too large: refused before anything is read into the inbox. One byte over the limit, so
    // that the receiver has read the whole body when it answers: with more, it answers and
    // closes while the client is still writing, and the client sees a broken pipe instead of
    // the 413 (a race, not the behaviour under test).
    let too_large = vec![b'a'; MirrorConfig::default().max_body_bytes + 1];
    let (status, _) = post(&running.url, "application/jwt", too_large).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(count().await, now, "nothing stored");
    let counts = running.mirror.counts();
    assert!(counts.refused >= 13, "{counts:?}");
    assert_eq!(counts.duplicates, 1);
    // The receiver is still healthy.
    let health = http().get(running.url.replace("/webhooks", "/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_json_is_accepted_only_by_opt_in_and_deduplicated() {
    let sb = sandbox(0.0).await;
    let db = TestDb::sqlite("json");
    let running =
        Running::start(client(&sb), db.url(), MirrorConfig::default().allow_unsigned_json(true)).await;
    let envelope = json!({"id": "0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f9f", "eventType": "syncCompleted", "userid": "5c79210bbac25ecb5e71ac40",
        "payload": {"completedAt": "2025-01-15T10:00:00.000Z", "processingStatus": "success", "syncId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                    "connectionId": "1ffe704d39629a929c8e293880fb449a:1b4e28ba-2fa1-11d2-883f-0016d3cca427"}});
    let (status, body) = post(&running.url, "application/json", envelope.to_string()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"status":"stored"}"#));
    let (status, body) = post(&running.url, "application/json", envelope.to_string()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"status":"duplicate"}"#));
    // Not an envelope, or a typed payload that does not fit: refused as unprocessable (422,
    // not 401: nothing failed verification; issue 23 item 1), and nothing stored.
    for bad in [
        json!({"hello": "world"}),
        json!({"id": "x", "eventType": "syncCompleted"}),
        json!([1, 2, 3]),
        json!(null),
        json!({"id": "0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f90", "eventType": "newTransactions", "userId": "5c79210bbac25ecb5e71ac40", "payload": {"accounts": 7}}),
    ] {
        let (status, _) = post(&running.url, "application/json", bad.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    assert_eq!(running.mirror.db().inbox_counts().await.unwrap().total, 1);
    running.stop().await;
    db.cleanup().await;
}

/// The inbox keeps the envelope the client verified, payload as received (a field the typed
/// event does not model included), not the typed event encoded back: the processor decodes
/// that envelope once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_keeps_the_verified_envelope() {
    let sb = sandbox(0.0).await;
    let db = TestDb::sqlite("envelope");
    let running =
        Running::start(client(&sb), db.url(), MirrorConfig::default().allow_unsigned_json(true)).await;
    let envelope = json!({"id": "0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f9e", "eventType": "syncCompleted", "userId": "5c79210bbac25ecb5e71ac40",
        "payload": {"completedAt": "2025-01-15T10:00:00.000Z", "processingStatus": "success", "syncId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                    "connectionId": "1ffe704d39629a929c8e293880fb449a:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                    "note": "kept as received"}});
    let (status, _) = post(&running.url, "application/json", envelope.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let conn = rusqlite::Connection::open(running.mirror.db().file().expect("SQLite test")).unwrap();
    let (body, user, event_type): (Vec<u8>, String, String) = conn
        .query_row("SELECT body, user_id, event_type FROM mirror_inbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    // The body as delivered is the only copy kept (no envelope column beside it), and the
    // envelope read back from it is the one verified.
    assert_eq!(body, envelope.to_string().into_bytes(), "the body as delivered");
    let read = moneyhub::webhooks::read_verified(&body, false).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), envelope, "the envelope as verified");
    let columns: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('mirror_inbox') WHERE name = 'envelope'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(columns, 0, "no second copy of the event");
    assert_eq!((user.as_str(), event_type.as_str()), ("5c79210bbac25ecb5e71ac40", "syncCompleted"));
    running.stop().await;
    db.cleanup().await;
}

/// Validly signed (with the sandbox's own key, so the signature, `iss` and `aud` all check
/// out) but expired, not yet valid, or about nobody: refused with 401, nothing stored. A
/// good one signed the same way is stored, so the refusals are the claims' doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_with_bad_exp_nbf_or_sub_are_refused_and_not_stored() {
    init_tracing();
    let sb = sandbox(0.0).await;
    let db = TestDb::sqlite("claims");
    let running = Running::start(client(&sb), db.url(), MirrorConfig::default()).await;
    let key = moneyhub_sandbox::SigningKey::shared().unwrap();
    let now = sb.now().timestamp();
    let sign = |jti: &str, edit: &dyn Fn(&mut Value)| {
        let mut claims = json!({
            "iss": sb.base_url(), "aud": sb.client_id(), "sub": UNKNOWN_USER, "jti": jti, "iat": now,
            "events": {"urn:com:moneyhub:events:new-transactions": {"accounts": [{
                "id": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13", "transactions": ["c390a94f-3824-4cdf-8d02-b0c5304d9f66"]}]}},
        });
        edit(&mut claims);
        key.sign("secevent+jwt", &claims).unwrap()
    };
    type Edit = Box<dyn Fn(&mut Value)>;
    let bad: Vec<(&str, Edit)> = vec![
        ("expired", Box::new(move |c| c["exp"] = json!(now - 600))),
        ("not yet valid", Box::new(move |c| c["nbf"] = json!(now + 600))),
        ("exp not a number", Box::new(|c| c["exp"] = json!("soon"))),
        ("no sub", Box::new(|c| drop(c.as_object_mut().unwrap().remove("sub")))),
        ("null sub", Box::new(|c| c["sub"] = json!(null))),
        ("numeric sub", Box::new(|c| c["sub"] = json!(5))),
        (
            "account event without sub",
            Box::new(|c| {
                c["events"] = json!({"urn:com:moneyhub:events:deleted-account": {"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}});
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
    ];
    for (i, (what, edit)) in bad.iter().enumerate() {
        let token = sign(&format!("6f1c1d7e-0f0e-4c41-9a57-1a2b3c4d5e{i:02x}"), edit.as_ref());
        let (status, body) = post(&running.url, "application/jwt", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    }
    let counts = running.mirror.db().inbox_counts().await.unwrap();
    assert_eq!(counts.total, 0, "refused webhooks store nothing: {counts:?}");
    // The same, well formed (exp ahead, nbf behind): stored.
    let good = sign("6f1c1d7e-0f0e-4c41-9a57-1a2b3c4d5eff", &|c| {
        c["exp"] = json!(now + 600);
        c["nbf"] = json!(now - 600);
    });
    let (status, body) = post(&running.url, "application/jwt", good).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"status":"stored"}"#));
    assert_eq!(running.mirror.db().inbox_counts().await.unwrap().total, 1);
    assert_eq!(running.mirror.counts().refused, bad.len() as u64);
    running.stop().await;
    db.cleanup().await;
}
