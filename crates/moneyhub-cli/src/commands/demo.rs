//! `moneyhub demo`: a narrated tour of the connection lifecycle on an embedded sandbox.
//!
//! The sandbox runs inside this process on 127.0.0.1 with its clock frozen, so the story is
//! the same on every run and touches no network beyond loopback. It:
//!
//! 1. creates a user and connects ten providers through the real OIDC flow (pushed
//!    authorisation request, the sandbox's consent page, code exchange, verified id_token);
//! 2. scripts what happens next through the control API (a bank rejecting the stored
//!    credentials, one asking for MFA, consents ending, a provider withdrawn, syncs failing) and
//!    moves the virtual clock three days on;
//! 3. prints the doctor's table: every action (`none`, `sync`, `reauth`, `reconsent`,
//!    `refresh`, `remove`; `contact_support` from a saved response with an unknown value);
//! 4. acts on it: advised syncs (one fixing a stale connection, one that fails and so
//!    escalates), the guard refusing a second sync, a reconsent, a reauth and a refresh;
//! 5. reads transactions by pages and by ids;
//! 6. removes the withdrawn provider's connection and shows its data gone;
//! 7. prints the doctor's table again.
//!
//! With `--output json` it prints `{userId, connections, doctorBefore, doctorAfter,
//! contactSupport, elapsedMs}` instead of the narration.

use std::time::Instant;

use chrono::Duration;
use futures_util::StreamExt;
use moneyhub::{
    AccountFilter, AuthFlow, BankId, Connection, ConnectionId, SyncOptions, TransactionFilter, UserId,
};
use moneyhub_sandbox::kit::Advance;
use moneyhub_sandbox::scenario::{Scenario, ScenarioFormat};
use serde_json::{json, Value};

use crate::advice::{self as doctor, DoctorRow};
use crate::cli::{DemoArgs, FlowArgs, GlobalArgs};
use crate::context::{control_failure, embedded_epoch, Ctx};
use crate::exit::{CmdResult, Failure};
use crate::output::table::{Column, Table};
use crate::output::views::{health_text, transactions_table};
use crate::output::{self, OutputFormat};

/// The story's scenario: the user, the ten banks and the state each is put in. The demo
/// connects the banks through the real flow, then loads this file on top, which finds the
/// user by `clientUserId` and each connection by bank.
// `scenarios/ten-connections.toml` in this crate is a link to the file in the repository's
// `examples/`, so the packaged crate carries it too.
const SCENARIO: &str = include_str!("../../scenarios/ten-connections.toml");
const SCENARIO_NAME: &str = "examples/scenarios/ten-connections.toml";

/// What the narration says happens to each connection of the scenario, by key.
const PLOTS: [(&str, &str); 10] = [
    ("mock", "stays healthy"),
    ("hargreaves", "fetches once only (single-sync-only), so its data goes stale"),
    ("natwest", "starts failing every sync"),
    ("aviva", "asks for MFA at its next overnight sync"),
    ("barclays", "rejects the stored credentials"),
    ("hsbc", "has its consent end tomorrow"),
    ("monzo", "had its consent lapse 100 days ago, so tppConsent is gone"),
    ("lloyds", "has its consent end in 6 days"),
    ("northwind", "is withdrawn by Moneyhub for good"),
    ("modelo", "stays healthy (a mortgage and a loan beside a current account)"),
];

/// The scenario's user and connections: `(clientUserId, [(key, bank id)])`.
fn cast() -> CmdResult<(String, Vec<(String, String)>)> {
    let scenario = Scenario::parse(SCENARIO, ScenarioFormat::Toml, SCENARIO_NAME)
        .map_err(|e| Failure::internal(format!("demo: {e}")))?;
    let user = scenario.users.first().ok_or_else(|| Failure::internal("demo: the scenario has no user"))?;
    let banks = user
        .connections
        .iter()
        .map(|c| (c.key.clone().unwrap_or_else(|| c.bank.clone()), c.bank.clone()))
        .collect();
    Ok((user.client_user_id.clone(), banks))
}

