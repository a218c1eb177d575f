//! Round trips of the reference documents' example payloads (`tests/fixtures`).

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use moneyhub_types::*;

use crate::{assert_round_trip, fixture};

#[test]
fn connection_example() {
    let c: Connection = assert_round_trip(&fixture("connection.json"));
    assert_eq!(c.id, "1ffe704d39629a929c8e293880fb449a:7d235ab0-e951-487f-acde-73cae1a18be0");
    assert_eq!(c.id.bank_id_str(), Some("1ffe704d39629a929c8e293880fb449a"));
    assert_eq!(c.name, "Moneyhub Open Banking Mock");
    assert_eq!(c.kind, ConnectionType::Test);
    assert_eq!(c.status, ConnectionStatus::Ok);
    assert_eq!(c.error, None);
    assert_eq!(c.extended_status, None);
    assert_eq!(c.tpp_consent, Some(true));
    assert_eq!(c.connected_on, Utc.with_ymd_and_hms(2025, 1, 2, 10, 0, 0).unwrap());
    assert_eq!(
        c.last_updated,
        Some(Utc.with_ymd_and_hms(2025, 1, 3, 6, 0, 12).unwrap() + Duration::milliseconds(345))
    );
    assert_eq!(c.expires_at.map(|t| t.to_rfc3339()), Some("2025-04-02T10:00:00+00:00".into()));
    assert_eq!(c.account_ids, vec!["4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"]);
    assert_eq!(c.single_sync_only, None);
}

#[test]
fn catalogue_example_single_and_as_bare_array() {
    let bytes = fixture("catalogue_entry.json");
    let e: CatalogueEntry = assert_round_trip(&bytes);
    assert_eq!(e.id, "1ffe704d39629a929c8e293880fb449a");
    assert_eq!(e.kind, ConnectionType::Test);
    assert_eq!(e.country.as_deref(), Some("GB"));
    assert_eq!(e.bank_ref.as_deref(), Some("moneyhub-mock"));
    assert_eq!(e.is_beta, Some(false));
    assert_eq!(e.account_types.len(), 1);
    assert_eq!(e.account_types[0].name, "cash");
    assert_eq!(e.account_types[0].beta, Some(false));
    assert_eq!(e.user_types, vec![CustomerType::Personal, CustomerType::Business]);
    assert_eq!(e.payments, vec!["domestic"]);
    let status = e.status.expect("status");
    assert_eq!(status.sync, AvailabilityStatus::Available);
    assert_eq!(status.auth, AvailabilityStatus::Available);

    let array = format!("[{}]", String::from_utf8(bytes).unwrap());
    let list: Vec<CatalogueEntry> = assert_round_trip(array.as_bytes());
    assert_eq!(list.len(), 1);
}

#[test]
fn sync_post_response_example() {
    let r: DataResponse<SyncResponse> = assert_round_trip(&fixture("sync_response.json"));
    assert_eq!(r.data.status, ConnectionStatus::Ok);
    assert_eq!(r.data.sync_id.as_ref().map(SyncId::as_str), Some("9f3678b2-9fd1-47dd-8b69-4eab49bd2d66"));
    let accounts = r.data.accounts.expect("accounts");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].account_id, "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13");
    assert_eq!(accounts[0].provider_id.as_deref(), Some("acc-001"));
    assert_eq!(accounts[0].post_connection_enrichment_status.as_deref(), Some("completed"));
    assert_eq!(r.meta, Some(serde_json::json!({})));
    assert_eq!(r.links, None);
}

#[test]
fn sync_response_with_status_only() {
    let r: DataResponse<SyncResponse> = assert_round_trip(br#"{"data":{"status":"error"}}"#);
    assert_eq!(r.data.status, ConnectionStatus::Error);
    assert_eq!(r.data.sync_id, None);
    assert_eq!(r.data.accounts, None);
}

#[test]
fn connection_sync_example() {
    let r: DataResponse<ConnectionSync> = assert_round_trip(&fixture("connection_sync.json"));
    let s = r.data;
    assert_eq!(s.id, "9f3678b2-9fd1-47dd-8b69-4eab49bd2d66");
    assert_eq!(s.action, SyncAction::ClientUpdate);
    assert_eq!(s.method, SyncMethod::Update);
    assert_eq!(s.fetch_status, Some(FetchStatus::Success));
    assert_eq!(s.fetched_at, Some(Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 7).unwrap()));
    assert_eq!(s.accounts.len(), 1);
    assert_eq!(
        s.accounts[0].post_connection_enriched_at,
        Some(Utc.with_ymd_and_hms(2025, 1, 2, 10, 3, 0).unwrap())
    );
}

