//! Identifier newtypes.
//!
//! Every id is a transparent JSON string that keeps its input verbatim (no case folding, no
//! re-formatting), so decode → encode is byte-exact. Each type has one validation rule for
//! [`FromStr`]/[`TryFrom`] and one for deserialisation:
//!
//! | Type | Documented format | `FromStr` / `TryFrom` accepts | Deserialisation accepts |
//! | --- | --- | --- | --- |
//! | [`AccountId`], [`TransactionId`], [`SyncId`], [`WebhookId`] | UUID | hyphenated UUID (any case) | same (validated) |
//! | [`UserId`] | 24 hex (ObjectId style) | any *opaque* string | same |
//! | [`ConnectionId`] | `<bankId>:<uuid>` | any *opaque* string | same |
//! | [`BankId`] | 32 lowercase hex | *opaque* and no `:` | same |
//! | [`ClientId`] | UUID | any *opaque* string | same |
//! | [`CategoryId`] | `^(std\|cus):(\w\|-)+$` | exactly that pattern | any *opaque* string |
//!
//! *Opaque* means: non-empty, no `/`, no whitespace and no control characters — the minimum
//! needed to use the value safely as one URL path segment or query value.
//!
//! Why the lenient rules: Moneyhub documents user ids as 24 hex characters, bank ids as 32 hex
//! characters and client ids as UUIDs, but nothing in the API depends on that shape and real ids
//! may vary (older tenants, test banks, future formats). Rejecting them would make whole list
//! responses undecodable, so those types only refuse what could never be a valid path segment.
//! UUID ids are validated on deserialisation too because the API itself rejects non-UUID values
//! for them (e.g. `GET /transactions?ids=` answers 400), so a non-UUID there is a real error.
//! Category ids are strict when *you* construct one (a malformed filter is a bug on the caller's
//! side) but lenient when read from the wire, so that a new category scheme cannot break
//! transaction decoding; use [`CategoryId::is_well_formed`] to check a decoded one.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::Error;

/// The example UUID quoted in UUID parse errors.
const UUID_EXAMPLE: &str = "6d0baf11-248e-4c11-9c04-97b7758b4e04";

/// Validation outcome: `Err(reason)` names what is wrong.
type Rule = fn(&str) -> Result<(), String>;

fn opaque(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(pos) = s.find('/') {
        return Err(format!("must not contain `/` (found at byte {pos})"));
    }
    if let Some((pos, _)) = s.char_indices().find(|(_, c)| c.is_whitespace()) {
        return Err(format!("must not contain whitespace (found at byte {pos})"));
    }
    if let Some((pos, _)) = s.char_indices().find(|(_, c)| c.is_control()) {
        return Err(format!("must not contain control characters (found at byte {pos})"));
    }
    Ok(())
}

fn uuid_rule(s: &str) -> Result<(), String> {
    // 36 bytes restricts `Uuid::try_parse` to the hyphenated form (it also accepts the simple,
    // braced and `urn:uuid:` forms, which Moneyhub never sends).
    if s.len() == 36 && Uuid::try_parse(s).is_ok() {
        Ok(())
    } else {
        Err(format!("expected a UUID in hyphenated form such as `{UUID_EXAMPLE}`"))
    }
}

fn bank_rule(s: &str) -> Result<(), String> {
    opaque(s)?;
    match s.find(':') {
        Some(pos) => Err(format!("must not contain `:` (found at byte {pos})")),
        None => Ok(()),
    }
}

fn category_rule(s: &str) -> Result<(), String> {
    let rest = s.strip_prefix("std:").or_else(|| s.strip_prefix("cus:"));
    match rest {
        None => Err("expected `std:<id>` or `cus:<id>`".into()),
        Some("") => Err("the part after `std:`/`cus:` must not be empty".into()),
        Some(rest) => {
            match rest.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
                Some((pos, c)) => Err(format!(
                    "only letters, digits, `_` and `-` may follow the prefix (found {c:?} at byte {})",
                    pos + 4
                )),
                None => Ok(()),
            }
        }
    }
}

