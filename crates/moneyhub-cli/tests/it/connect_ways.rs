//! Issue 15 through the binary: one-time access (`connect` without `--user`), the Auth
//! Requests API (`--via auth-request` for connect and the renewals), `auth-requests list|get`.

use crate::support::{banks, Env};

#[test]
fn connect_without_a_user_is_one_time_access_and_names_the_user() {
    let env = Env::new();
    let out = env.json(&["connect", "--bank", banks::MOCK]);
    assert_eq!(out["oneTimeAccess"], true);
    let user = out["userId"].as_str().expect("the made user").to_owned();
    assert!(out["connectionId"].as_str().unwrap().starts_with(banks::MOCK), "{out}");
    let u = env.json(&["users", "get", "--user", &user]);
    assert_eq!(u["managedBy"], "user");
    assert_eq!(out["connection"]["expiresAt"], "2025-01-16T09:00:00.000Z", "24-hour consent: {out}");
    let r = env.ok(&["connect", "--bank", banks::MOCK]);
    assert!(r.stdout.contains("one-time access: Moneyhub made user"), "{}", r.stdout);
    // The PAR carried no sub value.
    let log = env.requests(0);
    assert!(log.iter().any(|e| e["path"] == "/oidc/request" && e["status"] == 201));
}

#[test]
fn connect_and_renew_via_auth_requests_then_list_and_get_them() {
    let env = Env::new();
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let out = env.json(&["connect", "--user", &user, "--bank", banks::MOCK, "--via", "auth-request"]);
    let con = out["connectionId"].as_str().unwrap().to_owned();
    let ar = out["authRequestId"].as_str().expect("an auth request id").to_owned();
    assert_eq!(out["connection"]["status"], "ok", "{out}");
    let log = env.requests(0);
    let paths: Vec<(&str, &str)> =
        log.iter().map(|e| (e["method"].as_str().unwrap(), e["path"].as_str().unwrap())).collect();
    assert!(paths.contains(&("POST", "/auth-requests")), "{paths:?}");
    assert!(paths.iter().any(|(m, p)| *m == "PATCH" && p.starts_with("/auth-requests/")));
    assert!(!paths.contains(&("POST", "/oidc/request")), "no PAR from the client: {paths:?}");

    let out = env.json(&[
        "reconsent",
        "--user",
        &user,
        "--connection",
        &con,
        "--expires-at",
        "2025-03-01T00:00:00Z",
        "--via",
        "auth-request",
    ]);
    assert_eq!(out["connection"]["expiresAt"], "2025-03-01T00:00:00.000Z", "{out}");
    let out = env.json(&["reauth", "--user", &user, "--connection", &con, "--via", "auth-request"]);
    assert!(out["authRequestId"].is_string(), "{out}");
    // One-time access through an auth request.
    let out = env.json(&["connect", "--bank", banks::MOCK, "--via", "auth-request"]);
    assert_eq!(out["oneTimeAccess"], true);
    assert_ne!(out["userId"], user.as_str());

    let list = env.json(&["auth-requests", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(4), "{list}");
    assert!(list.as_array().unwrap().iter().all(|a| a["status"] == "complete"));
    let one = env.json(&["auth-requests", "get", "--id", &ar]);
    assert_eq!((one["id"].as_str(), one["connectionId"].as_str()), (Some(ar.as_str()), Some(con.as_str())));
    let r = env.ok(&["auth-requests", "list"]);
    assert!(r.stdout.contains("4 auth requests"), "{}", r.stdout);
    let r = env.ok(&["auth-requests", "get", "--id", &ar]);
    assert!(r.stdout.contains("complete"), "{}", r.stdout);
    env.run(&["auth-requests", "get", "--id", "4b6bd0f4-4f52-4f0e-9d7e-6f4f43a9b7a1"]).code(3);
    env.run(&["auth-requests", "list", "--limit", "0"]).code(2);
}

#[test]
fn auth_request_prints_its_url_and_completes_from_the_loopback_callback() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let env = Env::new();
    let redirect = format!("http://127.0.0.1:{}/callback", crate::support::free_port());
    let mut cmd = env.command();
    cmd.args([
        "connect",
        "--bank",
        banks::MOCK,
        "--via",
        "auth-request",
        "--browser",
        "--timeout",
        "60",
        "-o",
        "json",
    ])
    .env("MONEYHUB_REDIRECT_URI", &redirect)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut url = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        if line.trim_start().starts_with("http") {
            url = Some(line.trim().to_owned());
        }
        if line.contains("Waiting for the browser") {
            break;
        }
    }
    let url = url.expect("the auth request's URL on stderr");
    assert!(url.contains("request_uri="), "{url}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    env.rt.block_on(async {
        let consent = http.get(&url).send().await.expect("auth");
        let location = consent.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&redirect), "{location}");
        http.get(&location).send().await.expect("callback");
    });
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["authRequestId"].is_string() && v["oneTimeAccess"] == true, "{v}");
    let ar = env.json(&["auth-requests", "get", "--id", v["authRequestId"].as_str().unwrap()]);
    assert_eq!(ar["status"], "complete");
    assert_eq!(ar["redirectUri"], redirect.as_str());
}
