//! The interactive consent pages (opt-in: [`crate::config::ConsentMode::Interactive`]).
//!
//! `/oidc/auth` validates the request as always, stores an [`Interaction`] and sends the
//! browser (303) to `/oidc/interaction/{id}`, where the pages are:
//!
//! * a **bank chooser** when the scope names a group (`id:all`, `id:api`, `id:legacy`,
//!   `id:test`...): the catalogue's names and icons, a search box (a GET form), withdrawn
//!   providers shown as unavailable;
//! * the **bank's page**: mock credentials, the accounts to share (a subset makes a
//!   connection with those accounts only) and the consent summary (permissions, expiry,
//!   history start from `mh:consent`);
//! * a **one-time code** page (legacy providers, password `mfa`);
//! * **reauth** (the bank's page for the connection's provider and accounts), **refresh** (a
//!   one-time code, no accounts) and **reconsent** (the summary only: no bank login) pages.
//!
//! Approve ends in the same redirect the instant mode sends (`code`, `state`, `iss`); cancel
//! in `error=access_denied` with `state`.
//!
//! Magic credentials (any other value logs in; documented in the crate README):
//!
//! | password | outcome |
//! | --- | --- |
//! | `server_error` | the browser returns to the client with `error=server_error` |
//! | `wrong_password` | the bank rejects the credentials: the page says so, try again |
//! | `mfa` | the bank asks for a one-time code (any code but `000000` passes) |
//! | `mfa_twice` | multi-step MFA: two one-time codes, one after the other |
//! | `credentials_error`, `mfa_required`, `sync_error`, `sync_partial`, `provider_outage`, `resync` | the connection is made (or renewed), then fails as named: see [`Magic`] |
//!
//! They work on every page that logs in: a new connection and reauth (the bank's password),
//! refresh and reconsent (an optional sandbox password field, since those pages have no bank
//! login). Decision: on a renewal the script starts from the next sync after the renewal, as
//! on a new connection (the renewal's own sync succeeds).
//!
//! Decision: `mfa` works on every provider type (banks ask for a second factor whether the
//! connection is open banking or not); it was legacy-only before.
//!
//! See [`Interaction`] for how forms are tied to the request (CSRF, tampered fields).

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::authorize::{grant, respond};
use super::authz::{AuthRequest, Flow, Rejection};
use super::consent_pages as pages;
use super::interaction::{ConsentSummary, Interaction, Magic, INTERACTION_TTL_SECS};
use super::params::{random_token, scope_tokens, Params};
use super::Oidc;
use crate::config::ConsentMode;
use crate::error::OAuthError;
use crate::http::html;
use crate::http::query::Query;
use crate::seed::catalogue::Listing;

/// The cookie that ties a page's POST to the browser the interaction began in.
pub const COOKIE: &str = "mh_sandbox_consent";

/// The one-time code a legacy bank refuses (any other passes).
pub const WRONG_CODE: &str = "000000";

/// The consent mode in force: set at runtime (`PUT /__sandbox/consent`), else configured.
pub fn consent_mode(state: &Oidc) -> ConsentMode {
    state.identity.sessions.lock().consent_mode().unwrap_or(state.core.config.consent)
}

/// Sets the consent mode at runtime.
pub fn set_consent_mode(state: &Oidc, mode: ConsentMode) {
    state.identity.sessions.lock().set_consent_mode(mode);
}

/// Whether `/oidc/auth` shows the consent pages.
pub fn interactive(state: &Oidc) -> bool {
    consent_mode(state) == ConsentMode::Interactive
}

/// The group a new connection's scope names (`id:test`...), when it names one rather than a
/// bank.
fn chooser_of(state: &Oidc, req: &AuthRequest) -> Option<Listing> {
    if !matches!(req.flow, Flow::New { .. }) {
        return None;
    }
    let wanted = scope_tokens(&req.scope).find_map(|s| s.strip_prefix("id:"))?;
    if state.core.catalogue.get(wanted).is_some() {
        return None;
    }
    Listing::parse(wanted)
}

/// Starts the pages of a validated request: 303 to the first page, with the cookie that ties
/// the pages' forms to this browser.
pub fn begin(
    state: &Oidc,
    req: AuthRequest,
    auth_request: Option<String>,
    params: &Params,
    now: DateTime<Utc>,
) -> Response {
    let id = random_token();
    let browser_key = random_token();
    let interaction = Interaction {
        chooser: chooser_of(state, &req),
        req,
        auth_request,
        summary: ConsentSummary::from_params(params),
        browser_key: browser_key.clone(),
        awaiting_code: None,
        codes_left: 0,
        codes_total: 0,
        expires_at: now.timestamp() + INTERACTION_TTL_SECS,
    };
    state.identity.sessions.lock().add_interaction(id.clone(), interaction, now.timestamp());
    let path = format!("/oidc/interaction/{id}");
    let mut res = html::see_other(&path);
    html::set_cookie(&mut res, COOKIE, &browser_key, &path, state.core.base_url.starts_with("https:"));
    res
}

