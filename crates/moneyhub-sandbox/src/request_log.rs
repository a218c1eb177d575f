//! The request log: every request the sandbox answered, for tests to assert on (how many
//! token requests, whether a POST was sent twice, which raw paths a client used).
//!
//! Bounded by bytes as well as by count, because its text comes from anyone who can reach
//! the sandbox: a path or query is kept up to [`MAX_FIELD_BYTES`] (longer ones are cut and
//! end with [`TRUNCATED_MARK`], and the entry says `truncated: true`), a method up to 16
//! bytes, a note up to 1 KiB, and the whole log up to [`MAX_BYTES`] (oldest entries dropped
//! first). The control token given as `?token=` is never kept: its value is logged as
//! `[redacted]`.
//!
//! Request bodies (issue 23 #2, `moneyhub sandbox logs tail --bodies`) are kept up to
//! [`MAX_BODY_BYTES`] each (cut and marked like the other fields), counted in the log's byte
//! bound, with their secrets replaced by `[redacted]` before anything is kept: the values of
//! [`SECRET_KEYS`] in form and JSON bodies (at any depth), and in a body that claims to be
//! JSON but does not parse, every string value that follows one of those keys. A body that is
//! not UTF-8 is kept as `[N bytes, not text]`.

use std::borrow::Cow;
use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How many entries are kept (oldest dropped first).
pub const CAPACITY: usize = 200_000;

/// The most bytes the log holds, counting each entry's text and its fixed size (oldest
/// entries dropped first): 48 MiB.
pub const MAX_BYTES: usize = 48 * 1024 * 1024;

/// The longest path or query kept, in bytes.
pub const MAX_FIELD_BYTES: usize = 2048;

/// What ends a path, query or note that was cut.
pub const TRUNCATED_MARK: &str = "...[truncated]";

/// The most bytes of a request body kept (after redaction): 4 KiB.
pub const MAX_BODY_BYTES: usize = 4096;

/// Keys whose values never reach the log (form fields and JSON members, compared without
/// case, `_` and `-`): client credentials, tokens, codes, passwords.
pub const SECRET_KEYS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "assertion",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "password",
    "code",
    "code_verifier",
    "secret",
    "private_key",
];

/// Whether a form field or JSON member named `key` holds a secret (see [`SECRET_KEYS`]).
pub fn is_secret_key(key: &str) -> bool {
    let norm: String = key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    SECRET_KEYS.iter().any(|k| k.replace('_', "") == norm)
}

/// What the log keeps of a request body: `None` for an empty one; else the body with its
/// secrets redacted (see the module docs), cut to [`MAX_BODY_BYTES`], and whether it was cut.
pub fn body_for_log(content_type: Option<&str>, body: &[u8]) -> Option<(String, bool)> {
    if body.is_empty() {
        return None;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Some((format!("[{} bytes, not text]", body.len()), false));
    };
    let kind = content_type.unwrap_or("").to_ascii_lowercase();
    let looks_json = kind.contains("json") || text.trim_start().starts_with(['{', '[']);
    let redacted: String = if kind.starts_with("application/x-www-form-urlencoded") {
        redact_form(text)
    } else if looks_json {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(mut v) => {
                redact_json(&mut v);
                serde_json::to_string(&v).unwrap_or_default()
            }
            Err(_) => redact_json_text(text),
        }
    } else if text.contains('=') && !text.contains(char::is_whitespace) {
        // A form without its content type (`curl -d`).
        redact_form(text)
    } else {
        text.to_owned()
    };
    let kept = bounded(&redacted, MAX_BODY_BYTES);
    let cut = matches!(kept, Cow::Owned(_));
    Some((kept.into_owned(), cut))
}

