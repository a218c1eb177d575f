//! Open enums: unknown values survive decode → encode, known values map both ways, helpers.

use chrono::Duration;
use moneyhub_types::*;
use serde_json::json;

use crate::assert_round_trip;

#[test]
fn unknown_connection_values_survive_round_trip() {
    let c: Connection = assert_round_trip(
        br#"{"id":"abc:def","name":"New","type":"openbanking-v9","connectedOn":"2025-01-02T10:00:00.000Z",
            "accountIds":[],"status":"paused","error":"provider_on_fire","extendedStatus":"frozen"}"#,
    );
    assert_eq!(c.kind, ConnectionType::Unknown("openbanking-v9".into()));
    assert!(!c.kind.is_api_like());
    assert_eq!(c.status, ConnectionStatus::Unknown("paused".into()));
    assert_eq!(c.error, Some(ConnectionError::Unknown("provider_on_fire".into())));
    assert_eq!(c.extended_status, Some(ExtendedStatus::Unknown("frozen".into())));
    assert_eq!(c.error.as_ref().map(ConnectionError::as_str), Some("provider_on_fire"));
}

#[test]
fn unknown_account_and_transaction_values_survive_round_trip() {
    let a: Account = assert_round_trip(
        br#"{"id":"ac9bd177-d01e-449c-9f29-d3656d2edc2e","accountName":"Wallet","type":"crypto:defi",
            "accountType":"charity","balance":{"amount":{"value":1,"currency":"BTC"},"date":"2025-01-01","type":"Projected"},
            "details":{"interestType":"tracker","runningCostPeriod":"fortnight"},
            "dateAdded":"2025-01-01T00:00:00.000Z","dateModified":"2025-01-01T00:00:00.000Z"}"#,
    );
    assert_eq!(a.kind, AccountType::Unknown("crypto:defi".into()));
    assert_eq!(a.kind.to_string(), "crypto:defi");
    assert_eq!(a.account_type, Some(CustomerType::Unknown("charity".into())));
    assert_eq!(a.balance.kind, Some(BalanceType::Unknown("Projected".into())));
    assert_eq!(a.details.interest_type, Some(InterestType::Unknown("tracker".into())));

    let t: Transaction = assert_round_trip(
        br#"{"id":"c390a94f-3824-4cdf-8d02-b0c5304d9f66","amount":{"value":5,"currency":"GBP"},
            "categoryId":"std:x","categoryIdConfirmed":true,"date":"2025-01-10T12:00:00.000Z",
            "dateModified":"2025-01-10T12:00:00.000Z","longDescription":"L","shortDescription":"S",
            "notes":"n","status":"reversed","balanceType":"Sideways"}"#,
    );
    assert_eq!(t.status, TransactionStatus::Unknown("reversed".into()));
    assert_eq!(t.details().balance_type, Some(BalanceType::Unknown("Sideways".into())));
}

#[test]
fn unknown_sync_user_catalogue_values_survive_round_trip() {
    let s: ConnectionSync = assert_round_trip(
        br#"{"id":"9f3678b2-9fd1-47dd-8b69-4eab49bd2d66","connectionId":"a:b","action":"manual-update",
            "method":"PATCH","fetchStatus":"timeout","createdAt":"2025-01-03T09:00:00.000Z","accounts":[]}"#,
    );
    assert_eq!(s.action, SyncAction::Unknown("manual-update".into()));
    assert_eq!(s.method, SyncMethod::Unknown("PATCH".into()));
    assert_eq!(s.fetch_status, Some(FetchStatus::Unknown("timeout".into())));

    let u: User = assert_round_trip(
        br#"{"userId":"u1","clientId":"c1","createdAt":"2025-01-01T00:00:00.000Z",
            "updatedAt":"2025-01-01T00:00:00.000Z","scopes":"","managedBy":"partner","userType":"staging",
            "connectionIds":[]}"#,
    );
    assert_eq!(u.managed_by, ManagedBy::Unknown("partner".into()));
    assert_eq!(u.user_type, UserType::Unknown("staging".into()));

    let e: CatalogueEntry = assert_round_trip(
        br#"{"id":"b1","name":"B","type":"experian","accountTypes":[],"userTypes":["charity"],
            "status":{"sync":"MAYBE","auth":"AVAILABLE"}}"#,
    );
    assert_eq!(e.kind, ConnectionType::Unknown("experian".into()));
    assert_eq!(e.user_types, vec![CustomerType::Unknown("charity".into())]);
    assert_eq!(e.status.map(|s| s.sync), Some(AvailabilityStatus::Unknown("MAYBE".into())));
}

#[test]
fn explicit_error_null_round_trips_as_null() {
    let bytes = br#"{"id":"a:b","name":"N","type":"api","connectedOn":"2025-01-02T10:00:00.000Z",
        "accountIds":[],"status":"ok","error":null}"#;
    let c: Connection = assert_round_trip(bytes);
    assert_eq!(c.error, None);
    let encoded = serde_json::to_value(&c).unwrap();
    assert_eq!(encoded.get("error"), Some(&serde_json::Value::Null));

    // Absent on input: still written as an explicit null.
    let c: Connection = decode(
        br#"{"id":"a:b","name":"N","type":"api","connectedOn":"2025-01-02T10:00:00.000Z","status":"ok"}"#,
    )
    .unwrap();
    assert_eq!(serde_json::to_value(&c).unwrap()["error"], json!(null));
    assert!(c.account_ids.is_empty());

    // A known error code is written as its wire string.
    let mut c = c;
    c.error = Some(ConnectionError::SyncError);
    c.extended_status = Some(ExtendedStatus::StoppedSyncing);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["error"], json!("sync_error"));
    assert_eq!(v["extendedStatus"], json!("stoppedSyncing"));
}