/// With consent pages on, a browser (`Accept` names `text/html`) that `/oidc/auth` refuses
/// without a redirect (the JSON `400` of an error with no trusted redirect URI: a reloaded or
/// second-tab link, `invalid_request_uri`) gets a page saying what happened instead of raw
/// JSON. Programs (no `text/html` in `Accept`) and instant consent keep the JSON error.
pub async fn for_browser(state: &Oidc, headers: &HeaderMap, res: Response) -> Response {
    let html_wanted =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !html_wanted || !is_json || res.status() != StatusCode::BAD_REQUEST || !interactive(state) {
        return res;
    }
    // The sandbox's own small error body (bounded anyway).
    let Ok(body) = axum::body::to_bytes(res.into_body(), 64 * 1024).await else {
        return pages::refused("invalid_request", "");
    };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("").to_string();
    pages::refused(&text("error"), &text("error_description"))
}

fn gone() -> Response {
    html::message(
        StatusCode::NOT_FOUND,
        "This page has expired",
        "This consent request is finished or has expired. Go back to the app and start again.",
    )
}

/// `GET /oidc/interaction/{id}[?q=SEARCH][&bank=BANK_ID]`: the page the interaction is at.
pub async fn show(State(state): State<Oidc>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let now = state.core.clock.now();
    let Some(i) = state.identity.sessions.lock().interaction(&id, now.timestamp()).cloned() else {
        return gone();
    };
    let q = Query::parse(q.as_deref());
    if i.awaiting_code.is_some() {
        return pages::code(&state, &id, &i, None);
    }
    match &i.req.flow {
        Flow::New { bank_id, .. } => {
            let bank = match (i.chooser, q.get("bank")) {
                (None, _) => bank_id.clone(),
                (Some(_), None) => return pages::chooser(&state, &id, &i, q.get("q").unwrap_or(""), None),
                (Some(listing), Some(b)) => {
                    if !chooseable(&state, listing, b) {
                        let why = "That bank is not available here: choose another one.";
                        return pages::chooser(&state, &id, &i, "", Some(why));
                    }
                    b.to_string()
                }
            };
            pages::bank(&state, &id, &i, &bank, &pages::Prefill::default(), None)
        }
        Flow::Reauth { connection_id, .. } => {
            let bank = connection_id.split(':').next().unwrap_or_default().to_string();
            pages::bank(&state, &id, &i, &bank, &pages::Prefill::default(), None)
        }
        Flow::Refresh { .. } => pages::refresh(&state, &id, &i, None),
        Flow::Reconsent { .. } => pages::reconsent(&state, &id, &i, None),
    }
}

/// Whether `bank_id` may be picked in the chooser of `listing`: listed there and not withdrawn.
fn chooseable(state: &Oidc, listing: Listing, bank_id: &str) -> bool {
    state.core.catalogue.get(bank_id).is_some_and(|p| listing.includes(p))
        && !state.data.store.read().removed_providers.contains(bank_id)
}

/// The form fields of a POST (`application/x-www-form-urlencoded`).
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// What answering a page leads to.
enum Next {
    /// Consent given: issue the code for this flow.
    Grant(Flow),
    /// Show a page (the same one with an error, or the next step).
    Page(Response),
    /// Back to the client with an error.
    Refuse(OAuthError),
}

fn tampered(what: &str) -> Response {
    html::message(
        StatusCode::BAD_REQUEST,
        "This form was changed",
        &format!("The sandbox refused the form: {what}. Go back to the app and start again."),
    )
}

