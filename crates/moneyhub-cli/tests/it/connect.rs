//! `moneyhub connect`, `reauth`, `refresh`, `reconsent`: the flows completed on the sandbox,
//! and through the loopback listener (`--browser`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::json;

use crate::support::{banks, free_port, Env};

#[test]
fn connect_by_id_and_by_name() {
    let env = Env::new();
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let out = env.json(&["connect", "--user", &user, "--bank", banks::MOCK]);
    assert_eq!(out["flow"], "connect");
    let id = out["connectionId"].as_str().unwrap();
    assert!(id.starts_with(banks::MOCK), "{out}");
    assert_eq!(out["connection"]["status"], "ok");
    assert!(out["syncId"].is_null());
    // By name (case-insensitive) and by bankRef; the table output names the provider.
    let r = env.ok(&["connect", "--user", &user, "--bank", "aviva"]);
    assert!(r.stdout.contains("Connected Aviva"), "{}", r.stdout);
    env.ok(&["connect", "--user", &user, "--bank", "modelo-mock"]);
    let list = env.json(&["connections", "list", "--user", &user]);
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    // The sandbox saw the real flow: PAR, /oidc/auth and the code exchange.
    let log = env.requests(0);
    let paths: Vec<&str> = log.iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(paths.contains(&"/oidc/request") && paths.contains(&"/oidc/auth"), "{paths:?}");
    // Ambiguous or unknown banks are usage errors.
    let r = env.run(&["connect", "--user", &user, "--bank", "open banking mock"]);
    r.code(2);
    assert!(r.stderr.contains("ambiguous"), "{}", r.stderr);
    env.run(&["connect", "--user", &user, "--bank", "no such bank"]).code(2);
}

#[test]
fn connect_async_waits_for_the_first_sync() {
    let env = Env::new();
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let out = env.json(&["connect", "--user", &user, "--bank", banks::MODELO, "--async"]);
    assert!(out["syncId"].is_string(), "{out}");
    assert_eq!(out["fetchStatus"], "success");
}

#[test]
fn connect_through_the_loopback_redirect() {
    let env = Env::new();
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut cmd = env.command();
    cmd.args([
        "connect",
        "--user",
        &user,
        "--bank",
        banks::MOCK,
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
    let mut lines = BufReader::new(stderr).lines();
    // The URL comes first, then the "waiting" line once the listener is up.
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.trim_start().starts_with("http") {
            url = Some(line.trim().to_owned());
        }
        if line.contains("Waiting for the browser") {
            break;
        }
    }
    let url = url.expect("authorisation URL on stderr");
    // Play the browser: the sandbox consents and redirects to the CLI's listener.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = env.rt.block_on(async {
        let consent = http.get(&url).send().await.expect("auth");
        let location = consent.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&redirect), "{location}");
        http.get(&location).send().await.expect("callback").text().await.unwrap()
    });
    assert!(page.contains("You can close this window"), "{page}");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["connectionId"].as_str().is_some_and(|c| c.starts_with(banks::MOCK)), "{v}");
}

/// A sandbox serving consent pages (`--consent interactive`) redirects `/oidc/auth` to its
/// own pages: the command must not take that for the callback, but hand the URL to a person
/// and wait for the browser, as `--browser` does.
#[test]
fn connect_on_a_sandbox_with_consent_pages_waits_for_a_person() {
    let env = Env::new();
    env.control("PUT", "/consent", json!({"mode": "interactive"}));
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut cmd = env.command();
    cmd.args(["connect", "--user", &user, "--bank", banks::MOCK, "--timeout", "60", "-o", "json"])
        .env("MONEYHUB_REDIRECT_URI", &redirect)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let (mut url, mut told) = (None, false);
    for line in lines.by_ref() {
        let line = line.expect("line");
        told |= line.contains("consent pages");
        if line.trim_start().starts_with("http") {
            url = Some(line.trim().to_owned());
        }
        if line.contains("Waiting for the browser") {
            break;
        }
    }
    assert!(told, "the command says why it waits for a person");
    let url = url.expect("authorisation URL on stderr");
    // The person: the consent page, then approve with the first account ticked.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = env.base();
    let page = env.rt.block_on(async {
        let auth = http.get(&url).send().await.expect("auth");
        let interaction = auth.headers()["location"].to_str().unwrap().to_owned();
        assert!(!interaction.starts_with(&redirect), "{interaction}");
        let cookie = auth.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let interaction =
            if interaction.starts_with('/') { format!("{base}{interaction}") } else { interaction };
        let approved = http
            .post(&interaction)
            .header("cookie", cookie)
            .header("origin", &base)
            .form(&[("username", "u"), ("password", "p"), ("account", "0"), ("action", "approve")])
            .send()
            .await
            .expect("approve");
        let location = approved.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&redirect), "{location}");
        http.get(&location).send().await.expect("callback").text().await.unwrap()
    });
    assert!(page.contains("You can close this window"), "{page}");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["connectionId"].as_str().is_some_and(|c| c.starts_with(banks::MOCK)), "{v}");
}

