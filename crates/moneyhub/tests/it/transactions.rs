//! Transactions: by ids (batching, order, missing, local validation), filtered listing,
//! streaming through pages, get by id.

use futures_util::{StreamExt, TryStreamExt};
use moneyhub::{CreditDebit, ErrorKind, Sent, TransactionFilter};
use moneyhub_types::TransactionId;

use crate::support::{env, last_seq, matching, requests_after, user_with, MOCK_BANK, MODELO_BANK};

fn unknown_id(i: u32) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

#[tokio::test]
async fn by_ids_batches_merges_in_order_and_reports_missing() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK, MODELO_BANK]).await;
    let t = e.client.transactions();
    let listed = t.list(&user, &TransactionFilter::new().limit(110)).await.unwrap();
    assert_eq!(listed.transactions.len(), 110, "the sandbox seeds enough transactions");

    // 110 known ids (reversed) with 10 unknown ones interleaved: 120 distinct ids, plus a
    // duplicate that must not be fetched twice.
    let mut ids: Vec<String> = Vec::new();
    let mut expected_missing = Vec::new();
    for (i, tx) in listed.transactions.iter().rev().enumerate() {
        ids.push(tx.id.to_string());
        if i % 11 == 0 {
            let u = unknown_id(i as u32);
            expected_missing.push(u.clone());
            ids.push(u);
        }
    }
    assert_eq!(ids.len(), 120);
    ids.push(ids[0].clone());

    let seq = last_seq(&e.sandbox).await;
    let got = t.concurrency(2).by_ids(&user, &ids).await.unwrap();
    let log = requests_after(&e.sandbox, seq).await;
    let batches = matching(&log, "GET", "/v3/transactions");
    assert_eq!(batches.len(), 3, "120 ids → 3 requests of at most 50");
    for b in &batches {
        let n = b["query"].as_str().unwrap().matches("ids=").count();
        assert!(n <= 50 && n > 0, "{n} ids in one request");
    }

    let expected_found: Vec<String> = listed.transactions.iter().rev().map(|tx| tx.id.to_string()).collect();
    let found: Vec<String> = got.transactions.iter().map(|tx| tx.id.to_string()).collect();
    assert_eq!(found, expected_found, "merged in request order");
    let missing: Vec<String> = got.missing.iter().map(TransactionId::to_string).collect();
    assert_eq!(missing, expected_missing);
    assert_eq!(got.transactions[5], listed.transactions[104]);
}

#[tokio::test]
async fn a_malformed_id_is_refused_locally_and_named() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let seq = last_seq(&e.sandbox).await;
    let ids = vec![unknown_id(1), "not-a-uuid".to_owned(), unknown_id(2)];
    let err = e.client.transactions().by_ids(&user, &ids).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Validation { .. }), "{err}");
    assert_eq!(err.sent(), Sent::Never);
    assert!(err.to_string().contains("not-a-uuid"), "{err}");
    assert!(requests_after(&e.sandbox, seq).await.is_empty(), "nothing sent");
    let empty = e.client.transactions().by_ids(&user, Vec::<String>::new()).await.unwrap();
    assert!(empty.transactions.is_empty() && empty.missing.is_empty());
}

