//! The requests and answers of the control API, typed: one set of `Serialize + Deserialize`
//! types, which the control handlers (`crate::control`) take and answer and [`Control`]
//! (`super::Control`) sends and reads, so the two sides cannot drift apart.
//!
//! Times in these answers are written as chrono writes a `DateTime<Utc>` (RFC 3339, `Z`,
//! fractional seconds only when there are any), except the delivery log's, which the webhook
//! worker records with milliseconds (`2025-01-15T10:00:00.000Z`); both read as the same
//! [`DateTime`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::lifecycle::RunReport;
pub use crate::request_log::LogEntry;
pub use crate::scenario::{ConnectionState, LoadedConnection, LoadedScenario, LoadedUser, StateRequest};

/// The virtual clock (`GET /__sandbox/clock`, and the answer of freeze, resume and reset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReading {
    /// The sandbox's time.
    pub now: DateTime<Utc>,
    /// Whether it stands still.
    pub frozen: bool,
}

/// How far to move the clock (`POST /__sandbox/clock/advance`): a duration or an instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    /// Days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    /// Hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<i64>,
    /// Minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    /// An instant to move to instead of a duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

impl Advance {
    /// `n` days.
    pub fn days(n: i64) -> Advance {
        Advance { days: Some(n), ..Default::default() }
    }
    /// `n` hours.
    pub fn hours(n: i64) -> Advance {
        Advance { hours: Some(n), ..Default::default() }
    }
    /// `n` seconds.
    pub fn seconds(n: i64) -> Advance {
        Advance { seconds: Some(n), ..Default::default() }
    }
    /// To the instant `at`.
    pub fn to(at: DateTime<Utc>) -> Advance {
        Advance { to: Some(at), ..Default::default() }
    }
}

/// The answer of `POST /__sandbox/clock/advance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advanced {
    /// The new time.
    pub now: DateTime<Utc>,
    /// What ran on the way.
    pub ran: RunReport,
}

/// A user made by `POST /__sandbox/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    /// The user id.
    pub user_id: String,
    /// Its connections, one per bank asked for.
    pub connection_ids: Vec<String>,
}

/// A connection made by `POST /__sandbox/connections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedConnection {
    /// The connection id.
    pub connection_id: String,
    /// The first sync's id.
    pub sync_id: String,
}

/// The body of `POST /__sandbox/connections`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewConnection {
    /// The user.
    pub user_id: String,
    /// The bank id.
    pub bank_id: String,
    /// The consent's end, when not the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Finish the first sync in the background, shortly after.
    #[serde(default)]
    pub enable_async: bool,
}

/// A sync outcome a connection can be scripted with. Written in kebab-case; read also with
/// underscores and the aliases the sandbox has always accepted (`ok`, `sync-error`,
/// `outage`, `sync-partial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Everything fetched.
    Success,
    /// The provider failed.
    Error,
    /// Some data failed to arrive.
    Partial,
    /// The provider wants MFA.
    MfaRequired,
    /// The stored credentials were refused.
    CredentialsError,
}

impl std::str::FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.replace('_', "-").as_str() {
            "success" | "ok" => Outcome::Success,
            "error" | "sync-error" | "outage" => Outcome::Error,
            "partial" | "sync-partial" => Outcome::Partial,
            "mfa-required" => Outcome::MfaRequired,
            "credentials-error" => Outcome::CredentialsError,
            _ => {
                return Err(format!(
                "unknown outcome {s:?}: expected success, error, partial, mfa-required or credentials-error"
            ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The body of `PUT /__sandbox/connections/{id}/script`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The outcomes of the next fetches, in order.
    pub outcomes: Vec<Outcome>,
    /// Every later fetch (default: success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thereafter: Option<Outcome>,
    /// Add to the script instead of replacing it.
    #[serde(default)]
    pub append: bool,
}

/// The body of `POST /__sandbox/users`: `count` users (1 to 100,000) of a client (default:
/// the first registered one), each connected to every bank of `banks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewUsers {
    /// How many users.
    pub count: usize,
    /// Their client (default: the first registered one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The banks each is connected to.
    #[serde(default)]
    pub banks: Vec<String>,
}

/// How `/oidc/auth` obtains consent (`GET`/`PUT /__sandbox/consent`): `instant` or
/// `interactive` (see [`ConsentMode`](crate::ConsentMode)). Both the body of the `PUT` and
/// the answer of both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentSetting {
    /// `instant` or `interactive`.
    pub mode: String,
}

impl Script {
    /// Every fetch from the next one ends with `outcome`.
    pub fn always(outcome: Outcome) -> Script {
        Script { outcomes: Vec::new(), thereafter: Some(outcome), append: false }
    }
}

/// The body of `PATCH /__sandbox/connections/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tweak {
    /// The provider allows one fetch only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_sync_only: Option<bool>,
    /// A reauth gives the connection a new id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_new_id_on_reauth: Option<bool>,
    /// The consent's end, any instant (past ones too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The sandbox's view of a connection (`GET /__sandbox/connections/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// Its public JSON, as `GET /users/{id}/connections` shows it.
    pub connection: Value,
    /// Its user.
    pub user_id: String,
    /// The scripted outcomes still to come.
    pub script: Vec<Outcome>,
    /// The outcome of every fetch after the script.
    pub thereafter: Option<Outcome>,
    /// Since when its fetches have been failing.
    pub failing_since: Option<DateTime<Utc>>,
    /// The oldest transaction date held.
    pub history_from: DateTime<Utc>,
    /// Whether the background history fetch is still to run.
    pub history_pending: bool,
    /// Transactions held.
    pub transactions: u64,
    /// The next event due (`{at, event}`).
    pub next: Option<Value>,
}

