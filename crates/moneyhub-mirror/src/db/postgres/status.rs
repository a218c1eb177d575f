//! `mirror status` on PostgreSQL: known users and the kept per-user figures (migration 7),
//! read without counting history.

use super::PgConn;
use crate::db::rows::UserTotals;
use crate::db::{LastEvent, Status, StatusQuery, UserStatus};
use crate::error::{Error, Result};

/// Users the mirror knows, the empty "no user" key left out.
const KNOWN_USERS: &str = "SELECT user_id FROM mirror_users WHERE user_id <> '' ORDER BY user_id";

/// Every user's totals: a sum over the kept per-user figures (one row per user, never the
/// transactions).
const TOTALS: &str =
    "SELECT COUNT(*)::BIGINT, COALESCE(SUM(live), 0)::BIGINT, COALESCE(SUM(tombstones), 0)::BIGINT
     FROM mirror_users WHERE user_id <> ''";

/// A user's kept figures: its row, and its claim-queue row while it has one (pending events,
/// the newest arrival the receiver recorded there since a claim last carried it over).
macro_rules! user_figures {
    ($where:literal, $tail:literal) => {
        concat!(
            "SELECT u.user_id, u.live, u.tombstones, u.connections, COALESCE(d.pending, 0)::BIGINT,
                CASE WHEN d.pending > 0 THEN d.oldest_pending_ms END AS oldest_ms,
                GREATEST(u.last_event_ms, d.last_event_ms) AS last_ms
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
    " ORDER BY COALESCE(d.pending, 0) = 0, CASE WHEN d.pending > 0 THEN d.oldest_pending_ms END,
        GREATEST(u.last_event_ms, d.last_event_ms) DESC NULLS LAST, u.user_id LIMIT $1"
);

/// One user's figures (its primary key).
const USER: &str = user_figures!("u.user_id = $1", " AND u.user_id <> ''");

/// The newest event (the inbox's primary key, one row).
const LAST_EVENT: &str =
    "SELECT received_ms, event_type, user_id, webhook_id FROM mirror_inbox ORDER BY seq DESC LIMIT 1";

/// Users the mirror knows, sorted.
pub(super) async fn known_users(c: &mut PgConn) -> Result<Vec<String>> {
    let rows = c.query(KNOWN_USERS, &[]).await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

fn user_status(r: &tokio_postgres::Row) -> Result<UserStatus> {
    Ok(UserStatus {
        user_id: r.try_get(0)?,
        live: r.try_get(1)?,
        tombstones: r.try_get(2)?,
        connections: r.try_get(3)?,
        pending: r.try_get(4)?,
        oldest_pending_ms: r.try_get(5)?,
        last_event_ms: r.try_get(6)?,
    })
}

/// Counts for `mirror status`, from the kept figures.
pub(super) async fn status(c: &mut PgConn, query: &StatusQuery) -> Result<Status> {
    let rows = match &query.user {
        Some(user) => c.query(USER, &[&user.as_str()]).await?,
        None => {
            let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
            c.query(USERS, &[&limit]).await?
        }
    };
    let users = rows.iter().map(user_status).collect::<Result<Vec<_>>>()?;
    let totals = c.query(TOTALS, &[]).await?;
    let t = totals.first().ok_or_else(|| Error::data("no row from the totals query"))?;
    let totals = UserTotals { users: t.try_get(0)?, live: t.try_get(1)?, tombstones: t.try_get(2)? };
    let counts = super::inbox::counts(c).await?;
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
    Ok(Status::assemble(users, totals, &counts, last_event))
}
