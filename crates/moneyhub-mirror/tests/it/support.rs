//! Shared helpers: sandboxes, clients that follow the sandbox clock, test databases (an
//! SQLite file, or a fresh PostgreSQL schema), the control API, raw sandbox data. What every
//! crate's tests share lives once in `moneyhub_sandbox::kit::testing` (feature `test-kit`) and
//! is re-exported here.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use moneyhub::{Client, RetryPolicy};
use moneyhub_mirror::{Db, Mirror, MirrorConfig};
use moneyhub_sandbox::kit::testing;
use moneyhub_sandbox::kit::{Advance, Chaos, Control, NewConnection};
use moneyhub_sandbox::{Sandbox, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

// `control` (untyped calls) is for tests to come: no test here uses it today.
#[allow(unused_imports)]
pub use moneyhub_sandbox::kit::testing::{bank, control, control_ok, http, skip, t0, token};

/// Société Générale: one current account, 12 months of history, API-like (5 syncs a day).
pub const SOCGEN: &str = "Société Générale";
/// HSBC UK: current and savings.
pub const HSBC: &str = "HSBC UK";
/// Monzo: current and savings.
pub const MONZO: &str = "Monzo";
/// A provider the sandbox can withdraw.
pub const NORTHWIND: &str = "Northwind Building Society";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MIRROR_TEST_LOG").unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A sandbox running on its own thread and runtime (so its webhook deliveries and API
/// answers do not queue behind the mirror's work on the test's runtime). It stops when the
/// handle is dropped.
pub struct SandboxHandle {
    pub sb: Arc<Sandbox>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::ops::Deref for SandboxHandle {
    type Target = Arc<Sandbox>;
    fn deref(&self) -> &Arc<Sandbox> {
        &self.sb
    }
}

pub async fn sandbox_with(config: SandboxConfig) -> SandboxHandle {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sandbox-rt")
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sb = Arc::new(testing::sandbox_with(config).await);
            let _ = tx.send(sb);
            let _ = stopped.await;
        });
    });
    SandboxHandle { sb: rx.await.unwrap(), _stop: stop }
}

/// A frozen sandbox at `t0` with the given pending-replacement ratio.
pub async fn sandbox(replace_ratio: f64) -> SandboxHandle {
    sandbox_with(SandboxConfig { pending_replace_ratio: replace_ratio, ..testing::frozen() }).await
}

/// The sandbox's default client, its clock following the sandbox's virtual clock.
pub fn client(sb: &Arc<Sandbox>) -> Client {
    let clock = sb.clone();
    Client::builder()
        .sandbox(sb.base_url())
        .retry_policy(
            RetryPolicy::default()
                .max_retries(3)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(50))
                .max_retry_after(Duration::from_secs(5)),
        )
        .clock(move || clock.now())
        .build()
        .expect("client builds")
}

/// `count` users, each connected to `banks`: `[(userId, [connectionId])]`.
pub async fn users(sb: &Sandbox, count: usize, banks: &[String]) -> Vec<(String, Vec<String>)> {
    let banks: Vec<&str> = banks.iter().map(String::as_str).collect();
    let created = Control::of(sb).create_users(count, &banks).await.expect("users created");
    created.into_iter().map(|u| (u.user_id, u.connection_ids)).collect()
}

/// One more connection for a user.
pub async fn connect(sb: &Sandbox, user_id: &str, bank_id: &str) -> String {
    let new =
        NewConnection { user_id: user_id.to_owned(), bank_id: bank_id.to_owned(), ..Default::default() };
    Control::of(sb).create_connection(&new).await.expect("connection created").connection_id
}

pub async fn advance_days(sb: &Sandbox, days: i64) {
    Control::of(sb).advance(Advance::days(days)).await.expect("clock advanced");
}

pub async fn flush(sb: &Sandbox) -> Value {
    serde_json::to_value(Control::of(sb).flush().await.expect("flushed")).expect("report")
}

pub async fn set_webhooks(sb: &Sandbox, url: &str, format: &str) {
    Control::of(sb).set_webhook_target(Some(url), Some(format)).await.expect("webhook target set");
}

pub async fn set_chaos(sb: &Sandbox, drop: f64, duplicate: f64, reorder: f64) {
    Control::of(sb).set_chaos(Chaos { drop, duplicate, reorder }).await.expect("chaos set");
}

/// Every transaction the sandbox serves for a user now, as raw JSON, by id.
pub async fn sandbox_transactions(sb: &Sandbox, user_id: &str) -> BTreeMap<String, Value> {
    let tok = token(sb, "transactions:read:all", Some(user_id)).await;
    let mut out = BTreeMap::new();
    let mut offset = 0;
    loop {
        let res = http()
            .get(format!("{}/transactions?limit=1000&offset={offset}", sb.api_url_v3()))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let data = body["data"].as_array().unwrap();
        for t in data {
            out.insert(t["id"].as_str().unwrap().to_owned(), t.clone());
        }
        if data.len() < 1000 {
            return out;
        }
        offset += 1000;
    }
}

/// The mirror's live transactions of a user, as JSON, by id.
pub async fn mirror_transactions(db: &Db, user_id: &str) -> BTreeMap<String, Value> {
    db.live_transactions(user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id.clone(), serde_json::from_str(&t.raw).unwrap()))
        .collect()
}

