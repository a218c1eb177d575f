//! The sandbox's consent pages and dashboard in a real headless Chromium, driven over
//! WebDriver (`fantoccini`, plain HTTP to a local chromedriver: no TLS), with the client's own
//! code exchange at the end.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`,
//! or `CHROME_BIN` / `CHROMEDRIVER`); without them each test prints why and passes without
//! running. Screenshots of every page go to `target/tmp/browser-screenshots/` (the test
//! binary's `CARGO_TARGET_TMPDIR`), never into the repository.
//!
//! Why fantoccini: the maintained WebDriver client with the leanest tree (hyper, already ours).
//! thirtyfour was tried first and dropped: it turns on serde_json's `preserve_order`, and
//! feature unification then changes the key order of every JSON object the client's own
//! tests serialise (`health::advice` tests failed). fantoccini's cost, dev-only: the
//! `webdriver` crate brings second majors of `http` (0.2), `thiserror` (1) and `cookie`. A
//! DevTools client (chromiumoxide, headless_chrome) would add a WebSocket stack and thousands
//! of generated protocol types to compile.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as Days;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use moneyhub::{AccountFilter, CallbackParams, ConnectOptions, PageOptions, RenewOptions};
use moneyhub_sandbox::{ClockMode, ConsentMode, Sandbox, SandboxConfig};

use crate::support::{bank, builder, sandbox_with, t0, user_with, AVIVA_BANK, MOCK_BANK, MODELO_BANK};

/// One browser at a time: the machine's cores are shared with the rest of the tests.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    path.is_file().then_some(path)
}

/// A chromedriver process and a headless Chromium session; both end on drop.
struct Browser {
    driver: Option<Client>,
    chromedriver: Child,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

impl Browser {
    /// `None` (with the reason printed) when Chromium or its driver is not installed.
    async fn start(test: &str) -> Option<Browser> {
        let (Some(chrome), Some(chromedriver)) =
            (tool("CHROME_BIN", "/usr/bin/chromium"), tool("CHROMEDRIVER", "/usr/bin/chromedriver"))
        else {
            crate::support::skip(
                "chromium",
                test,
                "chromium and chromedriver not found (apt-get install chromium chromium-driver, or \
                 set CHROME_BIN and CHROMEDRIVER)",
            );
            return None;
        };
        let turn = ONE_BROWSER.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let chromedriver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut browser = Browser { driver: None, chromedriver, _turn: turn };
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver answers /status once it listens; wait for that (bounded), not for a
        // fixed time.
        let deadline = Instant::now() + Duration::from_secs(20);
        let http = reqwest::Client::new();
        loop {
            let ready = http.get(format!("{url}/status")).send().await.is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1000,800",
        ];
        let caps = serde_json::json!({"goog:chromeOptions": {"binary": chrome, "args": args}});
        let serde_json::Value::Object(caps) = caps else { unreachable!("a JSON object") };
        let client = ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&url).await;
        browser.driver = Some(client.expect("a Chromium session"));
        Some(browser)
    }

    fn d(&self) -> &Client {
        self.driver.as_ref().unwrap()
    }

