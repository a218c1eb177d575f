//! The request log: every request the sandbox answered, for tests to assert on (how many
//! token requests, whether a POST was sent twice, which raw paths a client used).

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How many entries are kept (oldest dropped first).
pub const CAPACITY: usize = 200_000;

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
}

/// A note a handler attaches to its response for the log (a response extension).
#[derive(Debug, Clone)]
pub struct LogNote(pub String);

/// The log.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<(u64, VecDeque<LogEntry>)>,
}

impl RequestLog {
    /// Appends an entry, assigning its sequence number.
    pub fn push(&self, mut e: LogEntry) {
        let mut g = self.inner.lock();
        g.0 += 1;
        e.seq = g.0;
        if g.1.len() >= CAPACITY {
            g.1.pop_front();
        }
        g.1.push_back(e);
    }

    /// Entries with `seq > after`, at most `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Vec<LogEntry> {
        let g = self.inner.lock();
        g.1.iter().filter(|e| e.seq > after).take(limit).cloned().collect()
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().0
    }

    /// Forgets every entry (sequence numbers keep counting).
    pub fn clear(&self) {
        self.inner.lock().1.clear();
    }
}
