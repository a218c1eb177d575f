//! The dashboard page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;

use super::{gate, page_cookies, Access, PATH};
use chrono::{DateTime, Utc};

use crate::clock::iso;
use crate::http::html::{self, escape};
use crate::http::query::Query;
use crate::identity::Oidc;
use crate::state::AppState;
use crate::store::model::Connection;
use crate::store::Store;
use axum::extract::FromRef;

/// How many webhook deliveries and logged requests the page shows (the newest).
const TAIL: u64 = 25;

/// How many of a connection's syncs the page lists (the newest).
const RECENT_SYNCS: usize = 6;

/// The failures "fail next sync" offers (the control API's script outcomes).
pub const FAILURES: &[&str] = &["error", "partial", "mfa-required", "credentials-error"];

/// `GET /__sandbox/ui[?token=T][&done=MESSAGE]`.
pub async fn show(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let access = match gate(&state, &Method::GET, &headers, q.get("token")) {
        Ok(a) => a,
        Err(refusal) => return *refusal,
    };
    if let Access::TokenAccepted = access {
        // Keep the token out of the address bar and the history: cookie, then a clean URL.
        let mut res = html::see_other(PATH);
        page_cookies(&state, &headers, &mut res, &access);
        return res;
    }
    let mut res = html::page(StatusCode::OK, "Sandbox dashboard", "", None);
    let csrf = page_cookies(&state, &headers, &mut res, &access);
    let body = render(&state, &csrf, q.get("done"));
    let mut page = html::page(StatusCode::OK, "Sandbox dashboard", &body, None);
    for c in res.headers().get_all(axum::http::header::SET_COOKIE) {
        page.headers_mut().append(axum::http::header::SET_COOKIE, c.clone());
    }
    page
}

fn hidden(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf))
}

fn button(
    form_action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    id: &str,
    class: &str,
) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)))
        .collect();
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}{inputs}<button id=\"{}\" class=\"{}\">{}</button></form>",
        escape(form_action),
        hidden(csrf),
        escape(id),
        escape(class),
        escape(label)
    )
}

/// A virtual time as the page shows it: never wrapped mid-date.
fn ts(t: &str) -> String {
    format!("<span class=\"ts\">{}</span>", escape(t))
}

/// A table in a box that scrolls sideways on a narrow screen instead of spilling out of its
/// card (focusable and named, so that a keyboard can scroll it).
fn table(label: &str, inner: &str) -> String {
    format!(
        "<div class=\"tablewrap\" role=\"region\" tabindex=\"0\" aria-label=\"{}\"><table>{inner}</table></div>",
        escape(label)
    )
}

/// Text cut to `max` characters, the whole of it in the element's `title` (long URLs).
fn elide(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return escape(text);
    }
    let cut: String = text.chars().take(max).collect();
    format!("<span title=\"{}\">{}…</span>", escape(text), escape(&cut))
}

/// What a connection's next syncs are scripted to do (the control API's script, a
/// scenario's state, the dashboard's actions), in words; `None` when nothing is scripted
/// (the next sync succeeds).
pub fn scripted_next(c: &crate::store::model::Connection) -> Option<String> {
    let once: Vec<&str> = c.script.iter().map(|s| s.as_str()).collect();
    match (once.is_empty(), c.sticky_outcome) {
        (true, None) => None,
        (true, Some(t)) => Some(format!("{} (and every sync after it)", t.as_str())),
        (false, None) => Some(format!("{}, then success", once.join(", then "))),
        (false, Some(t)) => {
            Some(format!("{}, then {} for every sync after", once.join(", then "), t.as_str()))
        }
    }
}

/// What the doctor (lifecycle spec §3, row 5) advises for `mfa_required` on a connection of
/// this type: a refresh for a legacy connection, a reauth for an API-like one. The
/// dashboard's labels use it so that they never promise a remedy the doctor does not give;
/// the client's tests cross-check it against `moneyhub::health::advise`.
pub fn mfa_remedy(kind: crate::seed::catalogue::ProviderType) -> &'static str {
    if kind == crate::seed::catalogue::ProviderType::Legacy {
        "refresh"
    } else {
        "reauth"
    }
}

