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

use crate::support::{bank, builder, sandbox_with, t0, user_with, MOCK_BANK};

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

    async fn quit(mut self) {
        if let Some(d) = self.driver.take() {
            d.close().await.unwrap();
        }
    }
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
    b.follow("clock-day").await;
    assert!(b.text("clock").await.starts_with("2025-01-16T10:00:00"));
    // The day's automatic syncs (14:00, 18:00, 22:00, then 06:00 and 10:00) appear after the
    // connection's first one, the first of
    // them failed as scripted, the later ones succeeded.
    let status = b.text(&format!("status-{short}")).await;
    assert!(status.contains("6 syncs"), "{status}");
    assert!(status.contains("2025-01-15T14:00:00.000Z error"), "{status}");
    assert!(status.contains("2025-01-16T10:00:00.000Z success"), "{status}");
    assert!(!status.contains("next: error"), "the scripted failure was used: {status}");
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
