//! Connections: provider catalogues, a user's connections (list, get, delete), consent
//! expiry updates. Syncing (manual sync, waiting, history, status) is in [`crate::sync`].
//!
//! The method surface mirrors the Elixir client's `MoneyHub.Connections`: `available*`
//! (catalogues), `list`, `get`, `delete`, `status`, `sync`.

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;

use moneyhub_types::{CatalogueEntry, Connection, ConnectionId, ConnectionPatch, DataResponse, UserId};

use crate::error::{Error, ErrorKind, Result};
use crate::transport::http::Call;
use crate::transport::tokens::TokenKey;
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

    fn route(self) -> &'static str {
        match self {
            Catalogue::All => "/oidc/.well-known/all-connections",
            Catalogue::Api => "/oidc/.well-known/api-connections",
            Catalogue::Legacy => "/oidc/.well-known/legacy-connections",
            Catalogue::Payments => "/oidc/.well-known/payments-connections",
            Catalogue::Test => "/oidc/.well-known/test-connections",
        }
    }
}

/// Connection management (identity routes, `connection:*` scopes) and the manual sync
/// (Data API; see [`crate::sync`]).
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
        let url = match meta.extra.get(&field).and_then(|v| v.as_str()) {
            Some(raw) => inner.endpoint(raw, &field)?,
            None => {
                inner.identity_url(&["oidc", ".well-known", &format!("{}-connections", which.as_str())])?
            }
        };
        let call =
            Call::new(inner, Method::GET, which.route(), url).query("clientId", &inner.config.client_id);
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
        let key = TokenKey::new(None, &inner.config.scopes.connection_read);
        let url = inner.identity_url(&["users", user_id.as_str(), "connections"])?;
        let call = Call::new(inner, Method::GET, "/users/{userId}/connections", url).bearer(key);
        let body: DataResponse<Vec<Connection>> = inner.execute(call).await?.decode()?;
        inner.learn_provider_names(&body.data);
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
        let key = TokenKey::new(None, &inner.config.scopes.connection_delete);
        let url = inner.identity_url(&["users", user_id.as_str(), "connection", connection_id.as_str()])?;
        let call =
            Call::new(inner, Method::DELETE, "/users/{userId}/connection/{connectionId}", url).bearer(key);
        inner.execute(call).await?;
        inner.provider_names.lock().remove(connection_id);
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
        let key = TokenKey::new(None, &inner.config.scopes.connection_update);
        let url = inner.identity_url(&["users", user_id.as_str(), "connections", connection_id.as_str()])?;
        let call = Call::new(inner, Method::PATCH, "/users/{userId}/connections/{connectionId}", url)
            .bearer(key)
            .long_timeout(inner)
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
