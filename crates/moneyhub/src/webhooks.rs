//! Webhook verification.
//!
//! Moneyhub delivers webhooks as signed Security Event Tokens (`application/jwt`) or as plain
//! JSON (`application/json`). Only the JWT form can be authenticated: it is verified through
//! Moneyhub's JWKS (signature, `iss`, `aud`, `iat`; `exp` and `nbf` when present, with
//! [`CLAIM_LEEWAY`] of clock skew allowed), and its single `events` entry is mapped
//! from its URN (`urn:com:moneyhub:events:sync-completed`) to the camelCase event type and
//! decoded into a typed [`WebhookEvent`] (unknown events keep their payload). The unsigned
//! JSON form is refused unless the receiver opted in with
//! [`WebhookVerifier::allow_unsigned_json`] (e.g. behind its own authentication).
//!
//! Events about a user's data (transaction events, `syncCompleted`, `deletedAccount` and the
//! other typed events that carry a connection or account) must name the user: a `sub` (JWT) or
//! `userId` (JSON) that is missing or `null` is refused as invalid. A `sub`/`userId` that is
//! neither a string nor `null`, or a string that is not a user id, is refused for every event;
//! other events may omit it.
//!
//! De-duplicate on [`VerifiedWebhook::id`] (the JWT `jti`, or the JSON `id`).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use moneyhub_types::{UserId, WebhookEnvelope, WebhookEvent, WebhookEventType, WebhookId};

use crate::error::{Error, ErrorKind, Result};
use crate::jose::{self, aud_contains, str_claim, time_claim};
use crate::Client;

/// A verified webhook.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VerifiedWebhook {
    /// The delivery id (`jti` / `id`): de-duplicate on it.
    pub id: WebhookId,
    /// The user concerned (`sub` / `userId`).
    pub user_id: Option<UserId>,
    /// The event type (camelCase).
    pub event_type: WebhookEventType,
    /// The event with its typed payload.
    pub event: WebhookEvent,
    /// When Moneyhub issued it (`iat`; JWT form only).
    pub issued_at: Option<DateTime<Utc>>,
    /// Whether it was a verified signed JWT (`false`: unsigned JSON, accepted by opt-in).
    pub signed: bool,
    /// The verified envelope `{id, eventType, userId, payload}` the typed event was decoded
    /// from (the same id, user and type as above, the payload as received): what a receiver
    /// that stores webhooks persists, so it never has to encode the typed event back.
    pub envelope: WebhookEnvelope,
}

/// Verifies webhook deliveries. Get one with [`Client::webhooks`].
///
/// ```no_run
/// # async fn demo(client: moneyhub::Client, body: &[u8], content_type: &str) -> moneyhub::Result<()> {
/// let webhook = client.webhooks().verify(body, content_type).await?;
/// println!("{} {:?}", webhook.id, webhook.event_type);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    client: Client,
    allow_unsigned_json: bool,
    iat_window: Duration,
}

/// Clock skew allowed when checking `exp` and `nbf` (60 s, as most JOSE libraries allow):
/// a webhook counts as expired only once `exp + 60 s` has passed, and as not yet valid only
/// while now is before `nbf - 60 s`. (`iat` has its own, wider window: see
/// [`WebhookVerifier::iat_window`].)
pub const CLAIM_LEEWAY: Duration = Duration::from_secs(60);

/// Whether events of this type concern one user's data, and so must name the user.
fn needs_user(event_type: &WebhookEventType) -> bool {
    matches!(
        event_type,
        WebhookEventType::NewTransactions
            | WebhookEventType::UpdatedTransactions
            | WebhookEventType::DeletedTransactions
            | WebhookEventType::RestoredTransactions
            | WebhookEventType::SyncCompleted
            | WebhookEventType::DeletedAccount
            | WebhookEventType::ReauthReminder
            | WebhookEventType::RefreshReminder
            | WebhookEventType::PostConnectionEnrichmentCompleted
    )
}

