//! The cost of one `private_key_jwt` client assertion per algorithm: building the claims and
//! signing them (aws-lc-rs), as the client does before every token or PAR request.
//!
//! `cargo bench -p moneyhub --bench assertion`

#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use moneyhub::{KeyType, PrivateKey, SigningAlg};
use serde_json::json;

fn key(alg: SigningAlg) -> PrivateKey {
    let name = match alg.key_type() {
        KeyType::Rsa => "rsa0",
        KeyType::P256 => "p256",
        KeyType::P384 => "p384",
        KeyType::P521 => "p521",
        other => panic!("no test key of type {other:?}"),
    };
    let path = format!("{}/tests/data/keys/{name}.jwk", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("test key");
    PrivateKey::from_jwk(&text).expect("key").with_kid("bench").with_alg(alg).expect("alg fits")
}

fn assertions(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_assertion");
    for alg in SigningAlg::ALL {
        let key = key(alg);
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| {
                let now = 1_736_935_200_i64;
                let claims = json!({
                    "iss": "898c529b-c062-4f26-a136-fd8bc462d583",
                    "sub": "898c529b-c062-4f26-a136-fd8bc462d583",
                    "aud": "https://identity.moneyhub.co.uk/oidc/token",
                    "jti": "5c6f5e7a-7b43-4f0e-8a8b-5b1f3b0c9d2e",
                    "iat": now,
                    "exp": now + 60,
                });
                black_box(key.sign(black_box(&claims)).expect("signs"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, assertions);
criterion_main!(benches);
