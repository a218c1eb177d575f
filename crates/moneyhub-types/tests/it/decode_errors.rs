//! `decode` names the JSON path of the field that failed.

use moneyhub_types::*;

fn tx(id: &str, value: &str) -> String {
    format!(
        r#"{{"id":"{id}","amount":{{"value":{value},"currency":"GBP"}},"categoryId":"std:x",
        "categoryIdConfirmed":false,"date":"2025-01-10T12:00:00.000Z",
        "dateModified":"2025-01-10T12:00:00.000Z","longDescription":"L","shortDescription":"S",
        "notes":"","status":"posted"}}"#
    )
}

fn list(items: &[String]) -> String {
    format!(r#"{{"data":[{}],"meta":{{}}}}"#, items.join(","))
}

const IDS: [&str; 4] = [
    "c390a94f-3824-4cdf-8d02-b0c5304d9f66",
    "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77",
    "6d0baf11-248e-4c11-9c04-97b7758b4e04",
    "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13",
];

#[test]
fn wrong_type_deep_in_a_list_names_the_path() {
    let body = list(&[tx(IDS[0], "1"), tx(IDS[1], "2"), tx(IDS[2], "3"), tx(IDS[3], "\"12.50\"")]);
    let err = decode::<DataResponse<Vec<Transaction>>>(body.as_bytes()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("data[3].amount.value: invalid type: string \"12.50\", expected i64"), "{text}");
    match err {
        Error::Decode { path, .. } => assert_eq!(path, "data[3].amount.value"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn invalid_id_names_the_path_and_the_id_problem() {
    let body = list(&[tx(IDS[0], "1"), tx("tx-2", "2")]);
    let err = decode::<DataResponse<Vec<Transaction>>>(body.as_bytes()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("data[1].id: invalid TransactionId \"tx-2\": expected a UUID"), "{text}");
}

#[test]
fn missing_field_names_the_field() {
    let body = br#"{"data":[{"id":"a:b","name":"N","type":"api","connectedOn":"2025-01-02T10:00:00.000Z"}]}"#;
    let err = decode::<DataResponse<Vec<Connection>>>(body).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("data[0]: missing field `status`"), "{text}");
}

#[test]
fn bad_timestamp_names_the_path() {
    let body = br#"{"data":{"id":"a:b","name":"N","type":"api","connectedOn":"last tuesday","status":"ok"}}"#;
    let err = decode::<DataResponse<Connection>>(body).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("data.connectedOn: invalid timestamp \"last tuesday\""), "{text}");
}

#[test]
fn bad_enum_type_in_map_names_the_path() {
    let body = br#"{"data":[{"id":"b","name":"B","type":"api","status":{"sync":1,"auth":"AVAILABLE"}}]}"#;
    let err = decode::<DataResponse<Vec<CatalogueEntry>>>(body).unwrap_err();
    assert!(err.to_string().starts_with("data[0].status.sync: invalid type: integer `1`"), "{err}");
}

#[test]
fn syntax_errors_and_trailing_garbage_are_errors() {
    let err = decode::<Amount>(b"{\"value\": 1,").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("EOF"), "{err}");

    let err = decode::<Amount>(br#"{"value":1,"currency":"GBP"} extra"#).unwrap_err();
    assert!(err.to_string().contains("trailing characters"), "{err}");

    assert!(decode::<Amount>(b"").is_err());
    let ok: Amount = decode(b" {\"value\":1,\"currency\":\"GBP\"}\n").unwrap();
    assert_eq!(ok.value, 1);
}

#[test]
fn decode_str_and_decode_value_report_paths_too() {
    let err = decode_str::<Vec<Amount>>(r#"[{"value":1}]"#).unwrap_err();
    assert!(err.to_string().starts_with("[0]: missing field `currency`"), "{err}");

    let value = serde_json::json!({"data": {"value": true, "currency": "GBP"}});
    let err = decode_value::<DataResponse<Amount>>(&value).unwrap_err();
    assert!(err.to_string().starts_with("data.value: invalid type: boolean `true`"), "{err}");
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let body = br#"{"data":[{"id":"a:b","name":"N","type":"api","connectedOn":"2025-01-02T10:00:00.000Z",
        "status":"ok","error":null,"brandNewField":{"x":[1,2]},"accountIds":[]}],
        "links":{"self":"https://x/y","first":"https://x/z"},"meta":{},"extra":1}"#;
    let r: DataResponse<Vec<Connection>> = decode(body).unwrap();
    assert_eq!(r.data.len(), 1);
    assert_eq!(r.links.map(|l| l.self_link), Some("https://x/y".into()));
}

/// Decoding arbitrary damage of real payloads returns errors, never panics.
#[test]
fn damaged_payloads_never_panic() {
    fn all<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> usize {
        let mut errors = 0;
        for cut in 0..bytes.len() {
            errors += usize::from(decode::<T>(&bytes[..cut]).is_err());
        }
        for i in 0..bytes.len() {
            for replacement in [b'"', b'0', b'x', b'}', b'\\', 0xff] {
                let mut damaged = bytes.to_vec();
                damaged[i] = replacement;
                let _ = decode::<T>(&damaged);
            }
        }
        errors
    }
    let f = crate::fixture;
    // Every strict prefix of a JSON document is invalid JSON.
    let bytes = f("connection.json");
    let doc = bytes.trim_ascii_end();
    assert_eq!(all::<Connection>(doc), doc.len());
    all::<CatalogueEntry>(&f("catalogue_entry.json"));
    all::<DataResponse<SyncResponse>>(&f("sync_response.json"));
    all::<DataResponse<ConnectionSync>>(&f("connection_sync.json"));
    all::<DataResponse<Vec<Transaction>, TransactionsMeta>>(&f("transactions_by_ids.json"));
    all::<Transaction>(&f("swagger_transaction.json"));
    all::<Account>(&f("swagger_account.json"));
    all::<User>(&f("user.json"));
    let webhook = f("webhook_sync_completed.json");
    all::<WebhookEnvelope>(&webhook);
    for i in 0..webhook.len() {
        let mut damaged = webhook.clone();
        damaged[i] = b'1';
        if let Ok(envelope) = decode::<WebhookEnvelope>(&damaged) {
            let _ = WebhookEvent::from_envelope(&envelope);
        }
    }
}