macro_rules! id_type {
    (
        $(#[$meta:meta])*
        $name:ident, parse = $parse:expr, wire = $wire:expr $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            const PARSE_RULE: Rule = $parse;
            const WIRE_RULE: Rule = $wire;

            fn checked(value: String, rule: Rule) -> Result<Self, Error> {
                match rule(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(reason) => Err(Error::InvalidId {
                        kind: stringify!($name),
                        value,
                        reason,
                    }),
                }
            }

            /// The id as a string slice, exactly as received or parsed.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the id, returning the inner string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Self::checked(s.to_owned(), Self::PARSE_RULE)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(s: String) -> Result<Self, Error> {
                Self::checked(s, Self::PARSE_RULE)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;

            fn try_from(s: &str) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Hash/Eq/Ord are derived from the single `String` field, so they agree with `str`'s.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::checked(raw, Self::WIRE_RULE).map_err(serde::de::Error::custom)
            }
        }
    };
}

macro_rules! uuid_id_methods {
    ($($name:ident),+) => {$(
        impl $name {
            /// Builds the id from a UUID (lowercase hyphenated form, as Moneyhub sends it).
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid.hyphenated().to_string())
            }

            /// The id as a [`Uuid`].
            pub fn uuid(&self) -> Uuid {
                // Every constructor validated the string as a UUID, so the nil fallback is
                // unreachable; it only avoids a panic path.
                Uuid::try_parse(&self.0).unwrap_or(Uuid::nil())
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self::from_uuid(uuid)
            }
        }
    )+};
}

id_type! {
    /// A Moneyhub user id (`userId`, the `sub` of user-bound tokens and id_tokens).
    ///
    /// Documented as 24 hex characters (ObjectId style, e.g. `5c79210bbac25ecb5e71ac40`), but any
    /// opaque string is accepted (see the [module docs](self)); [`UserId::is_object_id`] tells
    /// whether it has the documented shape.
    ///
    /// ```
    /// use moneyhub_types::UserId;
    /// let id: UserId = "5c79210bbac25ecb5e71ac40".parse()?;
    /// assert!(id.is_object_id());
    /// assert!("has space".parse::<UserId>().is_err());
    /// # Ok::<(), moneyhub_types::Error>(())
    /// ```
    UserId, parse = opaque, wire = opaque
}