/// `POST /oidc/interaction/{id}` (form: `action=approve|cancel` and the page's fields).
pub async fn answer(
    State(state): State<Oidc>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let now = state.core.clock.now();
    let Some(i) = state.identity.sessions.lock().interaction(&id, now.timestamp()).cloned() else {
        return gone();
    };
    if !html::cookie(&headers, COOKIE).is_some_and(|c| html::same_secret(c, &i.browser_key)) {
        return html::message(
            StatusCode::FORBIDDEN,
            "This form cannot be accepted",
            "It was not sent from the consent page this browser was given (its cookie is missing).",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = html::origin_of(&state.core.base_url);
        if origin.to_str().ok() != own.as_deref() {
            return html::message(
                StatusCode::FORBIDDEN,
                "This form cannot be accepted",
                "It was sent from another site.",
            );
        }
    }
    let form = Form(form_urlencoded::parse(&body).into_owned().collect());
    let next = match form.get("action") {
        Some("cancel") => Next::Refuse(OAuthError::new("access_denied", "the user cancelled the request")),
        Some("approve") => approve(&state, &id, &i, &form, now),
        _ => Next::Page(tampered("it must say approve or cancel")),
    };
    let (flow, error) = match next {
        Next::Page(p) => return p,
        Next::Grant(flow) => (Some(flow), None),
        Next::Refuse(e) => (None, Some(e)),
    };
    // Single use: whichever way it ends, the pages of this request are done.
    let Some(i) = state.identity.sessions.lock().take_interaction(&id, now.timestamp()) else {
        return gone();
    };
    let target = i.req.target.clone();
    if let Some(error) = error {
        return Rejection { error, target: Some(target) }.into_response_for(&state);
    }
    let mut req = i.req;
    if let Some(flow) = flow {
        req.flow = flow;
    }
    match grant(&state, &req, i.auth_request, now) {
        Ok(pairs) => respond(&req.target, &pairs),
        Err(error) => Rejection { error, target: Some(target) }.into_response_for(&state),
    }
}

fn approve(state: &Oidc, id: &str, i: &Interaction, form: &Form, now: DateTime<Utc>) -> Next {
    if let Some(flow) = &i.awaiting_code {
        return match form.get("code").map(str::trim).unwrap_or("") {
            "" => Next::Page(pages::code(state, id, i, Some("Enter the code the bank sent you."))),
            WRONG_CODE => Next::Page(pages::code(state, id, i, Some("The bank did not accept that code."))),
            _ if i.codes_left > 1 => {
                // Multi-step MFA: the next code (another device, another factor).
                let now = state.core.clock.now().timestamp();
                let mut next = i.clone();
                next.codes_left -= 1;
                if let Some(live) = state.identity.sessions.lock().interaction_mut(id, now) {
                    live.codes_left = next.codes_left;
                }
                Next::Page(pages::code(state, id, &next, None))
            }
            _ => Next::Grant(flow.clone()),
        };
    }
    match &i.req.flow {
        Flow::New { bank_id, asynchronous, expires_at, magic, .. } => {
            let bank = match (i.chooser, form.get("bank")) {
                (Some(listing), Some(b)) if chooseable(state, listing, b) => b.to_string(),
                (Some(_), _) => return Next::Page(tampered("the bank is not one of the chooser's")),
                (None, Some(b)) if b != bank_id => {
                    return Next::Page(tampered("the bank is fixed by the request"))
                }
                (None, _) => bank_id.clone(),
            };
            let Some(provider) = state.core.catalogue.get(&bank) else {
                return Next::Page(tampered("unknown bank"));
            };
            let mut keep = Vec::new();
            for a in form.all("account") {
                match a.parse::<usize>() {
                    Ok(n) if n < provider.accounts.len() => {
                        if !keep.contains(&n) {
                            keep.push(n);
                        }
                    }
                    _ => return Next::Page(tampered("an account is not one of this bank's")),
                }
            }
            keep.sort_unstable();
            let all = keep.len() == provider.accounts.len();
            let flow = Flow::New {
                bank_id: bank.clone(),
                asynchronous: *asynchronous,
                expires_at: *expires_at,
                accounts: (!all).then_some(keep.clone()),
                magic: *magic,
            };
            let prefill = pages::Prefill::from_form(form.get("username"), keep.iter().map(|n| n.to_string()));
            login(state, id, i, &bank, &prefill, form, keep.is_empty(), flow)
        }
        Flow::Reauth { connection_id, .. } => {
            let owned = {
                let store = state.data.store.read();
                match store.connections.get(connection_id) {
                    Some(c) => c.account_ids.clone(),
                    None => {
                        return Next::Refuse(OAuthError::invalid_request("the connection no longer exists"))
                    }
                }
            };
            let mut keep: Vec<Uuid> = Vec::new();
            for a in form.all("account") {
                match Uuid::parse_str(a) {
                    Ok(u) if owned.contains(&u) => {
                        if !keep.contains(&u) {
                            keep.push(u);
                        }
                    }
                    _ => return Next::Page(tampered("an account is not one of this connection's")),
                }
            }
            let all = keep.len() == owned.len();
            let bank = connection_id.split(':').next().unwrap_or_default().to_string();
            let prefill = pages::Prefill::from_form(form.get("username"), keep.iter().map(Uuid::to_string));
            let flow = Flow::Reauth {
                connection_id: connection_id.clone(),
                accounts: (!all).then_some(keep.clone()),
                magic: None,
            };
            login(state, id, i, &bank, &prefill, form, keep.is_empty(), flow)
        }
        Flow::Refresh { connection_id, .. } => match form.get("code").map(str::trim).unwrap_or("") {
            "" => Next::Page(pages::refresh(state, id, i, Some("Enter the code the bank sent you."))),
            WRONG_CODE => {
                Next::Page(pages::refresh(state, id, i, Some("The bank did not accept that code.")))
            }
            _ => {
                let connection_id = connection_id.clone();
                let again = |why: &str| Next::Page(pages::refresh(state, id, i, Some(why)));
                optional_magic(state, id, i, form, 1, again, |magic| Flow::Refresh { connection_id, magic })
            }
        },
        Flow::Reconsent { connection_id, expires_at, .. } => {
            let _ = now;
            let (connection_id, expires_at) = (connection_id.clone(), *expires_at);
            let again = |why: &str| Next::Page(pages::reconsent(state, id, i, Some(why)));
            optional_magic(state, id, i, form, 0, again, |magic| Flow::Reconsent {
                connection_id,
                expires_at,
                magic,
            })
        }
    }
}

/// The optional sandbox password of the refresh and reconsent pages (no bank login there):
/// empty, or any other value, renews as asked; a magic password acts out the bank's answers
/// as on the login page: `server_error` fails the request, `wrong_password` shows the page
/// again, `mfa`/`mfa_twice` ask for one-time codes (`codes_done` of them were entered on the
/// page already: the refresh page's code counts), and the scripting ones ([`Magic`]) script
/// the renewed connection from its next sync on.
fn optional_magic(
    state: &Oidc,
    id: &str,
    i: &Interaction,
    form: &Form,
    codes_done: u8,
    again: impl Fn(&str) -> Next,
    flow: impl FnOnce(Option<Magic>) -> Flow,
) -> Next {
    match form.get("password").unwrap_or("") {
        "server_error" => {
            Next::Refuse(OAuthError::new("server_error", "the bank had a problem logging the user in"))
        }
        "wrong_password" => again("The bank rejected these credentials. Check them and try again."),
        word @ ("mfa" | "mfa_twice") => {
            let codes: u8 = if word == "mfa" { 1 } else { 2 };
            let flow = flow(None);
            if codes <= codes_done {
                return Next::Grant(flow);
            }
            let now = state.core.clock.now().timestamp();
            if let Some(live) = state.identity.sessions.lock().interaction_mut(id, now) {
                live.awaiting_code = Some(flow.clone());
                live.codes_left = codes - codes_done;
                live.codes_total = codes;
            }
            let mut waiting = i.clone();
            waiting.awaiting_code = Some(flow);
            waiting.codes_left = codes - codes_done;
            waiting.codes_total = codes;
            Next::Page(pages::code(state, id, &waiting, None))
        }
        other => Next::Grant(flow(Magic::of_password(other))),
    }
}

/// The bank's login: mock credentials and their magic values.
#[allow(clippy::too_many_arguments)]
fn login(
    state: &Oidc,
    id: &str,
    i: &Interaction,
    bank: &str,
    prefill: &pages::Prefill,
    form: &Form,
    no_accounts: bool,
    flow: Flow,
) -> Next {
    let username = form.get("username").map(str::trim).unwrap_or("");
    let password = form.get("password").unwrap_or("");
    let again = |why: &str| Next::Page(pages::bank(state, id, i, bank, prefill, Some(why)));
    if username.is_empty() || password.is_empty() {
        return again("Enter a username and a password (any values log in).");
    }
    if no_accounts {
        return again("Tick at least one account to share.");
    }
    match password {
        "server_error" => {
            Next::Refuse(OAuthError::new("server_error", "the bank had a problem logging the user in"))
        }
        "wrong_password" => again("The bank rejected these credentials. Check them and try again."),
        "mfa" | "mfa_twice" => {
            let codes = if password == "mfa" { 1 } else { 2 };
            let now = state.core.clock.now().timestamp();
            if let Some(live) = state.identity.sessions.lock().interaction_mut(id, now) {
                live.awaiting_code = Some(flow);
                live.codes_left = codes;
                live.codes_total = codes;
            }
            let mut waiting = i.clone();
            waiting.awaiting_code = Some(i.req.flow.clone());
            waiting.codes_left = codes;
            waiting.codes_total = codes;
            Next::Page(pages::code(state, id, &waiting, None))
        }
        other => match (flow, Magic::of_password(other)) {
            (Flow::New { bank_id, asynchronous, expires_at, accounts, .. }, Some(magic)) => {
                Next::Grant(Flow::New { bank_id, asynchronous, expires_at, accounts, magic: Some(magic) })
            }
            (Flow::Reauth { connection_id, accounts, .. }, Some(magic)) => {
                Next::Grant(Flow::Reauth { connection_id, accounts, magic: Some(magic) })
            }
            (flow, _) => Next::Grant(flow),
        },
    }
}
