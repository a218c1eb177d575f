//! Test support: an in-process sandbox (frozen clock, fixed seed) per test, the real `moneyhub`
//! binary run against it with a clean environment, the control API, and golden files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use moneyhub_sandbox::kit::Control;
use moneyhub_sandbox::{ClockMode, Sandbox, SandboxConfig};
use serde_json::Value;

/// The skip switch (`MONEYHUB_TEST_REQUIRE`), shared by every crate's tests.
pub use moneyhub_sandbox::kit::testing::skip;

/// Bank ids of the sandbox catalogue used by the tests.
pub mod banks {
    /// Moneyhub Open Banking Mock (test).
    pub const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
    /// Modelo Open Banking Mock (test: current, savings, mortgage, loan).
    pub const MODELO: &str = "b74f1a79f0be8bdb857d82d0f041d7d2";
    /// Aviva (legacy).
    pub const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";
    /// Northwind Building Society (api, removable).
    pub const NORTHWIND: &str = "e49d15a10711b17bdab1423388202a1d";
    /// Barclays (api).
    pub const BARCLAYS: &str = "33d5f7e5995f1b56227d6603740fa7e7";
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_moneyhub")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory.
    pub fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("moneyhub-cli-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    fn from(output: Output, elapsed: Duration) -> Run {
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        };
        // No input may ever produce a panic or a backtrace.
        assert!(
            !run.stderr.contains("panicked")
                && !run.stderr.contains("internal error")
                && !run.stderr.contains("backtrace"),
            "panic: {run:?}"
        );
        run
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(self.code, expected, "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts success.
    #[track_caller]
    pub fn ok(&self) -> &Run {
        self.code(0)
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A base command with a clean environment: HOME and the state directory in `dir`, no
/// colours, no MONEYHUB_* variables.
pub fn command(dir: &TempDir) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("HOME", &dir.0)
        .env("MONEYHUB_STATE_DIR", dir.join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs a prepared command.
pub fn run_command(mut cmd: Command) -> Run {
    let started = Instant::now();
    let out = cmd.output().expect("run moneyhub");
    Run::from(out, started.elapsed())
}

/// Runs the binary with `args` and no configuration at all.
pub fn bare(args: &[&str]) -> Run {
    let dir = TempDir::new();
    let mut cmd = command(&dir);
    cmd.args(args);
    run_command(cmd)
}

/// A sandbox for one test, and the binary pointed at it.
pub struct Env {
    pub sandbox: Option<Sandbox>,
    pub rt: tokio::runtime::Runtime,
    pub dir: TempDir,
    kit: Control,
}

impl Env {
    /// A sandbox frozen at [`EPOCH`] with seed 42.
    pub fn new() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let epoch = Utc.with_ymd_and_hms(2025, 1, 15, 9, 0, 0).single().expect("epoch");
        let sandbox = rt
            .block_on(moneyhub_sandbox::spawn(SandboxConfig {
                clock: ClockMode::Frozen(epoch),
                ..SandboxConfig::default()
            }))
            .expect("sandbox");
        let kit = Control::of(&sandbox);
        Env { sandbox: Some(sandbox), rt, dir: TempDir::new(), kit }
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("sandbox")
    }

    /// The base URL.
    pub fn base(&self) -> String {
        self.sandbox().base_url().to_owned()
    }

    /// A command pointed at the sandbox through the environment.
    pub fn command(&self) -> Command {
        let mut cmd = command(&self.dir);
        cmd.env("MONEYHUB_IDENTITY_URL", self.sandbox().identity_url())
            .env("MONEYHUB_API_URL", self.sandbox().api_url_v3())
            .env("MONEYHUB_CLIENT_ID", "sandbox-client")
            .env("MONEYHUB_CLIENT_SECRET", "sandbox-secret");
        cmd
    }

    /// Runs the binary against the sandbox.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        run_command(cmd)
    }

    /// Runs the binary against the sandbox and asserts success.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        r.ok();
        r
    }

    /// Runs the binary against the sandbox with `--output json`, asserts success, parses.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let r = self.run(&all);
        r.ok();
        r.json()
    }

    /// The sandbox's control client.
    pub fn kit(&self) -> &Control {
        &self.kit
    }

    /// Runs a control-client call to completion.
    pub fn block<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(call)
    }

    /// Calls the control API; panics unless it answers 2xx.
    pub fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let (status, value) = self.block(self.kit.call(method, path, Some(body))).expect("control call");
        assert!(status.is_success(), "control {path}: {status} {value}");
        value
    }

    /// A user connected to `banks`, without the browser round trip. Returns the user id and
    /// the connection ids.
    pub fn user_with(&self, banks: &[&str]) -> (String, Vec<String>) {
        let user = self.block(self.kit.create_user(banks)).expect("user");
        (user.user_id, user.connection_ids)
    }

    /// Moves the virtual clock on.
    pub fn advance(&self, body: Value) -> Value {
        self.control("POST", "/clock/advance", body)
    }

    /// Every webhook delivery attempt the sandbox logged, as JSON.
    pub fn deliveries(&self) -> Vec<Value> {
        let log = self.block(self.kit.deliveries(0, 1_000_000)).expect("delivery log");
        log.data.iter().map(|d| serde_json::to_value(d).expect("delivery")).collect()
    }

    /// The request log since `after`.
    pub fn requests(&self, after: u64) -> Vec<Value> {
        let log = self.block(self.kit.requests(after, 1_000_000)).expect("request log");
        log.data.iter().map(|e| serde_json::to_value(e).expect("entry")).collect()
    }

    /// The last request sequence number.
    pub fn last_seq(&self) -> u64 {
        self.block(self.kit.requests(0, 1)).expect("request log").last_seq
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// Compares `actual` with the golden file `tests/snapshots/<name>.txt`; `UPDATE_SNAPSHOTS=1`
/// rewrites it instead.
#[track_caller]
pub fn snapshot(name: &str, actual: &str) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("snapshots").join(format!("{name}.txt"));
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("snapshot dir");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no snapshot {} (run with UPDATE_SNAPSHOTS=1 to create it)", path.display())
    });
    if expected != actual {
        panic!(
            "snapshot {name} differs (UPDATE_SNAPSHOTS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}"
        );
    }
}

/// Every line at most 80 characters.
#[track_caller]
pub fn fits_80(text: &str) {
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "line longer than 80 columns: {line:?}");
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
