//! Every control answer, as the sandbox sends it, round-trips through the kit's types (the one
//! set the handlers answer with): decoded into the type and encoded again it gives the same
//! fields and values, so a field one side has and the other lacks fails here.

use std::time::Duration;

use chrono::DateTime;
use moneyhub_sandbox::kit::{
    Advanced, Chaos, ClockReading, ConnectionView, ConsentSetting, Control, CreatedConnection, CreatedUser,
    Delivery, DeliveryOutcome, FaultRule, FaultSpec, FiredEvent, FlushReport, LoadedScenario, LogEntry,
    NewUsers, Script, Stats, TestEvent, WebhookSettings,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::support::{sandbox, Receiver};

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";

/// The same fields with the same values; an absent field equals `null`, and two times equal
/// when they are the same instant (the delivery log writes milliseconds, chrono does not).
fn same(at: &str, a: &Value, b: &Value) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                same(&format!("{at}.{k}"), va, vb);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths differ");
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                same(&format!("{at}[{i}]"), va, vb);
            }
        }
        (Value::String(x), Value::String(y)) if x != y => {
            let (tx, ty) = (DateTime::parse_from_rfc3339(x), DateTime::parse_from_rfc3339(y));
            assert!(tx.is_ok() && tx.ok() == ty.ok(), "{at}: {x:?} came back as {y:?}");
        }
        (Value::Number(x), Value::Number(y)) => assert_eq!(x.as_f64(), y.as_f64(), "{at}"),
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Decodes `raw` into `T`, encodes it again and compares.
fn round_trip<T: DeserializeOwned + Serialize>(what: &str, raw: &Value) -> T {
    let typed: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{what}: {e}: {raw}"));
    same(what, raw, &serde_json::to_value(&typed).unwrap());
    typed
}

