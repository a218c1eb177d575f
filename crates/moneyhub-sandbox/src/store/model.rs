//! What the sandbox's Moneyhub has stored: users, connections, accounts, transactions, syncs.
//!
//! Kept compact on purpose (a transaction is ~64 bytes: descriptions and categories are
//! indices into static tables), so a sandbox holds millions of transactions in little memory.
//! JSON is produced on the way out, in exactly the wire shape.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::clock::iso;
use crate::seed::catalogue::{AccountKind, ProviderType};
use crate::seed::generator::{AccountSeed, Merchant, MERCHANTS};

/// An API user.
#[derive(Debug, Clone)]
pub struct User {
    /// 24-hex user id.
    pub user_id: String,
    /// The client's own id for the user.
    pub client_user_id: Option<String>,
    /// The API client that owns the user.
    pub client_id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The user's connections, oldest first.
    pub connection_ids: Vec<String>,
    /// Who manages the user: `client` (created with `POST /users`) or `user` (made by
    /// Moneyhub during the consent of a one-time access authorisation, which named no user).
    pub managed_by: ManagedBy,
    /// The last time the user's data was read on the Data API (`lastAccessed`; absent until
    /// the first read, as the reference marks the field optional).
    pub last_accessed: Option<DateTime<Utc>>,
}

/// Who manages a user (`managedBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedBy {
    /// A client-managed user (`POST /users`).
    Client,
    /// A user Moneyhub made during a one-time access consent.
    User,
}

impl ManagedBy {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedBy::Client => "client",
            ManagedBy::User => "user",
        }
    }
}

impl User {
    /// The wire object (top level for `POST /users` and `GET /users/{id}`).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "userId": self.user_id,
            "clientId": self.client_id,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "scopes": "",
            "managedBy": self.managed_by.as_str(),
            "userType": "test",
            "connectionIds": self.connection_ids,
        });
        if let Some(c) = &self.client_user_id {
            v["clientUserId"] = json!(c);
        }
        if let Some(t) = self.last_accessed {
            v["lastAccessed"] = json!(iso(t));
        }
        v
    }
}

/// The outcome of one fetch from a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStatus {
    /// Everything fetched.
    Success,
    /// The provider failed (outage, bank error).
    Error,
    /// Some of the data failed to arrive.
    Partial,
    /// The provider wants the user to pass MFA.
    MfaRequired,
    /// Credentials changed, revoked or expired at the provider.
    CredentialsError,
}

impl FetchStatus {
    /// The wire value of a sync's `fetchStatus`.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchStatus::Success => "success",
            FetchStatus::Error => "error",
            FetchStatus::Partial => "partial",
            FetchStatus::MfaRequired => "mfa-required",
            FetchStatus::CredentialsError => "credentials-error",
        }
    }

    /// Parses the wire value (also accepting `_` for `-`).
    pub fn parse(s: &str) -> Option<FetchStatus> {
        Some(match s.replace('_', "-").as_str() {
            "success" | "ok" => FetchStatus::Success,
            "error" | "sync-error" | "outage" => FetchStatus::Error,
            "partial" | "sync-partial" => FetchStatus::Partial,
            "mfa-required" => FetchStatus::MfaRequired,
            "credentials-error" => FetchStatus::CredentialsError,
            _ => return None,
        })
    }

    /// Whether this counts as a failed attempt (for "failing for 3 days").
    pub fn is_failure(self) -> bool {
        !matches!(self, FetchStatus::Success | FetchStatus::Partial)
    }
}

/// How the sandbox derives a connection's health (reference §8, first match wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `ok`, `error` or `never`.
    pub status: &'static str,
    /// The error code, if any.
    pub error: Option<&'static str>,
    /// `expired` or `stoppedSyncing`, if any.
    pub extended: Option<&'static str>,
}

/// How long failures continue before Moneyhub stops retrying (`stoppedSyncing`).
pub fn stopped_syncing_after() -> Duration {
    Duration::days(3)
}

/// After this long past expiry, `tppConsent` becomes false.
pub fn tpp_consent_lapse() -> Duration {
    Duration::days(90)
}

