//! Single-flight token fetching, and a 1,000-call workload under injected faults.

use std::collections::HashMap;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use moneyhub::{PageOptions, SyncOptions, TransactionFilter};
use serde_json::json;

use crate::support::{
    builder, clear_faults, fast_retries, fault, last_seq, requests_after, sandbox, token_requests, user_with,
    MOCK_BANK, MODELO_BANK,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_share_one_token_request() {
    let sb = sandbox().await;
    let client = builder(&sb).build().unwrap();
    let (user, _) = user_with(&sb, &[MOCK_BANK]).await;
    let seq = last_seq(&sb).await;
    let calls = (0..50).map(|_| {
        let client = client.clone();
        let user = user.clone();
        async move { client.accounts().list(&user, &Default::default()).await }
    });
    let results = join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    let log = requests_after(&sb, seq).await;
    assert_eq!(token_requests(&log, "client_credentials", Some(user.as_str())).len(), 1);
    assert_eq!(log.iter().filter(|e| e["path"] == "/oidc/.well-known/openid-configuration").count(), 1);
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Accounts(usize),
    Connections(usize),
    Transactions(Vec<String>),
    ByIds(usize, usize),
    User(String),
    Catalogue(usize),
    Syncs(usize),
    Created,
    Synced,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_under_faults() {
    let sb = sandbox().await;
    let client = builder(&sb).retry_policy(fast_retries(12)).build().unwrap();
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(user_with(&sb, &[MOCK_BANK, MODELO_BANK]).await);
    }
    // Reference answers, fault-free.
    let mut expected: HashMap<(usize, u8), Outcome> = HashMap::new();
    let tx_ids: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for (user, _) in &users {
            let page = client.transactions().list(user, &TransactionFilter::new().limit(30)).await.unwrap();
            v.push(page.transactions.iter().map(|t| t.id.to_string()).collect());
        }
        v
    };
    for (i, (user, _)) in users.iter().enumerate() {
        expected.insert(
            (i, 0),
            Outcome::Accounts(client.accounts().list(user, &Default::default()).await.unwrap().len()),
        );
        expected.insert((i, 1), Outcome::Connections(client.connections().list(user).await.unwrap().len()));
        expected.insert((i, 2), Outcome::Transactions(tx_ids[i][..10].to_vec()));
        expected.insert((i, 3), Outcome::ByIds(30, 1));
        expected.insert((i, 4), Outcome::User(user.to_string()));
        expected.insert(
            (i, 6),
            Outcome::Syncs(
                client
                    .connections()
                    .syncs(user, &users[i].1[0], PageOptions::default())
                    .await
                    .unwrap()
                    .items
                    .len(),
            ),
        );
    }
    let catalogue = client.connections().available().await.unwrap().len();

    // 20% of GETs fail: a third each 503, 429 and a dropped connection.
    for rule in [
        json!({"method": "GET", "path": "/", "status": 503, "rate": 1.0 / 15.0}),
        json!({"method": "GET", "path": "/", "status": 429, "rate": 1.0 / 14.0}),
        json!({"method": "GET", "path": "/", "drop": true, "rate": 1.0 / 13.0}),
    ] {
        fault(&sb, rule).await;
    }
    let seq = last_seq(&sb).await;
    let jobs: Vec<(usize, u8)> = (0..1000).map(|n| (n % users.len(), (n / users.len() % 9) as u8)).collect();
    let creates = jobs.iter().filter(|(_, k)| *k == 7).count();
    let outcomes: Vec<((usize, u8), Result<Outcome, moneyhub::Error>)> = stream::iter(jobs)
        .map(|(i, kind)| {
            let client = client.clone();
            let (user, conns) = users[i].clone();
            let ids = tx_ids[i].clone();
            async move {
                let out = match kind {
                    0 => client
                        .accounts()
                        .list(&user, &Default::default())
                        .await
                        .map(|a| Outcome::Accounts(a.len())),
                    1 => client.connections().list(&user).await.map(|c| Outcome::Connections(c.len())),
                    2 => client.transactions().list(&user, &TransactionFilter::new().limit(10)).await.map(
                        |p| Outcome::Transactions(p.transactions.iter().map(|t| t.id.to_string()).collect()),
                    ),
                    3 => {
                        let mut ask = ids.clone();
                        ask.push("00000000-0000-4000-8000-000000000000".into());
                        client
                            .transactions()
                            .by_ids(&user, &ask)
                            .await
                            .map(|r| Outcome::ByIds(r.transactions.len(), r.missing.len()))
                    }
                    4 => client.users().get(&user).await.map(|u| Outcome::User(u.user_id.to_string())),
                    5 => client.connections().available().await.map(|c| Outcome::Catalogue(c.len())),
                    6 => client
                        .connections()
                        .syncs(&user, &conns[0], PageOptions::default())
                        .await
                        .map(|p| Outcome::Syncs(p.items.len())),
                    7 => client.users().create(None).await.map(|_| Outcome::Created),
                    _ => match client
                        .connections()
                        .sync(&user, &conns[1], SyncOptions::new().enable_async(false))
                        .await
                    {
                        Ok(_) => Ok(Outcome::Synced),
                        // The guard allows one sync per connection per 30 minutes.
                        Err(e) if e.not_before().is_some() => Ok(Outcome::Synced),
                        Err(e) => Err(e),
                    },
                };
                ((i, kind), out)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    clear_faults(&sb).await;

    let mut failures = Vec::new();
    for ((i, kind), out) in &outcomes {
        match (kind, out) {
            (_, Err(e)) => failures.push(format!("{i}/{kind}: {e}")),
            (5, Ok(o)) => assert_eq!(o, &Outcome::Catalogue(catalogue)),
            (6, Ok(Outcome::Syncs(n))) => {
                // Manual syncs of the other connection do not show in this one's history.
                assert_eq!(Outcome::Syncs(*n), expected[&(*i, 6)]);
            }
            (7 | 8, Ok(o)) => assert!(matches!(o, Outcome::Created | Outcome::Synced)),
            (_, Ok(o)) => assert_eq!(o, &expected[&(*i, *kind)], "job {i}/{kind}"),
        }
    }
    assert!(failures.is_empty(), "{} failures: {failures:?}", failures.len());

    let log = requests_after(&sb, seq).await;
    let faulted = log.iter().filter(|e| e["note"].as_str().is_some_and(|n| n.contains("fault:"))).count();
    assert!(faulted > 100, "faults were injected ({faulted})");
    // No non-idempotent request twice: each sync path once, and exactly one POST /users per
    // create call.
    let mut writes: HashMap<String, usize> = HashMap::new();
    for e in log
        .iter()
        .filter(|e| matches!(e["method"].as_str(), Some("POST" | "PATCH")) && e["path"] != "/oidc/token")
    {
        *writes
            .entry(format!("{} {}", e["method"].as_str().unwrap(), e["path"].as_str().unwrap()))
            .or_default() += 1;
    }
    assert_eq!(writes.remove("POST /users").unwrap_or(0), creates);
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
    assert_eq!(writes.len(), users.len(), "one sync per user's second connection");
}
