//! `moneyhub connections list|get|status|sync|delete --user U [--connection C]`.
//!
//! JSON: `list` prints the connections as Moneyhub sends them (`{id, name, type, connectedOn,
//! lastUpdated, lastSyncedAt, expiresAt, accountIds, status, error, extendedStatus,
//! tppConsent, ...}`), `get` one of them; `status` prints `{connection: {...}, syncs: [...]}`
//! (the latest syncs first; a sync still running has no `fetchStatus`); `sync` prints
//! `{connectionId, syncId, status, fetchStatus, fetchedAt}` (the last two `null` without
//! `--wait`); `delete` prints `{connectionId, deleted: true}`.

use std::time::Duration;

use moneyhub::{Connection, PageOptions, SyncOptions, SyncRecord, WaitOptions};
use serde_json::{json, Value};

use crate::cli::{ConnectionRef, ConnectionsCommand};
use crate::context::Ctx;
use crate::exit::CmdResult;
use crate::output::table::{Column, Table};
use crate::output::views::{error_cell, health_text, status_colour};
use crate::output::{self, progress, OutputFormat};
use crate::resolve;

/// Runs the command.
pub async fn run(ctx: &Ctx, command: ConnectionsCommand) -> CmdResult {
    match command {
        ConnectionsCommand::List { user } => list(ctx, &user).await,
        ConnectionsCommand::Get(target) => get(ctx, target).await,
        ConnectionsCommand::Status(target) => status(ctx, target).await,
        ConnectionsCommand::Sync { target, wait, timeout } => sync(ctx, target, wait, timeout).await,
        ConnectionsCommand::Delete { target, yes } => delete(ctx, target, yes).await,
    }
}

async fn list(ctx: &Ctx, user: &str) -> CmdResult {
    let user = resolve::user(user)?;
    let all = ctx.client.connections().list(&user).await.map_err(|e| ctx.fail_for_user(e, &user))?;
    if ctx.output == OutputFormat::Json {
        output::json(&all);
        return Ok(());
    }
    if all.is_empty() {
        output::line(&format!("User {user} has no connections."));
        return Ok(());
    }
    let mut t = Table::new(vec![
        Column::new("CONNECTION"),
        Column::new("PROVIDER").elide_end(10),
        Column::new("TYPE"),
        Column::new("STATUS").colour(status_colour),
        Column::new("ERROR").elide_end(8),
        Column::new("UPDATED"),
        Column::new("EXPIRES"),
    ]);
    for c in &all {
        t.row(vec![
            output::short_connection(c.id.as_str()),
            c.name.clone(),
            c.kind.to_string(),
            c.status.to_string(),
            error_cell(c),
            c.last_updated.as_ref().map_or_else(|| "never".to_owned(), output::day),
            c.expires_at.as_ref().map_or_else(|| "-".to_owned(), output::day),
        ]);
    }
    output::table(&t);
    output::line(&output::count(all.len(), "connection", "connections"));
    Ok(())
}

fn connection_details(c: &Connection) -> Vec<(&'static str, String)> {
    let opt =
        |t: &Option<chrono::DateTime<chrono::Utc>>| t.as_ref().map_or_else(|| "-".to_owned(), output::when);
    let mut pairs = vec![
        ("id", c.id.to_string()),
        ("provider", format!("{} ({})", c.name, c.kind)),
        ("status", health_text(c)),
        ("connected", output::when(&c.connected_on)),
        ("updated", opt(&c.last_updated)),
        ("last attempt", opt(&c.last_synced_at)),
        ("expires", c.expires_at.as_ref().map_or_else(|| "never".to_owned(), output::when)),
        ("tppConsent", output::or_dash(c.tpp_consent)),
        ("accounts", c.account_ids.len().to_string()),
    ];
    if c.single_sync_only == Some(true) {
        pairs.push(("single sync", "yes (new data needs the refresh flow)".to_owned()));
    }
    pairs
}

async fn get(ctx: &Ctx, target: ConnectionRef) -> CmdResult {
    let user = resolve::user(&target.user)?;
    let c = resolve::connection(ctx, &user, &target.connection).await?;
    match ctx.output {
        OutputFormat::Json => output::json(&c),
        OutputFormat::Table => output::details(&connection_details(&c)),
    }
    Ok(())
}

