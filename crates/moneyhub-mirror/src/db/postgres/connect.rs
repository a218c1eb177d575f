//! Connecting to PostgreSQL: the driver's and TLS configuration from a URL, the pools, and
//! errors (the driver's, the pool's, TLS hints).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;

use crate::db::tls;
use crate::error::{DriverError, Error, Result};

#[doc(hidden)]
impl From<tokio_postgres::Error> for Error {
    /// The server's message and SQLSTATE when it sent one (the driver prints "db error"
    /// alone), else the driver's error and its causes. Unavailable: a closed or lost
    /// connection, a connection exception (SQLSTATE class 08) or a server shutting down
    /// (57P01-57P03).
    fn from(e: tokio_postgres::Error) -> Self {
        let message = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => {
                let mut s = e.to_string();
                let mut cur = std::error::Error::source(&e);
                while let Some(c) = cur {
                    s.push_str(": ");
                    s.push_str(&c.to_string());
                    cur = c.source();
                }
                s
            }
        };
        let code = e.code().map(SqlState::code);
        let unavailable = e.is_closed()
            || code.is_some_and(|c| c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03"))
            || (e.as_db_error().is_none()
                && std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()));
        let unique = e.code() == Some(&SqlState::UNIQUE_VIOLATION);
        Error::Postgres(DriverError::new(message, unavailable, unique, Some(Box::new(e))))
    }
}

/// Adds a hint about TLS to a connection error that TLS explains: a certificate that failed
/// verification, or a server that refuses unencrypted connections.
pub(super) fn with_tls_hint(e: Error, mode: tls::SslMode) -> Error {
    let Error::Postgres(driver) = &e else { return e };
    let text = driver.message().to_owned();
    let lower = text.to_ascii_lowercase();
    let mode = mode.as_str();
    let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
        Some(format!(
            "the server's TLS certificate was not accepted with sslmode={mode}: check sslrootcert (the CA \
             that signed it) and that the URL's host is a name the certificate holds (verify-full)"
        ))
    } else if lower.contains("no encryption") || lower.contains("ssl off") {
        Some(format!(
            "the server refuses unencrypted connections (sslmode={mode}): use sslmode=require, verify-ca \
             or verify-full"
        ))
    } else if lower.contains("server does not support tls") || lower.contains("does not support ssl") {
        Some(format!(
            "the server does not offer TLS, which sslmode={mode} requires: enable ssl on the server, or \
             use sslmode=prefer"
        ))
    } else {
        None
    };
    match hint {
        Some(hint) => Error::PostgresTls { message: format!("{text} ({hint})") },
        None => e,
    }
}

/// The driver's configuration, the TLS connector's configuration and our own parameters of a
/// URL (after `schema` was taken out).
pub(super) fn configure(
    url: &str,
) -> Result<(tokio_postgres::Config, Option<rustls::ClientConfig>, tls::Params)> {
    let bad = |message: String| Error::DbUrl { url: crate::db::redact(url), message };
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
    let (driver_url, params) = tls::split(&parsed).map_err(bad)?;
    let mut config: tokio_postgres::Config = driver_url.as_str().parse().map_err(|e| bad(format!("{e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("moneyhub-mirror");
    }
    config.ssl_mode(tls::driver_mode(params.tls.mode));
    let rustls = tls::client_config(&params.tls).map_err(bad)?;
    Ok((config, rustls, params))
}

/// The pool's connection manager, with TLS when configured.
pub(super) fn manager(config: tokio_postgres::Config, rustls: Option<&rustls::ClientConfig>) -> Manager {
    let mc = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    match rustls {
        Some(c) => Manager::from_config(config, tokio_postgres_rustls::MakeRustlsConnect::new(c.clone()), mc),
        None => Manager::from_config(config, tokio_postgres::NoTls, mc),
    }
}

/// A pool of at most `max_size` connections; a task waits at most `wait` for one.
pub(super) fn pool(manager: Manager, max_size: usize, wait: Duration, connect: Duration) -> Result<Pool> {
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(wait))
        // Opening includes the TLS handshake and authentication: the driver's own connect
        // timeout bounds the TCP part, this the whole.
        .create_timeout(Some(connect.saturating_mul(2)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Invalid(format!("PostgreSQL pool: {e}")))
}

/// A pool error as this crate's error: the server's or driver's error when there is one,
/// else what the pool could not do.
pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(pg) => pg.into(),
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            Error::unavailable("timed out waiting for a free PostgreSQL connection (pool_timeout)")
        }
        PoolError::Timeout(_) => Error::unavailable("timed out connecting to PostgreSQL"),
        other => Error::Unavailable(DriverError::new(
            format!("PostgreSQL pool: {other}"),
            true,
            false,
            Some(Box::new(other)),
        )),
    }
}