impl UserId {
    /// Whether the id has the documented 24-hex-character ObjectId shape.
    pub fn is_object_id(&self) -> bool {
        self.0.len() == 24 && self.0.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

id_type! {
    /// A connection id: `<bankId>:<uuid>`, treated as an opaque string.
    ///
    /// Any opaque string is accepted (see the [module docs](self)): the client never relies on
    /// the shape, but [`ConnectionId::bank_id`] exposes the prefix when there is one.
    ///
    /// ```
    /// use moneyhub_types::ConnectionId;
    /// let id: ConnectionId =
    ///     "1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b".parse()?;
    /// assert_eq!(id.bank_id().unwrap().as_str(), "1ffe704d39629a929c8e293880fb449a");
    /// # Ok::<(), moneyhub_types::Error>(())
    /// ```
    ConnectionId, parse = opaque, wire = opaque
}

impl ConnectionId {
    /// Builds `<bankId>:<uuid>`, the format Moneyhub mints.
    pub fn from_parts(bank_id: &BankId, uuid: Uuid) -> Self {
        Self(format!("{}:{}", bank_id.0, uuid.hyphenated()))
    }

    /// The bank (provider) id prefix: the part before the first `:`, when there is a non-empty
    /// one.
    pub fn bank_id(&self) -> Option<BankId> {
        self.bank_id_str().map(|prefix| BankId(prefix.to_owned()))
    }

    /// Like [`ConnectionId::bank_id`], without allocating.
    pub fn bank_id_str(&self) -> Option<&str> {
        match self.0.split_once(':') {
            Some((prefix, _)) if !prefix.is_empty() => Some(prefix),
            _ => None,
        }
    }

    /// Whether this connection's prefix is `bank_id` (how the official client finds a user's
    /// connection to a given bank).
    pub fn is_for_bank(&self, bank_id: &BankId) -> bool {
        self.bank_id_str() == Some(bank_id.as_str())
    }
}

id_type! {
    /// A provider (bank) id: catalogue `id`, scope `id:<bankId>`, prefix of connection ids.
    ///
    /// Documented as 32 lowercase hex characters; any opaque string without `:` is accepted
    /// (see the [module docs](self)).
    BankId, parse = bank_rule, wire = bank_rule
}

id_type! {
    /// An account id (UUID). Validated on parse and on deserialisation.
    ///
    /// ```
    /// use moneyhub_types::AccountId;
    /// let err = "nope".parse::<AccountId>().unwrap_err();
    /// assert!(err.to_string().starts_with("invalid AccountId \"nope\": expected a UUID"));
    /// ```
    AccountId, parse = uuid_rule, wire = uuid_rule
}

id_type! {
    /// A transaction id (UUID). Validated on parse and on deserialisation.
    TransactionId, parse = uuid_rule, wire = uuid_rule
}

id_type! {
    /// A sync id (UUID): `POST /sync` `syncId`, `mh:sync`, ConnectionSync `id`. Validated on
    /// parse and on deserialisation.
    SyncId, parse = uuid_rule, wire = uuid_rule
}

id_type! {
    /// A webhook delivery id (UUID): the JSON envelope `id`, the JWT `jti`. Validated on parse
    /// and on deserialisation.
    WebhookId, parse = uuid_rule, wire = uuid_rule
}

uuid_id_methods!(AccountId, TransactionId, SyncId, WebhookId);

id_type! {
    /// A category id: `std:<uuid>` (standard) or `cus:<id>` (custom).
    ///
    /// Parsing enforces the documented pattern `^(std|cus):(\w|-)+$`; deserialisation accepts
    /// any opaque string (see the [module docs](self)).
    ///
    /// ```
    /// use moneyhub_types::CategoryId;
    /// let id: CategoryId = "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d".parse()?;
    /// assert!(id.is_standard());
    /// assert!("food".parse::<CategoryId>().is_err());
    /// # Ok::<(), moneyhub_types::Error>(())
    /// ```
    CategoryId, parse = category_rule, wire = opaque
}

impl CategoryId {
    /// Whether this is a standard (`std:`) category.
    pub fn is_standard(&self) -> bool {
        self.0.starts_with("std:")
    }

    /// Whether this is a custom (`cus:`) category.
    pub fn is_custom(&self) -> bool {
        self.0.starts_with("cus:")
    }

    /// Whether the id matches the documented pattern (always true for parsed ids; may be false
    /// for deserialised ones).
    pub fn is_well_formed(&self) -> bool {
        category_rule(&self.0).is_ok()
    }
}

id_type! {
    /// An API client id (`client_id`, a token's `aud`).
    ///
    /// Documented as a UUID; any opaque string is accepted (see the [module docs](self)).
    ClientId, parse = opaque, wire = opaque
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_rule_rejects_other_uuid_forms() {
        assert!(uuid_rule("6d0baf11-248e-4c11-9c04-97b7758b4e04").is_ok());
        assert!(uuid_rule("6D0BAF11-248E-4C11-9C04-97B7758B4E04").is_ok());
        assert!(uuid_rule("6d0baf11248e4c119c0497b7758b4e04").is_err());
        assert!(uuid_rule("{6d0baf11-248e-4c11-9c04-97b7758b4e04}").is_err());
        assert!(uuid_rule("urn:uuid:6d0baf11-248e-4c11-9c04-97b7758b4e04").is_err());
    }

    #[test]
    fn category_rule_matches_pattern() {
        assert!(category_rule("cus:abc_DEF-1").is_ok());
        assert!(category_rule("cus:").is_err());
        assert!(category_rule("cus:a.b").is_err());
        assert!(category_rule("xyz:a").is_err());
    }
}
