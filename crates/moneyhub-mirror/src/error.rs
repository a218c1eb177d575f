//! The crate's error type.
//!
//! Messages never contain secrets: database URLs are reported with their password replaced,
//! and Moneyhub errors come from the client crate, which never prints tokens or secrets.
//!
//! Database drivers stay behind this type: a driver's error is carried as a [`DriverError`]
//! (its message, what it means for the caller, and the driver's error as the
//! [`source`](std::error::Error::source), so the chain is kept), and callers ask
//! [`Error::is_unavailable`], [`Error::is_unique_violation`] or [`Error::is_database`] instead
//! of matching driver types. (The `From` conversions from driver errors exist for `?` inside
//! the backends; they are hidden from the docs and not meant to be used outside this crate.)

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
    /// An error of the SQLite backend.
    #[error("SQLite: {0}")]
    Sqlite(#[source] DriverError),
    /// An error of the PostgreSQL backend (the server's message and SQLSTATE when it sent one).
    #[error("PostgreSQL: {0}")]
    Postgres(#[source] DriverError),
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
    Unavailable(#[source] DriverError),
    /// Connecting to PostgreSQL failed for a reason its TLS settings explain: the message
    /// says what failed and which `sslmode`/`sslrootcert` change would fix it.
    #[error("PostgreSQL: {message}")]
    PostgresTls {
        /// The driver's error and a hint.
        message: String,
    },
}

/// A database driver's error, opaque: its message, what it means (see
/// [`Error::is_unavailable`] and [`Error::is_unique_violation`]) and, as its
/// [`source`](std::error::Error::source), the driver's own error.
pub struct DriverError {
    message: String,
    unavailable: bool,
    unique_violation: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DriverError {
    /// A driver error with what it means; `source` is the driver's own error, if any.
    pub(crate) fn new(
        message: impl Into<String>,
        unavailable: bool,
        unique_violation: bool,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DriverError { message: message.into(), unavailable, unique_violation, source }
    }

    /// What the driver said.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverError")
            .field("message", &self.message)
            .field("unavailable", &self.unavailable)
            .field("unique_violation", &self.unique_violation)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    pub(crate) fn data(message: impl fmt::Display) -> Self {
        Error::Data(message.to_string())
    }

    pub(crate) fn task(e: impl fmt::Display) -> Self {
        Error::Task(e.to_string())
    }

    /// The database could not be reached in time for a reason that has no driver error
    /// behind it (a pool's wait timed out, say).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable(DriverError::new(message, true, false, None))
    }

    /// Whether this is a unique-constraint violation (an event applied a second time).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Sqlite(d) | Error::Postgres(d) if d.unique_violation)
    }

    /// Whether the database could not be reached or did not answer in time (no free pooled
    /// connection, a connection refused or lost, a lock not granted in time): the operation
    /// may succeed later, unchanged.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Sqlite(d) | Error::Postgres(d) => d.unavailable,
            _ => false,
        }
    }

    /// Whether the database (either backend) failed, reachable or not: a driver error, the
    /// schema's migration, a database that could not be reached, a TLS set-up it refused.
    pub fn is_database(&self) -> bool {
        matches!(
            self,
            Error::Sqlite(_)
                | Error::Postgres(_)
                | Error::Unavailable(_)
                | Error::Migration(_)
                | Error::PostgresTls { .. }
        )
    }
}
