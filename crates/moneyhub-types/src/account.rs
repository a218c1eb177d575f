//! Accounts (Data API `GET /accounts`, `GET /accounts/{accountId}`, balances).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{AccountId, Amount, ConnectionId};

open_enum! {
    /// Account type (account `type`).
    pub enum AccountType {
        /// Current account.
        CashCurrent => "cash:current",
        /// Savings account.
        Savings => "savings",
        /// Credit card.
        Card => "card",
        /// Investment.
        Investment => "investment",
        /// Loan (the docs also say `loans`, which stays `Unknown("loans")` but is treated as a
        /// loan by [`AccountType::staleness_threshold`]).
        Loan => "loan",
        /// Repayment mortgage.
        MortgageRepayment => "mortgage:repayment",
        /// Interest-only mortgage.
        MortgageInterestOnly => "mortgage:interestOnly",
        /// Pension.
        Pension => "pension",
        /// Defined-benefit pension.
        PensionDefinedBenefit => "pension:definedBenefit",
        /// Defined-contribution pension.
        PensionDefinedContribution => "pension:definedContribution",
        /// Other asset (e.g. a vehicle).
        Asset => "asset",
        /// Residential property.
        PropertiesResidential => "properties:residential",
        /// Buy-to-let property.
        PropertiesBuyToLet => "properties:buyToLet",
        /// Crypto assets.
        Crypto => "crypto",
    }
}

impl AccountType {
    /// How old `lastUpdated` may get before a connection holding this account type counts as
    /// stale (lifecycle rules §2): 40 days for `properties:*`, `asset`, `mortgage:*`, `loan` and
    /// `loans`; 2 days for every other type, unknown ones included.
    ///
    /// ```
    /// use chrono::Duration;
    /// use moneyhub_types::AccountType;
    /// assert_eq!(AccountType::MortgageRepayment.staleness_threshold(), Duration::days(40));
    /// assert_eq!(AccountType::from("loans").staleness_threshold(), Duration::days(40));
    /// assert_eq!(AccountType::CashCurrent.staleness_threshold(), Duration::days(2));
    /// assert_eq!(AccountType::from("new:kind").staleness_threshold(), Duration::days(2));
    /// ```
    pub fn staleness_threshold(&self) -> Duration {
        if self.is_slow_moving() {
            Duration::days(40)
        } else {
            Duration::days(2)
        }
    }

    /// Whether this type gets the long (40-day) staleness threshold.
    pub fn is_slow_moving(&self) -> bool {
        let s = self.as_str();
        s.starts_with("properties:") || s.starts_with("mortgage:") || matches!(s, "asset" | "loan" | "loans")
    }
}

open_enum! {
    /// Personal or business (account `accountType`, catalogue `userTypes`).
    pub enum CustomerType {
        /// Personal.
        Personal => "personal",
        /// Business.
        Business => "business",
    }
}

open_enum! {
    /// ISO 20022 balance type (balance `type`, transaction `balanceType`).
    pub enum BalanceType {
        /// Closing available.
        ClosingAvailable => "ClosingAvailable",
        /// Closing booked.
        ClosingBooked => "ClosingBooked",
        /// Closing cleared.
        ClosingCleared => "ClosingCleared",
        /// Expected.
        Expected => "Expected",
        /// Forward available.
        ForwardAvailable => "ForwardAvailable",
        /// Information.
        Information => "Information",
        /// Interim available.
        InterimAvailable => "InterimAvailable",
        /// Interim booked.
        InterimBooked => "InterimBooked",
        /// Interim cleared.
        InterimCleared => "InterimCleared",
        /// Opening available.
        OpeningAvailable => "OpeningAvailable",
        /// Opening booked.
        OpeningBooked => "OpeningBooked",
        /// Opening cleared.
        OpeningCleared => "OpeningCleared",
        /// Previously closed booked.
        PreviouslyClosedBooked => "PreviouslyClosedBooked",
    }
}

open_enum! {
    /// Mortgage interest type (details `interestType`).
    pub enum InterestType {
        /// Fixed rate.
        Fixed => "fixed",
        /// Variable rate.
        Variable => "variable",
    }
}

open_enum! {
    /// Period of an asset's running cost (details `runningCostPeriod`).
    pub enum RunningCostPeriod {
        /// Per month.
        Month => "month",
        /// Per year.
        Year => "year",
    }
}

