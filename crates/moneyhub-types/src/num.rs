//! Number helpers: decimal numbers that keep integral values integral on the wire.

/// `#[serde(with = "crate::num::compact_f64_opt")]` for `Option<f64>` fields.
///
/// A value such as `-10` decodes to `-10.0`; serde_json would write that back as `-10.0`, so the
/// serialiser writes integral values as integers (`-10`) and others as floats (`1.3`). Decoded
/// documents thus re-encode unchanged.
pub(crate) mod compact_f64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::compact_f64::serialize(v, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(deserializer)
    }
}

/// `#[serde(with = "crate::num::compact_f64")]` for `f64` fields (see [`compact_f64_opt`]).
pub(crate) mod compact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Largest magnitude below which every integral f64 is exactly an i64 (2^53).
    const EXACT: f64 = 9_007_199_254_740_992.0;

    pub(crate) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        let v = *value;
        if v.is_finite() && v.fract() == 0.0 && v.abs() <= EXACT {
            // Exact: |v| <= 2^53 and integral.
            #[allow(clippy::cast_possible_truncation)]
            serializer.serialize_i64(v as i64)
        } else {
            serializer.serialize_f64(v)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        f64::deserialize(deserializer)
    }
}
