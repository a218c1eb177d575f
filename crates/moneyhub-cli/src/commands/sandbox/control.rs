//! `moneyhub sandbox clock|trigger|connection|faults|deliveries|reset|load`: a running
//! sandbox driven through its control API.
//!
//! JSON output: the control API's answers, camelCase: `clock` prints `{now, frozen}` (and
//! `ran` after `advance`); `trigger` `{id, deliveries}`; `connection set` `{connectionId,
//! state, thereafter, connection}`; `faults add` the rule, `faults list` `{data}`, `faults
//! clear` `{cleared}`; `deliveries` `{data, lastSeq, pending}`; `reset` `{now, frozen}`;
//! `load` `{now, frozen, reset, ran, users, faults}`.

use chrono::{DateTime, Utc};
use moneyhub_sandbox::kit::{Advance, Control, FaultSpec, FiredEvent, StateRequest, TestEvent};
use moneyhub_sandbox::scenario::ConnectionState;
use serde_json::json;

use crate::cli::{
    ClockCommand, ConnectionSetArgs, DeliveriesArgs, DeliveriesCommand, FaultAddArgs, FaultsCommand,
    GlobalArgs, ListenArgs, LogsCommand, SandboxCommand, SandboxConnectionCommand, SandboxTarget,
    ScriptedState, TriggerArgs, WebhooksCommand,
};
use crate::config::Target;
use crate::context::{control_failure, sandbox_control};
use crate::exit::{CmdResult, Failure};
use crate::output::table::{self, Column, Table};
use crate::output::{self, OutputFormat};

/// Runs a control command (every `moneyhub sandbox` command but `serve`).
pub async fn run(global: &GlobalArgs, target: &SandboxTarget, command: SandboxCommand) -> CmdResult {
    let format = global.output;
    match command {
        SandboxCommand::Serve(_) => Err(Failure::internal("serve is not a control command")),
        SandboxCommand::Clock { command } => clock(&connect(global, target)?, command, format).await,
        SandboxCommand::Trigger(args) => trigger(&connect(global, target)?, args, format).await,
        SandboxCommand::Connection { command: SandboxConnectionCommand::Set(args) } => {
            set_connection(&connect(global, target)?, args, format).await
        }
        SandboxCommand::Faults { command } => faults(&connect(global, target)?, command, format).await,
        SandboxCommand::Deliveries(DeliveriesArgs {
            command: Some(DeliveriesCommand::Resend { seq }),
            ..
        }) => {
            let control = connect(global, target)?;
            let fired = control.resend(seq).await.map_err(control_failure)?;
            report_fired(&fired, &format!("delivery #{seq} sent again"), format)
        }
        SandboxCommand::Deliveries(args) => {
            let control = connect(global, target)?;
            let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
            let page = control.deliveries(args.after, limit).await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&page),
                OutputFormat::Table if page.data.is_empty() => {
                    let settings = control.webhook_target().await.map_err(control_failure)?;
                    let why = if settings.url.is_none() {
                        " (no webhook target is set: `moneyhub sandbox webhooks set URL`)"
                    } else {
                        ""
                    };
                    output::line(&format!(
                        "no deliveries after #{} ({} pending){why}",
                        args.after, page.pending
                    ))
                }
                OutputFormat::Table => {
                    output::table(&deliveries_table(&page.data));
                    output::line(&format!("last #{}; {} pending", page.last_seq, page.pending));
                }
            }
            Ok(())
        }
        SandboxCommand::Webhooks { command } => webhooks(&connect(global, target)?, command, format).await,
        SandboxCommand::Listen(args) => listen(&connect(global, target)?, args, format).await,
        SandboxCommand::Logs { command: LogsCommand::Tail { follow, lines, bodies } } => {
            logs_tail(&connect(global, target)?, follow, lines, bodies, format).await
        }
        SandboxCommand::Reset => {
            let clock = connect(global, target)?.reset().await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&clock),
                OutputFormat::Table => output::line(&format!(
                    "sandbox reset to its seeded state; clock at {} UTC{}",
                    output::when(&clock.now),
                    if clock.frozen { " (frozen)" } else { "" }
                )),
            }
            Ok(())
        }
        SandboxCommand::Load(args) => {
            let control = connect(global, target)?;
            let name = args.file.display().to_string();
            let text =
                std::fs::read_to_string(&args.file).map_err(|e| Failure::usage(format!("{name}: {e}")))?;
            let loaded = control.load_scenario(&text, &name, args.reset).await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&loaded),
                OutputFormat::Table => {
                    let mut t = Table::new(vec![
                        Column::new("CLIENT USER").elide_end(8),
                        Column::new("KEY").elide_end(8),
                        Column::new("PROVIDER").elide_end(8),
                        Column::new("CONNECTION"),
                        Column::new("STATE"),
                        Column::new("NEW"),
                    ]);
                    for u in &loaded.users {
                        for c in &u.connections {
                            t.row(vec![
                                u.client_user_id.clone(),
                                c.key.clone(),
                                c.bank_name.clone(),
                                c.connection_id.clone(),
                                c.state.as_str().to_owned(),
                                if c.existed { "no" } else { "yes" }.to_owned(),
                            ]);
                        }
                    }
                    output::line(&format!(
                        "loaded {name}{}: clock at {} UTC{}; {}, {}, {}",
                        if loaded.reset { " after a reset" } else { "" },
                        loaded.now.get(..16).unwrap_or(&loaded.now).replace('T', " "),
                        if loaded.frozen { " (frozen)" } else { "" },
                        output::count(loaded.users.len(), "user", "users"),
                        output::count(
                            loaded.users.iter().map(|u| u.connections.len()).sum::<usize>(),
                            "connection",
                            "connections"
                        ),
                        output::count(loaded.faults.len(), "fault rule", "fault rules"),
                    ));
                    if !loaded.users.iter().all(|u| u.connections.is_empty()) {
                        output::table(&t);
                    }
                }
            }
            Ok(())
        }
    }
}

