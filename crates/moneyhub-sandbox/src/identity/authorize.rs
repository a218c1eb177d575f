//! `GET /oidc/auth` (and `POST`, form-encoded): the authorisation endpoint.
//!
//! By default the sandbox shows no pages: once a request is valid, the user is taken to have
//! logged in to the bank and consented, and the browser goes straight back to the client
//! (302) with a code (and/or an id_token). With interactive consent
//! ([`crate::config::ConsentMode::Interactive`]) a valid request goes to the consent pages
//! instead (`super::consent`), which end in the same response. Parameters come from a pushed request
//! (`request_uri`, whose values win over everything in the query), a request object
//! (`request`, whose values win over plain ones) or plain query parameters.
//!
//! Test hook: a non-standard `sandbox_accounts` parameter (comma-separated account ids, in the
//! query or the pushed parameters) means the user re-selected only those accounts during a
//! `reauth`, which moves them to a new connection id.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use super::authz::{trusted_target, validate, AuthRequest, Rejection, ResponseMode, ResponseType, Target};
use super::flow::complete;
use super::id_token::IdToken;
use super::par::{LEGACY_PREFIX, PAR_PREFIX};
use super::params::{random_token, random_uuid, Params};
use super::request_object;
use super::session::Code;
use super::Oidc;
use crate::error::OAuthError;
use crate::http::OAuthBody;
use crate::store::model::ManagedBy;

/// How long authorisation codes live (virtual seconds).
pub const CODE_TTL_SECS: i64 = 600;

/// `GET /oidc/auth`. With consent pages on, a browser gets an HTML page for an error that
/// has nowhere to be redirected (`super::consent::for_browser`).
pub async fn authorize_get(State(state): State<Oidc>, headers: HeaderMap, uri: Uri) -> Response {
    let res = match Params::parse(uri.query().unwrap_or("").as_bytes()) {
        Ok(p) => authorize(&state, p),
        Err(e) => Rejection::direct(e).into_response_for(&state),
    };
    super::consent::for_browser(&state, &headers, res).await
}

/// `POST /oidc/auth` (form-encoded parameters, OIDC Core §3.1.2.1).
pub async fn authorize_post(
    State(state): State<Oidc>,
    headers: HeaderMap,
    OAuthBody(body): OAuthBody,
) -> Response {
    match Params::from_form(&headers, &body) {
        Ok(p) => authorize(&state, p),
        Err(e) => Rejection::direct(e).into_response_for(&state),
    }
}

impl Rejection {
    /// A redirect to the client with the error, or a 400 JSON error when the client or its
    /// redirect URI cannot be trusted.
    pub(super) fn into_response_for(self, state: &Oidc) -> Response {
        match self.target {
            Some(t) => {
                let mut pairs = vec![
                    ("error", self.error.error.to_string()),
                    ("error_description", self.error.description),
                ];
                if let Some(s) = &t.state {
                    pairs.push(("state", s.clone()));
                }
                pairs.push(("iss", state.core.issuer()));
                respond(&t, &pairs)
            }
            None => OAuthError { status: StatusCode::BAD_REQUEST, ..self.error }.into_response(),
        }
    }
}

/// The form_post page's only script: submit the form at once.
const FORM_POST_SCRIPT: &str = "document.forms[0].submit()";