#[test]
fn callback_timeout_is_an_authentication_failure() {
    let env = Env::new();
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let redirect = format!("http://127.0.0.1:{}/cb", free_port());
    let mut cmd = env.command();
    cmd.args(["connect", "--user", &user, "--bank", banks::MOCK, "--browser", "--timeout", "1"])
        .env("MONEYHUB_REDIRECT_URI", &redirect);
    let r = crate::support::run_command(cmd);
    r.code(4);
    assert!(r.stderr.contains("did not come back"), "{}", r.stderr);
}

#[test]
fn reauth_refresh_and_reconsent() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::BARCLAYS, banks::AVIVA]);
    let (barclays, aviva) = (&ids[0], &ids[1]);
    // Barclays rejects the credentials at the next sync; Aviva wants MFA.
    env.control(
        "PUT",
        &format!("/connections/{barclays}/script"),
        json!({"outcomes": [], "thereafter": "credentials-error"}),
    );
    env.control(
        "PUT",
        &format!("/connections/{aviva}/script"),
        json!({"outcomes": [], "thereafter": "mfa-required"}),
    );
    env.advance(json!({"days": 1}));
    let short = &barclays[barclays.len() - 36..barclays.len() - 28];
    let out = env.json(&["reauth", "--user", &user, "--connection", short]);
    assert_eq!(out["flow"], "reauth");
    assert_eq!(out["previousConnectionId"], barclays.as_str());
    assert_eq!(out["connectionIdChanged"], false);
    assert_eq!(out["connection"]["status"], "ok");

    let out = env.json(&["refresh", "--user", &user, "--connection", aviva]);
    assert_eq!(out["connection"]["status"], "ok", "{out}");

    // Consent expired yesterday, tppConsent still true: reconsent with a new expiry.
    env.control(
        "PATCH",
        &format!("/connections/{barclays}"),
        json!({"expiresAt": "2025-01-15T09:00:00.000Z"}),
    );
    let out = env.json(&[
        "reconsent",
        "--user",
        &user,
        "--connection",
        barclays,
        "--expires-at",
        "2025-03-01T00:00:00Z",
    ]);
    assert_eq!(out["connection"]["expiresAt"], "2025-03-01T00:00:00.000Z", "{out}");
    assert!(out["connection"]["extendedStatus"].is_null(), "{out}");
    // A reconsent more than 90 days ahead is refused before anything is sent.
    env.run(&[
        "reconsent",
        "--user",
        &user,
        "--connection",
        barclays,
        "--expires-at",
        "2026-01-01T00:00:00Z",
    ])
    .code(2);
    // Without tppConsent (lapsed over 90 days ago) reconsent is impossible: usage error.
    env.control(
        "PATCH",
        &format!("/connections/{barclays}"),
        json!({"expiresAt": "2024-09-01T00:00:00.000Z"}),
    );
    let r = env.run(&["reconsent", "--user", &user, "--connection", barclays]);
    r.code(2);
    assert!(r.stderr.contains("reauth"), "{}", r.stderr);
    // Unknown connection: the API has no such connection (exit 3).
    env.run(&["reauth", "--user", &user, "--connection", "ffffffff"]).code(3);
}
