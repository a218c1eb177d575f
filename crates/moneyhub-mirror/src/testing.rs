//! Helpers for this crate's tests and benchmarks (the `test-util` feature): reaching under
//! the storage contract to measure the database's own ceiling or to clean up after a test.
//! Not a stable API.

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteConnection;

use crate::db::TxRow;
use crate::error::Result;

#[cfg(feature = "sqlite")]
mod sqlite {
    /// A plain SQLite connection to a mirror file, with the processor's settings.
    pub struct SqliteConnection(pub(crate) rusqlite::Connection);

    impl std::fmt::Debug for SqliteConnection {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("SqliteConnection")
        }
    }
}

/// Opens a plain connection to the SQLite mirror file at `path` (migrated if needed).
#[cfg(feature = "sqlite")]
pub fn open_sqlite(path: &std::path::Path) -> Result<SqliteConnection> {
    crate::db::sqlite::open_raw(path).map(SqliteConnection)
}

/// Upserts rows into an SQLite mirror with the mirror's own statement, in one transaction.
#[cfg(feature = "sqlite")]
pub fn sqlite_upsert(conn: &mut SqliteConnection, rows: &[TxRow]) -> Result<()> {
    crate::db::sqlite::raw_upsert(&mut conn.0, rows)
}

/// Upserts rows into a PostgreSQL mirror with the mirror's own batch statement, in one
/// transaction on a connection of its own (an error for an SQLite `db`).
#[cfg(feature = "postgres")]
pub async fn postgres_upsert(db: &crate::Db, rows: &[TxRow]) -> Result<()> {
    crate::db::postgres_upsert(db, rows).await
}

/// PostgreSQL's plans of the statements that read a page of stored transactions (one user's,
/// and every user's after a cursor), other plans discouraged: a test checks each is a
/// range of the table's key, in the key's order (no sort).
#[cfg(feature = "postgres")]
pub async fn postgres_page_plans(db: &crate::Db) -> Result<Vec<String>> {
    crate::db::postgres_page_plans(db).await
}

/// Drops a PostgreSQL schema and everything in it (test and bench clean-up).
#[cfg(feature = "postgres")]
pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    crate::db::postgres::drop_schema(url, schema).await
}

/// The SQL that brings an empty SQLite database to schema `version` (migrations 1 to
/// `version`, recorded as the mirror records them): a database as an older release left it,
/// for a test of the upgrade.
#[cfg(feature = "sqlite")]
pub fn sqlite_schema_at(version: i64) -> String {
    schema_at(crate::db::sqlite::CREATE_MIGRATIONS, crate::db::migrations::SQLITE, version)
}

/// [`sqlite_schema_at`] for PostgreSQL (run it in the schema the mirror's URL names).
#[cfg(feature = "postgres")]
pub fn postgres_schema_at(version: i64) -> String {
    schema_at(crate::db::postgres::CREATE_MIGRATIONS, crate::db::migrations::POSTGRES, version)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn schema_at(create: &str, list: &[crate::db::migrations::Migration], version: i64) -> String {
    let mut sql = format!("{create};\n");
    for (v, name, text) in list.iter().filter(|m| m.0 <= version) {
        sql.push_str(text);
        sql.push_str(&format!(
            "\nINSERT INTO mirror_migrations (version, name, applied_ms) VALUES ({v}, '{name}', 0);\n"
        ));
    }
    sql
}