/// The CSP hash of [`FORM_POST_SCRIPT`].
fn form_post_script_hash() -> String {
    use base64::Engine as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, FORM_POST_SCRIPT.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The authorisation response (RFC 6749 §4.1.2, OAuth 2.0 Multiple Response Types, Form Post
/// Response Mode).
pub(super) fn respond(target: &Target, pairs: &[(&str, String)]) -> Response {
    if target.mode == ResponseMode::FormPost {
        let esc = |s: &str| {
            s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
        };
        let inputs: String = pairs
            .iter()
            .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\"/>", esc(k), esc(v)))
            .collect();
        let html = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Submitting...</title></head>\
             <body><form method=\"post\" action=\"{}\">{inputs}\
             <noscript><button type=\"submit\">Continue</button></noscript></form>\
             <script>{FORM_POST_SCRIPT}</script></body></html>",
            esc(&target.redirect_uri)
        );
        let mut res = Html(html).into_response();
        let h = res.headers_mut();
        // The page carries the code: the same protections as every other page (no framing,
        // nothing loaded), its one script allowed by hash, the form only to the client.
        let form_action =
            crate::http::html::origin_of(&target.redirect_uri).unwrap_or_else(|| "'none'".into());
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{}'; form-action {form_action}; \
             frame-ancestors 'none'; base-uri 'none'",
            form_post_script_hash()
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    }
    let Ok(mut url) = url::Url::parse(&target.redirect_uri) else {
        // Unreachable in practice: redirect URIs are checked to parse before they are trusted.
        return OAuthError::invalid_request("redirect_uri is not a valid URL").into_response();
    };
    match target.mode {
        ResponseMode::Fragment => {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                ser.append_pair(k, v);
            }
            url.set_fragment(Some(&ser.finish()));
        }
        _ => {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
    }
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Resolves `request_uri` / `request` into the effective parameters, and the auth request
/// (`POST /auth-requests`) a pushed request was made for, if any.
fn effective_params(state: &Oidc, query: Params, now: i64) -> Result<(Params, Option<String>), Rejection> {
    if let Some(uri) = query.get("request_uri") {
        let known_prefix = uri.starts_with(PAR_PREFIX) || uri.starts_with(LEGACY_PREFIX);
        let pushed = if known_prefix { state.identity.sessions.lock().take_pushed(uri, now) } else { None };
        let Some(pushed) = pushed else {
            return Err(Rejection {
                error: OAuthError::new(
                    "invalid_request_uri",
                    "request_uri is invalid, expired or already used",
                ),
                target: trusted_target(state, &query),
            });
        };
        if query.get("client_id").is_some_and(|c| c != pushed.client_id) {
            return Err(Rejection::direct(OAuthError::invalid_request(
                "client_id does not match the client of the request_uri",
            )));
        }
        let mut params = pushed.params;
        if !params.has("sandbox_accounts") {
            if let Some(a) = query.get("sandbox_accounts") {
                params.set("sandbox_accounts", a);
            }
        }
        return Ok((params, pushed.auth_request));
    }
    let mut params = query;
    if let Some(jwt) = params.remove("request") {
        let client_id = match params.get("client_id") {
            Some(c) => c.to_string(),
            None => request_object::claimed_client(&jwt).ok_or_else(|| {
                Rejection::direct(OAuthError::invalid_request("missing required parameter 'client_id'"))
            })?,
        };
        let client = state
            .core
            .client(&client_id)
            .ok_or_else(|| Rejection::direct(OAuthError::new("invalid_client", "unknown client_id")))?;
        let obj = request_object::decode(state, client, &jwt, now)
            .map_err(|error| Rejection { error, target: trusted_target(state, &params) })?;
        params.overlay(&obj);
    }
    Ok((params, None))
}

fn authorize(state: &Oidc, query: Params) -> Response {
    let now_t = state.core.clock.now();
    let now = now_t.timestamp();
    let (params, auth_request) = match effective_params(state, query, now) {
        Ok(p) => p,
        Err(rej) => return rej.into_response_for(state),
    };
    let req = match validate(state, &params, now_t) {
        Ok(r) => r,
        Err(rej) => return rej.into_response_for(state),
    };
    if super::consent::interactive(state) {
        return super::consent::begin(state, req, auth_request, &params, now_t);
    }
    match grant(state, &req, auth_request, now_t) {
        Ok(pairs) => respond(&req.target, &pairs),
        Err(error) => Rejection { error, target: Some(req.target.clone()) }.into_response_for(state),
    }
}

/// Consents (at once, or when the consent pages approve): issues the code and/or id_token of the response.
///
/// One-time access (no `sub` value): the user who consents becomes a new user of the client,
/// managed by the user (`managedBy: "user"`), made here, at consent, as Moneyhub does.
pub(super) fn grant(
    state: &Oidc,
    req: &AuthRequest,
    auth_request: Option<String>,
    now_t: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let now = now_t.timestamp();
    let user_id = match &req.user_id {
        Some(u) => u.clone(),
        None => state
            .data
            .store
            .write()
            .create_user_managed(&req.client_id, None, ManagedBy::User, now_t)
            .user_id
            .clone(),
    };
    let sid = random_uuid().to_string();
    let auth_time = req.max_age.map(|_| now);
    let mut pairs = Vec::new();
    let code = req.response_type.has_code().then(random_token);
    if let Some(code) = &code {
        let entry = Code {
            client_id: req.client_id.clone(),
            redirect_uri: req.target.redirect_uri.clone(),
            user_id: user_id.clone(),
            flow: req.flow.clone(),
            scope: req.scope.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            sid: sid.clone(),
            auth_time,
            expires_at: now + CODE_TTL_SECS,
            used: false,
            auth_request,
        };
        state.identity.sessions.lock().add_code(code.clone(), entry, now);
        pairs.push(("code", code.clone()));
    }
    if req.response_type.has_id_token() {
        // With a code, the connection is only made at the exchange: the front-channel
        // id_token proves the code (c_hash) and carries no mh:con_id. Without one
        // (response_type=id_token), consent completes the flow right here.
        let done = if req.response_type == ResponseType::IdToken {
            Some(complete(state, &user_id, &req.flow, now_t)?)
        } else {
            None
        };
        let id_token = IdToken {
            client_id: &req.client_id,
            user_id: &user_id,
            nonce: req.nonce.as_deref(),
            sid: &sid,
            auth_time,
            connection_id: done.as_ref().map(|d| d.connection_id.as_str()),
            sync_id: done.as_ref().and_then(|d| d.async_sync),
            access_token: None,
            code: code.as_deref(),
        }
        .sign(state, now)?;
        pairs.push(("id_token", id_token));
    }
    if let Some(s) = &req.target.state {
        pairs.push(("state", s.clone()));
    }
    pairs.push(("iss", state.core.issuer()));
    Ok(pairs)
}
