//! Domain events: what happened in the store that a webhook will announce.
//!
//! The store only records events; delivery (format, signing, timeouts, the delivery log) is
//! the webhook module's business. Transaction events are per account and carry at most
//! [`MAX_IDS_PER_EVENT`] ids, as Moneyhub's are.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::clock::iso;

/// Moneyhub splits transaction webhooks with more ids than this.
pub const MAX_IDS_PER_EVENT: usize = 6000;

/// Something to announce to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The webhook id.
    pub id: Uuid,
    /// The user it concerns.
    pub user_id: String,
    /// `eventType` (camelCase).
    pub event_type: &'static str,
    /// Its payload.
    pub payload: Value,
    /// When it happened (virtual time).
    pub at: DateTime<Utc>,
}

/// The four transaction event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxChange {
    /// `newTransactions`.
    New,
    /// `updatedTransactions`.
    Updated,
    /// `deletedTransactions`.
    Deleted,
    /// `restoredTransactions`.
    Restored,
}

impl TxChange {
    /// The event type.
    pub fn event_type(self) -> &'static str {
        match self {
            TxChange::New => "newTransactions",
            TxChange::Updated => "updatedTransactions",
            TxChange::Deleted => "deletedTransactions",
            TxChange::Restored => "restoredTransactions",
        }
    }
}

/// Transaction changes of one fetch, per account, to become events.
#[derive(Debug, Default)]
pub struct TxChanges {
    /// (account, kind, ids)
    pub lists: Vec<(Uuid, TxChange, Vec<Uuid>)>,
}

impl TxChanges {
    /// Records one change.
    pub fn push(&mut self, account: Uuid, kind: TxChange, id: Uuid) {
        if let Some((_, _, ids)) = self.lists.iter_mut().find(|(a, k, _)| *a == account && *k == kind) {
            ids.push(id);
        } else {
            self.lists.push((account, kind, vec![id]));
        }
    }

    /// Total number of ids.
    pub fn len(&self) -> usize {
        self.lists.iter().map(|(_, _, ids)| ids.len()).sum()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Count of one kind.
    pub fn count(&self, kind: TxChange) -> usize {
        self.lists.iter().filter(|(_, k, _)| *k == kind).map(|(_, _, ids)| ids.len()).sum()
    }

    /// The events: deletions first (so a consumer that applies them in order removes a
    /// replaced pending transaction before it sees its posted twin), then the rest, one per
    /// account and kind, split at 6000 ids.
    pub fn into_events(
        self,
        user_id: &str,
        at: DateTime<Utc>,
        mut next_id: impl FnMut() -> Uuid,
    ) -> Vec<Event> {
        let order = [TxChange::Deleted, TxChange::Updated, TxChange::New, TxChange::Restored];
        let mut out = Vec::new();
        for kind in order {
            for (account, _, ids) in self.lists.iter().filter(|(_, k, _)| *k == kind) {
                for chunk in ids.chunks(MAX_IDS_PER_EVENT) {
                    let txs: Vec<String> = chunk.iter().map(|u| u.to_string()).collect();
                    out.push(Event {
                        id: next_id(),
                        user_id: user_id.to_string(),
                        event_type: kind.event_type(),
                        payload: json!({"accounts": [{"id": account.to_string(), "transactions": txs}]}),
                        at,
                    });
                }
            }
        }
        out
    }
}

/// `syncCompleted` payload.
pub fn sync_completed(sync_id: Uuid, connection_id: &str, success: bool, at: DateTime<Utc>) -> Value {
    json!({
        "completedAt": iso(at),
        "processingStatus": if success { "success" } else { "error" },
        "syncId": sync_id.to_string(),
        "connectionId": connection_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_events_are_split_per_account_and_at_6000() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let mut c = TxChanges::default();
        for i in 0..6001u128 {
            c.push(a, TxChange::New, Uuid::from_u128(100 + i));
        }
        c.push(b, TxChange::New, Uuid::from_u128(9));
        c.push(b, TxChange::Deleted, Uuid::from_u128(10));
        let mut n = 0u128;
        let evs = c.into_events("u", Utc::now(), || {
            n += 1;
            Uuid::from_u128(n)
        });
        assert_eq!(evs.len(), 4);
        assert_eq!(evs[0].event_type, "deletedTransactions");
        let sizes: Vec<usize> =
            evs.iter().map(|e| e.payload["accounts"][0]["transactions"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, vec![1, 6000, 1, 1]);
    }
}