/// A fault rule to add (`POST /__sandbox/faults`, and a scenario's `faults`): the matched
/// requests and the effect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultSpec {
    /// Only this method (default: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The path, a prefix unless `exact` (`*` matches one segment).
    pub path: String,
    /// Match the whole path only.
    #[serde(default)]
    pub exact: bool,
    /// Answer with this status (default 503 when no other effect is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The error body's `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The error body's `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Retry-After`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Delay before answering, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Drop the connection without answering.
    #[serde(default)]
    pub drop: bool,
    /// Answer 200 with a body that is not JSON.
    #[serde(default)]
    pub malformed: bool,
    /// Share of matching requests it fires on (`0..=1`, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Fire this many times, then stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

/// A fault rule as the sandbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Its id.
    pub id: String,
    /// Its method, if it has one.
    pub method: Option<String>,
    /// Its path.
    pub path: String,
    /// Whether the path must match exactly.
    pub exact: bool,
    /// The status it answers with, when it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The error body's `code`, when it answers with an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The error body's `message`, when it answers with an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Retry-After` seconds, when it answers with an error that carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Whether it drops the connection.
    pub drop: bool,
    /// Whether it answers a malformed body.
    pub malformed: bool,
    /// Its delay, milliseconds.
    pub latency_ms: u64,
    /// Share of matching requests it fires on.
    pub rate: f64,
    /// How many times it fires at most.
    pub times: Option<u64>,
    /// How many firings are left.
    pub remaining: Option<u64>,
    /// Requests that matched while it was active.
    pub matched: u64,
    /// Times it fired.
    pub hits: u64,
    /// Whether it still fires.
    pub active: bool,
}

/// The webhook target (`GET`/`PUT /__sandbox/webhooks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// Where webhooks go, if anywhere.
    pub url: Option<String>,
    /// `json` or `jwt`.
    pub format: Option<String>,
    /// Whether events are being recorded (there is a target).
    pub recording: bool,
}

/// Webhook chaos (`GET`/`PUT /__sandbox/webhooks/chaos`): probabilities in `0..=1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Chaos {
    /// An event is not sent.
    pub drop: f64,
    /// An event is sent twice.
    pub duplicate: f64,
    /// A batch is shuffled.
    pub reorder: f64,
}

/// How one webhook delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx within 5 s.
    Delivered,
    /// Anything else: non-2xx, timeout, connection error, signing error. Never retried.
    Failed,
    /// Chaos (or a missing target) discarded the event: nothing was sent.
    Dropped,
    /// Chaos sent an extra copy and the receiver accepted it (a failed extra copy is logged
    /// as `failed` with `duplicate: true`).
    Duplicate,
}

impl DeliveryOutcome {
    /// The wire name: `delivered`, `failed`, `dropped` or `duplicate`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Dropped => "dropped",
            DeliveryOutcome::Duplicate => "duplicate",
        }
    }
}

