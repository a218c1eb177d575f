//! Fault injection: rules set through the control API (`/__sandbox/faults`) that make the
//! public routes misbehave the way a real service and network do — error statuses with
//! Moneyhub's bodies (and `Retry-After`), latency, dropped connections with no response, and
//! truncated JSON — so a client's retry, timeout and error handling can be tested.
//!
//! Rules are checked oldest first; the first one that matches the request (method and path)
//! and fires (its `rate`, drawn from a per-rule seeded stream) applies, and only that one.
//! A rule with `times` stops after firing that many times. Control routes (`/__sandbox/*`)
//! are never faulted, so a test can always switch faults off again.

pub mod middleware;
pub mod pattern;

use axum::http::StatusCode;
use parking_lot::Mutex;
use serde_json::Value;

use crate::kit::types::FaultSpec;
use crate::rng::{label, Rng};
use pattern::Pattern;

pub use middleware::{fault_layer, DropConnection};

/// The longest latency a rule may add (a typo of extra zeros should not hang a test suite
/// for hours).
pub const MAX_LATENCY_MS: u64 = 600_000;

/// The most bytes one fault rule may hold, as listed (its JSON): 16 KiB (a path pattern and
/// a message of a few KiB fit; a 2 MiB message does not).
pub const MAX_RULE_BYTES: usize = 16 * 1024;

/// The most bytes all fault rules together may hold, as listed: 1 MiB. Beyond it a new rule
/// is refused (400) until rules are removed (`DELETE /__sandbox/faults[/{id}]`).
pub const MAX_RULES_BYTES: usize = 1024 * 1024;

/// What a fired rule does to the response.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Answer with an error instead of running the route.
    Error {
        /// The status.
        status: StatusCode,
        /// The body's `code` (or OAuth `error`).
        code: Option<String>,
        /// The body's `message`.
        message: String,
        /// `Retry-After` header and `retryAfterSecs` field.
        retry_after: Option<u64>,
    },
    /// Close the connection without answering (the route does not run).
    Drop,
    /// Run the route, then answer 200 with the first half of its body (invalid JSON).
    Malformed,
    /// Only the latency: the route runs normally.
    None,
}

/// A fired rule, for the middleware.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The rule id.
    pub id: String,
    /// What to do.
    pub effect: Effect,
    /// Delay before anything else, milliseconds (real time).
    pub latency_ms: u64,
}

impl Applied {
    /// The request-log note: `fault:<id> status=503`, `fault:<id> drop`...
    pub fn note(&self) -> String {
        let mut s = format!("fault:{}", self.id);
        if self.latency_ms > 0 {
            s.push_str(&format!(" latency={}ms", self.latency_ms));
        }
        match &self.effect {
            Effect::Error { status, .. } => s.push_str(&format!(" status={}", status.as_u16())),
            Effect::Drop => s.push_str(" drop"),
            Effect::Malformed => s.push_str(" malformed"),
            Effect::None => {}
        }
        s
    }
}

/// One rule and its counters.
#[derive(Debug)]
struct Rule {
    id: String,
    method: Option<String>,
    pattern: Pattern,
    effect: Effect,
    latency_ms: u64,
    rate: f64,
    times: Option<u64>,
    /// Requests that matched method and path while the rule was active.
    matched: u64,
    /// Times it fired.
    hits: u64,
    rng: Rng,
}

impl Rule {
    fn active(&self) -> bool {
        self.times.is_none_or(|t| self.hits < t)
    }