fn sync_json(r: &SyncRecord) -> Value {
    match r {
        SyncRecord::Finished(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        SyncRecord::InProgress(p) => json!({
            "id": p.id,
            "connectionId": p.connection_id,
            "action": p.action,
            "method": p.method,
            "createdAt": output::ts(&p.created_at),
            "fetchStatus": null,
        }),
    }
}

async fn status(ctx: &Ctx, target: ConnectionRef) -> CmdResult {
    let user = resolve::user(&target.user)?;
    let c = resolve::connection(ctx, &user, &target.connection).await?;
    let page = ctx
        .client
        .connections()
        .syncs(&user, &c.id, PageOptions::new(100, 0))
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut syncs = page.items;
    syncs.sort_by_key(|s| std::cmp::Reverse(s.created_at()));
    syncs.truncate(5);
    if ctx.output == OutputFormat::Json {
        output::json(&json!({"connection": c, "syncs": syncs.iter().map(sync_json).collect::<Vec<_>>()}));
        return Ok(());
    }
    output::details(&connection_details(&c));
    output::line("");
    if syncs.is_empty() {
        output::line("No syncs yet.");
        return Ok(());
    }
    let mut t = Table::new(vec![
        Column::new("SYNC"),
        Column::new("STARTED"),
        Column::new("ACTION"),
        Column::new("METHOD"),
        Column::new("RESULT"),
    ]);
    for s in &syncs {
        let (action, method, result) = match s {
            SyncRecord::Finished(f) => (
                f.action.to_string(),
                f.method.to_string(),
                f.fetch_status.as_ref().map_or_else(|| "running".to_owned(), ToString::to_string),
            ),
            SyncRecord::InProgress(p) => (p.action.to_string(), p.method.to_string(), "running".to_owned()),
        };
        t.row(vec![
            output::short_uuid(s.id().as_str()),
            output::when(&s.created_at()),
            action,
            method,
            result,
        ]);
    }
    output::table(&t);
    Ok(())
}

async fn sync(ctx: &Ctx, target: ConnectionRef, wait: bool, timeout: u64) -> CmdResult {
    let user = resolve::user(&target.user)?;
    let c = resolve::connection(ctx, &user, &target.connection).await?;
    let options = SyncOptions::new().provider_name(c.name.clone());
    let started = ctx.client.connections().sync(&user, &c.id, options).await.map_err(|e| ctx.fail(e))?;
    let mut finished = None;
    if wait {
        if let Some(sync_id) = &started.sync_id {
            let spinner = progress::spinner(format!(
                "syncing {} (sync {})",
                c.name,
                output::short_uuid(sync_id.as_str())
            ));
            let options = WaitOptions::default().timeout(Duration::from_secs(timeout.max(1)));
            let done = ctx.client.connections().wait_for_sync(&user, sync_id, options).await;
            spinner.finish_and_clear();
            finished = Some(done.map_err(|e| ctx.fail(e))?);
        }
    }
    let after = if wait { crate::flow::find_connection(ctx, &user, &c.id).await } else { None };
    match ctx.output {
        OutputFormat::Json => output::json(&json!({
            "connectionId": c.id,
            "syncId": started.sync_id,
            "status": after.as_ref().map_or(started.status.clone(), |a| a.status.clone()),
            "fetchStatus": finished.as_ref().and_then(|f| f.fetch_status.clone()),
            "fetchedAt": finished.as_ref().and_then(|f| f.fetched_at).map(|t| output::ts(&t)),
        })),
        OutputFormat::Table => {
            let id = started.sync_id.as_ref().map_or_else(|| "?".to_owned(), ToString::to_string);
            match &finished {
                Some(f) => output::line(&format!(
                    "Synced {}: sync {id} finished: {}.",
                    c.name,
                    f.fetch_status.as_ref().map_or_else(|| "unknown".to_owned(), ToString::to_string)
                )),
                None => output::line(&format!(
                    "Started a sync of {} (sync {id}); the connection is {}.{}",
                    c.name,
                    started.status,
                    if wait { "" } else { " Use --wait to follow it." }
                )),
            }
            if let Some(a) = &after {
                output::line(&format!("Connection now: {}.", health_text(a)));
            }
            if let Some(next) = ctx.client.connections().sync_allowed_at(&c.id).await {
                output::line(&format!("Next manual sync allowed from {} UTC.", output::when(&next)));
            }
        }
    }
    Ok(())
}

async fn delete(ctx: &Ctx, target: ConnectionRef, yes: bool) -> CmdResult {
    let user = resolve::user(&target.user)?;
    let c = resolve::connection(ctx, &user, &target.connection).await?;
    resolve::confirm(
        &format!("Delete connection {} ({}) with its accounts and transactions", c.id, c.name),
        yes,
    )?;
    ctx.client.connections().delete(&user, &c.id).await.map_err(|e| ctx.fail(e))?;
    match ctx.output {
        OutputFormat::Json => output::json(&json!({"connectionId": c.id, "deleted": true})),
        OutputFormat::Table => output::line(&format!(
            "Deleted connection {} ({}) and its {}.",
            c.id,
            c.name,
            output::count(c.account_ids.len(), "account", "accounts")
        )),
    }
    Ok(())
}
