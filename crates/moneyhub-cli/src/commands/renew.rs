//! `moneyhub reauth|refresh|reconsent --user U --connection C`: renewing a connection through
//! its authorisation flow.
//!
//! `--via auth-request` goes through Moneyhub's Auth Requests API instead of PAR.
//!
//! JSON: `{"flow": "reauth"|"refresh"|"reconsent", "userId", "previousConnectionId",
//! "connectionId", "connectionIdChanged", "connection": {...}, "authRequestId"}`. After a reauth the connection
//! id may change (Moneyhub moves re-selected accounts to a new id): always use `connectionId`.

use moneyhub::AuthFlow;
use serde_json::json;

use crate::cli::{ReconsentArgs, RenewArgs};
use crate::context::Ctx;
use crate::exit::CmdResult;
use crate::output::views::health_text;
use crate::output::{self, OutputFormat};
use crate::{flow, resolve};

async fn run(ctx: &Ctx, flow: AuthFlow, args: RenewArgs, expires_at: Option<String>) -> CmdResult {
    let user = resolve::user(&args.user)?;
    let expires_at = expires_at.map(|t| resolve::time("--expires-at", &t)).transpose()?;
    let before = resolve::connection(ctx, &user, &args.connection).await?;
    let connected = flow::renew(ctx, flow, &user, &before, expires_at, &args.flow).await?;
    let after = flow::find_connection(ctx, &user, &connected.connection_id).await;
    let changed = connected.connection_id != before.id;
    match ctx.output {
        OutputFormat::Json => output::json(&json!({
            "flow": flow::flow_name(flow),
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
            output::line(&format!("{verb} {} ({}).", before.name, flow::flow_name(flow)));
            let mut pairs = vec![("connection", connected.connection_id.to_string())];
            if changed {
                pairs.push(("was", before.id.to_string()));
            }
            if let Some(id) = &connected.auth_request {
                pairs.push(("auth request", id.clone()));
            }
            if let Some(c) = &after {
                pairs.push(("status", health_text(c)));
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
