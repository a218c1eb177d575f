//! The rows a claim writes on PostgreSQL (accounts, transactions, tombstones, connections),
//! in batches through `unnest`, and the export's pages.

use std::collections::HashMap;

use super::PgConn;
use crate::db::rows::PageStart;
use crate::db::{
    ConnectionUpdate, StoredTx, TxRow, Writes, KEEP_CONNECTION_FIGURES, KEEP_TRANSACTION_FIGURES,
};
use crate::error::Result;

/// Rows per batch statement.
pub(super) const BATCH: usize = 5000;

/// Records an account under its connection.
const UPSERT_ACCOUNT: &str = "INSERT INTO mirror_accounts (account_id, user_id, connection_id, removed)
     VALUES ($1, $2, $3, 0)
     ON CONFLICT (account_id) DO UPDATE SET connection_id = excluded.connection_id, removed = 0";

/// Moves an account's transactions to its (new) connection.
const MOVE_ACCOUNT_ROWS: &str = "UPDATE mirror_transactions SET connection_id = $2
     WHERE account_id = $1 AND connection_id IS DISTINCT FROM $2";

/// Buries transactions Moneyhub no longer lists.
const TOMBSTONES: &str = "UPDATE mirror_transactions t
     SET deleted = 1, modified_ms = GREATEST(t.modified_ms, u.m) + 1, updated_ms = $3
     FROM unnest($1::TEXT[], $2::BIGINT[]) AS u(id, m) WHERE t.user_id = $4 AND t.id = u.id AND t.deleted = 0";

/// Buries the transactions of a dropped account.
const DROP_ACCOUNT_ROWS: &str =
    "UPDATE mirror_transactions SET deleted = 1, modified_ms = modified_ms + 1, updated_ms = $2
     WHERE account_id = $1 AND deleted = 0";

/// Marks an account removed.
const REMOVE_ACCOUNT: &str = "UPDATE mirror_accounts SET removed = 1 WHERE account_id = $1";

/// Deletes the transactions of a purged connection.
const PURGE_CONNECTION_ROWS: &str = "DELETE FROM mirror_transactions WHERE connection_id = $1
        OR account_id IN (SELECT account_id FROM mirror_accounts WHERE connection_id = $1)";

/// Marks a purged connection's accounts removed.
const REMOVE_CONNECTION_ACCOUNTS: &str = "UPDATE mirror_accounts SET removed = 1 WHERE connection_id = $1";

/// Marks a connection removed (recording it if new).
const REMOVE_CONNECTION: &str =
    "INSERT INTO mirror_connections (connection_id, user_id, first_seen_ms, removed)
     VALUES ($1, $2, $3, 1)
     ON CONFLICT (connection_id) DO UPDATE SET removed = 1";

/// Records what is known of a connection: watermarks only move forward.
const UPSERT_CONNECTION: &str = "INSERT INTO mirror_connections
        (connection_id, user_id, name, status, first_seen_ms, backfilled, watermark_ms, last_full_ms,
         last_reconciled_ms, removed)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)
     ON CONFLICT (connection_id) DO UPDATE SET
        name = COALESCE(excluded.name, mirror_connections.name),
        status = COALESCE(excluded.status, mirror_connections.status),
        backfilled = GREATEST(mirror_connections.backfilled, excluded.backfilled),
        watermark_ms = GREATEST(mirror_connections.watermark_ms, excluded.watermark_ms),
        last_full_ms = GREATEST(mirror_connections.last_full_ms, excluded.last_full_ms),
        last_reconciled_ms = COALESCE(excluded.last_reconciled_ms, mirror_connections.last_reconciled_ms),
        removed = 0";

/// The upsert of a batch: see the SQLite backend for the rule (newer `dateModified` wins).
const UPSERT_BATCH: &str = concat!(
    "INSERT INTO mirror_transactions
        (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
     SELECT u.id, u.user_id, u.account_id, u.connection_id, u.date_ms, u.modified_ms, u.status, 0, u.raw, $9
     FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[],
                 $8::TEXT[])
          AS u(id, user_id, account_id, connection_id, date_ms, modified_ms, status, raw)",
    upsert_on_conflict!("(user_id, id)")
);

/// A page of one user's stored transactions in id byte order, after an id: a range of the
/// key, whose columns compare bytes (`COLLATE "C"`, migration 8), so the key's order is the
/// page's.
pub(super) const PAGE_OF_USER: &str =
    "SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw
     FROM mirror_transactions
     WHERE user_id = $1 AND id > $2 AND ($3 OR deleted = 0)
     ORDER BY user_id, id LIMIT $4";

/// A page of every user's stored transactions in `(user_id, id)` byte order, after a cursor
/// (a range of the key).
pub(super) const PAGE_ALL: &str =
    "SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw
     FROM mirror_transactions
     WHERE (user_id, id) > ($1, $2) AND ($3 OR deleted = 0)
     ORDER BY user_id, id LIMIT $4";

