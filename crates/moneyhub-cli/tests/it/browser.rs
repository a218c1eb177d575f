//! `moneyhub connect` with a person in headless Chromium (issue 23, items 4, 5 and 7): the
//! real binary waits on its loopback redirect URI while the browser goes through the
//! sandbox's consent pages and lands on the command's own callback page.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `CHROME_BIN` / `CHROMEDRIVER`), like
//! the client's browser tests (`crates/moneyhub/tests/it/browser.rs`); without them the test
//! prints why and passes without running. Screenshots go to the test output directory
//! (`target/tmp/cli-browser-screenshots/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::connect::connect_waiting_for_the_browser;
use crate::support::Env;

fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    path.is_file().then_some(path)
}

/// chromedriver, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium session, or `None` (the reason printed).
async fn browser() -> Option<(Driver, Client)> {
    let (Some(chrome), Some(chromedriver)) =
        (tool("CHROME_BIN", "/usr/bin/chromium"), tool("CHROMEDRIVER", "/usr/bin/chromedriver"))
    else {
        eprintln!("skipping the CLI browser test: chromium and chromedriver not found");
        return None;
    };
    let port = crate::support::free_port();
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reqwest::get(format!("{url}/status")).await.is_ok_and(|r| r.status().is_success()) {
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
    let caps = json!({"goog:chromeOptions": {"binary": chrome, "args": args}});
    let serde_json::Value::Object(caps) = caps else { unreachable!("a JSON object") };
    let client =
        ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&url).await.expect("session");
    Some((driver, client))
}

async fn shot(c: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), c.screenshot().await.unwrap()).unwrap();
}

/// Clicks `id` and waits until the next page has replaced this one.
async fn follow(c: &Client, id: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}")).click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !old.tag_name().await.is_err_and(|e| e.is_stale_element_reference()) {
        assert!(Instant::now() < deadline, "#{id} led nowhere within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

#[test]
fn a_person_connects_from_the_cli_through_the_chooser_and_sees_each_outcome() {
    let env = Env::new();
    env.control("PUT", "/consent", json!({"mode": "interactive"}));
    let Some((_driver, c)) = env.rt.block_on(browser()) else { return };
    // `--choose test`: the chooser, the mock bank, approve; the command's page says so.
    let connect = connect_waiting_for_the_browser(&env, &["--choose", "test"]);
    let redirect = connect.redirect.clone();
    env.rt.block_on(async {
        c.goto(&connect.url).await.unwrap();
        assert_eq!(text(&c, "h1").await, "Choose your bank");
        follow(&c, "bank-moneyhub-mock").await;
        c.find(Locator::Id("username")).await.unwrap().send_keys("u").await.unwrap();
        c.find(Locator::Id("password")).await.unwrap().send_keys("p").await.unwrap();
        follow(&c, "approve").await;
        assert!(c.current_url().await.unwrap().as_str().starts_with(&redirect));
        assert_eq!(text(&c, "h1").await, "Approved");
        assert!(text(&c, "#outcome").await.contains("You can close this window"));
        shot(&c, "callback-approved").await;
    });
    let v = connect.connected_to();
    assert!(v["connectionId"].as_str().is_some_and(|id| id.starts_with(crate::support::banks::MOCK)), "{v}");

    // Another flow's callback reaches a waiting command: a page says so, the wait goes on;
    // then the person cancels and the page says what that means.
    let connect = connect_waiting_for_the_browser(&env, &[]);
    let redirect = connect.redirect.clone();
    env.rt.block_on(async {
        c.goto(&format!("{redirect}?code=stolen&state=not-this-one")).await.unwrap();
        assert_eq!(text(&c, "h1").await, "This sign-in belongs to another command");
        shot(&c, "callback-foreign-state").await;
        c.goto(&connect.url).await.unwrap();
        follow(&c, "cancel").await;
        assert_eq!(text(&c, "h1").await, "Cancelled");
        assert!(text(&c, "#outcome").await.contains("Run it again"));
        shot(&c, "callback-cancelled").await;
        c.close().await.unwrap();
    });
    let (code, _, stderr) = connect.finish();
    assert_eq!(code, Some(4), "a cancel is an authentication failure: {stderr}");
    assert!(stderr.contains("another sign-in's state"), "the foreign callback was noticed: {stderr}");
}
