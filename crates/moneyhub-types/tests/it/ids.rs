//! Identifier parsing, validation messages and serde behaviour.

use std::collections::HashSet;

use moneyhub_types::*;
use uuid::Uuid;

const UUID: &str = "6d0baf11-248e-4c11-9c04-97b7758b4e04";

#[test]
fn uuid_ids_accept_hyphenated_uuids_verbatim() {
    let id: TransactionId = UUID.parse().unwrap();
    assert_eq!(id.as_str(), UUID);
    assert_eq!(id.to_string(), UUID);
    assert_eq!(id.uuid(), Uuid::parse_str(UUID).unwrap());

    let upper = UUID.to_uppercase();
    let id: AccountId = upper.parse().unwrap();
    assert_eq!(id.as_str(), upper, "case is preserved, not normalised");

    let id = SyncId::from_uuid(Uuid::parse_str(UUID).unwrap());
    assert_eq!(id, UUID);
    let id: WebhookId = Uuid::parse_str(UUID).unwrap().into();
    assert_eq!(id.as_ref(), UUID);
}

#[test]
fn uuid_ids_reject_bad_input_with_clear_messages() {
    let err = "not-a-uuid".parse::<TransactionId>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid TransactionId \"not-a-uuid\": expected a UUID in hyphenated form such as \
         `6d0baf11-248e-4c11-9c04-97b7758b4e04`"
    );
    match err {
        Error::InvalidId { kind, value, .. } => {
            assert_eq!(kind, "TransactionId");
            assert_eq!(value, "not-a-uuid");
        }
        other => panic!("unexpected {other:?}"),
    }
    for bad in [
        "",
        "6d0baf11248e4c119c0497b7758b4e04",
        "{6d0baf11-248e-4c11-9c04-97b7758b4e04}",
        "6d0baf11-248e-4c11-9c04-97b7758b4e0g",
        " 6d0baf11-248e-4c11-9c04-97b7758b4e04",
    ] {
        assert!(bad.parse::<AccountId>().is_err(), "{bad:?}");
        assert!(SyncId::try_from(bad.to_owned()).is_err(), "{bad:?}");
        assert!(WebhookId::try_from(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn uuid_ids_validate_on_deserialisation() {
    let ok: TransactionId = serde_json::from_str(&format!("\"{UUID}\"")).unwrap();
    assert_eq!(ok, UUID);
    let err = serde_json::from_str::<TransactionId>("\"tx-1\"").unwrap_err();
    assert!(err.to_string().starts_with("invalid TransactionId \"tx-1\": expected a UUID"), "{err}");
    assert!(serde_json::from_str::<AccountId>("123").is_err());
}

#[test]
fn user_ids_are_lenient_but_reject_unsafe_input() {
    let id: UserId = "5c79210bbac25ecb5e71ac40".parse().unwrap();
    assert!(id.is_object_id());
    let id: UserId = "user_123-abc".parse().unwrap();
    assert!(!id.is_object_id());
    assert_eq!(id, "user_123-abc");

    let cases = [
        ("", "invalid UserId \"\": must not be empty"),
        ("a/b", "invalid UserId \"a/b\": must not contain `/` (found at byte 1)"),
        ("5c79 210", "invalid UserId \"5c79 210\": must not contain whitespace (found at byte 4)"),
        ("ab\n", "invalid UserId \"ab\\n\": must not contain whitespace (found at byte 2)"),
        ("ab\u{0}", "invalid UserId \"ab\\0\": must not contain control characters (found at byte 2)"),
        (
            "..",
            "invalid UserId \"..\": must not be `.` or `..` (a dot-segment cannot be one URL path segment)",
        ),
        (".", "invalid UserId \".\": must not be `.` or `..` (a dot-segment cannot be one URL path segment)"),
    ];
    for (input, message) in cases {
        let err = input.parse::<UserId>().unwrap_err();
        assert_eq!(err.to_string(), message);
        // Deserialisation applies the same rule.
        let json = serde_json::to_string(input).unwrap();
        assert!(serde_json::from_str::<UserId>(&json).is_err(), "{input:?}");
    }
}

#[test]
fn connection_ids_expose_the_bank_prefix() {
    let id: ConnectionId =
        "1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b".parse().unwrap();
    let bank: BankId = "1ffe704d39629a929c8e293880fb449a".parse().unwrap();
    assert_eq!(id.bank_id(), Some(bank.clone()));
    assert!(id.is_for_bank(&bank));
    assert!(!id.is_for_bank(&"b74f1a79f0be8bdb857d82d0f041d7d2".parse().unwrap()));

    let opaque: ConnectionId = "legacy-connection-7".parse().unwrap();
    assert_eq!(opaque.bank_id(), None);
    let leading: ConnectionId = ":abc".parse().unwrap();
    assert_eq!(leading.bank_id_str(), None);
    let many: ConnectionId = "a:b:c".parse().unwrap();
    assert_eq!(many.bank_id_str(), Some("a"));

    let built = ConnectionId::from_parts(&bank, Uuid::parse_str(UUID).unwrap());
    assert_eq!(built, format!("1ffe704d39629a929c8e293880fb449a:{UUID}").as_str());

    let err = "bank/1:x".parse::<ConnectionId>().unwrap_err();
    assert!(err.to_string().contains("invalid ConnectionId \"bank/1:x\""), "{err}");
    assert!("".parse::<ConnectionId>().is_err());
    assert!("a b".parse::<ConnectionId>().is_err());
}

#[test]
fn bank_ids_reject_colons() {
    let err = "abc:def".parse::<BankId>().unwrap_err();
    assert_eq!(err.to_string(), "invalid BankId \"abc:def\": must not contain `:` (found at byte 3)");
    assert!("zoopla".parse::<BankId>().is_ok());
}

#[test]
fn category_ids_strict_on_parse_lenient_on_decode() {
    let std: CategoryId = "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d".parse().unwrap();
    assert!(std.is_standard() && !std.is_custom() && std.is_well_formed());
    let cus: CategoryId = "cus:my_cat-1".parse().unwrap();
    assert!(cus.is_custom());

    let err = "food".parse::<CategoryId>().unwrap_err();
    assert_eq!(err.to_string(), "invalid CategoryId \"food\": expected `std:<id>` or `cus:<id>`");
    let err = "cus:a.b".parse::<CategoryId>().unwrap_err();
    assert!(err.to_string().contains("found '.' at byte 5"), "{err}");
    assert!("std:".parse::<CategoryId>().is_err());

    let decoded: CategoryId = serde_json::from_str("\"ext:groceries.v2\"").unwrap();
    assert!(!decoded.is_well_formed());
    assert_eq!(serde_json::to_string(&decoded).unwrap(), "\"ext:groceries.v2\"");
    assert!(serde_json::from_str::<CategoryId>("\"\"").is_err());
}

#[test]
fn client_ids_are_opaque() {
    let id: ClientId = "898c529b-c062-4f26-a136-fd8bc462d583".parse().unwrap();
    assert_eq!(id.clone().into_string(), "898c529b-c062-4f26-a136-fd8bc462d583");
    assert!("my-client".parse::<ClientId>().is_ok());
    assert!("my client".parse::<ClientId>().is_err());
}

#[test]
fn ids_serialise_as_plain_strings_and_work_as_keys() {
    let id: UserId = "5c79210bbac25ecb5e71ac40".parse().unwrap();
    assert_eq!(serde_json::to_string(&id).unwrap(), "\"5c79210bbac25ecb5e71ac40\"");
    let back: UserId = serde_json::from_str("\"5c79210bbac25ecb5e71ac40\"").unwrap();
    assert_eq!(back, id);

    let mut set = HashSet::new();
    set.insert(id.clone());
    assert!(set.contains("5c79210bbac25ecb5e71ac40"), "Borrow<str> lookups");

    let mut ids: Vec<TransactionId> = vec![
        "c390a94f-3824-4cdf-8d02-b0c5304d9f66".parse().unwrap(),
        "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77".parse().unwrap(),
    ];
    ids.sort();
    assert_eq!(ids[0], "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77");
    let s: String = ids.remove(0).into();
    assert_eq!(s, "0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77");
}

#[test]
fn dot_segments_are_refused_by_every_opaque_id() {
    for input in [".", ".."] {
        assert!(input.parse::<UserId>().is_err(), "UserId {input:?}");
        assert!(input.parse::<ConnectionId>().is_err(), "ConnectionId {input:?}");
        assert!(input.parse::<BankId>().is_err(), "BankId {input:?}");
        assert!(input.parse::<moneyhub_types::ClientId>().is_err(), "ClientId {input:?}");
        let json = serde_json::to_string(input).unwrap();
        assert!(serde_json::from_str::<ConnectionId>(&json).is_err(), "{input:?}");
    }
    // Dots inside an id are fine: only a whole dot-segment is refused.
    assert!("a..b".parse::<UserId>().is_ok());
    assert!("...".parse::<UserId>().is_ok());
}