/// A user's connection to a provider.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `<bankId>:<uuid>`.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Provider id.
    pub bank_id: String,
    /// Provider name.
    pub name: &'static str,
    /// Provider type.
    pub kind: ProviderType,
    /// Creation time.
    pub connected_on: DateTime<Utc>,
    /// Last successful fetch.
    pub last_updated: Option<DateTime<Utc>>,
    /// Last attempt.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Consent expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// The accounts of this connection.
    pub account_ids: Vec<Uuid>,
    /// The stored `tppConsent` (it also lapses 90 days after expiry; see [`Connection::tpp_consent`]).
    pub tpp_consent: bool,
    /// When the user last consented.
    pub user_consented_at: DateTime<Utc>,
    /// Fetches once and never again automatically (legacy only).
    pub single_sync_only: bool,
    /// The status of the last fetch attempt, if any.
    pub last_fetch: Option<FetchStatus>,
    /// Start of the current run of failed attempts.
    pub failing_since: Option<DateTime<Utc>>,
    /// This connection's syncs, oldest first.
    pub sync_ids: Vec<Uuid>,
    /// Times of manual (`POST /sync`) syncs in the last day, for the rate limits.
    pub manual_syncs: VecDeque<DateTime<Utc>>,
    /// Scripted outcomes of the next fetches.
    pub script: VecDeque<FetchStatus>,
    /// The outcome of every fetch once the script is used up (`None`: success).
    pub sticky_outcome: Option<FetchStatus>,
    /// Last `reauthReminder` sent.
    pub last_reauth_reminder: Option<DateTime<Utc>>,
    /// Last `refreshReminder` sent.
    pub last_refresh_reminder: Option<DateTime<Utc>>,
    /// Whether the post-connection enrichment webhook has been sent.
    pub enrichment_announced: bool,
    /// The earliest date fetched so far.
    pub history_from: DateTime<Utc>,
    /// The date the background history fetch still has to reach, if it has not run yet.
    pub history_target: Option<DateTime<Utc>>,
    /// Post-connection enrichment finishes at this time.
    pub enriched_at: DateTime<Utc>,
    /// Manual syncs allowed per day (Triodos: 4).
    pub daily_sync_cap: Option<u32>,
    /// Staleness threshold (days): the smallest of its accounts' thresholds.
    pub stale_after_days: i64,
    /// The next reauth issues a new connection id even if the accounts are unchanged.
    pub force_new_id_on_reauth: bool,
}

impl Connection {
    /// The effective `tppConsent` at `now`: false once consent lapsed more than 90 days ago.
    pub fn tpp_consent(&self, now: DateTime<Utc>) -> bool {
        match self.expires_at {
            Some(exp) if now > exp + tpp_consent_lapse() => false,
            _ => self.tpp_consent,
        }
    }

    /// Whether consent has run out.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| now > e)
    }

    /// Whether attempts have failed for three days (no more automatic syncs).
    pub fn stopped_syncing(&self, now: DateTime<Utc>) -> bool {
        self.failing_since.is_some_and(|f| now - f >= stopped_syncing_after())
    }

    /// Health at `now` (reference §8 "simulator derivation of status").
    pub fn health(&self, now: DateTime<Utc>, provider_removed: bool) -> Health {
        let h = |status, error, extended| Health { status, error, extended };
        if provider_removed {
            return h("never", None, None);
        }
        if self.is_expired(now) {
            return h("error", Some("sync_error"), Some("expired"));
        }
        match self.last_fetch {
            Some(FetchStatus::CredentialsError) => return h("error", Some("credentials_error"), None),
            Some(FetchStatus::MfaRequired) => return h("error", Some("mfa_required"), None),
            _ => {}
        }
        if self.stopped_syncing(now) {
            return h("error", Some("sync_error"), Some("stoppedSyncing"));
        }
        match self.last_fetch {
            Some(FetchStatus::Error) => return h("error", Some("sync_error"), None),
            Some(FetchStatus::Partial) => return h("error", Some("sync_partial"), None),
            _ => {}
        }
        let fresh_since = self.last_updated.unwrap_or(self.connected_on);
        if now - fresh_since > Duration::days(self.stale_after_days) {
            return h("error", Some("resync"), None);
        }
        h("ok", None, None)
    }

    /// The wire object of `GET /users/{id}/connections`.
    pub fn to_json(&self, now: DateTime<Utc>, provider_removed: bool) -> Value {
        let health = self.health(now, provider_removed);
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("connectedOn".into(), json!(iso(self.connected_on)));
        if let Some(t) = self.last_updated {
            m.insert("lastUpdated".into(), json!(iso(t)));
        }
        if let Some(t) = self.last_synced_at {
            m.insert("lastSyncedAt".into(), json!(iso(t)));
        }
        if let Some(t) = self.expires_at {
            m.insert("expiresAt".into(), json!(iso(t)));
        }
        let ids: Vec<String> = self.account_ids.iter().map(|a| a.to_string()).collect();
        m.insert("accountIds".into(), json!(ids));
        m.insert("status".into(), json!(health.status));
        m.insert("error".into(), json!(health.error));
        if let Some(x) = health.extended {
            m.insert("extendedStatus".into(), json!(x));
        }
        m.insert("tppConsent".into(), json!(self.tpp_consent(now)));
        m.insert("userConsentedAt".into(), json!(iso(self.user_consented_at)));
        if self.single_sync_only {
            m.insert("singleSyncOnly".into(), json!(true));
        }
        Value::Object(m)
    }
}

