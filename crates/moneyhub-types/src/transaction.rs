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
///
/// The fields every transaction carries are inline; the provider detail that most transactions
/// lack (merchant, counterparty accounts, card, codes, splits...) lives in [`details`], boxed
/// and present only when at least one of its fields is. Inside it, the large and rarely sent
/// parts (card, the two parties' accounts and banks, enhanced categories) are boxed on their
/// own, so that a transaction with only a code or two (the common case: Moneyhub's sandbox
/// sends a `proprietaryTransactionCode` with every one) pays for a small box, not for every
/// detail Moneyhub could send. A client holding 10,000 transactions after a by-ids fetch pays
/// for what they contain. On the wire the shape is flat, exactly as Moneyhub sends it.
///
/// [`details`]: Transaction::details
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transaction {
    /// Transaction id.
    pub id: TransactionId,
    /// The account it belongs to.
    pub account_id: Option<AccountId>,
    /// Amount (`value` negative = money out).
    pub amount: Amount,
    /// Category.
    pub category_id: CategoryId,
    /// Whether the user confirmed the category.
    pub category_id_confirmed: bool,
    /// When it happened (`T12:00:00.000Z` when the provider gives no time).
    pub date: DateTime<Utc>,
    /// Last change of any kind.
    pub date_modified: DateTime<Utc>,
    /// When it was created.
    pub date_created: Option<DateTime<Utc>>,
    /// Full description, as on the statement.
    pub long_description: String,
    /// Cleaned-up, editable description.
    pub short_description: String,
    /// User notes (default `""`).
    pub notes: String,
    /// Posted or pending.
    pub status: TransactionStatus,
    /// The provider's transaction id.
    pub provider_id: Option<String>,
    /// The optional provider detail, when there is any (see [`Transaction::details`]).
    pub extra: Option<Box<TransactionDetails>>,
}

impl Transaction {
    /// The optional provider detail (all `None` when the transaction has none).
    pub fn details(&self) -> &TransactionDetails {
        self.extra.as_deref().unwrap_or(&TransactionDetails::EMPTY)
    }

    /// Mutable provider detail, created on first use.
    pub fn details_mut(&mut self) -> &mut TransactionDetails {
        self.extra.get_or_insert_with(Default::default)
    }
}

/// The optional provider detail of a [`Transaction`] (swagger fields most transactions lack).
///
/// The large parts that are rarely present (card, parties, their banks, enhanced categories)
/// are boxed each on their own, which keeps this struct under 512 bytes (it was ~1 KB with
/// them inline): it is allocated whenever any one detail is present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionDetails {
    /// When funds become available / are withdrawn.
    pub value_date: Option<DateTime<Utc>>,
    /// Counterparty id.
    pub counterparty_id: Option<String>,
    /// Project id.
    pub project_id: Option<String>,
    /// Enhanced categories, e.g. `{"uk-tax-hmrc": "income.rent"}`.
    pub enhanced_categories: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// Splits.
    pub splits: Option<Vec<TransactionSplit>>,
    /// ISO transaction code.
    pub transaction_code: Option<TransactionCode>,
    /// Proprietary bank transaction code.
    pub proprietary_transaction_code: Option<ProprietaryTransactionCode>,
    /// Account balance after the transaction.
    pub balance: Option<Amount>,
    /// Type of `balance`.
    pub balance_type: Option<BalanceType>,
    /// Statement reference.
    pub statement_reference: Option<String>,
    /// Merchant name.
    pub merchant_name: Option<String>,
    /// ISO 18245 merchant category code.
    pub merchant_category_code: Option<String>,
    /// Card used.
    pub card_instrument: Option<Box<CardInstrument>>,
    /// Creditor's account (debits).
    pub creditor_account: Option<Box<PartyAccount>>,
    /// Creditor's bank.
    pub creditor_agent: Option<Box<PartyAgent>>,
    /// Debtor's account (credits).
    pub debtor_account: Option<Box<PartyAccount>>,
    /// Debtor's bank.
    pub debtor_agent: Option<Box<PartyAgent>>,
    /// Transaction reference (e.g. a Faster Payments id), open banking only.
    pub transaction_reference: Option<String>,
    /// Unstructured narrative, open banking only.
    pub transaction_information: Option<String>,
}

