//! Moneyhub's official Node client (`@mft/moneyhub-api-client@5.2.1`), unmodified, against
//! the sandbox: once with client_secret_basic and unsigned request objects, once with
//! private_key_jwt and RS256-signed request objects. Skipped, with the reason printed, where
//! node or npm is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use moneyhub_sandbox::{ClientRegistration, SandboxConfig};
use serde_json::{json, Value};

use crate::support::*;

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// Installs the pinned client once per target directory (reused between runs).
fn install() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        // Cargo's scratch directory for integration tests (`target/tmp`): inside the build's
        // target directory wherever the crate is built, a workspace or a packaged crate.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-conformance");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for f in ["package.json", "conformance.js"] {
            std::fs::copy(manifest.join("tests/node").join(f), dir.join(f)).map_err(|e| e.to_string())?;
        }
        // A usable install is one node can load; anything else (none yet, a partial or
        // older one) is replaced by a clean install.
        let loads = || {
            Command::new("node")
                .args(["-e", "require('@mft/moneyhub-api-client'); if (require('@mft/moneyhub-api-client/package.json').version !== '5.2.1') process.exit(3)"])
                .current_dir(&dir)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !loads() {
            let _ = std::fs::remove_dir_all(dir.join("node_modules"));
            let _ = std::fs::remove_file(dir.join("package-lock.json"));
            let out = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .output()
                .map_err(|e| format!("npm install: {e}"))?;
            if !out.status.success() || !loads() {
                return Err(format!(
                    "npm install of @mft/moneyhub-api-client@5.2.1 failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(dir)
    })
    .clone()
}

struct Keys {
    private_jwk: Value,
    public_jwk: Value,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        // A fixed test key (testdata/keys): no key generation, and no `rsa` crate.
        let mut private_jwk: Value = serde_json::from_str(&crate::support::fixture("rsa0.jwk")).unwrap();
        for (k, v) in [("kid", "conformance-key"), ("alg", "RS256"), ("use", "sig")] {
            private_jwk[k] = json!(v);
        }
        let public_jwk = json!({"kty": "RSA", "kid": "conformance-key", "alg": "RS256", "use": "sig",
            "n": private_jwk["n"], "e": private_jwk["e"]});
        Keys { private_jwk, public_jwk }
    })
}

fn run_driver(dir: &Path, env: &[(&str, String)]) -> (bool, String) {
    let mut cmd = Command::new("node");
    cmd.arg("conformance.js").current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains("CONFORMANCE PASSED"), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_client_passes_against_the_sandbox() {
    if !tool("node") || !tool("npm") {
        crate::support::skip(
            "node",
            "official_node_client_passes_against_the_sandbox",
            "node/npm not found on PATH",
        );
        return;
    }
    let dir = tokio::task::spawn_blocking(install).await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    let k = keys();
    // The official client checks id_token times against its own clock: real time here.
    let sb = sandbox_with(SandboxConfig {
        clients: vec![
            ClientRegistration::default(),
            ClientRegistration {
                client_id: "pkjwt-client".into(),
                client_secret: None,
                jwks: Some(json!({"keys": [k.public_jwk]})),
                redirect_uris: vec!["http://127.0.0.1:9999/cb".into()],
                request_object_signing_alg: "RS256".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    })
    .await;
    let base = sb.base_url().to_string();
    let passes = [
        vec![
            ("MH_BASE", base.clone()),
            ("MH_CLIENT_ID", "sandbox-client".into()),
            ("MH_CLIENT_SECRET", "sandbox-secret".into()),
            ("MH_AUTH_METHOD", "client_secret_basic".into()),
            ("MH_REQUEST_ALG", "none".into()),
        ],
        vec![
            ("MH_BASE", base.clone()),
            ("MH_CLIENT_ID", "pkjwt-client".into()),
            ("MH_AUTH_METHOD", "private_key_jwt".into()),
            ("MH_REQUEST_ALG", "RS256".into()),
            ("MH_KEYS", json!([k.private_jwk]).to_string()),
        ],
    ];
    for env in passes {
        let d = dir.clone();
        let (ok, out) = tokio::task::spawn_blocking(move || run_driver(&d, &env)).await.unwrap();
        println!("{out}");
        assert!(ok, "the official Node client failed against the sandbox:\n{out}");
    }
    // The request log shows the client's wire habits, which the sandbox tolerated.
    let (_, log) = control(&sb, reqwest::Method::GET, "/requests?limit=100000", None).await;
    let entries = log["data"].as_array().unwrap();
    let has = |f: &dyn Fn(&Value) -> bool| entries.iter().any(f);
    assert!(has(&|e| e["query"] == "undefined"), "catalogue called with ?undefined");
    assert!(
        has(&|e| e["path"].as_str().unwrap().starts_with("/v2.0/sync/")
            && e["path"].as_str().unwrap().contains(':')),
        "raw ':' in connection ids"
    );
    assert!(
        has(&|e| e["query"].as_str().is_some_and(|q| q.matches("ids=").count() >= 3)),
        "repeated ids keys"
    );
    let tokens = entries.iter().filter(|e| e["path"] == "/oidc/token").count();
    let data_calls = entries.iter().filter(|e| e["path"].as_str().unwrap().starts_with("/v2.0/")).count();
    assert!(
        tokens >= data_calls,
        "the official client fetches a token per call ({tokens} tokens, {data_calls} data calls)"
    );
}