/// Transaction flags.
pub mod flags {
    /// Still pending at the provider.
    pub const PENDING: u8 = 1;
    /// Deleted (no longer reported by the provider, or replaced by a posted twin).
    pub const DELETED: u8 = 2;
}

/// A stored transaction: 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tx {
    /// Moneyhub id.
    pub id: Uuid,
    /// Provider key (see the generator).
    pub key: u64,
    /// `date`, ms since the epoch.
    pub date_ms: i64,
    /// `dateCreated`, ms.
    pub created_ms: i64,
    /// `dateModified`, ms.
    pub modified_ms: i64,
    /// Signed minor units.
    pub amount: i64,
    /// Index into the merchant table.
    pub merchant: u16,
    /// [`flags`].
    pub flags: u8,
}

impl Tx {
    /// Pending?
    pub fn is_pending(&self) -> bool {
        self.flags & flags::PENDING != 0
    }
    /// Deleted?
    pub fn is_deleted(&self) -> bool {
        self.flags & flags::DELETED != 0
    }
    /// The merchant.
    pub fn merchant(&self) -> &'static Merchant {
        &MERCHANTS[self.merchant as usize % MERCHANTS.len()]
    }
    /// `longDescription`: a pending card payment shows the bank's terse form until it posts.
    pub fn long_description(&self) -> String {
        let m = self.merchant();
        if self.is_pending() {
            format!("PENDING {}", m.short.to_ascii_uppercase())
        } else {
            m.long.to_string()
        }
    }
}

/// An account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Moneyhub id.
    pub id: Uuid,
    /// Owner.
    pub user_id: String,
    /// Its connection (changes when a reauth splits a connection).
    pub connection_id: String,
    /// Kind.
    pub kind: AccountKind,
    /// Provider name.
    pub provider_name: &'static str,
    /// Catalogue `bankRef`.
    pub bank_ref: &'static str,
    /// The provider's id for the account.
    pub provider_account_id: String,
    /// Generator inputs (what the bank holds).
    pub seed: AccountSeed,
    /// Label for deriving Moneyhub transaction ids.
    pub id_label: u64,
    /// Balance before any generated transaction.
    pub base_balance: i64,
    /// Added.
    pub date_added: DateTime<Utc>,
    /// Last change.
    pub date_modified: DateTime<Utc>,
    /// Last successful fetch.
    pub last_successful_sync: Option<DateTime<Utc>>,
    /// Transactions, in insertion order (deleted ones kept as tombstones). Only what has
    /// been read or announced: fetches nobody has seen yet wait in `deferred` (see
    /// [`crate::store::Store::realize_user`]), so read through a realized store.
    pub txs: Vec<Tx>,
    /// Fetches that ran but whose data nobody has read yet, oldest first: replayed, each at
    /// its own time, before anything reads or changes `txs` (see `store/fetch.rs`).
    pub(crate) deferred: Vec<super::fetch::Deferred>,
    /// Deterministic digits for sort code / account number / PAN.
    pub number_seed: u64,
}

