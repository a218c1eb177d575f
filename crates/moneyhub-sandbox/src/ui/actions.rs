//! The dashboard's forms: each checks access and the form token, acts through the store,
//! clock or lifecycle (as the control API does), and goes back to the dashboard (303) with
//! what happened.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::Duration;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{form_token_ok, gate, PATH};
use crate::config::{ConsentMode, WebhookFormat, WebhookTarget};
use crate::http::html;
use crate::identity::Oidc;
use crate::lifecycle::run_until;
use crate::scenario::{Scenario, ScenarioFormat};
use crate::state::AppState;
use crate::store::model::FetchStatus;
use crate::webhooks::delivery::deliver_test_event;
use crate::webhooks::envelope::Outgoing;
use crate::webhooks::{format_name, validate_target};
use axum::extract::FromRef;

struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
    }
}

/// Access and form token; the parsed form, or the refusal.
fn admit(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Form, Box<Response>> {
    gate(state, &Method::POST, headers, None)?;
    let form = Form(form_urlencoded::parse(body).into_owned().collect());
    if !form_token_ok(headers, form.get("csrf")) {
        return Err(Box::new(html::message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form's token does not match this browser's: reload the dashboard.",
        )));
    }
    Ok(form)
}

fn back(done: &str) -> Response {
    html::see_other(&format!("{PATH}?done={}", html::query_value(done)))
}

/// The page of an action that could not be done: what went wrong, and the way back.
fn failed(why: &str) -> Response {
    html::message_with_back(StatusCode::BAD_REQUEST, "That did not work", why, Some(PATH))
}

/// Asks before an action that cannot be undone: the same form again with `confirm=yes`, and
/// a way back that does nothing.
fn confirm(form: &Form, question: &str, what: &str, yes: &str) -> Response {
    let fields: String = form
        .0
        .iter()
        .filter(|(k, _)| k != "confirm")
        .map(|(k, v)| {
            format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", html::escape(k), html::escape(v))
        })
        .collect();
    let action = match form.get("connection") {
        Some(_) => "/__sandbox/ui/connection",
        None => "/__sandbox/ui/sandbox",
    };
    let body = format!(
        "<section><h1>{}</h1><p>{}</p><form method=\"post\" action=\"{action}\" class=\"row\">{fields}\
         <input type=\"hidden\" name=\"confirm\" value=\"yes\"><button id=\"confirm\" class=\"danger\">{}</button>\
         <a id=\"back\" href=\"{PATH}\">Cancel, back to the dashboard</a></form></section>",
        html::escape(question),
        html::escape(what),
        html::escape(yes)
    );
    html::page(StatusCode::OK, question, &body, None)
}

/// A lifecycle run's report in words (`{"autoSyncs": 3, ...}` → "Ran 3 automatic syncs.").
fn ran_words(report: &Value) -> String {
    let names = [
        ("autoSyncs", "automatic sync", "automatic syncs"),
        ("historyFetches", "background history fetch", "background history fetches"),
        ("asyncSyncs", "asynchronous sync finished", "asynchronous syncs finished"),
        ("reminders", "reminder webhook", "reminder webhooks"),
        ("enrichments", "enrichment webhook", "enrichment webhooks"),
    ];
    let parts: Vec<String> = names
        .iter()
        .filter_map(|(key, one, many)| {
            let n = report.get(key).and_then(Value::as_u64).filter(|n| *n > 0)?;
            Some(format!("{n} {}", if n == 1 { one } else { many }))
        })
        .collect();
    if parts.is_empty() {
        "Nothing was due meanwhile.".to_owned()
    } else {
        format!("Ran {}.", parts.join(", "))
    }
}

/// A time in the banner: a date and a time, so that a narrow screen wraps between them and
/// never inside the date.
fn readable(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A `datetime-local` value (`2025-02-01T10:00`, seconds optional), read as UTC.
fn parse_local(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s.trim(), f).ok())
        .map(|t| t.and_utc())
}

