//! User connections (`GET /users/{userId}/connections`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{AccountId, ConnectionId};

open_enum! {
    /// The kind of a connection or catalogue provider (`type`).
    pub enum ConnectionType {
        /// Open banking / API provider.
        Api => "api",
        /// Screen-scraping provider.
        Legacy => "legacy",
        /// Mock provider for development; behaves like `api`.
        Test => "test",
        /// Zoopla property valuations (synced monthly).
        Zoopla => "zoopla",
        /// Mouseprice property valuations (synced monthly).
        Mouseprice => "mouseprice",
        /// AutoTrader vehicle valuations (synced monthly).
        Autotrader => "autotrader",
    }
}

impl ConnectionType {
    /// "API-like" in the lifecycle rules: api, test, zoopla, mouseprice or autotrader.
    ///
    /// ```
    /// use moneyhub_types::ConnectionType;
    /// assert!(ConnectionType::Test.is_api_like());
    /// assert!(!ConnectionType::Legacy.is_api_like());
    /// assert!(!ConnectionType::from("experian").is_api_like());
    /// ```
    pub fn is_api_like(&self) -> bool {
        matches!(self, Self::Api | Self::Test | Self::Zoopla | Self::Mouseprice | Self::Autotrader)
    }

    /// A valuation provider (zoopla, mouseprice, autotrader), synced monthly.
    pub fn is_valuation(&self) -> bool {
        matches!(self, Self::Zoopla | Self::Mouseprice | Self::Autotrader)
    }

    /// A screen-scraping (legacy) provider.
    pub fn is_legacy(&self) -> bool {
        matches!(self, Self::Legacy)
    }
}

open_enum! {
    /// A connection's health (`status`).
    pub enum ConnectionStatus {
        /// Healthy.
        Ok => "ok",
        /// The last sync ran into a problem; `error` names it.
        Error => "error",
        /// The provider was permanently withdrawn; the connection will never sync again.
        Never => "never",
    }
}

open_enum! {
    /// Why a connection is in error (`error`).
    pub enum ConnectionError {
        /// Not refreshed recently (typically the provider wants MFA): trigger a sync.
        Resync => "resync",
        /// The sync failed, possibly because the connection expired.
        SyncError => "sync_error",
        /// Some of an account's transactions failed to sync.
        SyncPartial => "sync_partial",
        /// User input (MFA) is needed: refresh flow.
        MfaRequired => "mfa_required",
        /// Credentials changed, access revoked or expired at the provider: reauth flow.
        CredentialsError => "credentials_error",
    }
}

open_enum! {
    /// Extra detail on a connection's error state (`extendedStatus`).
    pub enum ExtendedStatus {
        /// Consent has run out: no more syncs, data stays frozen.
        Expired => "expired",
        /// Syncs kept failing for 3 days and Moneyhub stopped retrying.
        StoppedSyncing => "stoppedSyncing",
    }
}

/// A user's connection to a provider (elements of `GET /users/{userId}/connections`' `data`).
///
/// `error` is always written, as `null` when `None`, matching Moneyhub's healthy connections.
///
/// ```
/// use moneyhub_types::{decode, Connection, ConnectionStatus};
/// let c: Connection = decode(br#"{"id":"b:1","name":"Bank","type":"api",
///     "connectedOn":"2025-01-02T10:00:00.000Z","accountIds":[],"status":"ok","error":null}"#)?;
/// assert_eq!(c.status, ConnectionStatus::Ok);
/// assert!(serde_json::to_string(&c).unwrap().contains(r#""error":null"#));
/// # Ok::<(), moneyhub_types::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Connection {
    /// Connection id, `<bankId>:<uuid>`.
    pub id: ConnectionId,
    /// Provider display name.
    pub name: String,
    /// Connection kind (wire `type`).
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// Creation time.
    #[serde(with = "crate::time::timestamp")]
    pub connected_on: DateTime<Utc>,
    /// Last time data was *successfully* fetched from the provider.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub last_updated: Option<DateTime<Utc>>,
    /// Last sync *attempt*, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Consent expiry (absent for legacy connections and some banks).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Accounts belonging to the connection.
    #[serde(default)]
    pub account_ids: Vec<AccountId>,
    /// Health.
    pub status: ConnectionStatus,
    /// Error code when `status` is `error`; `null` on the wire when healthy.
    #[serde(default)]
    pub error: Option<ConnectionError>,
    /// Extra detail on an error state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_status: Option<ExtendedStatus>,
    /// `true`: the client may renew consent itself (reconsent or PATCH `expiresAt`);
    /// `false`: full reauth with the bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpp_consent: Option<bool>,
    /// When the user last consented.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub user_consented_at: Option<DateTime<Utc>>,
    /// The connection fetches once and never again automatically (legacy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_sync_only: Option<bool>,
    /// Undocumented flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_mfa: Option<bool>,
}

/// Body of `PATCH /users/{userId}/connections/{connectionId}`: the new consent expiry
/// (at most 90 days ahead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPatch {
    /// New consent expiry.
    #[serde(with = "crate::time::timestamp")]
    pub expires_at: DateTime<Utc>,
}