    /// Saves a screenshot of the current page as `name.png` under the test output.
    async fn shot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.d().screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn click(&self, id: &str) {
        self.d().find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}")).click().await.unwrap();
    }

    /// Clicks a link or a form's button and waits until the page it leads to has replaced
    /// this one (the old document's root gone stale), however long the redirects take.
    async fn follow(&self, id: &str) {
        let old = self.d().find(Locator::Css("html")).await.unwrap();
        self.click(id).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match old.tag_name().await {
                Err(e) if e.is_stale_element_reference() => break,
                _ => assert!(Instant::now() < deadline, "#{id} led nowhere within 20 s"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn type_in(&self, id: &str, text: &str) {
        self.d().find(Locator::Id(id)).await.unwrap().send_keys(text).await.unwrap();
    }

    async fn text(&self, id: &str) -> String {
        self.d().find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}")).text().await.unwrap()
    }

    /// Resizes the window (CSS pixels) and returns the page's width: the document's
    /// scrolling width, which exceeds the window when something spills out sideways.
    /// The elements that stick out on the right are listed (to say what spills).
    async fn width_at(&self, width: u32) -> (i64, i64, String) {
        self.d().set_window_size(width, 900).await.unwrap();
        let v = self
            .d()
            .execute(
                "const w = document.documentElement.clientWidth;\
                 const out = [...document.querySelectorAll('body *')]\
                   .filter(e => e.getBoundingClientRect().right > w + 0.5 && !e.closest('.tablewrap,.sr'))\
                   .slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));\
                 return [document.documentElement.scrollWidth, w, out.join('; ')]",
                vec![],
            )
            .await
            .unwrap();
        (v[0].as_i64().unwrap(), v[1].as_i64().unwrap(), v[2].as_str().unwrap_or_default().to_string())
    }

    /// Runs axe-core (WCAG 2.0/2.1 A and AA rules) on the current page; the violations, each
    /// as `id: help (nodes)`. `None` (the reason printed) when axe-core cannot be installed.
    ///
    /// The page's Content-Security-Policy (`default-src 'none'`, no script allowed) does not
    /// apply here: WebDriver's Execute Script runs through the browser's automation channel,
    /// not as a page script (checked: the page itself runs no script, see
    /// `the_pages_run_no_script_of_their_own`).
    async fn axe(&self) -> Option<Vec<String>> {
        let source = match axe_source() {
            Ok(s) => s,
            Err(why) => {
                eprintln!("axe audit skipped: {why}");
                return None;
            }
        };
        let loaded =
            self.d().execute(&format!("{source}\n;return typeof window.axe;"), vec![]).await.unwrap();
        assert_eq!(loaded, "object", "axe-core loaded into the page");
        let script = "const done = arguments[arguments.length - 1];\
            axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
            .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' (' +\
                v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(', ') + ')')))\
            .catch(e => done(['axe failed: ' + e]));";
        let v = self.d().execute_async(script, vec![]).await.unwrap();
        Some(v.as_array().unwrap().iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
    }

    /// Asserts that axe finds nothing on the current page (`what` names it).
    async fn accessible(&self, what: &str) {
        if let Some(violations) = self.axe().await {
            assert!(violations.is_empty(), "{what}: axe found {violations:#?}");
        }
    }

    async fn quit(mut self) {
        if let Some(d) = self.driver.take() {
            d.close().await.unwrap();
        }
    }
}

