//! The Auth Requests API (reference §20): the integrator's server asks for an authorisation
//! URL, sends the user there, and hands the callback parameters back; the sandbox exchanges
//! the code itself and creates or renews the connection.
//!
//! | Route | Scope | What |
//! | --- | --- | --- |
//! | `POST /auth-requests` | `auth_requests:write` | 201 `{data: AuthRequest}` with `redirectParams.authUrl` |
//! | `GET /auth-requests?limit&offset` | `auth_requests:read` | `{data: [AuthRequest], meta: {total, limit, offset}}`, oldest first |
//! | `GET /auth-requests/{id}` | `auth_requests:read` | `{data: AuthRequest}`; 404 unknown |
//! | `PATCH /auth-requests/{id}` | `auth_requests:write` | `{authParams: {code, state, id_token?}}` or `{authParams: {error, error_description?, state}}` → `{data: AuthRequest}` |
//!
//! Decisions where the reference is silent:
//! * The request is validated exactly like a pushed authorisation request (scope rules of
//!   §3.8, users, connections, consent expiry), built from the body: `scope` (the provider
//!   spelled `id:<bankId>` or bare), `userId` → `claims.id_token.sub`, `connectionId` →
//!   `mh:con_id` (required, with `userId`, for reauth, refresh and reconsent, and refused
//!   otherwise), `sync.enableAsync` → `mh:sync`, `expirationDateTime` → `mh:consent`.
//!   `redirectUri` and `scope` are required; payment fields are refused (the sandbox does
//!   not do payments); unknown fields are refused by name.
//! * `authUrl` is `<issuer>/auth?client_id=…&request_uri=…`: a pushed request that lives one
//!   virtual hour and is single use, going through the same consent as PAR. Its code can only
//!   be redeemed here (the token endpoint refuses it), once.
//! * The sandbox makes `state` (and `nonce`) itself and returns `state` in `redirectParams`.
//!   A `PATCH` whose `state` differs is refused (400) and leaves the request `pending`, as does
//!   an invalid code; an `error` completion sets `status: error` with `error` and
//!   `errorDescription`; a completed request (`complete` or `error`) refuses a second `PATCH`.
//! * The outcome is recorded at the top level: `connectionId`, `syncId` (asynchronous
//!   connections), `userId` (the user one-time access made) and `completedAt`.
//! * `PATCH` needs `auth_requests:write` (what the official client requests for it).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::auth::BearerGrant;
use crate::clock::iso;
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{json, ok, Body, Path};
use crate::identity::{
    complete, normalise_scope, random_token, random_uuid, scope_tokens, validate, Flow, Oidc, Params, Pushed,
    PAR_PREFIX,
};
use crate::state::AuthRequestsRoom;

/// How long an auth request's `authUrl` stays usable (virtual seconds).
pub const AUTH_URL_TTL_SECS: i64 = 3600;

/// Where an auth request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    /// A `PATCH` is exchanging its code right now.
    Completing,
    Complete,
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending | Status::Completing => "pending",
            Status::Complete => "complete",
            Status::Error => "error",
        }
    }
}

/// One auth request.
#[derive(Debug, Clone)]
pub struct AuthRequestRecord {
    id: String,
    client_id: String,
    redirect_uri: String,
    created_at: DateTime<Utc>,
    bank_id: String,
    user_id: Option<String>,
    scope: String,
    connection_id: Option<String>,
    status: Status,
    auth_url: String,
    state: String,
    sync_id: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    completed_at: Option<DateTime<Utc>>,
}

impl AuthRequestRecord {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("redirectUri".into(), json!(self.redirect_uri));
        m.insert("createdAt".into(), json!(iso(self.created_at)));
        m.insert("bankId".into(), json!(self.bank_id));
        if let Some(u) = &self.user_id {
            m.insert("userId".into(), json!(u));
        }
        m.insert("scope".into(), json!(self.scope));
        if let Some(c) = &self.connection_id {
            m.insert("connectionId".into(), json!(c));
        }
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert("redirectParams".into(), json!({"authUrl": self.auth_url, "state": self.state}));
        if let Some(s) = &self.sync_id {
            m.insert("syncId".into(), json!(s));
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), json!(e));
        }
        if let Some(e) = &self.error_description {
            m.insert("errorDescription".into(), json!(e));
        }
        if let Some(t) = self.completed_at {
            m.insert("completedAt".into(), json!(iso(t)));
        }
        Value::Object(m)
    }
}