impl TransactionDetails {
    /// No detail at all.
    pub const EMPTY: TransactionDetails = TransactionDetails {
        value_date: None,
        counterparty_id: None,
        project_id: None,
        enhanced_categories: None,
        splits: None,
        transaction_code: None,
        proprietary_transaction_code: None,
        balance: None,
        balance_type: None,
        statement_reference: None,
        merchant_name: None,
        merchant_category_code: None,
        card_instrument: None,
        creditor_account: None,
        creditor_agent: None,
        debtor_account: None,
        debtor_agent: None,
        transaction_reference: None,
        transaction_information: None,
    };

    /// Whether every field is absent.
    pub fn is_empty(&self) -> bool {
        *self == Self::EMPTY
    }
}

/// The flat wire shape, decoded by serde's derive (so decode errors still name the field).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    id: TransactionId,
    #[serde(default)]
    account_id: Option<AccountId>,
    amount: Amount,
    category_id: CategoryId,
    category_id_confirmed: bool,
    #[serde(with = "crate::time::timestamp")]
    date: DateTime<Utc>,
    #[serde(with = "crate::time::timestamp")]
    date_modified: DateTime<Utc>,
    #[serde(default, with = "crate::time::timestamp_opt")]
    date_created: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::time::timestamp_opt")]
    value_date: Option<DateTime<Utc>>,
    long_description: String,
    short_description: String,
    #[serde(default)]
    notes: String,
    status: TransactionStatus,
    #[serde(default)]
    provider_id: Option<String>,
    #[serde(default)]
    counterparty_id: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    enhanced_categories: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    splits: Option<Vec<TransactionSplit>>,
    #[serde(default)]
    transaction_code: Option<TransactionCode>,
    #[serde(default)]
    proprietary_transaction_code: Option<ProprietaryTransactionCode>,
    #[serde(default)]
    balance: Option<Amount>,
    #[serde(default)]
    balance_type: Option<BalanceType>,
    #[serde(default)]
    statement_reference: Option<String>,
    #[serde(default)]
    merchant_name: Option<String>,
    #[serde(default)]
    merchant_category_code: Option<String>,
    #[serde(default)]
    card_instrument: Option<CardInstrument>,
    #[serde(default)]
    creditor_account: Option<PartyAccount>,
    #[serde(default)]
    creditor_agent: Option<PartyAgent>,
    #[serde(default)]
    debtor_account: Option<PartyAccount>,
    #[serde(default)]
    debtor_agent: Option<PartyAgent>,
    #[serde(default)]
    transaction_reference: Option<String>,
    #[serde(default)]
    transaction_information: Option<String>,
}

impl<'de> Deserialize<'de> for Transaction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let details = TransactionDetails {
            value_date: w.value_date,
            counterparty_id: w.counterparty_id,
            project_id: w.project_id,
            enhanced_categories: w.enhanced_categories.map(Box::new),
            splits: w.splits,
            transaction_code: w.transaction_code,
            proprietary_transaction_code: w.proprietary_transaction_code,
            balance: w.balance,
            balance_type: w.balance_type,
            statement_reference: w.statement_reference,
            merchant_name: w.merchant_name,
            merchant_category_code: w.merchant_category_code,
            card_instrument: w.card_instrument.map(Box::new),
            creditor_account: w.creditor_account.map(Box::new),
            creditor_agent: w.creditor_agent.map(Box::new),
            debtor_account: w.debtor_account.map(Box::new),
            debtor_agent: w.debtor_agent.map(Box::new),
            transaction_reference: w.transaction_reference,
            transaction_information: w.transaction_information,
        };
        Ok(Transaction {
            id: w.id,
            account_id: w.account_id,
            amount: w.amount,
            category_id: w.category_id,
            category_id_confirmed: w.category_id_confirmed,
            date: w.date,
            date_modified: w.date_modified,
            date_created: w.date_created,
            long_description: w.long_description,
            short_description: w.short_description,
            notes: w.notes,
            status: w.status,
            provider_id: w.provider_id,
            extra: (!details.is_empty()).then(|| Box::new(details)),
        })
    }
}