fn render(state: &AppState, csrf: &str, done: Option<&str>) -> String {
    let now = state.core.clock.now();
    let mut out = String::from("<h1>Sandbox dashboard</h1>");
    if let Some(d) = done {
        out.push_str(&format!(
            "<section class=\"done\"><p id=\"done\" role=\"status\">{}</p></section>",
            escape(d)
        ));
    }
    out.push_str(&clock_section(state, csrf, now));
    out.push_str(&sandbox_section(state, csrf));
    let (users, user_options) = users_section(state, csrf, now);
    out.push_str(&users);
    out.push_str(&webhooks_section(state, csrf, &user_options));
    out.push_str(&faults_section(state, csrf));
    out.push_str(&requests_section(state));
    out
}

/// The clock: its time, buttons to move it, freeze or resume it, a date to move it to.
fn clock_section(state: &AppState, csrf: &str, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    // Clock.
    let frozen = state.core.clock.is_frozen();
    let clock_action = "/__sandbox/ui/clock";
    let suggested = (now + chrono::Duration::days(7)).format("%Y-%m-%dT%H:%M").to_string();
    out.push_str(&format!(
        "<section><h2>Clock</h2><p><b id=\"clock\">{}</b> <span class=\"muted\">{}</span></p><div class=\"row\">{}{}{}{}</div>\
         <form method=\"post\" action=\"{clock_action}\" class=\"row\">{}<input type=\"hidden\" name=\"op\" value=\"to\">\
         <label for=\"clock-at\">Move to (UTC)</label><input id=\"clock-at\" name=\"at\" type=\"datetime-local\" value=\"{}\">\
         <button id=\"clock-to\">Move the clock</button></form></section>",
        escape(&iso(now)),
        if frozen { "frozen" } else { "running" },
        button(clock_action, csrf, &[("op", "hour")], "+1 hour", "clock-hour", ""),
        button(clock_action, csrf, &[("op", "day")], "+1 day", "clock-day", ""),
        button(clock_action, csrf, &[("op", "month")], "+30 days", "clock-month", ""),
        if frozen {
            button(clock_action, csrf, &[("op", "resume")], "Resume", "clock-resume", "secondary")
        } else {
            button(clock_action, csrf, &[("op", "freeze")], "Freeze", "clock-freeze", "secondary")
        },
        hidden(csrf),
        escape(&suggested),
    ));
    out
}

/// The sandbox itself: consent mode, scenario, reset.
fn sandbox_section(state: &AppState, csrf: &str) -> String {
    let mut out = String::new();
    // The sandbox itself: consent mode, reset, scenario.
    let sb = "/__sandbox/ui/sandbox";
    let mode = crate::identity::consent_mode(&Oidc::from_ref(state));
    let option = |value: &str, label: &str| {
        format!(
            "<option value=\"{value}\"{}>{label}</option>",
            if mode.as_str() == value { " selected" } else { "" }
        )
    };
    out.push_str(&format!(
        "<section><h2>Sandbox</h2>\
         <form method=\"post\" action=\"{sb}\" class=\"row\">{}<input type=\"hidden\" name=\"op\" value=\"consent\">\
         <label for=\"consent-mode\">Consent at <code>/oidc/auth</code></label><select id=\"consent-mode\" name=\"mode\">{}{}</select>\
         <button id=\"consent-set\" class=\"secondary\">Switch</button></form>\
         <form method=\"post\" action=\"{sb}\">{}<input type=\"hidden\" name=\"op\" value=\"scenario\">\
         <label for=\"scenario-text\">Load a scenario (paste the file: TOML or JSON)</label>\
         <textarea id=\"scenario-text\" name=\"text\" rows=\"4\" spellcheck=\"false\"></textarea>\
         <div class=\"row\"><label for=\"scenario-format\">Format</label><select id=\"scenario-format\" name=\"format\">\
         <option value=\"toml\">TOML</option><option value=\"json\">JSON</option></select>\
         <label><input type=\"checkbox\" name=\"reset\" value=\"yes\" id=\"scenario-reset\"> reset first</label>\
         <button id=\"scenario-load\">Load scenario</button></div></form>\
         <div class=\"row\">{}</div></section>",
        hidden(csrf),
        option("instant", "instant (redirect at once)"),
        option("interactive", "interactive (consent pages)"),
        hidden(csrf),
        button(sb, csrf, &[("op", "reset")], "Reset the sandbox…", "reset", "danger"),
    ));
    out
}