#[tokio::test]
async fn filtered_listing_and_get() {
    let e = env().await;
    let (user, ids) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let t = e.client.transactions();
    let credits =
        t.list(&user, &TransactionFilter::new().credit_debit(CreditDebit::Credit).limit(20)).await.unwrap();
    assert!(!credits.transactions.is_empty());
    assert!(credits.transactions.iter().all(|tx| tx.amount.value > 0));
    let debits =
        t.list(&user, &TransactionFilter::new().credit_debit(CreditDebit::Debit).limit(20)).await.unwrap();
    assert!(debits.transactions.iter().all(|tx| tx.amount.value < 0));

    let accounts = e.client.accounts().list(&user, &Default::default()).await.unwrap();
    let account = accounts[0].id.clone();
    let by_account =
        t.list(&user, &TransactionFilter::new().account(account.clone()).limit(50)).await.unwrap();
    assert!(by_account.transactions.iter().all(|tx| tx.account_id.as_ref() == Some(&account)));
    let multi = t
        .list(&user, &TransactionFilter::new().accounts(accounts.iter().map(|a| a.id.clone())).limit(5))
        .await
        .unwrap();
    assert_eq!(multi.transactions.len(), 5);

    let day = by_account.transactions[0].date.date_naive();
    let on_day = t.list(&user, &TransactionFilter::new().dates(Some(day), Some(day))).await.unwrap();
    assert!(!on_day.transactions.is_empty());
    assert!(on_day.transactions.iter().all(|tx| tx.date.date_naive() == day));
    let modified = t.list(&user, &TransactionFilter::new().modified(Some(day), None).limit(1)).await.unwrap();
    assert_eq!(modified.transactions.len(), 1);

    let text = by_account.transactions[0].short_description.clone();
    let found = t.list(&user, &TransactionFilter::new().text(text.clone()).limit(10)).await.unwrap();
    assert!(!found.transactions.is_empty());

    let category = by_account.transactions[0].category_id.clone();
    let in_category =
        t.list(&user, &TransactionFilter::new().category(category.clone()).limit(20)).await.unwrap();
    assert!(!in_category.transactions.is_empty());
    assert!(in_category.transactions.iter().all(|tx| tx.category_id == category));

    let one = t.get(&user, &by_account.transactions[0].id).await.unwrap();
    assert_eq!(one, by_account.transactions[0]);
    let err = t.get(&user, &unknown_id(9).parse().unwrap()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let seq = last_seq(&e.sandbox).await;
    let err = t.list(&user, &TransactionFilter::new().limit(1001)).await.unwrap_err();
    assert_eq!(err.sent(), Sent::Never);
    assert!(requests_after(&e.sandbox, seq).await.is_empty());
    let _ = ids;
}

#[tokio::test]
async fn stream_follows_every_page() {
    let e = env().await;
    let (user, _) = user_with(&e.sandbox, &[MOCK_BANK]).await;
    let t = e.client.transactions();
    let total = t.list(&user, &TransactionFilter::new().limit(1)).await.unwrap().meta.count.expect("count");
    assert!(total > 100, "{total}");
    // The same count without a page: `onlyCount`, whatever the limit.
    let seq = last_seq(&e.sandbox).await;
    assert_eq!(t.count(&user, &TransactionFilter::new().limit(3)).await.unwrap(), Some(total));
    let sent = requests_after(&e.sandbox, seq).await;
    let sent = matching(&sent, "GET", "/v3/transactions");
    assert!(sent[0]["query"].as_str().unwrap().contains("onlyCount=true"), "{sent:?}");
    let recent =
        TransactionFilter::new().dates(Some(chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()), None);
    let recent_count = t.count(&user, &recent).await.unwrap().expect("count");
    let recent_listed: Vec<_> = t.stream(&user, recent).try_collect().await.unwrap();
    assert_eq!(recent_count, recent_listed.len() as u64);
    assert!(recent_count < total);

    let seq = last_seq(&e.sandbox).await;
    let all: Vec<_> = t.stream(&user, TransactionFilter::new().limit(40)).try_collect().await.unwrap();
    assert_eq!(all.len() as u64, total);
    let distinct: std::collections::HashSet<_> = all.iter().map(|tx| tx.id.clone()).collect();
    assert_eq!(distinct.len(), all.len(), "no transaction twice");
    let pages = matching(&requests_after(&e.sandbox, seq).await, "GET", "/v3/transactions").len() as u64;
    assert_eq!(pages, total.div_ceil(40));

    // Page by page, with the offset carried along.
    let pages: Vec<_> = t.pages(&user, TransactionFilter::new().limit(500)).try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|p| p.transactions.len() as u64).sum::<u64>(), total);
    assert!(pages.last().unwrap().next.is_none());
    // A bad filter is one error item, nothing sent.
    let errs: Vec<_> = t.stream(&user, TransactionFilter::new().limit(0)).collect::<Vec<_>>().await;
    assert_eq!(errs.len(), 1);
    assert!(errs[0].is_err());
}
