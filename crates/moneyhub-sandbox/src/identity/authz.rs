//! Validating an authorisation request (the parameters of `/oidc/auth`, a PAR body or a
//! request object, already merged) into what the sandbox will do when the user consents.
//!
//! At PAR time ([`validate_pushed`], errors as JSON) only what the request itself says is
//! checked: it must be well-formed. What depends on the sandbox's users and connections (a
//! `sub` the client does not know, a renewal naming another user's connection or one that
//! cannot be renewed) is checked at `/oidc/auth` ([`validate`], errors redirected to the
//! client with its `state` once the client and its redirect URI are known to be genuine),
//! as Moneyhub does: the official Node client's own tests push such requests and expect a
//! `request_uri`. So a pushed request is always checked against the store as it is when
//! the user arrives.
//!
//! Payments are not implemented by the sandbox: the payment scopes ([`PAYMENT_SCOPES`]) and
//! claims ([`PAYMENT_CLAIMS`]) are refused at both steps with `invalid_scope` naming them,
//! rather than silently becoming a data connection.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::params::{normalise_scope, scope_is_well_formed, scope_tokens, Params};
use super::Oidc;
use crate::config::ClientRegistration;
use crate::error::OAuthError;
use crate::seed::catalogue::{Listing, ProviderType};
use crate::store::consent_period;
use crate::store::model::Connection;
use crate::store::Store;

/// What the token exchange (or, for `response_type=id_token`, the authorisation) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// A new connection to a provider.
    New {
        /// The provider.
        bank_id: String,
        /// `mh:sync` `{"enableAsync": true}`: the first fetch finishes after the exchange.
        asynchronous: bool,
        /// `mh:consent.value.expirationDateTime`.
        expires_at: Option<DateTime<Utc>>,
        /// The accounts the user ticked on the interactive consent page, as positions in the
        /// provider's account list; `None` = all of them (and always with instant consent).
        accounts: Option<Vec<usize>>,
        /// What the consent pages' magic password scripts for the new connection (never
        /// with instant consent).
        magic: Option<super::interaction::Magic>,
    },
    /// `reauth` of an existing connection.
    Reauth {
        /// The connection.
        connection_id: String,
        /// The accounts the user re-selected (`sandbox_accounts` test hook); `None` = all.
        accounts: Option<Vec<Uuid>>,
        /// What the consent pages' magic password scripts for the renewed connection.
        magic: Option<super::interaction::Magic>,
    },
    /// `refresh` of a legacy connection.
    Refresh {
        /// The connection.
        connection_id: String,
        /// What the consent pages' magic password scripts for the refreshed connection.
        magic: Option<super::interaction::Magic>,
    },
    /// `reconsent` of an open-banking connection.
    Reconsent {
        /// The connection.
        connection_id: String,
        /// The new expiry (`mh:consent.value.expirationDateTime`), if given.
        expires_at: Option<DateTime<Utc>>,
        /// What the consent pages' magic password scripts for the re-consented connection.
        magic: Option<super::interaction::Magic>,
    },
}

/// Which artefacts the authorisation response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// `code`.
    Code,
    /// `code id_token` (hybrid).
    CodeIdToken,
    /// `id_token` (implicit; the flow completes at authorisation time).
    IdToken,
}

impl ResponseType {
    fn parse(s: &str) -> Option<Self> {
        let mut parts: Vec<&str> = s.split(' ').filter(|p| !p.is_empty()).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["code"] => Some(ResponseType::Code),
            ["code", "id_token"] => Some(ResponseType::CodeIdToken),
            ["id_token"] => Some(ResponseType::IdToken),
            _ => None,
        }
    }

    /// Whether the response includes a code.
    pub fn has_code(self) -> bool {
        matches!(self, ResponseType::Code | ResponseType::CodeIdToken)
    }

    /// Whether the response includes an id_token.
    pub fn has_id_token(self) -> bool {
        matches!(self, ResponseType::CodeIdToken | ResponseType::IdToken)
    }
}

/// How the authorisation response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// In the redirect URI's query.
    Query,
    /// In the redirect URI's fragment.
    Fragment,
    /// As an auto-submitted HTML form.
    FormPost,
}

