//! The sandbox's hot paths: creating a connection with 36 months of history, an automatic
//! sync's reconciliation, and serialising a page of 1000 transactions.
//!
//! `cargo bench -p moneyhub-sandbox --bench store`

#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moneyhub_sandbox::bench::{Catalogue, Store, MONEYHUB_MOCK};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap().with_timezone(&Utc)
}

/// A store with one user and one mock-bank connection with its full history.
fn connected() -> (Store, String) {
    let mut store = Store::new(42, 0.2, Arc::new(Catalogue::new()));
    let user = store.create_user("c", None, t0()).user_id.clone();
    let conn = store.create_connection(&user, MONEYHUB_MOCK, None, false, t0()).unwrap().connection_id;
    store.fetch_history(&conn, t0() + Duration::seconds(2));
    (store, conn)
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("sandbox store");
    g.bench_function("connect + 36 months of history", |b| b.iter(connected));
    g.bench_function("automatic sync (reconcile the last 12 days)", |b| {
        let (mut store, conn) = connected();
        let mut at = t0();
        b.iter(|| {
            at += Duration::hours(4);
            let id = store.start_sync(&conn, "auto-update", "UPDATE", at).unwrap();
            store.finish_sync(id, at)
        })
    });
    let (store, _) = connected();
    let rows: Vec<_> =
        store.accounts.values().flat_map(|a| a.txs.iter().map(move |t| (a, t))).take(1000).collect();
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("serialise 1000 transactions", |b| {
        b.iter(|| {
            let views: Vec<_> = rows.iter().map(|(a, t)| a.tx_view(t)).collect();
            serde_json::to_vec(&views).unwrap()
        })
    });
    g.finish();
}

criterion_group!(store_benches, benches);
criterion_main!(store_benches);
