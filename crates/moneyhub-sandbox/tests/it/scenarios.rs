//! `POST /__sandbox/reset` and scenario files, through the typed control client.

use chrono::Duration;
use moneyhub_sandbox::kit::{Advance, Control, FaultSpec, Outcome, Script};
use moneyhub_sandbox::scenario::{ConnectionState, Scenario, ScenarioFormat};
use moneyhub_sandbox::{ClockMode, SandboxConfig};

use crate::support::{connection, sandbox, sandbox_with, t0};
use reqwest::{Method, StatusCode};

const TEN: &str = include_str!("../../../../examples/scenarios/ten-connections.toml");

#[tokio::test]
async fn reset_returns_clock_users_faults_and_deliveries_to_the_seeded_state() {
    let sb = sandbox().await;
    let control = Control::of(&sb);
    let first = control.create_user(&["1ffe704d39629a929c8e293880fb449a"]).await.unwrap();
    control.advance(Advance::days(2)).await.unwrap();
    control.add_fault(&FaultSpec { path: "/v3/accounts".into(), ..Default::default() }).await.unwrap();
    control.freeze().await.unwrap();
    assert!(control.stats().await.unwrap().users > 0);

    let clock = control.reset().await.unwrap();
    assert_eq!(clock.now, t0());
    assert!(clock.frozen);
    let stats = control.stats().await.unwrap();
    assert_eq!((stats.users, stats.connections, stats.accounts), (0, 0, 0));
    assert!(control.faults().await.unwrap().is_empty());
    assert_eq!(control.deliveries(0, 10).await.unwrap().data.len(), 0);
    // The id sequence restarts too: the same set-up gives the same ids as before.
    let again = control.create_user(&["1ffe704d39629a929c8e293880fb449a"]).await.unwrap();
    assert_eq!(again, first);
    let rule =
        control.add_fault(&FaultSpec { path: "/v3/accounts".into(), ..Default::default() }).await.unwrap();
    assert_eq!(control.faults().await.unwrap()[0].id, rule.id);
}

#[tokio::test]
async fn the_ten_connection_scenario_puts_each_connection_in_its_state() {
    let sb = sandbox().await;
    let control = Control::of(&sb);
    let loaded = control.load_scenario(TEN, "ten-connections.toml", true).await.unwrap();
    assert_eq!(loaded.now, "2025-01-15T09:00:00.000Z");
    assert!(loaded.frozen && loaded.reset);
    let user = &loaded.users[0];
    assert_eq!((user.client_user_id.as_str(), user.existed), ("demo-customer-42", false));
    assert_eq!(user.connections.len(), 10);
    let id = |key: &str| user.connections.iter().find(|c| c.key == key).unwrap().connection_id.clone();
    let now = sb.now();

    let natwest = control.connection(&id("natwest")).await.unwrap();
    assert_eq!(natwest.thereafter, Some(Outcome::Error));
    assert_eq!(control.connection(&id("aviva")).await.unwrap().thereafter, Some(Outcome::MfaRequired));
    assert_eq!(
        control.connection(&id("barclays")).await.unwrap().thereafter,
        Some(Outcome::CredentialsError)
    );
    assert_eq!(control.connection(&id("mock")).await.unwrap().thereafter, None);
    let hsbc = connection(&sb, &user.user_id, &id("hsbc")).await;
    assert_eq!(hsbc["expiresAt"], moneyhub_sandbox::kit::iso(now + Duration::days(1)));
    let monzo = connection(&sb, &user.user_id, &id("monzo")).await;
    assert_eq!(monzo["tppConsent"], false, "{monzo}");
    let northwind = connection(&sb, &user.user_id, &id("northwind")).await;
    assert_eq!(northwind["status"], "never", "{northwind}");

    // Loaded again on top (no reset): the same user and connections are reused.
    let again = control.load_scenario(TEN, "ten-connections.toml", false).await.unwrap();
    assert!(again.users[0].existed);
    assert_eq!(again.users[0].user_id, user.user_id);
    assert!(again.users[0].connections.iter().all(|c| c.existed));
    assert_eq!(control.stats().await.unwrap().connections, 10);
}