/// Every user and its connections; also the `<option>`s of the users (for the test event).
fn users_section(state: &AppState, csrf: &str, now: DateTime<Utc>) -> (String, String) {
    let mut out = String::new();
    // Users and connections.
    out.push_str("<section><h2>Users and connections</h2>");
    let store = state.data.store.read();
    let mut any = false;
    let mut user_options = String::new();
    for client in &state.core.config.clients {
        let (users, _) = store.users_page(&client.client_id, 0, usize::MAX);
        for u in users {
            any = true;
            user_options.push_str(&format!(
                "<option value=\"{}\">{}</option>",
                escape(&u.user_id),
                escape(&u.user_id)
            ));
            out.push_str(&format!(
                "<h3>User <code>{}</code> <span class=\"muted\">{} · client {}</span></h3>",
                escape(&u.user_id),
                escape(u.client_user_id.as_deref().unwrap_or("no clientUserId")),
                escape(&client.client_id)
            ));
            let conns = store.connections_of(&u.user_id);
            if conns.is_empty() {
                out.push_str("<p class=\"muted\">No connections.</p>");
                continue;
            }
            let mut rows = String::from(
                "<tr><th scope=\"col\">Connection</th><th scope=\"col\">Status</th><th scope=\"col\">Expires</th>\
                 <th scope=\"col\">tppConsent</th><th scope=\"col\">Last sync</th></tr>",
            );
            for c in conns {
                rows.push_str(&connection_rows(&store, c, csrf, now));
            }
            out.push_str(&table(&format!("Connections of user {}", u.user_id), &rows));
        }
    }
    drop(store);
    if !any {
        out.push_str("<p class=\"muted\">No users yet.</p>");
    }
    out.push_str("</section>");
    (out, user_options)
}

