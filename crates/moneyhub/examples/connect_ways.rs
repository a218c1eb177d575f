//! The three ways to create a connection, end to end against a local sandbox (the README's
//! "Three ways to create a connection" runs these same steps):
//! 1. a client-managed user (create the user, connect with its `sub`);
//! 2. one-time access (no user: Moneyhub makes one during consent; read with the code
//!    exchange's token);
//! 3. the Auth Requests API (Moneyhub builds the URL and exchanges the code).
//!
//! `cargo run -p moneyhub --example connect_ways`

use moneyhub::{Client, ConnectOptions, NewAuthRequest, TransactionFilter, UserToken};
use moneyhub_types::BankId;

/// The sandbox consents at once: GET the authorisation URL and return where it redirects.
async fn browser(url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let res = http.get(url).send().await?;
    Ok(res.headers().get("location").ok_or("no redirect")?.to_str()?.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
    let client = Client::builder().sandbox(sandbox.base_url()).build()?;
    let bank: BankId = "1ffe704d39629a929c8e293880fb449a".parse()?;

    // 1. A client-managed user.
    let user = client.users().create(Some("customer-42")).await?.user_id;
    let request = client.auth().connect(ConnectOptions::new(bank.clone()).user(user.clone())).await?;
    let connected = client.auth().exchange_code(&request, browser(request.url.as_str()).await?).await?;
    println!("1. client-managed user {user}: connection {}", connected.connection_id);

    // 2. One-time access: no user; the exchange names the user Moneyhub made, and its token
    //    (with a refresh token thanks to offline_access) reads the data.
    let request = client.auth().connect(ConnectOptions::new(bank.clone()).offline_access(true)).await?;
    let connected = client.auth().exchange_code(&request, browser(request.url.as_str()).await?).await?;
    let token = UserToken::from_connected(&connected)?;
    let made = token.user_id().clone();
    let page =
        client.with_user_token(token).transactions().list(&made, &TransactionFilter::new().limit(5)).await?;
    println!(
        "2. one-time access: user {made}, {} transactions read with its own token",
        page.transactions.len()
    );

    // 3. The Auth Requests API.
    let created = client.auth_requests().create(&NewAuthRequest::connect(bank).user(user.clone())).await?;
    let callback = browser(created.redirect_params.auth_url.as_deref().ok_or("no authUrl")?).await?;
    let done = client.auth_requests().complete_with_callback(&created.id, &callback).await?;
    println!("3. auth request {}: {} with connection {:?}", done.id, done.status, done.connection_id);
    Ok(())
}
