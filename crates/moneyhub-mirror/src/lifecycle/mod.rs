//! The lifecycle loop: every connection's state, health advice and next action kept current in
//! the mirror's database, and every change of action told to the application.
//!
//! * **State** (`mirror_lifecycle`, one row per connection): the connection as Moneyhub last
//!   listed it (every field of the user connection), the types of its accounts (for the
//!   staleness thresholds, lifecycle spec §2), what the mirror knows of its own manual syncs,
//!   and the current advice (`moneyhub::health::advise`): action, reason, `not_before`, the
//!   deciding rule, since when. It is written from every listing of a user's connections the
//!   mirror makes anyway: backfill and reconciliation, `syncCompleted` (one listing per claim,
//!   so once per coalescing window), `reauthReminder` / `refreshReminder` (which now ask for a
//!   listing), `deletedAccount`, a connection gone from the list (removed). A connection that
//!   first appears holding accounts another connection held is recorded as moved from it
//!   (a reauth with a subset of accounts, lifecycle spec §5).
//! * **History** (`mirror_lifecycle_history`): a row each time a connection's status, error,
//!   extended status or action changes, with when it entered that state (so "in error since
//!   when, for how long" is a read). Bounded: the newest 100 rows per connection.
//! * **Due times**: each evaluation also computes [`moneyhub::health::next_change_at`], the next
//!   instant time alone can change the advice (consent entering the 5-day window, `lastUpdated`
//!   crossing 2 or 40 days, a guard's `not_before` passing), stored as the row's indexed
//!   `due_ms`. [`crate::Mirror::run`] re-evaluates the rows that fell due, claimed with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite: one writer, same semantics), in batches:
//!   no scan, O(1) work per change.
//! * **Outbox** (`mirror_outbox`): when notifications are on ([`crate::MirrorConfig::notify`]),
//!   every change of action writes a notification row in the same transaction as the change;
//!   [`crate::notify`] delivers it.
//!
//! Time is the client's clock (`moneyhub::Client::now`): a mirror built on a client whose clock
//! follows a sandbox's virtual clock follows it too.
//!
//! ## Decisions where the spec is silent
//!
//! * The first evaluation of a connection is a change from nothing (`previous: null`): it is
//!   notified unless its action is `none` (a healthy new connection is no news).
//! * A removed connection keeps its row (`removed`), its action becomes `null`, and that is
//!   notified (`action: null`, the reason says it was removed).
//! * "This client's manual syncs" for the advice (rows 7–10) are those this mirror made
//!   (`--auto-sync`), recorded on the row with the guard's next allowed time.
//! * A connection's stored JSON is the typed model re-encoded (fields the client does not model
//!   are not kept); at most 64 KiB of it is kept per row (`accountIds` are dropped beyond that).

pub(crate) mod eval;
pub(crate) mod run;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use eval::Observation;
pub use run::actions;

/// The notification type of a change of action.
pub const ACTION_CHANGED: &str = "connection.action_changed";

/// What the mirror knows and advises about one connection: a row of `mirror lifecycle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConnectionState {
    /// The connection.
    pub connection_id: String,
    /// Its user.
    pub user_id: String,
    /// The connection as Moneyhub last listed it (its JSON).
    pub connection: serde_json::Value,
    /// The types of its accounts, by account id, as far as known.
    #[serde(default)]
    pub account_types: BTreeMap<String, String>,
    /// Gone from Moneyhub.
    #[serde(default)]
    pub removed: bool,
    /// The connection whose accounts it took over when it appeared (a reauth with a subset of
    /// accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// The last manual sync this mirror made (ms since the epoch, the mirror's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_manual_sync_ms: Option<i64>,
    /// When the guard allows the next manual sync, as last read (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_allowed_ms: Option<i64>,
    /// The advised action (`none`, `sync`, `reauth`, …), `None` once removed.
    pub action: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// For `sync`: not before this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<i64>,
    /// The lifecycle table row that decided (0 once removed).
    pub rule: u8,
    /// For `contact_support`: the unrecognised value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// Since when the action is what it is (ms).
    pub action_since_ms: i64,
    /// Since when the status, error and extended status are what they are (ms).
    pub status_since_ms: i64,
    /// When Moneyhub last listed the connection (ms).
    pub observed_ms: i64,
    /// When the advice was last evaluated (ms).
    pub evaluated_ms: i64,
    /// When time alone changes the advice next (ms), if ever: the row is re-evaluated then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<i64>,
    /// Changes of action so far (numbers the notifications).
    pub changes: i64,
}

