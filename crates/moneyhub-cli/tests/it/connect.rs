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
pub(crate) struct WaitingConnect {
    child: std::process::Child,
    /// The loopback redirect URI the command listens on.
    pub(crate) redirect: String,
    /// The authorisation URL it printed.
    pub(crate) url: String,
    /// What it printed on stderr up to the "waiting" line.
    said: String,
    /// The rest of stderr, read in the background.
    rest: Option<std::thread::JoinHandle<String>>,
}

/// Starts `connect` with `extra` flags and reads stderr until the command waits for the
/// browser (the URL comes first, then the "waiting" line once the listener is up).
pub(crate) fn connect_waiting_for_the_browser(env: &Env, extra: &[&str]) -> WaitingConnect {
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let mut args = vec!["--user", user.as_str()];
    if !extra.contains(&"--choose") {
        args.extend(["--bank", banks::MOCK]);
    }
    args.extend(extra);
    spawn_connect(env, &args, &redirect)
}

/// Starts `connect ARGS` on `redirect` and reads stderr up to the "waiting" line.
fn spawn_connect(env: &Env, args: &[&str], redirect: &str) -> WaitingConnect {
    let mut cmd = env.command();
    cmd.args(["connect", "--timeout", "60", "-o", "json"])
        .args(args)
        .env("MONEYHUB_REDIRECT_URI", redirect)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (mut url, mut said) = (None, String::new());
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
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
    // Keep draining stderr so that the command never blocks on a full pipe.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    WaitingConnect { child, redirect: redirect.to_owned(), url, said, rest: Some(rest) }
}

impl WaitingConnect {
    /// Waits for the command and checks it connected the mock bank.
    fn connected(self) {
        let v = self.connected_to();
        assert!(v["connectionId"].as_str().is_some_and(|c| c.starts_with(banks::MOCK)), "{v}");
    }

    /// Waits for the command, checks it succeeded and returns its JSON.
    pub(crate) fn connected_to(self) -> serde_json::Value {
        let (code, stdout, stderr) = self.finish();
        assert_eq!(code, Some(0), "{stdout}\n{stderr}");
        serde_json::from_str(&stdout).expect("json")
    }

    /// Waits for the command: its exit code, stdout and the rest of stderr.
    pub(crate) fn finish(mut self) -> (Option<i32>, String, String) {
        let out = self.child.wait_with_output().expect("wait");
        let rest = self.rest.take().map(|r| r.join().expect("stderr reader")).unwrap_or_default();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), rest)
    }
}

/// A reqwest client that does not follow redirects (the tests play the browser step by step).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Plays a person on the consent pages of an interactive sandbox: opens `url`, then posts
/// `form` to the interaction page; returns where the sandbox sent the browser.
fn through_the_consent_pages(env: &Env, url: &str, form: &[(&str, &str)]) -> String {
    let http = no_redirects();
    let base = env.base();
    env.rt.block_on(async {
        let auth = http.get(url).send().await.expect("auth");
        let interaction = auth.headers()["location"].to_str().unwrap().to_owned();
        let cookie = auth.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let interaction =
            if interaction.starts_with('/') { format!("{base}{interaction}") } else { interaction };
        let answered = http
            .post(&interaction)
            .header("cookie", cookie)
            .header("origin", &base)
            .form(form)
            .send()
            .await
            .expect("answer");
        answered.headers()["location"].to_str().unwrap().to_owned()
    })
}

