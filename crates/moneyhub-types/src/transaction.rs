//! Transactions (Data API `GET /transactions`, `GET /transactions/{transactionId}`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{AccountId, Amount, BalanceType, CategoryId, TransactionId};

open_enum! {
    /// Booking status (transaction `status`).
    pub enum TransactionStatus {
        /// Booked.
        Posted => "posted",
        /// Not yet booked; may later be updated in place or replaced by a new id.
        Pending => "pending",
    }
}

/// A transaction (swagger `Transaction`). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// Transaction id.
    pub id: TransactionId,
    /// The account it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    /// Amount (`value` negative = money out).
    pub amount: Amount,
    /// Category.
    pub category_id: CategoryId,
    /// Whether the user confirmed the category.
    pub category_id_confirmed: bool,
    /// When it happened (`T12:00:00.000Z` when the provider gives no time).
    #[serde(with = "crate::time::timestamp")]
    pub date: DateTime<Utc>,
    /// Last change of any kind.
    #[serde(with = "crate::time::timestamp")]
    pub date_modified: DateTime<Utc>,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub date_created: Option<DateTime<Utc>>,
    /// When funds become available / are withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub value_date: Option<DateTime<Utc>>,
    /// Full description, as on the statement.
    pub long_description: String,
    /// Cleaned-up, editable description.
    pub short_description: String,
    /// User notes (default `""`).
    #[serde(default)]
    pub notes: String,
    /// Posted or pending.
    pub status: TransactionStatus,
    /// The provider's transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// Counterparty id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_id: Option<String>,
    /// Project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Enhanced categories, e.g. `{"uk-tax-hmrc": "income.rent"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced_categories: Option<serde_json::Map<String, serde_json::Value>>,
    /// Splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub splits: Option<Vec<TransactionSplit>>,
    /// ISO transaction code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_code: Option<TransactionCode>,
    /// Proprietary bank transaction code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proprietary_transaction_code: Option<ProprietaryTransactionCode>,
    /// Account balance after the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Amount>,
    /// Type of `balance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_type: Option<BalanceType>,
    /// Statement reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_reference: Option<String>,
    /// Merchant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// ISO 18245 merchant category code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_category_code: Option<String>,
    /// Card used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_instrument: Option<CardInstrument>,
    /// Creditor's account (debits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor_account: Option<PartyAccount>,
    /// Creditor's bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor_agent: Option<PartyAgent>,
    /// Debtor's account (credits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor_account: Option<PartyAccount>,
    /// Debtor's bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor_agent: Option<PartyAgent>,
    /// Transaction reference (e.g. a Faster Payments id), open banking only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_reference: Option<String>,
    /// Unstructured narrative, open banking only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_information: Option<String>,
}

/// Element of transaction `splits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionSplit {
    /// Split id (kept as a string).
    pub id: String,
    /// Amount of the split.
    pub amount: Amount,
    /// Category of the split.
    pub category_id: CategoryId,
    /// Description.
    pub description: String,
    /// Project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// ISO bank transaction code (transaction `transactionCode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionCode {
    /// Family within a domain, e.g. `BAC`.
    pub code: String,
    /// Sub-family (required by the swagger, but missing from its own example).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_code: Option<String>,
}

/// Proprietary bank transaction code (transaction `proprietaryTransactionCode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProprietaryTransactionCode {
    /// The code.
    pub code: String,
    /// Who issued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// Card used for a transaction (transaction `cardInstrument`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardInstrument {
    /// Cardholder name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// (Possibly masked) PAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pan: Option<String>,
    /// Card scheme, e.g. `VISA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_scheme_name: Option<String>,
    /// Authorisation type, e.g. `Contactless`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_type: Option<String>,
}

/// A counterparty account (transaction `creditorAccount` / `debtorAccount`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartyAccount {
    /// Account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sort code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_code: Option<String>,
    /// Account number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    /// IBAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    /// PAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pan: Option<String>,
}

/// A counterparty's bank (transaction `creditorAgent` / `debtorAgent`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartyAgent {
    /// Name of the institution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Postal address, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<serde_json::Map<String, serde_json::Value>>,
}
