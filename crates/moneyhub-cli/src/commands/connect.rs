//! `moneyhub connect --user U --bank B [--async]`: a new connection through the authorisation
//! flow (PAR, the user's consent, the code exchange with a verified id_token).
//!
//! JSON: `{"flow": "connect", "userId", "bankId", "connectionId", "syncId", "fetchStatus",
//! "connection": {...}}` (`syncId` and `fetchStatus` are `null` unless `--async`;
//! `connection` is the new connection as listed by Moneyhub, `null` if it could not be read).

use std::time::Duration;

use moneyhub::{BankId, ConnectOptions, Connected, Connection, UserId, WaitOptions};
use serde_json::json;

use crate::cli::{ConnectArgs, FlowArgs};
use crate::context::Ctx;
use crate::exit::CmdResult;
use crate::output::{self, progress, OutputFormat};
use crate::{flow, resolve};

/// Connects `user` to `bank` and returns the outcome of the code exchange.
pub async fn connect_bank(
    ctx: &Ctx,
    user: &UserId,
    bank: &BankId,
    enable_async: bool,
    flow: &FlowArgs,
) -> CmdResult<Connected> {
    let options = ConnectOptions::new(bank.clone()).user(user.clone()).enable_async(enable_async);
    let request = ctx.client.auth().connect(options).await.map_err(|e| ctx.fail(e))?;
    flow::complete(ctx, &request, flow).await
}

/// The connection as listed, if it can be read.
pub async fn find(ctx: &Ctx, user: &UserId, id: &moneyhub::ConnectionId) -> Option<Connection> {
    ctx.client.connections().list(user).await.ok()?.into_iter().find(|c| &c.id == id)
}

/// Runs the command.
pub async fn run(ctx: &Ctx, args: ConnectArgs) -> CmdResult {
    let user = resolve::user(&args.user)?;
    let (bank, name) = resolve::bank(ctx, &args.bank).await?;
    let connected = connect_bank(ctx, &user, &bank, args.enable_async, &args.flow).await?;
    let mut fetch_status = None;
    if let Some(sync_id) = &connected.sync_id {
        let spinner = progress::spinner(format!("waiting for the first sync {sync_id}"));
        let waited = ctx
            .client
            .connections()
            .wait_for_sync(
                &user,
                sync_id,
                WaitOptions {
                    timeout: Duration::from_secs(args.flow.timeout.max(1)),
                    ..WaitOptions::default()
                },
            )
            .await;
        spinner.finish_and_clear();
        fetch_status = waited.map_err(|e| ctx.fail(e))?.fetch_status.map(|f| f.to_string());
    }
    let connection = find(ctx, &user, &connected.connection_id).await;
    match ctx.output {
        OutputFormat::Json => output::json(&json!({
            "flow": "connect",
            "userId": user,
            "bankId": bank,
            "connectionId": connected.connection_id,
            "syncId": connected.sync_id,
            "fetchStatus": fetch_status,
            "connection": connection,
        })),
        OutputFormat::Table => {
            let provider =
                connection.as_ref().map(|c| c.name.clone()).or(name).unwrap_or_else(|| bank.to_string());
            output::line(&format!("Connected {provider} for user {user}."));
            let mut pairs = vec![("connection", connected.connection_id.to_string())];
            if let Some(s) = &connected.sync_id {
                pairs.push(("first sync", format!("{s} ({})", fetch_status.as_deref().unwrap_or("?"))));
            }
            if let Some(c) = &connection {
                pairs.push(("status", super::connections::health_text(c)));
                pairs.push(("accounts", c.account_ids.len().to_string()));
                pairs.push((
                    "expires",
                    c.expires_at.as_ref().map_or_else(|| "never".to_owned(), output::when),
                ));
            }
            output::details(&pairs);
        }
    }
    Ok(())
}
