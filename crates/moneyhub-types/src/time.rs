//! Timestamp and date (de)serialisation in Moneyhub's wire formats.
//!
//! Moneyhub writes timestamps as ISO-8601 in UTC with milliseconds and `Z`
//! (`2019-09-27T14:29:43.687Z`) and dates as `YYYY-MM-DD`. The models in this crate store
//! [`DateTime<Utc>`] and [`NaiveDate`] and use these modules through `#[serde(with = …)]`, so
//! documented values round-trip byte-exactly.
//!
//! Reading is lenient: a timestamp may carry any UTC offset (converted to UTC), omit the zone
//! (taken as UTC) or be a bare date (midnight UTC); a date may also be given as a timestamp (its
//! calendar date in UTC is kept). Writing always produces the canonical form, so such inputs are
//! normalised on re-encoding.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Event {
//!     #[serde(with = "moneyhub_types::time::timestamp")]
//!     at: DateTime<Utc>,
//! }
//! let e: Event = serde_json::from_str(r#"{"at":"2025-01-03T09:00:07+01:00"}"#)?;
//! assert_eq!(serde_json::to_string(&e)?, r#"{"at":"2025-01-03T08:00:07.000Z"}"#);
//! # Ok::<(), serde_json::Error>(())
//! ```

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// Formats a timestamp the way Moneyhub does: `2019-09-27T14:29:43.687Z`.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a timestamp leniently (see the [module docs](self)).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

/// Parses a date leniently (see the [module docs](self)).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| parse_timestamp(s).map(|at| at.date_naive()))
}

fn bad_timestamp<E: serde::de::Error>(s: &str) -> E {
    E::custom(format_args!(
        "invalid timestamp {s:?}: expected an ISO-8601 date-time such as 2019-09-27T14:29:43.687Z"
    ))
}

fn bad_date<E: serde::de::Error>(s: &str) -> E {
    E::custom(format_args!("invalid date {s:?}: expected YYYY-MM-DD such as 2025-01-31"))
}

/// `#[serde(with = "moneyhub_types::time::timestamp")]` for `DateTime<Utc>` fields.
pub mod timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as `2019-09-27T14:29:43.687Z`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_timestamp(at))
    }

    /// Deserialises leniently (see the [module docs](super)).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(deserializer)?;
        super::parse_timestamp(&s).ok_or_else(|| super::bad_timestamp(&s))
    }
}

/// `#[serde(with = "moneyhub_types::time::timestamp_opt")]` for `Option<DateTime<Utc>>` fields
/// (`null` ↔ `None`; combine with `default` and `skip_serializing_if` for optional fields).
pub mod timestamp_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `Some` as `2019-09-27T14:29:43.687Z` and `None` as `null`.
    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_str(&super::format_timestamp(at)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises `null` as `None`, anything else leniently (see the [module docs](super)).
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(s) => super::parse_timestamp(&s).map(Some).ok_or_else(|| super::bad_timestamp(&s)),
        }
    }
}

/// `#[serde(with = "moneyhub_types::time::date")]` for `NaiveDate` fields (`YYYY-MM-DD`).
pub mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&date.format("%Y-%m-%d"))
    }

    /// Deserialises leniently (see the [module docs](super)).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(deserializer)?;
        super::parse_date(&s).ok_or_else(|| super::bad_date(&s))
    }
}

/// `#[serde(with = "moneyhub_types::time::date_opt")]` for `Option<NaiveDate>` fields.
pub mod date_opt {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `Some` as `YYYY-MM-DD` and `None` as `null`.
    pub fn serialize<S: Serializer>(date: &Option<NaiveDate>, serializer: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => serializer.collect_str(&date.format("%Y-%m-%d")),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises `null` as `None`, anything else leniently (see the [module docs](super)).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(s) => super::parse_date(&s).map(Some).ok_or_else(|| super::bad_date(&s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_timestamps() {
        let z = parse_timestamp("2025-01-03T09:00:07.000Z");
        assert_eq!(z.map(|t| format_timestamp(&t)).as_deref(), Some("2025-01-03T09:00:07.000Z"));
        assert_eq!(parse_timestamp("2025-01-03T09:00:07"), z);
        assert_eq!(
            parse_timestamp("2025-01-03").map(|t| format_timestamp(&t)).as_deref(),
            Some("2025-01-03T00:00:00.000Z")
        );
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_date("2017-11-28T00:00:00.000Z"), NaiveDate::from_ymd_opt(2017, 11, 28));
    }
}
