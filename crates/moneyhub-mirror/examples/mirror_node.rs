//! A mirror process: receiver and workers until stopped. The crash test runs it as a child
//! and kills it with SIGKILL at random points; the fleet test runs three of them on one
//! PostgreSQL schema and stops them with SIGTERM and SIGINT.
//!
//! ```text
//! cargo run -p moneyhub-mirror --example mirror_node -- \
//!     --db sqlite:/tmp/mirror.db --listen 127.0.0.1:8090 \
//!     --identity http://127.0.0.1:8700 --api http://127.0.0.1:8700/v3 \
//!     --client-id sandbox-client --client-secret sandbox-secret [--workers 2] [--allow-unsigned-json] \
//!     [--coalesce-ms MS] [--retry-backoff-ms MS] [--max-attempts N] [--http-retries N]
//! ```
//!
//! * `--workers N`: worker tasks (default 2).
//! * `--coalesce-ms MS`: `MirrorConfig::coalesce_window` (default 3 s).
//! * `--retry-backoff-ms MS`: `MirrorConfig::retry_backoff`, the first delay after a failed
//!   attempt, doubled per attempt (default 1 s).
//! * `--max-attempts N`: `MirrorConfig::max_attempts`, attempts before events are parked
//!   (default 8).
//! * `--http-retries N`: the client's retries of a retryable failure per request (default 3);
//!   0 makes each attempt send each request once.
//!
//! `--listen` may name port 0. Prints `listening on ADDR` (the bound address) once the
//! receiver is up; SIGINT or SIGTERM stops it gracefully (exit status 0), an error exits 1.

use std::time::Duration;

use moneyhub::{Client, ClientAuth, RetryPolicy};
use moneyhub_mirror::{Mirror, MirrorConfig};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("mirror_node: {e}");
        std::process::exit(1);
    }
}

/// Resolves on the first SIGINT or (on Unix) SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("mirror_node: no SIGTERM handler ({e}); stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let need = |name: &str| arg(&args, name).ok_or_else(|| format!("{name} is required"));
    let db = need("--db")?;
    let listen = need("--listen")?;
    let workers: usize = arg(&args, "--workers").map(|w| w.parse()).transpose()?.unwrap_or(2);
    let secret = need("--client-secret")?;
    let mut retries = RetryPolicy::default();
    if let Some(n) = arg(&args, "--http-retries") {
        retries = retries.max_retries(n.parse()?);
    }
    let client = Client::builder()
        .identity_url(need("--identity")?)
        .api_url(need("--api")?)
        .client_id(need("--client-id")?)
        .client_auth(ClientAuth::secret(secret))
        .retry_policy(retries)
        .build()?;
    let mut config =
        MirrorConfig::default().allow_unsigned_json(args.iter().any(|a| a == "--allow-unsigned-json"));
    if let Some(ms) = arg(&args, "--coalesce-ms") {
        config = config.coalesce_window(Duration::from_millis(ms.parse()?));
    }
    if let Some(ms) = arg(&args, "--retry-backoff-ms") {
        config = config.retry_backoff(Duration::from_millis(ms.parse()?));
    }
    if let Some(n) = arg(&args, "--max-attempts") {
        config = config.max_attempts(n.parse()?);
    }
    let mirror = Mirror::open(client, &db, config).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    mirror.run(listener, workers, stop_signal()).await?;
    Ok(())
}
