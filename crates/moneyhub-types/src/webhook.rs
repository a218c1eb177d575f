//! Webhooks: the JSON envelope, typed events and the Security Event Token (JWT) URN mapping.
//!
//! JSON webhooks arrive as a [`WebhookEnvelope`]; [`WebhookEvent::from_envelope`] turns it into
//! a typed event. JWT webhooks carry the same payload under
//! `events: {"urn:com:moneyhub:events:<kebab-case-event>": payload}`:
//! [`WebhookEnvelope::from_set_event`] maps that back to an envelope (after the caller has
//! verified the token), and [`urn_for_event_type`] / [`event_type_from_urn`] convert names.
//!
//! Reading is tolerant of the documented spelling variants: `userId`/`userid`,
//! `syncCompleted`/`syncComplete`, `postConnectionEnrichmentCompleted`/`…Complete`,
//! `timeUntilReauthorizationInDays`/`timeUntilReauthorization`. Writing uses the first spelling.
//!
//! ```
//! use moneyhub_types::{decode, WebhookEnvelope, WebhookEvent};
//! let envelope: WebhookEnvelope = decode(br#"{
//!     "id": "abe168ce-1b2f-4c38-9c92-db5730485cb3", "eventType": "deletedAccount",
//!     "userid": "5c79210bbac25ecb5e71ac40",
//!     "payload": {"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}}"#)?;
//! match WebhookEvent::from_envelope(&envelope)? {
//!     WebhookEvent::DeletedAccount(p) => {
//!         assert_eq!(p.account_id, "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13")
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), moneyhub_types::Error>(())
//! ```

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{AccountId, ConnectionId, Error, SyncId, TransactionId, UserId, WebhookId};

/// Prefix of Moneyhub's Security Event Token event URNs.
pub const EVENT_URN_PREFIX: &str = "urn:com:moneyhub:events:";

open_enum! {
    /// A webhook's `eventType`.
    ///
    /// The alias spellings decode to the same variant and are written back in the primary
    /// spelling; [`WebhookEvent::from_envelope`] gives typed payloads for the in-scope events.
    pub enum WebhookEventType {
        /// New transactions were stored for an account.
        NewTransactions => "newTransactions",
        /// Existing transactions changed.
        UpdatedTransactions => "updatedTransactions",
        /// Transactions were removed.
        DeletedTransactions => "deletedTransactions",
        /// Previously deleted transactions came back.
        RestoredTransactions => "restoredTransactions",
        /// A connection sync finished (v2.5 docs spell it `syncComplete`).
        SyncCompleted => "syncCompleted" | "syncComplete",
        /// The provider dropped an account.
        DeletedAccount => "deletedAccount",
        /// Open-banking consent expires soon.
        ReauthReminder => "reauthReminder",
        /// A legacy connection has not synced for 2 days.
        RefreshReminder => "refreshReminder",
        /// Post-connection enrichment finished (event id not published; both spellings read).
        PostConnectionEnrichmentCompleted =>
            "postConnectionEnrichmentCompleted" | "postConnectionEnrichmentComplete",
        /// New regular transactions detected (no typed payload).
        NewRegularTransactions => "newRegularTransactions",
        /// Regular transactions updated (no typed payload).
        UpdatedRegularTransactions => "updatedRegularTransactions",
        /// A user added their first connection (no typed payload).
        AddFirstConnection => "addFirstConnection",
        /// A balance crossed a threshold (no typed payload).
        BalanceThreshold => "balanceThreshold",
        /// A payment completed (no typed payload).
        PaymentCompleted => "paymentCompleted",
        /// A payment is pending (no typed payload).
        PaymentPending => "paymentPending",
        /// A payment failed (no typed payload).
        PaymentError => "paymentError",
        /// An affordability report succeeded (no typed payload).
        AffordabilityReportSuccess => "affordabilityReportSuccess",
        /// An affordability report failed (no typed payload).
        AffordabilityReportFailure => "affordabilityReportFailure",
    }
}

impl WebhookEventType {
    /// The Security Event Token URN of this event type (see [`urn_for_event_type`]).
    pub fn urn(&self) -> String {
        urn_for_event_type(self.as_str())
    }
}

open_enum! {
    /// Outcome reported by `syncCompleted` (`processingStatus`).
    pub enum ProcessingStatus {
        /// The sync succeeded.
        Success => "success",
        /// The sync failed.
        Error => "error",
    }
}

/// A JSON-format webhook: `{"id", "eventType", "userId", "payload"}`.
///
/// `userid` (as in the docs' table) is read as `userId`; `userId` is written. `user_id` is
/// optional so that events not tied to a user still decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEnvelope {
    /// Delivery id (the JWT `jti`); receivers dedupe on it.
    pub id: WebhookId,
    /// Event type.
    pub event_type: WebhookEventType,
    /// The user concerned.
    #[serde(rename = "userId", alias = "userid", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// Event payload, raw.
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl WebhookEnvelope {
    /// Builds an envelope from one entry of a verified Security Event Token's `events` claim:
    /// `id` is the token's `jti`, `user_id` its `sub`, and the event type comes from `urn`.
    pub fn from_set_event(
        id: WebhookId,
        user_id: Option<UserId>,
        urn: &str,
        payload: serde_json::Value,
    ) -> Result<Self, Error> {
        Ok(Self { id, event_type: WebhookEventType::from(event_type_from_urn(urn)?), user_id, payload })
    }

    /// The URN under which this event goes in a Security Event Token's `events` claim.
    pub fn set_event_urn(&self) -> String {
        self.event_type.urn()
    }
}

