//! The guard's records on SQLite (one JSON record per connection).

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::db::store::GuardChange;
use crate::error::Result;

/// A connection's record.
const LOAD: &str = "SELECT record FROM mirror_guard WHERE connection_id = ?1";

/// Replaces a connection's record.
const SAVE: &str = "INSERT INTO mirror_guard (connection_id, record, updated_ms) VALUES (?1, ?2, ?3)
     ON CONFLICT (connection_id) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms";

/// Deletes a connection's record.
const DELETE: &str = "DELETE FROM mirror_guard WHERE connection_id = ?1";

/// The record of a connection, if any.
pub(super) fn load(c: &Connection, connection_id: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached(LOAD)?.query_row([connection_id], |r| r.get(0)).optional()?)
}

/// Reads and changes a record inside the caller's write transaction.
pub(super) fn update(tx: &Transaction<'_>, connection_id: &str, change: GuardChange, now: i64) -> Result<()> {
    let current = tx.prepare_cached(LOAD)?.query_row([connection_id], |r| r.get(0)).optional()?;
    match change(current) {
        None => {}
        Some(Some(r)) => {
            tx.prepare_cached(SAVE)?.execute(params![connection_id, r, now])?;
        }
        Some(None) => {
            tx.prepare_cached(DELETE)?.execute([connection_id])?;
        }
    }
    Ok(())
}