/// axe-core's `axe.min.js`, installed once with npm into the test output directory (like the
/// Node conformance test's official client), at a pinned version.
fn axe_source() -> Result<String, String> {
    static SOURCE: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    SOURCE
        .get_or_init(|| {
            const VERSION: &str = "4.14.1";
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("axe");
            let file = dir.join("node_modules/axe-core/axe.min.js");
            let installed = dir.join("node_modules/axe-core/package.json");
            let right_version = std::fs::read_to_string(&installed)
                .is_ok_and(|p| p.contains(&format!("\"version\": \"{VERSION}\"")));
            if !right_version {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let out = Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--no-save"])
                    .arg(format!("axe-core@{VERSION}"))
                    .current_dir(&dir)
                    .output()
                    .map_err(|e| format!("npm not usable ({e}): install node and npm"))?;
                if !out.status.success() {
                    return Err(format!(
                        "npm install axe-core failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))
        })
        .clone()
}

async fn interactive() -> Arc<Sandbox> {
    sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        consent: ConsentMode::Interactive,
        ..Default::default()
    })
    .await
}

/// A loopback redirect URI on the sandbox itself, so the browser's last page loads (a 404
/// JSON body) and its URL is the callback.
fn callback(sb: &Sandbox) -> String {
    format!("{}/callback", sb.base_url())
}

#[tokio::test]
async fn a_person_picks_a_test_bank_shares_two_accounts_and_the_client_gets_exactly_those() {
    let Some(b) = Browser::start("chooser").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).redirect_uri(callback(&sb)).build().unwrap();
    let user = client.users().create(Some("browser")).await.unwrap();
    let request = client
        .auth()
        .connect(ConnectOptions::new(bank("test")).user(user.user_id.clone()).state("browser-state"))
        .await
        .unwrap();
    b.d().goto(request.url.as_str()).await.unwrap();
    b.shot("consent-chooser").await;
    b.follow("bank-moneyhub-mock").await;
    b.type_in("username", "user_good").await;
    b.type_in("password", "pass_good").await;
    // Savings (the second account) stays unshared.
    b.click("account-1").await;
    assert!(!b.d().find(Locator::Id("account-1")).await.unwrap().is_selected().await.unwrap());
    b.shot("consent-bank").await;
    b.follow("approve").await;
    let landed = b.d().current_url().await.unwrap();
    assert!(landed.as_str().starts_with(&callback(&sb)), "{landed}");
    let params = CallbackParams::from_url(landed.as_str()).unwrap();
    assert_eq!(params.state.as_deref(), Some("browser-state"));
    let connected = client.auth().exchange_code(&request, params).await.unwrap();
    let accounts = client
        .accounts()
        .list(&user.user_id, &AccountFilter::new().connection(connected.connection_id.clone()))
        .await
        .unwrap();
    let mut kinds: Vec<String> = accounts
        .iter()
        .map(|a| serde_json::to_value(&a.kind).unwrap().as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["card", "cash:current"]);
    b.quit().await;
}

#[tokio::test]
async fn cancel_reaches_the_redirect_uri_as_access_denied_with_the_state() {
    let Some(b) = Browser::start("cancel").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).redirect_uri(callback(&sb)).build().unwrap();
    let user = client.users().create(None).await.unwrap();
    let request = client
        .auth()
        .connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id).state("cancel-state"))
        .await
        .unwrap();
    b.d().goto(request.url.as_str()).await.unwrap();
    b.follow("cancel").await;
    let landed = b.d().current_url().await.unwrap();
    assert!(landed.as_str().starts_with(&callback(&sb)), "{landed}");
    let params = CallbackParams::from_url(landed.as_str()).unwrap();
    assert_eq!(params.state.as_deref(), Some("cancel-state"));
    assert_eq!(params.error.as_deref(), Some("access_denied"));
    assert!(params.code.is_none());
    b.quit().await;
}

#[tokio::test]
async fn a_reconsent_page_renews_the_expiry() {
    let Some(b) = Browser::start("reconsent").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).redirect_uri(callback(&sb)).build().unwrap();
    let (user, ids) = user_with(&sb, &[MOCK_BANK]).await;
    let new_expiry = sb.now() + Days::days(80);
    let request = client
        .auth()
        .reconsent(RenewOptions::new(user.clone(), ids[0].clone()).expires_at(new_expiry))
        .await
        .unwrap();
    b.d().goto(request.url.as_str()).await.unwrap();
    assert_eq!(b.text("expiry").await, new_expiry.format("%Y-%m-%d %H:%M UTC").to_string());
    b.shot("consent-reconsent").await;
    b.follow("approve").await;
    let landed = b.d().current_url().await.unwrap();
    let done = client.auth().exchange_code(&request, landed.as_str()).await.unwrap();
    assert_eq!(done.connection_id, ids[0]);
    let conn = client.connections().get(&user, &ids[0]).await.unwrap();
    assert_eq!(conn.expires_at, Some(new_expiry));
    b.quit().await;
}

