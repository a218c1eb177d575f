//! Webhook verification.
//!
//! Moneyhub delivers webhooks as signed Security Event Tokens (`application/jwt`) or as plain
//! JSON (`application/json`). Only the JWT form can be authenticated: it is verified through
//! Moneyhub's JWKS (signature, `iss`, `aud`, `iat`), and its single `events` entry is mapped
//! from its URN (`urn:com:moneyhub:events:sync-completed`) to the camelCase event type and
//! decoded into a typed [`WebhookEvent`] (unknown events keep their payload). The unsigned
//! JSON form is refused unless the receiver opted in with
//! [`WebhookVerifier::allow_unsigned_json`] (e.g. behind its own authentication).
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
        let event = WebhookEvent::from_envelope(&envelope).map_err(|e| {
            Error::new(ErrorKind::Webhook { message: "the event payload is invalid".into(), source: Some(e) })
        })?;
        Ok(VerifiedWebhook {
            id: envelope.id,
            user_id: envelope.user_id,
            event_type: envelope.event_type,
            event,
            issued_at,
            signed,
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
        let jti = str_claim(&claims, "jti").ok_or_else(|| Error::webhook("no jti claim"))?;
        let id: WebhookId = jti.parse().map_err(|_| Error::webhook("jti is not a UUID"))?;
        let user_id = match str_claim(&claims, "sub") {
            None => None,
            Some(s) => Some(s.parse::<UserId>().map_err(|_| Error::webhook("sub is not a user id"))?),
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
        let envelope = WebhookEnvelope::from_set_event(id, user_id, urn, payload.clone()).map_err(|e| {
            Error::new(ErrorKind::Webhook {
                message: "the event URN is not Moneyhub's".into(),
                source: Some(e),
            })
        })?;
        Self::finish(envelope, Some(issued_at), true)
    }
}
