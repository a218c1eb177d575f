//! One evaluation: the stored state, what was observed, the time → the new state, its history
//! entry and its notification. Pure (the backends call it inside their transactions).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use moneyhub::health::{advise, next_change_at, AdviceContext};
use moneyhub_types::{AccountType, Connection};
use serde_json::json;

use super::{ConnectionState, Evaluated, HistoryEntry, LifecycleWrites, ACTION_CHANGED};

/// Most bytes of a connection's JSON kept on its row.
const MAX_CONNECTION_JSON: usize = 64 * 1024;

/// What was learnt about a connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Observation {
    /// Moneyhub listed it like this.
    Seen {
        /// The connection as listed.
        connection: Box<Connection>,
        /// Types of (some of) its accounts, by account id, when they were read.
        account_types: BTreeMap<String, String>,
        /// The connection whose accounts it took over, when it appeared so.
        moved_from: Option<String>,
    },
    /// It is gone from the user's connections.
    Removed,
    /// Nothing new: time passed (a due row).
    Tick,
    /// This mirror made a manual sync of it at `at_ms`; the guard allows the next at
    /// `allowed_ms`.
    ManualSync {
        /// When (ms).
        at_ms: i64,
        /// When the next is allowed (ms), if not now.
        allowed_ms: Option<i64>,
    },
    /// A manual sync could not be made now; do not try again before `until_ms`.
    SyncDeferred {
        /// Not before (ms).
        until_ms: i64,
    },
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The connection's JSON as stored, bounded.
fn connection_json(c: &Connection) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
    if serde_json::to_string(&v).map_or(0, |s| s.len()) > MAX_CONNECTION_JSON {
        if let Some(o) = v.as_object_mut() {
            o.insert("accountIds".into(), json!([]));
            o.insert("accountIdsTruncated".into(), json!(true));
        }
    }
    v
}