/// `POST /__sandbox/ui/clock` (`op=hour|day|month|freeze|resume`, `op=to` with `at`, a
/// `datetime-local` value read as UTC): the clock moves and
/// everything due runs, as `POST /__sandbox/clock/advance` does.
pub async fn clock(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let by = match form.get("op") {
        Some("hour") => Duration::hours(1),
        Some("day") => Duration::days(1),
        Some("month") => Duration::days(30),
        Some("to") => {
            let Some(at) = form.get("at").and_then(parse_local) else {
                return failed("Give a date and time (UTC), such as 2025-02-01T10:00.");
            };
            let now = state.core.clock.now();
            if at <= now {
                return failed(&format!(
                    "The sandbox clock only moves forwards: {} is not after {} (Reset goes back to the start).",
                    readable(at),
                    readable(now)
                ));
            }
            at - now
        }
        Some("freeze") => {
            state.core.clock.freeze();
            return back("Clock frozen");
        }
        Some("resume") => {
            state.core.clock.resume();
            return back("Clock follows the wall clock again");
        }
        _ => return failed("op must be hour, day, month, to, freeze or resume"),
    };
    // No webhook is in flight while the clock jumps (see `WebhookWorker::hold`).
    let held = state.webhooks.worker.hold().await;
    let target = match state.core.clock.advance(by) {
        Ok(t) => t,
        Err(e) => return failed(&format!("The clock did not move: {e}")),
    };
    drop(held);
    let st = state.data.clone();
    let ran = tokio::task::spawn_blocking(move || run_until(&st, target)).await;
    state.data.notify_webhooks();
    match ran {
        Ok(report) => back(&format!("The clock is now {}. {}", readable(target), ran_words(&json!(report)))),
        Err(_) => html::message_with_back(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The lifecycle run failed",
            "The clock moved, but running what was due failed.",
            Some(PATH),
        ),
    }
}

/// `POST /__sandbox/ui/connection` (`connection=ID`, `op=fail|mfa|credentials|expire|withdraw|drop|delete`
/// with `outcome`, `days` or `account`). `withdraw` and `delete` first answer a page that
/// asks for confirmation (`confirm=yes`).
pub async fn connection(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let bad = |why: &str| failed(why);
    let Some(id) = form.get("connection") else { return bad("no connection given") };
    let now = state.core.clock.now();
    let mut store = state.data.store.write();
    let Some(conn) = store.connections.get(id) else { return bad("no such connection") };
    let (user_id, bank_id, sticky) = (conn.user_id.clone(), conn.bank_id.clone(), conn.sticky_outcome);
    let (name, kind) = (conn.name, conn.kind);
    let confirmed = form.get("confirm") == Some("yes");
    let done = match form.get("op") {
        Some("fail") => {
            let Some(outcome) = form.get("outcome").and_then(FetchStatus::parse) else {
                return bad("outcome must be error, partial, mfa-required or credentials-error");
            };
            // Appended, and whatever comes after stays as it was.
            let _ = store.script(id, vec![outcome], sticky, true);
            format!("The next sync of {name} ({id}) will end in {}.", outcome.as_str())
        }
        Some("mfa") => {
            let _ = store.script(id, Vec::new(), Some(FetchStatus::MfaRequired), true);
            let remedy = super::dashboard::mfa_remedy(kind);
            format!(
                "Every sync of {name} ({id}) from the next one on needs MFA: then the doctor advises a {remedy} \
                 ({}).",
                if remedy == "refresh" { "a legacy connection" } else { "an open-banking connection goes back to the bank" }
            )
        }
        Some("credentials") => {
            let _ = store.script(id, Vec::new(), Some(FetchStatus::CredentialsError), true);
            format!("The bank rejects the credentials of {name} ({id}) from the next sync on: then the doctor advises a reauth.")
        }
        Some("expire") => {
            let Some(days) =
                form.get("days").and_then(|d| d.parse::<i64>().ok()).filter(|d| (0..=90).contains(d))
            else {
                return bad("days must be a whole number from 0 to 90");
            };
            let Some(c) = store.connections.get_mut(id) else { return bad("no such connection") };
            if c.expires_at.is_none() {
                return bad("this connection's provider sets no consent expiry");
            }
            c.expires_at = Some(now + Duration::days(days));
            c.last_reauth_reminder = None;
            format!("The consent of {name} ({id}) now ends in {days} days.")
        }
        Some("withdraw") if !confirmed => {
            drop(store);
            return confirm(
                &form,
                &format!("Withdraw the provider {name}?"),
                &format!(
                    "Every connection to {name} (bank id {bank_id}), of every user, then reports status never, \
                     and the provider leaves the catalogues. Only a reset brings it back."
                ),
                "Withdraw the provider",
            );
        }
        Some("withdraw") => {
            let _ = store.remove_provider(&bank_id);
            format!("Provider {name} ({bank_id}) withdrawn: its connections now report status never.")
        }
        Some("drop") => {
            let Some(account) = form.get("account").and_then(|a| Uuid::parse_str(a).ok()) else {
                return bad("choose an account");
            };
            if !store.connections.get(id).is_some_and(|c| c.account_ids.contains(&account)) {
                return bad("that account is not one of this connection's");
            }
            let _ = store.drop_account(&account, now);
            format!("Account {account} dropped by the bank.")
        }
        Some("delete") if !confirmed => {
            drop(store);
            return confirm(
                &form,
                &format!("Delete the connection to {name}?"),
                &format!("Connection {id} of user {user_id} is removed with its accounts and transactions."),
                "Delete the connection",
            );
        }
        Some("delete") => {
            let _ = store.delete_connection(&user_id, id);
            format!("Connection {name} ({id}) deleted with its accounts and transactions.")
        }
        _ => return bad("unknown action"),
    };
    drop(store);
    state.data.notify_webhooks();
    back(&done)
}

