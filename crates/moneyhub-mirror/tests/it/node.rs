//! The mirror as a real child process: the `mirror_node` example, built here so it matches
//! the library under test, started against a sandbox and a database, waited for ("listening
//! on ADDR"), and stopped with a signal or killed. The crash and fleet tests share it.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::SandboxHandle;

/// The example binary, (re)built once per test run so it matches the library under test (a
/// no-op when `cargo test` already built it).
pub fn mirror_node() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_mirror_node).clone()
}

fn build_mirror_node() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe.parent().and_then(|p| p.parent()).expect("target/debug");
    let mut cargo = std::process::Command::new(env!("CARGO"));
    // Variables cargo sets for the test process would make the nested build look different
    // from `cargo test`'s own and rebuild the library.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep =
            ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_str()) || key.starts_with("CARGO_BUILD_");
        if (key.starts_with("CARGO_") && !keep) || key.starts_with("__CARGO") || key == "OUT_DIR" {
            cargo.env_remove(&key);
        }
    }
    // `--workspace`, not `-p moneyhub-mirror`: the README's `cargo test --workspace` unifies
    // the features of every member's dependencies (tokio's `test-util`, serde's `derive`, …),
    // and only a build with the same selection finds its artifacts fresh. With `-p`, tokio
    // and everything above it would be compiled again in the middle of the test run (CI time,
    // and CPU taken from the tests running beside it). Under `cargo test -p moneyhub-mirror`
    // this builds the workspace's configuration once instead.
    let status = cargo
        .args(["build", "--quiet", "--workspace", "--example", "mirror_node"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the mirror_node example failed");
    debug.join("examples").join(format!("mirror_node{}", std::env::consts::EXE_SUFFIX))
}

/// A running `mirror_node` child (SIGKILLed if dropped).
pub struct Node {
    child: Child,
    /// The address its receiver is bound to, as it printed it.
    pub addr: String,
    // Kept open so that the child never writes to a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Node {
    /// Starts `bin` on `db_url`, its receiver on `listen` (port 0 for any), a client of `sb`,
    /// with `extra` flags (`--workers`, `--coalesce-ms`, ... as `mirror_node` documents), and
    /// waits (30 s at most) for it to say it is listening.
    pub async fn start(bin: &Path, sb: &SandboxHandle, db_url: &str, listen: &str, extra: &[&str]) -> Node {
        let mut child = Command::new(bin)
            .args([
                "--db",
                db_url,
                "--listen",
                listen,
                "--identity",
                sb.identity_url(),
                "--api",
                &sb.api_url_v3(),
                "--client-id",
                sb.client_id(),
                "--client-secret",
                sb.client_secret().unwrap(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("mirror_node starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("mirror_node says it is listening")
            .unwrap()
            .unwrap_or_default();
        let addr =
            line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Node { addr: addr.to_owned(), child, _stdout: lines }
    }

    /// Its webhook endpoint.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks", self.addr)
    }

    /// Its exit status if it has exited (without waiting).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("child status")
    }

    /// SIGKILL, and reap.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        let _ = self.child.wait().await;
    }

    /// Sends `signal` (e.g. `Signal::TERM`, `Signal::INT`) and waits up to `limit` for the
    /// process to exit; its exit status (panics past the limit, and the drop then kills it).
    #[cfg(unix)]
    pub async fn stop(mut self, signal: rustix::process::Signal, limit: Duration) -> ExitStatus {
        let id = self.child.id().expect("the node is still running");
        let pid = rustix::process::Pid::from_raw(i32::try_from(id).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).expect("signal sent");
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!("mirror_node {} did not exit within {limit:?} of {signal:?}", self.addr)
            })
            .expect("child reaped")
    }
}
