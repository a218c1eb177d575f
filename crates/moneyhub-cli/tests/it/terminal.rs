//! Issue 20 #9–#12: nothing a server sends reaches the terminal raw, and nothing the CLI
//! writes clobbers what it should not (special files, planted links, readable secrets).
//!
//! The hostile text is planted in real sandbox data by a rewriting proxy in front of the
//! sandbox (a fault: a compromised server or a proxy on the way), because the sandbox itself
//! names its banks and describes its transactions from a fixed catalogue.

use std::process::Command;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use crate::support::{banks, command, run_command, Env, Run, TempDir};

/// OSC 0 (window title), OSC 52 (clipboard write), OSC 8 (a hyperlink), CSI 2J (clear the
/// screen), a C1 CSI (U+009B) and a right-to-left override (U+202E).
const PLANT: &str = "\u{1b}]0;pwned-title\u{7}\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}]8;;http://evil.example/\u{1b}\\click\u{1b}]8;;\u{1b}\\\u{1b}[2J\u{9b}31m\u{202e}fdp.exe";

/// Characters none of the CLI's output may carry raw (colours are off: `NO_COLOR=1`).
const FORBIDDEN: [char; 5] = ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{9d}'];

/// Puts [`PLANT`] in front of every string under the keys servers fill with their own text.
fn plant(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let planted = [
                    "providerName",
                    "description",
                    "shortDescription",
                    "longDescription",
                    "clientUserId",
                    "message",
                    "error_description",
                    "accountName",
                ];
                match v {
                    Value::String(s) if planted.contains(&k.as_str()) => *s = format!("{PLANT}{s}"),
                    _ => plant(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plant),
        _ => {}
    }
}

/// A proxy in front of `upstream` that plants [`PLANT`] in every JSON answer (and points the
/// discovery document at itself). Returns its base URL.
fn hostile_proxy(rt: &tokio::runtime::Runtime, upstream: String) -> String {
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let me = base.clone();
        let http = reqwest::Client::new();
        let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (http, upstream, me) = (http.clone(), upstream.clone(), me.clone());
            async move {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                let mut req = http.request(method, format!("{upstream}{path}")).body(body);
                for (k, v) in &headers {
                    if k != "host" && k != "content-length" {
                        req = req.header(k, v);
                    }
                }
                let Ok(resp) = req.send().await else {
                    return StatusCode::BAD_GATEWAY.into_response();
                };
                let status = resp.status();
                let json = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t.contains("json"));
                let bytes = resp.bytes().await.unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).replace(&upstream, &me);
                let text = match serde_json::from_str::<Value>(&text) {
                    Ok(mut v) if json => {
                        plant(&mut v);
                        v.to_string()
                    }
                    _ => text,
                };
                Response::builder()
                    .status(status)
                    .header("content-type", if json { "application/json" } else { "text/plain" })
                    .body(Body::from(text))
                    .expect("response")
            }
        };
        let app = Router::new().fallback(forward);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        base
    })
}

fn through(dir: &TempDir, base: &str, secret: &str, args: &[&str]) -> Run {
    let mut cmd: Command = command(dir);
    cmd.env("MONEYHUB_IDENTITY_URL", format!("{base}/oidc"))
        .env("MONEYHUB_API_URL", format!("{base}/v3"))
        .env("MONEYHUB_CLIENT_ID", "sandbox-client")
        .env("MONEYHUB_CLIENT_SECRET", secret)
        .env("MONEYHUB_LOG", "debug")
        .args(args);
    run_command(cmd)
}

#[test]
fn server_text_never_reaches_the_terminal_raw() {
    let env = Env::new();
    let out = env.run(&["users", "create", "--client-user-id", "plain-user", "--output", "json"]);
    out.ok();
    let user = out.json()["userId"].as_str().expect("user id").to_owned();
    let new = moneyhub_sandbox::kit::NewConnection {
        user_id: user.clone(),
        bank_id: banks::MOCK.to_owned(),
        expires_at: None,
        enable_async: false,
    };
    env.block(env.kit().create_connection(&new)).expect("connection");
    let base = hostile_proxy(&env.rt, env.base());
    let dir = TempDir::new();
    let mut seen = String::new();
    let mut runs = Vec::new();
    for output in ["table", "json"] {
        for (secret, args) in [
            ("sandbox-secret", &["users", "list"][..]),
            ("sandbox-secret", &["users", "get", "--user", &user][..]),
            ("sandbox-secret", &["connections", "list", "--user", &user][..]),
            ("sandbox-secret", &["transactions", "list", "--user", &user, "--limit", "5"][..]),
            ("sandbox-secret", &["doctor", "--user", &user][..]),
            // An API error's message.
            ("sandbox-secret", &["users", "get", "--user", "5c79210bbac25ecb5e71ac40"][..]),
            // An OAuth error_description.
            ("not-the-secret", &["users", "list"][..]),
        ] {
            let mut all = args.to_vec();
            all.extend(["--output", output]);
            let r = through(&dir, &base, secret, &all);
            seen.push_str(&format!("{all:?} -> {}\n{}\n{}\n", r.code, r.stdout, r.stderr));
            runs.push((all.join(" "), r));
        }
    }
    for (what, r) in &runs {
        for c in FORBIDDEN {
            assert!(!r.stdout.contains(c), "{what}: {c:?} raw on stdout:\n{}", r.stdout.escape_debug());
            assert!(!r.stderr.contains(c), "{what}: {c:?} raw on stderr:\n{}", r.stderr.escape_debug());
        }
    }
    // The text is shown, escaped, not silently dropped: in tables, JSON, errors and logs.
    assert!(seen.contains("\\u001b]0;pwned-title\\u0007"), "{seen}");
    assert!(seen.contains("\\u009b31m\\u202efdp.exe"), "{seen}");
    let (_, users_json) = runs.iter().find(|(w, _)| w == "users list --output json").expect("run");
    let users = users_json.json();
    let planted = users[0]["clientUserId"].as_str().expect("clientUserId");
    assert!(planted.starts_with(PLANT), "JSON keeps the very same text, escaped: {planted:?}");
    let (_, error) = runs.iter().find(|(w, _)| w.starts_with("users get --user 5c79")).expect("run");
    assert_eq!(error.code, 3, "{error:?}");
    assert!(error.stderr.contains("\\u001b[2J"), "{}", error.stderr);
}
