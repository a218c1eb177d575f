//! `moneyhub sandbox serve`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::{bare, command, TempDir};

#[test]
fn serve_prints_its_urls_and_answers() {
    let dir = TempDir::new();
    let mut cmd = command(&dir);
    cmd.args(["sandbox", "serve", "--port", "0", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let base = first.strip_prefix("moneyhub sandbox listening on ").expect("banner").trim().to_owned();
    let rest: Vec<String> = lines
        .by_ref()
        .take_while(|l| l.as_ref().is_ok_and(|l| !l.starts_with("Press Ctrl-C")))
        .map(Result::unwrap)
        .collect();
    assert!(rest.iter().any(|l| l.contains("seed              7")), "{rest:?}");
    // Issue 23 item 12: the banner names the dashboard and the consent mode.
    let dashboard = format!("dashboard         {base}/__sandbox/ui");
    assert!(rest.iter().any(|l| l.trim_start() == dashboard), "{rest:?}");
    assert!(rest.iter().any(|l| l.trim_start().starts_with("consent           instant")), "{rest:?}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let discovery: serde_json::Value = rt.block_on(async {
        reqwest::get(format!("{base}/oidc/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(discovery["issuer"], format!("{base}/oidc"));
    child.kill().expect("kill");
    let _ = child.wait();
}

#[test]
fn serve_rejects_bad_flags() {
    let r = bare(&["sandbox", "serve", "--port", "0", "--webhook-format", "xml"]);
    r.code(2);
    assert!(r.stderr.contains("xml"), "{}", r.stderr);
    let r = bare(&["sandbox", "serve", "--port", "0", "--client-jwks", "/nonexistent.json"]);
    r.code(2);
    assert!(r.stderr.contains("--client-jwks"), "{}", r.stderr);
}

fn key_file(name: &str) -> String {
    format!("{}/tests/data/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts `sandbox serve` with the given extra flags; the child and its base URL.
fn serve(dir: &TempDir, extra: &[&str]) -> (std::process::Child, String) {
    let mut cmd = command(dir);
    cmd.args(["sandbox", "serve", "--port", "0"]).args(extra).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let base = first.strip_prefix("moneyhub sandbox listening on ").expect("banner").trim().to_owned();
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}

#[test]
fn connect_and_transactions_over_mtls_against_serve_with_tls() {
    let dir = TempDir::new();
    let (mut child, base) = serve(
        &dir,
        &[
            "--tls-cert",
            &key_file("server.crt"),
            "--tls-key",
            &key_file("server.key"),
            "--client-cert",
            &key_file("client-a.crt"),
        ],
    );
    assert!(base.starts_with("https://"), "{base}");
    // No secret, no key: the certificate alone is self_signed_tls_client_auth.
    let run = |cert: &str, args: &[&str]| {
        let mut cmd = command(&dir);
        cmd.env("MONEYHUB_IDENTITY_URL", &base)
            .env("MONEYHUB_API_URL", format!("{base}/v3"))
            .env("MONEYHUB_CLIENT_ID", "sandbox-client")
            .env("MONEYHUB_TLS_CLIENT_CERT", key_file(&format!("{cert}.crt")))
            .env("MONEYHUB_TLS_CLIENT_KEY", key_file(&format!("{cert}.key")))
            .env("MONEYHUB_CA_CERT", key_file("ca.crt"))
            .args(["--output", "json"])
            .args(args);
        crate::support::run_command(cmd)
    };
    let user = run("client-a", &["users", "create", "--client-user-id", "mtls-cli"]);
    user.ok();
    let user_id = user.json()["userId"].as_str().expect("userId").to_owned();
    let connected =
        run("client-a", &["connect", "--user", &user_id, "--bank", "1ffe704d39629a929c8e293880fb449a"]);
    connected.ok();
    assert!(connected.json()["connectionId"].is_string(), "{}", connected.stdout);
    let listed = run("client-a", &["transactions", "list", "--user", &user_id, "--limit", "5"]);
    listed.ok();
    assert!(!listed.json().as_array().expect("an array").is_empty(), "{}", listed.stdout);
    // Another certificate: the token endpoint refuses it (authentication failed, exit 4).
    let other = run("client-b", &["users", "list"]);
    other.code(4);
    assert!(
        other.stderr.contains("invalid_client") || other.stderr.contains("certificate"),
        "{}",
        other.stderr
    );
    child.kill().expect("kill");
    let _ = child.wait();
}

#[test]
fn refused_auth_combinations_are_usage_errors_before_anything_is_sent() {
    let dir = TempDir::new();
    // Port 9 (discard) on loopback: had anything been sent, the error would be a connection
    // failure (exit 3), not a usage error.
    let base = "http://127.0.0.1:9";
    let cases: [(&[(&str, String)], &str); 4] = [
        (
            &[("MONEYHUB_CLIENT_SECRET", "s".into()), ("MONEYHUB_REQUEST_OBJECT_ALG", "PS256".into())],
            "needs a private key",
        ),
        (
            &[
                ("MONEYHUB_PRIVATE_KEY", key_file("p256.pkcs8.pem")),
                ("MONEYHUB_PRIVATE_KEY_ALG", "RS256".into()),
            ],
            "RS256",
        ),
        (
            &[
                ("MONEYHUB_PRIVATE_KEY", key_file("rsa0.pkcs1.pem")),
                ("MONEYHUB_REQUEST_OBJECT_ALG", "ES384".into()),
            ],
            "ES384",
        ),
        (&[("MONEYHUB_TLS_CLIENT_CERT", key_file("client-a.crt"))], "without its key"),
    ];
    for (vars, expected) in cases {
        let mut cmd = command(&dir);
        cmd.env("MONEYHUB_IDENTITY_URL", base)
            .env("MONEYHUB_CLIENT_ID", "c")
            .env("MONEYHUB_SANDBOX_PROBE", "0");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.args(["users", "list"]);
        let r = crate::support::run_command(cmd);
        r.code(2);
        assert!(r.stderr.contains(expected), "{vars:?}: {}", r.stderr);
    }
}