#[tokio::test]
async fn a_scenario_given_at_start_up_sets_the_clock_and_comes_back_after_a_reset() {
    let scenario = Scenario::parse(TEN, ScenarioFormat::Toml, "ten-connections.toml").unwrap();
    let sb = sandbox_with(SandboxConfig {
        clock: ClockMode::Frozen(t0()),
        scenario: Some(scenario),
        ..Default::default()
    })
    .await;
    let control = Control::of(&sb);
    assert_eq!(control.clock().await.unwrap().now.to_rfc3339(), "2025-01-15T09:00:00+00:00");
    assert_eq!(control.stats().await.unwrap().connections, 10);
    control.advance(Advance::days(1)).await.unwrap();
    control.reset().await.unwrap();
    assert_eq!(control.clock().await.unwrap().now.to_rfc3339(), "2025-01-15T09:00:00+00:00");
    assert_eq!(control.stats().await.unwrap().connections, 10);
}

#[tokio::test]
async fn bad_scenarios_are_refused_with_the_place_and_change_nothing() {
    let sb = sandbox().await;
    let control = Control::of(&sb);
    let cases = [
        ("[clock]\nfrozen = yes\n", "line 2, column 10"),
        ("[[users]]\nclientUserId = \"a\"\nconnections = [\n  { bank = \"Nowhere Bank\" },\n]\n", "line 4, column 12"),
        ("[[users]]\nclientUserId = \"a\"\nconnections = [{ bank = \"HSBC\", state = \"sleeping\" }]\n", "line 3"),
        ("[[users]]\nclientUserId = \"a\"\nconnections = [{ bank = \"HSBC\", state = \"consent-ending\" }]\n", "needs days"),
        ("[[users]]\nclientUserId = \"a\"\nconnections = [{ bank = \"Aviva\", state = \"consent-ending\", days = 2 }]\n", "never sets a consent expiry"),
        ("[webhooks]\nurl = \"http://example.com/hook\"\n", "line 2, column 7"),
        ("[[faults]]\npath = \"/x\"\nstatus = 200\n", "line 1"),
        ("[clock]\nstart = \"2020-01-01T00:00:00Z\"\n", "before the sandbox's time"),
        ("colour = \"blue\"\n", "unknown field"),
    ];
    for (text, wanted) in cases {
        let err = control.load_scenario(text, "bad.toml", false).await.unwrap_err();
        assert_eq!(err.status(), Some(reqwest::StatusCode::BAD_REQUEST), "{text}");
        let message = err.to_string();
        assert!(message.contains("bad.toml") && message.contains(wanted), "{text}: {message}");
    }
    let err = control
        .load_scenario(
            "{\"users\": [{\"clientUserId\": \"a\", \"connections\": [{\"bank\": \"Nope\"}]}]}",
            "bad.json",
            false,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("users[0].connections[0].bank"), "{err}");
    assert_eq!(control.stats().await.unwrap().users, 0);
    assert!(control.faults().await.unwrap().is_empty());
    // Nor does a bad scenario loaded with a reset: the sandbox keeps what it had.
    control.create_user(&[]).await.unwrap();
    control.advance(Advance::days(1)).await.unwrap();
    let bad = "[[users]]\nclientUserId = \"a\"\nconnections = [{ bank = \"Nope\" }]\n";
    assert!(control.load_scenario(bad, "bad.toml", true).await.is_err());
    assert_eq!(control.stats().await.unwrap().users, 1);
    assert_eq!(control.clock().await.unwrap().now, t0() + Duration::days(1));
}