#[tokio::test]
async fn the_dashboard_advances_the_clock_and_fails_the_next_sync() {
    let Some(b) = Browser::start("dashboard").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).build().unwrap();
    let (user, ids) = user_with(&sb, &[MOCK_BANK]).await;
    let short = &ids[0].as_ref().split(':').nth(1).unwrap()[..8];
    b.d().goto(&format!("{}/__sandbox/ui", sb.base_url())).await.unwrap();
    let first_sync = b.text(&format!("last-sync-{short}")).await;
    assert!(first_sync.contains("2025-01-15T10:00:00"), "{first_sync}");
    // "error" is the first failure offered.
    b.follow(&format!("fail-{short}")).await;
    assert!(b.text("done").await.contains("will end in error"));
    let next = b.text(&format!("next-{short}")).await;
    assert!(next.ends_with(": error, then success"), "the scripted failure shows: {next}");
    b.follow("clock-day").await;
    assert!(b.text("clock").await.starts_with("2025-01-16T10:00:00"));
    // The day's automatic syncs (14:00, 18:00, 22:00, then 06:00 and 10:00) appear after the
    // connection's first one, the first of
    // them failed as scripted, the later ones succeeded.
    let status = b.text(&format!("status-{short}")).await;
    assert!(status.contains("6 syncs"), "{status}");
    assert!(status.contains("2025-01-15T14:00:00.000Z error"), "{status}");
    assert!(status.contains("2025-01-16T10:00:00.000Z success"), "{status}");
    let next = b.text(&format!("next-{short}")).await;
    assert!(next.ends_with(": success"), "the scripted failure was used: {next}");
    b.shot("dashboard").await;
    // The same syncs through the client.
    let syncs = client.connections().syncs(&user, &ids[0], PageOptions::default()).await.unwrap();
    assert_eq!(syncs.items.len(), 6);
    b.quit().await;
}

#[tokio::test]
async fn a_hostile_state_is_shown_as_text() {
    let Some(b) = Browser::start("hostile state").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).redirect_uri(callback(&sb)).build().unwrap();
    let hostile = "\"><script>alert(1)</script>";
    let request = client.auth().connect(ConnectOptions::new(bank("test")).state(hostile)).await.unwrap();
    b.d().goto(request.url.as_str()).await.unwrap();
    assert_eq!(b.text("state").await, hostile);
    assert!(b.d().find_all(Locator::Css("script")).await.unwrap().is_empty());
    assert!(b.d().get_alert_text().await.is_err(), "no alert opened");
    b.shot("consent-hostile-state").await;
    b.quit().await;
}

/// The id the dashboard gives a connection's elements (the first 8 characters of its uuid).
fn short(id: &moneyhub::ConnectionId) -> String {
    id.as_ref().split(':').nth(1).unwrap()[..8].to_string()
}

fn dashboard(sb: &Sandbox) -> String {
    format!("{}/__sandbox/ui", sb.base_url())
}

