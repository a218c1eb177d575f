//! Money amounts.

use serde::{Deserialize, Serialize};

/// An amount of money (swagger `Amount`).
///
/// `value` is in minor units of `currency` (pennies for GBP); negative means money going out of
/// the account. `major_units`/`minor_units` are the *positive* magnitudes Moneyhub adds for
/// display (`-2323` GBP → `23` and `23`) and may be absent.
///
/// ```
/// use moneyhub_types::Amount;
/// let a = Amount::from_minor_units(-2323, "GBP", 2);
/// assert_eq!((a.major_units, a.minor_units), (Some(23), Some(23)));
/// assert!(a.is_debit());
/// assert_eq!(
///     serde_json::to_string(&a)?,
///     r#"{"value":-2323,"majorUnits":23,"minorUnits":23,"currency":"GBP"}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Amount {
    /// Signed value in minor units of the currency.
    pub value: i64,
    /// Positive major units of `value` (pounds for GBP), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major_units: Option<i64>,
    /// Positive minor units of `value` (pennies for GBP), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_units: Option<i64>,
    /// ISO 4217 currency code.
    pub currency: String,
}

impl Amount {
    /// An amount with only `value` and `currency` set.
    pub fn new(value: i64, currency: impl Into<String>) -> Self {
        Self { value, major_units: None, minor_units: None, currency: currency.into() }
    }

    /// An amount with `major_units`/`minor_units` filled in for a currency with `exponent`
    /// decimal places (2 for GBP, 0 for JPY). Units are left `None` if they do not fit an `i64`
    /// (only possible for absurd exponents).
    pub fn from_minor_units(value: i64, currency: impl Into<String>, exponent: u32) -> Self {
        let magnitude = value.unsigned_abs();
        let (major, minor) = match 10u64.checked_pow(exponent) {
            Some(scale) => (i64::try_from(magnitude / scale).ok(), i64::try_from(magnitude % scale).ok()),
            None => (None, None),
        };
        Self { value, major_units: major, minor_units: minor, currency: currency.into() }
    }

    /// Money going out of the account (`value < 0`).
    pub fn is_debit(&self) -> bool {
        self.value < 0
    }

    /// Money coming into the account (`value > 0`).
    pub fn is_credit(&self) -> bool {
        self.value > 0
    }
}
