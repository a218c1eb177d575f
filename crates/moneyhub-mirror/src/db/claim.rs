//! What both backends' claimed users (`ClaimedUser` impls) decide the same way, written once:
//! which of a user's pending events a claim takes, what finishing records (one ledger row
//! per event, every event marked applied), and what a failed attempt records (attempts,
//! back-off, parking). The backends only turn these plans into their own SQL.

use super::rows::InboxEvent;
use super::{clip, state};
use crate::error::{Error, Result};

/// Longest error message kept on an event (bytes; longer ones are clipped).
pub(crate) const MAX_ERROR_BYTES: usize = 2000;

/// Trims freshly read pending events (in arrival order) to what one claim takes: an event
/// that failed before is retried alone, so one bad event cannot hold others back.
pub(crate) fn take_for_claim(events: &mut Vec<InboxEvent>) {
    if events.first().is_some_and(|e| e.attempts > 0) {
        events.truncate(1);
    }
}

/// A claim's events as the finishing transaction records them: the ledger rows
/// (`webhook_id`, `seq`) and the inbox rows marked applied.
pub(crate) struct Finished {
    /// The events' arrival numbers.
    pub seqs: Vec<i64>,
    /// Their delivery ids (the ledger's key), in the same order.
    pub webhook_ids: Vec<String>,
    /// Who applied them.
    pub worker: String,
    /// When.
    pub now_ms: i64,
    /// The state the inbox rows take.
    pub applied: i32,
}

impl Finished {
    /// The plan for `events`.
    pub(crate) fn new(events: &[InboxEvent], worker: &str, now_ms: i64) -> Finished {
        Finished {
            seqs: events.iter().map(|e| e.seq).collect(),
            webhook_ids: events.iter().map(|e| e.webhook_id.clone()).collect(),
            worker: worker.to_owned(),
            now_ms,
            applied: state::APPLIED,
        }
    }

    /// Checks that every claimed event was still pending when it was marked applied
    /// (`marked` rows changed): anything else means the claim was not exclusive, and the
    /// whole transaction must roll back.
    pub(crate) fn check_marked(&self, marked: u64) -> Result<()> {
        let expected = self.seqs.len() as u64;
        if marked == expected {
            return Ok(());
        }
        Err(Error::data(format!(
            "{} of {} claimed events were no longer pending",
            expected.saturating_sub(marked),
            expected
        )))
    }
}

/// A failed attempt as both backends record it, in one transaction with the claim's release:
/// the events' attempts grow (parked at `max_attempts`), the user waits until `until_ms`.
pub(crate) struct Failed {
    /// The claimed events' arrival numbers.
    pub seqs: Vec<i64>,
    /// The error, clipped to [`MAX_ERROR_BYTES`].
    pub error: String,
    /// Attempts at which an event is parked.
    pub max_attempts: i32,
    /// The state a parked event takes.
    pub parked: i32,
    /// When the user may be claimed again (ms since the epoch, saturating).
    pub until_ms: i64,
}

impl Failed {
    /// The plan for a failed attempt on `events`.
    pub(crate) fn new(
        events: &[InboxEvent],
        error: &str,
        now_ms: i64,
        retry_after_ms: i64,
        max_attempts: u32,
    ) -> Failed {
        Failed {
            seqs: events.iter().map(|e| e.seq).collect(),
            error: clip(error, MAX_ERROR_BYTES),
            max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
            parked: state::FAILED,
            until_ms: now_ms.saturating_add(retry_after_ms),
        }
    }
}