/// Items 9 and 13 of issue 23: the dashboard fits 1,280 and 375 px without spilling sideways,
/// leaves its own traffic out of the request log, has one `h1`, and passes the axe audit
/// (labels, contrast, ...), as do the consent pages (chooser with a withdrawn bank, bank page,
/// code page, a used link).
#[tokio::test]
async fn the_pages_fit_narrow_and_wide_screens_and_pass_an_accessibility_audit() {
    let Some(b) = Browser::start("audit").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).redirect_uri(callback(&sb)).build().unwrap();
    let (_user, ids) = user_with(&sb, &[MOCK_BANK, AVIVA_BANK, MODELO_BANK]).await;
    // Long requests in the log, as a program makes them.
    let long = format!("{}/v3/transactions?{}", sb.base_url(), "startDate=2024-01-01&limit=1000&".repeat(8));
    let _ = reqwest::get(&long).await;
    b.d().goto(&dashboard(&sb)).await.unwrap();
    // The dashboard's own requests (this page, the redirects after its forms) stay out.
    b.follow(&format!("fail-{}", short(&ids[0]))).await;
    b.follow("clock-hour").await;
    let requests = b.d().find(Locator::Css("section:last-of-type")).await.unwrap().text().await.unwrap();
    assert!(requests.contains("/v3/transactions"), "{requests}");
    assert!(!requests.contains("/__sandbox/ui"), "the dashboard's own traffic is left out: {requests}");
    // The audit finds what it should: an unlabelled select like the issue's.
    let old = b.d().current_url().await.unwrap();
    b.d()
        .goto(
            "data:text/html,<!DOCTYPE html><html lang=en><title>t</title><select><option>a</option></select>",
        )
        .await
        .unwrap();
    if let Some(found) = b.axe().await {
        assert!(
            found.iter().any(|v| v.starts_with("select-name")),
            "axe sees an unlabelled select: {found:?}"
        );
    }
    b.d().goto(old.as_str()).await.unwrap();
    let h1 = b.d().find_all(Locator::Css("h1")).await.unwrap();
    assert_eq!(h1.len(), 1, "one h1");
    let (scroll, inner, wide) = b.width_at(1280).await;
    assert!(scroll <= inner, "no horizontal overflow at 1280: {scroll} > {inner}: {wide}");
    b.shot("dashboard-1280").await;
    b.accessible("dashboard").await;
    let (scroll, inner, wide) = b.width_at(375).await;
    assert!(scroll <= inner, "no horizontal overflow at 375: {scroll} > {inner}: {wide}");
    b.shot("dashboard-375").await;
    b.accessible("dashboard at 375 px").await;
    b.d().set_window_size(1000, 800).await.unwrap();
    // The consent pages: the chooser with a withdrawn bank, the bank's page, the code page.
    kit(&sb).remove_provider(MODELO_BANK).await.unwrap();
    let request = client.auth().connect(ConnectOptions::new(bank("test"))).await.unwrap();
    b.d().goto(request.url.as_str()).await.unwrap();
    b.accessible("chooser").await;
    b.shot("consent-chooser").await;
    b.follow("bank-moneyhub-mock").await;
    b.accessible("bank page").await;
    b.type_in("username", "u").await;
    b.type_in("password", "mfa").await;
    b.follow("approve").await;
    b.follow("approve").await;
    assert_eq!(b.d().active_element().await.unwrap().attr("id").await.unwrap().as_deref(), Some("error"));
    assert_eq!(b.text("error").await, "Enter the code the bank sent you.");
    b.accessible("code page with an error").await;
    b.quit().await;
}

fn kit(sb: &Sandbox) -> moneyhub_sandbox::kit::Control {
    crate::support::kit(sb)
}

/// Sets a form field's value the way a person's picker would (date pickers and selects are
/// not typed into reliably over WebDriver).
async fn set_value(b: &Browser, id: &str, value: &str) {
    b.d()
        .execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            vec![serde_json::json!(id), serde_json::json!(value)],
        )
        .await
        .unwrap();
}

