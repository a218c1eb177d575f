//! The lifecycle loop at scale: N users × 3 connections observed (as a listing would), then the
//! clock moved on by a virtual day and every row that fell due re-evaluated, in batches, the way
//! `mirror run` does. Prints the time of each phase, the rows evaluated and the process's peak
//! resident memory.
//!
//! ```sh
//! cargo run --release -p moneyhub-mirror --example lifecycle_bench -- 100000
//! cargo run --release -p moneyhub-mirror --example lifecycle_bench -- 100000 'postgres://postgres@127.0.0.1/test?schema=bench'
//! ```
//!
//! The first 1,000 users are observed one transaction per user (as a claim writes them), the
//! rest 500 users per transaction (`Db::lifecycle_observe_many`, a bulk load).
//!
//! Measured on the project's 2-core build machine, shared with four other engineers' builds
//! (load average 9–15), **debug** build (a release build did not fit in the time), 2026-12-07.
//! Before: the PostgreSQL backend wrote each connection with 4 statements (lock, upsert,
//! history row, prune); after: a batch is read and locked in one query and written in one
//! statement of `UNNEST`ed arrays, whatever its size.
//!
//! | run | users × 3 | observe, 1 user per transaction | observe, 500 users per transaction | due after a day | re-evaluated | peak RSS |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | PostgreSQL 15, before | 10,000 | 255 s (118/s) | — | 16,500 | 104 s (159/s) | 16 MiB |
//! | PostgreSQL 15, after | 10,000 | 3,000 in 24 s (126/s) | 27,000 in 58 s (463/s) | 16,500 | 22 s (742/s) | 33 MiB |
//! | PostgreSQL 15, after | 100,000 | 3,000 in 19 s (156/s) | 297,000 in 834 s (356/s) | 165,000 | 491 s (336/s) | 34 MiB |
//! | SQLite, before | 10,000 | 35 s (858/s) | — | 16,500 | 14 s (1,213/s) | 30 MiB |
//! | SQLite, after | 10,000 | 3,000 in 4.3 s (691/s) | 27,000 in 64 s (422/s) | 16,500 | 30 s (559/s) | 22 MiB |
//!
//! (The 100,000-user PostgreSQL run shared the machine with test runs; the SQLite code did not
//! change, so its two rows show how much the load alone moves a figure.) PostgreSQL's bulk
//! load and re-evaluation now run at SQLite's pace on the same machine: what remains is the
//! debug build's CPU time per evaluation (decoding, `advise`, `next_change_at`, encoding),
//! not round trips. Memory stays flat: batches of 500 users or 500 due rows.
//! Re-measure: `cargo run --release -p moneyhub-mirror --example lifecycle_bench -- 10000
//! 'postgres://postgres@127.0.0.1:5432/test?schema=bench'` and the same without the URL
//! (SQLite), before and after a change, in one session.
//!
//! The connections' data ages are spread over the two days before the start, so a virtual day
//! later about half of them cross the 2-day staleness threshold (their advice changes from
//! `none` to `sync`), and the consent of one in ten enters its 5-day window.

use std::time::Instant;

use moneyhub_mirror::lifecycle::{LifecycleWrites, Observation};
use moneyhub_mirror::Db;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn account(i: u64, k: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", i, k + 100)
}

fn connection(i: u64, k: u64, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let ts = |t: chrono::DateTime<chrono::Utc>| moneyhub_types::time::format_timestamp(&t);
    // Data 0–48 h old; consent 4.5–94.5 days ahead.
    let age = chrono::Duration::minutes(((i * 3 + k) * 7919 % 2880) as i64);
    let consent = if (i + k).is_multiple_of(10) {
        chrono::Duration::hours(24 * 5 + 12)
    } else {
        chrono::Duration::days(60)
    };
    serde_json::json!({
        "id": format!("b74f1a79f0be8bdb857d82d0f041d7d2:{:08x}-0000-4000-8000-{:012x}", i, k),
        "name": "Bank", "type": "api", "connectedOn": ts(now - chrono::Duration::days(30)),
        "lastUpdated": ts(now - age), "lastSyncedAt": ts(now - age), "expiresAt": ts(now + consent),
        "accountIds": [account(i, k)], "status": "ok", "error": null, "tppConsent": true
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let users: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("lifecycle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args.next().unwrap_or_else(|| format!("sqlite:{}", dir.join("bench.db").display()));
    let db = Db::open(&url).await?;
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-15T09:00:00Z")?.with_timezone(&chrono::Utc);

    // The first users one transaction each (as a claim writes them), the rest 500 users per
    // transaction (`Db::lifecycle_observe_many`, a bulk load).
    let single = users.min(1000);
    let observation = |i: u64| -> Result<LifecycleWrites, Box<dyn std::error::Error>> {
        let mut batch = LifecycleWrites::default();
        batch.now_ms = start.timestamp_millis();
        for k in 0..3 {
            let c: moneyhub::Connection = serde_json::from_value(connection(i, k, start))?;
            let mut types = std::collections::BTreeMap::new();
            types.insert(account(i, k), "cash:current".to_owned());
            batch.items.push((
                c.id.as_str().to_owned(),
                Observation::Seen { connection: Box::new(c), account_types: types, moved_from: None },
            ));
        }
        Ok(batch)
    };
    let t = Instant::now();
    for i in 0..single {
        db.lifecycle_observe(&format!("{i:024x}"), observation(i)?).await?;
    }
    let single_took = t.elapsed();
    let t = Instant::now();
    let mut i = single;
    while i < users {
        let end = (i + 500).min(users);
        let mut many = Vec::with_capacity(500);
        for u in i..end {
            many.push((format!("{u:024x}"), observation(u)?));
        }
        db.lifecycle_observe_many(many).await?;
        i = end;
    }
    let bulk_took = t.elapsed();
    let rss_after_observe = peak_rss_kib();

    // A virtual day later: every row due by then, re-evaluated 500 per transaction.
    let later = start + chrono::Duration::days(1);
    let due = db.lifecycle_counts(later.timestamp_millis()).await?.due_now;
    let t = Instant::now();
    let mut evaluated = 0usize;
    loop {
        let mut batch = LifecycleWrites::default();
        batch.now_ms = later.timestamp_millis();
        let n = db.lifecycle_due(batch, 500).await?.len();
        evaluated += n;
        if n < 500 {
            break;
        }
    }
    let took = t.elapsed();
    let counts = db.lifecycle_counts(later.timestamp_millis()).await?;
    println!(
        "{} connections observed: {} one user per transaction in {:.1} s ({:.0}/s), {} 500 users per transaction in {:.1} s ({:.0}/s); \
         a day later {due} due, {evaluated} re-evaluated in {:.1} s ({:.0}/s); \
         by action {:?}; peak RSS {} MiB (after observing: {} MiB); backend {}",
        users * 3,
        single * 3,
        single_took.as_secs_f64(),
        (single * 3) as f64 / single_took.as_secs_f64().max(1e-9),
        (users - single) * 3,
        bulk_took.as_secs_f64(),
        ((users - single) * 3) as f64 / bulk_took.as_secs_f64().max(1e-9),
        took.as_secs_f64(),
        evaluated as f64 / took.as_secs_f64().max(1e-9),
        counts.by_action,
        peak_rss_kib() / 1024,
        rss_after_observe / 1024,
        db.backend()
    );
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
