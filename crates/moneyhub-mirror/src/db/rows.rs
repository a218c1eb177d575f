//! The rows the storage contract (the backends' traits) reads and writes, shared by every
//! backend.
//!
//! What the mirror writes carries the typed ids of `moneyhub-types` ([`UserId`],
//! [`AccountId`], [`TransactionId`], [`ConnectionId`]); a backend binds them as text, and
//! parses them back when it reads rows the processor works on ([`LocalConnection`],
//! [`LocalAccount`], [`LiveRow`]). What is read for people and exports ([`StoredTx`],
//! [`Status`]) stays text: it shows whatever the database holds, a corrupt row included.

use moneyhub_types::{AccountId, ConnectionId, TransactionId, UserId, WebhookEventType, WebhookId};

/// A webhook as the receiver stores it.
#[derive(Debug, Clone)]
pub struct NewInboxEvent {
    /// The delivery id (`id` / `jti`).
    pub webhook_id: WebhookId,
    /// The user (`userId` / `sub`), when the event names one (stored as `""` when not).
    pub user_id: Option<UserId>,
    /// The event type (stored camelCase).
    pub event_type: WebhookEventType,
    /// The body exactly as delivered and verified: the only copy of the event the inbox
    /// keeps. The processor reads the envelope from it once, when it applies the event
    /// ([`moneyhub::webhooks::read_verified`]: the JWT's claims, or the JSON envelope).
    pub body: bytes::Bytes,
    /// The delivery's `Content-Type`.
    pub content_type: String,
    /// Whether it was a verified signed JWT.
    pub signed: bool,
    /// When it arrived (local clock, ms since the epoch).
    pub received_ms: i64,
}

/// A stored event waiting to be applied.
#[derive(Debug, Clone)]
pub struct InboxEvent {
    /// Arrival order.
    pub seq: i64,
    /// The delivery id.
    pub webhook_id: String,
    /// The user.
    pub user_id: String,
    /// The event type.
    pub event_type: String,
    /// The body as delivered (verified when it arrived).
    pub body: Vec<u8>,
    /// Whether the body is a signed JWT (else the JSON envelope).
    pub signed: bool,
    /// Failed attempts so far.
    pub attempts: i64,
}

impl InboxEvent {
    /// The size of the envelope the body carries (bytes), what a claim's byte bound counts
    /// ([`crate::MirrorConfig::claim_max_bytes`]): the body itself for a JSON envelope; for
    /// a signed JWT (`header.payload.signature`) the decoded length of its payload, so a
    /// signature and base64 (a third more) do not shrink how many events one claim takes.
    pub fn envelope_len(&self) -> usize {
        if !self.signed {
            return self.body.len();
        }
        let mut parts = self.body.split(|b| *b == b'.');
        match (parts.next(), parts.next()) {
            // Unpadded base64url: 4 characters carry 3 bytes.
            (Some(_), Some(payload)) => payload.len() / 4 * 3 + (payload.len() % 4).saturating_sub(1),
            _ => self.body.len(),
        }
    }
}

/// A transaction row to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRow {
    /// Transaction id.
    pub id: TransactionId,
    /// Owner.
    pub user_id: UserId,
    /// Account, when known.
    pub account_id: Option<AccountId>,
    /// Connection, when known.
    pub connection_id: Option<ConnectionId>,
    /// `date`, ms since the epoch.
    pub date_ms: i64,
    /// `dateModified`, ms since the epoch.
    pub modified_ms: i64,
    /// `posted` / `pending`.
    pub status: String,
    /// The transaction's JSON.
    pub raw: String,
}

/// A live transaction's identity, version and date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRow {
    /// Transaction id.
    pub id: TransactionId,
    /// `dateModified`, ms.
    pub modified_ms: i64,
    /// `date`, ms.
    pub date_ms: i64,
}

/// A stored transaction (live or tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTx {
    /// Transaction id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Account, when known.
    pub account_id: Option<String>,
    /// Connection, when known.
    pub connection_id: Option<String>,
    /// `date`, ms.
    pub date_ms: i64,
    /// `dateModified` of the last version seen, ms.
    pub modified_ms: i64,
    /// `posted` / `pending`.
    pub status: String,
    /// A tombstone (deleted at Moneyhub).
    pub deleted: bool,
    /// The JSON of the last version seen.
    pub raw: String,
}

/// What the mirror knows about one of a user's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConnection {
    /// Connection id.
    pub connection_id: ConnectionId,
    /// Whether its first full listing is done.
    pub backfilled: bool,
    /// Moneyhub time up to which modifications are known to be mirrored.
    pub watermark_ms: Option<i64>,
    /// Moneyhub time of the last full reconciliation.
    pub last_full_ms: Option<i64>,
    /// Gone from Moneyhub (purged).
    pub removed: bool,
}

/// What the mirror knows about one of a user's accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAccount {
    /// Account id.
    pub account_id: AccountId,
    /// Its connection.
    pub connection_id: ConnectionId,
    /// Dropped at Moneyhub.
    pub removed: bool,
}