/// The narrator: prints in table mode, stays quiet in JSON mode.
struct Story {
    on: bool,
}

impl Story {
    /// Prints a paragraph, wrapped to the terminal width; continuation lines keep the indent
    /// (plus two spaces).
    fn say(&self, text: &str) {
        if !self.on {
            return;
        }
        let indent = text.len() - text.trim_start().len();
        let width = output::width().saturating_sub(indent + 2);
        let lines = output::table::wrap(text.trim_start(), width);
        if lines.is_empty() {
            output::line("");
        }
        for (i, l) in lines.iter().enumerate() {
            let pad = if i == 0 || indent == 0 { indent } else { indent + 2 };
            output::line(&format!("{}{l}", " ".repeat(pad)));
        }
    }

    fn heading(&self, text: &str) {
        if self.on {
            output::line("");
            output::line(&format!("== {text}"));
        }
    }

    fn table(&self, rows: &[DoctorRow], now: chrono::DateTime<chrono::Utc>) {
        if self.on {
            output::emit_styled(&doctor::render(rows, now, false, output::width(), output::colour()));
        }
    }
}

struct Demo {
    ctx: Ctx,
    user: UserId,
    ids: Vec<(String, ConnectionId, String)>,
    story: Story,
}

impl Demo {
    fn id(&self, key: &str) -> CmdResult<ConnectionId> {
        self.ids
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, id, _)| id.clone())
            .ok_or_else(|| Failure::internal(format!("demo: no connection {key}")))
    }

    async fn connection(&self, key: &str) -> CmdResult<Connection> {
        let id = self.id(key)?;
        let all = self.ctx.client.connections().list(&self.user).await.map_err(|e| self.ctx.fail(e))?;
        all.into_iter().find(|c| c.id == id).ok_or_else(|| Failure::internal(format!("demo: {key} is gone")))
    }

    async fn doctor(&self) -> CmdResult<Vec<DoctorRow>> {
        doctor::user_rows(&self.ctx, &self.user, self.ctx.now(), true).await.map_err(|e| self.ctx.fail(e))
    }
}

fn advice_of(rows: &[DoctorRow], id: &ConnectionId) -> String {
    rows.iter().find(|r| &r.connection_id == id).map_or_else(|| "?".to_owned(), |r| r.action.to_string())
}

