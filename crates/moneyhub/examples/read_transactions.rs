//! Reads transactions against a local sandbox: every page of a listing as a stream, a
//! filtered page, and a batched look-up by id (as after a `newTransactions` webhook).
//!
//! `cargo run -p moneyhub --example read_transactions`

use futures_util::TryStreamExt;
use moneyhub::{Client, ConnectOptions, CreditDebit, TransactionFilter};
use moneyhub_types::BankId;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
    let client = Client::builder().sandbox(sandbox.base_url()).build()?;

    let user = client.users().create(None).await?.user_id;
    let bank: BankId = "1ffe704d39629a929c8e293880fb449a".parse()?;
    let request = client.auth().connect(ConnectOptions::new(bank).user(user.clone())).await?;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let redirect = browser.get(request.url.as_str()).send().await?;
    let callback = redirect.headers().get("location").ok_or("no redirect")?.to_str()?.to_owned();
    client.auth().exchange_code(&request, callback.as_str()).await?;

    // Every transaction, 200 per page, as one stream.
    let all: Vec<_> =
        client.transactions().stream(&user, TransactionFilter::new().limit(200)).try_collect().await?;
    let spent: i64 = all.iter().filter(|t| t.amount.value < 0).map(|t| t.amount.value).sum();
    println!("{} transactions, {} pence out", all.len(), -spent);

    // The five latest credits.
    let credits = client
        .transactions()
        .list(&user, &TransactionFilter::new().credit_debit(CreditDebit::Credit).limit(5))
        .await?;
    for t in &credits.transactions {
        println!("  {} {:>8} {}", t.date.date_naive(), t.amount.value, t.short_description);
    }

    // A batched look-up: 120 ids → 3 requests of 50, merged in order; unknown ids reported.
    let mut ids: Vec<String> = all.iter().take(119).map(|t| t.id.to_string()).collect();
    ids.push("00000000-0000-4000-8000-000000000000".into());
    let found = client.transactions().by_ids(&user, &ids).await?;
    println!("by id: {} found, missing {:?}", found.transactions.len(), found.missing);
    Ok(())
}
