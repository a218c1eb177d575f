//! The delivery log: one entry per attempt (and per event dropped on purpose), so tests can
//! check what reached the receiver, when, and how it went.

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

/// How many entries are kept (oldest dropped first), so a long-running sandbox stays bounded.
pub const CAPACITY: usize = 100_000;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The receiver answered 2xx within 5 s.
    Delivered,
    /// Anything else: non-2xx, timeout, connection error, signing error. Never retried.
    Failed,
    /// Chaos (or a missing target) discarded the event: nothing was sent.
    Dropped,
    /// Chaos sent an extra copy and the receiver accepted it (a failed extra copy is logged
    /// as `failed` with `duplicate: true`).
    Duplicate,
}

/// One attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Sequence number (starts at 1, never reused).
    pub seq: u64,
    /// The webhook id (`id` / `jti`).
    pub webhook_id: String,
    /// `eventType`.
    pub event_type: String,
    /// `userId`.
    pub user_id: String,
    /// Where it went (`null` when there was no target).
    pub url: Option<String>,
    /// `json` or `jwt` (`null` when there was no target).
    pub format: Option<&'static str>,
    /// Virtual time the attempt started (RFC 3339).
    pub at: String,
    /// The receiver's HTTP status, if it answered in time.
    pub status: Option<u16>,
    /// Why it failed (timeout, connection error), if it did.
    pub error: Option<String>,
    /// Real time the attempt took, milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether this is chaos's extra copy of an event already sent.
    pub duplicate: bool,
    /// The event payload (as sent).
    pub payload: Value,
}

/// The bounded log.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    inner: Mutex<(u64, VecDeque<Delivery>)>,
}

impl DeliveryLog {
    /// Appends an entry, assigning its sequence number; returns the entry as stored.
    pub fn push(&self, mut d: Delivery) -> Delivery {
        let mut g = self.inner.lock();
        g.0 += 1;
        d.seq = g.0;
        if g.1.len() >= CAPACITY {
            g.1.pop_front();
        }
        g.1.push_back(d.clone());
        d
    }

    /// Entries with `seq > after`, at most `limit`, oldest first.
    pub fn since(&self, after: u64, limit: usize) -> Vec<Delivery> {
        let g = self.inner.lock();
        // Entries are in seq order: skip straight past the old ones.
        let start = g.1.partition_point(|d| d.seq <= after);
        g.1.iter().skip(start).take(limit).cloned().collect()
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