    /// The rule as the control API shows it (the kit's type).
    fn to_json(&self) -> Value {
        let mut rule = crate::kit::types::FaultRule {
            id: self.id.clone(),
            method: self.method.clone(),
            path: self.pattern.raw.clone(),
            exact: self.pattern.exact,
            status: None,
            code: None,
            message: None,
            retry_after_secs: None,
            drop: self.effect == Effect::Drop,
            malformed: self.effect == Effect::Malformed,
            latency_ms: self.latency_ms,
            rate: self.rate,
            times: self.times,
            remaining: self.times.map(|t| t.saturating_sub(self.hits)),
            matched: self.matched,
            hits: self.hits,
            active: self.active(),
        };
        if let Effect::Error { status, code, message, retry_after } = &self.effect {
            rule.status = Some(status.as_u16());
            rule.code = code.clone();
            rule.message = Some(message.clone());
            rule.retry_after_secs = *retry_after;
        }
        serde_json::to_value(rule).unwrap_or_default()
    }
}

/// Every rule of one sandbox.
#[derive(Debug)]
pub struct Faults {
    seed: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    rules: Vec<Rule>,
}

impl Faults {
    /// No rules; rates draw from streams derived from `seed`.
    pub fn new(seed: u64) -> Self {
        Faults { seed, inner: Mutex::new(Inner::default()) }
    }

