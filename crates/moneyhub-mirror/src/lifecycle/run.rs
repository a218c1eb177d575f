//! The lifecycle loop at run time: re-evaluating due rows, starting manual syncs
//! (`--auto-sync`), delivering notifications, and the read side (`actions`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use moneyhub::{ConnectionId, UserId};

use super::{ActionFilter, ConnectionState, DueResult, LifecycleWrites, Observation};
use crate::db::lifecycle::Settle;
use crate::error::Result;
use crate::notify::NotifyCounters;
use crate::Mirror;

/// Due rows re-evaluated per transaction.
const DUE_BATCH: usize = 500;
/// Notifications leased at once (each the head of its connection's queue).
const DELIVERY_BATCH: usize = 32;

/// What the lifecycle loop keeps in memory: counters, the HTTP client, the auto-sync budget.
pub(crate) struct Runtime {
    pub counters: NotifyCounters,
    pub auto_syncs: std::sync::atomic::AtomicU64,
    http: Option<reqwest::Client>,
    /// Auto syncs started in the current minute: (minute start, count).
    budget: parking_lot::Mutex<(std::time::Instant, u32)>,
}

impl Runtime {
    pub(crate) fn new(config: &crate::MirrorConfig) -> Runtime {
        let http = config.notify.as_ref().map(|n| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(n.timeout)
                .build()
                .unwrap_or_default()
        });
        Runtime {
            counters: NotifyCounters::default(),
            auto_syncs: Default::default(),
            http,
            budget: parking_lot::Mutex::new((std::time::Instant::now(), 0)),
        }
    }

    /// Takes one auto sync from this minute's budget.
    fn take(&self, per_minute: u32) -> bool {
        let mut b = self.budget.lock();
        if b.0.elapsed() >= Duration::from_secs(60) {
            *b = (std::time::Instant::now(), 0);
        }
        if b.1 >= per_minute {
            return false;
        }
        b.1 += 1;
        true
    }
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Mirror {
    fn lifecycle_batch(&self) -> LifecycleWrites {
        LifecycleWrites {
            now_ms: self.inner.client.now().timestamp_millis(),
            notify: self.inner.config.notify.is_some(),
            auto_sync: self.inner.config.auto_sync.is_some(),
            items: Vec::new(),
        }
    }

    /// The current advice per connection, from the database alone (no API request), filtered:
    /// actions, user, and `due_by_ms` (something to do by then: an action other than `none`
    /// whose `not_before`, if any, is by then, or advice that time changes by then).
    pub async fn actions(&self, filter: &ActionFilter) -> Result<Vec<ConnectionState>> {
        actions(self.db(), filter).await
    }

    /// Re-evaluates every connection whose advice fell due (by the client's clock), in
    /// batches, and, with `--auto-sync`, starts the manual syncs they ask for. Returns how many
    /// were re-evaluated.
    pub async fn evaluate_due(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let due = self.inner.db.lifecycle_due(self.lifecycle_batch(), DUE_BATCH).await?;
            total += due.len();
            for d in due.iter().filter(|d| d.wants_sync) {
                self.auto_sync(d).await?;
            }
            if due.len() < DUE_BATCH {
                return Ok(total);
            }
        }
    }

    /// Starts the manual sync `d` asks for, through the client's guard, and records it (or why
    /// not, and until when) on the connection's row.
    async fn auto_sync(&self, d: &DueResult) -> Result<()> {
        let Some(auto) = &self.inner.config.auto_sync else { return Ok(()) };
        let now = self.inner.client.now();
        let deferred = |until: chrono::DateTime<chrono::Utc>| Observation::SyncDeferred {
            until_ms: until.timestamp_millis().max(now.timestamp_millis().saturating_add(1000)),
        };
        let observation = if !self.inner.lifecycle.take(auto.per_minute) {
            deferred(now + chrono::Duration::seconds(60))
        } else {
            match (d.user_id.parse::<UserId>(), d.connection_id.parse::<ConnectionId>()) {
                (Ok(user), Ok(connection)) => {
                    let mut options = moneyhub::SyncOptions::new().enable_async(true);
                    options.provider_name = self
                        .inner
                        .db
                        .connection_states(&ActionFilter::all().user(d.user_id.clone()))
                        .await?
                        .into_iter()
                        .find(|s| s.connection_id == d.connection_id)
                        .and_then(|s| s.connection.get("name").and_then(|n| n.as_str()).map(str::to_owned));
                    match self.inner.client.connections().sync(&user, &connection, options).await {
                        Ok(_) => {
                            self.inner.lifecycle.auto_syncs.fetch_add(1, Ordering::Relaxed);
                            let allowed = self.inner.client.connections().sync_allowed_at(&connection).await;
                            tracing::info!(user = %user, connection = %connection, "auto-sync: manual sync started");
                            Observation::ManualSync {
                                at_ms: now.timestamp_millis(),
                                allowed_ms: allowed.map(|t| t.timestamp_millis()),
                            }
                        }
                        Err(e) => {
                            let until = e.not_before().unwrap_or_else(|| now + chrono::Duration::minutes(5));
                            tracing::info!(user = %user, connection = %connection, error = %e, "auto-sync: no manual sync now");
                            deferred(until)
                        }
                    }
                }
                _ => deferred(now + chrono::Duration::days(1)),
            }
        };
        let mut batch = self.lifecycle_batch();
        batch.items.push((d.connection_id.clone(), observation));
        self.inner.db.lifecycle_observe(&d.user_id, batch).await
    }

    /// Delivers the notifications that are due (each connection's oldest first), once. Returns
    /// how many were attempted.
    pub async fn deliver_notifications(&self) -> Result<usize> {
        let (Some(config), Some(http)) = (&self.inner.config.notify, &self.inner.lifecycle.http) else {
            return Ok(0);
        };
        let lease = i64::try_from(config.timeout.as_millis()).unwrap_or(i64::MAX).saturating_add(5000);
        let now = self.inner.client.now().timestamp_millis();
        let wall = wall_ms();
        let items = self.inner.db.outbox_next(now, wall, wall.saturating_add(lease), DELIVERY_BATCH).await?;
        let n = items.len();
        let results: Vec<Result<()>> = stream::iter(items)
            .map(|item| async move {
                let t = chrono::Utc::now().timestamp();
                let signature = config.sign(t, item.body.as_bytes());
                let sent = http
                    .post(config.url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(crate::notify::SIGNATURE_HEADER, signature)
                    .header("Moneyhub-Mirror-Notification-Id", item.id.as_str())
                    .body(item.body.clone())
                    .send()
                    .await;
                let error = match sent {
                    Ok(r) if r.status().is_success() => None,
                    Ok(r) => Some(format!("the receiver answered {}", r.status())),
                    Err(e) => Some(format!("could not deliver: {}", moneyhub::redact_credentials(&e.to_string()))),
                };
                let counters = &self.inner.lifecycle.counters;
                let outcome = match error {
                    None => {
                        counters.delivered.fetch_add(1, Ordering::Relaxed);
                        Settle::Delivered
                    }
                    Some(error) => {
                        let attempts = u32::try_from(item.attempts).unwrap_or(u32::MAX).saturating_add(1);
                        if attempts >= config.max_attempts {
                            counters.parked.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(id = %item.id, attempts, error = %error, "notification parked");
                            Settle::Park { error }
                        } else {
                            counters.failed.fetch_add(1, Ordering::Relaxed);
                            let wait = i64::try_from(config.backoff(attempts - 1).as_millis()).unwrap_or(i64::MAX);
                            tracing::debug!(id = %item.id, attempts, error = %error, "notification failed; will retry");
                            Settle::Retry { next_ms: self.inner.client.now().timestamp_millis().saturating_add(wait), error }
                        }
                    }
                };
                self.inner.db.outbox_settle(item.seq, outcome).await
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    /// Runs the lifecycle loop (due rows, auto syncs, notifications) every
    /// [`MirrorConfig::lifecycle_interval`](crate::MirrorConfig::lifecycle_interval) until `stop`
    /// says so.
    pub(crate) async fn lifecycle_loop(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = self.inner.config.lifecycle_interval;
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.evaluate_due().await {
                tracing::warn!(error = %e, "re-evaluating due connections failed");
            }
            loop {
                match self.deliver_notifications().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "delivering notifications failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// [`Mirror::actions`] on a database alone (what `moneyhub doctor --mirror` uses).
pub async fn actions(db: &crate::Db, filter: &ActionFilter) -> Result<Vec<ConnectionState>> {
    let states = db.connection_states(filter).await?;
    Ok(states
        .into_iter()
        .filter(|s| {
            filter.actions.is_empty() || s.action.as_ref().is_some_and(|a| filter.actions.contains(a))
        })
        .filter(|s| match filter.due_by_ms {
            None => true,
            Some(by) => {
                let acting = s.action.as_deref().is_some_and(|a| a != "none")
                    && s.not_before_ms.is_none_or(|t| t <= by);
                acting || s.due_ms.is_some_and(|t| t <= by)
            }
        })
        .collect())
}
