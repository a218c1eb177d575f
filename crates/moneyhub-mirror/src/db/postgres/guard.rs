//! The guard's records on PostgreSQL (one JSON record per connection).

use super::{now_ms, PgConn};
use crate::db::store::GuardChange;
use crate::error::Result;

/// Serialises updates of one record across processes, the first one included (when there is
/// no row to lock yet): a transaction-scoped advisory lock per connection id.
const LOCK: &str = "SELECT pg_advisory_xact_lock(7140, hashtext($1))";

/// A connection's record.
const LOAD: &str = "SELECT record FROM mirror_guard WHERE connection_id = $1";

/// Replaces a connection's record.
const SAVE: &str = "INSERT INTO mirror_guard (connection_id, record, updated_ms) VALUES ($1, $2, $3)
     ON CONFLICT (connection_id) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms";

/// Deletes a connection's record.
const DELETE: &str = "DELETE FROM mirror_guard WHERE connection_id = $1";

/// The record of a connection, if any.
pub(super) async fn load(c: &mut PgConn, connection_id: &str) -> Result<Option<String>> {
    c.value(LOAD, &[&connection_id]).await
}

/// Reads and changes a record inside the caller's transaction.
pub(super) async fn update(c: &mut PgConn, connection_id: &str, change: GuardChange) -> Result<()> {
    c.query(LOCK, &[&connection_id]).await?;
    let current: Option<String> = c.value(LOAD, &[&connection_id]).await?;
    match change(current) {
        None => {}
        Some(Some(r)) => {
            c.execute(SAVE, &[&connection_id, &r, &now_ms()]).await?;
        }
        Some(None) => {
            c.execute(DELETE, &[&connection_id]).await?;
        }
    }
    Ok(())
}