/// A webhook event with its typed payload.
///
/// Deliberately exhaustive (no `#[non_exhaustive]`, unlike the other public enums): inside the
/// workspace the mirror's one `match` over it is how the compiler points at what to change
/// when an event type is added. Events this crate does not type yet arrive as
/// [`WebhookEvent::Unknown`]; a new variant is a breaking release of this crate.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// `newTransactions`.
    NewTransactions(TransactionsPayload),
    /// `updatedTransactions`.
    UpdatedTransactions(TransactionsPayload),
    /// `deletedTransactions`.
    DeletedTransactions(TransactionsPayload),
    /// `restoredTransactions`.
    RestoredTransactions(TransactionsPayload),
    /// `syncCompleted` (also read from `syncComplete`).
    SyncCompleted(SyncCompletedPayload),
    /// `deletedAccount`.
    DeletedAccount(DeletedAccountPayload),
    /// `reauthReminder`.
    ReauthReminder(ReauthReminderPayload),
    /// `refreshReminder`.
    RefreshReminder(RefreshReminderPayload),
    /// `postConnectionEnrichmentCompleted` (also read from `postConnectionEnrichmentComplete`).
    PostConnectionEnrichmentCompleted(PostConnectionEnrichmentPayload),
    /// Any event without a typed variant (unknown to this crate, or out of scope such as
    /// `paymentCompleted`), payload kept verbatim.
    Unknown {
        /// The event type as received.
        event_type: String,
        /// The payload, raw.
        payload: serde_json::Value,
    },
}

fn typed<T: DeserializeOwned>(envelope: &WebhookEnvelope) -> Result<T, Error> {
    serde_path_to_error::deserialize(&envelope.payload).map_err(|err| {
        let inner = err.path().to_string();
        let path = match inner.as_str() {
            "." => "payload".to_owned(),
            p if p.starts_with('[') => format!("payload{p}"),
            p => format!("payload.{p}"),
        };
        Error::WebhookPayload {
            event_type: envelope.event_type.as_str().to_owned(),
            path,
            source: err.into_inner(),
        }
    })
}

impl WebhookEvent {
    /// Interprets an envelope. A known event whose payload lacks the documented shape is an
    /// [`Error::WebhookPayload`] naming the failing field; events without a typed variant become
    /// [`WebhookEvent::Unknown`].
    pub fn from_envelope(envelope: &WebhookEnvelope) -> Result<Self, Error> {
        use WebhookEventType as T;
        Ok(match &envelope.event_type {
            T::NewTransactions => Self::NewTransactions(typed(envelope)?),
            T::UpdatedTransactions => Self::UpdatedTransactions(typed(envelope)?),
            T::DeletedTransactions => Self::DeletedTransactions(typed(envelope)?),
            T::RestoredTransactions => Self::RestoredTransactions(typed(envelope)?),
            T::SyncCompleted => Self::SyncCompleted(typed(envelope)?),
            T::DeletedAccount => Self::DeletedAccount(typed(envelope)?),
            T::ReauthReminder => Self::ReauthReminder(typed(envelope)?),
            T::RefreshReminder => Self::RefreshReminder(typed(envelope)?),
            T::PostConnectionEnrichmentCompleted => Self::PostConnectionEnrichmentCompleted(typed(envelope)?),
            other => {
                Self::Unknown { event_type: other.as_str().to_owned(), payload: envelope.payload.clone() }
            }
        })
    }

    /// The event type (primary spelling for typed events).
    pub fn event_type(&self) -> WebhookEventType {
        match self {
            Self::NewTransactions(_) => WebhookEventType::NewTransactions,
            Self::UpdatedTransactions(_) => WebhookEventType::UpdatedTransactions,
            Self::DeletedTransactions(_) => WebhookEventType::DeletedTransactions,
            Self::RestoredTransactions(_) => WebhookEventType::RestoredTransactions,
            Self::SyncCompleted(_) => WebhookEventType::SyncCompleted,
            Self::DeletedAccount(_) => WebhookEventType::DeletedAccount,
            Self::ReauthReminder(_) => WebhookEventType::ReauthReminder,
            Self::RefreshReminder(_) => WebhookEventType::RefreshReminder,
            Self::PostConnectionEnrichmentCompleted(_) => WebhookEventType::PostConnectionEnrichmentCompleted,
            Self::Unknown { event_type, .. } => WebhookEventType::from(event_type.as_str()),
        }
    }

