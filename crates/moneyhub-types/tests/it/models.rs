//! Request bodies, error bodies, amounts, envelopes and other small models.

use chrono::{TimeZone, Utc};
use moneyhub_types::*;
use serde_json::json;

use crate::assert_round_trip;

#[test]
fn sync_request_skips_none_fields() {
    assert_eq!(serde_json::to_string(&SyncRequest::default()).unwrap(), "{}");
    let full = SyncRequest {
        customer_ip_address: Some("104.25.212.99".into()),
        customer_last_logged_time: Some(Utc.with_ymd_and_hms(2017, 4, 5, 10, 43, 7).unwrap()),
        enable_async: Some(false),
    };
    assert_eq!(
        serde_json::to_value(&full).unwrap(),
        json!({"customerIpAddress": "104.25.212.99",
               "customerLastLoggedTime": "2017-04-05T10:43:07.000Z", "enableAsync": false})
    );
    let back: SyncRequest = assert_round_trip(serde_json::to_string(&full).unwrap().as_bytes());
    assert_eq!(back, full);
}

#[test]
fn api_error_bodies() {
    let e: ApiErrorBody =
        assert_round_trip(br#"{"code":"TooManyRequests","message":"Too Many Requests","retryAfterSecs":60}"#);
    assert!(e.is_too_many_requests());
    assert_eq!(e.retry_after_secs, Some(60));

    let e: ApiErrorBody = assert_round_trip(
        br#"{"code":"ExternalProvider","message":"The server encountered an error","correlationId":"1234567890","statusCode":500}"#,
    );
    assert_eq!(e.status_code, Some(500));
    assert_eq!(e.correlation_id.as_deref(), Some("1234567890"));
    assert!(!e.is_too_many_requests());

    let e: ApiErrorBody = assert_round_trip(
        br#"{"code":"NotFound","id":"x","userId":"u","details":[{"field":"ids","problem":"too many"}]}"#,
    );
    assert_eq!(e.message, None);
    assert_eq!(e.details, Some(json!([{"field": "ids", "problem": "too many"}])));

    let e = ApiErrorBody::new("BadGateway", "ASPSP client error: getAccounts");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"code": "BadGateway", "message": "ASPSP client error: getAccounts"})
    );
    assert!(decode::<ApiErrorBody>(br#"{"message":"no code"}"#).is_err());
}

#[test]
fn amounts() {
    let a = Amount::from_minor_units(-2323, "GBP", 2);
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        json!({"value": -2323, "majorUnits": 23, "minorUnits": 23, "currency": "GBP"})
    );
    assert!(a.is_debit() && !a.is_credit());
    let jpy = Amount::from_minor_units(1500, "JPY", 0);
    assert_eq!((jpy.major_units, jpy.minor_units), (Some(1500), Some(0)));
    let min = Amount::from_minor_units(i64::MIN, "GBP", 2);
    assert_eq!(min.major_units, Some(92_233_720_368_547_758));
    assert_eq!(min.minor_units, Some(8));
    let silly = Amount::from_minor_units(5, "XXX", 40);
    assert_eq!((silly.major_units, silly.minor_units), (None, None));
    let plain: Amount = assert_round_trip(br#"{"value":0,"currency":"EUR"}"#);
    assert_eq!(plain, Amount::new(0, "EUR"));
    assert!(!plain.is_debit() && !plain.is_credit());
    assert!(decode::<Amount>(br#"{"value":1.5,"currency":"GBP"}"#).is_err());
}

#[test]
fn account_syncs_keep_null() {
    let list: DataResponse<Vec<AccountSync>> = assert_round_trip(
        br#"{"data":[{"accountId":"ac9bd177-d01e-449c-9f29-d3656d2edc2e","lastSuccessfulSync":"2018-07-10T11:39:44.000Z"},
                     {"accountId":"4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13","lastSuccessfulSync":null}]}"#,
    );
    assert!(list.data[0].last_successful_sync.is_some());
    assert_eq!(list.data[1].last_successful_sync, None);
}

#[test]
fn links_with_pagination() {
    let r: DataResponse<Vec<Transaction>> = assert_round_trip(
        br#"{"data":[],"links":{"self":"https://a/t?offset=10","next":"https://a/t?offset=20","prev":"https://a/t?offset=0"},"meta":{}}"#,
    );
    let links = r.links.unwrap();
    assert_eq!(links.next.as_deref(), Some("https://a/t?offset=20"));
    assert_eq!(links.prev.as_deref(), Some("https://a/t?offset=0"));
    assert_eq!(serde_json::to_value(DataResponse::new(vec![1, 2])).unwrap(), json!({"data": [1, 2]}));
}

#[test]
fn connection_patch_body() {
    let patch = ConnectionPatch { expires_at: Utc.with_ymd_and_hms(2025, 4, 2, 10, 0, 0).unwrap() };
    assert_eq!(serde_json::to_string(&patch).unwrap(), r#"{"expiresAt":"2025-04-02T10:00:00.000Z"}"#);
}

#[test]
fn timestamps_are_normalised_to_utc_milliseconds() {
    let c: Connection = decode(
        br#"{"id":"a:b","name":"N","type":"legacy","connectedOn":"2025-01-02T11:00:00+01:00",
            "lastUpdated":"2025-01-03T06:00:12.3456789Z","status":"ok","singleSyncOnly":true,"useMfa":false}"#,
    )
    .unwrap();
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["connectedOn"], json!("2025-01-02T10:00:00.000Z"));
    assert_eq!(v["lastUpdated"], json!("2025-01-03T06:00:12.345Z"));
    assert_eq!(c.single_sync_only, Some(true));
    assert_eq!(c.use_mfa, Some(false));
}