/// Items 10 and 11 of issue 23: a scenario loaded from the dashboard shows each connection's
/// scripted next outcome before the clock moves, and "Require MFA" names the remedy the
/// doctor gives: the label is checked against `moneyhub::health::advise` on the same
/// connections once the MFA is due.
#[tokio::test]
async fn scripted_outcomes_show_and_the_labels_agree_with_the_doctor() {
    let Some(b) = Browser::start("scripted").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).build().unwrap();
    b.d().goto(&dashboard(&sb)).await.unwrap();
    let scenario = "[[users]]\nclientUserId = \"newcomer\"\nconnections = [\n  { bank = \"Moneyhub Open Banking Mock\" },\n  \
                    { bank = \"NatWest\", state = \"failing\" },\n  { bank = \"Aviva\", state = \"mfa-due\" },\n  \
                    { bank = \"Barclays\", state = \"credentials-rejected\" },\n]\n";
    b.type_in("scenario-text", scenario).await;
    b.follow("scenario-load").await;
    assert!(
        b.text("done").await.contains("Scenario loaded: 1 users, 4 connections"),
        "{}",
        b.text("done").await
    );
    let mut next = Vec::new();
    for e in b.d().find_all(Locator::Css("[id^=next-]")).await.unwrap() {
        next.push(e.text().await.unwrap());
    }
    next.sort();
    assert_eq!(next.len(), 4, "{next:?}");
    for wanted in
        [": error (and every sync after it)", ": mfa-required (and every", ": credentials-error (and every"]
    {
        assert!(next.iter().any(|n| n.contains(wanted)), "{wanted}: {next:?}");
    }
    assert!(next.iter().any(|n| n.ends_with(": success")), "{next:?}");
    // The connections, as the README shows them.
    b.d().set_window_size(1280, 900).await.unwrap();
    b.d().execute("document.querySelectorAll('h2')[2].scrollIntoView()", vec![]).await.unwrap();
    b.shot("dashboard-scripted").await;
    b.d().set_window_size(1000, 800).await.unwrap();

    // An open-banking (test) bank and a legacy one: the label and the doctor agree.
    let (user, ids) = user_with(&sb, &[MOCK_BANK, AVIVA_BANK]).await;
    b.d().goto(&dashboard(&sb)).await.unwrap();
    let mut said = Vec::new();
    for id in &ids {
        let label = b.text(&format!("mfa-{}", short(id))).await;
        b.follow(&format!("mfa-{}", short(id))).await;
        let done = b.text("done").await;
        let remedy = if done.contains("advises a reauth") {
            "reauth"
        } else if done.contains("advises a refresh") {
            "refresh"
        } else {
            panic!("the banner names the doctor's remedy: {done}")
        };
        assert!(label.contains(&format!("then {remedy}")), "{label} / {done}");
        said.push(remedy);
    }
    assert_eq!(said, ["reauth", "refresh"], "open banking reauths, legacy refreshes");
    b.follow("clock-day").await;
    let now = sb.now();
    let listed = client.connections().list(&user).await.unwrap();
    for (id, remedy) in ids.iter().zip(said) {
        let c = listed.iter().find(|c| &c.id == id).unwrap();
        let advice = moneyhub::health::advise(c, &moneyhub::health::AdviceContext::new(now));
        let action = serde_json::to_value(advice.action).unwrap();
        assert_eq!(action.as_str(), Some(remedy), "{id}: the dashboard said {remedy}, the doctor {advice:?}");
    }
    b.quit().await;
}

/// A webhook receiver that answers 200 and counts what it got.
async fn receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

/// Item 12 of issue 23: errors have a way back (and are announced and focused), deleting
/// asks first, the banner is prose, webhooks say when they are off; from the page a person
/// sets the webhook target, sends a test event, resends a delivery, moves the clock to a
/// date, switches the consent mode and resets the sandbox.
#[tokio::test]
async fn the_dashboard_asks_before_deleting_and_drives_webhooks_clock_consent_and_reset() {
    let Some(b) = Browser::start("dashboard actions").await else { return };
    let sb = interactive().await;
    let (_user, ids) = user_with(&sb, &[MOCK_BANK]).await;
    let short = short(&ids[0]);
    b.d().goto(&dashboard(&sb)).await.unwrap();
    assert!(b.text("webhook-target").await.contains("Webhooks are off"));
    assert!(b.text("deliveries-none").await.contains("webhooks are off"));
    // A date in the past: an error page, announced and focused, with a way back.
    set_value(&b, "clock-at", "2024-12-01T10:00").await;
    b.follow("clock-to").await;
    assert!(b.text("error").await.contains("only moves forwards"));
    let focused = b.d().active_element().await.unwrap().attr("id").await.unwrap();
    assert_eq!(focused.as_deref(), Some("error"));
    assert_eq!(
        b.d().find(Locator::Id("error")).await.unwrap().attr("role").await.unwrap().as_deref(),
        Some("alert")
    );
    b.accessible("error page").await;
    b.shot("dashboard-error").await;
    b.follow("back").await;
    set_value(&b, "clock-at", "2025-01-20T12:00").await;
    b.follow("clock-to").await;
    assert!(b.text("clock").await.starts_with("2025-01-20T12:00:00"), "{}", b.text("clock").await);
    let done = b.text("done").await;
    assert!(done.contains("Ran ") && !done.contains('{'), "prose, not JSON: {done}");
    // Webhooks: a target, a test event, a resend.
    let (url, hits) = receiver().await;
    b.type_in("webhook-url", &url).await;
    b.follow("webhook-set").await;
    assert!(b.text("webhook-target").await.contains(&url));
    b.follow("webhook-test").await;
    assert!(
        b.text("done").await.contains("was delivered: the target answered 200"),
        "{}",
        b.text("done").await
    );
    let resend =
        b.d().find(Locator::Css("button[id^=resend-]")).await.unwrap().attr("id").await.unwrap().unwrap();
    b.follow(&resend).await;
    assert!(b.text("done").await.contains("sent again, was delivered"), "{}", b.text("done").await);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Delete asks first; going back keeps the connection.
    b.follow(&format!("delete-{short}")).await;
    b.accessible("confirmation page").await;
    b.shot("dashboard-confirm").await;
    b.follow("back").await;
    assert!(b.d().find(Locator::Id(&format!("conn-{short}"))).await.is_ok(), "still there");
    b.follow(&format!("delete-{short}")).await;
    b.follow("confirm").await;
    assert!(b.text("done").await.contains("deleted"));
    assert!(b.d().find(Locator::Id(&format!("conn-{short}"))).await.is_err(), "gone");
    // Consent mode.
    set_value(&b, "consent-mode", "instant").await;
    b.follow("consent-set").await;
    assert!(b.text("done").await.contains("Consent is now instant"));
    let mode =
        reqwest::get(format!("{}/__sandbox/consent", sb.base_url())).await.unwrap().text().await.unwrap();
    assert!(mode.contains("instant"), "{mode}");
    // Reset, after a confirmation.
    b.follow("reset").await;
    b.follow("confirm").await;
    assert!(b.text("done").await.contains("starting state"));
    assert!(b.text("clock").await.starts_with("2025-01-15T10:00:00"), "{}", b.text("clock").await);
    b.quit().await;
}

