//! Path patterns of fault rules: segment-wise, `*` matching any run of characters within one
//! segment (so `/users/*/connections` matches any user). A pattern matches a path that starts
//! with its segments (a prefix on segment boundaries: `/v3/transactions` matches
//! `/v3/transactions` and `/v3/transactions/{id}`, not `/v3/transactions-x`) or, when exact,
//! exactly those segments.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As given (for listings).
    pub raw: String,
    segments: Vec<String>,
    /// Whether the path must have exactly the pattern's segments.
    pub exact: bool,
}

impl Pattern {
    /// Compiles `raw`, which must start with `/`.
    pub fn new(raw: &str, exact: bool) -> Result<Self, String> {
        if !raw.starts_with('/') {
            return Err(format!("path must start with '/', got {raw:?}"));
        }
        Ok(Pattern { raw: raw.to_string(), segments: segments(raw).map(str::to_string).collect(), exact })
    }

    /// Whether `path` (the request's raw path, no query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let mut path_segments = segments(path);
        for want in &self.segments {
            match path_segments.next() {
                Some(got) if glob(want, got) => {}
                _ => return false,
            }
        }
        !self.exact || path_segments.next().is_none()
    }
}

/// Non-empty segments: `//a/b/` → `a`, `b` (empty segments carry no meaning for routing).
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// `*` matches any (possibly empty) run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    // Middle parts in order, greedily leftmost, within the text between prefix and suffix.
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_on_segment_boundaries() {
        let p = Pattern::new("/v3/transactions", false).unwrap();
        assert!(p.matches("/v3/transactions"));
        assert!(p.matches("/v3/transactions/abc"));
        assert!(!p.matches("/v3/transactions-x"));
        assert!(!p.matches("/v3"));
        assert!(!p.matches("/v2.0/transactions"));
        let exact = Pattern::new("/v3/transactions", true).unwrap();
        assert!(!exact.matches("/v3/transactions/abc"));
        assert!(exact.matches("/v3/transactions/"));
        assert!(Pattern::new("/", false).unwrap().matches("/anything/at/all"));
        assert!(Pattern::new("v3", false).is_err());
    }

    #[test]
    fn stars_match_within_a_segment() {
        let p = Pattern::new("/users/*/connections", false).unwrap();
        assert!(p.matches("/users/abc/connections"));
        assert!(p.matches("/users/abc/connections/x/sync"));
        assert!(!p.matches("/users/abc/syncs"));
        assert!(!p.matches("/users"));
        assert!(glob("test-*", "test-connections"));
        assert!(glob("*-conn*s", "test-connections"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("*", ""));
    }
}
