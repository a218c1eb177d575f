//! Connections, the whole API area: provider catalogues, a user's connections (list, get,
//! delete), consent expiry updates, and syncing: the manual `POST /sync/{connectionId}`
//! behind the [guard](crate::guard), waiting for a sync to finish, a connection's (or a
//! user's) sync history and latest sync ("status").
//!
//! The method surface mirrors the Elixir client's `MoneyHub.Connections`: `available*`
//! (catalogues), `list`, `get`, `delete`, `status`, `sync`.
//!
//! Sync records are [`SyncRecord`]s: a sync still running has no `fetchStatus` yet
//! ([`SyncRecord::InProgress`]); a finished one is a [`ConnectionSync`].

use std::net::IpAddr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use moneyhub_types::{
    CatalogueEntry, Connection, ConnectionId, ConnectionPatch, ConnectionSync, DataResponse, SyncAccount,
    SyncAction, SyncId, SyncMethod, SyncRequest, SyncResponse, UserId,
};

use crate::error::{Error, ErrorKind, Result, Sent};
use crate::page::{self, Page, PageOptions, Pages};
use crate::transport::http::Reply;
use crate::transport::route::Route;
use crate::Client;

/// The longest consent Moneyhub grants: `expiresAt` at most 90 days ahead.
pub const MAX_CONSENT_DAYS: i64 = 90;

/// Which provider catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Catalogue {
    /// Every provider available to the client.
    All,
    /// Open-banking / API providers (no screen scraping).
    Api,
    /// Screen-scraping providers.
    Legacy,
    /// Providers supporting payment initiation.
    Payments,
    /// Mock providers for development.
    Test,
}

impl Catalogue {
    /// The listing's name (`all`, `api`, `legacy`, `payments`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Catalogue::All => "all",
            Catalogue::Api => "api",
            Catalogue::Legacy => "legacy",
            Catalogue::Payments => "payments",
            Catalogue::Test => "test",
        }
    }

    /// The listing's route (its path lives in the request table).
    fn route(self) -> Route<'static> {
        match self {
            Catalogue::All => Route::CatalogueAll,
            Catalogue::Api => Route::CatalogueApi,
            Catalogue::Legacy => Route::CatalogueLegacy,
            Catalogue::Payments => Route::CataloguePayments,
            Catalogue::Test => Route::CatalogueTest,
        }
    }
}

/// Connection management (identity routes, `connection:*` scopes) and the manual sync
/// (Data API).
#[derive(Debug, Clone)]
pub struct Connections {
    pub(crate) client: Client,
}

impl Connections {
    pub(crate) fn new(client: Client) -> Self {
        Connections { client }
    }

    /// A provider catalogue (no token needed). Its URL comes from the discovery document
    /// (`<kind>_connections_endpoint`) when listed there.
    pub async fn catalogue(&self, which: Catalogue) -> Result<Vec<CatalogueEntry>> {
        let inner = self.client.inner();
        let meta = inner.metadata().await?;
        let field = format!("{}_connections_endpoint", which.as_str());
        let route = which.route();
        let url = match meta.extra.get(&field).and_then(|v| v.as_str()) {
            Some(raw) => inner.endpoint(raw, &field)?,
            None => inner.route_url(&route)?,
        };
        let call = inner.request_at(route, url).query("clientId", &inner.config.client_id);
        inner.execute(call).await?.decode()
    }

    /// Every provider available to the client (`all-connections`).
    pub async fn available(&self) -> Result<Vec<CatalogueEntry>> {
        self.catalogue(Catalogue::All).await
    }

    /// API (open-banking) providers only.
    pub async fn available_api(&self) -> Result<Vec<CatalogueEntry>> {
        self.catalogue(Catalogue::Api).await
    }

    /// Legacy (screen-scraping) providers only.
    pub async fn available_legacy(&self) -> Result<Vec<CatalogueEntry>> {
        self.catalogue(Catalogue::Legacy).await
    }

    /// Providers supporting payment initiation.
    pub async fn available_payments(&self) -> Result<Vec<CatalogueEntry>> {
        self.catalogue(Catalogue::Payments).await
    }