fn amount_json(value: i64, currency: &str) -> Value {
    let mag = value.unsigned_abs();
    json!({"value": value, "majorUnits": mag / 100, "minorUnits": mag % 100, "currency": currency})
}

fn ms_iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().map(iso).unwrap_or_default()
}

impl Account {
    /// Current balance: base plus every live transaction.
    pub fn balance(&self) -> i64 {
        self.base_balance + self.txs.iter().filter(|t| !t.is_deleted()).map(|t| t.amount).sum::<i64>()
    }

    /// The wire object of the Data API. `details_scope` adds what `accounts_details:read` shows;
    /// `with_tx_data` adds `transactionData`.
    pub fn to_json(&self, details_scope: bool, with_tx_data: bool) -> Value {
        let live = || self.txs.iter().filter(|t| !t.is_deleted());
        let bal_date = self.last_successful_sync.unwrap_or(self.date_added).format("%Y-%m-%d").to_string();
        let mut details = Map::new();
        let digits = format!("{:016}", self.number_seed % 10_000_000_000_000_000);
        match self.kind {
            AccountKind::Current | AccountKind::Savings => {
                details
                    .insert("AER".into(), json!(if self.kind == AccountKind::Savings { 4.1 } else { 0.0 }));
                details.insert(
                    "overdraftLimit".into(),
                    json!(if self.kind == AccountKind::Current { 50_000 } else { 0 }),
                );
                if details_scope {
                    details.insert("sortCodeAccountNumber".into(), json!(format!("60{}", &digits[..12])));
                    details.insert("iban".into(), json!(format!("GB29NWBK60{}", &digits[..14])));
                }
            }
            AccountKind::Card => {
                details.insert("APR".into(), json!(22.9));
                details.insert("creditLimit".into(), json!(500_000));
                if details_scope {
                    details.insert("pan".into(), json!(format!("4{}", &digits[..15])));
                }
            }
            AccountKind::Mortgage => {
                details.insert("APR".into(), json!(4.39));
                details.insert("interestType".into(), json!("fixed"));
                details.insert("fixedDate".into(), json!("2027-06-30"));
                details.insert("endDate".into(), json!("2049-06-30"));
                details.insert("monthlyRepayment".into(), json!(95_000));
                details.insert("term".into(), json!(300));
            }
            AccountKind::Loan => {
                details.insert("APR".into(), json!(6.9));
                details.insert("endDate".into(), json!("2029-03-03"));
                details.insert("monthlyRepayment".into(), json!(21_450));
                details.insert("term".into(), json!(60));
            }
            AccountKind::Property => {
                details.insert("postcode".into(), json!("NW1 8AB"));
                details.insert("yearlyAppreciation".into(), json!(3.2));
            }
            AccountKind::Pension | AccountKind::Investment => {}
        }
        let mut v = json!({
            "id": self.id.to_string(),
            "accountName": self.kind.display_name(),
            "currency": "GBP",
            "balance": {"amount": amount_json(self.balance(), "GBP"), "date": bal_date, "type": "InterimAvailable"},
            "details": Value::Object(details),
            "type": self.kind.type_str(),
            "accountType": "personal",
            "providerName": self.provider_name,
            "providerReference": self.bank_ref,
            "connectionId": self.connection_id,
            // Swagger: `API|DEMO|.{32}` — the provider (bank) id, the connection id's prefix.
            "providerId": self.connection_id.split(':').next().unwrap_or_default(),
            "providerAccountId": self.provider_account_id,
            "dateAdded": iso(self.date_added),
            "dateModified": iso(self.date_modified),
        });
        if details_scope {
            v["accountReference"] = json!(&digits[12..16]);
            v["accountHolderName"] = json!("Sandbox User");
        }
        if with_tx_data {
            // Swagger requires all three fields, so an account without transactions has none.
            if let (Some(e), Some(l)) = (live().map(|t| t.date_ms).min(), live().map(|t| t.date_ms).max()) {
                v["transactionData"] =
                    json!({"count": live().count(), "earliestDate": ms_iso(e), "lastDate": ms_iso(l)});
            }
        }
        v
    }