/// Writes one batch of a claim inside its transaction.
pub(super) async fn write_all(c: &mut PgConn, user: &str, w: &Writes, now: i64) -> Result<()> {
    let user = user.to_owned();
    for (account, connection) in &w.accounts {
        c.execute(UPSERT_ACCOUNT, &[&account.as_str(), &user, &connection.as_str()]).await?;
        c.execute(MOVE_ACCOUNT_ROWS, &[&account.as_str(), &connection.as_str()]).await?;
    }
    // One row per id per statement (ON CONFLICT may not touch a row twice): keep the newest.
    let mut newest: HashMap<&str, &TxRow> = HashMap::with_capacity(w.upserts.len());
    for r in &w.upserts {
        let e = newest.entry(r.id.as_str()).or_insert(r);
        if r.modified_ms > e.modified_ms {
            *e = r;
        }
    }
    let rows: Vec<&TxRow> = newest.into_values().collect();
    for chunk in rows.chunks(BATCH) {
        upsert_batch(c, chunk, now).await?;
    }
    for chunk in w.tombstones.chunks(BATCH) {
        let ids: Vec<&str> = chunk.iter().map(|t| t.0.as_str()).collect();
        let seen: Vec<i64> = chunk.iter().map(|t| t.1).collect();
        c.execute(TOMBSTONES, &[&ids, &seen, &now, &user]).await?;
    }
    for account in &w.dropped_accounts {
        c.execute(DROP_ACCOUNT_ROWS, &[&account.as_str(), &now]).await?;
        c.execute(REMOVE_ACCOUNT, &[&account.as_str()]).await?;
    }
    for connection in &w.purged_connections {
        c.execute(PURGE_CONNECTION_ROWS, &[&connection.as_str()]).await?;
        c.execute(REMOVE_CONNECTION_ACCOUNTS, &[&connection.as_str()]).await?;
        c.execute(REMOVE_CONNECTION, &[&connection.as_str(), &user, &now]).await?;
    }
    for u in &w.connections {
        write_connection(c, &user, u, now).await?;
    }
    super::lifecycle::observe_in(c, &user, &w.lifecycle).await?;
    // The user's figures, counted again where these writes may have changed them, in the
    // claim's transaction: the claim holds the user's row lock already (its claim), so this
    // takes no lock of its own and commits (or rolls back) with the rows it counts.
    if w.changes_transactions() {
        c.execute(KEEP_TRANSACTION_FIGURES, &[&user]).await?;
    }
    if w.changes_connections() {
        c.execute(KEEP_CONNECTION_FIGURES, &[&user]).await?;
    }
    Ok(())
}

async fn write_connection(c: &mut PgConn, user: &String, u: &ConnectionUpdate, now: i64) -> Result<()> {
    let backfilled = i32::from(u.backfilled);
    c.execute(
        UPSERT_CONNECTION,
        &[
            &u.connection_id.as_str(),
            user,
            &u.name,
            &u.status,
            &now,
            &backfilled,
            &u.watermark_ms,
            &u.last_full_ms,
            &u.last_reconciled_ms,
        ],
    )
    .await?;
    Ok(())
}

/// Upserts one batch (ids unique within it) with [`UPSERT_BATCH`].
pub(super) async fn upsert_batch(c: &mut PgConn, rows: &[&TxRow], now: i64) -> Result<()> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let users: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
    let accounts: Vec<Option<&str>> =
        rows.iter().map(|r| r.account_id.as_ref().map(|a| a.as_str())).collect();
    let connections: Vec<Option<&str>> =
        rows.iter().map(|r| r.connection_id.as_ref().map(|c| c.as_str())).collect();
    let dates: Vec<i64> = rows.iter().map(|r| r.date_ms).collect();
    let modified: Vec<i64> = rows.iter().map(|r| r.modified_ms).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let raws: Vec<&str> = rows.iter().map(|r| r.raw.as_str()).collect();
    c.execute(
        UPSERT_BATCH,
        &[&ids, &users, &accounts, &connections, &dates, &modified, &statuses, &raws, &now],
    )
    .await?;
    Ok(())
}

/// A page of stored transactions ordered by `(user_id, id)`, after `after`.
pub(super) async fn page(
    c: &mut PgConn,
    user_id: Option<&str>,
    after: Option<(&str, &str)>,
    include_deleted: bool,
    limit: usize,
) -> Result<Vec<StoredTx>> {
    let Some((sql, key)) = PageStart::new(user_id, after).statement(PAGE_OF_USER, PAGE_ALL) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(sql, &[&key.0, &key.1, &include_deleted, &limit]).await?;
    rows.iter().map(stored_tx).collect()
}

fn stored_tx(r: &tokio_postgres::Row) -> Result<StoredTx> {
    Ok(StoredTx {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        account_id: r.try_get(2)?,
        connection_id: r.try_get(3)?,
        date_ms: r.try_get(4)?,
        modified_ms: r.try_get(5)?,
        status: r.try_get(6)?,
        deleted: r.try_get::<_, i32>(7)? != 0,
        raw: r.try_get(8)?,
    })
}