impl std::fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DeliveryOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One webhook delivery attempt (and each event dropped on purpose), as the delivery log
/// keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Sequence number (starts at 1, never reused).
    pub seq: u64,
    /// The webhook id (`id` / `jti`).
    pub webhook_id: String,
    /// `eventType`.
    pub event_type: String,
    /// `userId`.
    pub user_id: String,
    /// Where it went (`null` when there was no target).
    pub url: Option<String>,
    /// `json` or `jwt` (`null` when there was no target).
    pub format: Option<String>,
    /// Virtual time the attempt started, written with milliseconds
    /// (`2025-01-15T10:00:00.000Z`).
    #[serde(serialize_with = "millis")]
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered in time.
    pub status: Option<u16>,
    /// Why it failed (timeout, connection error), if it did.
    pub error: Option<String>,
    /// Real time the attempt took, milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// Whether this is chaos's extra copy of an event already sent.
    pub duplicate: bool,
    /// The event payload (as sent; `{"truncated": true, "bytes": N}` when it was larger
    /// than the delivery log keeps).
    pub payload: Value,
    /// Whether the payload was replaced because of its size, or another text was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
}

/// Writes an instant as Moneyhub does, with milliseconds (read back by chrono's own
/// `Deserialize`, which takes any RFC 3339).
fn millis<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::iso(*t))
}

/// The delivery log (`GET /__sandbox/webhooks/deliveries`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deliveries {
    /// The attempts, oldest first.
    pub data: Vec<Delivery>,
    /// The last sequence number given.
    pub last_seq: u64,
    /// Events not attempted yet.
    pub pending: u64,
}

/// What a flush did (`POST /__sandbox/webhooks/flush`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushReport {
    /// Requests sent.
    pub attempts: u64,
    /// Events accepted.
    pub delivered: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Events discarded.
    pub dropped: u64,
    /// Extra copies accepted.
    pub duplicates: u64,
    /// The delivery log's last sequence number.
    pub last_seq: u64,
}

/// A fired test event (`POST /__sandbox/webhooks/test`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiredEvent {
    /// The webhook id.
    pub id: String,
    /// The payload sent (the sandbox's default one when none was given).
    #[serde(default)]
    pub payload: Value,
    /// Its delivery attempts.
    pub deliveries: Vec<Delivery>,
}

/// A synthetic event to deliver (`POST /__sandbox/webhooks/test`). Ids may be unique
/// prefixes; without a payload the sandbox builds a realistic one from the user's data,
/// aimed at `connection_id` / `account_id` when given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestEvent {
    /// The user.
    pub user_id: String,
    /// `eventType`, such as `newTransactions`.
    pub event_type: String,
    /// The payload (default: built from the user's data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// The connection a default payload names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The account a default payload names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// How much the sandbox holds (`GET /__sandbox/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Users.
    pub users: u64,
    /// Connections.
    pub connections: u64,
    /// Accounts.
    pub accounts: u64,
    /// Live transactions generated so far. The sandbox generates a fetch's transactions when
    /// they are first read or announced, not when the fetch runs: an account in
    /// `accounts_unread` has more than this counts.
    pub transactions: u64,
    /// Transactions generated (deleted ones included).
    pub transactions_stored: u64,
    /// Accounts with fetches whose transactions nobody has read yet (no webhook announced
    /// them either): generated at their first read, exactly as the fetch would have stored
    /// them at its time.
    #[serde(default)]
    pub accounts_unread: u64,
    /// Sync records.
    pub syncs: u64,
    /// Webhook events not delivered yet.
    pub pending_events: u64,
    /// What the bounded logs hold now.
    pub retained: Retained,
}

/// What the sandbox's bounded logs and metric series hold (`GET /__sandbox/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retained {
    /// Entries in the request log.
    pub request_log_entries: u64,
    /// Bytes the request log holds.
    pub request_log_bytes: u64,
    /// Bytes the webhook delivery log holds.
    pub delivery_log_bytes: u64,
    /// Per-route metric series.
    pub metric_series: u64,
}

/// A page of the request log (`GET /__sandbox/requests`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestLog {
    /// The entries, oldest first.
    pub data: Vec<LogEntry>,
    /// The last sequence number given.
    pub last_seq: u64,
}

/// A listing's wire shape (`{data, meta: {lastSeq, pending?}}`): the request log and the
/// delivery log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Listing<T> {
    /// The entries, oldest first.
    pub(crate) data: Vec<T>,
    /// Where the log stands.
    #[serde(default)]
    pub(crate) meta: Option<ListingMeta>,
}

/// `meta` of a [`Listing`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListingMeta {
    /// The last sequence number given.
    pub(crate) last_seq: u64,
    /// Events not attempted yet (the delivery log only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<u64>,
}