#[test]
fn transactions_by_ids_with_a_miss() {
    let r: DataResponse<Vec<Transaction>, TransactionsMeta> =
        assert_round_trip(&fixture("transactions_by_ids.json"));
    assert_eq!(r.data.len(), 1);
    let t = &r.data[0];
    assert_eq!(t.id, "c390a94f-3824-4cdf-8d02-b0c5304d9f66");
    assert_eq!(
        t.amount,
        Amount { value: -2323, major_units: Some(23), minor_units: Some(23), currency: "GBP".into() }
    );
    assert!(t.category_id.is_standard());
    assert!(!t.category_id_confirmed);
    assert_eq!(t.status, TransactionStatus::Posted);
    assert_eq!(t.notes, "");
    assert_eq!(t.short_description, "Grocer Ltd");
    assert_eq!(t.provider_id.as_deref(), Some("tx-9001"));
    let links = r.links.expect("links");
    assert!(links.self_link.starts_with("https://api.moneyhub.co.uk/v3/transactions?ids="));
    assert_eq!(links.next, None);
    let meta = r.meta.expect("meta");
    assert_eq!(
        meta.missing_transaction_ids,
        Some(vec!["0b0e8a2c-1f9e-4a51-9a8e-3a4f1c9d2e77".parse::<TransactionId>().unwrap()])
    );
    assert_eq!(meta.count, None);
    assert!(meta.extra.is_empty());
}

#[test]
fn transactions_meta_keeps_unknown_keys() {
    let r: DataResponse<Vec<Transaction>, TransactionsMeta> =
        assert_round_trip(br#"{"data":[],"meta":{"count":42,"somethingNew":{"a":1}}}"#);
    let meta = r.meta.unwrap();
    assert_eq!(meta.count, Some(42));
    assert_eq!(meta.extra.get("somethingNew"), Some(&serde_json::json!({"a": 1})));
}

#[test]
fn webhook_json_example() {
    let e: WebhookEnvelope = assert_round_trip(&fixture("webhook_sync_completed.json"));
    assert_eq!(e.id, "abe168ce-1b2f-4c38-9c92-db5730485cb3");
    assert_eq!(e.event_type, WebhookEventType::SyncCompleted);
    assert_eq!(e.user_id.as_ref().map(UserId::as_str), Some("5c79210bbac25ecb5e71ac40"));
    match WebhookEvent::from_envelope(&e).unwrap() {
        WebhookEvent::SyncCompleted(p) => {
            assert_eq!(p.processing_status, ProcessingStatus::Success);
            assert_eq!(p.sync_id, "9f3678b2-9fd1-47dd-8b69-4eab49bd2d66");
            assert_eq!(
                p.connection_id,
                "1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b"
            );
            assert_eq!(p.completed_at, Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 7).unwrap());
        }
        other => panic!("expected SyncCompleted, got {other:?}"),
    }
}

#[test]
fn user_example() {
    let u: User = assert_round_trip(&fixture("user.json"));
    assert_eq!(u.user_id, "5c79210bbac25ecb5e71ac40");
    assert!(u.user_id.is_object_id());
    assert_eq!(u.client_id, "898c529b-c062-4f26-a136-fd8bc462d583");
    assert_eq!(u.managed_by, ManagedBy::Client);
    assert_eq!(u.user_type, UserType::Test);
    assert_eq!(
        u.iter_scopes().collect::<Vec<_>>(),
        vec!["openid", "id:1ffe704d39629a929c8e293880fb449a", "accounts:read"]
    );
    assert_eq!(u.connection_ids.len(), 1);
    assert_eq!(u.deleted_at, None);
}

