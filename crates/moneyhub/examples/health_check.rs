//! A connection health check against a local sandbox: list a user's connections, show each
//! one's state and latest sync, and trigger a manual sync where it helps, letting the guard
//! keep manual syncs polite (one per 30 minutes per connection).
//!
//! `cargo run -p moneyhub --example health_check`

use moneyhub::{Client, ConnectOptions, SyncOptions};
use moneyhub_sandbox::kit::{Control, Outcome, Script};
use moneyhub_types::{BankId, Connection, ConnectionError, ConnectionStatus, ExtendedStatus};

/// What to do about a connection (a short version of the lifecycle rules).
fn advice(c: &Connection) -> &'static str {
    match (&c.status, &c.extended_status, &c.error) {
        (ConnectionStatus::Never, _, _) => "remove it: the provider is gone",
        (_, Some(ExtendedStatus::Expired), _) if c.tpp_consent == Some(true) => "reconsent",
        (_, Some(ExtendedStatus::Expired), _) => "reauth",
        (_, _, Some(ConnectionError::CredentialsError)) => "reauth",
        (_, _, Some(ConnectionError::MfaRequired)) if c.kind.is_legacy() => "refresh",
        (_, _, Some(ConnectionError::MfaRequired)) => "reauth",
        (_, _, Some(ConnectionError::Resync | ConnectionError::SyncError | ConnectionError::SyncPartial)) => {
            "sync"
        }
        (ConnectionStatus::Ok, _, _) => "nothing",
        _ => "contact support",
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
    let client = Client::builder().sandbox(sandbox.base_url()).build()?;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    // Two connections for one user.
    let user = client.users().create(Some("health-check")).await?.user_id;
    for bank in ["1ffe704d39629a929c8e293880fb449a", "b74f1a79f0be8bdb857d82d0f041d7d2"] {
        let request =
            client.auth().connect(ConnectOptions::new(bank.parse::<BankId>()?).user(user.clone())).await?;
        let redirect = browser.get(request.url.as_str()).send().await?;
        let callback = redirect.headers().get("location").ok_or("no redirect")?.to_str()?.to_owned();
        client.auth().exchange_code(&request, callback.as_str()).await?;
    }

    // Sandbox only: make the first connection's next fetch fail, then sync it.
    let connections = client.connections().list(&user).await?;
    let broken = &connections[0];
    let script = Script { outcomes: vec![Outcome::Error], ..Default::default() };
    Control::of(&sandbox).script(broken.id.as_str(), &script).await?;
    client.connections().sync(&user, &broken.id, SyncOptions::new().enable_async(false)).await?;

    println!("{:<72} {:<8} {:<12} advice", "connection", "status", "error");
    for c in client.connections().list(&user).await? {
        let latest = client.connections().status(&user, &c.id).await?;
        let last_fetch = latest
            .as_ref()
            .and_then(|s| s.finished())
            .and_then(|s| s.fetch_status.as_ref())
            .map(|s| s.to_string());
        println!(
            "{:<72} {:<8} {:<12} {} (last fetch: {})",
            c.id.as_str(),
            c.status.as_str(),
            c.error.as_ref().map(|e| e.as_str()).unwrap_or("-"),
            advice(&c),
            last_fetch.as_deref().unwrap_or("none")
        );
        if advice(&c) == "sync" {
            // The guard refuses this second manual sync within 30 minutes, without sending it.
            match client.connections().sync(&user, &c.id, SyncOptions::new()).await {
                Ok(r) => println!("  synced: now {}", r.status),
                Err(e) => match e.not_before() {
                    Some(at) => println!("  not syncing yet: allowed again from {at}"),
                    None => return Err(e.into()),
                },
            }
        }
    }
    Ok(())
}