/// An account (swagger `Account`).
///
/// Unknown fields are ignored. `performanceScore` is kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Account {
    /// Account id.
    pub id: AccountId,
    /// Account name.
    pub account_name: String,
    /// Account type (wire `type`).
    #[serde(rename = "type")]
    pub kind: AccountType,
    /// Currency (ISO 4217).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Latest balance.
    pub balance: Balance,
    /// Type-dependent details (defaults to empty when absent).
    #[serde(default)]
    pub details: AccountDetails,
    /// Transaction summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_data: Option<TransactionData>,
    /// When the account was added.
    #[serde(with = "crate::time::timestamp")]
    pub date_added: DateTime<Utc>,
    /// Last modification.
    #[serde(with = "crate::time::timestamp")]
    pub date_modified: DateTime<Utc>,
    /// Provider display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    /// Provider reference (catalogue `bankRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<String>,
    /// Connection (absent on manual accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    /// Provider id (`API` for API-created, `DEMO` for test users, else the bank id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// The provider's account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_account_id: Option<String>,
    /// The provider's parent account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_parent_account_id: Option<String>,
    /// The provider's account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_account_name: Option<String>,
    /// Last 4 digits of the account number (details scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_reference: Option<String>,
    /// Account holder name (details scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_holder_name: Option<String>,
    /// Account opening date.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub account_opening_date: Option<DateTime<Utc>>,
    /// Personal or business (wire `accountType`; not to be confused with `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<CustomerType>,
    /// Product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Provider identifications (e.g. savings roll numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_account_identifications: Option<Vec<ProviderAccountIdentification>>,
    /// Performance score (investments and pensions), kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_score: Option<serde_json::Value>,
    /// (Beta) latest balance per balance type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_balances: Option<Vec<Balance>>,
}

/// A balance (swagger `Balance`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Balance {
    /// Amount.
    pub amount: Amount,
    /// Date of the balance (`YYYY-MM-DD`).
    #[serde(with = "crate::time::date")]
    pub date: NaiveDate,
    /// ISO 20022 balance type (wire `type`), open banking connections only.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<BalanceType>,
}

/// Account `transactionData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TransactionData {
    /// Number of transactions.
    pub count: u64,
    /// Date of the earliest transaction.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub earliest_date: Option<DateTime<Utc>>,
    /// Date of the latest transaction.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub last_date: Option<DateTime<Utc>>,
}

/// Element of account `providerAccountIdentifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ProviderAccountIdentification {
    /// The identification.
    pub identification: String,
    /// Its scheme, e.g. `UK.Santander.SavingsRollNumber` (wire `type`).
    #[serde(rename = "type")]
    pub kind: String,
}

/// Type-dependent account details (swagger `AccountDetails`). All fields are optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccountDetails {
    /// Cash and savings: Annual Equivalent Rate, percent (wire `AER`).
    #[serde(
        rename = "AER",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::num::compact_f64_opt"
    )]
    pub aer: Option<f64>,
    /// Cards, mortgages, loans: Annual Percentage Rate, percent (wire `APR`).
    #[serde(
        rename = "APR",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::num::compact_f64_opt"
    )]
    pub apr: Option<f64>,
    /// Cash and savings: 6-digit sort code + 8-digit account number (details scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_code_account_number: Option<String>,
    /// Cash and savings: IBAN (details scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    /// Cards: full PAN (details scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pan: Option<String>,
    /// Cards: credit limit in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<i64>,
    /// Cash: overdraft limit in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdraft_limit: Option<i64>,
    /// Mortgages and loans: end date.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::date_opt")]
    pub end_date: Option<NaiveDate>,
    /// Mortgages: end of the fixed rate.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::date_opt")]
    pub fixed_date: Option<NaiveDate>,
    /// Loans: interest-free period in months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interest_free_period: Option<i64>,
    /// Mortgages: interest type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interest_type: Option<InterestType>,
    /// Mortgages: id of the associated property account (kept as a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_property: Option<String>,
    /// Mortgages and loans: monthly repayment in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_repayment: Option<i64>,
    /// Properties: postcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// Assets: running cost in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_cost: Option<i64>,
    /// Assets: running cost period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_cost_period: Option<RunningCostPeriod>,
    /// Mortgages: term in months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<i64>,
    /// Assets: yearly appreciation, percent (negative: depreciation).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::num::compact_f64_opt")]
    pub yearly_appreciation: Option<f64>,
}