    /// The wire object of a transaction of this account, as a JSON value.
    pub fn tx_json(&self, t: &Tx) -> Value {
        serde_json::to_value(self.tx_view(t)).unwrap_or(Value::Null)
    }

    /// A borrowed, directly serialisable view of a transaction of this account: listing 1000
    /// transactions serialises straight from the compact store, with no intermediate values.
    pub fn tx_view<'a>(&'a self, t: &'a Tx) -> TxView<'a> {
        TxView { account: self, tx: t, unenriched: false }
    }

    /// The provider's view of a transaction (`GET /transactions/unenriched`): what the bank
    /// sent, without Moneyhub's enrichment (no category, short description, notes,
    /// counterparty, splits or projects). The swagger's `TransactionUnenriched`.
    pub fn tx_unenriched_view<'a>(&'a self, t: &'a Tx) -> TxView<'a> {
        TxView { account: self, tx: t, unenriched: true }
    }

    /// The `proprietaryTransactionCode` the provider sends with a transaction: current
    /// accounts carry the bank's own transaction-type code (card payment, direct debit...);
    /// other account types send none.
    pub fn proprietary_code(&self, t: &Tx) -> Option<&'static str> {
        if self.kind != AccountKind::Current {
            return None;
        }
        crate::seed::generator::proprietary_code(t.merchant())
    }
}

/// A transaction in its wire shape (see [`Account::tx_view`]).
#[derive(Debug, Clone, Copy)]
pub struct TxView<'a> {
    account: &'a Account,
    tx: &'a Tx,
    unenriched: bool,
}

/// Serialises as `YYYY-MM-DDTHH:MM:SS.mmmZ` without going through chrono's format parser.
struct IsoMs(i64);

impl std::fmt::Display for IsoMs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
    }
}

impl serde::Serialize for IsoMs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

struct ProviderId<'a>(&'a str, u64);

impl serde::Serialize for ProviderId<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}-{:x}", self.0, self.1))
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct AmountView {
    value: i64,
    major_units: u64,
    minor_units: u64,
    currency: &'static str,
}