/// Runs the demo.
pub async fn run(global: &GlobalArgs, _args: DemoArgs) -> CmdResult {
    let started = Instant::now();
    let t0 = embedded_epoch();
    let ctx = Ctx::embedded(global, t0).await?;
    let story = Story { on: global.output == OutputFormat::Table };
    let base = ctx.sandbox.as_ref().map(|s| s.base_url.clone()).unwrap_or_default();
    story.say("moneyhub demo: the life of a user's bank connections, and what to do about them.");
    story.say(&format!(
        "A sandbox runs inside this process at {base} with its clock frozen at {} UTC; nothing leaves this machine.",
        output::when(&t0)
    ));

    // 1. A user and their banks.
    story.heading("1. A user connects ten providers");
    let (client_user_id, cast) = cast()?;
    let user = ctx.client.users().create(Some(client_user_id.as_str())).await.map_err(|e| ctx.fail(e))?;
    story.say(&format!("Created user {} (clientUserId {client_user_id}).", user.user_id));
    story.say(
        "Each connection goes through the real flow: a pushed authorisation request, the bank's consent \
         page (the sandbox consents at once), the code exchange and a verified id_token naming the connection.",
    );
    let flow = FlowArgs { browser: false, timeout: 30, via: Default::default() };
    let mut demo = Demo { ctx: ctx.clone(), user: user.user_id.clone(), ids: Vec::new(), story };
    let mut connected_table = Table::new(vec![
        Column::new("PROVIDER").elide_end(12),
        Column::new("TYPE"),
        Column::new("CONNECTION"),
        Column::new("ACCOUNTS").right(),
    ]);
    for (key, bank) in &cast {
        let bank: BankId = bank.parse().map_err(|e| Failure::internal(format!("demo bank id: {e}")))?;
        let connected = crate::flow::connect_bank(&ctx, &demo.user, &bank, false, &flow).await?;
        let c = crate::flow::find_connection(&ctx, &demo.user, &connected.connection_id)
            .await
            .ok_or_else(|| Failure::internal("demo: a new connection is not listed"))?;
        connected_table.row(vec![
            c.name.clone(),
            c.kind.to_string(),
            output::short_connection(c.id.as_str()),
            c.account_ids.len().to_string(),
        ]);
        demo.ids.push((key.clone(), connected.connection_id, c.name));
    }
    if demo.story.on {
        output::table(&connected_table);
    }

    // 2. The plot.
    demo.story.heading("2. Three days pass");
    demo.story
        .say(&format!("Scripted by the scenario {SCENARIO_NAME}, loaded through the sandbox's control API:"));
    for (key, plot) in PLOTS {
        let name = demo.ids.iter().find(|(k, _, _)| k == key).map(|(_, _, n)| n.clone()).unwrap_or_default();
        demo.story.say(&format!("  - {name} {plot}."));
    }
    let control = ctx.control()?;
    control.load_scenario(SCENARIO, SCENARIO_NAME, false).await.map_err(control_failure)?;
    let ran = control.advance(Advance::days(3)).await.map_err(control_failure)?;
    let (auto, history) = (ran.ran.auto_syncs, ran.ran.history_fetches);
    demo.story.say(&format!(
        "Moved the virtual clock 3 days on, to {} UTC: {auto} automatic syncs and {history} background history fetches ran.",
        output::when(&ctx.now())
    ));

    // 3. The doctor.
    demo.story.heading("3. `moneyhub doctor --user` says what to do about each connection");
    let before = demo.doctor().await?;
    demo.story.table(&before, ctx.now());
    let contact = contact_support_example(ctx.now())?;
    demo.story.say("");
    demo.story.say(
        "The sandbox never sends values this toolkit does not know, but Moneyhub may. From a saved \
         response (`doctor --from-file`) whose error is \"provider_maintenance\":",
    );
    demo.story.table(std::slice::from_ref(&contact), ctx.now());

    // 4. Acting on the advice.
    demo.story.heading("4. Acting on the advice");
    act(&demo, &before).await?;

    // 5. Transactions.
    demo.story.heading("5. Reading transactions");
    transactions(&demo).await?;

    // 6. Removal.
    demo.story.heading("6. Removing the withdrawn provider's connection");
    removal(&demo).await?;

    // 7. The doctor again.
    demo.story.heading("7. `moneyhub doctor` again");
    let after = demo.doctor().await?;
    demo.story.table(&after, ctx.now());
    let elapsed = started.elapsed();
    demo.story.say("");
    demo.story.say(&format!(
        "Done in {:.1} s. Next: run `moneyhub sandbox serve` and point MONEYHUB_IDENTITY_URL and \
         MONEYHUB_API_URL at it, or see `moneyhub --help` for every command.",
        elapsed.as_secs_f64()
    ));
    if global.output == OutputFormat::Json {
        let connections: serde_json::Map<String, Value> =
            demo.ids.iter().map(|(k, id, _)| (k.clone(), json!(id))).collect();
        output::json(&json!({
            "userId": demo.user,
            "connections": connections,
            "doctorBefore": before,
            "doctorAfter": after,
            "contactSupport": contact,
            "elapsedMs": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }));
    }
    Ok(())
}

/// The `contact_support` row from a saved connection carrying an unknown error value.
fn contact_support_example(now: chrono::DateTime<chrono::Utc>) -> CmdResult<DoctorRow> {
    let saved = json!({
        "id": "33d5f7e5995f1b56227d6603740fa7e7:0b4e5a30-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        "name": "Barclays", "type": "api", "connectedOn": output::ts(&(now - Duration::days(20))),
        "lastUpdated": output::ts(&(now - Duration::hours(5))), "accountIds": [],
        "status": "error", "error": "provider_maintenance", "tppConsent": true
    });
    let c: Connection =
        moneyhub_types::decode_value(&saved).map_err(|e| Failure::internal(format!("demo: {e}")))?;
    Ok(doctor::diagnose(&c, None, &doctor::context_for(now, None)))
}