/// Evaluates one observation of `connection_id` (of `user_id`) against its stored state.
/// `None`: nothing to write (a tick or removal of a connection never seen).
pub(crate) fn evaluate(
    prev: Option<ConnectionState>,
    connection_id: &str,
    user_id: &str,
    observation: &Observation,
    batch: &LifecycleWrites,
) -> Option<Evaluated> {
    let now_ms = batch.now_ms;
    let mut state = match (prev.clone(), observation) {
        (Some(s), _) => s,
        (None, Observation::Seen { .. }) => ConnectionState {
            connection_id: connection_id.to_owned(),
            user_id: user_id.to_owned(),
            connection: serde_json::Value::Null,
            account_types: BTreeMap::new(),
            removed: false,
            moved_from: None,
            last_manual_sync_ms: None,
            sync_allowed_ms: None,
            action: None,
            reason: String::new(),
            not_before_ms: None,
            rule: 0,
            unknown: None,
            action_since_ms: now_ms,
            status_since_ms: now_ms,
            observed_ms: now_ms,
            evaluated_ms: now_ms,
            due_ms: None,
            changes: 0,
        },
        (None, _) => return None,
    };
    if !user_id.is_empty() {
        state.user_id = user_id.to_owned();
    }
    match observation {
        Observation::Seen { connection, account_types, moved_from } => {
            state.connection = connection_json(connection);
            state.removed = false;
            state.observed_ms = now_ms;
            // Types of accounts it no longer holds are forgotten; new ones added.
            let held: std::collections::HashSet<&str> =
                connection.account_ids.iter().map(|a| a.as_str()).collect();
            state.account_types.retain(|a, _| held.contains(a.as_str()));
            for (a, t) in account_types {
                if held.contains(a.as_str()) {
                    state.account_types.insert(a.clone(), t.clone());
                }
            }
            if moved_from.is_some() {
                state.moved_from = moved_from.clone();
            }
        }
        Observation::Removed => {
            if state.removed {
                return None;
            }
            state.removed = true;
            state.observed_ms = now_ms;
        }
        Observation::Tick => {}
        Observation::ManualSync { at_ms, allowed_ms } => {
            state.last_manual_sync_ms = Some(*at_ms);
            state.sync_allowed_ms = *allowed_ms;
        }
        Observation::SyncDeferred { until_ms } => {
            state.sync_allowed_ms = Some(state.sync_allowed_ms.map_or(*until_ms, |a| a.max(*until_ms)));
        }
    }
    let previous_action = prev.as_ref().and_then(|p| p.action.clone());
    let mut wants_sync = false;
    if state.removed {
        state.action = None;
        state.reason =
            "The connection was removed at Moneyhub (or by the user); nothing more can be done with it."
                .to_owned();
        state.not_before_ms = None;
        state.rule = 0;
        state.unknown = None;
        state.due_ms = None;
    } else {
        let connection: Connection = match serde_json::from_value(state.connection.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(connection = connection_id, error = %e, "a stored connection cannot be read; not evaluated");
                state.due_ms = None;
                state.evaluated_ms = now_ms;
                return Some(Evaluated { state, history: None, outbox: None, wants_sync: false });
            }
        };
        let mut context = AdviceContext::new(time(now_ms))
            .with_last_manual_sync(state.last_manual_sync_ms.map(time))
            .with_sync_allowed_at(state.sync_allowed_ms.map(time));
        let types: Vec<AccountType> =
            state.account_types.values().map(|t| AccountType::from(t.as_str())).collect();
        if !types.is_empty() {
            context = context.with_account_types(types);
        }
        let advice = advise(&connection, &context);
        state.action = Some(advice.action.as_str().to_owned());
        state.reason = advice.reason;
        state.not_before_ms = advice.not_before.map(|t| t.timestamp_millis());
        state.rule = advice.rule;
        state.unknown = advice.unknown;
        state.due_ms = next_change_at(&connection, &context).map(|t| t.timestamp_millis());
        if batch.auto_sync && advice.action == moneyhub::health::Action::Sync && advice.not_before.is_none() {
            wants_sync = true;
            state.due_ms = Some(now_ms);
        }
    }
    state.evaluated_ms = now_ms;

    let status_key = |s: &ConnectionState| {
        (s.status().map(str::to_owned), s.error().map(str::to_owned), s.extended_status().map(str::to_owned))
    };
    let status_changed =
        prev.as_ref().is_none_or(|p| status_key(p) != status_key(&state) || p.removed != state.removed);
    if status_changed {
        state.status_since_ms = now_ms;
    }
    let action_changed = prev.is_none() || previous_action != state.action;
    if action_changed {
        state.action_since_ms = now_ms;
    }
    let history = (status_changed || action_changed).then(|| HistoryEntry {
        connection_id: connection_id.to_owned(),
        entered_ms: now_ms,
        status: state.status().map(str::to_owned),
        error: state.error().map(str::to_owned),
        extended_status: state.extended_status().map(str::to_owned),
        action: state.action.clone(),
    });
    let newsworthy = action_changed && !(prev.is_none() && state.action.as_deref() == Some("none"));
    let outbox = if newsworthy {
        state.changes = state.changes.saturating_add(1);
        batch.notify.then(|| notification(&state, previous_action.as_deref(), now_ms))
    } else {
        None
    };
    Some(Evaluated { state, history, outbox, wants_sync })
}