/// The flat wire shape, borrowed, for serialising.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireRef<'a> {
    id: &'a TransactionId,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a AccountId>,
    amount: &'a Amount,
    category_id: &'a CategoryId,
    category_id_confirmed: bool,
    #[serde(with = "crate::time::timestamp")]
    date: DateTime<Utc>,
    #[serde(with = "crate::time::timestamp")]
    date_modified: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    date_created: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    value_date: Option<DateTime<Utc>>,
    long_description: &'a str,
    short_description: &'a str,
    notes: &'a str,
    status: &'a TransactionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counterparty_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enhanced_categories: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    splits: Option<&'a Vec<TransactionSplit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_code: Option<&'a TransactionCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proprietary_transaction_code: Option<&'a ProprietaryTransactionCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    balance: Option<&'a Amount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    balance_type: Option<&'a BalanceType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merchant_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merchant_category_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card_instrument: Option<&'a CardInstrument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creditor_account: Option<&'a PartyAccount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creditor_agent: Option<&'a PartyAgent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    debtor_account: Option<&'a PartyAccount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    debtor_agent: Option<&'a PartyAgent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_information: Option<&'a str>,
}

impl Serialize for Transaction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.details();
        WireRef {
            id: &self.id,
            account_id: self.account_id.as_ref(),
            amount: &self.amount,
            category_id: &self.category_id,
            category_id_confirmed: self.category_id_confirmed,
            date: self.date,
            date_modified: self.date_modified,
            date_created: self.date_created,
            value_date: d.value_date,
            long_description: &self.long_description,
            short_description: &self.short_description,
            notes: &self.notes,
            status: &self.status,
            provider_id: self.provider_id.as_deref(),
            counterparty_id: d.counterparty_id.as_deref(),
            project_id: d.project_id.as_deref(),
            enhanced_categories: d.enhanced_categories.as_deref(),
            splits: d.splits.as_ref(),
            transaction_code: d.transaction_code.as_ref(),
            proprietary_transaction_code: d.proprietary_transaction_code.as_ref(),
            balance: d.balance.as_ref(),
            balance_type: d.balance_type.as_ref(),
            statement_reference: d.statement_reference.as_deref(),
            merchant_name: d.merchant_name.as_deref(),
            merchant_category_code: d.merchant_category_code.as_deref(),
            card_instrument: d.card_instrument.as_deref(),
            creditor_account: d.creditor_account.as_deref(),
            creditor_agent: d.creditor_agent.as_deref(),
            debtor_account: d.debtor_account.as_deref(),
            debtor_agent: d.debtor_agent.as_deref(),
            transaction_reference: d.transaction_reference.as_deref(),
            transaction_information: d.transaction_information.as_deref(),
        }
        .serialize(s)
    }
}

/// Element of transaction `splits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct PartyAgent {
    /// Name of the institution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Postal address, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A transaction as the provider sent it (`GET /transactions/unenriched`, the swagger's
/// `TransactionUnenriched`): no category, short description, notes, counterparty, splits or
/// projects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnenrichedTransaction {
    /// Transaction id (the same as the enriched transaction's).
    pub id: TransactionId,
    /// The account it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    /// Amount (`value` negative = money out).
    pub amount: Amount,
    /// When it happened.
    #[serde(with = "crate::time::timestamp")]
    pub date: DateTime<Utc>,
    /// Last change.
    #[serde(with = "crate::time::timestamp")]
    pub date_modified: DateTime<Utc>,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub date_created: Option<DateTime<Utc>>,
    /// When funds become available / are withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub value_date: Option<DateTime<Utc>>,
    /// The description as on the statement.
    pub long_description: String,
    /// Posted or pending.
    pub status: TransactionStatus,
    /// The provider's transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
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
    /// Every other provider field (statement reference, merchant, card, parties...), as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
