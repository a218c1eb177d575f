//! Connections: catalogues, list, get (typed not-found), delete, status and history, expiry.

use chrono::Duration;
use moneyhub::{Catalogue, ErrorKind, PageOptions, Sent, SyncOptions, SyncRecord};
use moneyhub_types::{ConnectionStatus, ConnectionType, FetchStatus};

use crate::support::{
    env, last_seq, matching, requests_after, user_with, AVIVA_BANK, MOCK_BANK, MODELO_BANK,
};

#[tokio::test]
async fn catalogues() {
    let e = env().await;
    let c = e.client.connections();
    let all = c.available().await.unwrap();
    let api = c.available_api().await.unwrap();
    let legacy = c.available_legacy().await.unwrap();
    let payments = c.available_payments().await.unwrap();
    let test = c.available_test().await.unwrap();
    assert_eq!(c.catalogue(Catalogue::All).await.unwrap(), all);
    assert!(all.len() > api.len() && !api.is_empty() && !legacy.is_empty() && !payments.is_empty());
    assert!(test.iter().any(|p| p.id == MOCK_BANK && p.name == "Moneyhub Open Banking Mock"));
    assert!(legacy.iter().all(|p| p.kind == ConnectionType::Legacy));
    assert!(all.iter().any(|p| p.id == AVIVA_BANK));
    assert!(all.iter().any(|p| p.name.contains("Triodos")));
}

#[tokio::test]
async fn list_get_delete() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK, MODELO_BANK]).await;
    let c = e.client.connections();
    let list = c.list(&user).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|c| c.status == ConnectionStatus::Ok));

    let one = c.get(&user, &ids[1]).await.unwrap();
    assert_eq!(one.id, ids[1]);
    assert_eq!(one.name, "Modelo Open Banking Mock");

    let unknown = format!("{MOCK_BANK}:00000000-0000-4000-8000-000000000000").parse().unwrap();
    let err = c.get(&user, &unknown).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(matches!(err.kind(), ErrorKind::NotFound { what: "connection", .. }));
    let unknown_user = "ffffffffffffffffffffffff".parse().unwrap();
    assert!(c.list(&unknown_user).await.unwrap_err().is_not_found());

    let seq = last_seq(&e.sandbox).await;
    c.delete(&user, &ids[0]).await.unwrap();
    let log = requests_after(&e.sandbox, seq).await;
    let deletes = matching(&log, "DELETE", "/users/");
    assert_eq!(deletes.len(), 1);
    assert!(deletes[0]["path"].as_str().unwrap().contains("/connection/"), "singular path: {}", deletes[0]);
    assert_eq!(c.list(&user).await.unwrap().len(), 1);
    let err = c.delete(&user, &ids[0]).await.unwrap_err();
    assert!(err.is_not_found());
}

#[tokio::test]
async fn status_and_sync_history() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let c = e.client.connections();
    let first = c.status(&user, &ids[0]).await.unwrap().expect("the connection's first fetch");
    let done = first.finished().expect("finished");
    assert_eq!(done.fetch_status, Some(FetchStatus::Success));
    assert_eq!(&done.connection_id, &ids[0]);

    crate::support::advance(&e.sandbox, serde_json::json!({"minutes": 5})).await;
    let response = c.sync(&user, &ids[0], SyncOptions::new().enable_async(false)).await.unwrap();
    let sync_id = response.sync_id.expect("sandbox returns the sync id");
    let latest = c.status(&user, &ids[0]).await.unwrap().unwrap();
    assert_eq!(latest.id(), &sync_id);
    let history = c.syncs(&user, &ids[0], PageOptions::new(10, 0)).await.unwrap();
    assert_eq!(history.items.len(), 2);
    assert!(history.items.iter().all(|s| matches!(s, SyncRecord::Finished(_))));
    let all = c.user_syncs(&user, PageOptions::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
    let record = c.sync_record(&user, &sync_id).await.unwrap();
    assert_eq!(record.id(), &sync_id);
}

#[tokio::test]
async fn update_expiry() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let c = e.client.connections();
    let at = e.sandbox.now() + Duration::days(30);
    c.update_expiry(&user, &ids[0], at).await.unwrap();
    assert_eq!(c.get(&user, &ids[0]).await.unwrap().expires_at, Some(at));

    let seq = last_seq(&e.sandbox).await;
    for bad in [e.sandbox.now() + Duration::days(91), e.sandbox.now() - Duration::hours(1)] {
        let err = c.update_expiry(&user, &ids[0], bad).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Validation { .. }), "{err}");
        assert_eq!(err.sent(), Sent::Never);
    }
    assert!(requests_after(&e.sandbox, seq).await.is_empty(), "nothing sent");
}
