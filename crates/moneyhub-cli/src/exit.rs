//! Exit codes and how failures are reported: one clear line on stderr, never a panic or a
//! backtrace.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | anything unexpected (I/O, runtime) |
//! | 2 | bad usage or invalid input (the message names it) |
//! | 3 | the API answered with an error, or could not be reached |
//! | 4 | authentication failed |
//! | 5 | refused by the manual-sync guard or rate limited (the message says when it is allowed) |

use chrono::{DateTime, Utc};
use moneyhub::{Error, ErrorKind};

/// Success.
pub const OK: i32 = 0;
/// Anything else (I/O, runtime).
pub const INTERNAL: i32 = 1;
/// Bad usage or invalid input (clap uses 2 too).
pub const USAGE: i32 = 2;
/// The API answered with an error (or could not be reached).
pub const API: i32 = 3;
/// Authentication failed.
pub const AUTH: i32 = 4;
/// Refused by the sync guard or rate limited.
pub const GUARD: i32 = 5;

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: i32,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    /// Bad usage or input.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure { code: USAGE, message: message.into() }
    }

    /// Something unexpected.
    pub fn internal(message: impl Into<String>) -> Self {
        Failure { code: INTERNAL, message: message.into() }
    }

    /// An API failure.
    pub fn api(message: impl Into<String>) -> Self {
        Failure { code: API, message: message.into() }
    }

    /// Prints the message and returns the exit code. Whatever in it looks like a credential
    /// (`Bearer`/`Basic` values, JWTs, `password=…`-style pairs) is redacted first: a last line
    /// of defence for text that did not come through the client (which redacts its own).
    pub fn report(self) -> i32 {
        crate::output::warn(&format!("moneyhub: {}", moneyhub::redact_credentials(&self.message)));
        self.code
    }

    /// Maps a client error to an exit code and a message, with `now` (the client's clock) to
    /// turn a server's `retry after N s` into a time.
    pub fn from_client(e: &Error, now: DateTime<Utc>) -> Failure {
        let text = e.to_string();
        match e.kind() {
            ErrorKind::Config { .. } | ErrorKind::Validation { .. } => Failure { code: USAGE, message: text },
            ErrorKind::Guard(nb) => Failure {
                code: GUARD,
                message: format!("{text} (in {})", crate::output::until(now, nb.not_before)),
            },
            ErrorKind::Unauthorized(_) | ErrorKind::Auth { .. } => {
                Failure { code: AUTH, message: format!("authentication failed: {text}") }
            }
            ErrorKind::OAuth(o) => {
                if o.status == Some(429) {
                    Failure { code: GUARD, message: format!("rate limited: {text}") }
                } else if o.status.is_some_and(|s| s >= 500) {
                    Failure { code: API, message: text }
                } else {
                    Failure { code: AUTH, message: format!("authentication failed: {text}") }
                }
            }
            ErrorKind::Api(a) if a.status == 429 => {
                let message = match e.retry_after() {
                    Some(after) => {
                        let at = now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
                        format!(
                            "rate limited by Moneyhub: {text}; allowed again from {}",
                            moneyhub_types::time::format_timestamp(&at)
                        )
                    }
                    None => format!("rate limited by Moneyhub: {text}; try again later"),
                };
                Failure { code: GUARD, message }
            }
            ErrorKind::Api(a) if a.status == 401 => {
                Failure { code: AUTH, message: format!("authentication failed: {text}") }
            }
            ErrorKind::Api(a) if a.status == 403 => Failure {
                code: API,
                message: format!(
                    "{text} (forbidden: the client may lack a scope, or the consent has expired)"
                ),
            },
            ErrorKind::Transport { .. } | ErrorKind::Timeout { .. } => {
                // The root cause ("Connection refused (os error 111)"), never a URL.
                let mut root = None;
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    root = Some(s.to_string());
                    source = s.source();
                }
                let message = match root {
                    Some(r) if !r.contains("://") && !text.contains(&r) => format!("{text}: {r}"),
                    _ => text,
                };
                Failure { code: API, message }
            }
            _ => Failure { code: API, message: text },
        }
    }
}

/// The result type of commands.
pub type CmdResult<T = ()> = Result<T, Failure>;
