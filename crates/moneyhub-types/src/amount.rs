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
    pub currency: Currency,
}

/// An ISO 4217 currency code, kept exactly as received. The text is interned (a handful of
/// codes are shared by every amount), so an amount carries no allocation of its own.
///
/// ```
/// use moneyhub_types::Currency;
/// let gbp = Currency::from("GBP");
/// assert_eq!(gbp, "GBP");
/// assert_eq!(gbp.as_str(), "GBP");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(std::sync::Arc<str>);

impl Currency {
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for Currency {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Currency {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Currency {
    fn from(s: &str) -> Self {
        Currency(crate::ids::intern_str(s))
    }
}

impl From<String> for Currency {
    fn from(s: String) -> Self {
        Currency(crate::ids::intern_str(&s))
    }
}

impl PartialEq<str> for Currency {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Currency {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Currency;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a currency code string")
            }
            // A code already seen is looked up from the borrowed text: no allocation.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Currency, E> {
                Ok(Currency(crate::ids::intern_str(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl Amount {
    /// An amount with only `value` and `currency` set.
    pub fn new(value: i64, currency: impl Into<Currency>) -> Self {
        Self { value, major_units: None, minor_units: None, currency: currency.into() }
    }

    /// An amount with `major_units`/`minor_units` filled in for a currency with `exponent`
    /// decimal places (2 for GBP, 0 for JPY). Units are left `None` if they do not fit an `i64`
    /// (only possible for absurd exponents).
    pub fn from_minor_units(value: i64, currency: impl Into<Currency>, exponent: u32) -> Self {
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
