//! The HTML of the consent pages (see `super::consent`). Every value that comes from a
//! request or the store goes through [`html::escape`].

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};

use super::authz::Flow;
use super::interaction::{Interaction, Magic};
use super::Oidc;
use crate::http::html::{self, escape};
use crate::store::{consent_period, one_time_consent_period};

/// The standard account-information permissions every connection gets.
const STANDARD_PERMISSIONS: &[&str] = &[
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
];

/// What a page shown again keeps of what the person entered (never the password).
#[derive(Debug, Default)]
pub struct Prefill {
    username: String,
    /// The ticked accounts; `None`: all (a first showing).
    ticked: Option<Vec<String>>,
}

impl Prefill {
    /// From a submitted form.
    pub fn from_form(username: Option<&str>, ticked: impl Iterator<Item = String>) -> Self {
        Prefill { username: username.unwrap_or("").to_string(), ticked: Some(ticked.collect()) }
    }
    fn is_ticked(&self, value: &str) -> bool {
        self.ticked.as_ref().is_none_or(|t| t.iter().any(|v| v == value))
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn render(state: &Oidc, i: &Interaction, title: &str, body: String) -> Response {
    let _ = state;
    let target = html::origin_of(&i.req.target.redirect_uri);
    html::page(StatusCode::OK, title, &body, target.as_deref())
}

fn error_box(error: Option<&str>) -> String {
    error.map(html::alert).unwrap_or_default()
}

/// Who asks, and where the answer goes (the request's `state` included: shown, escaped).
fn request_box(i: &Interaction) -> String {
    let state = i.req.target.state.as_deref().unwrap_or("(none)");
    format!(
        "<p class=\"muted\">Requested by <b>{}</b>. You will return to <code>{}</code> \
         (state <code id=\"state\">{}</code>).</p>",
        escape(&i.req.client_id),
        escape(&i.req.target.redirect_uri),
        escape(state)
    )
}

/// Permissions, expiry and history start of the consent.
fn summary(state: &Oidc, i: &Interaction, bank_id: Option<&str>) -> String {
    let now = state.core.clock.now();
    let provider = bank_id.and_then(|b| state.core.catalogue.get(b));
    let mut permissions: Vec<String> = STANDARD_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    permissions.extend(i.summary.extra_permissions.iter().cloned());
    let expiry = match (&i.req.flow, i.summary.expires_at) {
        (_, Some(t)) => when(t),
        (Flow::Reconsent { .. }, None) => when(now + consent_period()),
        (_, None) if i.req.user_id.is_none() => when(now + one_time_consent_period()),
        (_, None) if provider.is_some_and(|p| p.no_expiry) => "no expiry (this provider sets none)".into(),
        (_, None) => when(now + consent_period()),
    };
    let history = match (i.summary.history_from, provider) {
        (Some(t), _) => when(t),
        (None, Some(p)) => format!(
            "{} ({} months, the provider's limit)",
            when(now - Duration::days(30 * p.history_months as i64 + p.history_months as i64 / 2)),
            p.history_months
        ),
        (None, None) => "unchanged".into(),
    };
    let perms: String = permissions.iter().map(|p| format!("<code>{}</code> ", escape(p))).collect();
    format!(
        "<h2>What you share</h2><dl><dt>Permissions</dt><dd>{perms}</dd>\
         <dt>Consent until</dt><dd id=\"expiry\">{}</dd><dt>History from</dt><dd>{}</dd></dl>",
        escape(&expiry),
        escape(&history)
    )
}

fn buttons(approve: &str) -> String {
    format!(
        "<p class=\"row\"><button id=\"approve\" name=\"action\" value=\"approve\">{}</button>\
         <button id=\"cancel\" class=\"secondary\" name=\"action\" value=\"cancel\">Cancel</button></p>",
        escape(approve)
    )
}

fn form_open(id: &str) -> String {
    format!("<form method=\"post\" action=\"/oidc/interaction/{}\">", escape(id))
}

/// The bank chooser of a group scope, filtered by `search`.
pub fn chooser(state: &Oidc, id: &str, i: &Interaction, search: &str, error: Option<&str>) -> Response {
    let Some(listing) = i.chooser else { return html::message(StatusCode::NOT_FOUND, "No chooser", "") };
    let needle = search.trim().to_lowercase();
    let removed = state.data.store.read().removed_providers.clone();
    let mut items = String::new();
    let mut shown = 0;
    for p in state.core.catalogue.all().iter().filter(|p| listing.includes(p)) {
        if !needle.is_empty() && !p.name.to_lowercase().contains(&needle) && !p.bank_ref.contains(&needle) {
            continue;
        }
        shown += 1;
        let kind = p.kind.as_str();
        if removed.contains(&p.id) {
            items.push_str(&format!(
                "<li class=\"off\">{}<span>{} <span class=\"muted\">({kind}) unavailable</span></span></li>",
                html::icon(p.name),
                escape(p.name)
            ));
        } else {
            items.push_str(&format!(
                "<li>{}<a id=\"bank-{}\" href=\"/oidc/interaction/{}?bank={}\">{}</a> \
                 <span class=\"muted\">({kind})</span></li>",
                html::icon(p.name),
                escape(p.bank_ref),
                escape(id),
                escape(&html::query_value(&p.id)),
                escape(p.name)
            ));
        }
    }
    if shown == 0 {
        items.push_str("<li>No bank matches your search.</li>");
    }
    let body = format!(
        "<section><h1>Choose your bank</h1>{}{}\
         <form method=\"get\" action=\"/oidc/interaction/{}\" class=\"row\">\
         <input id=\"search\" name=\"q\" value=\"{}\" placeholder=\"Search banks\" aria-label=\"Search banks\">\
         <button id=\"search-go\" class=\"secondary\">Search</button></form></section>\
         <section><ul class=\"banks\">{items}</ul></section>\
         <section>{}{}</form></section>",
        error_box(error),
        request_box(i),
        escape(id),
        escape(search),
        form_open(id),
        "<p class=\"row\"><button id=\"cancel\" class=\"secondary\" name=\"action\" value=\"cancel\">Cancel</button></p>",
    );
    render(state, i, "Choose your bank", body)
}

/// The bank's page: mock login, the accounts to share and the consent summary (new
/// connections and reauth).
pub fn bank(
    state: &Oidc,
    id: &str,
    i: &Interaction,
    bank_id: &str,
    prefill: &Prefill,
    error: Option<&str>,
) -> Response {
    let Some(provider) = state.core.catalogue.get(bank_id) else {
        return html::message(StatusCode::NOT_FOUND, "Unknown bank", "This bank is not in the catalogue.");
    };
    // (value, label) of each account offered.
    let accounts: Vec<(String, String)> = match &i.req.flow {
        Flow::Reauth { connection_id, .. } => {
            let store = state.data.store.read();
            store
                .connections
                .get(connection_id)
                .map(|c| {
                    c.account_ids
                        .iter()
                        .filter_map(|a| store.accounts.get(a))
                        .map(|a| {
                            let tail: String = a
                                .provider_account_id
                                .chars()
                                .rev()
                                .take(4)
                                .collect::<Vec<_>>()
                                .into_iter()
                                .rev()
                                .collect();
                            (a.id.to_string(), format!("{} ····{tail}", a.kind.display_name()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => provider
            .accounts
            .iter()
            .enumerate()
            .map(|(n, k)| (n.to_string(), format!("{} ({})", k.display_name(), k.type_str())))
            .collect(),
    };
    let boxes: String = accounts
        .iter()
        .enumerate()
        .map(|(n, (value, label))| {
            format!(
                "<label><input type=\"checkbox\" id=\"account-{n}\" name=\"account\" value=\"{}\"{}> {}</label>",
                escape(value),
                if prefill.is_ticked(value) { " checked" } else { "" },
                escape(label)
            )
        })
        .collect();
    let heading = match i.req.flow {
        Flow::Reauth { .. } => format!("Log in to {} again", provider.name),
        _ => format!("Log in to {}", provider.name),
    };
    let chosen = if i.chooser.is_some() {
        format!(
            "<input type=\"hidden\" name=\"bank\" value=\"{}\"><p><a href=\"/oidc/interaction/{}\">Choose another bank</a></p>",
            escape(&provider.id),
            escape(id)
        )
    } else {
        String::new()
    };
    let hint = magic_list(true);
    let body = format!(
        "<section><div class=\"row\">{}<h1>{}</h1></div>{}{}</section>{}\
         <section><h2>Your login</h2>{hint}\
         <label>Username <input id=\"username\" name=\"username\" autocomplete=\"off\" value=\"{}\"></label>\
         <label>Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"off\"></label></section>\
         <section><h2>Accounts to share</h2>{boxes}</section><section>{}{chosen}{}</section></form>",
        html::icon(provider.name),
        escape(&heading),
        error_box(error),
        request_box(i),
        form_open(id),
        escape(&prefill.username),
        summary(state, i, Some(&provider.id)),
        buttons("Approve"),
    );
    render(state, i, &heading, body)
}

/// The sandbox's magic passwords, listed on the bank's login page (new connection and
/// reauth) and on the refresh and reconsent pages (whose password field is optional): the
/// scripting ones script the connection the login makes or renews, from its next sync on.
fn magic_list(scripting: bool) -> String {
    let mut rows = String::from(
        "<li><code>wrong_password</code>: the bank rejects the login (try again)</li>\
         <li><code>server_error</code>: the request fails (<code>error=server_error</code>)</li>\
         <li><code>mfa</code>: the bank asks for a one-time code; <code>mfa_twice</code>: two codes, \
         one after the other (any code but <code>000000</code> passes)</li>",
    );
    if scripting {
        for (password, _, what) in Magic::ALL {
            rows.push_str(&format!("<li><code>{}</code>: {}</li>", escape(password), escape(what)));
        }
    }
    format!(
        "<details id=\"magic\" class=\"magic\"><summary>Sandbox: any username and password log in; \
         these passwords act out the bank's other answers</summary><ul>{rows}</ul></details>"
    )
}

/// The page `/oidc/auth` shows a browser, with consent pages on, for a request it refuses
/// without a redirect URI to send the error to (a link used already, from a reload or a
/// second tab; an expired or unknown one): what happened, and what to do, instead of the
/// raw JSON error.
pub fn refused(error: &str, description: &str) -> Response {
    let (title, what) = if error == "invalid_request_uri" {
        (
            "This sign-in link has been used already",
            "A sign-in link works once and for a short time: this one was opened before (a reload, \
             a second tab, the back button) or has expired. Nothing was changed.",
        )
    } else {
        ("This sign-in request cannot be used", "The sandbox refused the request before any page was shown.")
    };
    let body = format!(
        "<section><h1>{}</h1><p class=\"err\" role=\"alert\" id=\"error\">{}</p>\
         <p>Sandbox's answer: <code>{}</code> ({})</p>\
         <p><b>What to do:</b> go back to the app (or the terminal) and start the connection again: \
         it makes a new link.</p></section>",
        escape(title),
        escape(what),
        escape(error),
        escape(description)
    );
    html::page(StatusCode::BAD_REQUEST, title, &body, None)
}

/// The one-time code a bank asks for after the password `mfa` (`mfa_twice`: two of them).
pub fn code(state: &Oidc, id: &str, i: &Interaction, error: Option<&str>) -> Response {
    let step = if i.codes_total > 1 {
        let n = i.codes_total.saturating_sub(i.codes_left).saturating_add(1);
        format!(
            "<p id=\"mfa-step\">Step {n} of {}: {}</p>",
            i.codes_total,
            if n == 1 { "the code sent by text message" } else { "the code shown in your banking app" }
        )
    } else {
        String::new()
    };
    let body = format!(
        "<section><h1>Enter your one-time code</h1>{step}{}{}{}\
         <p class=\"muted\">Sandbox: any code but <code>000000</code> passes.</p>\
         <label>Code <input id=\"code\" name=\"code\" autocomplete=\"off\"></label>{}</form></section>",
        error_box(error),
        request_box(i),
        form_open(id),
        buttons("Continue"),
    );
    render(state, i, "Enter your one-time code", body)
}

fn connection_line(state: &Oidc, i: &Interaction) -> String {
    let con_id = match &i.req.flow {
        Flow::Reauth { connection_id, .. }
        | Flow::Refresh { connection_id, .. }
        | Flow::Reconsent { connection_id, .. } => connection_id,
        Flow::New { .. } => return String::new(),
    };
    let store = state.data.store.read();
    let Some(c) = store.connections.get(con_id) else { return String::new() };
    let expiry = c.expires_at.map(when).unwrap_or_else(|| "none".into());
    format!(
        "<p>{}<b>{}</b> <span class=\"muted\">connection <code>{}</code>, consent until \
         <span id=\"current-expiry\">{}</span></span></p>",
        html::icon(c.name),
        escape(c.name),
        escape(con_id),
        escape(&expiry)
    )
}

/// Refresh (legacy): the bank wants a one-time code; no accounts to choose.
pub fn refresh(state: &Oidc, id: &str, i: &Interaction, error: Option<&str>) -> Response {
    let body = format!(
        "<section><h1>Refresh your connection</h1>{}{}{}</section><section>{}\
         <p>The bank needs to confirm it is you before it shares new data.</p>\
         <p class=\"muted\">Sandbox: any code but <code>000000</code> passes.</p>\
         <label>One-time code <input id=\"code\" name=\"code\" autocomplete=\"off\"></label>{}{}</form></section>",
        error_box(error),
        request_box(i),
        connection_line(state, i),
        form_open(id),
        optional_password(),
        buttons("Refresh"),
    );
    render(state, i, "Refresh your connection", body)
}

/// The refresh and reconsent pages' optional password: no bank login is needed there, but a
/// magic password acts out the bank's answers as on the login page (issue 23 #8).
fn optional_password() -> String {
    format!(
        "<label>Sandbox password (optional) <input id=\"password\" name=\"password\" \
         type=\"password\" autocomplete=\"off\"></label>{}",
        magic_list(true)
    )
}

/// Reconsent: the summary with the new expiry; no bank login (the user stays with Moneyhub),
/// only the sandbox's optional magic password.
pub fn reconsent(state: &Oidc, id: &str, i: &Interaction, error: Option<&str>) -> Response {
    let bank = match &i.req.flow {
        Flow::Reconsent { connection_id, .. } => connection_id.split(':').next().map(str::to_string),
        _ => None,
    };
    let body = format!(
        "<section><h1>Keep sharing your data</h1>{}{}{}</section><section>{}{}{}{}</form></section>",
        error_box(error),
        request_box(i),
        connection_line(state, i),
        form_open(id),
        summary(state, i, bank.as_deref()),
        optional_password(),
        buttons("Renew consent"),
    );
    render(state, i, "Keep sharing your data", body)
}
