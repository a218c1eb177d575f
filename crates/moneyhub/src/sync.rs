//! Syncs: the manual `POST /sync/{connectionId}` behind the [guard](crate::guard), waiting for
//! a sync to finish, a connection's sync history and latest sync ("status").
//!
//! Sync records are [`SyncRecord`]s: a sync still running has no `fetchStatus` yet
//! ([`SyncRecord::InProgress`]); a finished one is a [`ConnectionSync`].

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use moneyhub_types::{
    ConnectionId, ConnectionSync, DataResponse, SyncAccount, SyncAction, SyncId, SyncMethod, SyncRequest,
    SyncResponse, UserId,
};

use crate::connections::Connections;
use crate::error::{Error, ErrorKind, Result, Sent};
use crate::page::{Page, PageOptions};
use crate::transport::http::{Call, Reply};
use crate::transport::tokens::TokenKey;

/// Route template of the manual sync.
const SYNC_ROUTE: &str = "/sync/{connectionId}";

/// Options of a manual sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Run the sync in the background (`enableAsync`; Moneyhub's default is `true` on v3,
    /// `false` on v2.0). Follow it with [`Connections::wait_for_sync`] or the `syncCompleted`
    /// webhook.
    pub enable_async: Option<bool>,
    /// The end user's IP address: send it when the user asked for the sync.
    pub customer_ip_address: Option<IpAddr>,
    /// When the end user last logged in.
    pub customer_last_logged_time: Option<DateTime<Utc>>,
    /// The connection's provider name, for the guard's provider caps. When `None` it is
    /// taken from an earlier listing, or the user's connections are listed once to learn it.
    pub provider_name: Option<String>,
}

impl SyncOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `enableAsync`.
    pub fn enable_async(mut self, enable: bool) -> Self {
        self.enable_async = Some(enable);
        self
    }

    /// Sets the end user's IP address.
    pub fn customer_ip_address(mut self, ip: IpAddr) -> Self {
        self.customer_ip_address = Some(ip);
        self
    }

    /// Sets when the end user last logged in.
    pub fn customer_last_logged_time(mut self, at: DateTime<Utc>) -> Self {
        self.customer_last_logged_time = Some(at);
        self
    }

    /// Names the provider (skips the look-up).
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider_name = Some(name.into());
        self
    }
}

/// A sync that has not finished yet (no `fetchStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PendingSync {
    /// Sync id.
    pub id: SyncId,
    /// The connection.
    pub connection_id: ConnectionId,
    /// What started it.
    pub action: SyncAction,
    /// Kind of fetch.
    pub method: SyncMethod,
    /// When it started.
    #[serde(with = "moneyhub_types::time::timestamp")]
    pub created_at: DateTime<Utc>,
    /// Per-account state so far.
    #[serde(default)]
    pub accounts: Vec<SyncAccount>,
}

/// A sync record: in progress, or finished (it has a `fetchStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRecord {
    /// Still running.
    InProgress(PendingSync),
    /// Finished.
    Finished(ConnectionSync),
}

impl SyncRecord {
    /// The sync id.
    pub fn id(&self) -> &SyncId {
        match self {
            SyncRecord::InProgress(p) => &p.id,
            SyncRecord::Finished(s) => &s.id,
        }
    }

    /// The connection.
    pub fn connection_id(&self) -> &ConnectionId {
        match self {
            SyncRecord::InProgress(p) => &p.connection_id,
            SyncRecord::Finished(s) => &s.connection_id,
        }
    }

    /// When it started.
    pub fn created_at(&self) -> DateTime<Utc> {
        match self {
            SyncRecord::InProgress(p) => p.created_at,
            SyncRecord::Finished(s) => s.created_at,
        }
    }

    /// The finished sync, if it has finished.
    pub fn finished(&self) -> Option<&ConnectionSync> {
        match self {
            SyncRecord::InProgress(_) => None,
            SyncRecord::Finished(s) => Some(s),
        }
    }

