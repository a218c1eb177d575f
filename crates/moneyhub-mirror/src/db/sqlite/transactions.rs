//! The rows a claim writes on SQLite (accounts, transactions, tombstones, connections) and
//! the export's pages.

use rusqlite::{params, Connection, Transaction};

use crate::db::rows::PageStart;
use crate::db::{
    ConnectionUpdate, StoredTx, TxRow, Writes, KEEP_CONNECTION_FIGURES, KEEP_TRANSACTION_FIGURES_SQLITE,
};
use crate::error::Result;

/// Records an account under its connection.
const UPSERT_ACCOUNT: &str = "INSERT INTO mirror_accounts (account_id, user_id, connection_id, removed)
     VALUES (?1, ?2, ?3, 0)
     ON CONFLICT (account_id) DO UPDATE SET connection_id = excluded.connection_id, removed = 0";

/// Moves an account's transactions to its (new) connection.
const MOVE_ACCOUNT_ROWS: &str = "UPDATE mirror_transactions SET connection_id = ?2
     WHERE account_id = ?1 AND (connection_id IS NULL OR connection_id <> ?2)";

/// Buries a transaction Moneyhub no longer lists (found by its key: user and id).
const TOMBSTONE: &str =
    "UPDATE mirror_transactions SET deleted = 1, modified_ms = MAX(modified_ms, ?2) + 1, updated_ms = ?3
     WHERE user_id = ?4 AND id = ?1 AND deleted = 0";

/// Buries the transactions of a dropped account.
const DROP_ACCOUNT_ROWS: &str =
    "UPDATE mirror_transactions SET deleted = 1, modified_ms = modified_ms + 1, updated_ms = ?2
     WHERE account_id = ?1 AND deleted = 0";

/// Marks an account removed.
const REMOVE_ACCOUNT: &str = "UPDATE mirror_accounts SET removed = 1 WHERE account_id = ?1";

/// Deletes the transactions of a purged connection.
const PURGE_CONNECTION_ROWS: &str = "DELETE FROM mirror_transactions WHERE connection_id = ?1
        OR account_id IN (SELECT account_id FROM mirror_accounts WHERE connection_id = ?1)";

/// Marks a purged connection's accounts removed.
const REMOVE_CONNECTION_ACCOUNTS: &str = "UPDATE mirror_accounts SET removed = 1 WHERE connection_id = ?1";

/// Marks a connection removed (recording it if new).
const REMOVE_CONNECTION: &str =
    "INSERT INTO mirror_connections (connection_id, user_id, first_seen_ms, removed)
     VALUES (?1, ?2, ?3, 1)
     ON CONFLICT (connection_id) DO UPDATE SET removed = 1";

/// Records what is known of a connection: watermarks only move forward.
const UPSERT_CONNECTION: &str = "INSERT INTO mirror_connections
        (connection_id, user_id, name, status, first_seen_ms, backfilled, watermark_ms, last_full_ms,
         last_reconciled_ms, removed)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)
     ON CONFLICT (connection_id) DO UPDATE SET
        name = COALESCE(excluded.name, name),
        status = COALESCE(excluded.status, status),
        backfilled = MAX(backfilled, excluded.backfilled),
        watermark_ms = CASE WHEN excluded.watermark_ms IS NULL THEN watermark_ms
                            WHEN watermark_ms IS NULL OR excluded.watermark_ms > watermark_ms
                                THEN excluded.watermark_ms
                            ELSE watermark_ms END,
        last_full_ms = CASE WHEN excluded.last_full_ms IS NULL THEN last_full_ms
                            WHEN last_full_ms IS NULL OR excluded.last_full_ms > last_full_ms
                                THEN excluded.last_full_ms
                            ELSE last_full_ms END,
        last_reconciled_ms = COALESCE(excluded.last_reconciled_ms, last_reconciled_ms),
        removed = 0";

/// The upsert: a row replaces the stored one only when its `dateModified` is newer, so an
/// older version never overwrites a newer one and a tombstone only comes back with a version
/// newer than the one it buried (Moneyhub moves `dateModified` on restore).
pub(crate) const UPSERT: &str = concat!(
    "INSERT INTO mirror_transactions
        (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9)",
    upsert_on_conflict!("(user_id, id)")
);

/// A page of one user's stored transactions in id order, after an id (a range of the key).
const PAGE_OF_USER: &str =
    "SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw
     FROM mirror_transactions
     WHERE user_id = ?1 AND id > ?2 AND (?3 OR deleted = 0)
     ORDER BY user_id, id LIMIT ?4";

/// A page of every user's stored transactions in `(user_id, id)` order, after a cursor (a
/// range of the key).
const PAGE_ALL: &str =
    "SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw
     FROM mirror_transactions
     WHERE (user_id, id) > (?1, ?2) AND (?3 OR deleted = 0)
     ORDER BY user_id, id LIMIT ?4";

