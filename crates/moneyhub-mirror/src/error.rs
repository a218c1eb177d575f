//! The crate's error type.
//!
//! Messages never contain secrets: database URLs are reported with their password replaced,
//! and Moneyhub errors come from the client crate, which never prints tokens or secrets.

use std::fmt;

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL could not be understood.
    #[error("invalid database URL {url}: {message}")]
    DbUrl {
        /// The URL with any password redacted.
        url: String,
        /// Why it was refused.
        message: String,
    },
    /// An SQLite error.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error.
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The schema could not be brought up to date.
    #[error("migration: {0}")]
    Migration(String),
    /// A Moneyhub API call failed.
    #[error("Moneyhub: {0}")]
    Moneyhub(#[from] moneyhub::Error),
    /// A stored value could not be read back (corrupt row, unexpected JSON).
    #[error("stored data: {0}")]
    Data(String),
    /// Reading or writing a file or socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A background task failed (panicked or was cancelled).
    #[error("background task: {0}")]
    Task(String),
    /// An invalid argument or configuration value.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// PostgreSQL errors print as "db error" alone; the server's message is the useful part.
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut cur = std::error::Error::source(e);
            while let Some(c) = cur {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cur = c.source();
            }
            s
        }
    }
}

impl Error {
    pub(crate) fn data(message: impl fmt::Display) -> Self {
        Error::Data(message.to_string())
    }

    pub(crate) fn task(e: impl fmt::Display) -> Self {
        Error::Task(e.to_string())
    }

    /// Whether this is a unique-constraint violation (an event applied a second time).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            }
            Error::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}