#[tokio::test]
async fn a_scenario_sets_webhooks_chaos_faults_and_failing_since() {
    let sb = sandbox().await;
    let control = Control::of(&sb);
    let text = r#"
[webhooks]
url = "http://127.0.0.1:9/hook"
format = "jwt"
chaos = { drop = 0.5 }

[[faults]]
path = "/v3/transactions"
status = 503
times = 2

[[users]]
clientUserId = "u-1"
[[users.connections]]
bank = "Moneyhub Open Banking Mock"
state = "failing"
since = "2025-01-10T00:00:00Z"
"#;
    let loaded = control.load_scenario(text, "s.toml", false).await.unwrap();
    assert_eq!(loaded.faults.len(), 1);
    assert_eq!(loaded.users[0].connections[0].state, ConnectionState::Failing);
    let target = control.webhook_target().await.unwrap();
    assert_eq!(
        (target.url.as_deref(), target.format.as_deref()),
        (Some("http://127.0.0.1:9/hook"), Some("jwt"))
    );
    assert_eq!(control.chaos().await.unwrap().drop, 0.5);
    assert_eq!(control.faults().await.unwrap()[0].times, Some(2));
    let view = control.connection(&loaded.users[0].connections[0].connection_id).await.unwrap();
    assert_eq!(view.failing_since.map(|t| t.to_rfc3339()).as_deref(), Some("2025-01-10T00:00:00+00:00"));
    assert_eq!(view.connection["status"], "error", "{}", view.connection);
    // Loaded again with the connection healthy: the script is cleared.
    control
        .script(&loaded.users[0].connections[0].connection_id, &Script::always(Outcome::Partial))
        .await
        .unwrap();
    let healthy =
        text.replace("state = \"failing\"\nsince = \"2025-01-10T00:00:00Z\"", "state = \"healthy\"");
    control.load_scenario(&healthy, "s.toml", false).await.unwrap();
    let view = control.connection(&loaded.users[0].connections[0].connection_id).await.unwrap();
    assert_eq!(view.thereafter, None);
}

#[tokio::test]
async fn the_readme_scenario_loads() {
    let readme = include_str!("../../../../README.md");
    let section = &readme[readme.find("### Scenario files").expect("the README's scenario section")..];
    let start = section.find("```toml\n").expect("a TOML block") + "```toml\n".len();
    let text = &section[start..start + section[start..].find("```").unwrap()];
    let sb = sandbox().await;
    let loaded = Control::of(&sb).load_scenario(text, "README.md", true).await.unwrap();
    assert_eq!(loaded.users[0].connections.len(), 7);
    assert_eq!(loaded.faults.len(), 1);
}

/// A scenario of 100,000 users takes seconds to load; other requests must not wait for it.
/// The load applies its users in chunks that hold the store's lock for about 20 ms each, so a
/// request that needs the store (the users listing) or none of it (`/oidc/certs`) is answered
/// between two chunks. The 100 ms bound is measured by `bench/scenario-load.sh` (release build);
/// here, in a debug build on cores shared with other tests, the slowest request must wait less
/// than a fifth of the load (a load that held the lock throughout made a store request wait
/// all of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_scenario_load_never_blocks_other_requests() {
    let sb = sandbox().await;
    let users: Vec<serde_json::Value> = (0..10_000)
        .map(|i| serde_json::json!({"clientUserId": format!("fleet-{i}"), "connections": [{"bank": "Moneyhub Open Banking Mock"}]}))
        .collect();
    let text = serde_json::json!({ "users": users }).to_string();
    let token = crate::support::token(&sb, "user:read", None).await;
    let http = crate::support::http();
    let (certs, listing) =
        (format!("{}/oidc/certs", sb.base_url()), format!("{}/users?limit=1", sb.base_url()));

    let loader = {
        let control = Control::of(&sb);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let loaded = control.load_scenario(&text, "fleet.json", false).await.expect("the scenario loads");
            (loaded.users.len(), started.elapsed())
        })
    };
    let (mut slowest, mut requests) = (std::time::Duration::ZERO, 0u32);
    while !loader.is_finished() {
        for (url, auth) in [(&certs, None), (&listing, Some(&token))] {
            let started = std::time::Instant::now();
            let mut req = http.get(url.as_str());
            if let Some(t) = auth {
                req = req.bearer_auth(t);
            }
            let status = req.send().await.expect("the sandbox answers").status();
            assert!(status.is_success(), "{url}: {status}");
            slowest = slowest.max(started.elapsed());
            requests += 1;
        }
    }
    let (loaded, took) = loader.await.unwrap();
    assert_eq!(loaded, 10_000);
    println!("loaded 10000 users in {took:?}; {requests} requests meanwhile, the slowest {slowest:?}");
    assert!(requests >= 4, "requests were answered during the load ({requests} in {took:?})");
    assert!(slowest * 5 < took, "a request waited {slowest:?} during a {took:?} load");
}

