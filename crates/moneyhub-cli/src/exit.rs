//! Exit codes and how failures are reported: one clear line on stderr, never a panic or a
//! backtrace.

/// Success.
pub const OK: i32 = 0;
/// Bad usage or invalid input (clap uses 2 too).
pub const USAGE: i32 = 2;
/// The API answered with an error.
#[allow(dead_code)]
pub const API: i32 = 3;
/// Authentication failed.
#[allow(dead_code)]
pub const AUTH: i32 = 4;
/// Refused by the sync guard or rate limited.
#[allow(dead_code)]
pub const GUARD: i32 = 5;
/// Anything else (I/O, runtime).
pub const INTERNAL: i32 = 1;

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
    /// Prints the message and returns the exit code.
    pub fn report(self) -> i32 {
        eprintln!("moneyhub: {}", self.message);
        self.code
    }
}
