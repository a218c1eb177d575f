//! Issue 23 #14, #16: errors that say what to do, and logs coloured only for people.

use std::process::Stdio;

use crate::support::{command, run_command, Env, TempDir};

#[test]
fn an_unknown_user_is_named_with_the_command_that_lists_users() {
    let env = Env::new();
    for args in [
        &["doctor", "--user", "5c79210bbac25ecb5e71ac40"][..],
        &["users", "get", "--user", "5c79210bbac25ecb5e71ac40"][..],
        &["connections", "list", "--user", "5c79210bbac25ecb5e71ac40"][..],
    ] {
        let r = env.run(args);
        r.code(3);
        assert!(
            r.stderr.contains("no user 5c79210bbac25ecb5e71ac40") && r.stderr.contains("moneyhub users list"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn an_unreachable_host_is_named() {
    let dir = TempDir::new();
    let mut cmd = command(&dir);
    cmd.env("MONEYHUB_IDENTITY_URL", "http://no-such-host.invalid:4000/oidc")
        .env("MONEYHUB_CLIENT_ID", "c")
        .env("MONEYHUB_CLIENT_SECRET", "s")
        .args(["users", "list"]);
    let r = run_command(cmd);
    r.code(3);
    assert!(r.stderr.contains("no-such-host.invalid:4000"), "{}", r.stderr);
}

#[test]
fn an_unknown_certificate_authority_points_to_ca_cert() {
    let dir = TempDir::new();
    let key = |name: &str| format!("{}/tests/data/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut serve = command(&dir);
    serve
        .args([
            "sandbox",
            "serve",
            "--port",
            "0",
            "--tls-cert",
            &key("server.crt"),
            "--tls-key",
            &key("server.key"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = serve.spawn().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    let base = first.strip_prefix("moneyhub sandbox listening on ").expect("banner").trim().to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    let mut cmd = command(&dir);
    cmd.env("MONEYHUB_IDENTITY_URL", &base)
        .env("MONEYHUB_CLIENT_ID", "sandbox-client")
        .env("MONEYHUB_CLIENT_SECRET", "sandbox-secret")
        .args(["users", "list"]);
    let r = run_command(cmd);
    let _ = child.kill();
    let _ = child.wait();
    r.code(3);
    assert!(
        r.stderr.contains("not trusted")
            && r.stderr.contains("certificate authority")
            && r.stderr.contains("--ca-cert"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_sandbox_url_may_come_before_the_subcommand() {
    let env = Env::new();
    let base = env.base();
    let r = env.run(&["sandbox", "--sandbox-url", &base, "clock", "show"]);
    r.ok();
    assert!(r.stdout.contains("sandbox clock: 2025-01-15 09:00 UTC"), "{}", r.stdout);
    assert!(!r.stderr.contains("--sandbox"), "{}", r.stderr);
}

#[test]
fn logs_are_coloured_only_on_a_terminal() {
    // stderr is a pipe here: no colour, even without NO_COLOR.
    let dir = TempDir::new();
    for format in ["text", "json"] {
        let mut cmd = command(&dir);
        cmd.env_remove("NO_COLOR").env("MONEYHUB_LOG", "debug").args([
            "--sandbox",
            "--log-format",
            format,
            "users",
            "list",
        ]);
        let r = run_command(cmd);
        r.ok();
        assert!(!r.stderr.is_empty(), "something was logged");
        assert!(!r.stderr.contains('\u{1b}'), "{format}: {}", r.stderr.escape_debug());
    }
}

#[test]
fn healthcheck_probes_a_health_endpoint() {
    // Issue 23 #20: what the container's HEALTHCHECK runs.
    let env = Env::new();
    let dir = TempDir::new();
    let probe = |url: &str| {
        let mut cmd = command(&dir);
        cmd.args(["healthcheck", url, "--timeout", "3"]);
        run_command(cmd)
    };
    probe(&format!("{}/__sandbox/healthz", env.base())).ok();
    let missing = probe(&format!("{}/no-such-page", env.base()));
    missing.code(1);
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
    let closed = probe(&format!("http://127.0.0.1:{}/healthz", crate::support::free_port()));
    closed.code(1);
    assert!(closed.stderr.contains("did not answer"), "{}", closed.stderr);
}