    /// The payload as JSON.
    pub fn payload(&self) -> Result<serde_json::Value, Error> {
        let encoded = match self {
            Self::NewTransactions(p)
            | Self::UpdatedTransactions(p)
            | Self::DeletedTransactions(p)
            | Self::RestoredTransactions(p) => serde_json::to_value(p),
            Self::SyncCompleted(p) => serde_json::to_value(p),
            Self::DeletedAccount(p) => serde_json::to_value(p),
            Self::ReauthReminder(p) => serde_json::to_value(p),
            Self::RefreshReminder(p) => serde_json::to_value(p),
            Self::PostConnectionEnrichmentCompleted(p) => serde_json::to_value(p),
            Self::Unknown { payload, .. } => Ok(payload.clone()),
        };
        encoded.map_err(|source| Error::Encode { source })
    }

    /// Wraps the event in a JSON envelope.
    pub fn to_envelope(&self, id: WebhookId, user_id: Option<UserId>) -> Result<WebhookEnvelope, Error> {
        Ok(WebhookEnvelope { id, event_type: self.event_type(), user_id, payload: self.payload()? })
    }
}

/// Payload of the four transaction events: `{"accounts": [{"id", "transactions": [ids]}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TransactionsPayload {
    /// Affected transactions, per account.
    pub accounts: Vec<AccountTransactions>,
}

/// One account's entry in a [`TransactionsPayload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccountTransactions {
    /// The account.
    pub id: AccountId,
    /// The affected transactions (at most 6000 per event).
    pub transactions: Vec<TransactionId>,
}

/// Payload of `syncCompleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncCompletedPayload {
    /// When the sync finished.
    #[serde(with = "crate::time::timestamp")]
    pub completed_at: DateTime<Utc>,
    /// Outcome.
    pub processing_status: ProcessingStatus,
    /// The sync.
    pub sync_id: SyncId,
    /// The synced connection.
    pub connection_id: ConnectionId,
}

/// Payload of `deletedAccount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeletedAccountPayload {
    /// The removed account.
    pub account_id: AccountId,
}

/// Payload of `reauthReminder`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ReauthReminderPayload {
    /// The connection whose consent expires.
    pub connection_id: ConnectionId,
    /// Provider name.
    pub bank_name: String,
    /// Days until the consent expires (also read from `timeUntilReauthorization`).
    #[serde(
        rename = "timeUntilReauthorizationInDays",
        alias = "timeUntilReauthorization",
        with = "crate::num::compact_f64"
    )]
    pub time_until_reauthorization_in_days: f64,
    /// Whether the client may renew consent itself (reconsent) instead of a full reauth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpp_consent: Option<bool>,
}

/// Payload of `refreshReminder`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RefreshReminderPayload {
    /// The legacy connection that needs a refresh.
    pub connection_id: ConnectionId,
    /// Provider name.
    pub bank_name: String,
    /// Days since the last successful update.
    #[serde(with = "crate::num::compact_f64")]
    pub period_since_last_update_in_days: f64,
}

/// Payload of `postConnectionEnrichmentCompleted`: kept as a map, with `connectionId` typed when
/// present. (The sandbox sends `{"connectionId", "accounts": [{"accountId",
/// "postConnectionEnrichmentStatus", "postConnectionEnrichedAt"}]}`; the real shape is not
/// published.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PostConnectionEnrichmentPayload {
    /// The enriched connection, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    /// Every other key of the payload, verbatim.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// Maps a Security Event Token event URN to a camelCase event type:
/// `urn:com:moneyhub:events:sync-completed` → `syncCompleted`. Works for any event name, known
/// or not.
///
/// ```
/// use moneyhub_types::{event_type_from_urn, urn_for_event_type};
/// assert_eq!(event_type_from_urn("urn:com:moneyhub:events:sync-completed")?, "syncCompleted");
/// assert_eq!(urn_for_event_type("syncCompleted"), "urn:com:moneyhub:events:sync-completed");
/// assert!(event_type_from_urn("urn:example:sync-completed").is_err());
/// # Ok::<(), moneyhub_types::Error>(())
/// ```
///
/// The suffix must be non-empty kebab-case: lowercase ASCII letters and digits in `-`-separated
/// non-empty words.
pub fn event_type_from_urn(urn: &str) -> Result<String, Error> {
    let invalid = || Error::InvalidEventUrn { urn: urn.to_owned() };
    let suffix = urn.strip_prefix(EVENT_URN_PREFIX).ok_or_else(invalid)?;
    let mut out = String::with_capacity(suffix.len());
    for (i, word) in suffix.split('-').enumerate() {
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(invalid());
        }
        let mut chars = word.chars();
        match chars.next() {
            Some(first) if i > 0 => {
                out.push(first.to_ascii_uppercase());
                out.push_str(chars.as_str());
            }
            _ => out.push_str(word),
        }
    }
    Ok(out)
}

/// Maps a camelCase event type to its Security Event Token URN:
/// `syncCompleted` → `urn:com:moneyhub:events:sync-completed` (each uppercase letter starts a new
/// lowercase kebab word). Works for any event name, known or not.
pub fn urn_for_event_type(event_type: &str) -> String {
    let mut out = String::with_capacity(EVENT_URN_PREFIX.len() + event_type.len() + 4);
    out.push_str(EVENT_URN_PREFIX);
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
