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
