//! Benchmark half of `bench/by-ids.sh`: fetches a list of transaction ids for one user with
//! `Transactions::by_ids` (batches of 50, concurrent) against a running sandbox, and prints
//! one JSON line with the wall time and this process's peak resident memory.
//!
//! `MH_BASE=http://127.0.0.1:PORT MH_USER=<userId> MH_IDS=<file, one id a line> \
//!  cargo run --release -p moneyhub --example by_ids_bench`

use std::time::Instant;

use moneyhub::Client;
use moneyhub_types::UserId;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // MH_RUNTIME=multi uses tokio's multi-thread runtime; the default, current-thread, avoids
    // a cross-thread wake-up per request for a single batch job like this one.
    let runtime = match std::env::var("MH_RUNTIME").as_deref() {
        Ok("multi") => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
    };
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("MH_BASE")?;
    let user: UserId = std::env::var("MH_USER")?.parse()?;
    // The ids borrow from the file's text: `by_ids` takes anything that is `AsRef<str>`.
    let text = std::fs::read_to_string(std::env::var("MH_IDS")?)?;
    let ids: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let concurrency: usize = std::env::var("MH_CONCURRENCY").ok().and_then(|c| c.parse().ok()).unwrap_or(4);
    let client = Client::builder().sandbox(&base).build()?;
    let started = Instant::now();
    let found = client.transactions().concurrency(concurrency).by_ids(&user, &ids).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{{\"client\":\"moneyhub-rs\",\"runtime\":\"{}\",\"concurrency\":{concurrency},\"ids\":{},\"found\":{},\"missing\":{},\"ms\":{ms:.1},\"peakRssKiB\":{}}}",
        std::env::var("MH_RUNTIME").unwrap_or_else(|_| "current_thread".into()),
        ids.len(),
        found.transactions.len(),
        found.missing.len(),
        peak_rss_kib()
    );
    Ok(())
}
