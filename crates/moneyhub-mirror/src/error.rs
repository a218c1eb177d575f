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
    #[cfg(feature = "sqlite")]
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error.
    #[cfg(feature = "postgres")]
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
    /// The database could not be reached in time (no free pooled connection, or connecting
    /// timed out).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Connecting to PostgreSQL failed for a reason its TLS settings explain: the message
    /// says what failed and which `sslmode`/`sslrootcert` change would fix it.
    #[error("PostgreSQL: {message}")]
    PostgresTls {
        /// The driver's error and a hint.
        message: String,
    },
}

/// PostgreSQL errors print as "db error" alone; the server's message is the useful part.
#[cfg(feature = "postgres")]
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
    /// Adds a hint about TLS to a connection error that TLS explains: a certificate that
    /// failed verification, or a server that refuses unencrypted connections.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_tls_hint(self, mode: crate::db::tls::SslMode) -> Self {
        let Error::Postgres(e) = &self else { return self };
        let text = pg_message(e);
        let lower = text.to_ascii_lowercase();
        let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
            Some(format!(
                "the server's TLS certificate was not accepted with sslmode={}: check sslrootcert (the CA that \
                 signed it) and that the URL's host is a name the certificate holds (verify-full)",
                mode.as_str()
            ))
        } else if lower.contains("no encryption") || lower.contains("ssl off") {
            Some(format!(
                "the server refuses unencrypted connections (sslmode={}): use sslmode=require, verify-ca or verify-full",
                mode.as_str()
            ))
        } else if lower.contains("server does not support tls") || lower.contains("does not support ssl") {
            Some(format!(
                "the server does not offer TLS, which sslmode={} requires: enable ssl on the server, or use sslmode=prefer",
                mode.as_str()
            ))
        } else {
            None
        };
        match hint {
            Some(hint) => Error::PostgresTls { message: format!("{text} ({hint})") },
            None => self,
        }
    }

    pub(crate) fn data(message: impl fmt::Display) -> Self {
        Error::Data(message.to_string())
    }

    pub(crate) fn task(e: impl fmt::Display) -> Self {
        Error::Task(e.to_string())
    }

    /// Whether this is a unique-constraint violation (an event applied a second time).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            #[cfg(feature = "sqlite")]
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            }
            #[cfg(feature = "postgres")]
            Error::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}