    /// Test (mock) providers.
    pub async fn available_test(&self) -> Result<Vec<CatalogueEntry>> {
        self.catalogue(Catalogue::Test).await
    }

    /// A user's connections (`GET /users/{userId}/connections`).
    pub async fn list(&self, user_id: &UserId) -> Result<Vec<Connection>> {
        let inner = self.client.inner();
        let call = inner.request(Route::ListConnections(user_id))?;
        let body: DataResponse<Vec<Connection>> = inner.execute(call).await?.decode()?;
        Ok(body.data)
    }

    /// One connection, found in the user's list (Moneyhub has no route for a single
    /// connection). An id not in the list is [`Error::is_not_found`].
    pub async fn get(&self, user_id: &UserId, connection_id: &ConnectionId) -> Result<Connection> {
        self.list(user_id).await?.into_iter().find(|c| &c.id == connection_id).ok_or_else(|| {
            Error::new(ErrorKind::NotFound { what: "connection", id: connection_id.as_str().to_owned() })
        })
    }

    /// Removes a connection: revokes its consent and deletes its accounts and transactions
    /// (`DELETE /users/{userId}/connection/{connectionId}`, 204).
    pub async fn delete(&self, user_id: &UserId, connection_id: &ConnectionId) -> Result<()> {
        let inner = self.client.inner();
        inner.execute(inner.request(Route::DeleteConnection(user_id, connection_id))?).await?;
        Ok(())
    }

    /// Sets a connection's consent expiry (`PATCH /users/{userId}/connections/{connectionId}`
    /// `{expiresAt}`; only for clients running their own consent screen). The expiry must be
    /// in the future and at most 90 days ahead, which is checked before sending. Not retried.
    pub async fn update_expiry(
        &self,
        user_id: &UserId,
        connection_id: &ConnectionId,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let inner = self.client.inner();
        check_expiry(expires_at, inner.config.clock.now(), "expiresAt")?;
        let call = inner
            .request(Route::UpdateConnection(user_id, connection_id))?
            .json(&ConnectionPatch { expires_at })?;
        inner.execute(call).await?;
        Ok(())
    }
}

/// A consent expiry must lie in `(now, now + 90 days]`.
pub(crate) fn check_expiry(expires_at: DateTime<Utc>, now: DateTime<Utc>, what: &str) -> Result<()> {
    if expires_at <= now {
        return Err(Error::validation(format!(
            "{what} {} is not in the future",
            moneyhub_types::time::format_timestamp(&expires_at)
        )));
    }
    if expires_at > now + Duration::days(MAX_CONSENT_DAYS) {
        return Err(Error::validation(format!(
            "{what} {} is more than {MAX_CONSENT_DAYS} days ahead",
            moneyhub_types::time::format_timestamp(&expires_at)
        )));
    }
    Ok(())
}

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
    /// The connection's provider name, when the caller has the connection at hand (e.g. from
    /// a listing): the client then sends the sync without first checking that the connection
    /// is one of the user's. When `None`, the user's connections are listed once, and an
    /// unknown connection is refused ([`Error::is_not_found`]) before anything is posted. (The
    /// guard itself no longer needs the name: its caps are keyed by bank id.)
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

    /// Names the provider: the connection is known, no look-up (see
    /// [`SyncOptions::provider_name`]).
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
    pub timeout: StdDuration,
    /// First pause between polls (default 250 ms); doubles up to `max_interval`.
    pub initial_interval: StdDuration,
    /// Longest pause between polls (default 5 s).
    pub max_interval: StdDuration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: StdDuration::from_secs(120),
            initial_interval: StdDuration::from_millis(250),
            max_interval: StdDuration::from_secs(5),
        }
    }
}

impl WaitOptions {
    /// Gives up after `timeout`.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// First pause between polls.
    pub fn initial_interval(mut self, interval: std::time::Duration) -> Self {
        self.initial_interval = interval;
        self
    }