/// Every auth request, in creation order.
#[derive(Debug, Default)]
pub struct AuthRequests {
    by_id: HashMap<String, AuthRequestRecord>,
    order: Vec<String>,
}

impl AuthRequests {
    fn get(&self, client_id: &str, id: &str) -> Option<&AuthRequestRecord> {
        self.by_id.get(id).filter(|r| r.client_id == client_id)
    }
}

/// Auth requests are the client's: a token bound to a user (`sub`) may not use them.
fn client_token(grant: &crate::auth::Grant) -> Result<(), ApiError> {
    match grant.sub {
        Some(_) => Err(ApiError::forbidden("Auth requests need a client token without sub")),
        None => Ok(()),
    }
}

/// The body fields `POST /auth-requests` understands.
const KNOWN_FIELDS: &[&str] = &[
    "redirectUri",
    "userId",
    "scope",
    "connectionId",
    "categorisationType",
    "permissions",
    "permissionsAction",
    "expirationDateTime",
    "transactionFromDateTime",
    "sync",
    "customerIpAddress",
    "customerLastLoggedTime",
    "accountTypes",
    "accountIdentification",
    "accountVerification",
    "env",
    "benefitsCheck",
    "counterpartiesCheck",
];

/// Payment fields: part of Moneyhub's API, not of the sandbox.
const PAYMENT_FIELDS: &[&str] = &["payment", "standingOrder", "recurringPayment", "reversePayment"];

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Missing JSON body"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("Invalid body: must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("Invalid body: {e}"))),
    }
}

fn opt_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("\"{key}\" must be a non-empty string"))),
    }
}

