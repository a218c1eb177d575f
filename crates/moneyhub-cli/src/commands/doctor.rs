//! `moneyhub doctor --user U | --all-users | --from-file F [--accounts-file A] [--now TIME]`:
//! what to do about each connection, from `moneyhub::health::advise` (lifecycle spec §3).
//!
//! * `--user U`: the user's connections (`GET /users/{id}/connections`) and their accounts
//!   (`GET /accounts`, for the staleness thresholds of §2; skipped with a warning when it fails).
//! * `--all-users`: every user, `--concurrency` at a time, with a progress bar on a terminal.
//!   Account types are **not** fetched there: the budget is one token request in all (the
//!   connection listing uses a client token, not one per user) plus one list request per user;
//!   staleness then uses the per-connection-type thresholds.
//! * `--from-file F`: offline, from a saved body of `GET /users/{id}/connections` (or a bare
//!   array), with `--accounts-file A` a saved body of `GET /accounts`. No configuration needed.
//!
//! What this client knows of its own manual syncs (the guard's history) feeds the advice: a
//! `sync` not yet allowed carries `notBefore`, and an error that outlived our last sync is
//! advised the next remedy ("retried").
//!
//! JSON: an array of `{connectionId, userId, name, type, status, error, extendedStatus, action,
//! reason, notBefore, rule, unknown}` (`userId` is `null` with `--from-file`; `notBefore` is set
//! only for a `sync` not yet allowed; `unknown` names the unrecognised value behind a
//! `contact_support`; `rule` is the row of the lifecycle table that decided).

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use moneyhub::health::{advise, Action, AdviceContext};
use moneyhub::{AccountFilter, Connection, ConnectionId, PageOptions, User, UserId};
use moneyhub_types::AccountType;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::table::{Column, Table};
use crate::output::{self, progress, OutputFormat};
use crate::resolve;

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DoctorRow {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its user, when known.
    pub user_id: Option<UserId>,
    /// Provider name.
    pub name: String,
    /// Connection type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `status`.
    pub status: String,
    /// `error`.
    pub error: Option<String>,
    /// `extendedStatus`.
    pub extended_status: Option<String>,
    /// The advised action.
    pub action: Action,
    /// Why, in one sentence.
    pub reason: String,
    /// For `sync`: not before this time.
    pub not_before: Option<String>,
    /// The lifecycle table row that decided.
    pub rule: u8,
    /// For `contact_support`: the unrecognised value.
    pub unknown: Option<String>,
    #[serde(skip)]
    not_before_at: Option<DateTime<Utc>>,
}

/// Advises on one connection.
pub fn diagnose(c: &Connection, user: Option<&UserId>, context: &AdviceContext) -> DoctorRow {
    let advice = advise(c, context);
    DoctorRow {
        connection_id: c.id.clone(),
        user_id: user.cloned(),
        name: c.name.clone(),
        kind: c.kind.to_string(),
        status: c.status.to_string(),
        // A connection's error texts come from the server: whatever looks like a credential is
        // redacted before it reaches a table or JSON.
        error: c.error.as_ref().map(|e| moneyhub::redact_credentials(e.as_ref())),
        extended_status: c.extended_status.as_ref().map(|e| moneyhub::redact_credentials(e.as_ref())),
        action: advice.action,
        reason: advice.reason,
        not_before: advice.not_before.as_ref().map(output::ts),
        rule: advice.rule,
        unknown: advice.unknown,
        not_before_at: advice.not_before,
    }
}

/// The advice context of a connection: `now` and its account types.
pub fn context_for(now: DateTime<Utc>, types: Option<&Vec<AccountType>>) -> AdviceContext {
    let mut context = AdviceContext::new(now);
    if let Some(types) = types {
        context = context.with_account_types(types.iter().cloned());
    }
    context
}

/// [`context_for`] with the guard's knowledge of the connection (its last manual sync, and
/// when the next is allowed), asked of the client.
pub async fn guard_context(
    ctx: &Ctx,
    c: &Connection,
    now: DateTime<Utc>,
    types: Option<&Vec<AccountType>>,
) -> AdviceContext {
    let connections = ctx.client.connections();
    context_for(now, types)
        .with_last_manual_sync(connections.last_manual_sync(&c.id).await)
        .with_sync_allowed_at(connections.sync_allowed_at(&c.id).await)
}

fn action_colour(a: &str) -> Option<&'static str> {
    match a {
        "none" => Some("32"),
        "sync" => Some("36"),
        "remove" => Some("31"),
        "contact_support" => Some("35"),
        _ => Some("33"),
    }
}