/// A NumericDate claim that, when present, must be a number.
fn optional_time(claims: &serde_json::Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>> {
    match claims.get(name) {
        None => Ok(None),
        Some(_) => {
            let secs = time_claim(claims, name)
                .ok_or_else(|| Error::webhook(format!("{name} is not a NumericDate")))?;
            Utc.timestamp_opt(secs, 0)
                .single()
                .map(Some)
                .ok_or_else(|| Error::webhook(format!("{name} is out of range")))
        }
    }
}

fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

impl WebhookVerifier {
    pub(crate) fn new(client: Client) -> Self {
        let iat_window = client.inner().config.webhook_iat_window;
        WebhookVerifier { client, allow_unsigned_json: false, iat_window }
    }

    /// Accept the unsigned JSON form too (default: refused). Anyone who can reach the
    /// endpoint can forge those: only opt in behind your own authentication.
    pub fn allow_unsigned_json(mut self, allow: bool) -> Self {
        self.allow_unsigned_json = allow;
        self
    }

    /// How far `iat` may be from now, either way (default ±10 minutes).
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = window;
        self
    }

    /// Verifies one delivery: its raw body and its `Content-Type` header.
    pub async fn verify(&self, body: &[u8], content_type: &str) -> Result<VerifiedWebhook> {
        match media_type(content_type).as_str() {
            "application/jwt" | "application/secevent+jwt" => self.verify_jwt(body).await,
            "application/json" if self.allow_unsigned_json => Self::read_json(body),
            "application/json" => Err(Error::webhook(
                "unsigned JSON webhooks are refused: configure JWT webhooks, or opt in with allow_unsigned_json(true)",
            )),
            other => Err(Error::webhook(format!(
                "unsupported content type {:?} (expected application/jwt)",
                other.chars().take(60).collect::<String>()
            ))),
        }
    }

    fn read_json(body: &[u8]) -> Result<VerifiedWebhook> {
        // `userId` must be a string when present (the envelope type would read `null` as
        // absent, and the check below refuses an absent one where a user is needed).
        if let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(body) {
            for key in ["userId", "userid", "user_id"] {
                if raw.get(key).is_some_and(|v| !v.is_string() && !v.is_null()) {
                    return Err(Error::webhook(format!("{key} is not a string")));
                }
            }
        }
        let envelope: WebhookEnvelope = moneyhub_types::decode(body).map_err(|e| {
            Error::new(ErrorKind::Webhook {
                message: "the JSON webhook is not a webhook envelope".into(),
                source: Some(e),
            })
        })?;
        Self::finish(envelope, None, false)
    }

    fn finish(
        envelope: WebhookEnvelope,
        issued_at: Option<DateTime<Utc>>,
        signed: bool,
    ) -> Result<VerifiedWebhook> {
        if envelope.user_id.is_none() && needs_user(&envelope.event_type) {
            return Err(Error::webhook(format!(
                "a {} event must name its user (a string sub / userId)",
                envelope.event_type.as_str()
            )));
        }
        let event = WebhookEvent::from_envelope(&envelope).map_err(|e| {
            Error::new(ErrorKind::Webhook { message: "the event payload is invalid".into(), source: Some(e) })
        })?;
        Ok(VerifiedWebhook {
            id: envelope.id.clone(),
            user_id: envelope.user_id.clone(),
            event_type: envelope.event_type.clone(),
            event,
            issued_at,
            signed,
            envelope,
        })
    }

    async fn verify_jwt(&self, body: &[u8]) -> Result<VerifiedWebhook> {
        let inner = self.client.inner();
        let token =
            std::str::from_utf8(body).map_err(|_| Error::webhook("the JWT body is not UTF-8"))?.trim();
        let header = jose::header(token).map_err(Error::webhook)?;
        let keys = inner.jwks_for(&header).await?;
        let claims = jose::verify(token, &header, &keys).map_err(Error::webhook)?;

        let meta = inner.metadata().await?;
        let iss = str_claim(&claims, "iss").ok_or_else(|| Error::webhook("no iss claim"))?;
        let configured = inner.config.identity_url.as_str().trim_end_matches('/');
        let accepted = [meta.identity_base(), meta.issuer.as_str(), configured];
        if !accepted.contains(&iss.trim_end_matches('/')) {
            return Err(Error::webhook(format!("iss {iss:?} is not Moneyhub's identity service")));
        }
        if !aud_contains(&claims, &inner.config.client_id) {
            return Err(Error::webhook("aud is not this client's id"));
        }
        let iat = time_claim(&claims, "iat").ok_or_else(|| Error::webhook("no numeric iat claim"))?;
        let now = inner.config.clock.now();
        let issued_at =
            Utc.timestamp_opt(iat, 0).single().ok_or_else(|| Error::webhook("iat is out of range"))?;
        let window = chrono::Duration::from_std(self.iat_window).unwrap_or(chrono::Duration::MAX);
        if (now - issued_at).abs() > window {
            return Err(Error::webhook(format!(
                "iat {} is more than {} s from now",
                moneyhub_types::time::format_timestamp(&issued_at),
                self.iat_window.as_secs()
            )));
        }
        let leeway = chrono::Duration::from_std(CLAIM_LEEWAY).unwrap_or(chrono::Duration::zero());
        if let Some(exp) = optional_time(&claims, "exp")? {
            if now > exp + leeway {
                return Err(Error::webhook(format!(
                    "the webhook expired at {} (exp)",
                    moneyhub_types::time::format_timestamp(&exp)
                )));
            }
        }
        if let Some(nbf) = optional_time(&claims, "nbf")? {
            if now < nbf - leeway {
                return Err(Error::webhook(format!(
                    "the webhook is not valid before {} (nbf)",
                    moneyhub_types::time::format_timestamp(&nbf)
                )));
            }
        }
        let envelope = envelope_of_claims(&claims)?;
        Self::finish(envelope, Some(issued_at), true)
    }
}

