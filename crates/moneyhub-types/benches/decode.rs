//! Decoding a page of transactions: the client's hot path when reading transactions.
//!
//! `cargo bench -p moneyhub-types --bench decode`

#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use moneyhub_types::{DataResponse, Transaction, TransactionsMeta};
use serde_json::json;

/// A page of `n` transactions shaped like the sandbox's (and Moneyhub's examples).
fn page(n: usize) -> Vec<u8> {
    let data: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "id": format!("c390a94f-3824-4cdf-8d02-{:012x}", i),
                "accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13",
                "amount": {"value": -2323 - i as i64, "majorUnits": 23, "minorUnits": 23, "currency": "GBP"},
                "categoryId": "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d",
                "categoryIdConfirmed": false,
                "date": "2025-01-10T12:00:00.000Z",
                "dateModified": "2025-01-10T11:39:46.506Z",
                "dateCreated": "2025-01-10T11:39:46.506Z",
                "longDescription": "CARD PAYMENT TO TESCO STORES 2041 LONDON",
                "shortDescription": "Tesco",
                "notes": "",
                "status": if i % 10 == 0 { "pending" } else { "posted" },
                "providerId": format!("moneyhub-mock-8e24fd5f-{i:x}"),
            })
        })
        .collect();
    serde_json::to_vec(&json!({"data": data, "links": {"self": "http://x/v3/transactions"}, "meta": {}}))
        .unwrap()
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode transactions");
    for n in [50usize, 1000] {
        let body = page(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("moneyhub_types::decode, {n} per page"), |b| {
            b.iter_batched(
                || body.clone(),
                |bytes| {
                    moneyhub_types::decode::<DataResponse<Vec<Transaction>, TransactionsMeta>>(&bytes)
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("with field paths (the error path), {n} per page"), |b| {
            b.iter(|| {
                let mut de = serde_json::Deserializer::from_slice(&body);
                let v: DataResponse<Vec<Transaction>, TransactionsMeta> =
                    serde_path_to_error::deserialize(&mut de).unwrap();
                v
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
