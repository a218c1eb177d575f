//! Benchmark of `moneyhub doctor --all-users`: 10,000 users with 3 connections each on an
//! in-process sandbox (loopback only), the real `moneyhub` binary run against it, and the
//! sandbox's request log read back to count what it sent.
//!
//! ```sh
//! cargo build --release -p moneyhub-cli --bin moneyhub --example doctor_bench
//! ./target/release/examples/doctor_bench [USERS] [CONCURRENCY]    # defaults: 10000 32
//! ```
//!
//! (`bench/doctor-all-users.sh` does both.) Reports the wall time of the `doctor` run and the
//! requests it made, and fails (exit 1) when it takes 30 s or more, or when it makes more than
//! one token request per user plus one list request per user.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{TimeZone, Utc};
use moneyhub_sandbox::kit::Control;
use moneyhub_sandbox::{ClockMode, SandboxConfig};
use serde_json::Value;

const BANKS: [&str; 3] = [
    "1ffe704d39629a929c8e293880fb449a",
    "b74f1a79f0be8bdb857d82d0f041d7d2",
    "3c4637d3178c9a28ce655bfbf8e27a10",
];

fn binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MONEYHUB_BIN") {
        return Ok(PathBuf::from(p));
    }
    // target/<profile>/examples/doctor_bench → target/<profile>/moneyhub
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().and_then(|p| p.parent()).ok_or("no target directory")?;
    let bin = dir.join("moneyhub");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p moneyhub-cli --bin moneyhub) or set MONEYHUB_BIN",
            bin.display()
        ))
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("doctor_bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().map_or(Ok(10_000), |a| a.parse()).map_err(|e| format!("USERS: {e}"))?;
    let concurrency: usize =
        args.next().map_or(Ok(32), |a| a.parse()).map_err(|e| format!("CONCURRENCY: {e}"))?;
    let bin = binary()?;
    let epoch = Utc.with_ymd_and_hms(2025, 1, 15, 9, 0, 0).single().ok_or("epoch")?;
    let sandbox = moneyhub_sandbox::spawn(SandboxConfig {
        clock: ClockMode::Frozen(epoch),
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let control = Control::of(&sandbox);
    let fail = |e: moneyhub_sandbox::kit::ControlError| e.to_string();

    let setup = Instant::now();
    let mut left = users;
    while left > 0 {
        let batch = left.min(1000);
        control.create_users(batch, &BANKS).await.map_err(fail)?;
        left -= batch;
    }
    let stats = control.stats().await.map_err(fail)?;
    println!(
        "set-up: {} users, {} connections, {} transactions in {:.1} s (POST /__sandbox/users, batches of 1000)",
        stats.users, stats.connections, stats.transactions, setup.elapsed().as_secs_f64()
    );

    control.clear_requests().await.map_err(fail)?;
    let after = control.requests(0, 1).await.map_err(fail)?.last_seq;

    let started = Instant::now();
    let mut cmd = Command::new(&bin);
    cmd.args(["doctor", "--all-users", "--output", "json", "--concurrency", &concurrency.to_string()])
        .env("MONEYHUB_IDENTITY_URL", sandbox.identity_url())
        .env("MONEYHUB_API_URL", sandbox.api_url_v3())
        .env("MONEYHUB_CLIENT_ID", sandbox.client_id())
        .env("MONEYHUB_CLIENT_SECRET", sandbox.client_secret().unwrap_or_default())
        .env("MONEYHUB_CONFIG", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| format!("{}: {e}", bin.display()))?;
    // The doctor's peak resident memory, read from /proc while it runs (VmHWM only grows):
    // streaming the output keeps it flat in the number of users.
    let status_file = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let peak = peak.clone();
        tokio::spawn(async move {
            // A /proc read does not block: no need for a blocking thread.
            while let Ok(text) = std::fs::read_to_string(&status_file) {
                let kb = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                if let Some(kb) = kb {
                    peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    watcher.abort();
    let peak_mb = peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
    if !out.status.success() {
        return Err(format!("moneyhub failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let rows: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("output is not JSON: {e}"))?;
    let rows = rows.as_array().map_or(0, Vec::len);

    let entries = control.requests(after, 1_000_000).await.map_err(fail)?.data;
    let path = |e: &moneyhub_sandbox::kit::LogEntry| e.path.clone();
    let is_list = |p: &str| p.starts_with("/users/") && p.ends_with("/connections");
    let tokens = entries.iter().filter(|e| path(e) == "/oidc/token").count();
    let lists = entries.iter().filter(|e| is_list(&path(e))).count();
    let user_pages = entries.iter().filter(|e| path(e) == "/users").count();
    let other = entries.len() - tokens - lists - user_pages;
    let errors = entries.iter().filter(|e| e.status == 0 || e.status >= 400).count();

    println!(
        "doctor --all-users --concurrency {concurrency}: {rows} connections of {users} users in {:.2} s, peak memory {peak_mb:.0} MB",
        wall.as_secs_f64()
    );
    println!(
        "requests: {} in all: {tokens} token, {lists} connection lists, {user_pages} user pages, {other} other (discovery, sandbox probe); {errors} errors",
        entries.len()
    );
    println!("budget: at most {users} token + {users} list requests (one of each per user)");
    let mut failed = Vec::new();
    if wall.as_secs_f64() >= 30.0 {
        failed.push(format!("took {:.1} s (target < 30 s)", wall.as_secs_f64()));
    }
    if tokens > users || lists > users {
        failed.push(format!("over budget: {tokens} token and {lists} list requests for {users} users"));
    }
    if rows != users * BANKS.len() || errors > 0 {
        failed.push(format!(
            "expected {} rows and no errors, got {rows} rows and {errors} errors",
            users * BANKS.len()
        ));
    }
    sandbox.shutdown().await;
    if failed.is_empty() {
        println!("ok");
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}