/// Reads the envelope of a delivery that [`WebhookVerifier::verify`] accepted earlier, from
/// its raw body and whether it was a signed JWT ([`VerifiedWebhook::signed`]), without
/// verifying anything again (signature, `iss`, `aud`, times): for a receiver that stores the
/// raw body it verified and applies the event later, when the JWKS may have rotated or `iat`
/// left its window. The envelope is the one `verify` returned for that body.
///
/// It authenticates nothing: call it only on bodies `verify` accepted.
pub fn read_verified(body: &[u8], signed: bool) -> Result<WebhookEnvelope> {
    if !signed {
        return moneyhub_types::decode(body).map_err(|e| {
            Error::new(ErrorKind::Webhook {
                message: "the JSON webhook is not a webhook envelope".into(),
                source: Some(e),
            })
        });
    }
    let token = std::str::from_utf8(body).map_err(|_| Error::webhook("the JWT body is not UTF-8"))?.trim();
    let claims = jose::unverified_claims(token).map_err(Error::webhook)?;
    envelope_of_claims(&claims)
}

/// The envelope a SET's claims carry: `jti`, `sub` and its single `events` entry.
fn envelope_of_claims(claims: &serde_json::Map<String, Value>) -> Result<WebhookEnvelope> {
    let jti = str_claim(claims, "jti").ok_or_else(|| Error::webhook("no jti claim"))?;
    let id: WebhookId = jti.parse().map_err(|_| Error::webhook("jti is not a UUID"))?;
    let user_id = match claims.get("sub") {
        None => None,
        Some(Value::String(s)) => {
            Some(s.parse::<UserId>().map_err(|_| Error::webhook("sub is not a user id"))?)
        }
        Some(Value::Null) => None,
        Some(_) => return Err(Error::webhook("sub is not a string")),
    };
    let events = match claims.get("events") {
        Some(Value::Object(events)) => events,
        _ => return Err(Error::webhook("no events object")),
    };
    if events.len() != 1 {
        return Err(Error::webhook(format!("expected exactly one event, got {}", events.len())));
    }
    let Some((urn, payload)) = events.iter().next() else {
        return Err(Error::webhook("no event"));
    };
    WebhookEnvelope::from_set_event(id, user_id, urn, payload.clone()).map_err(|e| {
        Error::new(ErrorKind::Webhook { message: "the event URN is not Moneyhub's".into(), source: Some(e) })
    })
}