/// The notification of the change that brought `state` (its `changes`-th): its stable id and
/// body.
fn notification(state: &ConnectionState, previous: Option<&str>, now_ms: i64) -> (String, String) {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{}\n{}", state.connection_id, state.changes).as_bytes(),
    );
    let id: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    let id = format!("ntf_{id}");
    let ts = |ms: i64| moneyhub_types::time::format_timestamp(&time(ms));
    let body = json!({
        "id": id,
        "type": ACTION_CHANGED,
        "userId": state.user_id,
        "connectionId": state.connection_id,
        "previous": previous,
        "action": state.action,
        "reason": state.reason,
        "notBefore": state.not_before_ms.map(ts),
        "rule": state.rule,
        "at": ts(now_ms),
        "connection": {
            "status": state.status(),
            "error": state.error(),
            "extendedStatus": state.extended_status(),
            "removed": state.removed,
            "movedFrom": state.moved_from,
            "accountTypes": state.account_types,
            "since": ts(state.status_since_ms),
            "data": state.connection,
        },
    });
    (id, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(v: serde_json::Value) -> Box<Connection> {
        let mut base = json!({
            "id": "b74f1a79f0be8bdb857d82d0f041d7d2:7d235ab0-e951-487f-acde-73cae1a18be0",
            "name": "Bank", "type": "api", "connectedOn": "2025-01-01T09:00:00.000Z",
            "lastUpdated": "2025-03-10T11:00:00.000Z", "lastSyncedAt": "2025-03-10T11:00:00.000Z",
            "expiresAt": "2025-05-10T11:00:00.000Z", "accountIds": ["6d0baf11-248e-4c11-9c04-97b7758b4e04"], "status": "ok", "error": null,
            "tppConsent": true
        });
        for (k, x) in v.as_object().unwrap() {
            base[k] = x.clone();
        }
        Box::new(serde_json::from_value(base).unwrap())
    }

    fn batch(now: &str) -> LifecycleWrites {
        LifecycleWrites {
            now_ms: moneyhub_types::time::parse_timestamp(now).unwrap().timestamp_millis(),
            notify: true,
            auto_sync: false,
            items: Vec::new(),
        }
    }

    const ID: &str = "b74f1a79f0be8bdb857d82d0f041d7d2:7d235ab0-e951-487f-acde-73cae1a18be0";

    fn seen(c: Box<Connection>) -> Observation {
        Observation::Seen { connection: c, account_types: BTreeMap::new(), moved_from: None }
    }

    #[test]
    fn first_healthy_sighting_is_not_news_then_a_change_is() {
        let b = batch("2025-03-10T12:00:00.000Z");
        let e = evaluate(None, ID, "u1", &seen(conn(json!({}))), &b).unwrap();
        assert_eq!(e.state.action.as_deref(), Some("none"));
        assert!(e.outbox.is_none());
        assert!(e.history.is_some());
        // Due when it goes stale (2 days after lastUpdated, + 1 ms).
        assert_eq!(e.state.due_ms, Some(b.now_ms - 3_600_000 + 2 * 86_400_000 + 1));
        // Time passes: the tick at the due time changes the action to sync and notifies.
        let later = LifecycleWrites { now_ms: e.state.due_ms.unwrap(), ..b.clone() };
        let t = evaluate(Some(e.state.clone()), ID, "u1", &Observation::Tick, &later).unwrap();
        assert_eq!(t.state.action.as_deref(), Some("sync"));
        let (id, body) = t.outbox.unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["previous"], "none");
        assert_eq!(v["action"], "sync");
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["type"], ACTION_CHANGED);
        // The same again is no change: no notification, same id scheme stays stable.
        let again = evaluate(Some(t.state.clone()), ID, "u1", &Observation::Tick, &later).unwrap();
        assert!(again.outbox.is_none() && again.history.is_none());
        let replay = evaluate(Some(e.state), ID, "u1", &Observation::Tick, &later).unwrap();
        assert_eq!(replay.outbox.unwrap().0, id, "the id is a function of the connection and change number");
    }

    #[test]
    fn removal_is_notified_once() {
        let b = batch("2025-03-10T12:00:00.000Z");
        let e = evaluate(
            None,
            ID,
            "u1",
            &seen(conn(json!({"status": "error", "error": "credentials_error"}))),
            &b,
        )
        .unwrap();
        assert!(e.outbox.is_some());
        let r = evaluate(Some(e.state), ID, "u1", &Observation::Removed, &b).unwrap();
        assert_eq!(r.state.action, None);
        assert!(r.outbox.is_some());
        assert!(evaluate(Some(r.state), ID, "u1", &Observation::Removed, &b).is_none());
        assert!(evaluate(None, ID, "u1", &Observation::Tick, &b).is_none());
    }

    #[test]
    fn a_manual_sync_that_did_not_help_moves_the_advice_on() {
        let b = batch("2025-03-10T12:00:00.000Z");
        let c = conn(
            json!({"status": "error", "error": "sync_error", "lastUpdated": "2025-03-09T11:00:00.000Z"}),
        );
        let e = evaluate(None, ID, "u1", &seen(c.clone()), &LifecycleWrites { auto_sync: true, ..b.clone() })
            .unwrap();
        assert_eq!(e.state.action.as_deref(), Some("sync"));
        assert!(e.wants_sync);
        assert_eq!(e.state.due_ms, Some(b.now_ms));
        let synced = Observation::ManualSync { at_ms: b.now_ms, allowed_ms: Some(b.now_ms + 1_800_000) };
        let s = evaluate(Some(e.state), ID, "u1", &synced, &b).unwrap();
        assert_eq!(s.state.action.as_deref(), Some("sync"));
        assert_eq!(s.state.not_before_ms, Some(b.now_ms + 1_800_000));
        // The next listing shows the sync finished (lastSyncedAt after it) and the error stayed.
        let mut after = c.clone();
        after.last_synced_at = Some(time(b.now_ms + 60_000));
        let later = LifecycleWrites { now_ms: b.now_ms + 120_000, ..b.clone() };
        let r = evaluate(Some(s.state), ID, "u1", &seen(after), &later).unwrap();
        assert_eq!(r.state.action.as_deref(), Some("reconsent"));
        assert_eq!(r.state.rule, 10);
    }
}