/// The live rows of some accounts: completed with `(?, …) AND deleted = 0`.
const LIVE_ROWS_OF: &str = "SELECT id, modified_ms, date_ms FROM mirror_transactions WHERE account_id IN";

/// The live rows of `n` accounts (one placeholder each).
pub(super) fn live_rows_sql(n: usize) -> String {
    let marks = vec!["?"; n].join(",");
    format!("{LIVE_ROWS_OF} ({marks}) AND deleted = 0")
}

/// Writes one batch of a claim.
pub(super) fn write_all(tx: &Transaction<'_>, user: &str, w: &Writes, now: i64) -> Result<()> {
    if !w.accounts.is_empty() {
        let mut acc = tx.prepare_cached(UPSERT_ACCOUNT)?;
        let mut move_rows = tx.prepare_cached(MOVE_ACCOUNT_ROWS)?;
        for (account, connection) in &w.accounts {
            acc.execute(params![account.as_str(), user, connection.as_str()])?;
            move_rows.execute(params![account.as_str(), connection.as_str()])?;
        }
    }
    if !w.upserts.is_empty() {
        upsert_rows(tx, &w.upserts, now)?;
    }
    if !w.tombstones.is_empty() {
        let mut tomb = tx.prepare_cached(TOMBSTONE)?;
        for (id, seen) in &w.tombstones {
            tomb.execute(params![id.as_str(), seen, now, user])?;
        }
    }
    for account in &w.dropped_accounts {
        tx.prepare_cached(DROP_ACCOUNT_ROWS)?.execute(params![account.as_str(), now])?;
        tx.prepare_cached(REMOVE_ACCOUNT)?.execute([account.as_str()])?;
    }
    for connection in &w.purged_connections {
        tx.prepare_cached(PURGE_CONNECTION_ROWS)?.execute([connection.as_str()])?;
        tx.prepare_cached(REMOVE_CONNECTION_ACCOUNTS)?.execute([connection.as_str()])?;
        tx.prepare_cached(REMOVE_CONNECTION)?.execute(params![connection.as_str(), user, now])?;
    }
    for c in &w.connections {
        write_connection(tx, user, c, now)?;
    }
    super::lifecycle::observe_in(tx, user, &w.lifecycle)?;
    keep_figures(tx, user, w)
}

/// Counts the user's figures again where these writes may have changed them, in their
/// transaction (a claim writes only its own user's rows).
fn keep_figures(tx: &Transaction<'_>, user: &str, w: &Writes) -> Result<()> {
    if w.changes_transactions() {
        tx.prepare_cached(KEEP_TRANSACTION_FIGURES_SQLITE)?.execute([user])?;
    }
    if w.changes_connections() {
        tx.prepare_cached(KEEP_CONNECTION_FIGURES)?.execute([user])?;
    }
    Ok(())
}

fn write_connection(tx: &Transaction<'_>, user: &str, c: &ConnectionUpdate, now: i64) -> Result<()> {
    tx.prepare_cached(UPSERT_CONNECTION)?.execute(params![
        c.connection_id.as_str(),
        user,
        c.name,
        c.status,
        now,
        i64::from(c.backfilled),
        c.watermark_ms,
        c.last_full_ms,
        c.last_reconciled_ms
    ])?;
    Ok(())
}

/// Rows per multi-row upsert statement (8 parameters each, well under SQLite's 32,766).
const ROWS_PER_STATEMENT: usize = 200;

/// [`UPSERT`] for `n` rows at once: `VALUES (…), (…), …` with the same conflict rule (SQLite
/// applies the rows of one statement one after the other, so two versions of one id in a
/// statement end as the newer one, exactly as two statements would).
fn upsert_many_sql(n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO mirror_transactions
            (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
         VALUES ",
    );
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        let b = i * 8;
        sql.push_str(&format!(
            "(?{},?{},?{},?{},?{},?{},?{},0,?{},?1)",
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8,
            b + 9
        ));
    }
    sql.push_str(upsert_on_conflict!("(user_id, id)"));
    sql
}

/// Upserts rows: [`ROWS_PER_STATEMENT`] per prepared multi-row statement, the rest one by one
/// with [`UPSERT`].
pub(super) fn upsert_rows(tx: &Transaction<'_>, rows: &[TxRow], now: i64) -> Result<()> {
    let mut chunks = rows.chunks_exact(ROWS_PER_STATEMENT);
    if chunks.len() > 0 {
        let mut many = tx.prepare_cached(&upsert_many_sql(ROWS_PER_STATEMENT))?;
        for chunk in &mut chunks {
            many.raw_bind_parameter(1, now)?;
            for (i, r) in chunk.iter().enumerate() {
                let b = i * 8;
                many.raw_bind_parameter(b + 2, r.id.as_str())?;
                many.raw_bind_parameter(b + 3, r.user_id.as_str())?;
                many.raw_bind_parameter(b + 4, r.account_id.as_ref().map(|a| a.as_str()))?;
                many.raw_bind_parameter(b + 5, r.connection_id.as_ref().map(|c| c.as_str()))?;
                many.raw_bind_parameter(b + 6, r.date_ms)?;
                many.raw_bind_parameter(b + 7, r.modified_ms)?;
                many.raw_bind_parameter(b + 8, r.status.as_str())?;
                many.raw_bind_parameter(b + 9, r.raw.as_str())?;
            }
            many.raw_execute()?;
        }
    }
    let mut up = tx.prepare_cached(UPSERT)?;
    for r in chunks.remainder() {
        up.execute(params![
            r.id.as_str(),
            r.user_id.as_str(),
            r.account_id.as_ref().map(|a| a.as_str()),
            r.connection_id.as_ref().map(|c| c.as_str()),
            r.date_ms,
            r.modified_ms,
            r.status,
            r.raw,
            now
        ])?;
    }
    Ok(())
}