/// Where errors and results go once client and redirect URI are trusted.
#[derive(Debug, Clone)]
pub struct Target {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// The request's `state`.
    pub state: Option<String>,
    /// The response mode.
    pub mode: ResponseMode,
}

/// A validated authorisation request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// Where to answer.
    pub target: Target,
    /// What to answer with.
    pub response_type: ResponseType,
    /// The requested scope, normalised.
    pub scope: String,
    /// `nonce`.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `max_age`, when requested.
    pub max_age: Option<i64>,
    /// The user named by `claims.id_token.sub.value`; `None` for one-time access (a new
    /// connection without a `sub` value), where consent makes a user.
    pub user_id: Option<String>,
    /// What consent leads to.
    pub flow: Flow,
}

/// Why an authorisation request was refused, and whether the error may be redirected.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The error.
    pub error: OAuthError,
    /// Set once client and redirect URI are known good: the error goes back there.
    pub target: Option<Target>,
}

impl Rejection {
    /// An error that cannot be redirected (400 JSON).
    pub fn direct(error: OAuthError) -> Self {
        Rejection { error: OAuthError { status: axum::http::StatusCode::BAD_REQUEST, ..error }, target: None }
    }
}

/// Whether `uri` may be used by `client`: one of its registered URIs, or, when it registered
/// none, any `http` loopback URL (what a local test harness listens on).
pub fn redirect_allowed(client: &ClientRegistration, uri: &str) -> bool {
    if !client.redirect_uris.is_empty() {
        return client.redirect_uris.iter().any(|r| r == uri);
    }
    let Ok(u) = url::Url::parse(uri) else { return false };
    u.scheme() == "http"
        && u.fragment().is_none()
        && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// Trusted client + redirect URI from raw parameters, when both are genuine: lets errors
/// found before full validation (a bad request_uri or request object) be redirected.
pub fn trusted_target(state: &Oidc, params: &Params) -> Option<Target> {
    let client = state.core.client(params.get("client_id")?)?;
    let redirect_uri = params.get("redirect_uri")?;
    redirect_allowed(client, redirect_uri).then(|| Target {
        redirect_uri: redirect_uri.to_string(),
        state: params.get("state").map(str::to_string),
        mode: mode_for(params),
    })
}

/// The response mode the parameters ask for (or imply), falling back to the defaults of
/// the response type, then `query`.
fn mode_for(params: &Params) -> ResponseMode {
    match params.get("response_mode") {
        Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        _ => match params.get("response_type").and_then(ResponseType::parse) {
            Some(rt) if rt.has_id_token() => ResponseMode::Fragment,
            _ => ResponseMode::Query,
        },
    }
}

/// What the `claims` parameter asked for.
#[derive(Debug, Default)]
struct Claims {
    sub: Option<String>,
    con_id: Option<String>,
    asynchronous: bool,
    expires_at: Option<DateTime<Utc>>,
}

fn parse_claims(raw: Option<&str>, now: DateTime<Utc>) -> Result<Claims, OAuthError> {
    let bad = |d: &str| OAuthError::invalid_request(format!("invalid claims parameter: {d}"));
    let Some(raw) = raw else { return Ok(Claims::default()) };
    let v: Value = serde_json::from_str(raw).map_err(|_| bad("not valid JSON"))?;
    let Value::Object(top) = v else { return Err(bad("must be a JSON object")) };
    let id_token = match top.get("id_token") {
        None | Some(Value::Null) => return Ok(Claims::default()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("id_token must be an object")),
    };
    for (name, req) in id_token {
        if !matches!(req, Value::Null | Value::Object(_)) {
            return Err(bad(&format!("{name} must be null or an object")));
        }
    }
    let value = |name: &str| {
        id_token.get(name).and_then(Value::as_object).and_then(|o: &Map<String, Value>| o.get("value"))
    };
    let string = |name: &str| -> Result<Option<String>, OAuthError> {
        match value(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("{name}.value must be a non-empty string"))),
        }
    };
    let mut out = Claims { sub: string("sub")?, con_id: string("mh:con_id")?, ..Claims::default() };
    if let Some(sync) = value("mh:sync") {
        out.asynchronous = match sync.get("enableAsync") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("mh:sync.value.enableAsync must be a boolean")),
        };
    }
    if let Some(consent) = value("mh:consent") {
        if !consent.is_object() {
            return Err(bad("mh:consent.value must be an object"));
        }
        match consent.get("expirationDateTime") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                let t = DateTime::parse_from_rfc3339(s)
                    .map_err(|_| bad("mh:consent.value.expirationDateTime must be an ISO 8601 date-time"))?
                    .with_timezone(&Utc);
                if t <= now {
                    return Err(OAuthError::invalid_request("expirationDateTime must be in the future"));
                }
                if t > now + consent_period() {
                    return Err(OAuthError::invalid_request(
                        "expirationDateTime must be at most 90 days ahead",
                    ));
                }
                out.expires_at = Some(t);
            }
            Some(_) => return Err(bad("mh:consent.value.expirationDateTime must be a string")),
        }
    }
    Ok(out)
}

