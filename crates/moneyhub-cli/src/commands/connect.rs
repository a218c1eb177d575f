//! `moneyhub connect [--user U] (--bank B | --choose [GROUP]) [--async] [--via par|auth-request]`:
//! a new connection
//! through the authorisation flow (PAR, the user's consent, the code exchange with a verified
//! id_token), or through the Auth Requests API. Without `--user`, one-time access: Moneyhub
//! makes the user during consent and the command says which. With `--choose`, the scope names
//! a group (`id:all`, `id:api`, `id:legacy`, `id:test`) and the person picks the bank in the
//! bank chooser; the bank reported is the new connection's.
//!
//! JSON: `{"flow": "connect", "userId", "bankId", "connectionId", "syncId", "fetchStatus",
//! "connection": {...}, "oneTimeAccess", "authRequestId"}` (`syncId` and `fetchStatus` are
//! `null` unless `--async`; `connection` is the new connection as listed by Moneyhub, `null`
//! if it could not be read; `authRequestId` is `null` unless `--via auth-request`).

use std::time::Duration;

use moneyhub::{BankId, ConnectOptions, ConnectionId, NewAuthRequest, SyncId, UserId, WaitOptions};
use serde_json::json;

use crate::cli::{ConnectArgs, Via};
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::views::health_text;
use crate::output::{self, progress, OutputFormat};
use crate::{flow, resolve};

/// What a connect produced, whichever way it went.
struct Outcome {
    user: UserId,
    connection_id: ConnectionId,
    sync_id: Option<SyncId>,
    auth_request: Option<String>,
}

async fn connect_via(
    ctx: &Ctx,
    user: Option<&UserId>,
    bank: &BankId,
    args: &ConnectArgs,
) -> CmdResult<Outcome> {
    match args.flow.via {
        Via::Par => {
            let mut options = ConnectOptions::new(bank.clone()).enable_async(args.enable_async);
            if let Some(u) = user {
                options = options.user(u.clone());
            }
            let request = ctx.client.auth().connect(options).await.map_err(|e| ctx.fail(e))?;
            let connected = flow::complete(ctx, &request, &args.flow).await?;
            let user = match (user, &connected.user_id) {
                (Some(u), _) => u.clone(),
                (None, Some(u)) => u.clone(),
                (None, None) => return Err(Failure::api("the id_token named no user (sub)")),
            };
            Ok(Outcome {
                user,
                connection_id: connected.connection_id,
                sync_id: connected.sync_id,
                auth_request: None,
            })
        }
        Via::AuthRequest => {
            let mut new = NewAuthRequest::connect(bank.clone()).enable_async(args.enable_async);
            if let Some(u) = user {
                new = new.user(u.clone());
            }
            let done = flow::via_auth_request(ctx, &new, &args.flow).await?;
            let (Some(user), Some(connection_id)) = (done.user_id.clone(), done.connection_id.clone()) else {
                return Err(Failure::api(format!(
                    "auth request {} completed without a user or connection id",
                    done.id
                )));
            };
            Ok(Outcome { user, connection_id, sync_id: done.sync_id, auth_request: Some(done.id) })
        }
    }
}

/// Runs the command.
pub async fn run(ctx: &Ctx, args: ConnectArgs) -> CmdResult {
    let given = args.user.as_deref().map(resolve::user).transpose()?;
    let (group, (mut bank, mut name)) = match (&args.choose, &args.bank) {
        (Some(group), _) => {
            let id = group
                .scope_name()
                .parse::<BankId>()
                .map_err(|e| Failure::internal(format!("bank group {}: {e}", group.scope_name())))?;
            if ctx.is_sandbox() && !args.flow.browser && !ctx.sandbox_shows_consent_pages().await {
                output::warn(
                    "moneyhub: note: this sandbox consents at once (no consent pages), so it picks the \
                     group's first bank itself; for the chooser run `sandbox serve --consent interactive` \
                     (or PUT /__sandbox/consent {\"mode\":\"interactive\"})",
                );
            }
            (Some(*group), (id, None))
        }
        (None, Some(raw)) => (None, resolve::bank(ctx, raw).await?),
        (None, None) => return Err(Failure::usage("give --bank BANK or --choose [all|api|legacy|test]")),
    };
    let outcome = connect_via(ctx, given.as_ref(), &bank, &args).await?;
    if group.is_some() {
        // The person chose: the bank is the connection's.
        if let Some(chosen) = outcome.connection_id.bank_id() {
            bank = chosen;
        }
        name = None;
    }
    let one_time = given.is_none();
    let user = outcome.user.clone();
    let mut fetch_status = None;
    if let Some(sync_id) = &outcome.sync_id {
        let spinner = progress::spinner(format!("waiting for the first sync {sync_id}"));
        let waited = ctx
            .client
            .connections()
            .wait_for_sync(
                &user,
                sync_id,
                WaitOptions::default().timeout(Duration::from_secs(args.flow.timeout.max(1))),
            )
            .await;
        spinner.finish_and_clear();
        fetch_status = waited.map_err(|e| ctx.fail(e))?.fetch_status.map(|f| f.to_string());
    }
    let connection = flow::find_connection(ctx, &user, &outcome.connection_id).await;
    match ctx.output {
        OutputFormat::Json => output::json(&json!({
            "flow": "connect",
            "userId": user,
            "bankId": bank,
            "connectionId": outcome.connection_id,
            "syncId": outcome.sync_id,
            "fetchStatus": fetch_status,
            "connection": connection,
            "oneTimeAccess": one_time,
            "authRequestId": outcome.auth_request,
        })),
        OutputFormat::Table => {
            let provider =
                connection.as_ref().map(|c| c.name.clone()).or(name).unwrap_or_else(|| bank.to_string());
            if one_time {
                output::line(&format!(
                    "Connected {provider} with one-time access: Moneyhub made user {user} (managed by the user)."
                ));
            } else {
                output::line(&format!("Connected {provider} for user {user}."));
            }
            let mut pairs = vec![("connection", outcome.connection_id.to_string())];
            if let Some(id) = &outcome.auth_request {
                pairs.push(("auth request", id.clone()));
            }
            if let Some(s) = &outcome.sync_id {
                pairs.push(("first sync", format!("{s} ({})", fetch_status.as_deref().unwrap_or("?"))));
            }
            if let Some(c) = &connection {
                pairs.push(("status", health_text(c)));
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
