//! [`Secret`]: a string that never shows itself in `Debug` or `Display`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string: a client secret, an access token, a PKCE code verifier.
///
/// `Debug` and `Display` print `[redacted]`; the value is only reachable through
/// [`Secret::expose_secret`], so it cannot end up in a log line by accident. Serde writes the
/// value itself (an [`AuthorizationRequest`](crate::AuthorizationRequest) must be storable).
///
/// ```
/// let s = moneyhub::Secret::new("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
/// assert_eq!(s.expose_secret(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Keep it out of logs.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison (for `state` and similar values).
    pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
        a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
