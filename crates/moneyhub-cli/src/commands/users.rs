//! `moneyhub users create|get|list|delete`.
//!
//! JSON: `create` and `get` print the user as Moneyhub sends it (`{userId, clientUserId,
//! clientId, createdAt, updatedAt, scopes, managedBy, userType, connectionIds, ...}`), `list`
//! an array of them, `delete` `{"userId": ..., "deleted": true}`.

use moneyhub::{PageOptions, User};
use serde_json::json;

use crate::cli::UsersCommand;
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::table::{Column, Table};
use crate::output::{self, OutputFormat};
use crate::resolve;

/// Runs the command.
pub async fn run(ctx: &Ctx, command: UsersCommand) -> CmdResult {
    match command {
        UsersCommand::Create { client_user_id } => {
            let user = ctx.client.users().create(client_user_id.as_deref()).await.map_err(|e| ctx.fail(e))?;
            show(ctx, &user);
        }
        UsersCommand::Get { user } => {
            let id = resolve::user(&user)?;
            let user = ctx.client.users().get(&id).await.map_err(|e| ctx.fail_for_user(e, &id))?;
            show(ctx, &user);
        }
        UsersCommand::List { limit } => list(ctx, limit).await?,
        UsersCommand::Delete { user, yes } => {
            let id = resolve::user(&user)?;
            resolve::confirm(&format!("Delete user {id} with all their connections and data"), yes)?;
            ctx.client.users().delete(&id).await.map_err(|e| ctx.fail(e))?;
            match ctx.output {
                OutputFormat::Json => output::json(&json!({"userId": id, "deleted": true})),
                OutputFormat::Table => output::line(&format!("Deleted user {id}.")),
            }
        }
    }
    Ok(())
}

fn show(ctx: &Ctx, user: &User) {
    if ctx.output == OutputFormat::Json {
        output::json(user);
        return;
    }
    let connections = if user.connection_ids.is_empty() {
        "none".to_owned()
    } else {
        user.connection_ids
            .iter()
            .map(|c| output::short_connection(c.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    output::details(&[
        ("user", user.user_id.to_string()),
        ("client user", output::or_dash(user.client_user_id.as_ref())),
        ("created", output::when(&user.created_at)),
        ("type", format!("{} (managed by {})", user.user_type, user.managed_by)),
        ("connections", connections),
    ]);
}

async fn list(ctx: &Ctx, limit: Option<u64>) -> CmdResult {
    if limit == Some(0) {
        return Err(Failure::usage("--limit must be at least 1"));
    }
    let mut users: Vec<User> = Vec::new();
    let mut next = Some(PageOptions::new(1000, 0));
    while let Some(mut page) = next {
        if let Some(max) = limit {
            let left = max.saturating_sub(users.len() as u64);
            page.limit = page.limit.min(u32::try_from(left).unwrap_or(u32::MAX));
        }
        let got = ctx.client.users().list(page).await.map_err(|e| ctx.fail(e))?;
        next = got.next;
        users.extend(got.items);
        if limit.is_some_and(|max| users.len() as u64 >= max) {
            break;
        }
    }
    if ctx.output == OutputFormat::Json {
        output::json(&users);
        return Ok(());
    }
    if users.is_empty() {
        output::line("No users.");
        return Ok(());
    }
    let mut t = Table::new(vec![
        Column::new("USER"),
        Column::new("CLIENT USER ID").elide_end(8),
        Column::new("CREATED"),
        Column::new("CONNECTIONS").right(),
    ]);
    for u in &users {
        t.row(vec![
            u.user_id.to_string(),
            output::or_dash(u.client_user_id.as_ref()),
            output::when(&u.created_at),
            u.connection_ids.len().to_string(),
        ]);
    }
    output::table(&t);
    output::line(&output::count(users.len(), "user", "users"));
    Ok(())
}
