//! A mirror process: receiver and workers until killed. The crash test runs it as a child
//! and kills it with SIGKILL at random points.
//!
//! ```text
//! cargo run -p moneyhub-mirror --example mirror_node -- \
//!     --db sqlite:/tmp/mirror.db --listen 127.0.0.1:8090 \
//!     --identity http://127.0.0.1:8700 --api http://127.0.0.1:8700/v3 \
//!     --client-id sandbox-client --client-secret sandbox-secret [--workers 2] [--allow-unsigned-json]
//! ```
//!
//! Prints `listening on ADDR` once the receiver is up.

use std::time::Duration;

use moneyhub::{Client, ClientAuth};
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

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let need = |name: &str| arg(&args, name).ok_or_else(|| format!("{name} is required"));
    let db = need("--db")?;
    let listen = need("--listen")?;
    let workers: usize = arg(&args, "--workers").map(|w| w.parse()).transpose()?.unwrap_or(2);
    let secret = need("--client-secret")?;
    let client = Client::builder()
        .identity_url(need("--identity")?)
        .api_url(need("--api")?)
        .client_id(need("--client-id")?)
        .client_auth(ClientAuth::secret(secret))
        .build()?;
    let mut config =
        MirrorConfig::default().allow_unsigned_json(args.iter().any(|a| a == "--allow-unsigned-json"));
    if let Some(ms) = arg(&args, "--coalesce-ms") {
        config = config.coalesce_window(Duration::from_millis(ms.parse()?));
    }
    let mirror = Mirror::open(client, &db, config).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    mirror
        .run(listener, workers, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
