//! The crate's single error type.

/// Everything that can go wrong in this crate: parsing an id, decoding a JSON body, reading a
/// webhook payload, mapping a webhook URN or encoding a value.
///
/// Every variant names what was wrong and carries the offending value or the JSON path of the
/// field that failed, so the `Display` output alone is enough for a log line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier did not match its documented format.
    #[error("invalid {kind} {}: {reason}", Shown(value))]
    InvalidId {
        /// The id type, e.g. `"TransactionId"`.
        kind: &'static str,
        /// The rejected input, verbatim.
        value: String,
        /// What was wrong with it.
        reason: String,
    },

    /// A JSON document could not be decoded into the requested type.
    ///
    /// `path` is the JSON path of the field that failed, e.g. `data[3].amount.value`
    /// (`.` for the document root).
    #[error("{path}: {source}")]
    Decode {
        /// Path of the failing field.
        path: String,
        /// The underlying serde_json error (its message includes line and column).
        #[source]
        source: serde_json::Error,
    },

    /// The payload of a known webhook event did not have the documented shape.
    #[error("invalid `{event_type}` webhook payload at {path}: {source}")]
    WebhookPayload {
        /// The event type (primary spelling for known events).
        event_type: String,
        /// Path of the failing field within the envelope, e.g. `payload.syncId` (`payload` for
        /// the payload itself).
        path: String,
        /// The underlying serde_json error.
        #[source]
        source: serde_json::Error,
    },

    /// A Security Event Token event URN was not a Moneyhub event URN.
    #[error(
        "invalid webhook event URN {}: expected `urn:com:moneyhub:events:<kebab-case-event>`",
        Shown(urn)
    )]
    InvalidEventUrn {
        /// The rejected URN, verbatim.
        urn: String,
    },

    /// A value could not be encoded as JSON.
    #[error("failed to encode JSON: {source}")]
    Encode {
        /// The underlying serde_json error.
        #[source]
        source: serde_json::Error,
    },
}

/// Debug-quotes a user-supplied value for an error message, shortening very long input so that a
/// hostile or accidental megabyte-sized value cannot flood the logs.
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MAX_CHARS: usize = 100;
        match self.0.char_indices().nth(MAX_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes in total)", &self.0[..cut], self.0.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shortened() {
        let err = Error::InvalidId { kind: "UserId", value: "x".repeat(1000), reason: "too long".into() };
        let text = err.to_string();
        assert!(text.len() < 200, "{text}");
        assert!(text.contains("1000 bytes in total"), "{text}");
    }
}