/// A synchronous manual sync of `c` (the guard applies).
async fn sync(demo: &Demo, c: &Connection) -> Result<moneyhub_types::SyncResponse, moneyhub::Error> {
    let options = SyncOptions::new().enable_async(false).provider_name(c.name.clone());
    demo.ctx.client.connections().sync(&demo.user, &c.id, options).await
}

async fn act(demo: &Demo, before: &[DoctorRow]) -> CmdResult {
    let ctx = &demo.ctx;
    let s = &demo.story;
    let flow = FlowArgs { browser: false, timeout: 30, via: Default::default() };

    // An advised sync that fixes a stale connection, and the guard refusing a second one.
    let hl = demo.connection("hargreaves").await?;
    s.say(&format!("{} (advised: {}): a manual sync…", hl.name, advice_of(before, &hl.id)));
    let done = sync(demo, &hl).await.map_err(|e| ctx.fail(e))?;
    let hl_after = demo.connection("hargreaves").await?;
    s.say(&format!(
        "  sync {} finished; the connection is now {}.",
        done.sync_id.as_ref().map_or_else(|| "?".to_owned(), |i| output::short_uuid(i.as_str())),
        health_text(&hl_after)
    ));
    s.say("  And once more, straight away:");
    match sync(demo, &hl_after).await {
        Ok(_) => return Err(Failure::internal("demo: the guard let a second sync through")),
        Err(e) if e.not_before().is_some() => {
            let f = ctx.fail(e);
            let why = f.message.split_once("(not sent): ").map_or(f.message.as_str(), |(_, w)| w);
            s.say(&format!(
                "  refused by the guard before anything was sent (the CLI exits with code {}):",
                f.code
            ));
            s.say(&format!("  {why}"));
        }
        Err(e) => return Err(ctx.fail(e)),
    }

    // An advised sync that does not help: the next doctor escalates.
    let nw = demo.connection("natwest").await?;
    s.say(&format!("{} (advised: {}): a manual sync…", nw.name, advice_of(before, &nw.id)));
    let done = sync(demo, &nw).await.map_err(|e| ctx.fail(e))?;
    let nw_after = demo.connection("natwest").await?;
    let row = doctor::diagnose(
        &nw_after,
        Some(&demo.user),
        &doctor::guard_context(ctx, &nw_after, ctx.now(), None).await,
    );
    s.say(&format!(
        "  sync {} failed again ({}), so it has been retried: the advice is now {}.",
        done.sync_id.as_ref().map_or_else(|| "?".to_owned(), |i| output::short_uuid(i.as_str())),
        health_text(&nw_after),
        row.action
    ));
    s.say(&format!("  \"{}\"", row.reason));

    // Renewals through the authorisation flows.
    for (key, flow_kind) in
        [("hsbc", AuthFlow::Reconsent), ("barclays", AuthFlow::Reauth), ("aviva", AuthFlow::Refresh)]
    {
        let c = demo.connection(key).await?;
        let name = match flow_kind {
            AuthFlow::Reconsent => "reconsent",
            AuthFlow::Reauth => "reauth",
            _ => "refresh",
        };
        let connected = crate::flow::renew(ctx, flow_kind, &demo.user, &c, None, &flow).await?;
        let after = crate::flow::find_connection(ctx, &demo.user, &connected.connection_id)
            .await
            .ok_or_else(|| Failure::internal("demo: a renewed connection is not listed"))?;
        let id_note =
            if connected.connection_id == c.id { "same connection id" } else { "new connection id" };
        let advice = doctor::diagnose(
            &after,
            Some(&demo.user),
            &doctor::guard_context(ctx, &after, ctx.now(), None).await,
        );
        s.say(&format!(
            "{} (advised: {}): the {name} flow went through ({id_note}){}.",
            c.name,
            advice_of(before, &c.id),
            after.expires_at.map_or_else(String::new, |e| format!("; consent until {}", output::day(&e)))
        ));
        let next = match advice.action {
            moneyhub::health::Action::None => "nothing more to do.".to_owned(),
            other => format!("doctor now advises {other}. {}", advice.reason),
        };
        s.say(&format!("  Status now {}; {next}", health_text(&after)));
    }
    Ok(())
}

