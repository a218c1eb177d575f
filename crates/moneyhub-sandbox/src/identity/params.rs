//! OAuth parameters: form bodies and query strings parsed the way an authorisation server
//! must (RFC 6749 §3.1: repeated parameters are an error, empty ones count as absent), plus
//! the response helpers every identity endpoint shares.

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::OAuthError;
use crate::request_log::LogNote;

/// The longest value any parameter may have. Request objects and client assertions are the
/// biggest legitimate values (a few KiB); anything far larger is abuse, not a client.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// The longest parameter name accepted.
const MAX_KEY_LEN: usize = 256;

/// A set of request parameters, each present at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Bytes held: every key and value.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets `key` (replacing any value).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_string(), value.into());
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// Copies every parameter of `winner` over this set (request-object and pushed values win
    /// over plain ones).
    pub fn overlay(&mut self, winner: &Params) {
        for (k, v) in &winner.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }

    /// Parses `application/x-www-form-urlencoded` pairs.
    pub fn parse(raw: &[u8]) -> Result<Params, OAuthError> {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(raw) {
            if k.len() > MAX_KEY_LEN {
                return Err(OAuthError::invalid_request("parameter name too long"));
            }
            if v.len() > MAX_VALUE_LEN {
                return Err(OAuthError::invalid_request(format!("'{k}' parameter is too long")));
            }
            // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
            if v.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "'{k}' parameter must only be provided once"
                )));
            }
        }
        Ok(Params(map))
    }

    /// Parses a form body, checking its content type when one is given.
    pub fn from_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            if !ct.starts_with("application/x-www-form-urlencoded") {
                return Err(OAuthError::invalid_request(
                    "only application/x-www-form-urlencoded content-type bodies are supported",
                ));
            }
        }
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthError::invalid_request("the request body is not valid UTF-8"));
        }
        Params::parse(body)
    }
}

/// A JSON response that must not be cached (RFC 6749 §5.1).
pub fn no_store(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// Attaches a request-log note to a response.
pub fn with_note(mut res: Response, note: String) -> Response {
    res.extensions_mut().insert(LogNote(note));
    res
}

/// A random URL-safe token with 256 bits of entropy (codes, request URIs, refresh tokens).
pub fn random_token() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random version-4 UUID (not seeded: identifiers of sessions, not of data).
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// Whether `s` is a usable scope list: at least one token, and only RFC 6749 §3.3
/// scope-token characters and spaces (repeated spaces are tolerated and skipped).
pub fn scope_is_well_formed(s: &str) -> bool {
    s.split(' ').filter(|t| !t.is_empty()).count() > 0
        && s.bytes()
            .all(|b| b == b' ' || (b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)))
}

/// The scope tokens of a scope string.
pub fn scope_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|t| !t.is_empty())
}

/// A scope string with single spaces.
pub fn normalise_scope(s: &str) -> String {
    scope_tokens(s).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_rejected_and_empty_ones_ignored() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=&b=x%20y&c=+").unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y"));
        assert_eq!(p.get("c"), Some(" "));
    }

    #[test]
    fn scopes() {
        assert!(scope_is_well_formed("openid id:abc accounts:read"));
        assert!(!scope_is_well_formed(""));
        assert!(!scope_is_well_formed("   "));
        assert!(!scope_is_well_formed("a\"b"));
        assert!(!scope_is_well_formed("a\\b"));
        assert!(!scope_is_well_formed("é"));
        assert_eq!(normalise_scope(" a  b "), "a b");
    }
}
