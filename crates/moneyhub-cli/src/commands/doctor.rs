//! `moneyhub doctor --user U | --all-users | --from-file F [--accounts-file A] [--now TIME]`:
//! what to do about each connection, from `moneyhub::health::advise` (lifecycle spec §3).
//!
//! * `--user U`: the user's connections (`GET /users/{id}/connections`) and their accounts
//!   (`GET /accounts`, for the staleness thresholds of §2; skipped with a warning when it fails).
//! * `--all-users`: every user, `--concurrency` at a time, with a progress bar on a terminal;
//!   printed a page of 1,000 users at a time, so memory stays bounded however many there are.
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
use moneyhub::health::Action;
use moneyhub::{Connection, ConnectionId, PageOptions, UserId};
use moneyhub_types::AccountType;
use serde_json::Value;

use crate::advice::{context_for, diagnose, print, user_rows, DoctorRow, StreamedReport};
use crate::cli::{DoctorArgs, GlobalArgs};
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::{self, progress};
use crate::resolve;

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

/// `--user` and `--all-users`.
pub async fn run(ctx: &Ctx, args: DoctorArgs) -> CmdResult {
    let now = now_arg(&args)?.unwrap_or_else(|| ctx.now());
    if let Some(user) = &args.user {
        let user = resolve::user(user)?;
        let rows = user_rows(ctx, &user, now, true).await.map_err(|e| ctx.fail_for_user(e, &user))?;
        print(&keep(rows, args.actionable), ctx.output, now, false);
        return Ok(());
    }
    all_users(ctx, &args, now).await
}

/// `--all-users`: a page of 1,000 users at a time is listed, examined (`--concurrency` users
/// at once) and printed before the next is listed, so memory stays bounded by a page however
/// many users the client has (see [`StreamedReport`]); of the users that could not be
/// examined only the count and the first are kept.
async fn all_users(ctx: &Ctx, args: &DoctorArgs, now: DateTime<Utc>) -> CmdResult {
    let mut report = StreamedReport::new(ctx.output, now);
    let mut failed: usize = 0;
    let mut first_failure: Option<(UserId, moneyhub::Error)> = None;
    let mut bar = None;
    let mut next = Some(PageOptions::new(1000, 0));
    while let Some(page) = next {
        let got = ctx.client.users().list(page).await.map_err(|e| ctx.fail(e))?;
        next = got.next;
        let bar = bar.get_or_insert_with(|| match got.total {
            Some(total) => progress::bar(total, "examining users"),
            None => progress::counter("examining users"),
        });
        let results: Vec<(UserId, Result<Vec<DoctorRow>, moneyhub::Error>)> =
            stream::iter(got.items.into_iter().map(|u| u.user_id))
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
        let mut rows = Vec::new();
        for (user, result) in results {
            match result {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    failed = failed.saturating_add(1);
                    first_failure.get_or_insert((user, e));
                }
            }
        }
        let rows = keep(rows, args.actionable);
        bar.suspend(|| report.rows(&rows));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report.finish();
    if let Some((user, e)) = first_failure {
        let first = Failure::from_client(&e, ctx.now());
        return Err(Failure {
            code: first.code,
            message: format!(
                "{} could not be examined (first: user {user}: {})",
                output::count(failed, "user", "users"),
                first.message
            ),
        });
    }
    Ok(())
}
