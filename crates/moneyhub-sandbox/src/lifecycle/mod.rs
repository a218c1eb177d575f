//! The lifecycle engine: moves connections through (virtual) time the way Moneyhub does.
//!
//! Nothing here keeps its own queue. Every due event is derived from a connection's state
//! (when it last synced, when its consent expires, whether its history is fetched...), so
//! the engine can never disagree with the store: [`run_until`] repeatedly picks the
//! earliest due event of any connection, runs it at *its* time, and stops at the target.
//! `POST /__sandbox/clock/advance` calls it after moving the clock; in real-time mode a
//! ticker calls it every second.

pub mod schedule;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::state::{AppState, DataRoom};
use crate::store::model::Connection;
use crate::store::Store;
use schedule::{next_auto_sync, Due};

/// Upper bound of events one `run_until` call runs (a guard against a rule that would not
/// make progress; far above any realistic run: 60 days of 1,000 connections is ~300,000).
const MAX_EVENTS: usize = 5_000_000;

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Automatic syncs run.
    pub auto_syncs: usize,
    /// Background history fetches run.
    pub history_fetches: usize,
    /// Asynchronous syncs finished.
    pub async_syncs: usize,
    /// Reminder webhooks recorded.
    pub reminders: usize,
    /// Enrichment-complete webhooks recorded.
    pub enrichments: usize,
}

impl RunReport {
    fn total(&self) -> usize {
        self.auto_syncs + self.history_fetches + self.async_syncs + self.reminders + self.enrichments
    }
}

/// The earliest event due for `conn` at or after `from`.
pub fn next_due(store: &Store, conn: &Connection, from: DateTime<Utc>) -> Option<(DateTime<Utc>, Due)> {
    let mut best: Option<(DateTime<Utc>, Due)> = None;
    let mut consider = |t: DateTime<Utc>, d: Due| {
        let t = t.max(from);
        if best.as_ref().is_none_or(|(bt, _)| t < *bt) {
            best = Some((t, d));
        }
    };
    // A running asynchronous sync finishes a few seconds after it started.
    for s in conn.sync_ids.iter().rev().filter_map(|s| store.syncs.get(s)) {
        if s.fetch_status.is_none() {
            consider(s.created_at + Duration::seconds(5), Due::FinishSync(s.id));
        }
    }
    if conn.history_target.is_some() {
        consider(conn.connected_on + store.history_delay, Due::History);
    }
    if !conn.enrichment_announced {
        consider(conn.enriched_at, Due::Enrichment);
    }
    let removed = store.provider_removed(conn);
    if !removed {
        if let Some(t) = next_auto_sync(conn, from) {
            consider(t, Due::AutoSync);
        }
        if let Some(t) = schedule::next_reauth_reminder(conn) {
            consider(t, Due::ReauthReminder);
        }
        if let Some(t) = schedule::next_refresh_reminder(conn) {
            consider(t, Due::RefreshReminder);
        }
    }
    best
}

/// Runs every event due up to and including `target`, each at its own time.
pub(crate) fn run_until(data: &DataRoom, target: DateTime<Utc>) -> RunReport {
    let mut report = RunReport::default();
    let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, String)>> = {
        let store = data.store.read();
        store
            .connections
            .values()
            .filter_map(|c| {
                next_due(&store, c, c.connected_on.min(target)).map(|(t, _)| Reverse((t, c.id.clone())))
            })
            .filter(|Reverse((t, _))| *t <= target)
            .collect()
    };
    let mut cursor = DateTime::<Utc>::MIN_UTC;
    let mut runs = 0usize;
    while let Some(Reverse((t, id))) = heap.pop() {
        if t > target || runs >= MAX_EVENTS {
            break;
        }
        let mut store = data.store.write();
        let Some(conn) = store.connections.get(&id) else { continue };
        // Re-derive under the write lock: the connection may have changed since.
        let Some((due_at, due)) = next_due(&store, conn, t.min(cursor.max(t))) else { continue };
        if due_at > target {
            continue;
        }
        if due_at > t {
            heap.push(Reverse((due_at, id)));
            continue;
        }
        cursor = cursor.max(due_at);
        runs += 1;
        run_one(&mut store, &id, due, due_at, &mut report);
        if let Some(c) = store.connections.get(&id) {
            if let Some((next, _)) = next_due(&store, c, due_at) {
                if next <= target {
                    heap.push(Reverse((next, id)));
                }
            }
        }
    }
    if report.total() > 0 {
        data.notify_webhooks();
    }
    report
}

fn run_one(store: &mut Store, id: &str, due: Due, at: DateTime<Utc>, report: &mut RunReport) {
    match due {
        Due::FinishSync(sync_id) => {
            store.finish_sync(sync_id, at);
            report.async_syncs += 1;
        }
        Due::History => {
            store.fetch_history(id, at);
            report.history_fetches += 1;
        }
        Due::Enrichment => {
            let Some(c) = store.connections.get_mut(id) else { return };
            c.enrichment_announced = true;
            let (user, payload) = (c.user_id.clone(), enrichment_payload(c));
            store.emit(&user, "postConnectionEnrichmentCompleted", payload, at);
            report.enrichments += 1;
        }
        Due::AutoSync => {
            if let Ok(sync_id) = store.start_sync(id, "auto-update", "UPDATE", at) {
                store.finish_sync(sync_id, at);
                report.auto_syncs += 1;
            }
        }
        Due::ReauthReminder => {
            let Some(c) = store.connections.get_mut(id) else { return };
            c.last_reauth_reminder = Some(at);
            let days =
                c.expires_at.map(|e| ((e - at).num_seconds() as f64 / 86_400.0).ceil() as i64).unwrap_or(0);
            let payload = json!({
                "connectionId": c.id,
                "bankName": c.name,
                "timeUntilReauthorizationInDays": days.max(0),
                "tppConsent": c.tpp_consent(at),
            });
            let user = c.user_id.clone();
            store.emit(&user, "reauthReminder", payload, at);
            report.reminders += 1;
        }
        Due::RefreshReminder => {
            let Some(c) = store.connections.get_mut(id) else { return };
            c.last_refresh_reminder = Some(at);
            let since = c.last_updated.unwrap_or(c.connected_on);
            let payload = json!({
                "connectionId": c.id,
                "bankName": c.name,
                "periodSinceLastUpdateInDays": (at - since).num_days(),
            });
            let user = c.user_id.clone();
            store.emit(&user, "refreshReminder", payload, at);
            report.reminders += 1;
        }
    }
}

fn enrichment_payload(c: &Connection) -> serde_json::Value {
    let accounts: Vec<_> = c
        .account_ids
        .iter()
        .map(|a| {
            json!({
                "accountId": a.to_string(),
                "postConnectionEnrichmentStatus": "completed",
                "postConnectionEnrichedAt": crate::clock::iso(c.enriched_at),
            })
        })
        .collect();
    json!({"connectionId": c.id, "accounts": accounts})
}

/// In real-time mode, runs due events every second (the clock follows the wall clock).
/// Ends once the sandbox is stopping.
pub(crate) fn start_ticker(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(StdDuration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if state.core.shutting_down() {
                break;
            }
            if !state.core.clock.is_frozen() {
                let now = state.core.clock.now();
                let data = state.data.clone();
                // Syncs do real work; keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || run_until(&data, now)).await;
            }
        }
    });
}