/// `POST /__sandbox/ui/faults` (`op=add` with `method`, `path`, `status`, `times`;
/// `op=remove` with `id`; `op=clear`).
pub async fn faults(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let bad = |why: &str| failed(why);
    match form.get("op") {
        Some("add") => {
            let mut rule = json!({"path": form.get("path").unwrap_or("")});
            if let Some(m) = form.get("method").filter(|m| !m.is_empty()) {
                rule["method"] = Value::from(m);
            }
            if let Some(s) = form.get("status").filter(|s| !s.is_empty()) {
                let Ok(s) = s.parse::<u16>() else { return bad("status must be a number") };
                rule["status"] = Value::from(s);
            }
            if let Some(t) = form.get("times").filter(|t| !t.is_empty()) {
                let Ok(t) = t.parse::<u64>() else { return bad("times must be a number") };
                rule["times"] = Value::from(t);
            }
            let req = match serde_json::from_value(rule) {
                Ok(r) => r,
                Err(e) => return bad(&e.to_string()),
            };
            match state.faults.add(req) {
                Ok(_) => back("Fault added"),
                Err(e) => bad(&e),
            }
        }
        Some("remove") => {
            if state.faults.remove(form.get("id").unwrap_or("")) {
                back("Fault removed")
            } else {
                bad("no such fault")
            }
        }
        Some("clear") => {
            state.faults.clear();
            back("Faults cleared")
        }
        _ => bad("unknown action"),
    }
}

/// `POST /__sandbox/ui/webhooks`: `op=set` (`url`, `format=json|jwt`), `op=clear`, `op=test`
/// (`user`), `op=resend` (`seq` of a delivery). The same rules as the control API
/// (`PUT /__sandbox/webhooks`, `POST /__sandbox/webhooks/test`).
///
/// Decisions: the test event is `eventType: "test"` with a payload that says where it came
/// from (it checks that the target receives and answers; a receiver ignores an event type it
/// does not know). A resend delivers the logged event again with the same webhook id and
/// payload, as a retry of the sender would, and logs a new delivery.
pub async fn webhooks(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    match form.get("op") {
        Some("set") => {
            let url = form.get("url").unwrap_or("").to_string();
            if url.is_empty() {
                return failed("Give the URL the webhooks go to.");
            }
            let format = match form.get("format").unwrap_or("json").parse::<WebhookFormat>() {
                Ok(f) => f,
                Err(e) => return failed(&e),
            };
            let target = WebhookTarget { url, format };
            if let Err(e) = validate_target(&target, state.core.config.allow_remote_webhooks) {
                return failed(&e);
            }
            let done = format!("Webhooks now go to {} as {}.", target.url, format_name(format));
            state.set_webhook(Some(target));
            back(&done)
        }
        Some("clear") => {
            state.set_webhook(None);
            back("Webhooks are off: no target is set.")
        }
        Some("test") => {
            let Some(user) = form.get("user").filter(|u| !u.is_empty()) else {
                return failed("Choose the user the test event is for.");
            };
            if state.webhooks.target.lock().is_none() {
                return failed("Webhooks are off: set a target first.");
            }
            let id = state.data.store.write().next_webhook_id();
            let event = Outgoing {
                id,
                user_id: user.to_string(),
                event_type: "test".to_owned(),
                payload: json!({"message": "A test event from the sandbox dashboard"}),
            };
            let sent = deliver_test_event(&state, event).await;
            back(&delivered("The test event", &sent))
        }
        Some("resend") => {
            let Some(seq) = form.get("seq").and_then(|s| s.parse::<u64>().ok()) else {
                return failed("Choose a delivery to send again.");
            };
            let Some(d) =
                state.webhooks.worker.log.since(seq.saturating_sub(1), 1).into_iter().find(|d| d.seq == seq)
            else {
                return failed("That delivery is no longer in the log.");
            };
            if state.webhooks.target.lock().is_none() {
                return failed("Webhooks are off: set a target first.");
            }
            let Ok(id) = Uuid::parse_str(&d.webhook_id) else {
                return failed("That delivery has no webhook id to send again.");
            };
            let event = Outgoing { id, user_id: d.user_id, event_type: d.event_type, payload: d.payload };
            let sent = deliver_test_event(&state, event).await;
            back(&delivered(&format!("Delivery {seq}, sent again,"), &sent))
        }
        _ => failed("unknown action"),
    }
}

