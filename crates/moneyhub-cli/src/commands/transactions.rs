//! `moneyhub transactions get|list`.
//!
//! JSON: `get` prints `{"data": [transaction...], "missing": [id...]}` (found transactions in
//! the order their ids were given; ids Moneyhub does not know in `missing`); `list` prints an
//! array of transactions, newest first. Transactions are as Moneyhub sends them (`{id,
//! accountId, amount: {value, currency, ...}, categoryId, date, dateModified, longDescription,
//! shortDescription, notes, status, ...}`; `amount.value` in minor units, negative = out).

use std::path::Path;

use futures_util::StreamExt;
use moneyhub::{AccountId, Transaction, TransactionFilter, TransactionId, UserId};
use moneyhub_types::CategoryId;
use serde_json::{json, Value};

use crate::cli::TransactionsCommand;
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::views::transactions_table;
use crate::output::{self, progress, OutputFormat};
use crate::resolve;

/// Runs the command.
pub async fn run(ctx: &Ctx, command: TransactionsCommand) -> CmdResult {
    match command {
        TransactionsCommand::Get { user, ids, ids_file } => {
            let user = resolve::user(&user)?;
            let raw = match ids_file {
                Some(path) => read_ids(&path)?,
                None => ids,
            };
            let ids = parse_ids(&raw)?;
            let found = ctx
                .client
                .transactions()
                .by_ids(&user, ids.iter().map(TransactionId::as_str))
                .await
                .map_err(|e| ctx.fail(e))?;
            match ctx.output {
                OutputFormat::Json => {
                    output::json(&json!({"data": found.transactions, "missing": found.missing}))
                }
                OutputFormat::Table => {
                    if !found.transactions.is_empty() {
                        output::table(&transactions_table(&found.transactions));
                    }
                    output::line(&format!(
                        "{} found, {} missing{}",
                        found.transactions.len(),
                        found.missing.len(),
                        if found.missing.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ": {}",
                                found
                                    .missing
                                    .iter()
                                    .map(TransactionId::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ));
                }
            }
            Ok(())
        }
        TransactionsCommand::List { user, from, to, account, category, text, limit } => {
            let user = resolve::user(&user)?;
            let mut filter = TransactionFilter::new();
            filter.start_date = from.as_deref().map(|d| resolve::date("--from", d)).transpose()?;
            filter.end_date = to.as_deref().map(|d| resolve::date("--to", d)).transpose()?;
            if let (Some(f), Some(t)) = (filter.start_date, filter.end_date) {
                if f > t {
                    return Err(Failure::usage(format!("--from {f} is after --to {t}")));
                }
            }
            filter.account_id = account
                .as_deref()
                .map(|a| {
                    a.trim().parse::<AccountId>().map_err(|e| Failure::usage(format!("--account {a:?}: {e}")))
                })
                .transpose()?;
            filter.category_id = category
                .as_deref()
                .map(|c| {
                    c.trim()
                        .parse::<CategoryId>()
                        .map_err(|e| Failure::usage(format!("--category {c:?}: {e}")))
                })
                .transpose()?;
            filter.text = text.filter(|t| !t.trim().is_empty());
            if limit == Some(0) {
                return Err(Failure::usage("--limit must be at least 1"));
            }
            let all = list(ctx, &user, filter, limit).await?;
            match ctx.output {
                OutputFormat::Json => output::json(&all),
                OutputFormat::Table => {
                    if all.is_empty() {
                        output::line("No transactions.");
                    } else {
                        output::table(&transactions_table(&all));
                        output::line(&output::count(all.len(), "transaction", "transactions"));
                    }
                }
            }
            Ok(())
        }
    }
}

/// Every page of a listing, at most `limit` transactions, with a progress bar on a terminal.
pub async fn list(
    ctx: &Ctx,
    user: &UserId,
    mut filter: TransactionFilter,
    limit: Option<u64>,
) -> CmdResult<Vec<Transaction>> {
    let page_size = limit.map_or(moneyhub::transactions::MAX_LIMIT, |l| {
        u32::try_from(l).unwrap_or(u32::MAX).min(moneyhub::transactions::MAX_LIMIT)
    });
    filter.limit = Some(page_size);
    let mut pages = Box::pin(ctx.client.transactions().pages(user, filter));
    let mut all: Vec<Transaction> = Vec::new();
    let mut bar: Option<indicatif::ProgressBar> = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ctx.fail(e))?;
        let more = page.next.is_some();
        if bar.is_none() && more {
            let total = page.meta.count.map(|c| limit.map_or(c, |l| c.min(l)));
            bar = Some(match total.or(limit) {
                Some(t) => progress::bar(t, "reading transactions"),
                None => progress::counter("reading transactions"),
            });
        }
        all.extend(page.transactions);
        if let Some(max) = limit {
            if all.len() as u64 >= max {
                all.truncate(usize::try_from(max).unwrap_or(usize::MAX));
                break;
            }
        }
        if let Some(b) = &bar {
            b.set_position(all.len() as u64);
        }
        if !more {
            break;
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(all)
}

/// Ids from a file: a JSON array of strings, or ids separated by whitespace or commas.
fn read_ids(path: &Path) -> CmdResult<Vec<String>> {
    let text = resolve::read_input("--ids-file", path)?;
    if text.trim_start().starts_with('[') {
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Failure::usage(format!("--ids-file {}: not a JSON array: {e}", path.display())))?;
        return v
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, id)| {
                id.as_str().map(str::to_owned).ok_or_else(|| {
                    Failure::usage(format!("--ids-file {}: element [{i}] is not a string", path.display()))
                })
            })
            .collect();
    }
    Ok(text.split(|c: char| c.is_whitespace() || c == ',').map(str::to_owned).collect())
}

/// Validates ids (blank entries are skipped); a malformed one is named.
fn parse_ids(raw: &[String]) -> CmdResult<Vec<TransactionId>> {
    let ids: Vec<TransactionId> = raw
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<TransactionId>().map_err(|e| Failure::usage(format!("transaction id {s:?}: {e}"))))
        .collect::<CmdResult<_>>()?;
    if ids.is_empty() {
        return Err(Failure::usage("no transaction ids given"));
    }
    Ok(ids)
}