/// `sandbox trigger`: the sandbox builds a realistic payload from the user's data unless a
/// file gives one. A delivery the receiver did not accept (no 2xx, or no answer) prints its
/// status and ends with exit code 3.
async fn trigger(control: &Control, args: TriggerArgs, format: OutputFormat) -> CmdResult {
    let payload = match &args.payload {
        None => None,
        Some(path) => {
            let text = crate::resolve::read_input("--payload", path)?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Failure::usage(format!("--payload {}: not JSON: {e}", path.display())))?;
            Some(value)
        }
    };
    let event = TestEvent {
        user_id: args.user.clone(),
        event_type: args.event_type.clone(),
        payload,
        connection_id: args.connection.clone(),
        account_id: args.account.clone(),
    };
    let fired = control.fire_event(&event).await.map_err(control_failure)?;
    report_fired(&fired, &format!("event {} ({}) for user {}", fired.id, args.event_type, args.user), format)
}

/// Prints what a trigger or a resend did; a delivery that was not accepted is a failure.
fn report_fired(fired: &FiredEvent, heading: &str, format: OutputFormat) -> CmdResult {
    match format {
        OutputFormat::Json => output::json(fired),
        OutputFormat::Table => {
            output::line(heading);
            output::line(&format!("payload {}", fired.payload));
            output::table(&deliveries_table(&fired.deliveries));
        }
    }
    let failed: Vec<String> = fired
        .deliveries
        .iter()
        .filter(|d| d.outcome != "delivered")
        .map(|d| {
            let status = d.status.map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}"));
            let why = d.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            format!("#{} {} ({status}{why})", d.seq, d.outcome)
        })
        .collect();
    if fired.deliveries.is_empty() {
        return Err(Failure::api("the event was not delivered (no attempt was logged)"));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::api(format!("the receiver did not accept the event: {}", failed.join("; "))))
    }
}