/// "X was delivered: 200." / "X was not delivered: timeout."
fn delivered(what: &str, sent: &[crate::webhooks::log::Delivery]) -> String {
    match sent.last() {
        Some(d) => match (d.status, &d.error) {
            (Some(s), _) if (200..300).contains(&s) => {
                format!("{what} was delivered: the target answered {s}.")
            }
            (Some(s), _) => format!("{what} was not accepted: the target answered {s}."),
            (None, Some(e)) => format!("{what} was not delivered: {e}."),
            (None, None) => format!("{what} was not delivered."),
        },
        None => format!("{what} was not sent (chaos dropped it, or no target is set)."),
    }
}

/// `POST /__sandbox/ui/sandbox`: `op=consent` (`mode=instant|interactive`), `op=reset` (asks
/// first), `op=scenario` (`text`, `format=toml|json`, `reset=yes`): as `PUT
/// /__sandbox/consent`, `POST /__sandbox/reset` and `POST /__sandbox/scenario`.
///
/// Decision: a scenario is pasted as text (a browser's file upload would need a multipart
/// body the sandbox does not otherwise parse); its errors name the line and column.
pub async fn sandbox(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    match form.get("op") {
        Some("consent") => match form.get("mode").unwrap_or("").parse::<ConsentMode>() {
            Ok(mode) => {
                crate::identity::set_consent_mode(&Oidc::from_ref(&state), mode);
                back(match mode {
                    ConsentMode::Interactive => {
                        "Consent is now interactive: /oidc/auth shows the consent pages."
                    }
                    ConsentMode::Instant => "Consent is now instant: /oidc/auth redirects at once.",
                })
            }
            Err(e) => failed(&e),
        },
        Some("reset") if form.get("confirm") != Some("yes") => confirm(
            &form,
            "Reset the sandbox?",
            "Users, connections, faults, the webhook target and deliveries go; the clock and the seeded \
             state come back (a --scenario is loaded again). The request log keeps counting.",
            "Reset",
        ),
        Some("reset") => {
            let st = state.clone();
            match tokio::task::spawn_blocking(move || crate::scenario::reset(&st)).await {
                Ok(Ok(_)) => back("The sandbox is back to its starting state."),
                Ok(Err(e)) => failed(&e.to_string()),
                Err(_) => failed("the reset failed"),
            }
        }
        Some("scenario") => {
            let text = form.get("text").unwrap_or("").to_string();
            if text.is_empty() {
                return failed("Paste the scenario file's text first.");
            }
            let format =
                if form.get("format") == Some("json") { ScenarioFormat::Json } else { ScenarioFormat::Toml };
            let scenario = match Scenario::parse(&text, format, "the pasted scenario") {
                Ok(s) => s,
                Err(e) => return failed(&e.to_string()),
            };
            let reset = form.get("reset") == Some("yes");
            let st = state.clone();
            let loaded =
                tokio::task::spawn_blocking(move || crate::scenario::load(&st, &scenario, reset)).await;
            state.data.notify_webhooks();
            match loaded {
                Ok(Ok(l)) => {
                    let conns: usize = l.users.iter().map(|u| u.connections.len()).sum();
                    back(&format!(
                        "Scenario loaded: {} users, {conns} connections; the clock is at {}.",
                        l.users.len(),
                        l.now.replacen('T', " ", 1).replace(".000Z", " UTC")
                    ))
                }
                Ok(Err(e)) => failed(&e.to_string()),
                Err(_) => failed("loading the scenario failed"),
            }
        }
        _ => failed("unknown action"),
    }
}