    /// Decodes one record; `path` prefixes decode errors (e.g. `data[2]`).
    fn decode(reply: &Reply, value: &Value, path: &str) -> Result<SyncRecord> {
        let finished = value.get("fetchStatus").is_some_and(|s| !s.is_null());
        let result = if finished {
            moneyhub_types::decode_value(value).map(SyncRecord::Finished)
        } else {
            moneyhub_types::decode_value(value).map(SyncRecord::InProgress)
        };
        result.map_err(|e| match e {
            moneyhub_types::Error::Decode { path: inner, source } => {
                let full = if inner == "." { path.to_owned() } else { format!("{path}.{inner}") };
                reply.decode_error(moneyhub_types::Error::Decode { path: full, source })
            }
            other => reply.decode_error(other),
        })
    }
}

/// How [`Connections::wait_for_sync`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Give up after this long (default 120 s).
    pub timeout: Duration,
    /// First pause between polls (default 250 ms); doubles up to `max_interval`.
    pub initial_interval: Duration,
    /// Longest pause between polls (default 5 s).
    pub max_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(120),
            initial_interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(5),
        }
    }
}

impl WaitOptions {
    /// Gives up after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// First pause between polls.
    pub fn initial_interval(mut self, interval: Duration) -> Self {
        self.initial_interval = interval;
        self
    }

    /// Longest pause between polls.
    pub fn max_interval(mut self, interval: Duration) -> Self {
        self.max_interval = interval;
        self
    }
}

