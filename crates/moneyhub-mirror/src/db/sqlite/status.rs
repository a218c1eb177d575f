//! `mirror status` on SQLite: known users and per-user counts.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::db::{LastEvent, Status, UserStatus};
use crate::error::Result;

/// Users the mirror knows, the empty "no user" key left out.
const KNOWN_USERS: &str = "SELECT user_id FROM mirror_users WHERE user_id <> '' ORDER BY user_id";

/// Every known user (unordered).
const USERS: &str = "SELECT user_id FROM mirror_users WHERE user_id <> ''";

/// Live and buried transactions per user.
const TX_PER_USER: &str = "SELECT user_id, SUM(CASE WHEN deleted = 0 THEN 1 ELSE 0 END),
        SUM(CASE WHEN deleted = 0 THEN 0 ELSE 1 END)
     FROM mirror_transactions GROUP BY user_id";

/// Connections per user.
const CONNECTIONS_PER_USER: &str =
    "SELECT user_id, COUNT(*) FROM mirror_connections WHERE removed = 0 GROUP BY user_id";

/// Pending events and last arrival per user.
const INBOX_PER_USER: &str = "SELECT user_id, SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), MAX(received_ms)
     FROM mirror_inbox GROUP BY user_id";

/// The newest event.
const LAST_EVENT: &str =
    "SELECT received_ms, event_type, user_id, webhook_id FROM mirror_inbox ORDER BY seq DESC LIMIT 1";

/// Users the mirror knows, sorted.
pub(super) fn known_users(c: &Connection) -> Result<Vec<String>> {
    Ok(c.prepare_cached(KNOWN_USERS)?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
}

/// Counts for `mirror status`.
pub(super) fn status(c: &Connection) -> Result<Status> {
    let mut users: HashMap<String, UserStatus> = HashMap::new();
    let entry = |u: String| -> UserStatus { UserStatus { user_id: u, ..Default::default() } };
    let mut s = c.prepare(USERS)?;
    for u in s.query_map([], |r| r.get::<_, String>(0))? {
        let u = u?;
        users.insert(u.clone(), entry(u));
    }
    let mut s = c.prepare(TX_PER_USER)?;
    for row in s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))? {
        let (u, live, dead) = row?;
        let e = users.entry(u.clone()).or_insert_with(|| entry(u));
        e.live = live;
        e.tombstones = dead;
    }
    let mut s = c.prepare(CONNECTIONS_PER_USER)?;
    for row in s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (u, n) = row?;
        users.entry(u.clone()).or_insert_with(|| entry(u)).connections = n;
    }
    let mut s = c.prepare(INBOX_PER_USER)?;
    let rows =
        s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))?;
    for row in rows {
        let (u, pending, last) = row?;
        if u.is_empty() {
            continue;
        }
        let e = users.entry(u.clone()).or_insert_with(|| entry(u));
        e.pending = pending;
        e.last_event_ms = last;
    }
    let counts = super::inbox::counts(c)?;
    let oldest_pending_ms = counts.oldest_pending_ms;
    let last_event = c
        .query_row(LAST_EVENT, [], |r| {
            Ok(LastEvent {
                received_ms: r.get(0)?,
                event_type: r.get(1)?,
                user_id: r.get(2)?,
                webhook_id: r.get(3)?,
            })
        })
        .optional()?;
    Ok(Status::assemble(users, &counts, oldest_pending_ms, last_event))
}
