//! The request log: every request the sandbox answered, for tests to assert on (how many
//! token requests, whether a POST was sent twice, which raw paths a client used).
//!
//! Bounded by bytes as well as by count, because its text comes from anyone who can reach
//! the sandbox: a path or query is kept up to [`MAX_FIELD_BYTES`] (longer ones are cut and
//! end with [`TRUNCATED_MARK`], and the entry says `truncated: true`), a method up to 16
//! bytes, a note up to 1 KiB, and the whole log up to [`MAX_BYTES`] (oldest entries dropped
//! first). The control token given as `?token=` is never kept: its value is logged as
//! `[redacted]`.

use std::borrow::Cow;
use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How many entries are kept (oldest dropped first).
pub const CAPACITY: usize = 200_000;

/// The most bytes the log holds, counting each entry's text and its fixed size (oldest
/// entries dropped first): 48 MiB.
pub const MAX_BYTES: usize = 48 * 1024 * 1024;

/// The longest path or query kept, in bytes.
pub const MAX_FIELD_BYTES: usize = 2048;

/// What ends a path, query or note that was cut.
pub const TRUNCATED_MARK: &str = "...[truncated]";

const MAX_METHOD_BYTES: usize = 16;
const MAX_NOTE_BYTES: usize = 1024;

/// `s` cut to at most `max` bytes (at a character boundary) and marked with
/// [`TRUNCATED_MARK`] when it was longer.
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max.saturating_sub(TRUNCATED_MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{TRUNCATED_MARK}", &s[..end]))
}

/// A query string with the value of every `token` parameter (the dashboard's control token,
/// right or wrong) replaced by `[redacted]`.
pub fn redact_query(query: &str) -> Cow<'_, str> {
    let is_token = |pair: &str| {
        let key = pair.split('=').next().unwrap_or("");
        key.eq_ignore_ascii_case("token") || key.eq_ignore_ascii_case("%74oken") || decoded_is_token(key)
    };
    if !query.split('&').any(is_token) {
        return Cow::Borrowed(query);
    }
    let pairs: Vec<&str> =
        query.split('&').map(|pair| if is_token(pair) { "token=[redacted]" } else { pair }).collect();
    Cow::Owned(pairs.join("&"))
}

/// Whether a percent-encoded (or `+`-encoded) key decodes to `token`.
fn decoded_is_token(key: &str) -> bool {
    key.contains('%')
        && form_urlencoded::parse(format!("{key}=").as_bytes())
            .next()
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("token"))
}

/// One request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Sequence number (starts at 1, never reused).
    pub seq: u64,
    /// Virtual time it arrived (RFC 3339).
    pub at: String,
    /// Method.
    pub method: String,
    /// Path as received (not decoded).
    pub path: String,
    /// Raw query string, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Response status (0 when the connection was dropped on purpose).
    pub status: u16,
    /// Time spent answering, microseconds.
    pub duration_us: u64,
    /// What the handler noted (grant type and subject for token requests, fault applied...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Whether the method, path, query or note was cut to fit the log's bounds (they then
    /// end with `TRUNCATED_MARK`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl LogEntry {
    /// Cuts the entry's text to the log's bounds and redacts `?token=`; sets
    /// [`LogEntry::truncated`] when anything was cut.
    pub fn bound(mut self) -> Self {
        let mut cut = false;
        let mut fit = |s: &mut String, max: usize| {
            if let Cow::Owned(o) = bounded(s, max) {
                *s = o;
                cut = true;
            }
        };
        fit(&mut self.method, MAX_METHOD_BYTES);
        fit(&mut self.path, MAX_FIELD_BYTES);
        if let Some(q) = &mut self.query {
            if let Cow::Owned(r) = redact_query(q) {
                *q = r;
            }
            fit(q, MAX_FIELD_BYTES);
        }
        if let Some(n) = &mut self.note {
            fit(n, MAX_NOTE_BYTES);
        }
        self.truncated |= cut;
        self
    }

    /// Bytes the entry holds (its text and its fixed size), as counted against `MAX_BYTES`.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<LogEntry>()
            + self.at.len()
            + self.method.len()
            + self.path.len()
            + self.query.as_ref().map_or(0, String::len)
            + self.note.as_ref().map_or(0, String::len)
    }
}

/// A note a handler attaches to its response for the log (a response extension).
#[derive(Debug, Clone)]
pub struct LogNote(pub String);

/// The log.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    bytes: usize,
    entries: VecDeque<LogEntry>,
}

impl RequestLog {
    /// Appends an entry (cut to the log's bounds, see [`LogEntry::bound`]), assigning its
    /// sequence number; drops the oldest entries beyond [`CAPACITY`] or [`MAX_BYTES`].
    pub fn push(&self, e: LogEntry) {
        let mut e = e.bound();
        let weight = e.weight();
        let mut g = self.inner.lock();
        g.seq += 1;
        e.seq = g.seq;
        while g.entries.len() >= CAPACITY || (g.bytes + weight > MAX_BYTES && !g.entries.is_empty()) {
            if let Some(old) = g.entries.pop_front() {
                g.bytes = g.bytes.saturating_sub(old.weight());
            }
        }
        g.bytes += weight;
        g.entries.push_back(e);
    }

    /// Bytes the log holds now (see [`LogEntry::weight`]).
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Entries with `seq > after`, at most `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Vec<LogEntry> {
        let g = self.inner.lock();
        let start = g.entries.partition_point(|e| e.seq <= after);
        g.entries.iter().skip(start).take(limit).cloned().collect()
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().seq
    }

    /// Forgets every entry (sequence numbers keep counting).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.entries.clear();
        g.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_values_are_redacted_whatever_their_spelling() {
        assert_eq!(redact_query("a=1&token=s3cret&b=2"), "a=1&token=[redacted]&b=2");
        assert_eq!(redact_query("TOKEN=x"), "token=[redacted]");
        assert_eq!(redact_query("%74oken=x&done=y"), "token=[redacted]&done=y");
        assert_eq!(redact_query("tok%65n=x"), "token=[redacted]");
        assert_eq!(redact_query("tokens=x"), "tokens=x");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_marked() {
        let s = "é".repeat(3000);
        let b = bounded(&s, MAX_FIELD_BYTES);
        assert!(b.len() <= MAX_FIELD_BYTES, "{}", b.len());
        assert!(b.ends_with(TRUNCATED_MARK));
        assert_eq!(bounded("short", 10), "short");
    }
}