/// Scopes of Moneyhub's payment flows (payments, reverse payments, recurring payments, standing
/// orders, pay links and file payments), which the sandbox does not implement.
pub const PAYMENT_SCOPES: &[&str] = &[
    "payment",
    "reverse_payment",
    "recurring_payment:create",
    "standing_orders:create",
    "pay_link",
    "pay_file",
];

/// The `id_token` claims that carry a payment's details, which the sandbox does not implement.
pub const PAYMENT_CLAIMS: &[&str] =
    &["mh:payment", "mh:reverse_payment", "mh:recurring_payment", "mh:standing_order", "mh:pay_file_consent"];

/// Whether a scope token asks for a payment flow.
fn is_payment_scope(s: &str) -> bool {
    PAYMENT_SCOPES.contains(&s) || s.starts_with("recurring_payment") || s.starts_with("pay_file")
}

/// The payment claims a `claims` parameter asks for (in `id_token` or `userinfo`).
fn payment_claims(raw: Option<&str>) -> Vec<&'static str> {
    let Some(claims) = raw.and_then(|c| serde_json::from_str::<Value>(c).ok()) else { return Vec::new() };
    PAYMENT_CLAIMS
        .iter()
        .copied()
        .filter(|name| {
            ["id_token", "userinfo"].iter().any(|part| claims.get(part).and_then(|p| p.get(name)).is_some())
        })
        .collect()
}

/// Validates authorisation parameters at `now`, against the store as it is: what
/// `/oidc/auth` runs.
pub fn validate(state: &Oidc, params: &Params, now: DateTime<Utc>) -> Result<AuthRequest, Rejection> {
    validate_at(state, params, now, true)
}

/// Validates pushed parameters at `now` (PAR and the legacy `POST /request`): everything but
/// what depends on the store's users and connections, which [`validate`] checks when the
/// user arrives at `/oidc/auth`.
pub fn validate_pushed(state: &Oidc, params: &Params, now: DateTime<Utc>) -> Result<AuthRequest, Rejection> {
    validate_at(state, params, now, false)
}

fn validate_at(
    state: &Oidc,
    params: &Params,
    now: DateTime<Utc>,
    against_store: bool,
) -> Result<AuthRequest, Rejection> {
    let (client_id, target) = client_and_target(state, params)?;
    // From here on, errors go back to the client's redirect URI.
    let reject = |error: OAuthError| Rejection { error, target: Some(target.clone()) };
    let protocol = protocol_params(params).map_err(reject)?;
    let scope = params
        .get("scope")
        .ok_or_else(|| reject(OAuthError::invalid_request("missing required parameter 'scope'")))?;
    let scopes = checked_scopes(scope, params).map_err(reject)?;
    let claims = parse_claims(params.get("claims"), now).map_err(reject)?;
    // Without a `sub` value, a new connection is one-time access: consent makes the user.
    // Renewals always need the user.
    let user_id = claims.sub.clone();
    let store = state.data.store.read();
    if let Some(user_id) = user_id.as_ref().filter(|_| against_store) {
        if store.user(client_id, user_id).is_none() {
            return Err(reject(OAuthError::invalid_request(format!(
                "claims.id_token.sub.value {user_id:?} is not a user of this client"
            ))));
        }
    }
    let providers: Vec<&str> = scopes.iter().copied().filter(|s| s.starts_with("id:")).collect();
    let renewals: Vec<&str> =
        scopes.iter().copied().filter(|s| matches!(*s, "reauth" | "refresh" | "reconsent")).collect();
    let flow = match (providers.as_slice(), renewals.as_slice()) {
        ([], []) => Err(OAuthError::invalid_scope(
            "scope must contain a provider scope (id:<bankId>) or one of reauth, refresh, reconsent",
        )),
        ([p], []) => new_connection(state, &store, p, &claims),
        (_, []) => Err(OAuthError::invalid_scope("only one provider scope (id:*) may be requested")),
        ([], [r]) => {
            let renewal = Renewal { kind: r, scopes: &scopes, user_id: user_id.as_deref(), claims: &claims };
            renewal.flow(&store, params, now, against_store)
        }
        _ => Err(OAuthError::invalid_scope(
            "request either one provider scope or one of reauth, refresh, reconsent, not several",
        )),
    }
    .map_err(reject)?;
    drop(store);
    Ok(AuthRequest {
        client_id: client_id.to_string(),
        target,
        response_type: protocol.response_type,
        scope: normalise_scope(scope),
        nonce: protocol.nonce,
        code_challenge: protocol.code_challenge,
        max_age: protocol.max_age,
        user_id,
        flow,
    })
}