async fn transactions(demo: &Demo) -> CmdResult {
    let ctx = &demo.ctx;
    let s = &demo.story;
    let mock = demo.connection("mock").await?;
    let account = mock.account_ids.first().cloned().ok_or_else(|| Failure::internal("demo: no account"))?;
    let filter = TransactionFilter::new().account(account.clone()).limit(100);
    let mut pages = Box::pin(ctx.client.transactions().pages(&demo.user, filter));
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ctx.fail(e))?;
        sizes.push(page.transactions.len());
        seen.extend(page.transactions);
        if sizes.len() == 3 {
            break;
        }
    }
    s.say(&format!(
        "By pages: account {} of {}, 100 per page: pages of {} transactions (newest first):",
        output::short_uuid(account.as_str()),
        mock.name,
        sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    ));
    if s.on {
        output::table(&transactions_table(&seen[..seen.len().min(4)]));
    }
    let mut wanted: Vec<String> = seen.iter().step_by(37).take(5).map(|t| t.id.to_string()).collect();
    wanted.push("00000000-0000-4000-8000-000000000000".to_owned());
    let found = ctx.client.transactions().by_ids(&demo.user, &wanted).await.map_err(|e| ctx.fail(e))?;
    s.say(&format!(
        "By ids: asked for {} ids (one made up): {} found, {} missing ({}).",
        wanted.len(),
        found.transactions.len(),
        found.missing.len(),
        found.missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
    ));
    Ok(())
}

async fn removal(demo: &Demo) -> CmdResult {
    let ctx = &demo.ctx;
    let s = &demo.story;
    let c = demo.connection("northwind").await?;
    let accounts = ctx
        .client
        .accounts()
        .list(&demo.user, &AccountFilter::new().connection(c.id.clone()))
        .await
        .map_err(|e| ctx.fail(e))?;
    let filter = TransactionFilter::new().accounts(c.account_ids.iter().cloned()).limit(1000);
    let page = ctx.client.transactions().list(&demo.user, &filter).await.map_err(|e| ctx.fail(e))?;
    let ids: Vec<String> = page.transactions.iter().map(|t| t.id.to_string()).collect();
    let total = page.meta.count.unwrap_or(ids.len() as u64);
    s.say(&format!(
        "{} (status {}, advised: remove) holds {} and {} transactions.",
        c.name,
        c.status,
        output::count(accounts.len(), "account", "accounts"),
        output::group(total)
    ));
    ctx.client.connections().delete(&demo.user, &c.id).await.map_err(|e| ctx.fail(e))?;
    let left = ctx.client.connections().list(&demo.user).await.map_err(|e| ctx.fail(e))?;
    let accounts_after =
        ctx.client.accounts().list(&demo.user, &AccountFilter::new()).await.map_err(|e| ctx.fail(e))?;
    let still = accounts_after.iter().filter(|a| a.connection_id.as_ref() == Some(&c.id)).count();
    let found = ctx.client.transactions().by_ids(&demo.user, &ids).await.map_err(|e| ctx.fail(e))?;
    s.say(&format!(
        "Deleted it. The user has {} left; accounts of the removed connection: {still}; of its {} transactions read back by id: {} found, {} missing.",
        output::count(left.len(), "connection", "connections"),
        ids.len(),
        found.transactions.len(),
        found.missing.len()
    ));
    if still != 0 || !found.transactions.is_empty() {
        return Err(Failure::internal("demo: the removed connection's data is still there"));
    }
    if !left.iter().all(|l| l.id != c.id) {
        return Err(Failure::internal("demo: the removed connection is still listed"));
    }
    Ok(())
}