/// A connection's two table rows: what it is and how it is, then the buttons that script
/// its failures.
fn connection_rows(store: &Store, c: &Connection, csrf: &str, now: DateTime<Utc>) -> String {
    let removed = store.provider_removed(c);
    let h = c.health(now, removed);
    let status = match (h.error, h.extended) {
        (Some(e), Some(x)) => format!("{} ({e}, {x})", h.status),
        (Some(e), None) => format!("{} ({e})", h.status),
        _ => h.status.to_string(),
    };
    let last = match (c.last_synced_at, c.last_fetch) {
        (Some(t), Some(f)) => format!("{} {}", ts(&iso(t)), escape(f.as_str())),
        _ => "never".into(),
    };
    let short = c.id.split(':').nth(1).unwrap_or(&c.id).get(..8).unwrap_or(&c.id);
    let due = crate::lifecycle::next_due(store, c, now)
        .filter(|(_, d)| matches!(d, crate::lifecycle::schedule::Due::AutoSync))
        .map(|(at, _)| format!(" at {}", ts(&iso(at))))
        .unwrap_or_default();
    let next = match scripted_next(c) {
        Some(n) => {
            format!("<br><span class=\"scripted\" id=\"next-{short}\">Next sync{due}: {}</span>", escape(&n))
        }
        None => format!("<br><span class=\"muted\" id=\"next-{short}\">Next sync{due}: success</span>"),
    };
    // The newest syncs, so a failure shows even when later syncs of the same
    // clock jump succeeded.
    let recent: Vec<String> = c
        .sync_ids
        .iter()
        .rev()
        .take(RECENT_SYNCS)
        .filter_map(|id| store.syncs.get(id))
        .map(|r| {
            let outcome = r.fetch_status.map(|f| f.as_str()).unwrap_or("running");
            format!("{} {}", ts(&iso(r.created_at)), escape(outcome))
        })
        .collect();
    let cid = c.id.as_str();
    let act = "/__sandbox/ui/connection";
    let options: String =
        super::dashboard::FAILURES.iter().map(|f| format!("<option>{}</option>", escape(f))).collect();
    let accounts: String = c
        .account_ids
        .iter()
        .filter_map(|a| store.accounts.get(a))
        .map(|a| {
            format!(
                "<option value=\"{}\">{}</option>",
                escape(&a.id.to_string()),
                escape(a.kind.display_name())
            )
        })
        .collect();
    let mfa_label = format!("Require MFA (then {})", mfa_remedy(c.kind));
    let actions = format!(
        "<form class=\"inline\" method=\"post\" action=\"{act}\">{}<input type=\"hidden\" name=\"connection\" value=\"{}\">\
         <input type=\"hidden\" name=\"op\" value=\"fail\"><label class=\"sr\" for=\"fail-outcome-{short}\">Failure for the next sync</label>\
         <select name=\"outcome\" id=\"fail-outcome-{short}\">{options}</select>\
         <button id=\"fail-{short}\">Fail next sync</button></form>\
         {}{}\
         <form class=\"inline\" method=\"post\" action=\"{act}\">{}<input type=\"hidden\" name=\"connection\" value=\"{}\">\
         <input type=\"hidden\" name=\"op\" value=\"expire\"><label class=\"sr\" for=\"expire-days-{short}\">Days until the consent ends</label>\
         <input id=\"expire-days-{short}\" name=\"days\" value=\"3\" size=\"3\" inputmode=\"numeric\">\
         <button id=\"expire-{short}\" class=\"secondary\">Expire consent in N days</button></form>\
         <form class=\"inline\" method=\"post\" action=\"{act}\">{}<input type=\"hidden\" name=\"connection\" value=\"{}\">\
         <input type=\"hidden\" name=\"op\" value=\"drop\"><label class=\"sr\" for=\"drop-account-{short}\">Account to drop</label>\
         <select id=\"drop-account-{short}\" name=\"account\">{accounts}</select>\
         <button id=\"drop-{short}\" class=\"secondary\">Drop account</button></form>\
         {}{}",
        hidden(csrf),
        escape(cid),
        button(act, csrf, &[("connection", cid), ("op", "mfa")], &mfa_label, &format!("mfa-{short}"), "secondary"),
        button(act, csrf, &[("connection", cid), ("op", "credentials")], "Reject credentials (then reauth)", &format!("credentials-{short}"), "secondary"),
        hidden(csrf),
        escape(cid),
        hidden(csrf),
        escape(cid),
        button(act, csrf, &[("connection", cid), ("op", "withdraw")], "Withdraw provider…", &format!("withdraw-{short}"), "danger"),
        button(act, csrf, &[("connection", cid), ("op", "delete")], "Delete…", &format!("delete-{short}"), "danger"),
    );
    format!(
        "<tr id=\"conn-{short}\"><td>{}<br><code>{}</code><br><span class=\"muted\">{} accounts · {}</span></td>\
         <td class=\"status\" id=\"status-{short}\">{}{next}<br><span class=\"muted\">{} syncs; latest:</span>\
         <ul class=\"syncs\" id=\"syncs-{short}\">{}</ul></td><td>{}</td><td>{}</td><td id=\"last-sync-{short}\">{}</td></tr>\
         <tr><td colspan=\"5\" class=\"actions\">{actions}</td></tr>",
        escape(c.name),
        escape(cid),
        c.account_ids.len(),
        escape(c.kind.as_str()),
        escape(&status),
        c.sync_ids.len(),
        recent.iter().map(|r| format!("<li>{r}</li>")).collect::<String>(),
        c.expires_at.map(|t| ts(&iso(t))).unwrap_or_else(|| "-".into()),
        c.tpp_consent(now),
        last,
    )
}

