//! `mirror status` on PostgreSQL: known users and per-user counts.

use std::collections::HashMap;

use super::PgConn;
use crate::db::{LastEvent, Status, UserStatus};
use crate::error::Result;

/// Users the mirror knows, the empty "no user" key left out.
const KNOWN_USERS: &str = "SELECT user_id FROM mirror_users WHERE user_id <> '' ORDER BY user_id";

/// Every known user (unordered).
const USERS: &str = "SELECT user_id FROM mirror_users WHERE user_id <> ''";

/// Live and buried transactions per user.
const TX_PER_USER: &str =
    "SELECT user_id, COUNT(*) FILTER (WHERE deleted = 0), COUNT(*) FILTER (WHERE deleted <> 0)
     FROM mirror_transactions GROUP BY user_id";

/// Connections per user.
const CONNECTIONS_PER_USER: &str =
    "SELECT user_id, COUNT(*) FROM mirror_connections WHERE removed = 0 GROUP BY user_id";

/// Pending events and last arrival per user.
const INBOX_PER_USER: &str =
    "SELECT user_id, COUNT(*) FILTER (WHERE state = 0), MAX(received_ms) FROM mirror_inbox GROUP BY user_id";

/// The newest event.
const LAST_EVENT: &str =
    "SELECT received_ms, event_type, user_id, webhook_id FROM mirror_inbox ORDER BY seq DESC LIMIT 1";

/// Users the mirror knows, sorted.
pub(super) async fn known_users(c: &mut PgConn) -> Result<Vec<String>> {
    let rows = c.query(KNOWN_USERS, &[]).await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

/// Counts for `mirror status`.
pub(super) async fn status(c: &mut PgConn) -> Result<Status> {
    let mut users: HashMap<String, UserStatus> = HashMap::new();
    let entry = |u: String| UserStatus { user_id: u, ..Default::default() };
    for r in c.query(USERS, &[]).await? {
        let u: String = r.try_get(0)?;
        users.insert(u.clone(), entry(u));
    }
    for r in c.query(TX_PER_USER, &[]).await? {
        let u: String = r.try_get(0)?;
        let e = users.entry(u.clone()).or_insert_with(|| entry(u));
        e.live = r.try_get(1)?;
        e.tombstones = r.try_get(2)?;
    }
    for r in c.query(CONNECTIONS_PER_USER, &[]).await? {
        let u: String = r.try_get(0)?;
        users.entry(u.clone()).or_insert_with(|| entry(u)).connections = r.try_get(1)?;
    }
    for r in c.query(INBOX_PER_USER, &[]).await? {
        let u: String = r.try_get(0)?;
        if u.is_empty() {
            continue;
        }
        let e = users.entry(u.clone()).or_insert_with(|| entry(u));
        e.pending = r.try_get(1)?;
        e.last_event_ms = r.try_get(2)?;
    }
    let counts = super::inbox::counts(c).await?;
    let oldest_pending_ms = counts.oldest_pending_ms;
    let last = c.query(LAST_EVENT, &[]).await?;
    let last_event = match last.first() {
        Some(r) => Some(LastEvent {
            received_ms: r.try_get(0)?,
            event_type: r.try_get(1)?,
            user_id: r.try_get(2)?,
            webhook_id: r.try_get(3)?,
        }),
        None => None,
    };
    Ok(Status::assemble(users, &counts, oldest_pending_ms, last_event))
}