#[test]
fn swagger_transaction_example() {
    let t: Transaction = assert_round_trip(&fixture("swagger_transaction.json"));
    assert_eq!(t.id, "c390a94f-3824-4cdf-8d02-b0c5304d9f66");
    assert_eq!(t.account_id.as_ref().map(AccountId::as_str), Some("c390a94f-2309-4cdf-8d02-b0c5304d9f66"));
    assert_eq!(t.long_description, "Card Purchase SAINSBURYS S/MKTS  BCC");
    assert_eq!(t.notes, "Some notes about the transaction");
    assert_eq!(
        t.details().enhanced_categories.as_ref().and_then(|m| m.get("uk-tax-hmrc")).and_then(|v| v.as_str()),
        Some("income.rent")
    );
    let splits = t.details().splits.as_ref().expect("splits");
    assert_eq!(splits[0].amount.value, -2300);
    assert_eq!(splits[0].description, "Split 1");
    assert_eq!(t.details().transaction_code.as_ref().map(|c| c.code.as_str()), Some("BAC"));
    assert_eq!(t.details().balance_type, Some(BalanceType::Information));
    assert_eq!(t.details().balance.as_ref().map(|b| b.value), Some(-2323));
    let card = t.details().card_instrument.as_ref().expect("card");
    assert_eq!(card.card_scheme_name.as_deref(), Some("VISA"));
    assert_eq!(card.authorisation_type.as_deref(), Some("Contactless"));
    assert_eq!(t.details().creditor_account.as_deref(), Some(&PartyAccount::default()));
    assert_eq!(t.details().transaction_information.as_deref(), Some("Cash from Aubrey"));
}

#[test]
fn swagger_account_example() {
    let a: Account = assert_round_trip(&fixture("swagger_account.json"));
    assert_eq!(a.id, "ac9bd177-d01e-449c-9f29-d3656d2edc2e");
    assert_eq!(a.account_name, "Cash ISA");
    assert_eq!(a.kind, AccountType::CashCurrent);
    assert_eq!(a.kind.staleness_threshold(), Duration::days(2));
    assert_eq!(a.account_type, Some(CustomerType::Personal));
    assert_eq!(a.balance.amount.value, 300_023);
    assert_eq!(a.balance.date, NaiveDate::from_ymd_opt(2018, 8, 12).unwrap());
    assert_eq!(a.balance.kind, Some(BalanceType::InterimAvailable));
    assert_eq!(a.details.aer, Some(1.3));
    assert_eq!(a.details.apr, Some(13.1));
    assert_eq!(a.details.yearly_appreciation, Some(-10.0));
    assert_eq!(a.details.interest_type, Some(InterestType::Fixed));
    assert_eq!(a.details.running_cost_period, Some(RunningCostPeriod::Month));
    assert_eq!(a.details.end_date, NaiveDate::from_ymd_opt(2020, 1, 1));
    assert_eq!(a.transaction_data.as_ref().map(|d| d.count), Some(6));
    assert_eq!(
        a.connection_id.as_ref().and_then(ConnectionId::bank_id),
        Some("049c10ab871e8d60aa891c0ae368322d".parse().unwrap())
    );
    let ids = a.provider_account_identifications.as_ref().expect("ids");
    assert_eq!(ids[0].kind, "UK.Santander.SavingsRollNumber");
    assert!(a.performance_score.is_some());
    assert_eq!(a.additional_balances.as_ref().map(Vec::len), Some(1));
}

#[test]
fn a_running_sync_has_no_fetch_status() {
    let s: moneyhub_types::ConnectionSync = serde_json::from_value(serde_json::json!({
        "id": "9f3678b2-9fd1-47dd-8b69-4eab49bd2d66",
        "connectionId": "1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b",
        "action": "client-update",
        "method": "UPDATE",
        "createdAt": "2025-01-03T09:00:00.000Z",
        "accounts": []
    }))
    .unwrap();
    assert!(!s.is_finished());
    assert_eq!(s.fetched_at, None);
    let back = serde_json::to_value(&s).unwrap();
    assert!(back.get("fetchStatus").is_none(), "{back}");
}

