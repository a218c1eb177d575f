//! One paging type for every paged list: `pages()` streams walk users, a connection's and a
//! user's syncs, accounts and auth requests to their last page; `Accounts::list` reports the
//! next page; the page-size rule is the same everywhere. And the guard, asked without syncing.

use futures_util::TryStreamExt;
use moneyhub::{AccountFilter, NewAuthRequest, Page, PageOptions, SyncOptions};

use crate::support::{bank, env, last_seq, matching, requests_after, user_with, MOCK_BANK, MODELO_BANK};

/// The sizes of the pages of a stream.
fn sizes<T>(pages: &[Page<T>]) -> Vec<usize> {
    pages.iter().map(|p| p.items.len()).collect()
}

#[tokio::test]
async fn every_listing_pages_to_its_last_page() {
    let e = env().await;
    for i in 0..3 {
        e.client.users().create(Some(&format!("paged-{i}"))).await.unwrap();
    }
    let users: Vec<_> = e.client.users().pages(PageOptions::new(2, 0)).try_collect().await.unwrap();
    assert_eq!(sizes(&users), vec![2, 1]);

    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK, MODELO_BANK]).await;
    let accounts = e.client.accounts();
    let first = accounts.list(&user, &AccountFilter::new().limit(1)).await.unwrap();
    assert_eq!(first.len(), 1, "the page derefs to its accounts");
    let next = first.next.expect("Accounts::list reports the next page");
    assert_eq!((next.limit, next.offset), (1, 1));
    let all = accounts.list(&user, &AccountFilter::new()).await.unwrap();
    assert!(all.len() > 2 && all.next.is_none(), "{} accounts on one page", all.len());
    let pages: Vec<_> = accounts.pages(&user, AccountFilter::new().limit(2)).try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|p| p.items.len()).sum::<usize>(), all.len());
    assert!(pages.len() >= 2 && pages.iter().all(|p| p.items.len() <= 2), "{:?}", sizes(&pages));

    let connections = e.client.connections();
    let history: Vec<_> =
        connections.sync_pages(&user, &ids[0], PageOptions::new(1, 0)).try_collect().await.unwrap();
    let whole = connections.syncs(&user, &ids[0], PageOptions::default()).await.unwrap();
    assert_eq!(history.len(), whole.items.len().max(1));
    let everyone: Vec<_> =
        connections.user_sync_pages(&user, PageOptions::new(1, 0)).try_collect().await.unwrap();
    let together = connections.user_syncs(&user, PageOptions::default()).await.unwrap();
    assert_eq!(everyone.iter().map(|p| p.items.len()).sum::<usize>(), together.items.len());

    for _ in 0..3 {
        e.client.auth_requests().create(&NewAuthRequest::connect(bank(MOCK_BANK))).await.unwrap();
    }
    let requests: Vec<_> =
        e.client.auth_requests().pages(PageOptions::new(2, 0)).try_collect().await.unwrap();
    assert_eq!(sizes(&requests), vec![2, 1]);
}

#[tokio::test]
async fn page_size_is_checked_the_same_everywhere_before_sending() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let seq = last_seq(&e.sandbox).await;
    let too_big = AccountFilter::new().limit(1001);
    let errors = [
        e.client.users().list(PageOptions::new(0, 0)).await.unwrap_err(),
        e.client.accounts().list(&user, &too_big).await.unwrap_err(),
        e.client.connections().syncs(&user, &ids[0], PageOptions::new(1001, 0)).await.unwrap_err(),
        e.client.auth_requests().list(PageOptions::new(1001, 0)).await.unwrap_err(),
        e.client.transactions().list(&user, &moneyhub::TransactionFilter::new().limit(0)).await.unwrap_err(),
        e.client.users().pages(PageOptions::new(1001, 0)).try_next().await.unwrap_err(),
    ];
    for err in &errors {
        assert!(err.to_string().contains("limit must be between 1 and 1000"), "{err}");
    }
    assert!(requests_after(&e.sandbox, seq).await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn sync_allowed_at_asks_the_guard_without_syncing() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let connections = e.client.connections();
    assert_eq!(connections.sync_allowed_at(&ids[0]).await, None);
    assert_eq!(connections.last_manual_sync(&ids[0]).await, None);
    let seq = last_seq(&e.sandbox).await;
    assert_eq!(connections.sync_allowed_at(&ids[0]).await, None, "asking twice records nothing");
    assert!(requests_after(&e.sandbox, seq).await.is_empty(), "asking sends nothing");

    connections.sync(&user, &ids[0], SyncOptions::new().enable_async(false)).await.unwrap();
    let synced = connections.last_manual_sync(&ids[0]).await.expect("the sync is recorded");
    assert_eq!(connections.sync_allowed_at(&ids[0]).await, Some(synced + chrono::Duration::minutes(30)));
    let log = requests_after(&e.sandbox, seq).await;
    assert_eq!(matching(&log, "POST", "/v3/sync").len(), 1);
}