/// Webhooks: the target, a test event, the deliveries (each can be sent again).
fn webhooks_section(state: &AppState, csrf: &str, user_options: &str) -> String {
    let mut out = String::new();
    // Webhooks: the target, a test event, the deliveries (each can be sent again).
    let wh = "/__sandbox/ui/webhooks";
    let target = state.webhooks.target.lock().clone();
    out.push_str("<section><h2>Webhooks</h2>");
    match &target {
        Some(t) => out.push_str(&format!(
            "<p id=\"webhook-target\">Webhooks go to <code>{}</code> as {}.</p>",
            escape(&t.url),
            crate::webhooks::format_name(t.format)
        )),
        None => out.push_str(
            "<p id=\"webhook-target\"><b>Webhooks are off</b>: no target is set, so events are not sent (nor recorded). \
             Set one below (or <code>PUT /__sandbox/webhooks</code>).</p>",
        ),
    }
    let url_value = target.as_ref().map(|t| t.url.clone()).unwrap_or_default();
    let jwt = target.as_ref().is_some_and(|t| t.format == crate::config::WebhookFormat::Jwt);
    out.push_str(&format!(
        "<form method=\"post\" action=\"{wh}\" class=\"row\">{}<input type=\"hidden\" name=\"op\" value=\"set\">\
         <label for=\"webhook-url\">Target URL</label><input id=\"webhook-url\" name=\"url\" type=\"url\" size=\"36\" value=\"{}\" placeholder=\"http://127.0.0.1:8080/webhooks\">\
         <label for=\"webhook-format\">Format</label><select id=\"webhook-format\" name=\"format\">\
         <option value=\"json\"{}>JSON</option><option value=\"jwt\"{}>signed JWT</option></select>\
         <button id=\"webhook-set\">Set target</button></form>",
        hidden(csrf),
        escape(&url_value),
        if jwt { "" } else { " selected" },
        if jwt { " selected" } else { "" },
    ));
    if target.is_some() {
        out.push_str(&format!(
            "<div class=\"row\">{}",
            button(wh, csrf, &[("op", "clear")], "Turn webhooks off", "webhook-clear", "secondary")
        ));
        if !user_options.is_empty() {
            out.push_str(&format!(
                "<form method=\"post\" action=\"{wh}\" class=\"inline\">{}<input type=\"hidden\" name=\"op\" value=\"test\">\
                 <label class=\"sr\" for=\"webhook-test-user\">User of the test event</label>\
                 <select id=\"webhook-test-user\" name=\"user\">{user_options}</select>\
                 <button id=\"webhook-test\" class=\"secondary\">Send a test event</button></form>",
                hidden(csrf)
            ));
        }
        out.push_str("</div>");
    }
    let log = &state.webhooks.worker.log;
    let deliveries = log.since(log.last_seq().saturating_sub(TAIL), TAIL as usize);
    out.push_str("<h3>Deliveries</h3>");
    if deliveries.is_empty() {
        out.push_str(if target.is_some() {
            "<p class=\"muted\" id=\"deliveries-none\">None yet.</p>"
        } else {
            "<p class=\"muted\" id=\"deliveries-none\">None: webhooks are off.</p>"
        });
    } else {
        let mut rows = String::from(
            "<tr><th scope=\"col\">#</th><th scope=\"col\">At</th><th scope=\"col\">Event</th><th scope=\"col\">Outcome</th>\
             <th scope=\"col\">Time</th><th scope=\"col\">Payload</th><th scope=\"col\">Again</th></tr>",
        );
        for d in deliveries.iter().rev() {
            let outcome = serde_json::to_value(d.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let status = d.status.map(|s| format!(" {s}")).unwrap_or_default();
            let seq = d.seq.to_string();
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{} ms</td>\
                 <td><details><summary>payload</summary><pre>{}</pre></details></td><td>{}</td></tr>",
                d.seq,
                ts(&iso(d.at)),
                escape(&d.event_type),
                escape(&outcome),
                escape(&status),
                d.duration_ms,
                escape(&d.payload.to_string()),
                button(
                    wh,
                    csrf,
                    &[("op", "resend"), ("seq", &seq)],
                    "Resend",
                    &format!("resend-{seq}"),
                    "secondary"
                ),
            ));
        }
        out.push_str(&table("Webhook deliveries", &rows));
    }
    out.push_str("</section>");
    out
}