/// A connection row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionUpdate {
    /// Connection id.
    pub connection_id: ConnectionId,
    /// Provider name.
    pub name: Option<String>,
    /// Moneyhub's `status`.
    pub status: Option<String>,
    /// First full listing done.
    pub backfilled: bool,
    /// New watermark (kept when lower than the stored one).
    pub watermark_ms: Option<i64>,
    /// Time of a full reconciliation just done.
    pub last_full_ms: Option<i64>,
    /// Time of the reconciliation just done.
    pub last_reconciled_ms: Option<i64>,
}

/// Everything one step of processing writes, applied in one database transaction.
#[derive(Debug, Default, Clone)]
pub struct Writes {
    /// Account → connection mappings seen at Moneyhub (moves rows with the account).
    pub accounts: Vec<(AccountId, ConnectionId)>,
    /// Transactions to upsert (a row only replaces one with an older `dateModified`).
    pub upserts: Vec<TxRow>,
    /// Transactions deleted at Moneyhub: `(id, dateModified of the last live version seen)`.
    /// A tombstone records "deleted after version M" as `M + 1 ms`: a fetch of version M or
    /// older never brings it back, a restore (whose `dateModified` moves on) does.
    pub tombstones: Vec<(TransactionId, i64)>,
    /// Accounts dropped at Moneyhub: their live transactions become tombstones.
    pub dropped_accounts: Vec<AccountId>,
    /// Connections gone from Moneyhub: their transactions and accounts are purged.
    pub purged_connections: Vec<ConnectionId>,
    /// Connection bookkeeping.
    pub connections: Vec<ConnectionUpdate>,
    /// Observations of connections for the lifecycle loop (states, advice, outbox).
    pub lifecycle: crate::lifecycle::LifecycleWrites,
}

impl Writes {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.upserts.is_empty()
            && self.tombstones.is_empty()
            && self.dropped_accounts.is_empty()
            && self.purged_connections.is_empty()
            && self.connections.is_empty()
            && self.lifecycle.is_empty()
    }

    /// Whether these writes can change how many live transactions or tombstones the user
    /// has (its kept figures are counted again after them).
    pub(crate) fn changes_transactions(&self) -> bool {
        !(self.upserts.is_empty()
            && self.tombstones.is_empty()
            && self.dropped_accounts.is_empty()
            && self.purged_connections.is_empty())
    }

    /// Whether these writes can change how many connections the user has mirrored.
    pub(crate) fn changes_connections(&self) -> bool {
        !(self.connections.is_empty() && self.purged_connections.is_empty())
    }
}

/// What [`crate::Db::status`] lists: at most [`StatusQuery::limit`] users (or the one asked
/// for), with the totals of everyone.
///
/// ```
/// let mut q = moneyhub_mirror::db::StatusQuery::default();
/// q.limit = 50;
/// assert_eq!(q.user, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusQuery {
    /// Most users listed (default [`StatusQuery::DEFAULT_LIMIT`]): users with pending events
    /// first, oldest pending first, then by most recent event. The totals always cover every
    /// user.
    pub limit: usize,
    /// Only this user (listed when the mirror knows it; the totals still cover everyone).
    pub user: Option<UserId>,
}

impl StatusQuery {
    /// The users listed when no limit is given.
    pub const DEFAULT_LIMIT: usize = 20;
}

impl Default for StatusQuery {
    fn default() -> Self {
        StatusQuery { limit: Self::DEFAULT_LIMIT, user: None }
    }
}

/// Counts for `mirror status`: totals of every user and of the inbox, and a bounded list of
/// users. Every figure is kept as the data changes (per user in `mirror_users` and the claim
/// queue, the inbox's in `mirror_inbox_counts`): reading them counts no history.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Status {
    /// Per user: at most [`StatusQuery::limit`] of them, users with pending events first
    /// (oldest pending first), then by most recent event (newest first), then by id.
    pub users: Vec<UserStatus>,
    /// Users the mirror knows (all of them, however many are listed).
    pub users_total: i64,
    /// Events waiting to be applied.
    pub inbox_pending: i64,
    /// Events parked after too many failed attempts.
    pub inbox_failed: i64,
    /// Events applied (kept for the retention, then purged).
    pub inbox_applied: i64,
    /// Webhook ids in the applied-events ledger (kept for the retention, then purged).
    pub ledger: i64,
    /// Arrival time of the oldest pending event (local ms), if any.
    pub oldest_pending_ms: Option<i64>,
    /// The last event received.
    pub last_event: Option<LastEvent>,
    /// Live transactions (every user's).
    pub live: i64,
    /// Tombstones (every user's).
    pub tombstones: i64,
}

/// Every user's totals (`mirror status`), summed over the kept per-user figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UserTotals {
    /// Users known.
    pub users: i64,
    /// Live transactions.
    pub live: i64,
    /// Tombstones.
    pub tombstones: i64,
}

impl Status {
    /// The status from the listed users, every user's totals and the inbox's figures (both
    /// backends).
    pub(crate) fn assemble(
        users: Vec<UserStatus>,
        totals: UserTotals,
        counts: &InboxCounts,
        last_event: Option<LastEvent>,
    ) -> Status {
        Status {
            users,
            users_total: totals.users,
            live: totals.live,
            tombstones: totals.tombstones,
            inbox_pending: counts.pending,
            inbox_failed: counts.failed,
            inbox_applied: counts.applied,
            ledger: counts.ledger,
            oldest_pending_ms: counts.oldest_pending_ms,
            last_event,
        }
    }
}

