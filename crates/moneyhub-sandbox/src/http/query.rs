//! Query strings the way Moneyhub's clients send them: repeated keys (`ids=a&ids=b`), the
//! bracketed form (`ids[]=a`), bare keys for null values (`?startDate`, `?undefined`) which
//! count as absent, and unknown keys, which are ignored.

use chrono::NaiveDate;

use crate::error::ApiError;

/// A parsed query string.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string (without `?`).
    pub fn parse(raw: Option<&str>) -> Self {
        let mut pairs = Vec::new();
        for piece in raw.unwrap_or("").split('&') {
            // A bare key (`?startDate`, `?undefined`) is how query-string serialises a null
            // value: treat it as absent.
            let Some((k, v)) = piece.split_once('=') else { continue };
            let k = decode(k);
            let key = k.strip_suffix("[]").unwrap_or(&k).to_string();
            pairs.push((key, decode(v)));
        }
        Query { pairs }
    }

    /// The raw string of the first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (repeated keys; a single comma-free value is one element).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// An integer in `min..=max`, or `default` when absent.
    pub fn int(&self, key: &str, min: i64, max: i64, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(s) => {
                let n: i64 = s
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("\"{key}\" must be an integer, got {s:?}")))?;
                if n < min || n > max {
                    return Err(ApiError::bad_request(format!(
                        "\"{key}\" must be between {min} and {max}, got {n}"
                    )));
                }
                Ok(n)
            }
        }
    }

    /// A boolean (`true`/`false`), or `default` when absent.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(s) => Err(ApiError::bad_request(format!("\"{key}\" must be true or false, got {s:?}"))),
        }
    }

    /// A `YYYY-MM-DD` date.
    pub fn date(&self, key: &str) -> Result<Option<NaiveDate>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| {
                ApiError::bad_request(format!("\"{key}\" must be a date (YYYY-MM-DD), got {s:?}"))
            }),
        }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_bracketed_and_bare_keys() {
        let q = Query::parse(Some("ids=a&ids=b&ids[]=c&startDate&undefined&limit=5&text=caf%C3%A9+x"));
        assert_eq!(q.all("ids"), vec!["a", "b", "c"]);
        assert_eq!(q.get("startDate"), None);
        assert_eq!(q.get("undefined"), None);
        assert_eq!(q.int("limit", 0, 1000, 10).unwrap(), 5);
        assert_eq!(q.get("text"), Some("café x"));
        assert!(q.int("text", 0, 10, 0).is_err());
        assert_eq!(Query::parse(Some("limit=")).get("limit"), Some(""));
        assert!(Query::parse(Some("limit=")).int("limit", 0, 10, 1).is_err());
        assert!(Query::parse(Some("limit=1001")).int("limit", 0, 1000, 1).is_err());
        assert!(Query::parse(Some("d=2025-13-01")).date("d").is_err());
    }
}
