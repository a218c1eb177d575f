//! Ingestion throughput from an in-process sandbox into SQLite and PostgreSQL, next to the
//! raw upsert rate of the same database (the ceiling).
//!
//! ```text
//! cargo run --release -p moneyhub-mirror --example ingest_bench -- [--users 40] [--workers 4] \
//!     [--pg postgres://postgres@127.0.0.1:5432/test]      # or MONEYHUB_TEST_PG_URL
//! ```
//!
//! For each database it measures, on a sandbox whose users each have ~3 years of history on
//! three accounts (Moneyhub's Open Banking mock):
//!
//! * **webhooks**: `newTransactions` webhooks naming every transaction (one per account, up to
//!   6000 ids each) are posted to the receiver; workers fetch them by id (batches of 50,
//!   several in flight) and upsert them. Transactions applied per second, from the first
//!   worker start to an empty inbox.
//! * **backfill**: every connection listed page by page (1000 per page) and upserted.
//! * **ceiling**: the same rows upserted straight into an emptied table with the mirror's own
//!   upsert statement, 5000 per transaction (no HTTP, no JSON); on PostgreSQL by as many
//!   connections at once as there are workers. The best of three runs.
//! * **claims** (`--claim-events N`, N webhooks per user): time per webhook when every claim
//!   takes one event (`claim_limit(1)`), with 2 and then 6 workers, on the backfilled users.
//!   The events are `newTransactions` naming no transaction, so no API request is made: what
//!   is measured is the claim, the session's reads and the finishing write. Flat from 2 to
//!   6 workers means a claim does not grow with the number of workers or pending rows.

use std::time::{Duration, Instant};