/// A page of stored transactions ordered by `(user_id, id)`, after `after`.
pub(super) fn page(
    c: &Connection,
    user_id: Option<&str>,
    after: Option<(String, String)>,
    include_deleted: bool,
    limit: i64,
) -> Result<Vec<StoredTx>> {
    let after = after.as_ref().map(|(u, i)| (u.as_str(), i.as_str()));
    let Some((sql, key)) = PageStart::new(user_id, after).statement(PAGE_OF_USER, PAGE_ALL) else {
        return Ok(Vec::new());
    };
    let mut s = c.prepare_cached(sql)?;
    let rows = s
        .query_map(params![key.0, key.1, include_deleted, limit], |r| {
            Ok(StoredTx {
                id: r.get(0)?,
                user_id: r.get(1)?,
                account_id: r.get(2)?,
                connection_id: r.get(3)?,
                date_ms: r.get(4)?,
                modified_ms: r.get(5)?,
                status: r.get(6)?,
                deleted: r.get::<_, i64>(7)? != 0,
                raw: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan of a statement, one step a line.
    fn plan(c: &Connection, sql: &str) -> String {
        let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let users = std::iter::repeat_n("u", s.parameter_count());
        let steps = s.query_map(rusqlite::params_from_iter(users), |r| r.get::<_, String>(3)).unwrap();
        steps.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// The figures a claim keeps are counted over that user's rows through indexes (the
    /// transactions' own key since migration 8), never a scan of the transactions or the
    /// inbox (migration 7).
    #[test]
    fn figures_are_counted_through_indexes() {
        let c = Connection::open_in_memory().unwrap();
        for (_, _, sql) in crate::db::migrations::SQLITE {
            c.execute_batch(sql).unwrap();
        }
        let figures = plan(&c, KEEP_TRANSACTION_FIGURES_SQLITE);
        assert!(figures.contains("USING PRIMARY KEY (user_id=?)"), "{figures}");
        assert!(figures.contains("INDEX mirror_transactions_tombstones (user_id=?)"), "{figures}");
        let connections = plan(&c, KEEP_CONNECTION_FIGURES);
        assert!(connections.contains("INDEX mirror_connections_user (user_id=?)"), "{connections}");
        let pending = plan(&c, super::super::inbox::COUNT_PENDING);
        assert!(pending.contains("INDEX mirror_inbox_pending (user_id=?)"), "{pending}");
        for p in [figures, connections, pending] {
            assert!(!p.contains("SCAN mirror_transactions") && !p.contains("SCAN mirror_inbox"), "{p}");
        }
    }

    /// A page of stored transactions is a range of the table's key in the key's order: its
    /// cost is its own rows, not the rows before it. (The one statement these replaced,
    /// `(?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR …)`, was `SCAN mirror_transactions`:
    /// every page of an export read the table from its start.)
    #[test]
    fn pages_are_ranges_of_the_key() {
        let c = Connection::open_in_memory().unwrap();
        for (_, _, sql) in crate::db::migrations::SQLITE {
            c.execute_batch(sql).unwrap();
        }
        let of_user = plan(&c, PAGE_OF_USER);
        assert!(
            of_user.contains("SEARCH mirror_transactions USING PRIMARY KEY (user_id=? AND id>?)"),
            "{of_user}"
        );
        let all = plan(&c, PAGE_ALL);
        assert!(all.contains("SEARCH mirror_transactions USING PRIMARY KEY ((user_id,id)>(?,?))"), "{all}");
        for p in [of_user, all] {
            assert!(!p.contains("SCAN") && !p.contains("TEMP B-TREE"), "{p}");
        }
    }

    /// The mirror's connections keep statement journals and temporary tables in memory, not
    /// in a temporary file written page by page (see `open_connection`).
    #[test]
    fn statement_journals_stay_in_memory() {
        let dir = std::env::temp_dir().join(format!("mirror-temp-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = super::super::open_connection(&dir.join("m.db"), "NORMAL").unwrap();
        let store: i64 = c.query_row("PRAGMA temp_store", [], |r| r.get(0)).unwrap();
        assert_eq!(store, 2, "2 is MEMORY");
        drop(c);
        let _ = std::fs::remove_dir_all(dir);
    }
}
