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

/// A `connect` to the mock bank that completes through the browser and the loopback redirect
/// URI, started in the background.
struct WaitingConnect {
    child: std::process::Child,
    /// The loopback redirect URI the command listens on.
    redirect: String,
    /// The authorisation URL it printed.
    url: String,
    /// What it printed on stderr up to the "waiting" line.
    said: String,
}

/// Starts `connect` with `extra` flags and reads stderr until the command waits for the
/// browser (the URL comes first, then the "waiting" line once the listener is up).
fn connect_waiting_for_the_browser(env: &Env, extra: &[&str]) -> WaitingConnect {
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let mut cmd = env.command();
    cmd.args(["connect", "--user", &user, "--bank", banks::MOCK, "--timeout", "60", "-o", "json"])
        .args(extra)
        .env("MONEYHUB_REDIRECT_URI", &redirect)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (mut url, mut said) = (None, String::new());
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        said.push_str(&line);
        said.push('\n');
        if line.trim_start().starts_with("http") {
            url = Some(line.trim().to_owned());
        }
        if line.contains("Waiting for the browser") {
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("authorisation URL on stderr: {said}"));
    WaitingConnect { child, redirect, url, said }
}

impl WaitingConnect {
    /// Waits for the command and checks it connected the mock bank.
    fn connected(self) {
        let out = self.child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert!(v["connectionId"].as_str().is_some_and(|c| c.starts_with(banks::MOCK)), "{v}");
    }
}

#[test]
fn connect_through_the_loopback_redirect() {
    let env = Env::new();
    let connect = connect_waiting_for_the_browser(&env, &["--browser"]);
    let (url, redirect) = (&connect.url, &connect.redirect);
    // Play the browser: the sandbox consents and redirects to the CLI's listener.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = env.rt.block_on(async {
        let consent = http.get(url).send().await.expect("auth");
        let location = consent.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(redirect.as_str()), "{location}");
        http.get(&location).send().await.expect("callback").text().await.unwrap()
    });
    assert!(page.contains("You can close this window"), "{page}");
    connect.connected();
}

/// A sandbox serving consent pages (`--consent interactive`) redirects `/oidc/auth` to its
/// own pages: the command must not take that for the callback, but hand the URL to a person
/// and wait for the browser, as `--browser` does.
#[test]
fn connect_on_a_sandbox_with_consent_pages_waits_for_a_person() {
    let env = Env::new();
    env.control("PUT", "/consent", json!({"mode": "interactive"}));
    let connect = connect_waiting_for_the_browser(&env, &[]);
    assert!(connect.said.contains("consent pages"), "the command says why it waits: {}", connect.said);
    let (url, redirect) = (&connect.url, &connect.redirect);
    // The person: the consent page, then approve with the first account ticked.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = env.base();
    let page = env.rt.block_on(async {
        let auth = http.get(url).send().await.expect("auth");
        let interaction = auth.headers()["location"].to_str().unwrap().to_owned();
        assert!(!interaction.starts_with(redirect.as_str()), "{interaction}");
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
        assert!(location.starts_with(redirect.as_str()), "{location}");
        http.get(&location).send().await.expect("callback").text().await.unwrap()
    });
    assert!(page.contains("You can close this window"), "{page}");
    connect.connected();
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