async fn webhooks(control: &Control, command: WebhooksCommand, format: OutputFormat) -> CmdResult {
    let settings = match command {
        WebhooksCommand::Set { url, format: f } => {
            control.set_webhook_target(Some(&url), f.map(|f| f.as_str())).await
        }
        WebhooksCommand::Show => control.webhook_target().await,
        WebhooksCommand::Clear => control.set_webhook_target(None, None).await,
    }
    .map_err(control_failure)?;
    match format {
        OutputFormat::Json => output::json(&settings),
        OutputFormat::Table => match &settings.url {
            Some(url) => output::details(&[
                ("url", url.clone()),
                ("format", output::or_dash(settings.format.as_ref())),
                ("recording", if settings.recording { "yes" } else { "no" }.to_owned()),
            ]),
            None => output::line("no webhook target: the sandbox sends no webhooks (and records no events)"),
        },
    }
    Ok(())
}

/// How often `listen` and `logs tail --follow` ask for news.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// `sandbox listen`: prints each delivery after the ones already logged, as it is logged.
async fn listen(control: &Control, args: ListenArgs, format: OutputFormat) -> CmdResult {
    let stop = crate::signals::shutdown();
    tokio::pin!(stop);
    let previous = control.webhook_target().await.map_err(control_failure)?;
    // Read before the target changes, so that no delivery to it is missed.
    let mut after = control.deliveries(0, 1).await.map_err(control_failure)?.last_seq;
    if let Some(url) = &args.forward_to {
        control.set_webhook_target(Some(url), Some(args.format.as_str())).await.map_err(control_failure)?;
        output::warn(&format!(
            "moneyhub: the sandbox now delivers webhooks to {url} ({})",
            args.format.as_str()
        ));
    } else if previous.url.is_none() {
        output::warn(
            "moneyhub: no webhook target is set, so nothing is delivered: give --forward-to URL \
             (or `moneyhub sandbox webhooks set URL`)",
        );
    }
    output::warn("moneyhub: listening for webhook deliveries (Ctrl-C stops)");
    let mut seen = 0u64;
    let outcome = loop {
        let page = match control.deliveries(after, 1000).await {
            Ok(p) => p,
            Err(e) => break Err(control_failure(e)),
        };
        for d in &page.data {
            after = after.max(d.seq);
            seen += 1;
            match format {
                OutputFormat::Json => output::line(&serde_json::to_string(d).unwrap_or_default()),
                OutputFormat::Table => output::line(&delivery_line(d)),
            }
            if args.count.is_some_and(|n| seen >= n) {
                break;
            }
        }
        if args.count.is_some_and(|n| seen >= n) {
            break Ok(());
        }
        tokio::select! {
            () = &mut stop => break Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
    };
    if args.forward_to.is_some() {
        let restored = control.set_webhook_target(previous.url.as_deref(), previous.format.as_deref()).await;
        if let Err(e) = restored {
            output::warn(&format!("moneyhub: could not put the previous webhook target back: {e}"));
        }
    }
    outcome
}

/// One delivery as a line: `#12 09:30 newTransactions user 5c79… accounts 1 transactions 10 →
/// delivered (HTTP 200, 12 ms)`.
fn delivery_line(d: &moneyhub_sandbox::kit::Delivery) -> String {
    let mut ids = Vec::new();
    let p = &d.payload;
    if let Some(c) = p["connectionId"].as_str() {
        ids.push(format!("connection {}", output::short_connection(c)));
    }
    if let Some(a) = p["accountId"].as_str() {
        ids.push(format!("account {}", output::short_uuid(a)));
    }
    if let Some(accounts) = p["accounts"].as_array() {
        let txs: usize = accounts.iter().filter_map(|a| a["transactions"].as_array()).map(Vec::len).sum();
        let first = accounts.first().and_then(|a| a["id"].as_str().or_else(|| a["accountId"].as_str()));
        if let Some(a) = first {
            ids.push(format!("account {}", output::short_uuid(a)));
        }
        if txs > 0 {
            ids.push(output::count(txs, "transaction", "transactions"));
        }
    }
    let answer = match (d.status, &d.error) {
        (Some(s), _) => format!("HTTP {s}, {} ms", d.duration_ms),
        (None, Some(e)) => e.clone(),
        (None, None) => "no answer".to_owned(),
    };
    format!(
        "#{} {} {} user {}{}{} -> {} ({answer})",
        d.seq,
        output::when(&d.at),
        d.event_type,
        output::short_uuid(&d.user_id),
        if ids.is_empty() { "" } else { " " },
        ids.join(", "),
        d.outcome
    )
}

/// `sandbox logs tail [--follow] [--bodies]`: the latest `lines` requests, then (with
/// `--follow`) each new one; with `--bodies`, each request's body as the sandbox kept it
/// (secrets redacted, at most 4 KiB), on the lines after the request's, indented. Everything
/// printed goes through [`output::sanitize`] (a body is the client's text).
async fn logs_tail(
    control: &Control,
    follow: bool,
    lines: u64,
    bodies: bool,
    format: OutputFormat,
) -> CmdResult {
    let stop = crate::signals::shutdown();
    tokio::pin!(stop);
    let last = control.requests(0, 1).await.map_err(control_failure)?.last_seq;
    let mut after = last.saturating_sub(lines);
    loop {
        let page = control.requests(after, 1000).await.map_err(control_failure)?;
        for e in &page.data {
            after = after.max(e.seq);
            let mut e = e.clone();
            if !bodies {
                e.body = None;
            }
            let e = &e;
            match format {
                OutputFormat::Json => output::line(&serde_json::to_string(e).unwrap_or_default()),
                OutputFormat::Table => {
                    let query = e.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
                    output::line(&format!(
                        "#{} {} {} {}{} {} ({} ms){}",
                        e.seq,
                        e.at.get(11..19).unwrap_or(&e.at),
                        e.method,
                        e.path,
                        table::elide(&query, 60, table::Elide::End),
                        e.status,
                        e.duration_us / 1000,
                        e.note.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
                    ));
                    if let Some(body) = &e.body {
                        output::line(&format!("    body: {}", body.replace('\n', "\n          ")));
                    }
                }
            }
        }
        if !follow {
            return Ok(());
        }
        // The page was full: ask again at once.
        if page.data.len() >= 1000 {
            continue;
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The control client of the sandbox the command names (`--sandbox-url`), else of the
/// configured identity URL.
fn connect(global: &GlobalArgs, target: &SandboxTarget) -> CmdResult<Control> {
    let url =
        match &target.sandbox_url {
            Some(u) => u.clone(),
            None => match crate::config::resolve(global)? {
                Target::Remote(settings) => settings.identity_url.map(|s| s.value).ok_or_else(|| {
                    Failure::usage(
                    "which sandbox? give --sandbox-url (or MONEYHUB_SANDBOX_URL, or MONEYHUB_IDENTITY_URL)",
                )
                })?,
                Target::Embedded { .. } => return Err(Failure::usage(
                    "which sandbox? give --sandbox-url URL (or MONEYHUB_SANDBOX_URL) of one started with \
                     `moneyhub sandbox serve`: an embedded sandbox would end with this command",
                )),
            },
        };
    let parsed = url::Url::parse(&url).map_err(|e| Failure::usage(format!("sandbox URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Failure::usage(format!("sandbox URL {url:?}: must be an http(s) URL")));
    }
    // The identity URL may name the issuer (`…/oidc`): the control API is beside it.
    let base = url.trim_end_matches('/').trim_end_matches("/oidc").to_owned();
    Ok(sandbox_control(&base, None))
}

async fn clock(control: &Control, command: ClockCommand, format: OutputFormat) -> CmdResult {
    let (reading, ran) = match command {
        ClockCommand::Show => (control.clock().await, None),
        ClockCommand::Freeze => (control.freeze().await, None),
        ClockCommand::Resume => (control.resume().await, None),
        ClockCommand::Advance { by } => {
            let advance = parse_advance(&by).map_err(Failure::usage)?;
            let advanced = control.advance(advance).await.map_err(control_failure)?;
            (control.clock().await, Some(advanced.ran))
        }
    };
    let reading = reading.map_err(control_failure)?;
    match format {
        OutputFormat::Json => {
            let mut v = json!(reading);
            if let Some(ran) = ran {
                v["ran"] = json!(ran);
            }
            output::json(&v);
        }
        OutputFormat::Table => {
            output::line(&format!(
                "sandbox clock: {} UTC, {}",
                output::when(&reading.now),
                if reading.frozen { "frozen" } else { "following the wall clock" }
            ));
            if let Some(r) = ran {
                output::line(&format!(
                    "ran: {} automatic syncs, {} history fetches, {} asynchronous syncs finished, {} reminders, {} enrichments",
                    r.auto_syncs, r.history_fetches, r.async_syncs, r.reminders, r.enrichments
                ));
            }
        }
    }
    Ok(())
}

/// `90m`, `36h`, `3d`, `1d12h`, `45s`, or an RFC 3339 instant.
pub fn parse_advance(text: &str) -> Result<Advance, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Advance::to(at.with_timezone(&Utc)));
    }
    let bad = || format!("{text:?} is neither a duration (90m, 36h, 3d, 1d12h, 45s) nor an RFC 3339 time");
    let mut advance = Advance::default();
    let mut number = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let slot = match ch {
            'd' => &mut advance.days,
            'h' => &mut advance.hours,
            'm' => &mut advance.minutes,
            's' => &mut advance.seconds,
            _ => return Err(bad()),
        };
        if slot.is_some() {
            return Err(bad());
        }
        *slot = Some(n);
    }
    if !number.is_empty() || advance == Advance::default() {
        return Err(bad());
    }
    Ok(advance)
}

async fn set_connection(control: &Control, args: ConnectionSetArgs, format: OutputFormat) -> CmdResult {
    let since = args.since.as_deref().map(|s| crate::resolve::time("--since", s)).transpose()?;
    let state = match args.state {
        ScriptedState::Healthy => ConnectionState::Healthy,
        ScriptedState::Failing => ConnectionState::Failing,
        ScriptedState::MfaDue => ConnectionState::MfaDue,
        ScriptedState::CredentialsRejected => ConnectionState::CredentialsRejected,
        ScriptedState::ConsentEnding => ConnectionState::ConsentEnding,
        ScriptedState::ConsentLapsed => ConnectionState::ConsentLapsed,
        ScriptedState::ProviderWithdrawn => ConnectionState::ProviderWithdrawn,
    };
    let wanted = StateRequest { state, days: args.days, since, single_sync_only: args.single_sync_only };
    control.set_state(&args.connection, &wanted).await.map_err(control_failure)?;
    let view = control.connection(&args.connection).await.map_err(control_failure)?;
    let c = &view.connection;
    // The id in full, though a prefix named it.
    let full_id = c["id"].as_str().map_or_else(|| args.connection.clone(), str::to_owned);
    // A missing or `null` field shows as `-` (never "null").
    let text = |key: &str| match &c[key] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match format {
        OutputFormat::Json => output::json(&json!({
            "connectionId": full_id,
            "state": state,
            "thereafter": view.thereafter,
            "connection": view.connection,
        })),
        OutputFormat::Table => output::details(&[
            ("connection", full_id.clone()),
            ("state", state.as_str().to_owned()),
            ("status", text("status")),
            ("error", text("error")),
            ("expires", text("expiresAt")),
            ("tppConsent", text("tppConsent")),
            (
                "next syncs",
                view.thereafter
                    .map_or_else(|| "succeed".to_owned(), |o| json!(o).as_str().unwrap_or("?").to_owned()),
            ),
        ]),
    }
    Ok(())
}

async fn faults(control: &Control, command: FaultsCommand, format: OutputFormat) -> CmdResult {
    match command {
        FaultsCommand::Add(args) => {
            let rule = control.add_fault(&fault_spec(args)).await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&rule),
                OutputFormat::Table => output::table(&faults_table(std::slice::from_ref(&rule))),
            }
        }
        FaultsCommand::List => {
            let rules = control.faults().await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&json!({ "data": rules })),
                OutputFormat::Table if rules.is_empty() => output::line("no fault rules"),
                OutputFormat::Table => output::table(&faults_table(&rules)),
            }
        }
        FaultsCommand::Clear => {
            let n = control.faults().await.map_err(control_failure)?.len();
            control.clear_faults().await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&json!({ "cleared": n })),
                OutputFormat::Table => {
                    output::line(&format!("removed {}", output::count(n, "fault rule", "fault rules")))
                }
            }
        }
    }
    Ok(())
}