/// The scope with a bare bank id (`openid 1ffe…`, the official client's README spelling)
/// turned into `id:<bankId>`.
fn normalise_bank_spelling(scope: &str) -> String {
    scope_tokens(scope)
        .map(|t| {
            if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                format!("id:{t}")
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /auth-requests`.
pub async fn create(
    State(oidc): State<Oidc>,
    State(requests): State<Arc<AuthRequestsRoom>>,
    BearerGrant { grant, at: now_t }: BearerGrant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = now_t.timestamp();
    grant.require_any(&["auth_requests:write"])?;
    client_token(&grant)?;
    let m = parse_object(&body)?;
    let req = NewAuthRequest::parse(&m)?;
    let auth_state = random_token();
    let params = req.params(&grant.cid, &auth_state);
    let validated = validate(&oidc, &params, now_t).map_err(|rej| {
        ApiError::bad_request(rej.error.description.clone()).with_details(json!({"error": rej.error.error}))
    })?;
    let bank_id = match &validated.flow {
        Flow::New { bank_id, .. } => bank_id.clone(),
        Flow::Reauth { connection_id, .. }
        | Flow::Refresh { connection_id, .. }
        | Flow::Reconsent { connection_id, .. } => {
            connection_id.split(':').next().unwrap_or_default().to_string()
        }
    };
    let id = random_uuid().to_string();
    let auth_url = push(&oidc, &grant.cid, &id, params, now)?;
    let record = AuthRequestRecord {
        id: id.clone(),
        client_id: grant.cid.clone(),
        redirect_uri: req.redirect_uri.to_string(),
        created_at: now_t,
        bank_id,
        user_id: req.user_id.map(str::to_string),
        scope: req.scope,
        connection_id: req.connection_id.map(str::to_string),
        status: Status::Pending,
        auth_url,
        state: auth_state,
        sync_id: None,
        error: None,
        error_description: None,
        completed_at: None,
    };
    let body = record.to_json();
    let mut all = requests.lock();
    all.order.push(id.clone());
    all.by_id.insert(id, record);
    Ok(json(StatusCode::CREATED, json!({ "data": body })))
}

/// A `POST /auth-requests` body, checked: what the authorisation it starts asks for.
struct NewAuthRequest<'a> {
    redirect_uri: &'a str,
    /// Normalised, banks spelled `id:<bankId>`.
    scope: String,
    user_id: Option<&'a str>,
    connection_id: Option<&'a str>,
    /// The `claims.id_token` the body amounts to.
    id_token: Map<String, Value>,
}

impl<'a> NewAuthRequest<'a> {
    /// Checks the fields (known, no payments, renewals with their connection and user).
    fn parse(m: &'a Map<String, Value>) -> Result<Self, ApiError> {
        for k in m.keys() {
            if PAYMENT_FIELDS.contains(&k.as_str()) {
                if !m[k].is_null() {
                    return Err(ApiError::bad_request(format!(
                        "\"{k}\": payments are not implemented by the sandbox"
                    )));
                }
            } else if !KNOWN_FIELDS.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
            }
        }
        let redirect_uri =
            opt_str(m, "redirectUri")?.ok_or_else(|| ApiError::bad_request("\"redirectUri\" is required"))?;
        let raw_scope = opt_str(m, "scope")?.ok_or_else(|| ApiError::bad_request("\"scope\" is required"))?;
        let scope = normalise_bank_spelling(&normalise_scope(raw_scope));
        let user_id = opt_str(m, "userId")?;
        let connection_id = opt_str(m, "connectionId")?;
        for k in
            ["categorisationType", "permissionsAction", "customerIpAddress", "customerLastLoggedTime", "env"]
        {
            opt_str(m, k)?;
        }
        let renewal = scope_tokens(&scope).find(|t| matches!(*t, "reauth" | "refresh" | "reconsent"));
        match (renewal, connection_id, user_id) {
            (Some(r), None, _) => {
                return Err(ApiError::bad_request(format!("\"connectionId\" is required with the {r} scope")))
            }
            (Some(r), Some(_), None) => {
                return Err(ApiError::bad_request(format!("\"userId\" is required with the {r} scope")))
            }
            (None, Some(_), _) => {
                return Err(ApiError::bad_request(
                    "\"connectionId\" is only for the reauth, refresh and reconsent scopes",
                ))
            }
            _ => {}
        }
        let id_token = id_token_claims(m, user_id, connection_id)?;
        Ok(NewAuthRequest { redirect_uri, scope, user_id, connection_id, id_token })
    }

    /// The authorisation parameters it amounts to, as a client would push them.
    fn params(&self, client_id: &str, auth_state: &str) -> Params {
        let mut params = Params::default();
        params.set("client_id", client_id.to_owned());
        params.set("redirect_uri", self.redirect_uri);
        params.set("response_type", "code");
        params.set("scope", self.scope.clone());
        params.set("state", auth_state.to_owned());
        params.set("nonce", random_token());
        params.set("prompt", "consent");
        params.set("claims", json!({ "id_token": self.id_token }).to_string());
        params
    }
}

/// The `claims.id_token` of a body: `sub`, `mh:con_id`, and `mh:sync` and `mh:consent` from
/// `sync`, the consent dates and `permissions`.
fn id_token_claims(
    m: &Map<String, Value>,
    user_id: Option<&str>,
    connection_id: Option<&str>,
) -> Result<Map<String, Value>, ApiError> {
    let mut id_token = Map::new();
    id_token.insert(
        "sub".into(),
        match user_id {
            Some(u) => json!({"essential": true, "value": u}),
            None => json!({"essential": true}),
        },
    );
    id_token.insert(
        "mh:con_id".into(),
        match connection_id {
            Some(c) => json!({"essential": true, "value": c}),
            None => json!({"essential": true}),
        },
    );
    match m.get("sync") {
        None | Some(Value::Null) => {}
        Some(Value::Object(sync)) => {
            for k in sync.keys() {
                if k != "enableAsync" {
                    return Err(ApiError::bad_request(format!("\"sync.{k}\" is not allowed")));
                }
            }
            match sync.get("enableAsync") {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => {
                    id_token
                        .insert("mh:sync".into(), json!({"essential": true, "value": {"enableAsync": b}}));
                }
                Some(_) => return Err(ApiError::bad_request("\"sync.enableAsync\" must be a boolean")),
            }
        }
        Some(_) => return Err(ApiError::bad_request("\"sync\" must be an object")),
    }
    let mut consent = Map::new();
    for k in ["expirationDateTime", "transactionFromDateTime"] {
        if let Some(v) = opt_str(m, k)? {
            consent.insert(k.into(), json!(v));
        }
    }
    match m.get("permissions") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) => {
            consent.insert("permissions".into(), json!([p]));
        }
        Some(Value::Array(ps)) if ps.iter().all(Value::is_string) => {
            consent.insert("permissions".into(), json!(ps));
        }
        Some(_) => {
            return Err(ApiError::bad_request("\"permissions\" must be a string or an array of strings"))
        }
    }
    if !consent.is_empty() {
        id_token.insert("mh:consent".into(), json!({"essential": true, "value": consent}));
    }
    Ok(id_token)
}

/// Pushes `params` as the auth request `id`'s authorisation (valid [`AUTH_URL_TTL_SECS`])
/// and returns the URL that starts it.
fn push(oidc: &Oidc, client_id: &str, id: &str, params: Params, now: i64) -> Result<String, ApiError> {
    let request_uri = format!("{PAR_PREFIX}{}", random_token());
    let pushed = Pushed {
        client_id: client_id.to_owned(),
        params,
        expires_at: now + AUTH_URL_TTL_SECS,
        auth_request: Some(id.to_owned()),
    };
    if let Err(refused) = oidc.identity.sessions.lock().push(request_uri.clone(), pushed, now) {
        return Err(ApiError::custom(refused.status(), "PayloadTooLarge", refused.to_string()));
    }
    let mut auth_url = url::Url::parse(&format!("{}/auth", oidc.core.issuer()))
        .map_err(|_| ApiError::custom(StatusCode::INTERNAL_SERVER_ERROR, "InternalServer", "bad issuer"))?;
    auth_url.query_pairs_mut().append_pair("client_id", client_id).append_pair("request_uri", &request_uri);
    Ok(auth_url.to_string())
}

/// `GET /auth-requests`.
pub async fn list(
    State(requests): State<Arc<AuthRequestsRoom>>,
    RawQuery(q): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    grant.require_any(&["auth_requests:read"])?;
    client_token(&grant)?;
    let q = Query::parse(q.as_deref());
    let limit = q.int("limit", 0, 1000, 100)? as usize;
    let offset = q.int("offset", 0, 1_000_000_000, 0)? as usize;
    let all = requests.lock();
    let mine: Vec<&AuthRequestRecord> = all.order.iter().filter_map(|id| all.get(&grant.cid, id)).collect();
    let total = mine.len();
    let data: Vec<Value> =
        mine.into_iter().skip(offset).take(limit).map(AuthRequestRecord::to_json).collect();
    Ok(ok(json!({"data": data, "meta": {"total": total, "limit": limit, "offset": offset}})))
}

/// `GET /auth-requests/{id}`.
pub async fn get(
    State(requests): State<Arc<AuthRequestsRoom>>,
    Path(id): Path<String>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    grant.require_any(&["auth_requests:read"])?;
    client_token(&grant)?;
    let all = requests.lock();
    let r = all.get(&grant.cid, &id).ok_or_else(|| ApiError::not_found("Auth request not found"))?;
    Ok(ok(json!({ "data": r.to_json() })))
}

/// The `authParams` of a completion.
struct AuthParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

fn parse_auth_params(body: &[u8]) -> Result<AuthParams, ApiError> {
    let m = parse_object(body)?;
    for k in m.keys() {
        if k != "authParams" {
            return Err(ApiError::bad_request(format!("\"{k}\" is not allowed")));
        }
    }
    let Some(Value::Object(p)) = m.get("authParams") else {
        return Err(ApiError::bad_request("\"authParams\" is required and must be an object"));
    };
    for k in p.keys() {
        if !matches!(k.as_str(), "code" | "state" | "id_token" | "error" | "error_description" | "iss") {
            return Err(ApiError::bad_request(format!("\"authParams.{k}\" is not allowed")));
        }
    }
    let s = |k: &str| -> Result<Option<String>, ApiError> {
        match p.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) if !v.is_empty() => Ok(Some(v.clone())),
            Some(_) => Err(ApiError::bad_request(format!("\"authParams.{k}\" must be a non-empty string"))),
        }
    };
    // A front-channel id_token (`code id_token`) is accepted and not needed: the code decides.
    s("id_token")?;
    Ok(AuthParams {
        code: s("code")?,
        state: s("state")?,
        error: s("error")?,
        error_description: s("error_description")?,
        iss: s("iss")?,
    })
}

/// `PATCH /auth-requests/{id}`: completes the request with the callback's parameters.
pub async fn complete_request(
    State(oidc): State<Oidc>,
    State(requests): State<Arc<AuthRequestsRoom>>,
    Path(id): Path<String>,
    BearerGrant { grant, at: now_t }: BearerGrant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = now_t.timestamp();
    grant.require_any(&["auth_requests:write"])?;
    client_token(&grant)?;
    let params = parse_auth_params(&body)?;
    // Check and claim under the lock, so two concurrent completions cannot both run.
    let (user_id, flow) = {
        let mut all = requests.lock();
        let record = all.get(&grant.cid, &id).ok_or_else(|| ApiError::not_found("Auth request not found"))?;
        if record.status != Status::Pending {
            return Err(ApiError::bad_request(format!(
                "This auth request has already been completed (status {})",
                record.status.as_str()
            )));
        }
        let given = params
            .state
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("\"authParams.state\" is required"))?;
        if given != record.state {
            return Err(ApiError::bad_request(
                "\"authParams.state\" does not match the auth request's state",
            ));
        }
        if let Some(iss) = &params.iss {
            if *iss != oidc.core.issuer() {
                return Err(ApiError::bad_request("\"authParams.iss\" is not this issuer"));
            }
        }
        let record = all.by_id.get_mut(&id).ok_or_else(|| ApiError::not_found("Auth request not found"))?;
        if let Some(error) = &params.error {
            record.status = Status::Error;
            record.error = Some(error.clone());
            record.error_description = params.error_description.clone();
            record.completed_at = Some(now_t);
            return Ok(ok(json!({ "data": record.to_json() })));
        }
        let code = params
            .code
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("\"authParams\" needs a code (or an error)"))?;
        let mut identity = oidc.identity.sessions.lock();
        let entry = identity
            .code(code, now)
            .filter(|c| c.client_id == grant.cid && c.auth_request.as_deref() == Some(id.as_str()))
            .ok_or_else(|| {
                ApiError::bad_request("The code is invalid, expired or not this auth request's")
            })?;
        if entry.used {
            return Err(ApiError::bad_request("The code has already been used"));
        }
        let taken = (entry.user_id.clone(), entry.flow.clone());
        identity.use_code(code);
        record.status = Status::Completing;
        taken
    };
    let outcome = complete(&oidc, &user_id, &flow, now_t);
    let mut all = requests.lock();
    let record = all.by_id.get_mut(&id).ok_or_else(|| ApiError::not_found("Auth request not found"))?;
    record.completed_at = Some(now_t);
    match outcome {
        Ok(done) => {
            record.status = Status::Complete;
            record.user_id = Some(user_id);
            record.connection_id = Some(done.connection_id);
            record.sync_id = done.async_sync.map(|s| s.to_string());
        }
        Err(e) => {
            record.status = Status::Error;
            record.error = Some(e.error.to_string());
            record.error_description = Some(e.description);
        }
    }
    Ok(ok(json!({ "data": record.to_json() })))
}
