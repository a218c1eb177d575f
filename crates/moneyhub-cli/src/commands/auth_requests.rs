//! `moneyhub auth-requests list|get`: the client's auth requests (the Auth Requests API).
//!
//! JSON: `list` → `[AuthRequest]`, `get` → `AuthRequest`, as Moneyhub sends them.

use moneyhub::{AuthRequest, PageOptions};

use crate::cli::AuthRequestsCommand;
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::table::{Column, Table};
use crate::output::{self, OutputFormat};

/// Runs the command.
pub async fn run(ctx: &Ctx, command: AuthRequestsCommand) -> CmdResult {
    match command {
        AuthRequestsCommand::List { limit } => list(ctx, limit).await,
        AuthRequestsCommand::Get { id } => {
            let ar = ctx.client.auth_requests().get(id.trim()).await.map_err(|e| ctx.fail(e))?;
            match ctx.output {
                OutputFormat::Json => output::json(&ar),
                OutputFormat::Table => show(&ar),
            }
            Ok(())
        }
    }
}

/// The details of one auth request.
pub fn show(ar: &AuthRequest) {
    let mut pairs = vec![
        ("id", ar.id.clone()),
        ("status", ar.status.to_string()),
        ("scope", ar.scope.clone()),
        ("created", output::when(&ar.created_at)),
        ("bank", output::or_dash(ar.bank_id.as_ref())),
        ("user", output::or_dash(ar.user_id.as_ref())),
        ("connection", output::or_dash(ar.connection_id.as_ref())),
    ];
    if let Some(s) = &ar.sync_id {
        pairs.push(("sync", s.to_string()));
    }
    if let Some(e) = &ar.error {
        let text = match &ar.error_description {
            Some(d) => format!("{e}: {d}"),
            None => e.clone(),
        };
        pairs.push(("error", text));
    }
    if let Some(t) = &ar.completed_at {
        pairs.push(("completed", output::when(t)));
    }
    if let Some(u) = &ar.redirect_params.auth_url {
        pairs.push(("auth url", u.clone()));
    }
    output::details(&pairs);
}

async fn list(ctx: &Ctx, limit: Option<u64>) -> CmdResult {
    if limit == Some(0) {
        return Err(Failure::usage("--limit must be at least 1"));
    }
    let mut all: Vec<AuthRequest> = Vec::new();
    let mut next = Some(PageOptions::new(1000, 0));
    while let Some(mut page) = next {
        if let Some(max) = limit {
            let left = max.saturating_sub(all.len() as u64);
            page.limit = page.limit.min(u32::try_from(left).unwrap_or(u32::MAX));
        }
        let got = ctx.client.auth_requests().list(page).await.map_err(|e| ctx.fail(e))?;
        next = got.next;
        all.extend(got.items);
        if limit.is_some_and(|max| all.len() as u64 >= max) {
            break;
        }
    }
    if ctx.output == OutputFormat::Json {
        output::json(&all);
        return Ok(());
    }
    if all.is_empty() {
        output::line("No auth requests.");
        return Ok(());
    }
    let mut t = Table::new(vec![
        Column::new("ID"),
        Column::new("STATUS"),
        Column::new("SCOPE").elide_end(10),
        Column::new("USER"),
        Column::new("CONNECTION"),
    ]);
    for ar in &all {
        t.row(vec![
            output::short_uuid(&ar.id),
            ar.status.to_string(),
            ar.scope.clone(),
            output::or_dash(ar.user_id.as_ref()),
            ar.connection_id
                .as_ref()
                .map_or_else(|| "-".to_owned(), |c| output::short_connection(c.as_str())),
        ]);
    }
    output::table(&t);
    output::line(&output::count(all.len(), "auth request", "auth requests"));
    Ok(())
}