/// The client and its redirect URI: until both are known good, errors are answered directly
/// (never redirected to an unchecked URI).
fn client_and_target<'p>(state: &Oidc, params: &'p Params) -> Result<(&'p str, Target), Rejection> {
    let client_id = params.get("client_id").ok_or_else(|| {
        Rejection::direct(OAuthError::invalid_request("missing required parameter 'client_id'"))
    })?;
    let client = state
        .core
        .client(client_id)
        .ok_or_else(|| Rejection::direct(OAuthError::new("invalid_client", "unknown client_id")))?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        Rejection::direct(OAuthError::invalid_request("missing required parameter 'redirect_uri'"))
    })?;
    if !redirect_allowed(client, redirect_uri) {
        return Err(Rejection::direct(OAuthError::invalid_request(
            "redirect_uri did not match any of the client's registered redirect_uris",
        )));
    }
    let target = Target {
        redirect_uri: redirect_uri.to_string(),
        state: params.get("state").map(str::to_string),
        mode: mode_for(params),
    };
    Ok((client_id, target))
}

/// The OAuth protocol parameters of a request, checked.
struct Protocol {
    response_type: ResponseType,
    nonce: Option<String>,
    max_age: Option<i64>,
    code_challenge: Option<String>,
}

/// `response_type`, `response_mode`, `nonce`, `prompt`, `max_age` and PKCE, in that order.
fn protocol_params(params: &Params) -> Result<Protocol, OAuthError> {
    let response_type = params
        .get("response_type")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter 'response_type'"))?;
    let response_type = ResponseType::parse(response_type).ok_or_else(|| {
        OAuthError::new("unsupported_response_type", "response_type must be code, code id_token or id_token")
    })?;
    if let Some(m) = params.get("response_mode") {
        if !matches!(m, "query" | "fragment" | "form_post") {
            return Err(OAuthError::invalid_request("response_mode must be query, fragment or form_post"));
        }
    }
    let nonce = params.get("nonce").map(str::to_string);
    if response_type.has_id_token() && nonce.is_none() {
        return Err(OAuthError::invalid_request(
            "missing required parameter 'nonce' (required for response types that return an id_token)",
        ));
    }
    if let Some(prompt) = params.get("prompt") {
        for p in prompt.split(' ').filter(|p| !p.is_empty()) {
            match p {
                "consent" | "login" => {}
                "none" => return Err(OAuthError::new("consent_required", "prompt=none cannot be satisfied")),
                other => {
                    return Err(OAuthError::invalid_request(format!("unsupported prompt value {other:?}")))
                }
            }
        }
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(s) => Some(
            s.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))?,
        ),
    };
    let code_challenge = pkce_challenge(params)?;
    Ok(Protocol { response_type, nonce, max_age, code_challenge })
}

