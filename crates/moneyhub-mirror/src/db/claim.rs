//! What both backends' claimed users (`ClaimedUser` impls) decide the same way, written once:
//! which of a user's pending events a claim takes, what finishing records (one ledger row
//! per event, every event marked applied), and what a failed attempt records (attempts,
//! back-off, parking). The backends only turn these plans into their own SQL.

use super::rows::InboxEvent;
use super::{clip, state};
use crate::error::{Error, Result};

/// Longest error message kept on an event (bytes; longer ones are clipped).
pub(crate) const MAX_ERROR_BYTES: usize = 2000;

/// How claims are bounded and backed off: set by the mirror from its configuration
/// ([`crate::MirrorConfig`]), used by every backend the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimPolicy {
    /// First retry delay after a failed attempt (ms); doubles per consecutive attempt.
    pub retry_base_ms: i64,
    /// Longest retry delay (ms).
    pub retry_cap_ms: i64,
    /// Most bytes of envelopes one claim takes (at least one event is always taken):
    /// bounds the ids one attempt fetches from Moneyhub. A signed body counts its payload's
    /// decoded size ([`InboxEvent::envelope_len`]), not its signature and base64.
    pub max_claim_bytes: usize,
}

impl Default for ClaimPolicy {
    fn default() -> Self {
        ClaimPolicy { retry_base_ms: 1000, retry_cap_ms: 300_000, max_claim_bytes: 64 * 1024 }
    }
}

impl ClaimPolicy {
    /// The delay before attempt `attempts + 1` when `attempts` consecutive attempts were
    /// made (the first waits the base): base × 2^(attempts − 1), at most the cap.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        let shift = attempts.saturating_sub(1).clamp(0, 16) as u32;
        self.retry_base_ms.max(0).saturating_mul(1i64 << shift).min(self.retry_cap_ms.max(0))
    }
}

impl ClaimPolicy {
    /// The attempt a claim of `events` (as trimmed by [`take_for_claim`]) is, counted on its
    /// first event, and when the user is due again if it fails: now plus that attempt's
    /// back-off. Recorded before any work is spent on the claim.
    pub(crate) fn next_attempt(&self, events: &[InboxEvent], now_ms: i64) -> (i64, i64) {
        let attempt = events.first().map_or(0, |e| e.attempts).saturating_add(1);
        (attempt, now_ms.saturating_add(self.backoff_ms(attempt)))
    }
}

/// Trims freshly read pending events (in arrival order) to what one claim takes: an event
/// that failed before is retried alone, so one bad event cannot hold others back; otherwise
/// events are taken while their envelopes fit in `max_bytes` (the first always).
pub(crate) fn take_for_claim(events: &mut Vec<InboxEvent>, max_bytes: usize) {
    if events.first().is_some_and(|e| e.attempts > 0) {
        events.truncate(1);
        return;
    }
    let mut bytes = 0usize;
    let mut keep = 0;
    for e in events.iter() {
        bytes = bytes.saturating_add(e.envelope_len());
        if keep > 0 && bytes > max_bytes {
            break;
        }
        keep += 1;
    }
    events.truncate(keep);
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

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn event(seq: i64, body: Vec<u8>, signed: bool) -> InboxEvent {
        InboxEvent {
            seq,
            webhook_id: format!("w{seq}"),
            user_id: "u".into(),
            event_type: "newTransactions".into(),
            body,
            signed,
            attempts: 0,
        }
    }

    /// A compact JWS around `payload`, with an RS256-sized signature.
    fn jws(payload: &[u8]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            b64.encode(br#"{"alg":"RS256","kid":"k"}"#),
            b64.encode(payload),
            b64.encode([7u8; 256])
        )
        .into_bytes()
    }

    #[test]
    fn a_signed_event_counts_its_envelope_not_its_signature_and_base64() {
        for len in [0usize, 1, 2, 3, 4, 5, 399, 400, 401] {
            let payload = vec![b'x'; len];
            assert_eq!(event(1, jws(&payload), true).envelope_len(), len, "payload of {len} bytes");
        }
        assert_eq!(event(1, b"{\"id\":1}".to_vec(), false).envelope_len(), 8);
        // Two 400-byte envelopes fit a 1,000-byte claim whether signed or not (each signed
        // body is about 930 bytes).
        let envelope = vec![b'x'; 400];
        let mut signed = vec![event(1, jws(&envelope), true), event(2, jws(&envelope), true)];
        assert!(signed[0].body.len() > 900);
        take_for_claim(&mut signed, 1000);
        assert_eq!(signed.len(), 2);
        let mut plain = vec![
            event(1, envelope.clone(), false),
            event(2, envelope.clone(), false),
            event(3, envelope, false),
        ];
        take_for_claim(&mut plain, 1000);
        assert_eq!(plain.len(), 2, "the third does not fit");
    }
}