impl ConnectionState {
    /// `status` of the stored connection.
    pub fn status(&self) -> Option<&str> {
        self.connection.get("status").and_then(serde_json::Value::as_str)
    }

    /// `error` of the stored connection.
    pub fn error(&self) -> Option<&str> {
        self.connection.get("error").and_then(serde_json::Value::as_str)
    }

    /// `extendedStatus` of the stored connection.
    pub fn extended_status(&self) -> Option<&str> {
        self.connection.get("extendedStatus").and_then(serde_json::Value::as_str)
    }
}

/// One entry of a connection's history: a state it entered and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The connection.
    pub connection_id: String,
    /// When it entered this state (ms, the mirror's clock).
    pub entered_ms: i64,
    /// `status`.
    pub status: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `extendedStatus`.
    pub extended_status: Option<String>,
    /// The advised action (`None` once removed).
    pub action: Option<String>,
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxItem {
    /// Outbox order.
    pub seq: i64,
    /// The notification's stable id.
    pub id: String,
    /// The connection.
    pub connection_id: String,
    /// The JSON body, as it is POSTed.
    pub body: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When it was written (ms, the mirror's clock).
    pub created_ms: i64,
}

/// Which connections [`crate::Mirror::actions`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionFilter {
    /// Only these actions (empty: all).
    pub actions: Vec<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only connections whose action is due by this time (ms): `not_before` (or, without one,
    /// now) at or before it, or which need the user before it (consent ending inside it).
    pub due_by_ms: Option<i64>,
    /// Removed connections too.
    pub include_removed: bool,
    /// Only this connection.
    pub connection_id: Option<String>,
}

impl ActionFilter {
    /// Every connection (not removed).
    pub fn all() -> Self {
        Self::default()
    }

    /// Only connections advised `action` (repeatable: any of them).
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.actions.push(action.into());
        self
    }

    /// Only this user's connections.
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Only this connection (with [`ActionFilter::include_removed()`] to find it removed too).
    pub fn connection(mut self, connection_id: impl Into<String>) -> Self {
        self.connection_id = Some(connection_id.into());
        self
    }

    /// Only connections with something to do by `ms` (see [`ActionFilter::due_by_ms`]).
    pub fn due_by(mut self, ms: i64) -> Self {
        self.due_by_ms = Some(ms);
        self
    }

    /// Removed connections too.
    pub fn include_removed(mut self, include: bool) -> Self {
        self.include_removed = include;
        self
    }
}

/// Counts for metrics and `mirror status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LifecycleCounts {
    /// Connections (not removed) by action.
    pub by_action: BTreeMap<String, i64>,
    /// Connections (not removed) by `(status, error)` (`""` for none).
    pub by_status: BTreeMap<(String, String), i64>,
    /// Notifications waiting to be delivered.
    pub outbox_pending: i64,
    /// Notifications parked after too many failed attempts.
    pub outbox_parked: i64,
    /// When the oldest undelivered notification was written (ms), if any.
    pub oldest_undelivered_ms: Option<i64>,
    /// Connections whose evaluation is due by now.
    pub due_now: i64,
}

/// The lifecycle part of one write: observations of connections, evaluated and written in the
/// same transaction as the rest of it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LifecycleWrites {
    /// The mirror's time of the observations (ms).
    pub now_ms: i64,
    /// Write an outbox row for each change of action.
    pub notify: bool,
    /// `--auto-sync`: a connection advised `sync` (allowed now) is due at once.
    pub auto_sync: bool,
    /// What was observed, per connection.
    pub items: Vec<(String, Observation)>,
}

impl LifecycleWrites {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What one evaluation produced (what the backends write).
#[derive(Debug, Clone)]
pub(crate) struct Evaluated {
    pub state: ConnectionState,
    pub history: Option<HistoryEntry>,
    /// `(id, body)` of the notification to write.
    pub outbox: Option<(String, String)>,
    /// Whether the row wants a manual sync now (auto-sync).
    pub wants_sync: bool,
}

/// A connection whose evaluation fell due and was re-evaluated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DueResult {
    /// The connection.
    pub connection_id: String,
    /// Its user.
    pub user_id: String,
    /// The action now.
    pub action: Option<String>,
    /// Whether `--auto-sync` should start a manual sync of it now.
    pub wants_sync: bool,
}
