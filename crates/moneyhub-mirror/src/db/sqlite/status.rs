//! `mirror status` on SQLite: known users and the kept per-user figures (migration 7), read
//! without counting history.

use rusqlite::{params, Connection, OptionalExtension};

use crate::db::rows::UserTotals;
use crate::db::{LastEvent, Status, StatusQuery, UserStatus};
use crate::error::Result;

/// Users the mirror knows, the empty "no user" key left out.
const KNOWN_USERS: &str = "SELECT user_id FROM mirror_users WHERE user_id <> '' ORDER BY user_id";

/// Every user's totals: a sum over the kept per-user figures (one row per user, never the
/// transactions).
const TOTALS: &str = "SELECT COUNT(*), COALESCE(SUM(live), 0), COALESCE(SUM(tombstones), 0)
     FROM mirror_users WHERE user_id <> ''";

/// A user's kept figures: its row, and its claim-queue row while it has one (pending events,
/// the newest arrival the receiver recorded there since a claim last carried it over).
macro_rules! user_figures {
    ($where:literal, $tail:literal) => {
        concat!(
            "SELECT u.user_id, u.live, u.tombstones, u.connections, COALESCE(d.pending, 0),
                CASE WHEN d.pending > 0 THEN d.oldest_pending_ms END AS oldest_ms,
                COALESCE(MAX(u.last_event_ms, d.last_event_ms), u.last_event_ms, d.last_event_ms) AS last_ms
             FROM mirror_users u LEFT JOIN mirror_users_due d ON d.user_id = u.user_id WHERE ",
            $where,
            $tail
        )
    };
}

/// The first users in status order: those with pending events, oldest pending first, then
/// by most recent event, then by id (a top-N over the per-user rows).
const USERS: &str = user_figures!(
    "u.user_id <> ''",
    " ORDER BY COALESCE(d.pending, 0) = 0, oldest_ms, last_ms DESC NULLS LAST, u.user_id LIMIT ?1"
);

/// One user's figures (its primary key).
const USER: &str = user_figures!("u.user_id = ?1", " AND u.user_id <> ''");

/// The newest event (the inbox's primary key, one row).
const LAST_EVENT: &str =
    "SELECT received_ms, event_type, user_id, webhook_id FROM mirror_inbox ORDER BY seq DESC LIMIT 1";

/// Users the mirror knows, sorted.
pub(super) fn known_users(c: &Connection) -> Result<Vec<String>> {
    Ok(c.prepare_cached(KNOWN_USERS)?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
}

fn user_status(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserStatus> {
    Ok(UserStatus {
        user_id: r.get(0)?,
        live: r.get(1)?,
        tombstones: r.get(2)?,
        connections: r.get(3)?,
        pending: r.get(4)?,
        oldest_pending_ms: r.get(5)?,
        last_event_ms: r.get(6)?,
    })
}

/// Counts for `mirror status`, from the kept figures.
pub(super) fn status(c: &Connection, query: &StatusQuery) -> Result<Status> {
    let users: Vec<UserStatus> = match &query.user {
        Some(user) => {
            c.prepare_cached(USER)?.query_row([user.as_str()], user_status).optional()?.into_iter().collect()
        }
        None => {
            let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
            c.prepare_cached(USERS)?
                .query_map(params![limit], user_status)?
                .collect::<rusqlite::Result<_>>()?
        }
    };
    let totals = c
        .prepare_cached(TOTALS)?
        .query_row([], |r| Ok(UserTotals { users: r.get(0)?, live: r.get(1)?, tombstones: r.get(2)? }))?;
    let counts = super::inbox::counts(c)?;
    let last_event = c
        .prepare_cached(LAST_EVENT)?
        .query_row([], |r| {
            Ok(LastEvent {
                received_ms: r.get(0)?,
                event_type: r.get(1)?,
                user_id: r.get(2)?,
                webhook_id: r.get(3)?,
            })
        })
        .optional()?;
    Ok(Status::assemble(users, totals, &counts, last_event))
}
