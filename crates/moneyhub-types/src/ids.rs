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
//! *Opaque* means: non-empty, not `.` or `..`, no `/`, no whitespace and no control characters —
//! the minimum needed to use the value safely as one URL path segment or query value. (`.` and
//! `..` are dot-segments: URL normalisation would remove them or climb a level, so
//! `GET /users/..` would become `GET /`; other characters are percent-encoded by the client.)
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
    if s == "." || s == ".." {
        return Err("must not be `.` or `..` (a dot-segment cannot be one URL path segment)".into());
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

/// How an id keeps its text: on the heap, or (UUID ids) in 36 inline bytes. Both expose the
/// exact text received, so equality, order and hashing are those of the string.
trait Storage: Clone + Sized {
    /// Wraps an already validated string.
    fn store(s: String) -> Self;
    /// The text.
    fn text(&self) -> &str;
    /// The text, owned.
    fn into_text(self) -> String;
}

impl Storage for String {
    fn store(s: String) -> Self {
        s
    }
    fn text(&self) -> &str {
        self
    }
    fn into_text(self) -> String {
        self
    }
}

/// Shared, interned text for ids that repeat across many records (category ids: a few hundred
/// values shared by every transaction). Interning stops at [`INTERN_LIMIT`] distinct values, so
/// the table stays bounded whatever a server sends.
impl Storage for std::sync::Arc<str> {
    fn store(s: String) -> Self {
        intern(s)
    }
    fn text(&self) -> &str {
        self
    }
    fn into_text(self) -> String {
        self.to_string()
    }
}

/// Most distinct values the interning table keeps.
pub const INTERN_LIMIT: usize = 4096;

pub(crate) fn intern(s: String) -> std::sync::Arc<str> {
    intern_str(&s)
}

/// Interns borrowed text, allocating only for a value not seen before.
pub(crate) fn intern_str(s: &str) -> std::sync::Arc<str> {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex, OnceLock};
    static TABLE: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let table = TABLE.get_or_init(Default::default);
    let Ok(mut set) = table.lock() else { return Arc::from(s) };
    if let Some(found) = set.get(s) {
        return found.clone();
    }
    let value: Arc<str> = Arc::from(s);
    if set.len() < INTERN_LIMIT {
        set.insert(value.clone());
    }
    value
}

/// A validated 36-character UUID kept inline: no heap allocation per id (a client holding
/// 10,000 transactions holds 20,000 of them).
#[derive(Clone, Copy)]
struct Inline36([u8; 36]);

impl Storage for Inline36 {
    fn store(s: String) -> Self {
        // Only called after `uuid_rule` accepted exactly 36 ASCII bytes.
        let mut bytes = [b'0'; 36];
        if s.len() == 36 {
            bytes.copy_from_slice(s.as_bytes());
        }
        Inline36(bytes)
    }
    fn text(&self) -> &str {
        // The bytes came from a validated ASCII string, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("00000000-0000-0000-0000-000000000000")
    }
    fn into_text(self) -> String {
        self.text().to_owned()
    }
}

macro_rules! id_type {
    (
        $(#[$meta:meta])*
        $name:ident, parse = $parse:expr, wire = $wire:expr $(, storage = $storage:ty)? $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(id_type!(@storage $($storage)?));

        // Equality, order and hashing are the string's, so `Borrow<str>` lookups work.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }
        impl Eq for $name {}
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        impl $name {
            const PARSE_RULE: Rule = $parse;
            const WIRE_RULE: Rule = $wire;

            fn checked(value: String, rule: Rule) -> Result<Self, Error> {
                match rule(&value) {
                    Ok(()) => Ok(Self(Storage::store(value))),
                    Err(reason) => Err(Error::InvalidId {
                        kind: stringify!($name),
                        value,
                        reason,
                    }),
                }
            }

            /// The id as a string slice, exactly as received or parsed.
            pub fn as_str(&self) -> &str {
                self.0.text()
            }

            /// Consumes the id, returning the inner string.
            pub fn into_string(self) -> String {
                self.0.into_text()
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
                id.0.into_text()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        // Hash/Eq/Ord are derived from the single `String` field, so they agree with `str`'s.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::checked(raw, Self::WIRE_RULE).map_err(serde::de::Error::custom)
            }
        }
    };
    (@storage) => { String };
    (@storage $storage:ty) => { $storage };
}

macro_rules! uuid_id_methods {
    ($($name:ident),+) => {$(
        impl $name {
            /// Builds the id from a UUID (lowercase hyphenated form, as Moneyhub sends it).
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(Storage::store(uuid.hyphenated().to_string()))
            }

            /// The id as a [`Uuid`].
            pub fn uuid(&self) -> Uuid {
                // Every constructor validated the string as a UUID, so the nil fallback is
                // unreachable; it only avoids a panic path.
                Uuid::try_parse(self.as_str()).unwrap_or(Uuid::nil())
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
        self.as_str().len() == 24 && self.as_str().bytes().all(|b| b.is_ascii_hexdigit())
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
        match self.as_str().split_once(':') {
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
    AccountId, parse = uuid_rule, wire = uuid_rule, storage = Inline36
}

id_type! {
    /// A transaction id (UUID). Validated on parse and on deserialisation.
    TransactionId, parse = uuid_rule, wire = uuid_rule, storage = Inline36
}

id_type! {
    /// A sync id (UUID): `POST /sync` `syncId`, `mh:sync`, ConnectionSync `id`. Validated on
    /// parse and on deserialisation.
    SyncId, parse = uuid_rule, wire = uuid_rule, storage = Inline36
}

id_type! {
    /// A webhook delivery id (UUID): the JSON envelope `id`, the JWT `jti`. Validated on parse
    /// and on deserialisation.
    WebhookId, parse = uuid_rule, wire = uuid_rule, storage = Inline36
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
    CategoryId, parse = category_rule, wire = opaque, storage = std::sync::Arc<str>
}

impl CategoryId {
    /// Whether this is a standard (`std:`) category.
    pub fn is_standard(&self) -> bool {
        self.as_str().starts_with("std:")
    }

    /// Whether this is a custom (`cus:`) category.
    pub fn is_custom(&self) -> bool {
        self.as_str().starts_with("cus:")
    }

    /// Whether the id matches the documented pattern (always true for parsed ids; may be false
    /// for deserialised ones).
    pub fn is_well_formed(&self) -> bool {
        category_rule(self.as_str()).is_ok()
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
