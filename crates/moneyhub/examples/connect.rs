//! Connects a bank end to end against a local sandbox: create a user, push an authorisation
//! request, "open" it in a browser, exchange the code, read the new connection's accounts.
//!
//! `cargo run -p moneyhub --example connect`

use moneyhub::{Client, ConnectOptions, WaitOptions};
use moneyhub_types::BankId;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A local Moneyhub. Against the real one, use `Client::from_env()` instead.
    let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
    let client = Client::builder().sandbox(sandbox.base_url()).build()?;
    println!("client: {client:?}");

    let user = client.users().create(Some("example-customer")).await?;
    println!("user {}", user.user_id);

    let bank: BankId = "1ffe704d39629a929c8e293880fb449a".parse()?;
    let request = client
        .auth()
        .connect(ConnectOptions::new(bank).user(user.user_id.clone()).enable_async(true))
        .await?;
    println!("send the browser to {}", request.url);

    // The sandbox consents at once and redirects back with a code: follow it by hand.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let redirect = browser.get(request.url.as_str()).send().await?;
    let callback = redirect.headers().get("location").ok_or("no redirect")?.to_str()?.to_owned();

    let connected = client.auth().exchange_code(&request, callback.as_str()).await?;
    println!("connected {}", connected.connection_id);
    if let Some(sync_id) = &connected.sync_id {
        let sync = client.connections().wait_for_sync(&user.user_id, sync_id, WaitOptions::default()).await?;
        println!(
            "first sync {} finished: {}",
            sync.id,
            sync.fetch_status.as_ref().map_or("-".to_string(), |s| s.to_string())
        );
    }

    for account in client.accounts().list(&user.user_id, &Default::default()).await? {
        println!(
            "  {:<24} {:<14} {:>10} {}",
            account.account_name,
            account.kind.as_str(),
            account.balance.amount.value,
            account.balance.amount.currency
        );
    }
    Ok(())
}
