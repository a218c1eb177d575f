//! The two webhook envelopes Moneyhub sends (reference §13): a JSON object
//! `{id, eventType, userId, payload}` (`application/json`) or an RS256 Security Event Token
//! (`application/jwt`) signed with the key published at `/oidc/certs`.

use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::keys::SigningKey;
use crate::store::events::Event;

/// The `typ` header of a signed webhook (RFC 8417's media type for a SET).
pub const SET_TYP: &str = "secevent+jwt";

/// One webhook on its way out. Unlike [`Event`] its type is an owned string, so synthetic
/// test events (`POST /__sandbox/webhooks/test`) can carry any type without leaking memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The webhook id (`id` / `jti`).
    pub id: Uuid,
    /// The user it concerns (`userId` / `sub`).
    pub user_id: String,
    /// `eventType`, camelCase.
    pub event_type: String,
    /// The payload.
    pub payload: Value,
}

impl From<Event> for Outgoing {
    fn from(e: Event) -> Self {
        Outgoing { id: e.id, user_id: e.user_id, event_type: e.event_type.to_string(), payload: e.payload }
    }
}

/// `syncCompleted` → `sync-completed`: Moneyhub's SET event URNs are the kebab-case event id.
pub fn kebab_case(event_type: &str) -> String {
    let mut out = String::with_capacity(event_type.len() + 4);
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The SET `events` key of an event type: `urn:com:moneyhub:events:<kebab-case>`.
pub fn event_urn(event_type: &str) -> String {
    format!("urn:com:moneyhub:events:{}", kebab_case(event_type))
}

/// The JSON envelope's body.
pub fn json_body(w: &Outgoing) -> Vec<u8> {
    let v =
        json!({"id": w.id.to_string(), "eventType": w.event_type, "userId": w.user_id, "payload": w.payload});
    // Serialising a `Value` cannot fail; an empty body would only ever be a bug upstream.
    serde_json::to_vec(&v).unwrap_or_default()
}

#[derive(Serialize)]
struct SetClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    jti: String,
    iat: i64,
    events: Map<String, Value>,
}

/// The JWT envelope: an RS256 SET with `iss` (the identity base URL without `/oidc`), `aud`
/// (the API client), `sub` (the user), `jti` (the webhook id), `iat` and `events`.
pub fn jwt_body(key: &SigningKey, iss: &str, aud: &str, iat: i64, w: &Outgoing) -> Result<String, String> {
    let mut events = Map::new();
    events.insert(event_urn(&w.event_type), w.payload.clone());
    let claims = SetClaims { iss, aud, sub: &w.user_id, jti: w.id.to_string(), iat, events };
    key.sign(SET_TYP, &claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_are_kebab_case() {
        assert_eq!(event_urn("syncCompleted"), "urn:com:moneyhub:events:sync-completed");
        assert_eq!(kebab_case("newTransactions"), "new-transactions");
        assert_eq!(kebab_case("postConnectionEnrichmentCompleted"), "post-connection-enrichment-completed");
        assert_eq!(kebab_case("Odd"), "odd");
        assert_eq!(kebab_case(""), "");
    }

    #[test]
    fn json_envelope_has_the_four_fields() {
        let w = Outgoing {
            id: Uuid::from_u128(7),
            user_id: "u1".into(),
            event_type: "syncCompleted".into(),
            payload: json!({"a": 1}),
        };
        let v: Value = serde_json::from_slice(&json_body(&w)).unwrap();
        assert_eq!(
            v,
            json!({"id": Uuid::from_u128(7).to_string(), "eventType": "syncCompleted", "userId": "u1", "payload": {"a": 1}})
        );
    }
}