    /// Longest pause between polls.
    pub fn max_interval(mut self, interval: std::time::Duration) -> Self {
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
        if options.provider_name.is_none() {
            // Refuse a connection that is not the user's before posting anything.
            self.get(user_id, connection_id).await?;
        }
        let now = inner.config.clock.now();
        inner.guard.acquire(connection_id, now).await.map_err(|nb| Error::new(ErrorKind::Guard(nb)))?;
        let body = SyncRequest {
            customer_ip_address: options.customer_ip_address.map(|ip| ip.to_string()),
            customer_last_logged_time: options.customer_last_logged_time,
            enable_async: options.enable_async,
        };
        let route = Route::Sync(user_id, connection_id);
        // The route's classes: never retried, the long timeout.
        let call = match inner.request(route).and_then(|call| call.json(&body)) {
            Ok(call) => call,
            Err(e) => {
                inner.guard.forget(connection_id, now).await;
                return Err(e);
            }
        };
        match inner.execute(call).await {
            Ok(reply) => Ok(reply.decode::<DataResponse<SyncResponse>>()?.data),
            Err(e) => {
                // An error from the token or discovery request means the POST never left.
                let posted = e.route() == Some(route.template()) && e.sent() != Sent::Never;
                match e.status() {
                    _ if !posted => inner.guard.forget(connection_id, now).await,
                    Some(429) => {
                        inner.guard.forget(connection_id, now).await;
                        let wait = e.retry_after().unwrap_or(StdDuration::from_secs(30 * 60));
                        let wait = Duration::from_std(wait).unwrap_or(Duration::minutes(30));
                        inner.guard.record_not_before(connection_id, inner.config.clock.now() + wait).await;
                    }
                    // Refused without syncing: the attempt does not count.
                    Some(400 | 401 | 403 | 404) => inner.guard.forget(connection_id, now).await,
                    _ => {}
                }
                Err(e)
            }
        }
    }

    /// When the [guard](crate::guard) allows the next manual sync of the connection: `None`
    /// when it would let one through now. Nothing is recorded or sent.
    pub async fn sync_allowed_at(&self, connection_id: &ConnectionId) -> Option<DateTime<Utc>> {
        let inner = self.client.inner();
        inner.guard.check(connection_id, inner.config.clock.now()).await.err().map(|nb| nb.not_before)
    }

    /// The last manual sync of the connection the [guard](crate::guard) knows of (from this
    /// client, or any sharing the guard's store).
    pub async fn last_manual_sync(&self, connection_id: &ConnectionId) -> Option<DateTime<Utc>> {
        self.client.inner().guard.last_manual_sync(connection_id).await
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
        self.sync_page(Route::ConnectionSyncs(user_id, connection_id), page).await
    }

    /// Every page of a connection's sync history from `first` on, as a `Stream`.
    pub fn sync_pages(
        &self,
        user_id: &UserId,
        connection_id: &ConnectionId,
        first: PageOptions,
    ) -> Pages<SyncRecord> {
        let (connections, user_id, connection_id) = (self.clone(), user_id.clone(), connection_id.clone());
        page::stream(first, move |options| {
            let (connections, user_id, connection_id) =
                (connections.clone(), user_id.clone(), connection_id.clone());
            async move { connections.syncs(&user_id, &connection_id, options).await }
        })
    }

    /// A page of all of a user's syncs (`GET /users/{userId}/syncs`).
    pub async fn user_syncs(&self, user_id: &UserId, page: PageOptions) -> Result<Page<SyncRecord>> {
        self.sync_page(Route::UserSyncs(user_id), page).await
    }

    /// Every page of a user's syncs from `first` on, as a `Stream`.
    pub fn user_sync_pages(&self, user_id: &UserId, first: PageOptions) -> Pages<SyncRecord> {
        let (connections, user_id) = (self.clone(), user_id.clone());
        page::stream(first, move |options| {
            let (connections, user_id) = (connections.clone(), user_id.clone());
            async move { connections.user_syncs(&user_id, options).await }
        })
    }

    async fn sync_page(&self, route: Route<'_>, page: PageOptions) -> Result<Page<SyncRecord>> {
        page.check()?;
        let inner = self.client.inner();
        let call = page.apply(inner.request(route)?)?;
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
        let reply = inner.execute(inner.request(Route::GetSync(user_id, sync_id))?).await?;
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