/// The page the command's listener answers at `url`, with its status.
fn callback_page(env: &Env, url: &str) -> (u16, String) {
    env.rt.block_on(async {
        let r = no_redirects().get(url).send().await.expect("callback");
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// Item 4 of issue 23: a second `connect` on the same loopback redirect URI fails before it
/// prints a URL (its callback would reach the first command), and a callback carrying another
/// flow's `state` gets a page saying so without ending the first command's wait.
#[test]
fn two_connects_at_once_do_not_break_each_other() {
    let env = Env::new();
    let first = connect_waiting_for_the_browser(&env, &["--browser"]);
    let user = env.json(&["users", "create"])["userId"].as_str().unwrap().to_owned();
    let mut cmd = env.command();
    cmd.args(["connect", "--user", &user, "--bank", banks::MOCK, "--browser", "--timeout", "5"])
        .env("MONEYHUB_REDIRECT_URI", &first.redirect);
    let second = crate::support::run_command(cmd);
    second.code(2);
    assert!(!second.stderr.contains("/oidc/auth"), "no URL handed out: {}", second.stderr);
    assert!(second.stderr.contains("another"), "says why: {}", second.stderr);
    // A callback of another flow (wrong state) reaches the first command's listener.
    let (status, page) = callback_page(&env, &format!("{}?code=abc&state=not-ours", first.redirect));
    assert_eq!(status, 400);
    assert!(page.contains("belongs to another command"), "{page}");
    // The first command still completes its own flow.
    let location = env.rt.block_on(async {
        let r = no_redirects().get(&first.url).send().await.expect("auth");
        r.headers()["location"].to_str().unwrap().to_owned()
    });
    let (status, page) = callback_page(&env, &location);
    assert_eq!(status, 200);
    assert!(page.contains("Approved") && page.contains("exchanges the code"), "{page}");
    first.connected();
}

/// Item 7 of issue 23: the callback page names the outcome and what happens next (a cancel,
/// the bank's `server_error`), and the command ends with an authentication failure.
#[test]
fn the_callback_page_says_which_outcome_and_what_next() {
    let env = Env::new();
    env.control("PUT", "/consent", json!({"mode": "interactive"}));
    for (form, title, next) in [
        (&[("action", "cancel")][..], "Cancelled", "Run it again"),
        (
            &[("username", "u"), ("password", "server_error"), ("account", "0"), ("action", "approve")][..],
            "had a problem",
            "Try again in a moment",
        ),
    ] {
        let connect = connect_waiting_for_the_browser(&env, &[]);
        let location = through_the_consent_pages(&env, &connect.url, form);
        assert!(location.starts_with(connect.redirect.as_str()), "{location}");
        let (status, page) = callback_page(&env, &location);
        assert_eq!(status, 200);
        assert!(page.contains(title) && page.contains(next), "{page}");
        assert!(page.contains("<style>"), "styled: {page}");
        let (code, _, stderr) = connect.finish();
        assert_eq!(code, Some(4), "{stderr}");
    }
}

/// Item 5 of issue 23: `connect --choose test` opens the bank chooser; the bank the person
/// picks is the connection's.
#[test]
fn connect_choose_opens_the_bank_chooser() {
    let env = Env::new();
    env.control("PUT", "/consent", json!({"mode": "interactive"}));
    let connect = connect_waiting_for_the_browser(&env, &["--choose", "test"]);
    let http = no_redirects();
    let base = env.base();
    let chooser = env.rt.block_on(async {
        let auth = http.get(&connect.url).send().await.expect("auth");
        let interaction = auth.headers()["location"].to_str().unwrap().to_owned();
        let cookie = auth.headers()["set-cookie"].to_str().unwrap().to_owned();
        let page = http
            .get(format!("{base}{interaction}"))
            .header("cookie", cookie.split(';').next().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (page, interaction, cookie)
    });
    assert!(chooser.0.contains("Choose your bank"), "{}", chooser.0);
    let location = env.rt.block_on(async {
        let answered = http
            .post(format!("{base}{}", chooser.1))
            .header("cookie", chooser.2.split(';').next().unwrap())
            .header("origin", &base)
            .form(&[
                ("bank", banks::MODELO),
                ("username", "u"),
                ("password", "p"),
                ("account", "0"),
                ("action", "approve"),
            ])
            .send()
            .await
            .expect("approve");
        answered.headers()["location"].to_str().unwrap().to_owned()
    });
    callback_page(&env, &location);
    let v = connect.connected_to();
    assert_eq!(v["bankId"], banks::MODELO, "{v}");
    assert!(v["connectionId"].as_str().is_some_and(|c| c.starts_with(banks::MODELO)), "{v}");
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