/// Items 6 and 8 of issue 23 in the browser: the login page lists the magic passwords,
/// `mfa_twice` asks two codes, and reopening the used link shows a page that says so.
#[tokio::test]
async fn a_reopened_link_says_what_happened_and_mfa_twice_asks_two_codes() {
    let Some(b) = Browser::start("reopened link").await else { return };
    let sb = interactive().await;
    let client = builder(&sb).redirect_uri(callback(&sb)).build().unwrap();
    let user = client.users().create(None).await.unwrap();
    let request =
        client.auth().connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone())).await.unwrap();
    b.d().goto(request.url.as_str()).await.unwrap();
    let magic = b.text("magic").await;
    assert!(magic.contains("Sandbox"), "{magic}");
    b.click("magic").await;
    let listed = b.text("magic").await;
    for p in ["credentials_error", "mfa_required", "sync_error", "provider_outage", "resync", "mfa_twice"] {
        assert!(listed.contains(p), "{p}: {listed}");
    }
    b.shot("consent-magic-passwords").await;
    // The same link again (a reload, a second tab).
    b.d().goto(request.url.as_str()).await.unwrap();
    let h1 = b.d().find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(h1, "This sign-in link has been used already");
    assert!(b.text("error").await.contains("works once"));
    b.accessible("used link").await;
    b.shot("consent-used-link").await;
    // A fresh link, and two codes.
    let request =
        client.auth().connect(ConnectOptions::new(bank(MOCK_BANK)).user(user.user_id.clone())).await.unwrap();
    b.d().goto(request.url.as_str()).await.unwrap();
    b.type_in("username", "u").await;
    b.type_in("password", "mfa_twice").await;
    b.follow("approve").await;
    assert!(b.text("mfa-step").await.starts_with("Step 1 of 2"));
    b.type_in("code", "123456").await;
    b.follow("approve").await;
    assert!(b.text("mfa-step").await.starts_with("Step 2 of 2"));
    b.accessible("second code").await;
    b.type_in("code", "654321").await;
    b.follow("approve").await;
    let landed = b.d().current_url().await.unwrap();
    let connected = client.auth().exchange_code(&request, landed.as_str()).await.unwrap();
    assert!(connected.connection_id.as_ref().starts_with(MOCK_BANK));
    b.quit().await;
}