#[test]
fn manual_account_without_connection_or_details() {
    let a: Account = decode(
        br#"{"id":"ac9bd177-d01e-449c-9f29-d3656d2edc2e","accountName":"House","type":"properties:residential",
            "balance":{"amount":{"value":25000000,"currency":"GBP"},"date":"2025-01-01"},
            "dateAdded":"2025-01-01T00:00:00.000Z","dateModified":"2025-01-01T00:00:00.000Z","providerId":"API"}"#,
    )
    .unwrap();
    assert_eq!(a.connection_id, None);
    assert_eq!(a.details, AccountDetails::default());
    assert_eq!(a.kind.staleness_threshold(), chrono::Duration::days(40));
    assert_eq!(a.provider_id.as_deref(), Some("API"));
    assert_eq!(a.balance.kind, None);
}

#[test]
fn auth_requests_decode_keep_unknown_fields_and_redact_params() {
    let ar: AuthRequest = assert_round_trip(
        br#"{"id":"584d3b02-e3a3-4fde-a64d-3b9ae136ec81","redirectUri":"http://127.0.0.1:9/cb","createdAt":"2025-01-15T10:00:00.000Z","bankId":"1ffe704d39629a929c8e293880fb449a","userId":"5c79210bbac25ecb5e71ac40","scope":"openid id:1ffe704d39629a929c8e293880fb449a","connectionId":"1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b","status":"complete","redirectParams":{"authUrl":"http://127.0.0.1/oidc/auth?x=1","state":"s1"},"syncId":"9f3678b2-9fd1-47dd-8b69-4eab49bd2d66","completedAt":"2025-01-15T10:01:00.000Z","newField":{"a":1}}"#,
    );
    assert_eq!(ar.status, AuthRequestStatus::Complete);
    assert_eq!(ar.redirect_params.state.as_deref(), Some("s1"));
    assert_eq!(ar.extra["newField"], json!({"a": 1}));
    let pending: AuthRequest = assert_round_trip(
        br#"{"id":"x","createdAt":"2025-01-15T10:00:00.000Z","scope":"openid reauth","status":"paused","redirectParams":{}}"#,
    );
    assert_eq!(pending.status, AuthRequestStatus::Unknown("paused".into()));
    let params = AuthParams::code("the-code", "st");
    assert_eq!(serde_json::to_value(&params).unwrap(), json!({"code": "the-code", "state": "st"}));
    assert!(!format!("{params:?}").contains("the-code"));
}

#[test]
fn unenriched_transactions_and_running_syncs() {
    let t: UnenrichedTransaction = assert_round_trip(
        br#"{"id":"c390a94f-3824-4cdf-8d02-b0c5304d9f66","accountId":"4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13","amount":{"value":-2323,"majorUnits":23,"minorUnits":23,"currency":"GBP"},"date":"2025-01-10T12:00:00.000Z","dateModified":"2025-01-10T11:39:46.506Z","dateCreated":"2025-01-10T11:39:46.506Z","longDescription":"CARD PAYMENT TO GROCER LTD","status":"posted","providerId":"tx-9001","proprietaryTransactionCode":{"code":"POS","issuer":"Bank"},"merchantName":"Grocer"}"#,
    );
    assert_eq!(t.proprietary_transaction_code.as_ref().map(|c| c.code.as_str()), Some("POS"));
    assert_eq!(t.extra["merchantName"], "Grocer");
    // A running sync may carry explicit nulls.
    let s: ConnectionSync = moneyhub_types::decode(
        br#"{"id":"9f3678b2-9fd1-47dd-8b69-4eab49bd2d66","connectionId":"1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b","action":"client-update","method":"ADD","createdAt":"2025-01-15T10:00:00.000Z","fetchStatus":null,"fetchedAt":null,"accounts":[]}"#,
    )
    .unwrap();
    assert!(!s.is_finished() && s.fetched_at.is_none());
}
