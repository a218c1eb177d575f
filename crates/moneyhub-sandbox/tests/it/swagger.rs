//! A small JSON-schema validator for the Swagger 2.0 subset Moneyhub's Data API swagger
//! uses, and the loader of that swagger (`tests/data/moneyhub-data-api-v2.swagger.json`).
//!
//! Supported: `$ref` (to `#/definitions/...`), `allOf`, `type` (with `integer` distinct from
//! `number`: `1.0` is not an integer), `properties`, `required`, `additionalProperties`
//! (`false` or a schema), `items`, `enum`, `pattern` (searched, not anchored, as JSON Schema
//! says), `format` (`date`, `date-time`, `uuid`, `uri`), `minimum`/`maximum` (and the
//! draft-4 boolean `exclusiveMinimum`/`exclusiveMaximum`), `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `uniqueItems` and `x-nullable`. Every violation carries the JSON
//! path of the offending value (`$.data[3].amount.value`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use regex_automata::meta::Regex;
use serde_json::{json, Value};

/// One schema violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON path of the value (`$` is the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A loaded swagger document.
pub struct Swagger {
    doc: Value,
    regexes: Mutex<HashMap<String, Result<Regex, String>>>,
}

/// Where the swagger lives: this crate's copy, `tests/data/moneyhub-data-api-v2.swagger.json`
/// (its origin: `docs/README.md`). In the crate, so the schema tests run wherever the crate
/// does, packaged or not.
pub fn swagger_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/moneyhub-data-api-v2.swagger.json")
}

/// The Data API swagger, loaded once. A missing or broken copy fails the test that needs it:
/// the schema checks never skip.
pub fn data_api() -> &'static Swagger {
    static DOC: OnceLock<Swagger> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = swagger_path();
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        assert_eq!(doc["swagger"], "2.0", "{} is not a Swagger 2.0 document", path.display());
        Swagger::new(doc)
    })
}

impl Swagger {
    /// Wraps a document (tests of the validator build their own).
    pub fn new(doc: Value) -> Self {
        Swagger { doc, regexes: Mutex::new(HashMap::new()) }
    }

    /// `#/definitions/<name>` as a `$ref` schema.
    pub fn definition(name: &str) -> Value {
        json!({"$ref": format!("#/definitions/{name}")})
    }

