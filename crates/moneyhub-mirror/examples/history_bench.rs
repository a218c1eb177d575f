//! `/readyz` and `/metrics` over a long history: a PostgreSQL mirror filled with millions of
//! applied inbox events and ledger rows (half each), plus a small pending queue, then both
//! endpoints asked over HTTP.
//!
//! ```text
//! cargo run --release -p moneyhub-mirror --example history_bench -- [--rows 10000000] \
//!     [--pg postgres://postgres@127.0.0.1:5432/test]      # or MONEYHUB_TEST_PG_URL
//! ```
//!
//! The rows are made by `generate_series` in the server (a few minutes for 10 million), in a
//! schema of their own that is dropped at the end. Readiness reads the catalogue and settings;
//! the metrics read the queue through the partial indexes over pending and parked events:
//! neither reads history, so both stay flat as it grows.

use std::time::{Duration, Instant};

use moneyhub::Client;
use moneyhub_mirror::{Db, Mirror, MirrorConfig};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("history_bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let rows: i64 = arg("--rows").map(|r| r.parse()).transpose()?.unwrap_or(10_000_000);
    let base = arg("--pg")
        .or_else(|| std::env::var("MONEYHUB_TEST_PG_URL").ok())
        .ok_or("give --pg URL or set MONEYHUB_TEST_PG_URL")?;
    let schema = format!("history_bench_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let db = Db::open(&format!("{base}{sep}schema={schema}")).await?;

    let (pg, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    pg.batch_execute(&format!("SET search_path TO {schema}")).await?;
    let half = rows / 2;
    let started = Instant::now();
    pg.execute(
        "INSERT INTO mirror_inbox (webhook_id, user_id, event_type, body, content_type, signed,
                                   received_ms, state, applied_ms)
         SELECT 'w' || g, 'u' || (g % 100000), 'newTransactions', '\\x'::BYTEA, 'application/json', 0,
                g, 1, g
         FROM generate_series(1, $1::BIGINT) AS g",
        &[&half],
    )
    .await?;
    pg.execute(
        "INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms)
         SELECT 'w' || g, g, 'bench', g FROM generate_series(1, $1::BIGINT) AS g",
        &[&half],
    )
    .await?;
    // A small live queue: 1,000 pending events of 100 users, 10 parked.
    pg.batch_execute(
        "INSERT INTO mirror_inbox (webhook_id, user_id, event_type, body, content_type, signed,
                                   received_ms, state, attempts)
         SELECT 'p' || g, 'q' || (g % 100), 'newTransactions', '\\x'::BYTEA, 'application/json', 0,
                g, CASE WHEN g <= 10 THEN 2 ELSE 0 END, 0
         FROM generate_series(1, 1000) AS g;
         ANALYZE",
    )
    .await?;
    db.repair_due().await?;
    println!("filled {rows} inbox+ledger rows in {:.1} s", started.elapsed().as_secs_f64());

    let client = Client::builder().sandbox("http://127.0.0.1:9").build()?;
    let mirror = Mirror::new(client, db.clone(), MirrorConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = mirror
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    let http = reqwest::Client::new();
    for path in ["/readyz", "/metrics"] {
        let url = format!("http://{addr}{path}");
        let mut times = Vec::new();
        for i in 0..60 {
            let t = Instant::now();
            let res = http.get(&url).send().await?;
            let status = res.status();
            let body = res.text().await?;
            if i == 0 && (!status.is_success() || (path == "/metrics" && !body.contains("inbox_events"))) {
                return Err(format!("{path}: {status} {body}").into());
            }
            times.push(t.elapsed());
        }
        // The first ten warm the connection and the server's caches.
        let mut measured: Vec<Duration> = times.split_off(10);
        measured.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{path} at {rows} rows: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests)",
            ms(measured[measured.len() / 2]),
            ms(measured[measured.len() * 99 / 100]),
            ms(measured[measured.len() - 1]),
            measured.len()
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    db.close().await;
    moneyhub_mirror::testing::drop_schema(&base, &schema).await?;
    Ok(())
}