/// A fleet's scenario loads in one request: `POST /__sandbox/scenario` takes bodies beyond
/// the 2 MiB every other route reads (a 100,000-user scenario is 8.9 MB), here a 3 MiB one.
#[tokio::test]
async fn a_scenario_body_beyond_two_mib_loads() {
    let sb = sandbox().await;
    let users = serde_json::json!({"users": [
        {"clientUserId": "big-0", "connections": [{"bank": "Moneyhub Open Banking Mock"}]},
        {"clientUserId": "big-1", "connections": [{"bank": "Moneyhub Open Banking Mock"}]}
    ]});
    // Whitespace is JSON too: the text is 3 MiB, the scenario two users.
    let text = format!("{users}{}", " ".repeat(3 * 1024 * 1024));
    let body = serde_json::json!({"text": text, "name": "big.json", "reset": false});
    let (status, v) = crate::support::control(&sb, Method::POST, "/scenario", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["users"].as_array().map(Vec::len), Some(2), "{v}");
}

/// A fleet's scenario stays small until it is read: a connection's fetches are kept as
/// recipes and generated at the first read of the user's data (store/fetch.rs), so loading
/// generates no transactions. What a read then sees is exactly what fetching at the time
/// stored: the same story, told once with a webhook target set (every sync is announced, so
/// it is carried out at its time) and once with none (every sync deferred until the read),
/// gives the same transactions, field for field.
#[tokio::test]
async fn a_loaded_fleet_is_generated_at_first_read_exactly_as_fetched() {
    let scenario = serde_json::json!({"users": (0..40).map(|i| serde_json::json!({
        "clientUserId": format!("lazy-{i}"),
        "connections": [{"bank": "Moneyhub Open Banking Mock"}, {"bank": "Modelo Open Banking Mock"}],
    })).collect::<Vec<_>>()})
    .to_string();
    let mut seen = Vec::new();
    for announced in [false, true] {
        let sb = sandbox().await;
        let control = Control::of(&sb);
        let loaded = control.load_scenario(&scenario, "lazy.json", false).await.unwrap();
        let stats = control.stats().await.unwrap();
        assert_eq!(stats.transactions_stored, 0, "loading generates nothing: {stats:?}");
        assert_eq!(stats.accounts_unread, stats.accounts, "{stats:?}");
        if announced {
            // Set after the load, so that both runs make the same ids. Nothing listens on
            // port 9: deliveries fail, but every event is recorded.
            control.set_webhook_target(Some("http://127.0.0.1:9/hook"), None).await.unwrap();
        }
        // Three days: the background history fetch, auto syncs, pending payments posting.
        control.advance(Advance::days(3)).await.unwrap();
        let user = &loaded.users[7].user_id;
        let unread = control.stats().await.unwrap().accounts_unread;
        let txs = crate::support::all_transactions(&sb, user).await;
        let after = control.stats().await.unwrap();
        if announced {
            assert_eq!(unread, 0, "announced syncs are carried out at their time");
        } else {
            // The user's 3 + 4 accounts (Moneyhub's and Modelo's mocks) are read; nobody else's.
            assert_eq!(unread - after.accounts_unread, 7, "{unread} -> {after:?}");
        }
        assert!(after.transactions as usize >= txs.len() && txs.len() > 500, "{} read, {after:?}", txs.len());
        seen.push(txs);
    }
    assert_eq!(seen[0].len(), seen[1].len(), "deferred and immediate fetches store as many transactions");
    if let Some(i) = (0..seen[0].len()).find(|&i| seen[0][i] != seen[1][i]) {
        panic!("transaction {i} differs:\ndeferred {}\nimmediate {}", seen[0][i], seen[1][i]);
    }
}
