//! `moneyhub sandbox clock|trigger|connection|faults|deliveries|reset|load`: a running
//! sandbox driven through its control API.
//!
//! JSON output: the control API's answers, camelCase: `clock` prints `{now, frozen}` (and
//! `ran` after `advance`); `trigger` `{id, deliveries}`; `connection set` `{connectionId,
//! state, thereafter, connection}`; `faults add` the rule, `faults list` `{data}`, `faults
//! clear` `{cleared}`; `deliveries` `{data, lastSeq, pending}`; `reset` `{now, frozen}`;
//! `load` `{now, frozen, reset, ran, users, faults}`.

use chrono::{DateTime, Utc};
use moneyhub_sandbox::kit::{Advance, Control, FaultSpec, StateRequest};
use moneyhub_sandbox::scenario::ConnectionState;
use serde_json::json;

use crate::cli::{
    ClockCommand, ConnectionSetArgs, FaultAddArgs, FaultsCommand, GlobalArgs, SandboxCommand,
    SandboxConnectionCommand, SandboxTarget, ScriptedState,
};
use crate::config::Target;
use crate::context::{control_failure, sandbox_control};
use crate::exit::{CmdResult, Failure};
use crate::output::table::{Column, Table};
use crate::output::{self, OutputFormat};

/// Runs a control command (every `moneyhub sandbox` command but `serve`).
pub async fn run(global: &GlobalArgs, command: SandboxCommand) -> CmdResult {
    let format = global.output;
    match command {
        SandboxCommand::Serve(_) => Err(Failure::internal("serve is not a control command")),
        SandboxCommand::Clock { command, target } => clock(&connect(global, &target)?, command, format).await,
        SandboxCommand::Trigger(args) => {
            let control = connect(global, &args.target)?;
            let payload = match &args.payload {
                None => None,
                Some(path) => {
                    let text = crate::resolve::read_input("--payload", path)?;
                    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                        Failure::usage(format!("--payload {}: not JSON: {e}", path.display()))
                    })?;
                    Some(value)
                }
            };
            let fired = control.fire(&args.user, &args.event_type, payload).await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&fired),
                OutputFormat::Table => {
                    output::line(&format!("event {} ({}) for user {}", fired.id, args.event_type, args.user));
                    output::table(&deliveries_table(&fired.deliveries));
                }
            }
            Ok(())
        }
        SandboxCommand::Connection { command: SandboxConnectionCommand::Set(args), target } => {
            set_connection(&connect(global, &target)?, args, format).await
        }
        SandboxCommand::Faults { command, target } => {
            faults(&connect(global, &target)?, command, format).await
        }
        SandboxCommand::Deliveries(args) => {
            let control = connect(global, &args.target)?;
            let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
            let page = control.deliveries(args.after, limit).await.map_err(control_failure)?;
            match format {
                OutputFormat::Json => output::json(&page),
                OutputFormat::Table if page.data.is_empty() => {
                    output::line(&format!("no deliveries after #{} ({} pending)", args.after, page.pending))
                }
                OutputFormat::Table => {
                    output::table(&deliveries_table(&page.data));
                    output::line(&format!("last #{}; {} pending", page.last_seq, page.pending));
                }
            }
            Ok(())
        }
        SandboxCommand::Reset { target } => {
            let clock = connect(global, &target)?.reset().await.map_err(control_failure)?;
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
            let control = connect(global, &args.target)?;
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
                        "loaded {name}{}: clock at {} UTC{}; {}, {} connections, {}",
                        if loaded.reset { " after a reset" } else { "" },
                        loaded.now.get(..16).unwrap_or(&loaded.now).replace('T', " "),
                        if loaded.frozen { " (frozen)" } else { "" },
                        output::count(loaded.users.len(), "user", "users"),
                        loaded.users.iter().map(|u| u.connections.len()).sum::<usize>(),
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
    let text = |key: &str| c[key].as_str().map_or_else(|| c[key].to_string(), str::to_owned);
    match format {
        OutputFormat::Json => output::json(&json!({
            "connectionId": args.connection,
            "state": state,
            "thereafter": view.thereafter,
            "connection": view.connection,
        })),
        OutputFormat::Table => output::details(&[
            ("connection", args.connection.clone()),
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
            d.outcome.clone(),
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