/// One user's figures, as kept (see [`Status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserStatus {
    /// User id.
    pub user_id: String,
    /// Live transactions.
    pub live: i64,
    /// Tombstones.
    pub tombstones: i64,
    /// Connections mirrored (not removed).
    pub connections: i64,
    /// Events waiting.
    pub pending: i64,
    /// Arrival of the user's oldest pending event (local ms), when it has any.
    pub oldest_pending_ms: Option<i64>,
    /// Last event received for the user (local ms).
    pub last_event_ms: Option<i64>,
}

/// The last event received.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastEvent {
    /// When (local ms).
    pub received_ms: i64,
    /// Its type.
    pub event_type: String,
    /// Its user.
    pub user_id: String,
    /// Its delivery id.
    pub webhook_id: String,
}

/// Inbox counts (tests and monitoring).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    /// Rows in the inbox.
    pub total: i64,
    /// Pending.
    pub pending: i64,
    /// Applied.
    pub applied: i64,
    /// Parked.
    pub failed: i64,
    /// Rows in the applied-events ledger.
    pub ledger: i64,
    /// Pending events that failed at least once and wait for their retry.
    pub retrying: i64,
    /// Arrival time of the oldest pending event (local ms), if any.
    pub oldest_pending_ms: Option<i64>,
}

/// Inbox states.
pub(crate) mod state {
    /// Applied (its id is in the ledger).
    pub const APPLIED: i32 = 1;
    /// Parked after too many failed attempts.
    pub const FAILED: i32 = 2;
}

/// An id read back from the database, as its type: a value that does not parse is corrupt
/// data (the mirror only ever stores ids it parsed).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> crate::error::Result<T> {
    raw.parse().map_err(|_| {
        crate::error::Error::data(format!(
            "a stored {what} is not one: {:?}",
            raw.chars().take(80).collect::<String>()
        ))
    })
}

/// Where a page of stored transactions starts, in `(user_id, id)` byte order: each backend
/// has one statement per case, each a range of the table's key (migration 8), so that a page
/// costs its own rows whatever precedes it. (One statement with `?1 IS NULL OR …` branches
/// made SQLite scan the table from its start for every page: an export was quadratic.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageStart<'a> {
    /// One user's rows whose id sorts after `after_id` (`""`: from the first).
    User { user_id: &'a str, after_id: &'a str },
    /// Every user's rows after the cursor `(user_id, id)` (`("", "")`: from the first).
    All { after: (&'a str, &'a str) },
    /// Nothing: the cursor is past the user's rows.
    Empty,
}

impl<'a> PageStart<'a> {
    /// The start of a page of `user_id`'s rows (every user's when `None`) after `after`.
    pub(crate) fn new(user_id: Option<&'a str>, after: Option<(&'a str, &'a str)>) -> PageStart<'a> {
        match (user_id, after) {
            (None, after) => PageStart::All { after: after.unwrap_or(("", "")) },
            (Some(user_id), None) => PageStart::User { user_id, after_id: "" },
            (Some(user_id), Some((au, ai))) => match au.cmp(user_id) {
                std::cmp::Ordering::Less => PageStart::User { user_id, after_id: "" },
                std::cmp::Ordering::Equal => PageStart::User { user_id, after_id: ai },
                std::cmp::Ordering::Greater => PageStart::Empty,
            },
        }
    }

    /// The backend's statement for this start (`of_user` or `all`, both taking the key's two
    /// columns first) and the key it starts after; `None` for an empty page.
    pub(crate) fn statement<'s>(
        self,
        of_user: &'s str,
        all: &'s str,
    ) -> Option<(&'s str, (&'a str, &'a str))> {
        match self {
            PageStart::User { user_id, after_id } => Some((of_user, (user_id, after_id))),
            PageStart::All { after } => Some((all, after)),
            PageStart::Empty => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PageStart;

    /// A user's page starts at the cursor when the cursor is that user's, at the user's first
    /// row when the cursor sorts before the user, and is empty when it sorts after; without a
    /// user, the cursor (or the very first row) is the start.
    #[test]
    fn a_page_starts_where_its_cursor_says() {
        let user = Some("u2");
        assert_eq!(PageStart::new(user, None), PageStart::User { user_id: "u2", after_id: "" });
        assert_eq!(
            PageStart::new(user, Some(("u2", "t5"))),
            PageStart::User { user_id: "u2", after_id: "t5" }
        );
        assert_eq!(PageStart::new(user, Some(("u1", "t9"))), PageStart::User { user_id: "u2", after_id: "" });
        assert_eq!(PageStart::new(user, Some(("u3", "t0"))), PageStart::Empty);
        assert_eq!(PageStart::new(None, None), PageStart::All { after: ("", "") });
        assert_eq!(PageStart::new(None, Some(("u1", "t9"))), PageStart::All { after: ("u1", "t9") });
    }
}