/// Prints the report (table or JSON).
pub fn print(rows: &[DoctorRow], format: OutputFormat, now: DateTime<Utc>, group_by_user: bool) {
    if format == OutputFormat::Json {
        output::json(&rows);
        return;
    }
    output::emit(&render(rows, now, group_by_user, output::width(), output::colour()));
}

/// The report as a table: one row per connection, its reason wrapped on the lines below, and a
/// summary line.
pub fn render(
    rows: &[DoctorRow],
    now: DateTime<Utc>,
    group_by_user: bool,
    width: usize,
    colour: bool,
) -> String {
    if rows.is_empty() {
        return "No connections.\n".to_owned();
    }
    let mut t = Table::new(vec![
        Column::new("CONNECTION"),
        Column::new("PROVIDER").elide_end(8),
        Column::new("TYPE"),
        Column::new("STATUS"),
        Column::new("ERROR").elide_end(8),
        Column::new("ACTION").colour(action_colour),
        Column::new("NOT BEFORE"),
    ]);
    let mut last_user: Option<&UserId> = None;
    for r in rows {
        if group_by_user && r.user_id.as_ref() != last_user {
            last_user = r.user_id.as_ref();
            if let Some(u) = last_user {
                t.group(format!("user {u}"));
            }
        }
        let error = r.extended_status.clone().or_else(|| r.error.clone()).unwrap_or_else(|| "-".to_owned());
        t.row_with_note(
            vec![
                output::short_connection(r.connection_id.as_str()),
                r.name.clone(),
                r.kind.clone(),
                r.status.clone(),
                error,
                r.action.to_string(),
                r.not_before_at.as_ref().map_or_else(|| "-".to_owned(), |t| output::when_short(now, t)),
            ],
            r.reason.clone(),
        );
    }
    let mut out = t.render(width, colour);
    out.push_str(&summary(rows));
    out.push('\n');
    out
}

/// `7 connections: 2 none, 1 sync, 2 reauth, 1 reconsent, 1 remove`.
pub fn summary(rows: &[DoctorRow]) -> String {
    let parts: Vec<String> = Action::ALL
        .iter()
        .filter_map(|a| {
            let n = rows.iter().filter(|r| r.action == *a).count();
            (n > 0).then(|| format!("{n} {a}"))
        })
        .collect();
    format!("{}: {}", output::count(rows.len(), "connection", "connections"), parts.join(", "))
}

fn now_arg(args: &DoctorArgs) -> CmdResult<Option<DateTime<Utc>>> {
    args.now.as_deref().map(|t| resolve::time("--now", t)).transpose()
}

fn keep(rows: Vec<DoctorRow>, actionable: bool) -> Vec<DoctorRow> {
    if actionable {
        rows.into_iter().filter(|r| r.action != Action::None).collect()
    } else {
        rows
    }
}

/// `--from-file`: no client, no network.
pub async fn offline(global: &GlobalArgs, args: DoctorArgs) -> CmdResult {
    let path = args.from_file.clone().ok_or_else(|| Failure::usage("--from-file is required"))?;
    let now = now_arg(&args)?.unwrap_or_else(Utc::now);
    let connections = read_connections(&path)?;
    let types = match &args.accounts_file {
        Some(a) => Some(read_account_types(a)?),
        None => None,
    };
    let rows: Vec<DoctorRow> = connections
        .iter()
        .map(|c| {
            let t = types.as_ref().and_then(|m| m.get(&c.id));
            diagnose(c, None, &context_for(now, t))
        })
        .collect();
    print(&keep(rows, args.actionable), global.output, now, false);
    Ok(())
}

/// The array inside a saved body: `{"data": [...]}` or a bare array.
fn saved_array(flag: &str, path: &Path, text: &str) -> CmdResult<Vec<Value>> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Failure::usage(format!("{flag} {}: not JSON: {e}", path.display())))?;
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(Failure::usage(format!(
                "{flag} {}: expected an array, or an object whose \"data\" is an array",
                path.display()
            ))),
        },
        _ => Err(Failure::usage(format!(
            "{flag} {}: expected an array, or an object with \"data\"",
            path.display()
        ))),
    }
}

/// Reads a saved connections body.
pub fn read_connections(path: &Path) -> CmdResult<Vec<Connection>> {
    let text = resolve::read_input("--from-file", path)?;
    let items = saved_array("--from-file", path, &text)?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            moneyhub_types::decode_value::<Connection>(&v).map_err(|e| {
                Failure::usage(format!("--from-file {}: connection [{i}] is not valid: {e}", path.display()))
            })
        })
        .collect()
}