/// The fault rules, each removable, and a form to add one.
fn faults_section(state: &AppState, csrf: &str) -> String {
    let mut out = String::new();
    // Faults.
    let fa = "/__sandbox/ui/faults";
    out.push_str("<section><h2>Faults</h2>");
    let rules = state.faults.list();
    if rules.is_empty() {
        out.push_str("<p class=\"muted\">No fault rules.</p>");
    }
    for r in &rules {
        let id = r.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        out.push_str(&format!(
            "<div class=\"row\"><pre>{}</pre>{}</div>",
            escape(&r.to_string()),
            button(
                fa,
                csrf,
                &[("op", "remove"), ("id", id)],
                "Remove",
                &format!("fault-remove-{id}"),
                "secondary"
            )
        ));
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"{fa}\" class=\"row\">{}<input type=\"hidden\" name=\"op\" value=\"add\">\
         <label for=\"fault-method\">Method</label><input id=\"fault-method\" name=\"method\" placeholder=\"any\" size=\"6\">\
         <label for=\"fault-path\">Path</label><input name=\"path\" placeholder=\"/v3/accounts*\" id=\"fault-path\" size=\"16\">\
         <label for=\"fault-status\">Status</label><input id=\"fault-status\" name=\"status\" value=\"503\" size=\"4\" inputmode=\"numeric\">\
         <label for=\"fault-times\">Times</label><input id=\"fault-times\" name=\"times\" placeholder=\"always\" size=\"6\" inputmode=\"numeric\">\
         <button id=\"fault-add\">Add fault</button></form></section>",
        hidden(csrf)
    ));
    out
}

/// The request log, newest first, without the dashboard's own pages and forms.
fn requests_section(state: &AppState) -> String {
    let mut out = String::new();
    // Request log, without the dashboard's own pages and forms.
    let window = 2_000u64;
    let entries =
        state.log.requests.since(state.log.requests.last_seq().saturating_sub(window), window as usize);
    let shown: Vec<_> =
        entries.iter().rev().filter(|e| !e.path.starts_with(PATH)).take(TAIL as usize).collect();
    out.push_str(
        "<section><h2>Requests</h2><p class=\"muted\">The newest first; the dashboard's own requests are left out.</p>",
    );
    if shown.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        let mut rows = String::from(
            "<tr><th scope=\"col\">#</th><th scope=\"col\">At</th><th scope=\"col\">Request</th><th scope=\"col\">Status</th><th scope=\"col\">Note</th></tr>",
        );
        for e in shown {
            let q = e.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"req\">{} {}{}</td><td>{}</td><td>{}</td></tr>",
                e.seq,
                ts(&e.at),
                escape(&e.method),
                elide(&e.path, 60),
                elide(&q, 40),
                e.status,
                elide(e.note.as_deref().unwrap_or(""), 60)
            ));
        }
        out.push_str(&table("Requests", &rows));
    }
    out.push_str("</section>");
    out
}