impl Connections {
    /// Triggers a manual sync (`POST /sync/{connectionId}`, token bound to the user with
    /// `accounts:read accounts:write:all`, 120 s timeout, never retried).
    ///
    /// The [guard](crate::guard) refuses it *before sending* when a manual sync of this
    /// connection happened less than 30 minutes ago, when the provider's daily cap is used up
    /// (Triodos: 4), or when Moneyhub asked to wait; the error's
    /// [`not_before`](Error::not_before) says when it will be allowed. A 429 from Moneyhub is
    /// recorded as such a not-before time.
    pub async fn sync(
        &self,
        user_id: &UserId,
        connection_id: &ConnectionId,
        options: SyncOptions,
    ) -> Result<SyncResponse> {
        let inner = self.client.inner();
        let provider = match options.provider_name.clone() {
            Some(name) => name,
            None => {
                let known = inner.provider_names.lock().get(connection_id).cloned();
                match known {
                    Some(name) => name,
                    None => self.get(user_id, connection_id).await?.name,
                }
            }
        };
        let now = inner.config.clock.now();
        inner.guard.acquire(connection_id, &provider, now).map_err(|nb| Error::new(ErrorKind::Guard(nb)))?;
        let body = SyncRequest {
            customer_ip_address: options.customer_ip_address.map(|ip| ip.to_string()),
            customer_last_logged_time: options.customer_last_logged_time,
            enable_async: options.enable_async,
        };
        let key = TokenKey::new(Some(user_id), &inner.config.scopes.sync);
        let url = inner.api_url(&["sync", connection_id.as_str()])?;
        let call = Call::new(inner, Method::POST, SYNC_ROUTE, url)
            .bearer(key)
            .long_timeout(inner)
            .no_retry()
            .json(&body)?;
        match inner.execute(call).await {
            Ok(reply) => Ok(reply.decode::<DataResponse<SyncResponse>>()?.data),
            Err(e) => {
                // An error from the token or discovery request means the POST never left.
                let posted = e.route() == Some(SYNC_ROUTE) && e.sent() != Sent::Never;
                match e.status() {
                    _ if !posted => inner.guard.forget(connection_id, now),
                    Some(429) => {
                        inner.guard.forget(connection_id, now);
                        let wait = e.retry_after().unwrap_or(Duration::from_secs(30 * 60));
                        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(30));
                        inner.guard.record_not_before(connection_id, inner.config.clock.now() + wait);
                    }
                    // Refused without syncing: the attempt does not count.
                    Some(400 | 401 | 403 | 404) => inner.guard.forget(connection_id, now),
                    _ => {}
                }
                Err(e)
            }
        }
    }

    /// The latest sync of a connection, `None` when it never synced: the newest `createdAt`
    /// of the first page of its history (100 records; Moneyhub lists newest first), ties going
    /// to the one listed first.
    pub async fn status(&self, user_id: &UserId, connection_id: &ConnectionId) -> Result<Option<SyncRecord>> {
        let page = self.syncs(user_id, connection_id, PageOptions::new(100, 0)).await?;
        // `max_by_key` keeps the last of equal keys: scan backwards so the first listed wins.
        Ok(page.items.into_iter().rev().max_by_key(SyncRecord::created_at))
    }

    /// A page of a connection's sync history
    /// (`GET /users/{userId}/connections/{connectionId}/syncs`).
    pub async fn syncs(
        &self,
        user_id: &UserId,
        connection_id: &ConnectionId,
        page: PageOptions,
    ) -> Result<Page<SyncRecord>> {
        let url = self.client.inner().identity_url(&[
            "users",
            user_id.as_str(),
            "connections",
            connection_id.as_str(),
            "syncs",
        ])?;
        self.sync_page(url, "/users/{userId}/connections/{connectionId}/syncs", page).await
    }

    /// A page of all of a user's syncs (`GET /users/{userId}/syncs`).
    pub async fn user_syncs(&self, user_id: &UserId, page: PageOptions) -> Result<Page<SyncRecord>> {
        let url = self.client.inner().identity_url(&["users", user_id.as_str(), "syncs"])?;
        self.sync_page(url, "/users/{userId}/syncs", page).await
    }

    async fn sync_page(
        &self,
        url: url::Url,
        route: &'static str,
        page: PageOptions,
    ) -> Result<Page<SyncRecord>> {
        page.check()?;
        let inner = self.client.inner();
        let key = TokenKey::new(None, &inner.config.scopes.connection_read);
        let call = Call::new(inner, Method::GET, route, url)
            .bearer(key)
            .query("limit", page.limit.to_string())
            .query("offset", page.offset.to_string());
        let reply = inner.execute(call).await?;
        let body: DataResponse<Vec<Value>> = reply.decode()?;
        let items = body
            .data
            .iter()
            .enumerate()
            .map(|(i, v)| SyncRecord::decode(&reply, v, &format!("data[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::new(items, body.meta.as_ref(), page))
    }

    /// One sync (`GET /users/{userId}/syncs/{syncId}`).
    pub async fn sync_record(&self, user_id: &UserId, sync_id: &SyncId) -> Result<SyncRecord> {
        let inner = self.client.inner();
        let key = TokenKey::new(None, &inner.config.scopes.connection_read);
        let url = inner.identity_url(&["users", user_id.as_str(), "syncs", sync_id.as_str()])?;
        let reply = inner
            .execute(Call::new(inner, Method::GET, "/users/{userId}/syncs/{syncId}", url).bearer(key))
            .await?;
        let body: DataResponse<Value> = reply.decode()?;
        SyncRecord::decode(&reply, &body.data, "data")
    }

    /// Polls a sync until it has finished (its `fetchStatus` is present), with growing pauses,
    /// until `options.timeout`; then fails with [`ErrorKind::SyncPending`]. Use it after an
    /// asynchronous connection (`mh:sync`) or sync.
    pub async fn wait_for_sync(
        &self,
        user_id: &UserId,
        sync_id: &SyncId,
        options: WaitOptions,
    ) -> Result<ConnectionSync> {
        let started = tokio::time::Instant::now();
        // A timeout too large to represent means "no deadline" rather than an overflow panic.
        let deadline = started.checked_add(options.timeout);
        let mut pause = options.initial_interval;
        loop {
            if let SyncRecord::Finished(done) = self.sync_record(user_id, sync_id).await? {
                return Ok(done);
            }
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::new(ErrorKind::SyncPending {
                    sync_id: sync_id.as_str().to_owned(),
                    waited: now - started,
                }));
            }
            let left = deadline.map_or(pause, |d| d - now);
            tokio::time::sleep(pause.min(left)).await;
            pause = pause.saturating_mul(2).min(options.max_interval);
        }
    }
}
