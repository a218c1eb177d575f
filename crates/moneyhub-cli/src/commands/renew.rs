//! `moneyhub reauth|refresh|reconsent --user U --connection C`: renewing a connection through
//! its authorisation flow.
//!
//! `--via auth-request` goes through Moneyhub's Auth Requests API instead of PAR.
//!
//! JSON: `{"flow": "reauth"|"refresh"|"reconsent", "userId", "previousConnectionId",
//! "connectionId", "connectionIdChanged", "connection": {...}, "authRequestId"}`. After a reauth the connection
//! id may change (Moneyhub moves re-selected accounts to a new id): always use `connectionId`.

use moneyhub::{AuthFlow, Connected, Connection, ConnectionId, NewAuthRequest, RenewOptions, UserId};
use serde_json::json;

use crate::cli::{FlowArgs, ReconsentArgs, RenewArgs, Via};
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::{self, OutputFormat};
use crate::{flow, resolve};

fn flow_name(flow: AuthFlow) -> &'static str {
    match flow {
        AuthFlow::Connect => "connect",
        AuthFlow::Reauth => "reauth",
        AuthFlow::Refresh => "refresh",
        AuthFlow::Reconsent => "reconsent",
    }
}

/// Checks that `flow` makes sense for `connection` (reconsent needs `tppConsent`).
pub fn precheck(flow: AuthFlow, connection: &Connection) -> CmdResult {
    match flow {
        AuthFlow::Reconsent if connection.tpp_consent != Some(true) => Err(Failure::usage(format!(
            "connection {} has no tppConsent: a reconsent is not possible, the user must go back to the bank (`moneyhub reauth`)",
            connection.id
        ))),
        AuthFlow::Reconsent if connection.expires_at.is_none() => Err(Failure::usage(format!(
            "connection {} has no consent expiry to renew (legacy connections and some banks never expire)",
            connection.id
        ))),
        AuthFlow::Refresh if !connection.kind.is_legacy() => {
            output::warn(&format!(
                "moneyhub: note: refresh is meant for legacy connections; {} is of type {}",
                connection.name, connection.kind
            ));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Runs one renewal flow for `connection` and returns the code exchange's outcome.
pub async fn renew(
    ctx: &Ctx,
    flow: AuthFlow,
    user: &UserId,
    connection: &Connection,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    flow_args: &FlowArgs,
) -> CmdResult<Renewed> {
    precheck(flow, connection)?;
    let mut options = RenewOptions::new(user.clone(), connection.id.clone());
    if flow_args.via == Via::AuthRequest {
        let mut new = NewAuthRequest::renew(flow_name(flow), user.clone(), connection.id.clone())
            .map_err(|e| ctx.fail(e))?;
        if let Some(at) = expires_at {
            new = new.expires_at(at);
        }
        let done = flow::via_auth_request(ctx, &new, flow_args).await?;
        let connection_id = done.connection_id.clone().ok_or_else(|| {
            Failure::api(format!("auth request {} completed without a connection id", done.id))
        })?;
        return Ok(Renewed { connection_id, auth_request: Some(done.id) });
    }
    if let Some(at) = expires_at {
        options = options.expires_at(at);
    }
    let auth = ctx.client.auth();
    let request = match flow {
        AuthFlow::Reauth => auth.reauth(options).await,
        AuthFlow::Refresh => auth.refresh(options).await,
        _ => auth.reconsent(options).await,
    }
    .map_err(|e| ctx.fail(e))?;
    let connected: Connected = flow::complete(ctx, &request, flow_args).await?;
    Ok(Renewed { connection_id: connected.connection_id, auth_request: None })
}

/// What a renewal produced.
pub struct Renewed {
    /// The renewed connection (a reauth may give a new id).
    pub connection_id: ConnectionId,
    /// The auth request used, with `--via auth-request`.
    pub auth_request: Option<String>,
}

async fn run(ctx: &Ctx, flow: AuthFlow, args: RenewArgs, expires_at: Option<String>) -> CmdResult {
    let user = resolve::user(&args.user)?;
    let expires_at = expires_at.map(|t| resolve::time("--expires-at", &t)).transpose()?;
    let before = resolve::connection(ctx, &user, &args.connection).await?;
    let connected = renew(ctx, flow, &user, &before, expires_at, &args.flow).await?;
    let after = super::connect::find(ctx, &user, &connected.connection_id).await;
    let changed = connected.connection_id != before.id;
    match ctx.output {
        OutputFormat::Json => output::json(&json!({
            "flow": flow_name(flow),
            "userId": user,
            "previousConnectionId": before.id,
            "connectionId": connected.connection_id,
            "connectionIdChanged": changed,
            "connection": after,
            "authRequestId": connected.auth_request,
        })),
        OutputFormat::Table => {
            let verb = match flow {
                AuthFlow::Reauth => "Reauthenticated",
                AuthFlow::Refresh => "Refreshed",
                _ => "Renewed the consent of",
            };
            output::line(&format!("{verb} {} ({}).", before.name, flow_name(flow)));
            let mut pairs = vec![("connection", connected.connection_id.to_string())];
            if changed {
                pairs.push(("was", before.id.to_string()));
            }
            if let Some(id) = &connected.auth_request {
                pairs.push(("auth request", id.clone()));
            }
            if let Some(c) = &after {
                pairs.push(("status", super::connections::health_text(c)));
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

/// `moneyhub reauth`.
pub async fn reauth(ctx: &Ctx, args: RenewArgs) -> CmdResult {
    run(ctx, AuthFlow::Reauth, args, None).await
}

/// `moneyhub refresh`.
pub async fn refresh(ctx: &Ctx, args: RenewArgs) -> CmdResult {
    run(ctx, AuthFlow::Refresh, args, None).await
}

/// `moneyhub reconsent`.
pub async fn reconsent(ctx: &Ctx, args: ReconsentArgs) -> CmdResult {
    run(ctx, AuthFlow::Reconsent, args.renew, args.expires_at).await
}