#[test]
fn a_plain_transaction_has_no_boxed_details_and_round_trips_flat() {
    let json = serde_json::json!({
        "id": "c390a94f-3824-4cdf-8d02-b0c5304d9f66",
        "accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13",
        "amount": {"value": -2323, "majorUnits": 23, "minorUnits": 23, "currency": "GBP"},
        "categoryId": "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d",
        "categoryIdConfirmed": false,
        "date": "2025-01-10T12:00:00.000Z",
        "dateModified": "2025-01-10T11:39:46.506Z",
        "longDescription": "CARD PAYMENT TO GROCER LTD",
        "shortDescription": "Grocer Ltd",
        "notes": "",
        "status": "posted"
    });
    let t: moneyhub_types::Transaction = serde_json::from_value(json.clone()).unwrap();
    assert!(t.extra.is_none(), "nothing optional, nothing allocated");
    assert!(t.details().is_empty());
    assert_eq!(serde_json::to_value(&t).unwrap(), json);
    let mut with = t.clone();
    with.details_mut().merchant_name = Some("Grocer".into());
    let v = serde_json::to_value(&with).unwrap();
    assert_eq!(v["merchantName"], "Grocer", "details serialise flat");
    let back: moneyhub_types::Transaction = serde_json::from_value(v).unwrap();
    assert_eq!(back, with);
}

#[test]
fn uuid_ids_compare_hash_and_borrow_as_their_text() {
    use std::collections::HashMap;
    let id: moneyhub_types::TransactionId = "c390a94f-3824-4cdf-8d02-b0c5304d9f66".parse().unwrap();
    let mut m = HashMap::new();
    m.insert(id.clone(), 1);
    assert_eq!(m.get("c390a94f-3824-4cdf-8d02-b0c5304d9f66"), Some(&1));
    assert_eq!(id.as_str(), "c390a94f-3824-4cdf-8d02-b0c5304d9f66");
    assert_eq!(format!("{id:?}"), "TransactionId(\"c390a94f-3824-4cdf-8d02-b0c5304d9f66\")");
    assert!(std::mem::size_of::<moneyhub_types::TransactionId>() <= 36);
    let upper: moneyhub_types::TransactionId = "C390A94F-3824-4CDF-8D02-B0C5304D9F66".parse().unwrap();
    assert_eq!(upper.as_str(), "C390A94F-3824-4CDF-8D02-B0C5304D9F66", "kept exactly as received");
}

/// A transaction with any one detail (the sandbox sends a proprietary code with each) boxes a
/// `TransactionDetails`: the large, rarely present parts are boxed on their own inside it, so
/// that box stays small (it was ~1 KB with card, parties and banks inline).
#[test]
fn one_detail_costs_a_small_box() {
    let size = std::mem::size_of::<moneyhub_types::TransactionDetails>();
    assert!(size <= 512, "TransactionDetails is {size} bytes");
    let json = serde_json::json!({
        "id": "c390a94f-3824-4cdf-8d02-b0c5304d9f66",
        "amount": {"value": -2323, "currency": "GBP"},
        "categoryId": "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d",
        "categoryIdConfirmed": false,
        "date": "2025-01-10T12:00:00.000Z",
        "dateModified": "2025-01-10T11:39:46.506Z",
        "longDescription": "CARD PAYMENT TO GROCER LTD",
        "shortDescription": "Grocer Ltd",
        "notes": "",
        "status": "posted",
        "proprietaryTransactionCode": {"code": "POS", "issuer": "Mock Bank"},
        "creditorAgent": {"name": "Bank", "postalAddress": {"town": "Leeds"}},
        "debtorAccount": {"sortCode": "123456", "accountNumber": "12345678"},
        "cardInstrument": {"pan": "************1234", "cardSchemeName": "VISA"}
    });
    let t: moneyhub_types::Transaction = serde_json::from_value(json.clone()).unwrap();
    let d = t.details();
    assert_eq!(d.proprietary_transaction_code.as_ref().map(|c| c.code.as_str()), Some("POS"));
    assert_eq!(d.creditor_agent.as_ref().and_then(|a| a.name.as_deref()), Some("Bank"));
    assert_eq!(d.debtor_account.as_ref().and_then(|a| a.sort_code.as_deref()), Some("123456"));
    assert_eq!(d.card_instrument.as_ref().and_then(|c| c.pan.as_deref()), Some("************1234"));
    assert_eq!(serde_json::to_value(&t).unwrap(), json, "boxed parts serialise flat, as received");
}
