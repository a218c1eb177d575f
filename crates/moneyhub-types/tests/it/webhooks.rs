//! Webhook envelopes → typed events, spellings, unknown events, URN mapping.

use chrono::{TimeZone, Utc};
use moneyhub_types::*;
use serde_json::{json, Value};

const WEBHOOK_ID: &str = "abe168ce-1b2f-4c38-9c92-db5730485cb3";
const USER: &str = "5c79210bbac25ecb5e71ac40";
const ACCOUNT: &str = "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13";
const TX1: &str = "c390a94f-3824-4cdf-8d02-b0c5304d9f66";
const TX2: &str = "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77";
const SYNC: &str = "9f3678b2-9fd1-47dd-8b69-4eab49bd2d66";
const CONN: &str = "1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b";

fn envelope(event_type: &str, payload: Value) -> WebhookEnvelope {
    let body = json!({"id": WEBHOOK_ID, "eventType": event_type, "userId": USER, "payload": payload});
    decode(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn event(event_type: &str, payload: Value) -> WebhookEvent {
    let env = envelope(event_type, payload.clone());
    let event = WebhookEvent::from_envelope(&env).unwrap_or_else(|e| panic!("{e}"));
    // The typed payload re-encodes to the original payload.
    assert_eq!(event.payload().unwrap(), payload, "{event_type}");
    event
}

fn tx_payload() -> Value {
    json!({"accounts": [{"id": ACCOUNT, "transactions": [TX1, TX2]}]})
}

fn check_tx_payload(p: &TransactionsPayload) {
    assert_eq!(p.accounts.len(), 1);
    assert_eq!(p.accounts[0].id, ACCOUNT);
    assert_eq!(p.accounts[0].transactions, vec![TX1, TX2]);
}

#[test]
fn transaction_events() {
    match event("newTransactions", tx_payload()) {
        WebhookEvent::NewTransactions(p) => check_tx_payload(&p),
        other => panic!("{other:?}"),
    }
    match event("updatedTransactions", tx_payload()) {
        WebhookEvent::UpdatedTransactions(p) => check_tx_payload(&p),
        other => panic!("{other:?}"),
    }
    match event("deletedTransactions", tx_payload()) {
        WebhookEvent::DeletedTransactions(p) => check_tx_payload(&p),
        other => panic!("{other:?}"),
    }
    match event("restoredTransactions", tx_payload()) {
        WebhookEvent::RestoredTransactions(p) => check_tx_payload(&p),
        other => panic!("{other:?}"),
    }
}

fn sync_payload(status: &str) -> Value {
    json!({"completedAt": "2025-01-03T09:00:07.000Z", "processingStatus": status,
           "syncId": SYNC, "connectionId": CONN})
}

#[test]
fn sync_completed_both_spellings() {
    for spelling in ["syncCompleted", "syncComplete"] {
        let env = envelope(spelling, sync_payload("error"));
        assert_eq!(env.event_type, WebhookEventType::SyncCompleted);
        match WebhookEvent::from_envelope(&env).unwrap() {
            WebhookEvent::SyncCompleted(p) => {
                assert_eq!(p.processing_status, ProcessingStatus::Error);
                assert_eq!(p.sync_id, SYNC);
                assert_eq!(p.connection_id, CONN);
                assert_eq!(p.completed_at, Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 7).unwrap());
            }
            other => panic!("{spelling}: {other:?}"),
        }
    }
    // Unknown processing status is kept.
    match event("syncCompleted", sync_payload("queued")) {
        WebhookEvent::SyncCompleted(p) => {
            assert_eq!(p.processing_status, ProcessingStatus::Unknown("queued".into()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn deleted_account() {
    match event("deletedAccount", json!({"accountId": ACCOUNT})) {
        WebhookEvent::DeletedAccount(p) => assert_eq!(p.account_id, ACCOUNT),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reauth_reminder_both_field_spellings() {
    let payload = json!({"connectionId": CONN, "bankName": "Modelo",
                         "timeUntilReauthorizationInDays": 5, "tppConsent": true});
    match event("reauthReminder", payload) {
        WebhookEvent::ReauthReminder(p) => {
            assert_eq!(p.connection_id, CONN);
            assert_eq!(p.bank_name, "Modelo");
            assert_eq!(p.time_until_reauthorization_in_days, 5.0);
            assert_eq!(p.tpp_consent, Some(true));
        }
        other => panic!("{other:?}"),
    }
    let env = envelope(
        "reauthReminder",
        json!({"connectionId": CONN, "bankName": "Modelo", "timeUntilReauthorization": 2.5,
               "tppConsent": false}),
    );
    match WebhookEvent::from_envelope(&env).unwrap() {
        WebhookEvent::ReauthReminder(p) => {
            assert_eq!(p.time_until_reauthorization_in_days, 2.5);
            assert_eq!(p.tpp_consent, Some(false));
            // Written back in the primary spelling.
            let v = WebhookEvent::ReauthReminder(p).payload().unwrap();
            assert_eq!(v["timeUntilReauthorizationInDays"], json!(2.5));
            assert!(v.get("timeUntilReauthorization").is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refresh_reminder() {
    let payload = json!({"connectionId": CONN, "bankName": "Aviva", "periodSinceLastUpdateInDays": 2});
    match event("refreshReminder", payload) {
        WebhookEvent::RefreshReminder(p) => {
            assert_eq!(p.bank_name, "Aviva");
            assert_eq!(p.period_since_last_update_in_days, 2.0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn post_connection_enrichment_both_spellings() {
    let payload = json!({"connectionId": CONN, "accounts": [{"accountId": ACCOUNT,
        "postConnectionEnrichmentStatus": "completed", "postConnectionEnrichedAt": "2025-01-02T10:03:00.000Z"}]});
    for spelling in ["postConnectionEnrichmentCompleted", "postConnectionEnrichmentComplete"] {
        match event(spelling, payload.clone()) {
            WebhookEvent::PostConnectionEnrichmentCompleted(p) => {
                assert_eq!(p.connection_id.as_ref().map(ConnectionId::as_str), Some(CONN));
                assert_eq!(p.rest.get("accounts"), payload.get("accounts"));
                assert!(!p.rest.contains_key("connectionId"));
            }
            other => panic!("{spelling}: {other:?}"),
        }
    }
    // Without a connection id the payload is still accepted and kept.
    match event("postConnectionEnrichmentCompleted", json!({"status": "done"})) {
        WebhookEvent::PostConnectionEnrichmentCompleted(p) => {
            assert_eq!(p.connection_id, None);
            assert_eq!(p.rest.get("status"), Some(&json!("done")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_and_out_of_scope_events_keep_their_payload() {
    let payload = json!({"paymentId": "p-1", "nested": {"a": [1, 2, 3]}});
    for name in ["paymentCompleted", "balanceThreshold", "somethingBrandNew"] {
        match event(name, payload.clone()) {
            WebhookEvent::Unknown { event_type, payload: kept } => {
                assert_eq!(event_type, name);
                assert_eq!(kept, payload);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let env = envelope("somethingBrandNew", json!(null));
    assert_eq!(env.event_type, WebhookEventType::Unknown("somethingBrandNew".into()));
    // The envelope itself round-trips unchanged.
    let text = serde_json::to_value(&env).unwrap();
    assert_eq!(text["eventType"], json!("somethingBrandNew"));
}

#[test]
fn envelope_accepts_userid_lowercase_and_missing_user() {
    let body = json!({"id": WEBHOOK_ID, "eventType": "deletedAccount", "userid": USER,
                      "payload": {"accountId": ACCOUNT}});
    let env: WebhookEnvelope = decode(body.to_string().as_bytes()).unwrap();
    assert_eq!(env.user_id.as_ref().map(UserId::as_str), Some(USER));
    // Written back as `userId`.
    let v = serde_json::to_value(&env).unwrap();
    assert_eq!(v["userId"], json!(USER));
    assert!(v.get("userid").is_none());

    let body = json!({"id": WEBHOOK_ID, "eventType": "paymentCompleted", "payload": {}});
    let env: WebhookEnvelope = decode(body.to_string().as_bytes()).unwrap();
    assert_eq!(env.user_id, None);
}

#[test]
fn envelope_rejects_non_uuid_id() {
    let body = json!({"id": "42", "eventType": "deletedAccount", "userId": USER, "payload": {}});
    let err = decode::<WebhookEnvelope>(body.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().starts_with("id: invalid WebhookId \"42\""), "{err}");
}

fn payload_error(event_type: &str, payload: Value) -> String {
    let env = envelope(event_type, payload);
    let err = WebhookEvent::from_envelope(&env).unwrap_err();
    assert!(matches!(err, Error::WebhookPayload { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn malformed_known_payloads_name_the_field() {
    let text = payload_error(
        "syncCompleted",
        json!({"completedAt": "2025-01-03T09:00:07.000Z", "processingStatus": "success",
               "syncId": "nope", "connectionId": CONN}),
    );
    assert!(
        text.starts_with(
            "invalid `syncCompleted` webhook payload at payload.syncId: invalid SyncId \"nope\""
        ),
        "{text}"
    );

    let text =
        payload_error("newTransactions", json!({"accounts": [{"id": ACCOUNT, "transactions": [TX1, 7]}]}));
    assert!(
        text.starts_with(
            "invalid `newTransactions` webhook payload at payload.accounts[0].transactions[1]: invalid type: integer `7`"
        ),
        "{text}"
    );

    let text =
        payload_error("reauthReminder", json!({"connectionId": CONN, "timeUntilReauthorizationInDays": 3}));
    assert!(text.contains("missing field `bankName`"), "{text}");

    let text = payload_error("deletedAccount", json!("oops"));
    assert!(
        text.starts_with(
            "invalid `deletedAccount` webhook payload at payload: invalid type: string \"oops\""
        ),
        "{text}"
    );

    let text = payload_error("postConnectionEnrichmentCompleted", json!({"connectionId": "has space"}));
    assert_eq!(
        text,
        "invalid `postConnectionEnrichmentCompleted` webhook payload at payload.connectionId: \
         invalid ConnectionId \"has space\": must not contain whitespace (found at byte 3)"
    );
}

#[test]
fn urn_mapping_both_ways() {
    assert_eq!(event_type_from_urn("urn:com:moneyhub:events:sync-completed").unwrap(), "syncCompleted");
    assert_eq!(urn_for_event_type("syncCompleted"), "urn:com:moneyhub:events:sync-completed");
    assert_eq!(event_type_from_urn("urn:com:moneyhub:events:payment-completed").unwrap(), "paymentCompleted");
    assert_eq!(event_type_from_urn("urn:com:moneyhub:events:ping").unwrap(), "ping");
    assert_eq!(
        urn_for_event_type("postConnectionEnrichmentCompleted"),
        "urn:com:moneyhub:events:post-connection-enrichment-completed"
    );
    // Generic for unknown events, and round-trips.
    for name in ["someFutureEvent2Ready", "x", "affordabilityReportFailure", "newTransactions"] {
        let urn = urn_for_event_type(name);
        assert_eq!(event_type_from_urn(&urn).unwrap(), name, "{urn}");
    }
    assert_eq!(WebhookEventType::DeletedAccount.urn(), "urn:com:moneyhub:events:deleted-account");

    for bad in [
        "urn:com:moneyhub:events:",
        "urn:com:moneyhub:events:sync--completed",
        "urn:com:moneyhub:events:-sync",
        "urn:com:moneyhub:events:Sync-completed",
        "urn:com:moneyhub:events:sync_completed",
        "urn:com:other:events:sync-completed",
        "sync-completed",
    ] {
        let err = event_type_from_urn(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidEventUrn { .. }), "{bad}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn set_event_to_envelope_and_back() {
    let env = WebhookEnvelope::from_set_event(
        WEBHOOK_ID.parse().unwrap(),
        Some(USER.parse().unwrap()),
        "urn:com:moneyhub:events:sync-completed",
        sync_payload("success"),
    )
    .unwrap();
    assert_eq!(env.event_type, WebhookEventType::SyncCompleted);
    assert_eq!(env.set_event_urn(), "urn:com:moneyhub:events:sync-completed");
    assert!(matches!(WebhookEvent::from_envelope(&env).unwrap(), WebhookEvent::SyncCompleted(_)));

    let env = WebhookEnvelope::from_set_event(
        WEBHOOK_ID.parse().unwrap(),
        None,
        "urn:com:moneyhub:events:brand-new-thing",
        json!({"k": 1}),
    )
    .unwrap();
    assert_eq!(env.event_type.as_str(), "brandNewThing");
    assert!(WebhookEnvelope::from_set_event(WEBHOOK_ID.parse().unwrap(), None, "urn:x", json!({})).is_err());
}

#[test]
fn typed_event_to_envelope_round_trip() {
    let original = envelope("newTransactions", tx_payload());
    let event = WebhookEvent::from_envelope(&original).unwrap();
    assert_eq!(event.event_type(), WebhookEventType::NewTransactions);
    let rebuilt = event.to_envelope(original.id.clone(), original.user_id.clone()).unwrap();
    assert_eq!(rebuilt, original);

    let unknown = WebhookEvent::Unknown { event_type: "syncComplete".into(), payload: json!({}) };
    assert_eq!(unknown.event_type(), WebhookEventType::SyncCompleted);
}
