//! The long-running servers (`mirror run`, `sandbox serve`) as an operator and an attacker
//! meet them: slow connections under a lowered open-file limit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::support::{bin, command, free_port, Env, TempDir};

/// Slow connections held open by the test: how many, and the descriptor limit of the server.
const SLOW: usize = 2_000;
const SERVER_NOFILE: u32 = 1_024;

/// A child process killed on drop if still running.
pub(crate) struct Server {
    pub(crate) child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cmd` (the `moneyhub` binary and its arguments) wrapped to run under a soft and hard
/// open-file limit of [`SERVER_NOFILE`], so the server cannot raise it.
fn limited(cmd: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!("ulimit -n {SERVER_NOFILE} && exec \"$0\" \"$@\"")).arg(bin());
    sh.args(cmd.get_args());
    sh.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    sh
}

/// One flood at a time: two would measure the machine, not the server.
static ONE_FLOOD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The test process needs a descriptor per slow connection: raise its own limit, or say why
/// the test cannot run here.
fn room_for_slow_connections(test: &str) -> bool {
    let limit = moneyhub_http::raise_nofile_limit().unwrap_or(0);
    if limit < (SLOW as u64) + 500 {
        let why = format!("this process may open only {limit} files, {} are needed", SLOW + 500);
        crate::support::skip("fds", test, &why);
        return false;
    }
    true
}

/// Slow clients: each opens a connection and sends the start of a request head; half then
/// stay silent, half trickle one more header byte every 500 ms. A connection the server
/// closes is opened again a second later. Dropping the flood ends them.
/// The clients run on a runtime of their own, so that what the test measures is the server,
/// not the test's own scheduling.
struct Flood {
    tasks: Vec<JoinHandle<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Flood {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts [`SLOW`] slow clients against `addr`; returns once every one of them has connected
/// and sent its partial head at least once.
fn flood(addr: SocketAddr) -> Flood {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let tasks = rt.block_on(flood_on(addr));
    Flood { tasks, rt: Some(rt) }
}

async fn flood_on(addr: SocketAddr) -> Vec<JoinHandle<()>> {
    let connected = Arc::new(Semaphore::new(0));
    let tasks = (0..SLOW)
        .map(|i| {
            let connected = connected.clone();
            tokio::spawn(async move {
                let trickle = i % 2 == 1;
                let mut first = true;
                loop {
                    if let Ok(Ok(mut s)) =
                        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await
                    {
                        if s.write_all(b"POST /webhooks HTTP/1.1\r\nHost: x\r\n").await.is_ok() {
                            if first {
                                connected.add_permits(1);
                                first = false;
                            }
                            if trickle {
                                // Pacing of the attack, not synchronisation.
                                loop {
                                    tokio::time::sleep(Duration::from_millis(500)).await;
                                    if s.write_all(b"X-Slow: 1\r\n"[..1].as_ref()).await.is_err() {
                                        break;
                                    }
                                }
                            } else {
                                let mut buf = [0u8; 256];
                                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        })
        .collect();
    let all = u32::try_from(SLOW).unwrap();
    tokio::time::timeout(Duration::from_secs(60), connected.acquire_many(all))
        .await
        .expect("every slow client connected within 60 s")
        .expect("semaphore")
        .forget();
    tasks
}

/// Reads the child's stdout up to a line holding `marker`; returns the lines read.
pub(crate) fn read_until(child: &mut Child, marker: &str) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("stdout");
        assert!(n > 0, "the server ended before starting: {lines:?}");
        let done = line.contains(marker);
        lines.push(line);
        if done {
            break;
        }
    }
    // Keep the pipe open (and drained) for the rest of the child's life.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    lines
}

#[test]
fn mirror_run_answers_webhooks_while_2000_slow_connections_are_open_under_1024_descriptors() {
    let _one = ONE_FLOOD.lock().unwrap_or_else(|p| p.into_inner());
    if !room_for_slow_connections("mirror_run_answers_webhooks_while_2000_slow_connections_are_open") {
        return;
    }
    let env = Env::new();
    let dir = TempDir::new();
    let db = format!("sqlite:{}", dir.join("mirror.db").display());
    let port = free_port();
    let mut cmd = env.command();
    cmd.args(["mirror", "run", "--db", &db, "--listen", &format!("127.0.0.1:{port}"), "--workers", "1"]);
    let mut server = Server { child: limited(&cmd).spawn().expect("spawn mirror run") };
    read_until(&mut server.child, "receiving webhooks");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    env.control("PUT", "/webhooks", json!({"url": format!("http://{addr}/webhooks"), "format": "jwt"}));

    // The machine's own delay, measured beside the server's: a request on a connection that
    // already holds a slot (kept alive, never evicted while connections that completed no
    // request exist) waits for no slot, so its latency is the scheduling delay of this loaded
    // machine (2 cores shared by several builds: 1.1 s seen for such a request). The server
    // promises that a new connection waits at most about one eviction grace (500 ms) for a
    // slot: the bounds below are 1 s plus that delay, so they measure the server, not the CPU.
    // The kept-alive probe is one raw connection: were the server ever to evict it, the next
    // request on it fails and so does the test (its latency must not include a slot wait).
    let mut kept = std::net::TcpStream::connect(addr).expect("connect");
    let mut probe = |i: usize| {
        use std::io::{Read, Write};
        let started = Instant::now();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap_or_else(|e| panic!("kept-alive probe {i} evicted: {e}"));
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"ok")) {
            let n = kept.read(&mut buf).unwrap_or_else(|e| panic!("kept-alive probe {i} evicted: {e}"));
            assert!(n > 0, "kept-alive probe {i}: the server closed it");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"), "probe {i}: {}", String::from_utf8_lossy(&got));
        started.elapsed()
    };
    probe(0);
    let health = |client: &reqwest::Client, i: usize| {
        let started = Instant::now();
        let got = env.rt.block_on(async {
            let r = client.get(format!("http://{addr}/healthz")).send().await?;
            r.text().await
        });
        assert_eq!(got.unwrap_or_else(|e| panic!("healthz {i}: {e}")), "ok");
        started.elapsed()
    };

    let flood = flood(addr);
    // The sandbox delivers like Moneyhub, over a kept-alive connection: the first webhook
    // needs a new connection (and the receiver fetches Moneyhub's keys, a one-off cost it may
    // take up to the sender's 5 s for); the others must each be answered within the bound.
    // Every round, a new connection (`GET /healthz`) must be answered, and from round 1 (the
    // flood's opening burst taken from the accept queue) within the bound too.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).no_proxy().build().unwrap();
    let mut slowest = 0;
    let mut slowest_new = Duration::ZERO;
    let mut machine = Duration::ZERO;
    for i in 0..21 {
        let sent = env.control(
            "POST",
            "/webhooks/test",
            json!({"userId": format!("0000000000000000000000{i:02}"), "eventType": "syncCompleted",
            "payload": {
                "completedAt": "2025-01-15T09:00:00.000Z",
                "processingStatus": "success",
                "syncId": "0b7d0b0e-2f9b-4b8e-9a56-6d3f0f4e8c11",
                "connectionId": "1ffe704d39629a929c8e293880fb449a:00000000-0000-0000-0000-000000000001",
            }}),
        );
        let delivery = &sent["deliveries"][0];
        assert_eq!(delivery["status"], 200, "webhook {i}: {sent}");
        if i > 0 {
            slowest = slowest.max(delivery["durationMs"].as_u64().expect("durationMs"));
        }
        let waited = probe(i);
        let new = health(&fresh, i);
        if i > 0 {
            machine = machine.max(waited);
            slowest_new = slowest_new.max(new);
        }
    }
    eprintln!(
        "20 webhooks under {SLOW} slow connections: slowest answered in {slowest} ms; \
         slowest on a new connection {slowest_new:?}; on a kept-alive one (the machine's delay) {machine:?}"
    );
    let bound = Duration::from_secs(1) + machine;
    assert!(slowest_new < bound, "slowest answer on a new connection {slowest_new:?} (bound {bound:?})");
    assert!(
        u128::from(slowest) < bound.as_millis(),
        "slowest webhook answered in {slowest} ms (bound {bound:?})"
    );
    drop(flood);
    assert!(server.child.try_wait().expect("wait").is_none(), "mirror run is still running");
}

#[test]
fn sandbox_serve_answers_while_2000_slow_connections_are_open_under_1024_descriptors() {
    let _one = ONE_FLOOD.lock().unwrap_or_else(|p| p.into_inner());
    if !room_for_slow_connections("sandbox_serve_answers_while_2000_slow_connections_are_open") {
        return;
    }
    let dir = TempDir::new();
    let port = free_port();
    let mut cmd = command(&dir);
    cmd.args(["sandbox", "serve", "--port", &port.to_string()]);
    let mut server = Server { child: limited(&cmd).spawn().expect("spawn sandbox serve") };
    read_until(&mut server.child, "Press Ctrl-C");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let flood = flood(addr);
    let slowest = rt.block_on(async {
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).no_proxy().build().unwrap();
        // Request 0 lands while the server is still taking the flood's opening burst from
        // its accept queue: it must be answered, but only the 20 made while the 2,000
        // connections are open (and being re-opened as they are closed) are timed.
        let mut slowest = Duration::ZERO;
        for i in 0..21 {
            let started = Instant::now();
            let got: Value = http
                .get(format!("http://{addr}/oidc/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {i}: {e}"))
                .json()
                .await
                .unwrap();
            assert_eq!(got["issuer"], format!("http://{addr}/oidc"));
            if i > 0 {
                slowest = slowest.max(started.elapsed());
            }
        }
        slowest
    });
    drop(flood);
    assert!(slowest < Duration::from_secs(1), "slowest answer {slowest:?}");
    eprintln!("20 requests under {SLOW} slow connections: slowest answered in {slowest:?}");
}

/// Starts `mirror run` on `db` (SQLite) against the test's sandbox; returns it and its address.
fn mirror_run(env: &Env, db: &str) -> (Server, SocketAddr) {
    let port = free_port();
    let mut cmd = env.command();
    cmd.args(["mirror", "run", "--db", db, "--listen", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = Server { child: cmd.spawn().expect("spawn mirror run") };
    read_until(&mut server.child, "receiving webhooks");
    (server, format!("127.0.0.1:{port}").parse().unwrap())
}

/// Sends SIGTERM and waits (bounded) for the exit status.
fn terminate(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within {within:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sync_completed(user: &str, connection: &str, n: usize) -> Value {
    json!({"userId": user, "eventType": "syncCompleted", "payload": {
        "completedAt": "2025-01-15T09:00:00.000Z",
        "processingStatus": "success",
        "syncId": format!("0b7d0b0e-2f9b-4b8e-9a56-{n:012}"),
        "connectionId": connection,
    }})
}

#[test]
fn sigterm_during_a_webhook_burst_exits_0_and_loses_or_repeats_nothing() {
    let env = Env::new();
    let (user, connections) = env.user_with(&[crate::support::banks::MOCK]);
    let dir = TempDir::new();
    let path = dir.join("mirror.db");
    let db = format!("sqlite:{}", path.display());
    let (mut server, addr) = mirror_run(&env, &db);
    env.control("PUT", "/webhooks", json!({"url": format!("http://{addr}/webhooks"), "format": "jwt"}));

    // The burst: webhooks one after another; SIGTERM after the 10th is answered, while the
    // next ones are on their way. Deliveries go on until the receiver is gone.
    let mut answered = Vec::new();
    let mut status = None;
    for n in 0..500 {
        let sent = env.control("POST", "/webhooks/test", sync_completed(&user, &connections[0], n));
        let d = &sent["deliveries"][0];
        if d["status"] == 200 {
            answered.push(d["webhookId"].as_str().expect("webhookId").to_owned());
        } else if status.is_some() {
            break;
        }
        if n == 10 {
            let pid = server.child.id().to_string();
            assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
            status = Some(());
        }
    }
    assert!(status.is_some() && answered.len() >= 11, "answered {}", answered.len());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = server.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "mirror run did not exit within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "mirror run exited with {exit} on SIGTERM");

    // Every webhook answered 200 is in the inbox.
    let stored: std::collections::BTreeSet<String> = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut q = conn.prepare("SELECT webhook_id FROM mirror_inbox").unwrap();
        q.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    };
    let lost: Vec<&String> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "answered 200 but not stored: {lost:?}");

    // A restart applies what was left, each event once.
    let (mut again, addr) = mirror_run(&env, &db);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = env.json(&["mirror", "status", "--db", &db]);
        if s["inboxPending"] == 0 {
            assert_eq!(s["inboxFailed"], 0, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = addr;
    let exit = terminate(&mut again, Duration::from_secs(15));
    assert!(exit.success(), "second run exited with {exit}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let inbox: i64 = conn.query_row("SELECT COUNT(*) FROM mirror_inbox", [], |r| r.get(0)).unwrap();
    let applied: i64 =
        conn.query_row("SELECT COUNT(*) FROM mirror_inbox WHERE state = 1", [], |r| r.get(0)).unwrap();
    let ledger: i64 = conn.query_row("SELECT COUNT(*) FROM mirror_applied_events", [], |r| r.get(0)).unwrap();
    assert_eq!((applied, ledger), (inbox, inbox), "every stored event applied exactly once");
}

#[test]
fn sandbox_serve_exits_0_on_sigterm_and_logs_its_start_and_stop() {
    let dir = TempDir::new();
    let mut cmd = command(&dir);
    cmd.args(["sandbox", "serve", "--port", "0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut server = Server { child: cmd.spawn().expect("spawn sandbox serve") };
    read_until(&mut server.child, "Press Ctrl-C");
    let exit = terminate(&mut server, Duration::from_secs(15));
    assert!(exit.success(), "sandbox serve exited with {exit} on SIGTERM");
    // Logged at info by default, as JSON lines: the start (with the address) and the stop.
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let started = lines.iter().find(|l| l["fields"]["message"] == "sandbox serve started");
    let started = started.unwrap_or_else(|| panic!("no start line in {stderr}"));
    assert_eq!(started["level"], "INFO");
    assert!(started["fields"]["listening"].as_str().unwrap().starts_with("127.0.0.1:"), "{started}");
    assert!(lines.iter().any(|l| l["fields"]["message"] == "SIGTERM received: stopping"), "{stderr}");
    assert!(lines.iter().any(|l| l["fields"]["message"] == "sandbox serve stopped"), "{stderr}");
}

#[test]
fn sandbox_serve_flags_come_from_the_environment_and_guard_the_control_api() {
    // Off loopback without a token: refused before listening.
    let dir = TempDir::new();
    let mut cmd = command(&dir);
    cmd.args(["sandbox", "serve", "--port", "0"]).env("MONEYHUB_SANDBOX_HOST", "0.0.0.0");
    let r = crate::support::run_command(cmd);
    r.code(2);
    assert!(r.stderr.contains("--control-token"), "{}", r.stderr);
    // A webhook target off loopback needs the opt-in.
    let mut cmd = command(&dir);
    cmd.args(["sandbox", "serve", "--port", "0", "--webhook-url", "http://example.com/hook"]);
    let r = crate::support::run_command(cmd);
    r.code(2);
    assert!(r.stderr.contains("--allow-remote-webhooks"), "{}", r.stderr);

    // Every setting from MONEYHUB_SANDBOX_*: all interfaces, a token, a seed, a public URL.
    let port = free_port();
    let mut cmd = command(&dir);
    cmd.args(["sandbox", "serve"])
        .env("MONEYHUB_SANDBOX_HOST", "0.0.0.0")
        .env("MONEYHUB_SANDBOX_PORT", port.to_string())
        .env("MONEYHUB_SANDBOX_CONTROL_TOKEN", "ci-token")
        .env("MONEYHUB_SANDBOX_SEED", "7")
        .env("MONEYHUB_SANDBOX_PUBLIC_URL", format!("http://localhost:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = Server { child: cmd.spawn().expect("spawn sandbox serve") };
    let lines = read_until(&mut server.child, "Press Ctrl-C");
    assert!(lines.iter().any(|l| l.contains("seed              7")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("ci-token")), "the token is not printed: {lines:?}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let d: Value = http
            .get(format!("{base}/oidc/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["issuer"], format!("http://localhost:{port}/oidc"));
        let no_token = http.get(format!("{base}/__sandbox/clock")).send().await.unwrap();
        assert_eq!(no_token.status(), 401);
        let with = http.get(format!("{base}/__sandbox/clock")).bearer_auth("ci-token").send().await.unwrap();
        assert_eq!(with.status(), 200);
    });
    let exit = terminate(&mut server, Duration::from_secs(15));
    assert!(exit.success(), "{exit}");
}

/// Runs `mirror run` on `db` and waits (at most 30 s) for it to exit; returns the status and
/// stderr. A process still running then is killed and the test fails.
fn mirror_run_exit(env: &Env, db: &str) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let port = free_port();
    let mut cmd = env.command();
    cmd.args(["mirror", "run", "--db", db, "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = Server { child: cmd.spawn().expect("spawn mirror run") };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "mirror run did not exit: it started on a schema it cannot repair"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    server.child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    (status, stderr)
}

/// Whether the SQLite file at `path` holds table `name`.
fn has_table(path: &std::path::Path, name: &str) -> bool {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| {
        r.get::<_, i64>(0)
    })
    .expect("query")
        == 1
}

/// Issue 20 #6, as an operator meets it: `mirror run` re-creates a table dropped by hand and
/// starts; when the table cannot be re-created (here a view stands in its place, so the
/// table's indexes cannot be made), it exits non-zero with a message naming the table and the
/// reason, instead of serving webhooks it could never apply.
#[test]
fn mirror_run_repairs_a_dropped_table_or_exits_naming_it() {
    let env = Env::new();
    let dir = TempDir::new();
    let path = dir.join("mirror.db");
    let db = format!("sqlite:{}", path.display());
    env.ok(&["mirror", "status", "--db", &db]);
    assert!(has_table(&path, "mirror_transactions"));

    // Dropped by hand: re-created at start, and the server runs.
    rusqlite::Connection::open(&path).unwrap().execute_batch("DROP TABLE mirror_transactions").unwrap();
    assert!(!has_table(&path, "mirror_transactions"));
    let (mut server, addr) = mirror_run(&env, &db);
    assert!(has_table(&path, "mirror_transactions"), "re-created at start");
    let ready = env.rt.block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
    });
    assert_eq!(ready.expect("readyz").status(), 200);
    let status = terminate(&mut server, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");

    // Cannot be repaired: a view where the table was.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE mirror_transactions; CREATE VIEW mirror_transactions AS SELECT 1 AS x;")
        .unwrap();
    let (status, stderr) = mirror_run_exit(&env, &db);
    assert!(!status.success(), "{status:?}: {stderr}");
    assert!(
        stderr.contains("required tables are missing (mirror_transactions) and could not be re-created"),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 3, "a clear message, not a dump: {stderr}");
}