/// A form body with the values of secret fields replaced by `[redacted]` (the rest as sent).
fn redact_form(text: &str) -> String {
    text.split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            let decoded =
                form_urlencoded::parse(format!("{key}=").as_bytes()).next().map(|(k, _)| k.into_owned());
            if decoded.is_some_and(|k| is_secret_key(&k)) {
                format!("{key}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Replaces the value of every secret member, at any depth, with `"[redacted]"`.
fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if is_secret_key(k) {
                    *val = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_json(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// For text that claims to be JSON but does not parse: every string that follows a quoted
/// secret key and a colon is replaced by `[redacted]` (what cannot be parsed is still shown,
/// since a malformed body is what one looks for in the log, but its secrets are not).
fn redact_json_text(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    // The end (exclusive) of the JSON string starting at `start` (a quote).
    let string_end = |start: usize| {
        let mut j = start + 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'"' => return j + 1,
                _ => j += 1,
            }
        }
        b.len()
    };
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let end = string_end(i);
        let key = text.get(i + 1..end.saturating_sub(1).max(i + 1)).unwrap_or("");
        let mut j = end;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if is_secret_key(key) && j < b.len() && b[j] == b':' {
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let value_end = string_end(j);
                out.push_str(&text[copied..j]);
                out.push_str("\"[redacted]\"");
                copied = value_end;
                i = value_end;
                continue;
            }
        }
        i = end;
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

const MAX_METHOD_BYTES: usize = 16;
const MAX_NOTE_BYTES: usize = 1024;

/// `s` cut to at most `max` bytes (at a character boundary) and marked with
/// [`TRUNCATED_MARK`] when it was longer.
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max.saturating_sub(TRUNCATED_MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{TRUNCATED_MARK}", &s[..end]))
}

/// A query string with the value of every `token` parameter (the dashboard's control token,
/// right or wrong) replaced by `[redacted]`.
pub fn redact_query(query: &str) -> Cow<'_, str> {
    let is_token = |pair: &str| {
        let key = pair.split('=').next().unwrap_or("");
        key.eq_ignore_ascii_case("token") || key.eq_ignore_ascii_case("%74oken") || decoded_is_token(key)
    };
    if !query.split('&').any(is_token) {
        return Cow::Borrowed(query);
    }
    let pairs: Vec<&str> =
        query.split('&').map(|pair| if is_token(pair) { "token=[redacted]" } else { pair }).collect();
    Cow::Owned(pairs.join("&"))
}

/// Whether a percent-encoded (or `+`-encoded) key decodes to `token`.
fn decoded_is_token(key: &str) -> bool {
    key.contains('%')
        && form_urlencoded::parse(format!("{key}=").as_bytes())
            .next()
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("token"))
}

/// One request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Sequence number (starts at 1, never reused).
    pub seq: u64,
    /// Virtual time it arrived (RFC 3339).
    pub at: String,
    /// Method.
    pub method: String,
    /// Path as received (not decoded).
    pub path: String,
    /// Raw query string, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Response status (0 when the connection was dropped on purpose).
    pub status: u16,
    /// Time spent answering, microseconds.
    pub duration_us: u64,
    /// What the handler noted (grant type and subject for token requests, fault applied...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The request body, secrets redacted and cut to `MAX_BODY_BYTES` (see the module
    /// docs); absent when the request had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Whether the method, path, query, note or body was cut to fit the log's bounds (they then
    /// end with `TRUNCATED_MARK`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl LogEntry {
    /// Cuts the entry's text to the log's bounds and redacts `?token=`; sets
    /// [`LogEntry::truncated`] when anything was cut.
    pub fn bound(mut self) -> Self {
        let mut cut = false;
        let mut fit = |s: &mut String, max: usize| {
            if let Cow::Owned(o) = bounded(s, max) {
                *s = o;
                cut = true;
            }
        };
        fit(&mut self.method, MAX_METHOD_BYTES);
        fit(&mut self.path, MAX_FIELD_BYTES);
        if let Some(q) = &mut self.query {
            if let Cow::Owned(r) = redact_query(q) {
                *q = r;
            }
            fit(q, MAX_FIELD_BYTES);
        }
        if let Some(n) = &mut self.note {
            fit(n, MAX_NOTE_BYTES);
        }
        if let Some(b) = &mut self.body {
            fit(b, MAX_BODY_BYTES);
        }
        self.truncated |= cut;
        self
    }

    /// Bytes the entry holds (its text and its fixed size), as counted against `MAX_BYTES`.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<LogEntry>()
            + self.at.len()
            + self.method.len()
            + self.path.len()
            + self.query.as_ref().map_or(0, String::len)
            + self.note.as_ref().map_or(0, String::len)
            + self.body.as_ref().map_or(0, String::len)
    }
}