impl serde::Serialize for TxView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (a, t) = (self.account, self.tx);
        let m = t.merchant();
        let mag = t.amount.unsigned_abs();
        let code = a.proprietary_code(t).map(|code| ProprietaryCode { code, issuer: a.provider_name });
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &t.id)?;
        map.serialize_entry("accountId", &a.id)?;
        map.serialize_entry(
            "amount",
            &AmountView { value: t.amount, major_units: mag / 100, minor_units: mag % 100, currency: "GBP" },
        )?;
        if self.unenriched {
            map.serialize_entry("date", &IsoMs(t.date_ms))?;
            map.serialize_entry("dateModified", &IsoMs(t.modified_ms))?;
            map.serialize_entry("dateCreated", &IsoMs(t.created_ms))?;
            if t.is_pending() {
                map.serialize_entry("longDescription", &t.long_description())?;
            } else {
                map.serialize_entry("longDescription", m.long)?;
            }
            map.serialize_entry("status", if t.is_pending() { "pending" } else { "posted" })?;
            map.serialize_entry("providerId", &ProviderId(&a.provider_account_id, t.key))?;
            if let Some(c) = &code {
                map.serialize_entry("proprietaryTransactionCode", c)?;
            }
            return map.end();
        }
        map.serialize_entry("categoryId", m.category)?;
        map.serialize_entry("categoryIdConfirmed", &false)?;
        map.serialize_entry("date", &IsoMs(t.date_ms))?;
        map.serialize_entry("dateModified", &IsoMs(t.modified_ms))?;
        map.serialize_entry("dateCreated", &IsoMs(t.created_ms))?;
        if t.is_pending() {
            map.serialize_entry("longDescription", &t.long_description())?;
        } else {
            map.serialize_entry("longDescription", m.long)?;
        }
        map.serialize_entry("shortDescription", m.short)?;
        map.serialize_entry("notes", "")?;
        map.serialize_entry("status", if t.is_pending() { "pending" } else { "posted" })?;
        map.serialize_entry("providerId", &ProviderId(&a.provider_account_id, t.key))?;
        if let Some(c) = &code {
            map.serialize_entry("proprietaryTransactionCode", c)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct ProprietaryCode {
    code: &'static str,
    issuer: &'static str,
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn running_sync_has_null_outcome_keys() {
        let t = Utc.timestamp_opt(1_736_935_200, 0).unwrap();
        let mut rec = SyncRecord {
            id: Uuid::nil(),
            seq: 1,
            connection_id: "c".into(),
            user_id: "u".into(),
            action: "client-update",
            method: "UPDATE",
            fetch_status: None,
            created_at: t,
            fetched_at: None,
            accounts: Vec::new(),
        };
        let v = rec.to_json(t, None);
        assert_eq!((v.get("fetchStatus"), v.get("fetchedAt")), (Some(&Value::Null), Some(&Value::Null)));
        rec.fetch_status = Some(FetchStatus::Partial);
        rec.fetched_at = Some(t);
        let v = rec.to_json(t, None);
        assert_eq!(
            (v["fetchStatus"].as_str(), v["fetchedAt"].as_str()),
            (Some("partial"), Some("2025-01-15T10:00:00.000Z"))
        );
    }

    #[test]
    fn iso_ms_matches_chrono() {
        for ms in
            [0i64, 1, 999, 86_399_999, 951_782_400_000, 1_736_935_200_123, 4_102_444_799_999, -1, -86_400_001]
        {
            let want = Utc.timestamp_millis_opt(ms).single().map(iso).unwrap();
            assert_eq!(IsoMs(ms).to_string(), want, "{ms}");
        }
        // Every day of years 0001 to 4160, across leap years and centuries (the format has
        // four year digits, like chrono's for those years).
        for day in (-719_162i64..800_000).step_by(13) {
            let ms = day * 86_400_000 + 45_296_789;
            let want = Utc.timestamp_millis_opt(ms).single().map(iso).unwrap();
            assert_eq!(IsoMs(ms).to_string(), want);
        }
    }
}

/// One sync (fetch) of a connection.
#[derive(Debug, Clone)]
pub struct SyncRecord {
    /// Sync id.
    pub id: Uuid,
    /// Order of creation (syncs that start at the same virtual instant still have an order).
    pub seq: u64,
    /// Connection.
    pub connection_id: String,
    /// Owner.
    pub user_id: String,
    /// `auto-update` (scheduled) or `client-update` (`POST /sync`, code exchange).
    pub action: &'static str,
    /// `ADD` (the fetch that created the connection) or `UPDATE`.
    pub method: &'static str,
    /// Outcome; `None` while an asynchronous sync is still running.
    pub fetch_status: Option<FetchStatus>,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Finished.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Accounts fetched (account id, provider account id).
    pub accounts: Vec<(Uuid, String)>,
}

impl SyncRecord {
    /// The wire object; enrichment state is read from the connection's `enriched_at`.
    pub fn to_json(&self, now: DateTime<Utc>, enriched_at: Option<DateTime<Utc>>) -> Value {
        let accounts: Vec<Value> = self
            .accounts
            .iter()
            .map(|(id, pid)| {
                let mut a = json!({"accountId": id.to_string(), "providerId": pid});
                match enriched_at {
                    Some(t) if now >= t => {
                        a["postConnectionEnrichmentStatus"] = json!("completed");
                        a["postConnectionEnrichedAt"] = json!(iso(t));
                    }
                    Some(_) => a["postConnectionEnrichmentStatus"] = json!("pending"),
                    None => {}
                }
                a
            })
            .collect();
        let mut v = json!({
            "id": self.id.to_string(),
            "connectionId": self.connection_id,
            "action": self.action,
            "method": self.method,
            "createdAt": iso(self.created_at),
            "accounts": accounts,
        });
        // A sync still running has no outcome yet: both keys are present with `null` (the
        // official client's type declares them on every sync; the reference lists no
        // "running" value of `fetchStatus`, so none is invented).
        v["fetchStatus"] = json!(self.fetch_status.map(FetchStatus::as_str));
        v["fetchedAt"] = json!(self.fetched_at.map(iso));
        v
    }
}