    /// Validates and adds a rule; returns it as listed.
    pub fn add(&self, req: FaultSpec) -> Result<Value, String> {
        let method = match req.method {
            None => None,
            Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Some(m.to_ascii_uppercase())
            }
            Some(m) => return Err(format!("method must be an HTTP method such as GET, got {m:?}")),
        };
        if req.path.starts_with("/__sandbox") {
            return Err("control routes (/__sandbox) are never faulted".into());
        }
        let pattern = Pattern::new(&req.path, req.exact)?;
        let latency_ms = req.latency_ms.unwrap_or(0);
        if latency_ms > MAX_LATENCY_MS {
            return Err(format!("latencyMs must be at most {MAX_LATENCY_MS}"));
        }
        let rate = req.rate.unwrap_or(1.0);
        if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
            return Err(format!("rate must be a probability between 0 and 1, got {rate}"));
        }
        if req.times == Some(0) {
            return Err("times must be at least 1 (omit it for no limit)".into());
        }
        let error_fields = req.status.is_some()
            || req.code.is_some()
            || req.message.is_some()
            || req.retry_after_secs.is_some();
        if req.drop && req.malformed {
            return Err("drop and malformed exclude each other".into());
        }
        if (req.drop || req.malformed) && error_fields {
            return Err(
                "status, code, message and retryAfterSecs do not combine with drop or malformed".into()
            );
        }
        if let Some(c) = &req.code {
            if c.is_empty() || c.len() > 100 {
                return Err("code must be 1 to 100 characters".into());
            }
        }
        let effect = if req.drop {
            Effect::Drop
        } else if req.malformed {
            Effect::Malformed
        } else if error_fields || latency_ms == 0 {
            // A rule with no effect at all would do nothing: it means "fail", 503 by default.
            let status = req.status.unwrap_or(503);
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .ok_or_else(|| format!("status must be an error status (400-599), got {status}"))?;
            let message = req
                .message
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("Injected fault").to_string());
            Effect::Error { status, code: req.code, message, retry_after: req.retry_after_secs }
        } else {
            Effect::None
        };
        let mut g = self.inner.lock();
        g.next += 1;
        let n = g.next;
        let rule = Rule {
            id: format!("fault-{n}"),
            method,
            pattern,
            effect,
            latency_ms,
            rate,
            times: req.times,
            matched: 0,
            hits: 0,
            rng: Rng::derive(self.seed, &[label("fault rule"), n]),
        };
        let listed = rule.to_json();
        let weight = listed.to_string().len();
        if weight > MAX_RULE_BYTES {
            g.next -= 1;
            return Err(format!(
                "the rule is {weight} bytes (at most {MAX_RULE_BYTES}): shorten its path or message"
            ));
        }
        let held: usize = g.rules.iter().map(|r| r.to_json().to_string().len()).sum();
        if held + weight > MAX_RULES_BYTES {
            g.next -= 1;
            return Err(format!(
                "the fault rules would hold {} bytes (at most {MAX_RULES_BYTES}): remove some first \
                 (DELETE /__sandbox/faults)",
                held + weight
            ));
        }
        g.rules.push(rule);
        Ok(listed)
    }

    /// The rule that fires for this request, if any (counting it).
    pub fn pick(&self, method: &str, path: &str) -> Option<Applied> {
        let mut g = self.inner.lock();
        for rule in g.rules.iter_mut() {
            if !rule.active()
                || rule.method.as_deref().is_some_and(|m| m != method)
                || !rule.pattern.matches(path)
            {
                continue;
            }
            rule.matched += 1;
            // No draw at rate 1: a certain rule should not consume its stream.
            if rule.rate < 1.0 && !rule.rng.chance(rule.rate) {
                continue;
            }
            rule.hits += 1;
            return Some(Applied {
                id: rule.id.clone(),
                effect: rule.effect.clone(),
                latency_ms: rule.latency_ms,
            });
        }
        None
    }

    /// Every rule, oldest first.
    pub fn list(&self) -> Vec<Value> {
        self.inner.lock().rules.iter().map(Rule::to_json).collect()
    }

    /// Removes a rule; whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        let mut g = self.inner.lock();
        let before = g.rules.len();
        g.rules.retain(|r| r.id != id);
        g.rules.len() != before
    }

    /// Back to a new sandbox's rules: none, and rule ids counting from the start again.
    pub fn reset(&self) {
        *self.inner.lock() = Inner::default();
    }

    /// Removes every rule; how many there were.
    pub fn clear(&self) -> usize {
        let mut g = self.inner.lock();
        let n = g.rules.len();
        g.rules.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> FaultSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation() {
        let f = Faults::new(1);
        assert!(f.add(req(json!({"path": "/x", "status": 200}))).is_err());
        assert!(f.add(req(json!({"path": "/x", "status": 600}))).is_err());
        assert!(f.add(req(json!({"path": "/x", "drop": true, "malformed": true}))).is_err());
        assert!(f.add(req(json!({"path": "/x", "drop": true, "status": 500}))).is_err());
        assert!(f.add(req(json!({"path": "/x", "rate": 1.5}))).is_err());
        assert!(f.add(req(json!({"path": "/x", "times": 0}))).is_err());
        assert!(f.add(req(json!({"path": "x"}))).is_err());
        assert!(f.add(req(json!({"path": "/__sandbox/faults"}))).is_err());
        assert!(f.add(req(json!({"path": "/x", "method": "G E T"}))).is_err());
        assert!(f.add(req(json!({"path": "/x", "latencyMs": MAX_LATENCY_MS + 1}))).is_err());
        assert!(f.list().is_empty());
        let v = f.add(req(json!({"path": "/x"}))).unwrap();
        assert_eq!(v["status"], 503);
        let v = f.add(req(json!({"path": "/y", "latencyMs": 5}))).unwrap();
        assert_eq!(v["status"], Value::Null);
        assert!(serde_json::from_value::<FaultSpec>(json!({"path": "/x", "bogus": 1})).is_err());
    }

    #[test]
    fn first_matching_rule_fires_and_times_limits_it() {
        let f = Faults::new(1);
        f.add(req(json!({"path": "/a", "method": "post", "status": 500, "times": 2}))).unwrap();
        f.add(req(json!({"path": "/a", "status": 502}))).unwrap();
        assert!(f.pick("GET", "/b").is_none());
        let ids: Vec<String> = (0..4).map(|_| f.pick("POST", "/a/1").unwrap().id).collect();
        assert_eq!(ids, ["fault-1", "fault-1", "fault-2", "fault-2"]);
        assert_eq!(f.pick("GET", "/a").unwrap().id, "fault-2");
        assert!(f.remove("fault-2"));
        assert!(!f.remove("fault-2"));
        assert!(f.pick("POST", "/a").is_none());
        assert_eq!(f.list()[0]["hits"], 2);
        assert_eq!(f.list()[0]["active"], false);
        assert_eq!(f.clear(), 1);
    }
}
