//! The dashboard's forms: each checks access and the form token, acts through the store,
//! clock or lifecycle (as the control API does), and goes back to the dashboard (303) with
//! what happened.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::Duration;
use serde_json::{json, Value};
use uuid::Uuid;

use super::html;
use super::{form_token_ok, gate, PATH};
use crate::lifecycle::run_until;
use crate::state::AppState;
use crate::store::model::FetchStatus;

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

/// `POST /__sandbox/ui/clock` (`op=hour|day|month|freeze|resume`): the clock moves and
/// everything due runs, as `POST /__sandbox/clock/advance` does.
pub async fn clock(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let by = match form.get("op") {
        Some("hour") => Duration::hours(1),
        Some("day") => Duration::days(1),
        Some("month") => Duration::days(30),
        Some("freeze") => {
            state.clock.freeze();
            return back("Clock frozen");
        }
        Some("resume") => {
            state.clock.resume();
            return back("Clock follows the wall clock again");
        }
        _ => {
            return html::message(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                "op must be hour, day, month, freeze or resume",
            )
        }
    };
    let target = match state.clock.advance(by) {
        Ok(t) => t,
        Err(e) => return html::message(StatusCode::BAD_REQUEST, "The clock did not move", &e),
    };
    let st = state.clone();
    let ran = tokio::task::spawn_blocking(move || run_until(&st, target)).await;
    state.notify_webhooks();
    match ran {
        Ok(report) => back(&format!("Clock now {}; ran {}", crate::clock::iso(target), json!(report))),
        Err(_) => html::message(StatusCode::INTERNAL_SERVER_ERROR, "The lifecycle run failed", ""),
    }
}

/// `POST /__sandbox/ui/connection` (`connection=ID`, `op=fail|mfa|credentials|expire|withdraw|drop|delete`
/// with `outcome`, `days` or `account`).
pub async fn connection(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let bad = |why: &str| html::message(StatusCode::BAD_REQUEST, "That did not work", why);
    let Some(id) = form.get("connection") else { return bad("no connection given") };
    let now = state.clock.now();
    let mut store = state.store.write();
    let Some(conn) = store.connections.get(id) else { return bad("no such connection") };
    let (user_id, bank_id, sticky) = (conn.user_id.clone(), conn.bank_id.clone(), conn.sticky_outcome);
    let done = match form.get("op") {
        Some("fail") => {
            let Some(outcome) = form.get("outcome").and_then(FetchStatus::parse) else {
                return bad("outcome must be error, partial, mfa-required or credentials-error");
            };
            // Appended, and whatever comes after stays as it was.
            let _ = store.script(id, vec![outcome], sticky, true);
            format!("The next sync of {id} will end in {}", outcome.as_str())
        }
        Some("mfa") => {
            let _ = store.script(id, Vec::new(), Some(FetchStatus::MfaRequired), true);
            format!("Every sync of {id} from the next one on needs MFA (a refresh)")
        }
        Some("credentials") => {
            let _ = store.script(id, Vec::new(), Some(FetchStatus::CredentialsError), true);
            format!("The bank rejects the credentials of {id} from the next sync on (a reauth)")
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
            format!("The consent of {id} now ends in {days} days")
        }
        Some("withdraw") => {
            let _ = store.remove_provider(&bank_id);
            format!("Provider {bank_id} withdrawn")
        }
        Some("drop") => {
            let Some(account) = form.get("account").and_then(|a| Uuid::parse_str(a).ok()) else {
                return bad("choose an account");
            };
            if !store.connections.get(id).is_some_and(|c| c.account_ids.contains(&account)) {
                return bad("that account is not one of this connection's");
            }
            let _ = store.drop_account(&account, now);
            format!("Account {account} dropped by the bank")
        }
        Some("delete") => {
            let _ = store.delete_connection(&user_id, id);
            format!("Connection {id} deleted")
        }
        _ => return bad("unknown action"),
    };
    drop(store);
    state.notify_webhooks();
    back(&done)
}

/// `POST /__sandbox/ui/faults` (`op=add` with `method`, `path`, `status`, `times`;
/// `op=remove` with `id`; `op=clear`).
pub async fn faults(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match admit(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let bad = |why: &str| html::message(StatusCode::BAD_REQUEST, "That did not work", why);
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
