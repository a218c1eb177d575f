//! Turning what the user typed into ids: users, connections (full id or the short id tables
//! show), banks (id, name or bankRef), times and dates; reading input files; confirmations.

use std::io::{IsTerminal, Read};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use moneyhub::{BankId, Connection, UserId};

use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};

/// A user id as given with `--user`.
pub fn user(raw: &str) -> CmdResult<UserId> {
    raw.trim().parse::<UserId>().map_err(|e| Failure::usage(format!("--user {raw:?}: {e}")))
}

/// An RFC 3339 time given with `flag`.
pub fn time(flag: &str, raw: &str) -> CmdResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim()).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        Failure::usage(format!("{flag} {raw:?} is not an RFC 3339 time (e.g. 2025-01-15T09:00:00Z): {e}"))
    })
}

/// A `YYYY-MM-DD` day given with `flag`.
pub fn date(flag: &str, raw: &str) -> CmdResult<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|e| Failure::usage(format!("{flag} {raw:?} is not a date like 2025-01-15: {e}")))
}

/// Finds a user's connection from its full id or a unique fragment of it (the short id
/// tables show is the start of the uuid part). Returns the connection as listed.
pub async fn connection(ctx: &Ctx, user: &UserId, raw: &str) -> CmdResult<Connection> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Failure::usage("--connection must not be empty"));
    }
    let all = ctx.client.connections().list(user).await.map_err(|e| ctx.fail(e))?;
    pick_connection(all, raw)
}

/// The connection `raw` designates among `all`.
pub fn pick_connection(all: Vec<Connection>, raw: &str) -> CmdResult<Connection> {
    if let Some(c) = all.iter().find(|c| c.id.as_str() == raw) {
        return Ok(c.clone());
    }
    let needle = raw.to_ascii_lowercase();
    let matches: Vec<&Connection> = all
        .iter()
        .filter(|c| {
            let id = c.id.as_str().to_ascii_lowercase();
            let uuid = id.rsplit_once(':').map_or(id.as_str(), |(_, u)| u);
            uuid.starts_with(&needle) || (needle.len() >= 8 && id.contains(&needle))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Failure::api(format!(
            "connection {raw} not found among the user's {} connection(s)",
            all.len()
        ))),
        many => Err(Failure::usage(format!(
            "--connection {raw:?} is ambiguous: it matches {}",
            many.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn is_bank_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A provider from its bank id, or its name or bankRef (case-insensitive, exact first, then
/// a unique substring of the name) in the `all` catalogue.
pub async fn bank(ctx: &Ctx, raw: &str) -> CmdResult<(BankId, Option<String>)> {
    let raw = raw.trim();
    if is_bank_id(raw) {
        let id = raw
            .to_ascii_lowercase()
            .parse::<BankId>()
            .map_err(|e| Failure::usage(format!("--bank {raw:?}: {e}")))?;
        return Ok((id, None));
    }
    if raw.is_empty() {
        return Err(Failure::usage("--bank must not be empty"));
    }
    let catalogue = ctx.client.connections().available().await.map_err(|e| ctx.fail(e))?;
    let needle = raw.to_lowercase();
    let exact: Vec<_> = catalogue
        .iter()
        .filter(|p| {
            p.name.to_lowercase() == needle
                || p.bank_ref.as_deref().is_some_and(|r| r.to_lowercase() == needle)
        })
        .collect();
    let found = if exact.is_empty() {
        catalogue.iter().filter(|p| p.name.to_lowercase().contains(&needle)).collect()
    } else {
        exact
    };
    match found.as_slice() {
        [one] => Ok((one.id.clone(), Some(one.name.clone()))),
        [] => Err(Failure::usage(format!(
            "--bank {raw:?}: no provider has that id, name or bankRef (see `moneyhub catalog`)"
        ))),
        many => Err(Failure::usage(format!(
            "--bank {raw:?} is ambiguous: {}",
            many.iter().map(|p| format!("{} ({})", p.name, p.id)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Reads a file, or stdin for `-`. Errors name the flag and the file.
pub fn read_input(flag: &str, path: &Path) -> CmdResult<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("{flag} -: could not read stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("{flag} {}: {e}", path.display())))
}

/// Asks the user to confirm a destructive action: `--yes` skips the question; without it,
/// stdin must be a terminal and the answer `y`.
pub fn confirm(question: &str, yes: bool) -> CmdResult {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!("{question}: refusing without --yes (stdin is not a terminal)")));
    }
    crate::output::warn(&format!("{question}? [y/N]"));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::internal(format!("could not read stdin: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Failure::usage("cancelled"))
    }
}