fn fault_spec(args: FaultAddArgs) -> FaultSpec {
    FaultSpec {
        method: args.method,
        path: args.path,
        exact: args.exact,
        status: args.status,
        code: args.code,
        message: args.message,
        retry_after_secs: args.retry_after,
        latency_ms: args.latency,
        drop: args.drop,
        malformed: args.malformed,
        rate: args.rate,
        times: args.times,
    }
}

fn faults_table(rules: &[moneyhub_sandbox::kit::FaultRule]) -> Table {
    let mut t = Table::new(vec![
        Column::new("ID"),
        Column::new("METHOD"),
        Column::new("PATH").elide_end(10),
        Column::new("EFFECT"),
        Column::new("LEFT").right(),
        Column::new("HITS").right(),
        Column::new("ACTIVE"),
    ]);
    for r in rules {
        let mut effect = if r.drop {
            "drop".to_owned()
        } else if r.malformed {
            "malformed".to_owned()
        } else {
            r.status.map_or_else(|| "-".to_owned(), |s| s.to_string())
        };
        if r.latency_ms > 0 {
            effect.push_str(&format!(" +{}ms", r.latency_ms));
        }
        t.row(vec![
            r.id.clone(),
            r.method.clone().unwrap_or_else(|| "any".to_owned()),
            format!("{}{}", r.path, if r.exact { "" } else { "…" }),
            effect,
            r.remaining.map_or_else(|| "∞".to_owned(), |n| n.to_string()),
            r.hits.to_string(),
            if r.active { "yes" } else { "no" }.to_owned(),
        ]);
    }
    t
}

fn deliveries_table(deliveries: &[moneyhub_sandbox::kit::Delivery]) -> Table {
    let mut t = Table::new(vec![
        Column::new("#").right(),
        Column::new("AT"),
        Column::new("EVENT").elide_end(8),
        Column::new("USER").elide_end(8),
        Column::new("OUTCOME"),
        Column::new("STATUS").right(),
        Column::new("MS").right(),
    ]);
    for d in deliveries {
        t.row(vec![
            d.seq.to_string(),
            output::when(&d.at),
            d.event_type.clone(),
            d.user_id.clone(),
            d.outcome.to_string(),
            // The error's text is long (a connection refused, a timeout): JSON carries it.
            d.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            d.duration_ms.to_string(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_instants() {
        assert_eq!(parse_advance("3d").unwrap(), Advance::days(3));
        let both = parse_advance("1d12h").unwrap();
        assert_eq!((both.days, both.hours), (Some(1), Some(12)));
        assert!(parse_advance("2025-02-01T00:00:00Z").unwrap().to.is_some());
        for bad in ["", "3", "d", "3x", "1d1d", "-1d", "1.5h"] {
            assert!(parse_advance(bad).is_err(), "{bad}");
        }
    }
}