use moneyhub::Client;
use moneyhub_mirror::db::TxRow;
use moneyhub_mirror::{Db, Mirror, MirrorConfig, Scope};
use moneyhub_sandbox::kit::{Advance, Control};
use moneyhub_sandbox::{ClockMode, SandboxConfig};
use serde_json::json;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("ingest_bench: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

async fn run() -> Res<()> {
    let users: usize = arg("--users").map(|u| u.parse()).transpose()?.unwrap_or(40);
    let workers: usize = arg("--workers").map(|u| u.parse()).transpose()?.unwrap_or(4);
    let skip_webhooks = std::env::args().any(|a| a == "--skip-webhooks");
    let probe_rows: u64 = arg("--probe-rows").map(|u| u.parse()).transpose()?.unwrap_or(0);
    let scenario_users: usize = arg("--scenario-users").map(|u| u.parse()).transpose()?.unwrap_or(0);
    let claim_events: usize = arg("--claim-events").map(|u| u.parse()).transpose()?.unwrap_or(0);
    let phases = Phases { workers, skip_webhooks, claim_events };
    let pg = arg("--pg").or_else(|| std::env::var("MONEYHUB_TEST_PG_URL").ok());
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z")?.with_timezone(&chrono::Utc);
    let sandbox =
        moneyhub_sandbox::spawn(SandboxConfig { clock: ClockMode::Frozen(start), ..Default::default() })
            .await?;
    let control = Control::of(&sandbox);
    let created = control.create_users(users, &["1ffe704d39629a929c8e293880fb449a"]).await?;
    // The background history fetch (3 years) runs once the clock moves.
    control.advance(Advance::hours(1)).await?;
    // The sandbox generates a fetch's transactions at the first read of them (its store/fetch.rs):
    // read each user's connection once here (the control view counts its transactions), so
    // that the backfills below time the mirror, not the sandbox's generator.
    for user in &created {
        for c in &user.connection_ids {
            control.connection(c).await?;
        }
    }
    let ids: Vec<String> = created.into_iter().map(|u| u.user_id).collect();
    let stats = control.stats().await?;
    println!(
        "sandbox: {} users, {} transactions; {} workers; {} cores",
        ids.len(),
        stats.transactions,
        workers,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    // One user token for both Data API reads the mirror makes of a new user (the accounts
    // list for the lifecycle loop's account types, the transaction pages): both families ask
    // for the same scopes, so the client's token cache keys them alike. A client registered
    // for both scopes can do the same; with the defaults each family fetches its own token.
    let mut scopes = moneyhub::Scopes::default();
    scopes.accounts = "accounts:read transactions:read:all".into();
    scopes.transactions = scopes.accounts.clone();
    let client = || -> Res<Client> {
        Ok(Client::builder()
            .sandbox(sandbox.base_url())
            .batch_concurrency(8)
            .scopes(scopes.clone())
            .build()?)
    };

    let dir = std::env::temp_dir().join(format!("mirror-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = |name: &str| format!("sqlite:{}", dir.join(format!("{name}.db")).display());
    bench(
        "SQLite",
        [sqlite("backfill"), sqlite("webhooks"), sqlite("ceiling")],
        &ids,
        &client,
        &control,
        phases,
    )
    .await?;
    if probe_rows > 0 {
        probe("SQLite", &sqlite("probe"), probe_rows, &client).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);

    match pg {
        None => println!("PostgreSQL: skipped (no --pg URL and MONEYHUB_TEST_PG_URL is unset)"),
        Some(url) => {
            let schemas: Vec<String> = ["backfill", "webhooks", "ceiling", "probe"]
                .iter()
                .map(|n| format!("mirror_bench_{n}_{}", std::process::id()))
                .collect();
            let sep = if url.contains('?') { '&' } else { '?' };
            let urls = [0, 1, 2].map(|i| format!("{url}{sep}schema={}", schemas[i]));
            let mut r = bench("PostgreSQL", urls, &ids, &client, &control, phases).await;
            if r.is_ok() && probe_rows > 0 {
                r = probe("PostgreSQL", &format!("{url}{sep}schema={}", schemas[3]), probe_rows, &client)
                    .await;
            }
            for s in &schemas {
                moneyhub_mirror::testing::drop_schema(&url, s).await?;
            }
            r?;
        }
    }
    if scenario_users > 0 {
        scenario_load(scenario_users).await?;
    }
    Ok(())
}

/// What a backend's run does besides the backfill and the ceiling.
#[derive(Clone, Copy)]
struct Phases {
    /// Concurrent backfills and workers.
    workers: usize,
    /// Leave out the webhooks run.
    skip_webhooks: bool,
    /// Webhooks per user of the claims run (0: no claims run).
    claim_events: usize,
}

async fn bench(
    name: &str,
    urls: [String; 3],
    ids: &[String],
    client: &dyn Fn() -> Res<Client>,
    control: &Control,
    phases: Phases,
) -> Res<()> {
    let Phases { workers, skip_webhooks, claim_events } = phases;
    // Backfill: list every connection.
    let backfill = Mirror::open(client()?, &urls[0], MirrorConfig::default()).await?;
    let log_start = control.requests(0, 1).await?.last_seq;
    let t = Instant::now();
    let r = backfill
        .backfill(&Scope::users(ids.iter().map(|u| u.parse().expect("user id"))).concurrency(workers))
        .await?;
    let backfill_elapsed = t.elapsed();
    let backfill_rate = r.totals.listed as f64 / backfill_elapsed.as_secs_f64();
    if !r.errors.is_empty() {
        return Err(format!("backfill errors: {:?}", r.errors).into());
    }
    let requests = RequestCounts::since(control, log_start).await?;
    // The rows, for the ceiling and the webhooks.
    let mut rows: Vec<TxRow> = Vec::new();
    for u in ids {
        for s in backfill.db().live_transactions(u).await? {
            rows.push(TxRow {
                id: s.id.parse()?,
                user_id: s.user_id.parse()?,
                account_id: s.account_id.map(|a| a.parse()).transpose()?,
                connection_id: s.connection_id.map(|c| c.parse()).transpose()?,
                date_ms: s.date_ms,
                modified_ms: s.modified_ms,
                status: s.status,
                raw: s.raw,
            });
        }
    }

    // The floor per first-seen user: one user token, one connections list, and per
    // connection one request per page of 1,000 (at least one).
    let mut per_connection: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &rows {
        *per_connection
            .entry(r.connection_id.as_ref().map(|c| c.to_string()).unwrap_or_default())
            .or_default() += 1;
    }
    let floor_pages: u64 = per_connection.values().map(|n| n.div_ceil(1000).max(1)).sum();
    let per_user = |n: u64| n as f64 / ids.len() as f64;
    println!(
        "{name:<10} backfill: {} users, {} transactions in {backfill_elapsed:.2?}; API requests per user {:.2} \
         (tokens {:.2}, connections lists {:.2}, transaction pages {:.2}, other {:.2}); \
         floor {:.2} (1 user token + 1 connections list + ceil(n/1000) pages per connection; \
         shared by all users: 1 client token), plus 1 accounts list for the lifecycle loop's \
         account types; sandbox busy answering {:.0}% of the time",
        ids.len(),
        r.totals.listed,
        per_user(requests.total()),
        per_user(requests.token),
        per_user(requests.connections),
        per_user(requests.pages),
        per_user(requests.other),
        per_user(2 * ids.len() as u64 + floor_pages),
        100.0 * requests.busy_us as f64 / backfill_elapsed.as_micros() as f64,
    );

    let (webhook_rate, applied, elapsed) = if skip_webhooks {
        (f64::NAN, 0, Duration::ZERO)
    } else {
        webhooks(&urls[1], ids, workers, client, &rows).await?
    };

    // Ceiling: the same rows, straight into the database, the best of three runs (each into
    // an emptied table, like the webhooks run). On PostgreSQL with as many connections writing
    // at once as the mirror has workers (users split between them); SQLite has one writer.
    let ceiling_db = Db::open(&urls[2]).await?;
    let mut ceiling: f64 = 0.0;
    for _ in 0..3 {
        clear_transactions(&ceiling_db, &urls[2]).await?;
        let t = Instant::now();
        raw_upserts(&ceiling_db, &rows, workers).await?;
        ceiling = ceiling.max(rows.len() as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "{name:<10} webhooks {webhook_rate:>9.0} tx/s ({applied} applied in {elapsed:.1?}, {:.0}% of ceiling) | \
         backfill {backfill_rate:>9.0} tx/s ({:.0}%) | ceiling (raw upsert) {ceiling:>9.0} rows/s",
        100.0 * webhook_rate / ceiling,
        100.0 * backfill_rate / ceiling,
    );
    backfill.db().close().await;
    ceiling_db.close().await;
    if claim_events > 0 {
        let mut line =
            format!("{name:<10} claims, one webhook each ({} webhooks):", claim_events * ids.len());
        for w in [2, 6] {
            let per = claims(&urls[0], ids, w, client, claim_events).await?;
            line.push_str(&format!(" {w} workers {:.3} ms per webhook ({:.0}/s);", per * 1e3, 1.0 / per));
        }
        println!("{line}");
    }
    Ok(())
}

/// Seconds per webhook for `workers` workers draining `per_user` webhooks of each of the
/// (backfilled) users in `url`, one webhook per claim.
async fn claims(
    url: &str,
    ids: &[String],
    workers: usize,
    client: &dyn Fn() -> Res<Client>,
    per_user: usize,
) -> Res<f64> {
    let config =
        MirrorConfig::default().allow_unsigned_json(true).coalesce_window(Duration::ZERO).claim_limit(1);
    let m = Mirror::open(client()?, url, config).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut events = Vec::with_capacity(per_user * ids.len());
    for _ in 0..per_user {
        for u in ids {
            let id = uuid_v4();
            let body = json!({"id": id, "eventType": "newTransactions", "userId": u,
                "payload": {"accounts": []}});
            events.push(moneyhub_mirror::db::NewInboxEvent {
                webhook_id: id.parse()?,
                user_id: Some(u.parse()?),
                event_type: moneyhub_types::WebhookEventType::NewTransactions,
                body: serde_json::to_vec(&body)?.into(),
                content_type: "application/json".into(),
                signed: false,
                received_ms: now,
            });
        }
    }
    let n = events.len();
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(1000));
        m.db().insert_inbox_batch(std::mem::replace(&mut events, rest)).await?;
    }
    let t = Instant::now();
    let running = m.spawn_workers(workers);
    while m.db().inbox_counts().await?.pending > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = t.elapsed();
    running.stop().await;
    let counts = m.db().inbox_counts().await?;
    if counts.failed > 0 {
        return Err(format!("{} claim-bench events failed", counts.failed).into());
    }
    m.db().close().await;
    Ok(elapsed.as_secs_f64() / n as f64)
}

/// `/readyz` and `/metrics` latency with `rows` inbox rows (half applied, with their ledger
/// rows, half pending): the rows are written straight into the tables, then each endpoint
/// is asked 10 times through the receiver.
async fn probe(name: &str, url: &str, rows: u64, client: &dyn Fn() -> Res<Client>) -> Res<()> {
    let db = Db::open(url).await?;
    let t = Instant::now();
    // Applied events (state 1) with their ledger rows, and a pending tail (state 0).
    let applied = rows / 2;
    match db.file() {
        Some(path) => {
            let c = rusqlite::Connection::open(path)?;
            c.execute_batch(&format!(
                "PRAGMA synchronous=OFF; BEGIN;
                 WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows})
                 INSERT INTO mirror_inbox (webhook_id, user_id, event_type, body, content_type, signed,
                        received_ms, state, applied_ms)
                 SELECT printf('%08x-0000-4000-8000-%012x', x / 65536, x), printf('%024x', x % 100000),
                        'syncCompleted', X'', 'application/json', 0, 1700000000000 + x,
                        CASE WHEN x <= {applied} THEN 1 ELSE 0 END, CASE WHEN x <= {applied} THEN 1700000000000 + x END
                 FROM n;
                 INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms)
                 SELECT webhook_id, seq, 'fill', applied_ms FROM mirror_inbox WHERE state = 1;
                 COMMIT;"
            ))?;
        }
        None => {
            let parsed: moneyhub_mirror::DbUrl = url.parse()?;
            let moneyhub_mirror::DbUrl::Postgres { url, schema } = parsed else {
                return Err("not postgres".into());
            };
            let schema = schema.ok_or("no schema")?;
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            c.batch_execute(&format!(
                "SET search_path TO \"{schema}\"; BEGIN;
                 INSERT INTO mirror_inbox (webhook_id, user_id, event_type, body, content_type, signed,
                        received_ms, state, applied_ms)
                 SELECT format('%s-0000-4000-8000-%s', lpad(to_hex(x / 65536), 8, '0'), lpad(to_hex(x), 12, '0')),
                        lpad(to_hex(x % 100000), 24, '0'), 'syncCompleted', ''::bytea, 'application/json', 0,
                        1700000000000 + x, CASE WHEN x <= {applied} THEN 1 ELSE 0 END,
                        CASE WHEN x <= {applied} THEN 1700000000000 + x END
                 FROM generate_series(1, {rows}) AS g(x);
                 INSERT INTO mirror_applied_events (webhook_id, seq, worker, applied_ms)
                 SELECT webhook_id, seq, 'fill', applied_ms FROM mirror_inbox WHERE state = 1;
                 COMMIT; ANALYZE mirror_inbox; ANALYZE mirror_applied_events;"
            ))
            .await?;
        }
    }
    let filled = t.elapsed();
    let mirror = Mirror::new(client()?, db.clone(), MirrorConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let m = mirror.clone();
        tokio::spawn(async move {
            let _ = m
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    let http = reqwest::Client::new();
    let mut line =
        format!("{name:<10} probes with {rows} inbox rows + {applied} ledger rows (filled in {filled:.1?}):");
    for path in ["/readyz", "/metrics"] {
        let mut times = Vec::new();
        let mut failed = 0;
        for _ in 0..10 {
            let t = Instant::now();
            let res = http.get(format!("{base}{path}")).send().await?;
            if !res.status().is_success() {
                failed += 1;
            }
            let _ = res.bytes().await?;
            times.push(t.elapsed());
        }
        times.sort();
        line.push_str(&format!(
            " {path} median {:.1?} max {:.1?} ({failed} of 10 not 200);",
            times[times.len() / 2],
            times[times.len() - 1]
        ));
    }
    println!("{line}");
    let _ = stop.send(());
    let _ = server.await;
    db.close().await;
    Ok(())
}

/// Times `POST /__sandbox/scenario` with `users` users, one connection each, on a fresh
/// sandbox of its own whose clock is frozen: what is timed is the load (each connection's
/// first sync, its last 91 days), not the background fetch of older history that a moving
/// clock starts for every new connection at once.
async fn scenario_load(users: usize) -> Res<()> {
    let start = chrono::Utc::now();
    let sandbox =
        moneyhub_sandbox::spawn(SandboxConfig { clock: ClockMode::Frozen(start), ..Default::default() })
            .await?;
    let mut text = String::from("{\"users\": [");
    for i in 0..users {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            "{{\"clientUserId\": \"fleet-{i}\", \"connections\": [{{\"bank\": \"Moneyhub Open Banking Mock\"}}]}}"
        ));
    }
    text.push_str("]}");
    let body = json!({"text": text, "name": "fleet.json", "reset": false});
    let http = reqwest::Client::new();
    let t = Instant::now();
    let res = http.post(format!("{}/__sandbox/scenario", sandbox.base_url())).json(&body).send().await?;
    let status = res.status();
    let _ = res.bytes().await?;
    println!(
        "scenario: {users} users loaded in {:.2?} (POST /__sandbox/scenario, {} bytes, status {status})",
        t.elapsed(),
        text.len()
    );
    Ok(())
}

/// The webhooks run: transactions applied per second, how many, in how long.
async fn webhooks(
    url: &str,
    ids: &[String],
    workers: usize,
    client: &dyn Fn() -> Res<Client>,
    rows: &[TxRow],
) -> Res<(f64, usize, Duration)> {
    let urls = [String::new(), url.to_owned()];
    // Webhooks: the connections are known (backfilled), the transactions gone; every id is
    // announced by `newTransactions` and fetched by id.
    let config =
        MirrorConfig::default().allow_unsigned_json(true).coalesce_window(Duration::ZERO).claim_limit(100);
    let hooks = Mirror::open(client()?, &urls[1], config).await?;
    hooks
        .backfill(&Scope::users(ids.iter().map(|u| u.parse().expect("user id"))).concurrency(workers))
        .await?;
    clear_transactions(hooks.db(), &urls[1]).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let m = hooks.clone();
        tokio::spawn(async move {
            let _ = m
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    let http = reqwest::Client::new();
    let mut by_account: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for r in rows {
        by_account
            .entry((r.user_id.to_string(), r.account_id.as_ref().map(|a| a.to_string()).unwrap_or_default()))
            .or_default()
            .push(r.id.to_string());
    }
    for ((user, account), tx) in &by_account {
        for chunk in tx.chunks(6000) {
            let body = json!({"id": uuid_v4(), "eventType": "newTransactions", "userId": user,
                "payload": {"accounts": [{"id": account, "transactions": chunk}]}});
            let res = http.post(&url).json(&body).send().await?;
            if !res.status().is_success() {
                return Err(format!("webhook refused: {}", res.status()).into());
            }
        }
    }
    let t = Instant::now();
    let running = hooks.spawn_workers(workers);
    loop {
        if hooks.db().inbox_counts().await?.pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t.elapsed();
    running.stop().await;
    let applied = hooks.totals().upserts;
    let webhook_rate = applied as f64 / elapsed.as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    hooks.db().close().await;
    Ok((webhook_rate, applied, elapsed))
}

/// API requests the sandbox answered, by kind, and the time it spent answering them.
#[derive(Default)]
struct RequestCounts {
    token: u64,
    connections: u64,
    pages: u64,
    other: u64,
    busy_us: u64,
}

impl RequestCounts {
    /// The requests after `after` up to now (reading the log is logged too: it stops at the
    /// last entry of the first read).
    async fn since(control: &Control, after: u64) -> Res<RequestCounts> {
        let mut c = RequestCounts::default();
        let end = control.requests(0, 1).await?.last_seq;
        let mut at = after;
        while at < end {
            let page = control.requests(at, 10_000).await?;
            if page.data.is_empty() {
                break;
            }
            for e in page.data.iter().filter(|e| e.seq <= end) {
                at = at.max(e.seq);
                if e.path.starts_with("/__sandbox") {
                    continue;
                }
                c.busy_us += e.duration_us;
                if e.path.contains("/oidc/token") {
                    c.token += 1;
                } else if e.path.ends_with("/connections") {
                    c.connections += 1;
                } else if e.path.ends_with("/transactions") {
                    c.pages += 1;
                } else {
                    c.other += 1;
                }
            }
            at = at.max(page.data.last().map_or(end, |e| e.seq));
        }
        Ok(c)
    }

    fn total(&self) -> u64 {
        self.token + self.connections + self.pages + self.other
    }
}

/// Upserts `rows` with the mirror's own statement, 5000 per transaction, no HTTP, no JSON.
async fn raw_upserts(db: &Db, rows: &[TxRow], writers: usize) -> Res<()> {
    match db.file() {
        Some(path) => {
            let path = path.to_path_buf();
            let rows = rows.to_vec();
            tokio::task::spawn_blocking(move || -> Result<(), moneyhub_mirror::Error> {
                let mut c = moneyhub_mirror::testing::open_sqlite(&path)?;
                for chunk in rows.chunks(5000) {
                    moneyhub_mirror::testing::sqlite_upsert(&mut c, chunk)?;
                }
                Ok(())
            })
            .await??;
        }
        None => {
            // Users split between the writers, as the mirror's workers split them.
            let mut parts: Vec<Vec<TxRow>> = vec![Vec::new(); writers.max(1)];
            let mut users: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
            users.dedup();
            for r in rows {
                let i = users.iter().position(|u| *u == r.user_id.as_str()).unwrap_or(0) % parts.len();
                parts[i].push(r.clone());
            }
            let writes = parts.iter().map(|part| async move {
                for chunk in part.chunks(5000) {
                    moneyhub_mirror::testing::postgres_upsert(db, chunk).await?;
                }
                Ok::<(), moneyhub_mirror::Error>(())
            });
            futures_util::future::try_join_all(writes).await?;
        }
    }
    Ok(())
}

async fn clear_transactions(db: &Db, url: &str) -> Res<()> {
    match db.file() {
        Some(path) => {
            let c = rusqlite::Connection::open(path)?;
            c.execute("DELETE FROM mirror_transactions", [])?;
        }
        None => {
            let parsed: moneyhub_mirror::DbUrl = url.parse()?;
            let moneyhub_mirror::DbUrl::Postgres { url, schema } = parsed else {
                return Err("not postgres".into());
            };
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let schema = schema.ok_or("no schema")?;
            c.batch_execute(&format!("DELETE FROM \"{schema}\".mirror_transactions")).await?;
        }
    }
    Ok(())
}

fn uuid_v4() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}