/// Reads a saved `GET /accounts` body into the account types of each connection.
pub fn read_account_types(path: &Path) -> CmdResult<HashMap<ConnectionId, Vec<AccountType>>> {
    let text = resolve::read_input("--accounts-file", path)?;
    let items = saved_array("--accounts-file", path, &text)?;
    let mut map: HashMap<ConnectionId, Vec<AccountType>> = HashMap::new();
    for (i, v) in items.iter().enumerate() {
        let kind = v.get("type").and_then(Value::as_str).ok_or_else(|| {
            Failure::usage(format!(
                "--accounts-file {}: account [{i}] has no \"type\" string",
                path.display()
            ))
        })?;
        // Manual accounts have no connection: they do not affect any connection's threshold.
        let Some(conn) = v.get("connectionId").and_then(Value::as_str) else { continue };
        let conn: ConnectionId = conn.parse().map_err(|e| {
            Failure::usage(format!("--accounts-file {}: account [{i}] connectionId: {e}", path.display()))
        })?;
        map.entry(conn).or_default().push(AccountType::from(kind));
    }
    Ok(map)
}

/// Account types per connection for one user (best effort: `None` with a warning on failure).
pub async fn account_types(ctx: &Ctx, user: &UserId) -> Option<HashMap<ConnectionId, Vec<AccountType>>> {
    match ctx.client.accounts().list(user, &AccountFilter::new()).await {
        Ok(accounts) => {
            let mut map: HashMap<ConnectionId, Vec<AccountType>> = HashMap::new();
            for a in accounts {
                if let Some(c) = a.connection_id {
                    map.entry(c).or_default().push(a.kind);
                }
            }
            Some(map)
        }
        Err(e) => {
            output::warn(&format!(
                "moneyhub: note: could not read the accounts ({e}); staleness uses the per-type thresholds"
            ));
            None
        }
    }
}

/// The report rows of one user (connections and, when `with_accounts`, account types).
pub async fn user_rows(
    ctx: &Ctx,
    user: &UserId,
    now: DateTime<Utc>,
    with_accounts: bool,
) -> Result<Vec<DoctorRow>, moneyhub::Error> {
    let connections = ctx.client.connections().list(user).await?;
    let types = if with_accounts && !connections.is_empty() { account_types(ctx, user).await } else { None };
    let mut rows = Vec::with_capacity(connections.len());
    for c in &connections {
        let t = types.as_ref().and_then(|m| m.get(&c.id));
        rows.push(diagnose(c, Some(user), &guard_context(ctx, c, now, t).await));
    }
    Ok(rows)
}

/// `--user` and `--all-users`.
pub async fn run(ctx: &Ctx, args: DoctorArgs) -> CmdResult {
    let now = now_arg(&args)?.unwrap_or_else(|| ctx.now());
    if let Some(user) = &args.user {
        let user = resolve::user(user)?;
        let rows = user_rows(ctx, &user, now, true).await.map_err(|e| ctx.fail(e))?;
        print(&keep(rows, args.actionable), ctx.output, now, false);
        return Ok(());
    }
    let users = all_users(ctx).await?;
    let bar = progress::bar(users.len() as u64, "examining users");
    let results: Vec<(UserId, Result<Vec<DoctorRow>, moneyhub::Error>)> =
        stream::iter(users.into_iter().map(|u| u.user_id))
            .map(|user| {
                let bar = bar.clone();
                async move {
                    let rows = user_rows(ctx, &user, now, false).await;
                    bar.inc(1);
                    (user, rows)
                }
            })
            .buffered(usize::from(args.concurrency))
            .collect()
            .await;
    bar.finish_and_clear();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (user, result) in results {
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => failed.push((user, e)),
        }
    }
    print(&keep(rows, args.actionable), ctx.output, now, true);
    if let Some((user, e)) = failed.first() {
        let first = Failure::from_client(e, ctx.now());
        return Err(Failure {
            code: first.code,
            message: format!(
                "{} could not be examined (first: user {user}: {})",
                output::count(failed.len(), "user", "users"),
                first.message
            ),
        });
    }
    Ok(())
}

/// Every user of the client, 1000 per page.
async fn all_users(ctx: &Ctx) -> CmdResult<Vec<User>> {
    let mut users = Vec::new();
    let mut next = Some(PageOptions::new(1000, 0));
    let counter = progress::counter("listing users");
    while let Some(page) = next {
        let got = ctx.client.users().list(page).await.map_err(|e| ctx.fail(e))?;
        next = got.next;
        counter.inc(got.items.len() as u64);
        users.extend(got.items);
    }
    counter.finish_and_clear();
    Ok(users)
}