/// A note a handler attaches to its response for the log (a response extension).
#[derive(Debug, Clone)]
pub struct LogNote(pub String);

/// The log.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    bytes: usize,
    entries: VecDeque<LogEntry>,
}

impl RequestLog {
    /// Appends an entry (cut to the log's bounds, see [`LogEntry::bound`]), assigning its
    /// sequence number; drops the oldest entries beyond [`CAPACITY`] or [`MAX_BYTES`].
    pub fn push(&self, e: LogEntry) {
        let mut e = e.bound();
        let weight = e.weight();
        let mut g = self.inner.lock();
        g.seq += 1;
        e.seq = g.seq;
        while g.entries.len() >= CAPACITY || (g.bytes + weight > MAX_BYTES && !g.entries.is_empty()) {
            if let Some(old) = g.entries.pop_front() {
                g.bytes = g.bytes.saturating_sub(old.weight());
            }
        }
        g.bytes += weight;
        g.entries.push_back(e);
    }

    /// Bytes the log holds now (see [`LogEntry::weight`]).
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Entries with `seq > after`, at most `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Vec<LogEntry> {
        let g = self.inner.lock();
        let start = g.entries.partition_point(|e| e.seq <= after);
        g.entries.iter().skip(start).take(limit).cloned().collect()
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().seq
    }

    /// Forgets every entry (sequence numbers keep counting).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.entries.clear();
        g.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_values_are_redacted_whatever_their_spelling() {
        assert_eq!(redact_query("a=1&token=s3cret&b=2"), "a=1&token=[redacted]&b=2");
        assert_eq!(redact_query("TOKEN=x"), "token=[redacted]");
        assert_eq!(redact_query("%74oken=x&done=y"), "token=[redacted]&done=y");
        assert_eq!(redact_query("tok%65n=x"), "token=[redacted]");
        assert_eq!(redact_query("tokens=x"), "tokens=x");
    }

    #[test]
    fn bodies_keep_no_secret_and_at_most_4_kib() {
        let form = "grant_type=authorization_code&code=abc&client_assertion=eyJ.x.y&Client%5FSecret=s";
        let (kept, cut) = body_for_log(Some("application/x-www-form-urlencoded"), form.as_bytes()).unwrap();
        assert_eq!(
            kept,
            "grant_type=authorization_code&code=[redacted]&client_assertion=[redacted]&Client%5FSecret=[redacted]"
        );
        assert!(!cut);
        let json = br#"{"a":[{"refreshToken":"r"}],"clientSecret":"s","keep":"k"}"#;
        let (kept, _) = body_for_log(Some("application/json"), json).unwrap();
        assert!(!kept.contains("\"r\"") && !kept.contains("\"s\"") && kept.contains("\"k\""), "{kept}");
        // Not valid JSON: shown, but the string after a secret key is not.
        let broken = br#"{"password" : "hunter2", "user": "u", "code":"#;
        let (kept, _) = body_for_log(Some("application/json"), broken).unwrap();
        assert_eq!(kept, r#"{"password" : "[redacted]", "user": "u", "code":"#);
        let (kept, cut) = body_for_log(None, "x".repeat(10_000).as_bytes()).unwrap();
        assert!(cut && kept.len() <= MAX_BODY_BYTES && kept.ends_with(TRUNCATED_MARK));
        assert_eq!(body_for_log(None, &[0xff, 0xfe]).unwrap().0, "[2 bytes, not text]");
        assert_eq!(body_for_log(None, b""), None);
        // The body counts in the log's bytes.
        let entry = |body: Option<String>| LogEntry {
            seq: 0,
            at: String::new(),
            method: "POST".into(),
            path: "/".into(),
            query: None,
            status: 200,
            duration_us: 0,
            note: None,
            body,
            truncated: false,
        };
        assert_eq!(entry(Some(kept.clone())).weight() - entry(None).weight(), kept.len());
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_marked() {
        let s = "é".repeat(3000);
        let b = bounded(&s, MAX_FIELD_BYTES);
        assert!(b.len() <= MAX_FIELD_BYTES, "{}", b.len());
        assert!(b.ends_with(TRUNCATED_MARK));
        assert_eq!(bounded("short", 10), "short");
    }
}