    /// The schema of `method path`'s `status` response (path as in the swagger, e.g.
    /// `/accounts/{accountId}`). Panics when the swagger has none: a test asking for it is
    /// wrong.
    pub fn response(&self, method: &str, path: &str, status: u16) -> Value {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "swagger has no {method} {path}");
        let schema = &op["responses"][status.to_string()]["schema"];
        assert!(schema.is_object(), "swagger has no schema for {method} {path} {status}");
        schema.clone()
    }

    /// Resolves a local `$ref`.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.doc.pointer(pointer)
    }

    /// Every violation of `value` against `schema` (empty when valid).
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(schema, value, "$", &mut out, 0);
        out
    }

    /// Panics listing every violation (at most 50) unless `value` is valid; `what` names it.
    pub fn assert_valid(&self, schema: &Value, value: &Value, what: &str) {
        let v = self.validate(schema, value);
        if !v.is_empty() {
            let listed: Vec<String> = v.iter().take(50).map(|x| format!("  {x}")).collect();
            panic!("{what}: {} schema violation(s):\n{}", v.len(), listed.join("\n"));
        }
    }

    fn regex(&self, pattern: &str) -> Result<Regex, String> {
        let mut cache = self.regexes.lock().unwrap();
        cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).map_err(|e| e.to_string()))
            .clone()
    }

    fn check(&self, schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>, depth: usize) {
        if depth > 64 {
            push(out, path, "schema nesting too deep (a $ref cycle?)".into());
            return;
        }
        let Some(s) = schema.as_object() else {
            // `true`/`{}`-like schemas accept everything; anything else is a broken schema.
            if schema != &Value::Bool(true) {
                push(out, path, format!("unsupported schema {schema}"));
            }
            return;
        };
        if let Some(r) = s.get("$ref") {
            match r.as_str().and_then(|r| self.resolve(r)) {
                Some(target) => self.check(target, value, path, out, depth + 1),
                None => push(out, path, format!("unresolvable $ref {r}")),
            }
            return;
        }
        if value.is_null() && s.get("x-nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, path, out, depth + 1);
            }
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            if !type_matches(t, value) {
                push(out, path, format!("expected {t}, got {}", describe(value)));
                return;
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                push(out, path, format!("{value} is not one of {}", Value::Array(allowed.clone())));
            }
        }
        match value {
            Value::String(text) => self.check_string(s, text, path, out),
            Value::Number(n) => check_number(s, n.as_f64().unwrap_or(f64::NAN), path, out),
            Value::Array(items) => {
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
                    if items.len() as u64 > max {
                        push(out, path, format!("{} items, at most {max} allowed", items.len()));
                    }
                }
                if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
                    if (items.len() as u64) < min {
                        push(out, path, format!("{} items, at least {min} required", items.len()));
                    }
                }
                if s.get("uniqueItems") == Some(&Value::Bool(true)) {
                    for (i, a) in items.iter().enumerate() {
                        if items[..i].contains(a) {
                            push(out, path, format!("item {i} repeats an earlier item"));
                        }
                    }
                }
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), out, depth + 1);
                    }
                }
            }
            Value::Object(fields) => {
                if let Some(required) = s.get("required").and_then(Value::as_array) {
                    for r in required.iter().filter_map(Value::as_str) {
                        if !fields.contains_key(r) {
                            out.push(Violation {
                                path: path.to_string(),
                                message: format!("missing required property {r:?}"),
                            });
                        }
                    }
                }
                let props = s.get("properties").and_then(Value::as_object);
                for (k, v) in fields {
                    let child = child_path(path, k);
                    match props.and_then(|p| p.get(k)) {
                        Some(ps) => self.check(ps, v, &child, out, depth + 1),
                        None => match s.get("additionalProperties") {
                            Some(Value::Bool(false)) => out.push(Violation {
                                path: child,
                                message: "property not allowed by the schema (additionalProperties: false)"
                                    .into(),
                            }),
                            Some(extra @ Value::Object(_)) => self.check(extra, v, &child, out, depth + 1),
                            _ => {}
                        },
                    }
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn check_string(
        &self,
        s: &serde_json::Map<String, Value>,
        text: &str,
        path: &str,
        out: &mut Vec<Violation>,
    ) {
        let chars = text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if chars < min {
                push(out, path, format!("{text:?} is {chars} characters, at least {min} required"));
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if chars > max {
                push(out, path, format!("{text:?} is {chars} characters, at most {max} allowed"));
            }
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            match self.regex(p) {
                Ok(re) if re.is_match(text) => {}
                Ok(_) => push(out, path, format!("{text:?} does not match pattern {p:?}")),
                Err(e) => push(out, path, format!("pattern {p:?} does not compile: {e}")),
            }
        }
        if let Some(f) = s.get("format").and_then(Value::as_str) {
            if let Err(why) = check_format(f, text) {
                push(out, path, format!("{text:?} is not a valid {f}: {why}"));
            }
        }
    }
}

fn push(out: &mut Vec<Violation>, path: &str, message: String) {
    out.push(Violation { path: path.to_string(), message });
}

fn child_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_string()))
    }
}

fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number (non-integer)",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let mut shown = v.to_string();
    if shown.len() > 60 {
        shown = format!("{}...", shown.chars().take(60).collect::<String>());
    }
    format!("{kind} {shown}")
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        // JSON has one number type, but the wire form tells: `1.0` parses as a float, and a
        // typed client declaring an integer field rejects it.
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "null" => v.is_null(),
        "file" => true,
        _ => false,
    }
}

fn check_number(s: &serde_json::Map<String, Value>, n: f64, path: &str, out: &mut Vec<Violation>) {
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        let exclusive = s.get("exclusiveMinimum") == Some(&Value::Bool(true));
        if n < min || (exclusive && n == min) {
            push(
                out,
                path,
                format!("{n} is below the minimum {min}{}", if exclusive { " (exclusive)" } else { "" }),
            );
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        let exclusive = s.get("exclusiveMaximum") == Some(&Value::Bool(true));
        if n > max || (exclusive && n == max) {
            push(
                out,
                path,
                format!("{n} is above the maximum {max}{}", if exclusive { " (exclusive)" } else { "" }),
            );
        }
    }
}