async fn call(control: &Control, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, v) = control.call(method.clone(), path, body).await.expect("the control API answers");
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_answer_round_trips_through_the_kit_types() {
    let sb = sandbox().await;
    let c = Control::of(&sb);
    let receiver = Receiver::start(200, Duration::ZERO).await;

    round_trip::<ClockReading>("clock", &call(&c, Method::GET, "/clock", None).await);
    round_trip::<ClockReading>("resume", &call(&c, Method::POST, "/clock/resume", None).await);
    round_trip::<ClockReading>("freeze", &call(&c, Method::POST, "/clock/freeze", None).await);
    let users: Vec<CreatedUser> = round_trip(
        "users",
        &call(&c, Method::POST, "/users", Some(json!({"count": 1, "banks": [MOCK]}))).await,
    );
    let user = &users[0].user_id;
    let body = json!({"userId": user, "bankId": MOCK});
    let created: CreatedConnection =
        round_trip("connections", &call(&c, Method::POST, "/connections", Some(body)).await);
    let path = format!("/connections/{}", created.connection_id.replace(':', "%3A"));
    round_trip::<ConnectionView>("connection", &call(&c, Method::GET, &path, None).await);
    let body = json!({"outcomes": ["error"], "thereafter": "mfa-required"});
    call(&c, Method::PUT, &format!("{path}/script"), Some(body)).await;
    round_trip::<ConnectionView>("scripted connection", &call(&c, Method::GET, &path, None).await);

    let body = json!({"url": receiver.url, "format": "json"});
    round_trip::<WebhookSettings>("set target", &call(&c, Method::PUT, "/webhooks", Some(body)).await);
    round_trip::<WebhookSettings>("target", &call(&c, Method::GET, "/webhooks", None).await);
    let body = json!({"drop": 0.0, "duplicate": 0.0, "reorder": false});
    round_trip::<Chaos>("set chaos", &call(&c, Method::PUT, "/webhooks/chaos", Some(body)).await);
    round_trip::<Chaos>("chaos", &call(&c, Method::GET, "/webhooks/chaos", None).await);
    let advanced: Advanced =
        round_trip("advance", &call(&c, Method::POST, "/clock/advance", Some(json!({"days": 2}))).await);
    assert!(advanced.ran != Default::default(), "the advance ran something: {advanced:?}");
    round_trip::<FlushReport>("flush", &call(&c, Method::POST, "/webhooks/flush", None).await);
    let body = json!({"userId": user, "eventType": "newTransactions"});
    round_trip::<FiredEvent>("fire", &call(&c, Method::POST, "/webhooks/test", Some(body)).await);
    let log = call(&c, Method::GET, "/webhooks/deliveries", None).await;
    let data: Vec<Delivery> = round_trip("deliveries", &log["data"]);
    assert!(!data.is_empty(), "deliveries were made");
    assert!(log["meta"]["lastSeq"].is_u64() && log["meta"]["pending"].is_u64(), "{}", log["meta"]);

    let body = json!({"path": "/v3/accounts", "status": 503, "times": 1});
    round_trip::<FaultRule>("add fault", &call(&c, Method::POST, "/faults", Some(body)).await);
    round_trip::<Vec<FaultRule>>("faults", &call(&c, Method::GET, "/faults", None).await["data"]);
    round_trip::<Stats>("stats", &call(&c, Method::GET, "/stats", None).await);
    let log = call(&c, Method::GET, "/requests", None).await;
    let entries: Vec<LogEntry> = round_trip("requests", &log["data"]);
    assert!(!entries.is_empty() && log["meta"]["lastSeq"].is_u64(), "{}", log["meta"]);
    let text = format!(r#"{{"users": [{{"clientUserId": "c1", "connections": [{{"bank": "{MOCK}"}}]}}]}}"#);
    let body = json!({"text": text, "name": "s.json"});
    round_trip::<LoadedScenario>("scenario", &call(&c, Method::POST, "/scenario", Some(body)).await);
    round_trip::<ClockReading>("reset", &call(&c, Method::POST, "/reset", None).await);
}

/// The request bodies the handlers read are the kit's types too: every field a caller sends
/// survives the type, and the consent answer is the type it is set with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_request_round_trips_through_the_kit_types() {
    let sb = sandbox().await;
    let c = Control::of(&sb);
    let receiver = Receiver::start(200, Duration::ZERO).await;

    let body = json!({"count": 2, "clientId": sb.client_id(), "banks": [MOCK]});
    let new: NewUsers = round_trip("users request", &body);
    let users: Vec<CreatedUser> = round_trip("users", &call(&c, Method::POST, "/users", Some(body)).await);
    assert_eq!(users.len(), new.count);
    let body = json!({"userId": users[0].user_id, "bankId": MOCK});
    let created: CreatedConnection =
        round_trip("connections", &call(&c, Method::POST, "/connections", Some(body)).await);
    let path = format!("/connections/{}", created.connection_id.replace(':', "%3A"));
    // The aliases the script has always accepted read as the kit's outcomes.
    let body =
        json!({"outcomes": ["error", "sync_partial", "ok"], "thereafter": "mfa-required", "append": false});
    let script: Script = serde_json::from_value(body.clone()).expect("a script");
    round_trip::<Script>("script request", &serde_json::to_value(&script).unwrap());
    call(&c, Method::PUT, &format!("{path}/script"), Some(body)).await;
    let view: ConnectionView = round_trip("scripted", &call(&c, Method::GET, &path, None).await);
    assert_eq!((view.script, view.thereafter), (script.outcomes, script.thereafter));

    call(&c, Method::PUT, "/webhooks", Some(json!({"url": receiver.url, "format": "json"}))).await;
    let body = json!({"userId": users[0].user_id, "eventType": "newTransactions", "payload": {"n": 1},
        "connectionId": null, "accountId": null});
    round_trip::<TestEvent>("test event request", &body);
    let fired: FiredEvent = round_trip("fire", &call(&c, Method::POST, "/webhooks/test", Some(body)).await);
    assert_eq!(fired.deliveries.len(), 1, "{fired:?}");
    assert_eq!(fired.deliveries[0].outcome, DeliveryOutcome::Delivered);
    assert!(fired.deliveries[0].outcome == "delivered");

    let body = json!({"method": "GET", "path": "/v3/accounts", "exact": true, "status": 503, "code": "Down",
        "message": "down", "retryAfterSecs": 5, "latencyMs": 0, "drop": false, "malformed": false,
        "rate": 1.0, "times": 1});
    round_trip::<FaultSpec>("fault request", &body);
    round_trip::<FaultRule>("add fault", &call(&c, Method::POST, "/faults", Some(body)).await);

    let body = json!({"mode": "interactive"});
    round_trip::<ConsentSetting>("consent request", &body);
    let set: ConsentSetting = round_trip("set consent", &call(&c, Method::PUT, "/consent", Some(body)).await);
    assert_eq!(set.mode, "interactive");
    round_trip::<ConsentSetting>("consent", &call(&c, Method::GET, "/consent", None).await);
    assert_eq!(c.set_consent_mode("instant").await.expect("set").mode, "instant");
    assert_eq!(c.consent_mode().await.expect("read").mode, "instant");
}
