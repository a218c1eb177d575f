//! The delivery log: one entry per attempt (and per event dropped on purpose), so tests can
//! check what reached the receiver, when, and how it went.
//!
//! Bounded by bytes as well as by count: a payload is kept as its JSON text up to
//! [`MAX_PAYLOAD_BYTES`] (a larger one is replaced by `{"truncated": true, "bytes": N}` and
//! the entry says `payloadTruncated: true`), the other texts up to 1 KiB each, and the whole
//! log up to [`MAX_BYTES`] (oldest entries dropped first).

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde_json::Value;

/// How many entries are kept (oldest dropped first), so a long-running sandbox stays bounded.
pub const CAPACITY: usize = 100_000;

/// The most bytes the log holds (payload text, other texts and each entry's fixed size;
/// oldest entries dropped first): 32 MiB.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

/// The largest payload kept whole, as JSON text: 512 KiB (a sync event's 6,000 ids fit).
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;

const MAX_TEXT_BYTES: usize = 1024;

pub use crate::kit::types::{Delivery, DeliveryOutcome as Outcome};

/// An entry as kept: the payload as JSON text (a `Value` can take ten times its text).
#[derive(Debug)]
struct Stored {
    entry: Delivery,
    payload: String,
}

impl Stored {
    fn weight(&self) -> usize {
        let e = &self.entry;
        std::mem::size_of::<Stored>()
            + self.payload.len()
            + e.webhook_id.len()
            + e.event_type.len()
            + e.user_id.len()
            + e.url.as_ref().map_or(0, String::len)
            + e.error.as_ref().map_or(0, String::len)
    }

    fn delivery(&self) -> Delivery {
        let mut d = self.entry.clone();
        d.payload = serde_json::from_str(&self.payload).unwrap_or(Value::Null);
        d
    }
}

/// The bounded log.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    bytes: usize,
    entries: VecDeque<Stored>,
}

fn fit(s: &mut String) -> bool {
    match crate::request_log::bounded(s, MAX_TEXT_BYTES) {
        std::borrow::Cow::Owned(o) => {
            *s = o;
            true
        }
        std::borrow::Cow::Borrowed(_) => false,
    }
}

impl DeliveryLog {
    /// Appends an entry, assigning its sequence number and cutting it to the log's bounds;
    /// returns the entry as stored.
    pub fn push(&self, mut d: Delivery) -> Delivery {
        let mut cut = fit(&mut d.webhook_id) | fit(&mut d.event_type) | fit(&mut d.user_id);
        for s in [&mut d.url, &mut d.error].into_iter().flatten() {
            cut |= fit(s);
        }
        let mut payload = serde_json::to_string(&d.payload).unwrap_or_else(|_| "null".into());
        if payload.len() > MAX_PAYLOAD_BYTES {
            d.payload = serde_json::json!({"truncated": true, "bytes": payload.len()});
            payload = d.payload.to_string();
            cut = true;
        }
        d.payload_truncated |= cut;
        let out = d.clone();
        d.payload = Value::Null;
        let mut stored = Stored { entry: d, payload };
        let weight = stored.weight();
        let mut g = self.inner.lock();
        g.seq += 1;
        make_room(&mut g, weight);
        let seq = g.seq;
        stored.entry.seq = seq;
        g.bytes += weight;
        g.entries.push_back(stored);
        Delivery { seq, ..out }
    }

    /// Entries with `seq > after`, at most `limit`, oldest first.
    pub fn since(&self, after: u64, limit: usize) -> Vec<Delivery> {
        let g = self.inner.lock();
        // Entries are in seq order: skip straight past the old ones.
        let start = g.entries.partition_point(|d| d.entry.seq <= after);
        g.entries.iter().skip(start).take(limit).map(Stored::delivery).collect()
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().seq
    }

    /// Bytes the log holds now (as counted against [`MAX_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Forgets every entry (sequence numbers keep counting).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.entries.clear();
        g.bytes = 0;
    }
}

/// Drops the oldest entries until one of `weight` bytes fits.
fn make_room(g: &mut Inner, weight: usize) {
    while g.entries.len() >= CAPACITY || (g.bytes + weight > MAX_BYTES && !g.entries.is_empty()) {
        if let Some(old) = g.entries.pop_front() {
            g.bytes = g.bytes.saturating_sub(old.weight());
        }
    }
}