/// The formats Swagger 2.0 names that Moneyhub's swagger uses; unknown formats pass.
pub fn check_format(format: &str, text: &str) -> Result<(), String> {
    match format {
        // RFC 3339 full-date.
        "date" => {
            let b = text.as_bytes();
            let shape = b.len() == 10
                && b.iter()
                    .enumerate()
                    .all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
            if !shape {
                return Err("expected YYYY-MM-DD".into());
            }
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|_| ()).map_err(|e| e.to_string())
        }
        // RFC 3339 date-time: a `T`, seconds, and a zone (`Z` or an offset).
        "date-time" => chrono::DateTime::parse_from_rfc3339(text).map(|_| ()).map_err(|e| e.to_string()),
        // The canonical hyphenated form.
        "uuid" => {
            let hyphens: Vec<usize> =
                text.char_indices().filter(|(_, c)| *c == '-').map(|(i, _)| i).collect();
            if text.len() != 36 || hyphens != [8, 13, 18, 23] {
                return Err("expected 8-4-4-4-12 hex digits".into());
            }
            uuid::Uuid::parse_str(text).map(|_| ()).map_err(|e| e.to_string())
        }
        // An absolute URI.
        "uri" => {
            let u = url::Url::parse(text).map_err(|e| e.to_string())?;
            if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err("contains whitespace".into());
            }
            if u.cannot_be_a_base() && !text.contains(':') {
                return Err("not absolute".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

// ----- the validator's own tests: it must be able to fail ---------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Swagger {
        Swagger::new(json!({
            "swagger": "2.0",
            "definitions": {
                "Amount": {
                    "type": "object", "additionalProperties": false,
                    "properties": {"value": {"type": "integer"}, "currency": {"type": "string"}},
                    "required": ["value", "currency"]
                },
                "Thing": {
                    "type": "object", "additionalProperties": false,
                    "required": ["id", "amount", "status"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "amount": {"$ref": "#/definitions/Amount"},
                        "status": {"type": "string", "enum": ["posted", "pending"]},
                        "rate": {"type": "number", "minimum": 0, "maximum": 100},
                        "day": {"type": "string", "format": "date"},
                        "at": {"type": "string", "format": "date-time", "x-nullable": true},
                        "link": {"type": "string", "format": "uri"},
                        "category": {"type": "string", "pattern": "^(std|cus):(\\w|-)+$"},
                        "pan": {"type": "string", "minLength": 16, "maxLength": 16},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                        "extra": {"type": "object", "additionalProperties": {"type": "integer"}}
                    }
                }
            }
        }))
    }

    fn good() -> Value {
        json!({
            "id": "6d0baf11-248e-4c11-9c04-97b7758b4e04",
            "amount": {"value": -2323, "currency": "GBP"},
            "status": "posted",
            "rate": 4.1,
            "day": "2025-01-15",
            "at": "2025-01-15T10:00:00.000Z",
            "link": "http://127.0.0.1:1234/v3/transactions?limit=5",
            "category": "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d",
            "pan": "4000123412341234",
            "tags": ["a"],
            "extra": {"n": 1}
        })
    }

    fn errors(v: Value) -> Vec<Violation> {
        doc().validate(&Swagger::definition("Thing"), &v)
    }

    fn paths(v: Value) -> Vec<String> {
        errors(v).into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn validator_accepts_a_valid_payload_and_null_where_x_nullable() {
        assert_eq!(errors(good()), vec![]);
        let mut v = good();
        v["at"] = Value::Null;
        assert_eq!(errors(v), vec![]);
    }

    #[test]
    fn validator_reports_a_wrong_type_with_its_path() {
        let mut v = good();
        v["amount"]["value"] = json!("12");
        let e = errors(v);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "$.amount.value");
        assert!(e[0].message.contains("expected integer"), "{}", e[0].message);
    }

    #[test]
    fn validator_tells_integer_from_number() {
        let mut v = good();
        v["amount"]["value"] = json!(12.0);
        assert_eq!(paths(v), vec!["$.amount.value"]);
        let mut v = good();
        v["rate"] = json!(3);
        assert_eq!(errors(v), vec![], "an integer is a number");
    }

    #[test]
    fn validator_reports_a_missing_required_field() {
        let mut v = good();
        v["amount"].as_object_mut().unwrap().remove("currency");
        v.as_object_mut().unwrap().remove("status");
        let e = errors(v);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e.iter().any(|x| x.path == "$" && x.message.contains("\"status\"")), "{e:?}");
        assert!(e.iter().any(|x| x.path == "$.amount" && x.message.contains("\"currency\"")), "{e:?}");
    }

    #[test]
    fn validator_reports_an_extra_property() {
        let mut v = good();
        v["amount"]["majorUnits"] = json!(23);
        v["surprise-field"] = json!(true);
        assert_eq!(paths(v), vec!["$.amount.majorUnits", "$[\"surprise-field\"]"]);
        let mut v = good();
        v["extra"]["m"] = json!("not an integer");
        assert_eq!(paths(v), vec!["$.extra.m"], "additionalProperties as a schema");
    }

    #[test]
    fn validator_reports_a_bad_enum_value() {
        let mut v = good();
        v["status"] = json!("booked");
        let e = errors(v);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "$.status");
        assert!(e[0].message.contains("not one of"), "{}", e[0].message);
    }

    #[test]
    fn validator_checks_formats_patterns_bounds_and_lengths() {
        for (field, bad) in [
            ("id", json!("6d0baf11248e4c119c0497b7758b4e04")),
            ("id", json!("not-a-uuid")),
            ("day", json!("2025-13-01")),
            ("day", json!("2025-1-5")),
            ("day", json!("2025-01-15T00:00:00Z")),
            ("at", json!("2025-01-15 10:00:00")),
            ("at", json!("2025-01-15T10:00:00")),
            ("link", json!("/v3/transactions")),
            ("category", json!("4b0255f0-0309")),
            ("category", json!("std:a b")),
            ("rate", json!(-0.5)),
            ("rate", json!(100.01)),
            ("pan", json!("4000")),
            ("tags", json!(["a", "b", "c"])),
            ("tags", json!(["a", 1])),
        ] {
            let mut v = good();
            v[field] = bad.clone();
            let e = errors(v);
            assert!(!e.is_empty(), "{field} = {bad} must be rejected");
            assert!(e.iter().all(|x| x.path.starts_with(&format!("$.{field}"))), "{field}: {e:?}");
        }
    }

    #[test]
    fn validator_reports_every_violation_of_an_array_item() {
        let s = doc();
        let schema = json!({"type": "array", "items": {"$ref": "#/definitions/Thing"}});
        let mut bad = good();
        bad["status"] = json!(1);
        let e = s.validate(&schema, &json!([good(), good(), bad]));
        assert_eq!(e.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(), vec!["$[2].status"]);
        assert!(!s.validate(&json!({"$ref": "#/definitions/Nope"}), &json!({})).is_empty());
    }

    /// The same checks against the real swagger: a transaction from the reference, then the
    /// four kinds of mistake.
    #[test]
    fn validator_fails_bad_transactions_against_the_real_swagger() {
        let s = data_api();
        let schema = Swagger::definition("Transaction");
        let tx = json!({"id": "c390a94f-3824-4cdf-8d02-b0c5304d9f66", "accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13",
            "amount": {"value": -2323, "majorUnits": 23, "minorUnits": 23, "currency": "GBP"},
            "categoryId": "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d", "categoryIdConfirmed": false,
            "date": "2025-01-10T12:00:00.000Z", "dateModified": "2025-01-10T11:39:46.506Z",
            "dateCreated": "2025-01-10T11:39:46.506Z", "longDescription": "CARD PAYMENT TO GROCER LTD",
            "shortDescription": "Grocer Ltd", "notes": "", "status": "posted", "providerId": "tx-9001"});
        s.assert_valid(&schema, &tx, "reference transaction");
        let mut wrong_type = tx.clone();
        wrong_type["categoryIdConfirmed"] = json!("false");
        let mut missing = tx.clone();
        missing.as_object_mut().unwrap().remove("notes");
        let mut extra = tx.clone();
        extra["amount2"] = json!(1);
        let mut bad_enum = tx.clone();
        bad_enum["status"] = json!("booked");
        for (what, v, path) in [
            ("wrong type", wrong_type, "$.categoryIdConfirmed"),
            ("missing", missing, "$"),
            ("extra", extra, "$.amount2"),
            ("enum", bad_enum, "$.status"),
        ] {
            let e = s.validate(&schema, &v);
            assert_eq!(e.len(), 1, "{what}: {e:?}");
            assert_eq!(e[0].path, path, "{what}");
        }
        let e = s.validate(&s.response("get", "/accounts", 200), &json!({"data": [{"id": 1}], "links": {}}));
        let p: Vec<&str> = e.iter().map(|x| x.path.as_str()).collect();
        assert!(p.contains(&"$.data[0].id") && p.contains(&"$.links"), "{e:?}");
    }
}
