//! Syncs: `POST /sync/{connectionId}` (Data API), the identity service's sync history
//! (`GET /users/{userId}/syncs…`) and `GET /accounts/syncs`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{AccountId, ConnectionId, ConnectionStatus, SyncId};

open_enum! {
    /// Outcome of a provider fetch (`fetchStatus`).
    pub enum FetchStatus {
        /// The fetch succeeded.
        Success => "success",
        /// The fetch failed.
        Error => "error",
        /// Some data failed to fetch.
        Partial => "partial",
        /// The provider wants MFA.
        MfaRequired => "mfa-required",
        /// The provider rejected the credentials.
        CredentialsError => "credentials-error",
    }
}

open_enum! {
    /// What started a sync (`action`).
    pub enum SyncAction {
        /// A scheduled sync.
        AutoUpdate => "auto-update",
        /// A sync requested through `POST /sync`.
        ClientUpdate => "client-update",
    }
}

open_enum! {
    /// Kind of fetch (`method`).
    pub enum SyncMethod {
        /// The fetch that created the connection.
        Add => "ADD",
        /// A later fetch.
        Update => "UPDATE",
    }
}

/// One sync of a connection (`GET /users/{userId}/syncs/{syncId}` and the sync lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConnectionSync {
    /// Sync id.
    pub id: SyncId,
    /// The synced connection.
    pub connection_id: ConnectionId,
    /// What started the sync.
    pub action: SyncAction,
    /// Kind of fetch.
    pub method: SyncMethod,
    /// Outcome; absent or `null` while the sync is still running (an asynchronous sync or
    /// connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_status: Option<FetchStatus>,
    /// When the sync started.
    #[serde(with = "crate::time::timestamp")]
    pub created_at: DateTime<Utc>,
    /// When the fetch finished (absent or `null` while in progress).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub fetched_at: Option<DateTime<Utc>>,
    /// Per-account results.
    #[serde(default)]
    pub accounts: Vec<SyncAccount>,
}

impl ConnectionSync {
    /// Whether the sync has finished (it has a `fetchStatus`).
    pub fn is_finished(&self) -> bool {
        self.fetch_status.is_some()
    }
}

/// Per-account element of a sync's `accounts` (sync history and `POST /sync` response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncAccount {
    /// Moneyhub account id.
    pub account_id: AccountId,
    /// The provider's id for the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// Post-connection enrichment progress. Kept as a raw string: the values are not published
    /// (the sandbox uses `pending` → `completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_connection_enrichment_status: Option<String>,
    /// When post-connection enrichment finished.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub post_connection_enriched_at: Option<DateTime<Utc>>,
}

/// `data` of the `POST /sync/{connectionId}` response. Only `status` is required (older
/// deployments return nothing else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncResponse {
    /// Sync id, to poll `GET /users/{userId}/syncs/{syncId}` or match the `syncCompleted`
    /// webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<SyncId>,
    /// The connection's status after the sync.
    pub status: ConnectionStatus,
    /// Per-account results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<SyncAccount>>,
}

/// Body of `POST /sync/{connectionId}` (swagger `SyncPost`). Every field is optional and `None`
/// fields are left out.
///
/// ```
/// use moneyhub_types::SyncRequest;
/// let body = SyncRequest { enable_async: Some(true), ..Default::default() };
/// assert_eq!(serde_json::to_string(&body)?, r#"{"enableAsync":true}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// The end user's IP address, when the user is present (send it for user-initiated syncs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_ip_address: Option<String>,
    /// When the customer last logged in.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub customer_last_logged_time: Option<DateTime<Utc>>,
    /// Run the sync in the background (default `false` on v2.0, `true` on v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_async: Option<bool>,
}

/// Element of `GET /accounts/syncs` (swagger `AccountSync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccountSync {
    /// The account.
    pub account_id: AccountId,
    /// Last successful sync with the provider; `null` when there was none.
    #[serde(default, with = "crate::time::timestamp_opt")]
    pub last_successful_sync: Option<DateTime<Utc>>,
}
