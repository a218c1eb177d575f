//! Issue 11 #3: a server (or a proxy in front of it) that echoes the request into its error
//! body cannot make the CLI print a credential: not in the error message, not in table or
//! JSON output, not in the trace log (`MONEYHUB_LOG=trace`).

use std::process::Command;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::support::{command, run_command, Run, TempDir};

const SECRET: &str = "echo-secret-1234567890-abcdef";
const TOKEN: &str = "echo-access-token-0123456789abcdef";
const USER: &str = "5c79210bbac25ecb5e71ac40";

/// A mock of Moneyhub: discovery, a token (`token_ok`) or a 401 echoing the request, the user
/// list, and a 403 echoing the request (headers, body, the bare credential) everywhere else.
fn echo_server(rt: &tokio::runtime::Runtime, token_ok: bool) -> String {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let b = base.clone();
        let echo = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
            let body = String::from_utf8_lossy(&body).into_owned();
            let auth =
                headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let bare = auth.split_once(' ').map(|(_, v)| v.to_owned()).unwrap_or_default();
            let all: Vec<String> =
                headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect();
            let text = format!(
                "refused {method} {uri}; headers: {}; body: {body}; credential was {bare}",
                all.join("; ")
            );
            if uri.path() == "/oidc/token" {
                if token_ok {
                    return Json(json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 7200}))
                        .into_response();
                }
                let body = json!({"error": "invalid_client", "error_description": text});
                return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            }
            if uri.path() == "/users" && method == Method::GET {
                return Json(json!({"data": [{
                    "userId": USER, "clientId": "echo-client", "scopes": "openid",
                    "createdAt": "2025-01-02T10:00:00.000Z", "updatedAt": "2025-01-02T10:00:00.000Z",
                    "managedBy": "client", "userType": "standard", "connectionIds": []
                }], "meta": {"total": 1}}))
                .into_response();
            }
            let body = json!({
                "code": "Forbidden", "message": text, "correlationId": bare,
                "details": {"authorization": auth, "body": body},
            });
            (StatusCode::FORBIDDEN, Json(body)).into_response()
        };
        let app = Router::new()
            .route(
                "/oidc/.well-known/openid-configuration",
                get(move || {
                    let b = b.clone();
                    async move {
                        Json(json!({
                            "issuer": format!("{b}/oidc"),
                            "authorization_endpoint": format!("{b}/oidc/auth"),
                            "token_endpoint": format!("{b}/oidc/token"),
                            "jwks_uri": format!("{b}/oidc/certs"),
                        }))
                    }
                }),
            )
            .fallback(echo);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        base
    })
}

fn cli(dir: &TempDir, base: &str, args: &[&str]) -> Run {
    let mut cmd: Command = command(dir);
    cmd.env("MONEYHUB_IDENTITY_URL", base)
        .env("MONEYHUB_API_URL", format!("{base}/v3"))
        .env("MONEYHUB_CLIENT_ID", "echo-client")
        .env("MONEYHUB_CLIENT_SECRET", SECRET)
        .env("MONEYHUB_LOG", "trace")
        .args(args);
    run_command(cmd)
}

#[test]
fn echoed_credentials_never_reach_the_terminal() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let refusing = echo_server(&rt, false);
    let accepting = echo_server(&rt, true);
    let dir = TempDir::new();
    // base64("echo-client:" + SECRET): the `Basic` value.
    let basic = "ZWNoby1jbGllbnQ6ZWNoby1zZWNyZXQtMTIzNDU2Nzg5MC1hYmNkZWY=";
    let mut seen = String::new();
    for base in [&refusing, &accepting] {
        for output in ["table", "json"] {
            for args in [
                &["users", "get", "--user", USER][..],
                &["users", "list"][..],
                &["transactions", "list", "--user", USER][..],
                &["doctor", "--all-users"][..],
                &["doctor", "--user", USER][..],
            ] {
                let mut all = args.to_vec();
                all.extend(["--output", output]);
                let r = cli(&dir, base, &all);
                // Only the user list succeeds, once a token is issued.
                if base == &refusing || args != ["users", "list"] {
                    assert!(r.code == 3 || r.code == 4, "{all:?} should fail: {r:?}");
                }
                seen.push_str(&format!("{all:?}\n{}\n{}\n", r.stdout, r.stderr));
            }
        }
    }
    // The failures are explained, with the credentials cut out.
    assert!(seen.contains("refused GET /users/5c79210bbac25ecb5e71ac40"), "{seen}");
    assert!(seen.contains("refused POST /oidc/token"), "{seen}");
    assert!(seen.contains("could not be examined"), "doctor --all-users reports the user: {seen}");
    assert!(seen.contains("[redacted]"), "{seen}");
    for (what, secret) in [("client secret", SECRET), ("Basic value", basic), ("access token", TOKEN)] {
        let chars: Vec<char> = secret.chars().collect();
        for w in chars.windows(16) {
            let w: String = w.iter().collect();
            assert!(!seen.contains(&w), "{what} leaked ({w:?}):\n{seen}");
        }
    }
    let without_schemes = seen.replace("Bearer [redacted]", "").replace("Basic [redacted]", "");
    assert!(!without_schemes.contains("Bearer ") && !without_schemes.contains("Basic "), "{seen}");
}
