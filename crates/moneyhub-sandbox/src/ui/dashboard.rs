//! The dashboard page.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;

use super::html::{self, escape};
use super::{gate, page_cookies, Access, PATH};
use crate::clock::iso;
use crate::http::query::Query;
use crate::state::AppState;

/// How many webhook deliveries and logged requests the page shows (the newest).
const TAIL: u64 = 25;

/// How many of a connection's syncs the page lists (the newest).
const RECENT_SYNCS: usize = 6;

/// The failures "fail next sync" offers (the control API's script outcomes).
pub const FAILURES: &[&str] = &["error", "partial", "mfa-required", "credentials-error"];

/// `GET /__sandbox/ui[?token=T][&done=MESSAGE]`.
pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
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

fn render(state: &AppState, csrf: &str, done: Option<&str>) -> String {
    let now = state.clock.now();
    let mut out = String::new();
    if let Some(d) = done {
        out.push_str(&format!("<section><p id=\"done\">{}</p></section>", escape(d)));
    }
    // Clock.
    let frozen = state.clock.is_frozen();
    let clock_action = "/__sandbox/ui/clock";
    out.push_str(&format!(
        "<section><h1>Clock</h1><p><b id=\"clock\">{}</b> <span class=\"muted\">{}</span></p><div class=\"row\">{}{}{}{}</div></section>",
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
    ));
    // Users and connections.
    out.push_str("<section><h1>Users and connections</h1>");
    let store = state.store.read();
    let mut any = false;
    for client in &state.config.clients {
        let (users, _) = store.users_page(&client.client_id, 0, usize::MAX);
        for u in users {
            any = true;
            out.push_str(&format!(
                "<h2>User <code>{}</code> <span class=\"muted\">{} · client {}</span></h2>",
                escape(&u.user_id),
                escape(u.client_user_id.as_deref().unwrap_or("no clientUserId")),
                escape(&client.client_id)
            ));
            let conns = store.connections_of(&u.user_id);
            if conns.is_empty() {
                out.push_str("<p class=\"muted\">No connections.</p>");
                continue;
            }
            out.push_str("<table><tr><th>Connection</th><th>Status</th><th>Expires</th><th>tppConsent</th><th>Last sync</th></tr>");
            for c in conns {
                let removed = store.provider_removed(c);
                let h = c.health(now, removed);
                let status = match (h.error, h.extended) {
                    (Some(e), Some(x)) => format!("{} ({e}, {x})", h.status),
                    (Some(e), None) => format!("{} ({e})", h.status),
                    _ => h.status.to_string(),
                };
                let last = match (c.last_synced_at, c.last_fetch) {
                    (Some(t), Some(f)) => format!("{} {}", iso(t), f.as_str()),
                    _ => "never".into(),
                };
                let next = if c.script.is_empty() {
                    String::new()
                } else {
                    format!(
                        "<br><span class=\"muted\">next: {}</span>",
                        escape(&c.script.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
                    )
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
                        format!("{} {outcome}", iso(r.created_at))
                    })
                    .collect();
                let short = c.id.split(':').nth(1).unwrap_or(&c.id).get(..8).unwrap_or(&c.id);
                let cid = c.id.as_str();
                let act = "/__sandbox/ui/connection";
                let options: String = super::dashboard::FAILURES
                    .iter()
                    .map(|f| format!("<option>{}</option>", escape(f)))
                    .collect();
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
                let actions = format!(
                    "<form class=\"inline\" method=\"post\" action=\"{act}\">{}<input type=\"hidden\" name=\"connection\" value=\"{}\">\
                     <input type=\"hidden\" name=\"op\" value=\"fail\"><select name=\"outcome\" id=\"fail-outcome-{short}\">{options}</select>\
                     <button id=\"fail-{short}\">Fail next sync</button></form>\
                     {}{}\
                     <form class=\"inline\" method=\"post\" action=\"{act}\">{}<input type=\"hidden\" name=\"connection\" value=\"{}\">\
                     <input type=\"hidden\" name=\"op\" value=\"expire\"><input name=\"days\" value=\"3\" size=\"3\" aria-label=\"days\">\
                     <button id=\"expire-{short}\" class=\"secondary\">Expire consent in N days</button></form>\
                     <form class=\"inline\" method=\"post\" action=\"{act}\">{}<input type=\"hidden\" name=\"connection\" value=\"{}\">\
                     <input type=\"hidden\" name=\"op\" value=\"drop\"><select name=\"account\" aria-label=\"account\">{accounts}</select>\
                     <button id=\"drop-{short}\" class=\"secondary\">Drop account</button></form>\
                     {}{}",
                    hidden(csrf),
                    escape(cid),
                    button(act, csrf, &[("connection", cid), ("op", "mfa")], "Require MFA", &format!("mfa-{short}"), "secondary"),
                    button(act, csrf, &[("connection", cid), ("op", "credentials")], "Reject credentials", &format!("credentials-{short}"), "secondary"),
                    hidden(csrf),
                    escape(cid),
                    hidden(csrf),
                    escape(cid),
                    button(act, csrf, &[("connection", cid), ("op", "withdraw")], "Withdraw provider", &format!("withdraw-{short}"), "danger"),
                    button(act, csrf, &[("connection", cid), ("op", "delete")], "Delete", &format!("delete-{short}"), "danger"),
                );
                out.push_str(&format!(
                    "<tr id=\"conn-{short}\"><td>{}<br><code>{}</code><br><span class=\"muted\">{} accounts</span></td>\
                     <td class=\"status\" id=\"status-{short}\">{}{next}<br><span class=\"muted\">{} syncs; latest:</span>\
                     <ul class=\"syncs\" id=\"syncs-{short}\">{}</ul></td><td>{}</td><td>{}</td><td id=\"last-sync-{short}\">{}</td></tr>\
                     <tr><td colspan=\"5\" class=\"actions\">{actions}</td></tr>",
                    escape(c.name),
                    escape(cid),
                    c.account_ids.len(),
                    escape(&status),
                    c.sync_ids.len(),
                    recent.iter().map(|r| format!("<li>{}</li>", escape(r))).collect::<String>(),
                    escape(&c.expires_at.map(iso).unwrap_or_else(|| "-".into())),
                    c.tpp_consent(now),
                    escape(&last),
                ));
            }
            out.push_str("</table>");
        }
    }
    drop(store);
    if !any {
        out.push_str("<p class=\"muted\">No users yet.</p>");
    }
    out.push_str("</section>");
    // Webhook deliveries.
    let log = &state.webhook_worker.log;
    let deliveries = log.since(log.last_seq().saturating_sub(TAIL), TAIL as usize);
    out.push_str("<section><h1>Webhook deliveries</h1>");
    if deliveries.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        out.push_str("<table><tr><th>#</th><th>At</th><th>Event</th><th>Outcome</th><th>Time</th><th>Payload</th></tr>");
        for d in deliveries.iter().rev() {
            let outcome = serde_json::to_value(d.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let status = d.status.map(|s| format!(" {s}")).unwrap_or_default();
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{} ms</td><td><pre>{}</pre></td></tr>",
                d.seq,
                escape(&d.at),
                escape(&d.event_type),
                escape(&outcome),
                escape(&status),
                d.duration_ms,
                escape(&d.payload.to_string())
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
    // Faults.
    let fa = "/__sandbox/ui/faults";
    out.push_str("<section><h1>Faults</h1>");
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
         <input name=\"method\" placeholder=\"method (any)\" size=\"8\" aria-label=\"method\">\
         <input name=\"path\" placeholder=\"/v3/accounts*\" aria-label=\"path\" id=\"fault-path\">\
         <input name=\"status\" value=\"503\" size=\"4\" aria-label=\"status\">\
         <input name=\"times\" placeholder=\"times (always)\" size=\"10\" aria-label=\"times\">\
         <button id=\"fault-add\">Add fault</button></form></section>",
        hidden(csrf)
    ));
    // Request log.
    let entries = state.log.since(state.log.last_seq().saturating_sub(TAIL), TAIL as usize);
    out.push_str("<section><h1>Requests</h1><table><tr><th>#</th><th>At</th><th>Request</th><th>Status</th><th>Note</th></tr>");
    for e in entries.iter().rev() {
        let q = e.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} {}{}</td><td>{}</td><td>{}</td></tr>",
            e.seq,
            escape(&e.at),
            escape(&e.method),
            escape(&e.path),
            escape(&q),
            e.status,
            escape(e.note.as_deref().unwrap_or(""))
        ));
    }
    out.push_str("</table></section>");
    out
}