/// Every known value parses to a known variant and prints back identically.
fn check_known<T>(known: &[T], wire: &[&str])
where
    T: std::fmt::Debug + PartialEq + for<'a> From<&'a str> + serde::Serialize + AsRef<str>,
{
    let spelled: Vec<&str> = known.iter().map(AsRef::as_ref).collect();
    assert_eq!(spelled, wire);
    for (variant, s) in known.iter().zip(wire) {
        assert_eq!(&T::from(s), variant);
        assert_eq!(serde_json::to_value(variant).unwrap(), json!(s));
    }
}

#[test]
fn known_values_match_the_documented_lists() {
    check_known(ConnectionType::KNOWN, &["api", "legacy", "test", "zoopla", "mouseprice", "autotrader"]);
    check_known(ConnectionStatus::KNOWN, &["ok", "error", "never"]);
    check_known(
        ConnectionError::KNOWN,
        &["resync", "sync_error", "sync_partial", "mfa_required", "credentials_error"],
    );
    check_known(ExtendedStatus::KNOWN, &["expired", "stoppedSyncing"]);
    check_known(FetchStatus::KNOWN, &["success", "error", "partial", "mfa-required", "credentials-error"]);
    check_known(SyncAction::KNOWN, &["auto-update", "client-update"]);
    check_known(SyncMethod::KNOWN, &["ADD", "UPDATE"]);
    check_known(TransactionStatus::KNOWN, &["posted", "pending"]);
    check_known(
        AccountType::KNOWN,
        &[
            "cash:current",
            "savings",
            "card",
            "investment",
            "loan",
            "mortgage:repayment",
            "mortgage:interestOnly",
            "pension",
            "pension:definedBenefit",
            "pension:definedContribution",
            "asset",
            "properties:residential",
            "properties:buyToLet",
            "crypto",
        ],
    );
    check_known(CustomerType::KNOWN, &["personal", "business"]);
    check_known(
        BalanceType::KNOWN,
        &[
            "ClosingAvailable",
            "ClosingBooked",
            "ClosingCleared",
            "Expected",
            "ForwardAvailable",
            "Information",
            "InterimAvailable",
            "InterimBooked",
            "InterimCleared",
            "OpeningAvailable",
            "OpeningBooked",
            "OpeningCleared",
            "PreviouslyClosedBooked",
        ],
    );
    check_known(
        AvailabilityStatus::KNOWN,
        &["AVAILABLE", "PARTIALLY_AVAILABLE", "TEMPORARILY_UNAVAILABLE", "PERMANENTLY_UNAVAILABLE"],
    );
    check_known(ManagedBy::KNOWN, &["client", "user"]);
    check_known(UserType::KNOWN, &["test", "demo", "live"]);
    check_known(ProcessingStatus::KNOWN, &["success", "error"]);
}

#[test]
fn unknown_values_are_case_sensitive_and_verbatim() {
    assert_eq!(ConnectionStatus::from("OK"), ConnectionStatus::Unknown("OK".into()));
    assert!(ConnectionStatus::from("OK").is_unknown());
    assert!(!ConnectionStatus::Ok.is_unknown());
    let parsed: ConnectionType = " api".parse().unwrap();
    assert_eq!(parsed.as_str(), " api");
    let v: SyncMethod = serde_json::from_str(r#""add""#).unwrap();
    assert_eq!(v, SyncMethod::Unknown("add".into()));
    assert_eq!(serde_json::to_string(&v).unwrap(), r#""add""#);
}

#[test]
fn open_enums_reject_non_strings() {
    assert!(serde_json::from_str::<ConnectionStatus>("42").is_err());
    assert!(serde_json::from_str::<ConnectionStatus>("null").is_err());
}

#[test]
fn webhook_event_type_aliases_normalise() {
    assert_eq!(WebhookEventType::from("syncComplete"), WebhookEventType::SyncCompleted);
    assert_eq!(WebhookEventType::from("syncComplete").as_str(), "syncCompleted");
    assert_eq!(
        WebhookEventType::from("postConnectionEnrichmentComplete"),
        WebhookEventType::PostConnectionEnrichmentCompleted
    );
    assert_eq!(WebhookEventType::from("somethingElse"), WebhookEventType::Unknown("somethingElse".into()));
}

#[test]
fn connection_type_helpers() {
    for t in ["api", "test", "zoopla", "mouseprice", "autotrader"] {
        assert!(ConnectionType::from(t).is_api_like(), "{t}");
    }
    assert!(!ConnectionType::Legacy.is_api_like());
    assert!(ConnectionType::Legacy.is_legacy());
    assert!(ConnectionType::Zoopla.is_valuation());
    assert!(!ConnectionType::Api.is_valuation());
    assert!(!ConnectionType::from("API").is_api_like());
}

#[test]
fn staleness_thresholds_follow_lifecycle_rules() {
    let long = Duration::days(40);
    let short = Duration::days(2);
    for t in [
        "properties:residential",
        "properties:buyToLet",
        "properties:commercial",
        "asset",
        "mortgage:repayment",
        "mortgage:interestOnly",
        "mortgage:offset",
        "loan",
        "loans",
    ] {
        assert_eq!(AccountType::from(t).staleness_threshold(), long, "{t}");
    }
    for t in [
        "cash:current",
        "savings",
        "card",
        "investment",
        "pension",
        "pension:definedBenefit",
        "pension:definedContribution",
        "crypto",
        "mortgage",
        "brand-new",
    ] {
        assert_eq!(AccountType::from(t).staleness_threshold(), short, "{t}");
    }
}
