//! The doctor's advice, shared by `moneyhub doctor` and `moneyhub demo`: a row per connection
//! from `moneyhub::health::advise` (lifecycle spec §3), with what this client knows of its own
//! manual syncs, and its table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use moneyhub::health::{advise, Action, AdviceContext};
use moneyhub::{AccountFilter, Connection, ConnectionId, UserId};
use moneyhub_types::AccountType;
use serde::Serialize;

use crate::context::Ctx;
use crate::output::table::{Column, Table};
use crate::output::{self, OutputFormat};

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
    output::emit_styled(&render(rows, now, group_by_user, output::width(), output::colour()));
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
    let mut out = table(rows, now, group_by_user, width, colour);
    out.push_str(&summary(rows));
    out.push('\n');
    out
}

/// The rows as a table, without the summary line.
fn table(rows: &[DoctorRow], now: DateTime<Utc>, group_by_user: bool, width: usize, colour: bool) -> String {
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
    t.render(width, colour)
}

/// `7 connections: 2 none, 1 sync, 2 reauth, 1 reconsent, 1 remove`.
pub fn summary(rows: &[DoctorRow]) -> String {
    let mut counts = Counts::default();
    counts.add(rows);
    counts.summary()
}

/// How many rows advise each action.
#[derive(Debug, Default)]
struct Counts([usize; Action::ALL.len()]);

impl Counts {
    fn add(&mut self, rows: &[DoctorRow]) {
        for r in rows {
            if let Some(i) = Action::ALL.iter().position(|a| *a == r.action) {
                self.0[i] = self.0[i].saturating_add(1);
            }
        }
    }

    fn total(&self) -> usize {
        self.0.iter().fold(0, |a, n| a.saturating_add(*n))
    }

    fn summary(&self) -> String {
        let parts: Vec<String> =
            Action::ALL.iter().zip(self.0).filter(|(_, n)| *n > 0).map(|(a, n)| format!("{n} {a}")).collect();
        format!("{}: {}", output::count(self.total(), "connection", "connections"), parts.join(", "))
    }
}

/// The report printed while it is made (`doctor --all-users`): rows go out a chunk at a time,
/// so memory is bounded by a chunk whatever the number of users. The output is the one
/// [`print()`] gives for all the rows at once, except that, in a table, each chunk's columns are
/// sized to that chunk (the summary line still counts every row). JSON is the same array,
/// byte for byte.
pub struct StreamedReport {
    format: OutputFormat,
    now: DateTime<Utc>,
    counts: Counts,
}

impl StreamedReport {
    /// A report of nothing yet.
    pub fn new(format: OutputFormat, now: DateTime<Utc>) -> Self {
        StreamedReport { format, now, counts: Counts::default() }
    }

    /// Prints a chunk of rows (grouped by user in a table).
    pub fn rows(&mut self, rows: &[DoctorRow]) {
        if rows.is_empty() {
            return;
        }
        let first = self.counts.total() == 0;
        self.counts.add(rows);
        if self.format == OutputFormat::Json {
            // `to_string_pretty` of the chunk, without its brackets, is the chunk's part of the
            // whole array's pretty form; chunks are joined as its elements are (`,\n`).
            let Ok(text) = serde_json::to_string_pretty(rows) else { return };
            let inner = text.strip_prefix("[\n").and_then(|t| t.strip_suffix("\n]")).unwrap_or(&text);
            output::emit(&format!("{}{inner}", if first { "[\n" } else { ",\n" }));
            return;
        }
        output::emit(&table(rows, self.now, true, output::width(), output::colour()));
    }

    /// Ends the report: the array's end, or the summary over every row.
    pub fn finish(self) {
        let empty = self.counts.total() == 0;
        match (self.format, empty) {
            (OutputFormat::Json, true) => output::emit("[]\n"),
            (OutputFormat::Json, false) => output::emit("\n]\n"),
            (_, true) => output::emit("No connections.\n"),
            (_, false) => output::emit(&format!("{}\n", self.counts.summary())),
        }
    }
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