/// The PKCE challenge, if any: S256 only, 43 to 128 unreserved characters.
fn pkce_challenge(params: &Params) -> Result<Option<String>, OAuthError> {
    match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(OAuthError::invalid_request("code_challenge_method without code_challenge")),
        (Some(c), m) => {
            if m != Some("S256") {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method must be S256 (plain is not supported)",
                ));
            }
            let ok = (43..=128).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !ok {
                return Err(OAuthError::invalid_request("code_challenge is malformed"));
            }
            Ok(Some(c.to_string()))
        }
    }
}

/// The scope's tokens: well formed, with `openid`, and no payment scope or claim (the
/// sandbox does not implement payments).
fn checked_scopes<'s>(scope: &'s str, params: &Params) -> Result<Vec<&'s str>, OAuthError> {
    if !scope_is_well_formed(scope) {
        return Err(OAuthError::invalid_scope("scope is malformed"));
    }
    let scopes: Vec<&str> = scope_tokens(scope).collect();
    if !scopes.contains(&"openid") {
        return Err(OAuthError::invalid_scope("openid scope must be requested"));
    }
    let payments: Vec<&str> = scopes.iter().copied().filter(|s| is_payment_scope(s)).collect();
    let payment_claims = payment_claims(params.get("claims"));
    if !payments.is_empty() || !payment_claims.is_empty() {
        let named: Vec<&str> = payments.iter().copied().chain(payment_claims.iter().copied()).collect();
        return Err(OAuthError::invalid_scope(format!(
            "the sandbox does not implement payments (payments, reverse payments, recurring payments, \
             standing orders): {} cannot be authorised here",
            named.join(", ")
        )));
    }
    Ok(scopes)
}

/// A new connection to the provider of scope `p` (`id:<bankId>`, or a generic chooser scope
/// such as `id:test`, for which the sandbox's auto-consenting user picks the listing's first
/// provider).
fn new_connection(state: &Oidc, store: &Store, p: &str, claims: &Claims) -> Result<Flow, OAuthError> {
    let wanted = &p[3..];
    let usable = |id: &str| state.core.catalogue.get(id).is_some() && !store.removed_providers.contains(id);
    let bank_id = if usable(wanted) {
        wanted.to_string()
    } else if let Some(listing) = Listing::parse(wanted) {
        state
            .core
            .catalogue
            .all()
            .iter()
            .find(|pr| listing.includes(pr) && usable(&pr.id))
            .map(|pr| pr.id.clone())
            .ok_or_else(|| OAuthError::invalid_scope(format!("no provider available for {p}")))?
    } else {
        return Err(OAuthError::invalid_scope(format!("unknown provider scope {p}")));
    };
    Ok(Flow::New {
        bank_id,
        asynchronous: claims.asynchronous,
        expires_at: claims.expires_at,
        accounts: None,
        magic: None,
    })
}

/// A request to renew a connection: `reauth`, `refresh` or `reconsent`.
struct Renewal<'a> {
    kind: &'a str,
    scopes: &'a [&'a str],
    user_id: Option<&'a str>,
    claims: &'a Claims,
}

impl Renewal<'_> {
    /// The flow, checked against the store's connection when `against_store` (at
    /// `/oidc/auth`; a pushed request is checked there later).
    fn flow(
        &self,
        store: &Store,
        params: &Params,
        now: DateTime<Utc>,
        against_store: bool,
    ) -> Result<Flow, OAuthError> {
        let r = self.kind;
        if let Some(extra) = self.scopes.iter().find(|s| **s != "openid" && **s != r) {
            return Err(OAuthError::invalid_scope(format!("only openid may accompany {r} (found {extra})")));
        }
        let user_id = self.user_id.ok_or_else(|| {
            OAuthError::invalid_request(format!(
                "{r} requires claims.id_token.sub.value (the user of the connection)"
            ))
        })?;
        let con_id = self.claims.con_id.clone().ok_or_else(|| {
            OAuthError::invalid_request(format!("{r} requires claims.id_token[\"mh:con_id\"].value"))
        })?;
        if !against_store {
            // Whose connection it is, and whether it can be renewed, is checked at
            // `/oidc/auth`.
            return Ok(match r {
                "reauth" => Flow::Reauth { connection_id: con_id, accounts: None, magic: None },
                "refresh" => Flow::Refresh { connection_id: con_id, magic: None },
                _ => {
                    Flow::Reconsent { connection_id: con_id, expires_at: self.claims.expires_at, magic: None }
                }
            });
        }
        let conn = store.connection(user_id, &con_id).ok_or_else(|| {
            OAuthError::invalid_request(format!("connection {con_id:?} is not a connection of this user"))
        })?;
        if store.provider_removed(conn) {
            return Err(OAuthError::invalid_request("the connection's provider is no longer available"));
        }
        match r {
            "reauth" => {
                let accounts = reauth_accounts(params, conn, &con_id)?;
                Ok(Flow::Reauth { connection_id: con_id, accounts, magic: None })
            }
            "refresh" => {
                if conn.kind != ProviderType::Legacy {
                    return Err(OAuthError::invalid_request(
                        "refresh is legacy only: use reauth or reconsent for this connection",
                    ));
                }
                Ok(Flow::Refresh { connection_id: con_id, magic: None })
            }
            _ => {
                if !matches!(conn.kind, ProviderType::Api | ProviderType::Test) || conn.expires_at.is_none() {
                    return Err(OAuthError::invalid_request(
                        "reconsent is only for open-banking connections with a consent expiry",
                    ));
                }
                if !conn.tpp_consent(now) {
                    return Err(OAuthError::invalid_request(
                        "tppConsent is false: this connection needs a reauth, not a reconsent",
                    ));
                }
                Ok(Flow::Reconsent { connection_id: con_id, expires_at: self.claims.expires_at, magic: None })
            }
        }
    }
}