/// Compares the mirror with the sandbox for each user; returns a description of the first
/// differences (empty when equal), and the number of transactions compared.
pub async fn compare(sb: &Sandbox, db: &Db, users: &[String]) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut n = 0;
    for u in users {
        let want = sandbox_transactions(sb, u).await;
        let got = mirror_transactions(db, u).await;
        n += want.len();
        for (id, w) in &want {
            match got.get(id) {
                None => problems.push(format!("user {u}: {id} missing from the mirror ({})", w["status"])),
                Some(g) if g != w => {
                    problems.push(format!("user {u}: {id} differs:\n  sandbox {w}\n  mirror  {g}"))
                }
                _ => {}
            }
        }
        for id in got.keys() {
            if !want.contains_key(id) {
                problems.push(format!("user {u}: {id} is live in the mirror but not at the sandbox"));
            }
        }
    }
    (problems, n)
}

/// A database for one test: an SQLite file in a fresh directory, or a fresh PostgreSQL
/// schema. `cleanup` removes it.
pub enum TestDb {
    Sqlite { dir: PathBuf, url: String },
    Postgres { base: String, schema: String, url: String },
}

impl TestDb {
    /// The schema version a database is migrated to (both backends: 8, the transactions
    /// keyed by user).
    pub const LATEST_SCHEMA: i64 = 8;

    pub fn sqlite(name: &str) -> TestDb {
        let dir = std::env::temp_dir().join(format!(
            "mirror-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("mirror.db").display());
        TestDb::Sqlite { dir, url }
    }

    /// A fresh schema, or `None` (with the reason printed) when MONEYHUB_TEST_PG_URL is unset.
    pub fn postgres(test: &str) -> Option<TestDb> {
        let Ok(base) = std::env::var("MONEYHUB_TEST_PG_URL") else {
            skip(
                "pg",
                test,
                "MONEYHUB_TEST_PG_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)",
            );
            return None;
        };
        let schema = format!("mirror_test_{}_{:08x}", std::process::id(), rand::random::<u32>());
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}schema={schema}");
        Some(TestDb::Postgres { base, schema, url })
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    pub async fn cleanup(self) {
        match self {
            TestDb::Sqlite { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDb::Postgres { base, schema, .. } => {
                moneyhub_mirror::testing::drop_schema(&base, &schema).await.expect("schema dropped");
            }
        }
    }
}

/// A mirror over a test database, its receiver served on a free loopback port.
pub struct Running {
    pub mirror: Mirror,
    pub url: String,
    server: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    pub async fn start(client: Client, db_url: &str, config: MirrorConfig) -> Running {
        let mirror = Mirror::open(client, db_url, config).await.expect("mirror opens");
        Self::serve(mirror).await
    }

    pub async fn serve(mirror: Mirror) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let m = mirror.clone();
        let server = tokio::spawn(async move {
            m.serve(listener, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Running { mirror, url, server, stop: Some(stop) }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.server.await;
        self.mirror.db().close().await;
    }
}

/// Waits until the inbox has nothing pending (the background workers caught up).
pub async fn wait_inbox_empty(db: &Db, limit: Duration) {
    let start = std::time::Instant::now();
    loop {
        let c = db.inbox_counts().await.unwrap();
        if c.pending == 0 {
            return;
        }
        assert!(start.elapsed() < limit, "inbox still has {} pending after {limit:?}", c.pending);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Delivery outcomes since `after` (advanced past what was read): delivered, dropped,
/// duplicates, failed. Clears the sandbox's log afterwards to keep it small.
#[derive(Debug, Default, Clone)]
pub struct DeliveryStats {
    pub delivered: u64,
    pub dropped: u64,
    pub duplicates: u64,
    pub failed: u64,
    /// Time the receiver took to answer, summed and worst (ms, as the sandbox measured).
    pub total_ms: u64,
    pub max_ms: u64,
    /// The first few failed deliveries as the sandbox logged them (status, error, time):
    /// what a failed assertion shows.
    pub failures: Vec<serde_json::Value>,
}

pub async fn delivery_stats(sb: &Sandbox, stats: &mut DeliveryStats) {
    let v = control_ok(sb, Method::GET, "/webhooks/deliveries?limit=1000000", None).await;
    for d in v["data"].as_array().unwrap() {
        let ms = d["durationMs"].as_u64().unwrap_or(0);
        stats.total_ms += ms;
        stats.max_ms = stats.max_ms.max(ms);
        match d["outcome"].as_str().unwrap() {
            "delivered" => stats.delivered += 1,
            "dropped" => stats.dropped += 1,
            "duplicate" => stats.duplicates += 1,
            _ => {
                stats.failed += 1;
                if stats.failures.len() < 5 {
                    stats.failures.push(json!({
                        "status": d["status"], "error": d["error"], "durationMs": d["durationMs"],
                        "duplicate": d["duplicate"], "eventType": d["eventType"],
                    }));
                }
            }
        }
    }
    control_ok(sb, Method::DELETE, "/webhooks/deliveries", None).await;
}

/// CPU time used by this process so far (Linux; zero elsewhere).
pub fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return Duration::ZERO };
    let Some(rest) = stat.rsplit(')').next() else { return Duration::ZERO };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks, 100 Hz).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

pub async fn advance_hours(sb: &Sandbox, hours: i64) {
    testing::advance(sb, json!({"hours": hours})).await;
}

/// Typed user ids.
pub fn user_ids(ids: &[String]) -> Vec<moneyhub::UserId> {
    ids.iter().map(|u| u.parse().expect("user id")).collect()
}

/// A well-formed user id the sandbox does not know.
pub const UNKNOWN_USER: &str = "5c79210bbac25ecb5e71ac40";
