//! Provider catalogues (`GET /oidc/.well-known/{all|api|legacy|test|payments|…}-connections`).
//!
//! The catalogue body is a bare JSON array: decode it as `Vec<CatalogueEntry>`.

use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{BankId, ConnectionType, CustomerType};

open_enum! {
    /// Availability of a provider's sync or auth (`status.sync`, `status.auth`).
    pub enum AvailabilityStatus {
        /// Fully available.
        Available => "AVAILABLE",
        /// Partially available.
        PartiallyAvailable => "PARTIALLY_AVAILABLE",
        /// Temporarily unavailable.
        TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
        /// Permanently unavailable.
        PermanentlyUnavailable => "PERMANENTLY_UNAVAILABLE",
    }
}

/// One provider of a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CatalogueEntry {
    /// Bank id (used in the `id:<bankId>` scope and as connection id prefix).
    pub id: BankId,
    /// Display name.
    pub name: String,
    /// Provider kind (wire `type`).
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// Country code, e.g. `GB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Groups sibling connections of one institution; icon key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_ref: Option<String>,
    /// Older alias of `bankRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ref: Option<String>,
    /// Whether the provider is in beta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_beta: Option<bool>,
    /// Kinds of account the provider offers.
    #[serde(default)]
    pub account_types: Vec<CatalogueAccountType>,
    /// Icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// Customer types served (`personal`, `business`).
    #[serde(default)]
    pub user_types: Vec<CustomerType>,
    /// Payment capabilities (e.g. `domestic`); empty/absent when not payment-capable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<String>,
    /// Current availability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProviderStatus>,
    /// Months of history the provider allows at the first consent, where limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months_initial_consent: Option<u32>,
    /// Days of history the provider allows at the first consent, where limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_initial_consent: Option<u32>,
}

/// An element of a catalogue entry's `accountTypes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CatalogueAccountType {
    /// Account kind. Kept as a free string: the docs use coarse names (`cash`, `card`,
    /// `mortgage`, …) while the official client declares full account types (`cash:current`, …).
    pub name: String,
    /// Whether support for this account kind is in beta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<bool>,
}

/// A catalogue entry's `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ProviderStatus {
    /// Availability of syncing.
    pub sync: AvailabilityStatus,
    /// Availability of authorisation (new connections).
    pub auth: AvailabilityStatus,
}