/// `sandbox_accounts`: the accounts a reauth keeps (comma-separated ids of the connection's
/// accounts); `None` when absent or empty.
fn reauth_accounts(
    params: &Params,
    conn: &Connection,
    con_id: &str,
) -> Result<Option<Vec<Uuid>>, OAuthError> {
    let Some(list) = params.get("sandbox_accounts") else { return Ok(None) };
    let mut ids = Vec::new();
    for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let id = Uuid::parse_str(a).map_err(|_| {
            OAuthError::invalid_request(format!("sandbox_accounts: {a:?} is not an account id"))
        })?;
        if !conn.account_ids.contains(&id) {
            return Err(OAuthError::invalid_request(format!(
                "sandbox_accounts: account {id} is not part of connection {con_id}"
            )));
        }
        ids.push(id);
    }
    Ok((!ids.is_empty()).then_some(ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn response_types() {
        assert_eq!(ResponseType::parse("code"), Some(ResponseType::Code));
        assert_eq!(ResponseType::parse("id_token code"), Some(ResponseType::CodeIdToken));
        assert_eq!(ResponseType::parse("id_token"), Some(ResponseType::IdToken));
        assert_eq!(ResponseType::parse("token"), None);
        assert_eq!(ResponseType::parse("none"), None);
    }

    #[test]
    fn claims_parsing_never_panics() {
        let now = Utc::now();
        for bad in [
            "",
            "[]",
            "{\"id_token\":1}",
            "{\"id_token\":{\"sub\":1}}",
            "{\"id_token\":{\"sub\":{\"value\":1}}}",
        ] {
            assert!(parse_claims(Some(bad), now).is_err(), "{bad}");
        }
        let c = parse_claims(
            Some(r#"{"id_token":{"sub":{"essential":true,"value":"u"},"mh:sync":{"value":{"enableAsync":true}}}}"#),
            now,
        )
        .unwrap();
        assert_eq!(c.sub.as_deref(), Some("u"));
        assert!(c.asynchronous);
        let far = (now + Duration::days(91)).to_rfc3339();
        let raw = format!(r#"{{"id_token":{{"mh:consent":{{"value":{{"expirationDateTime":"{far}"}}}}}}}}"#);
        assert!(parse_claims(Some(&raw), now).is_err());
    }

    #[test]
    fn loopback_redirects_when_none_registered() {
        let c = ClientRegistration::default();
        assert!(redirect_allowed(&c, "http://127.0.0.1:9999/cb"));
        assert!(redirect_allowed(&c, "http://localhost/cb"));
        assert!(redirect_allowed(&c, "http://[::1]:80/cb"));
        assert!(!redirect_allowed(&c, "https://example.com/cb"));
        assert!(!redirect_allowed(&c, "http://127.0.0.1.evil.com/cb"));
        assert!(!redirect_allowed(&c, "not a url"));
    }
}
