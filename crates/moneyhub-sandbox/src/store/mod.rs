//! The sandbox's Moneyhub state and every rule that changes it.
//!
//! All mutation goes through methods here, so the HTTP layers (identity, REST, Data API,
//! control) and the lifecycle engine share one implementation of each rule. Time is always
//! passed in (the virtual clock's reading), never read from the system.

pub mod events;
mod fetch;
pub mod model;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::rng::{label, Rng};
use crate::seed::catalogue::{Catalogue, Provider, ProviderType};
use crate::seed::generator::{base_balance, AccountSeed};
use events::Event;
use model::{Account, Connection, FetchStatus, ManagedBy, SyncRecord, User};

/// How long a new consent lasts.
pub fn consent_period() -> Duration {
    Duration::days(90)
}

/// How long the consent of a one-time access connection lasts by default (reference §17).
pub fn one_time_consent_period() -> Duration {
    Duration::hours(24)
}

/// How much history the code exchange fetches synchronously.
pub fn initial_history() -> Duration {
    Duration::days(91)
}

/// Minimum gap between two manual syncs of one connection.
pub fn manual_sync_gap() -> Duration {
    Duration::minutes(30)
}

/// Post-connection enrichment takes this long after a new connection.
pub fn enrichment_time() -> Duration {
    Duration::minutes(3)
}

/// Why the store refused something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such user (for this client).
    UnknownUser,
    /// No such connection (for this user).
    UnknownConnection,
    /// No such provider.
    UnknownProvider,
    /// The connection's consent has expired.
    ConsentExpired,
    /// Manual sync rate limit; retry after this many seconds.
    TooSoon(u64),
    /// The request is not valid; the message says why.
    Invalid(String),
}

/// The result of creating a connection.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// The connection id.
    pub connection_id: String,
    /// The sync that fetched (or, when async, is fetching) its first data.
    pub sync_id: Uuid,
}

/// The sandbox's data.
#[derive(Debug)]
pub struct Store {
    /// Seed of all generated data.
    pub seed: u64,
    /// Share of card payments that post under a new id.
    pub replace_ratio: f64,
    rng: Rng,
    catalogue: Arc<Catalogue>,
    /// Users by id.
    pub users: HashMap<String, User>,
    user_order: Vec<String>,
    /// Connections by id.
    pub connections: HashMap<String, Connection>,
    /// Accounts by id.
    pub accounts: HashMap<Uuid, Account>,
    /// Transaction id → (account id, position in the account's list).
    pub tx_index: HashMap<Uuid, (Uuid, u32)>,
    /// Syncs by id.
    pub syncs: HashMap<Uuid, SyncRecord>,
    /// Providers withdrawn for good.
    pub removed_providers: HashSet<String>,
    /// Events waiting for delivery (only recorded while `record_events` is on).
    pub outbox: Vec<Event>,
    /// Whether events are recorded (off when nobody listens, so nothing piles up).
    pub record_events: bool,
    /// How long after connecting the background history fetch runs (virtual time).
    pub history_delay: Duration,
    /// Syncs started so far (orders syncs that share a start time).
    syncs_started: u64,
    /// Mixed into every webhook id (random per store): see [`Store::next_webhook_id`].
    webhook_namespace: u128,
}

impl Store {
    /// An empty store.
    pub fn new(seed: u64, replace_ratio: f64, catalogue: Arc<Catalogue>) -> Self {
        Store {
            seed,
            replace_ratio: replace_ratio.clamp(0.0, 1.0),
            rng: Rng::derive(seed, &[label("runtime ids")]),
            catalogue,
            users: HashMap::new(),
            user_order: Vec::new(),
            connections: HashMap::new(),
            accounts: HashMap::new(),
            tx_index: HashMap::new(),
            syncs: HashMap::new(),
            removed_providers: HashSet::new(),
            outbox: Vec::new(),
            record_events: false,
            history_delay: Duration::seconds(1),
            syncs_started: 0,
            webhook_namespace: rand::random::<u128>(),
        }
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// A fresh (seeded) UUID.
    pub fn next_uuid(&mut self) -> Uuid {
        self.rng.uuid()
    }

    /// A fresh webhook id, unique to this sandbox instance: the seeded stream's next UUID
    /// (so every other generated id stays the same for a seed), with a per-instance random
    /// namespace mixed into its random bits (still a v4 UUID). Two sandboxes with the same
    /// seed therefore never send the same webhook id, and a receiver that de-duplicates on
    /// ids (a mirror database kept across runs of embedded sandboxes) never mistakes a new
    /// run's events for replays of an earlier run's.
    pub fn next_webhook_id(&mut self) -> Uuid {
        namespaced(self.rng.uuid(), self.webhook_namespace)
    }

    /// Records an event for delivery.
    pub fn emit(
        &mut self,
        user_id: &str,
        event_type: &'static str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) {
        if self.record_events {
            let id = self.next_webhook_id();
            self.outbox.push(Event { id, user_id: user_id.to_string(), event_type, payload, at });
        }
    }

    // ----- users -------------------------------------------------------------------------

    /// Creates a user for `client_id`.
    pub fn create_user(
        &mut self,
        client_id: &str,
        client_user_id: Option<String>,
        now: DateTime<Utc>,
    ) -> &User {
        self.create_user_managed(client_id, client_user_id, ManagedBy::Client, now)
    }

    /// Creates a user for `client_id`, managed by the client or (one-time access) by the user.
    pub fn create_user_managed(
        &mut self,
        client_id: &str,
        client_user_id: Option<String>,
        managed_by: ManagedBy,
        now: DateTime<Utc>,
    ) -> &User {
        let mut user_id = self.rng.hex(24);
        while self.users.contains_key(&user_id) {
            user_id = self.rng.hex(24);
        }
        let user = User {
            user_id: user_id.clone(),
            client_user_id,
            client_id: client_id.to_string(),
            created_at: now,
            updated_at: now,
            connection_ids: Vec::new(),
            managed_by,
            last_accessed: None,
        };
        self.user_order.push(user_id.clone());
        self.users.entry(user_id).or_insert(user)
    }

    /// A user of `client_id`.
    pub fn user(&self, client_id: &str, user_id: &str) -> Option<&User> {
        self.users.get(user_id).filter(|u| u.client_id == client_id)
    }

    /// Records a Data API read of the user's data (`lastAccessed`).
    pub fn touch_user(&mut self, user_id: &str, now: DateTime<Utc>) {
        if let Some(u) = self.users.get_mut(user_id) {
            u.last_accessed = Some(now);
        }
    }

    /// A page of `client_id`'s users, oldest first, and their total count.
    pub fn users_page(&self, client_id: &str, offset: usize, limit: usize) -> (Vec<&User>, usize) {
        let all: Vec<&User> = self
            .user_order
            .iter()
            .filter_map(|id| self.users.get(id))
            .filter(|u| u.client_id == client_id)
            .collect();
        let total = all.len();
        (all.into_iter().skip(offset).take(limit).collect(), total)
    }

    /// Deletes a user with all their connections, accounts, transactions and syncs.
    pub fn delete_user(&mut self, client_id: &str, user_id: &str) -> Result<(), Refusal> {
        let user = self.user(client_id, user_id).ok_or(Refusal::UnknownUser)?;
        for c in user.connection_ids.clone() {
            self.remove_connection_data(&c);
        }
        self.users.remove(user_id);
        self.user_order.retain(|u| u != user_id);
        Ok(())
    }

    // ----- connections -------------------------------------------------------------------

    /// A user's connection.
    pub fn connection(&self, user_id: &str, connection_id: &str) -> Option<&Connection> {
        self.connections.get(connection_id).filter(|c| c.user_id == user_id)
    }

    /// A user's connections, oldest first.
    pub fn connections_of(&self, user_id: &str) -> Vec<&Connection> {
        self.users
            .get(user_id)
            .map(|u| u.connection_ids.iter().filter_map(|c| self.connections.get(c)).collect())
            .unwrap_or_default()
    }

    /// Whether a connection's provider has been withdrawn.
    pub fn provider_removed(&self, c: &Connection) -> bool {
        self.removed_providers.contains(&c.bank_id)
    }

    /// Creates a connection for `user_id` to `bank_id`, as the end of a successful
    /// authorisation does. Unless `asynchronous`, the first fetch (3 months of data) runs
    /// now; otherwise the returned sync is left running for [`Store::finish_sync`].
    pub fn create_connection(
        &mut self,
        user_id: &str,
        bank_id: &str,
        expires_at: Option<DateTime<Utc>>,
        asynchronous: bool,
        now: DateTime<Utc>,
    ) -> Result<NewConnection, Refusal> {
        let one_time = match self.users.get(user_id) {
            None => return Err(Refusal::UnknownUser),
            Some(u) => u.managed_by == ManagedBy::User,
        };
        let provider = self.catalogue.get(bank_id).cloned().ok_or(Refusal::UnknownProvider)?;
        if self.removed_providers.contains(bank_id) {
            return Err(Refusal::UnknownProvider);
        }
        let connection_id = format!("{}:{}", provider.id, self.next_uuid());
        let account_ids = self.create_accounts(user_id, &connection_id, &provider, now);
        let stale_after_days = account_ids
            .iter()
            .filter_map(|a| self.accounts.get(a))
            .map(|a| a.kind.stale_after_days())
            .min()
            .unwrap_or(if provider.kind.is_valuation() { 30 } else { 2 });
        // One-time access always ends: its consent lasts 24 hours unless `mh:consent` says
        // otherwise, whatever the provider (legacy ones included).
        let expires_at = if one_time {
            Some(expires_at.unwrap_or(now + one_time_consent_period()))
        } else if provider.no_expiry {
            None
        } else {
            Some(expires_at.unwrap_or(now + consent_period()))
        };
        let history_from = now - initial_history();
        let target =
            now - Duration::days(30 * provider.history_months as i64 + provider.history_months as i64 / 2);
        let conn = Connection {
            id: connection_id.clone(),
            user_id: user_id.to_string(),
            bank_id: provider.id.clone(),
            name: provider.name,
            kind: provider.kind,
            connected_on: now,
            last_updated: None,
            last_synced_at: None,
            expires_at,
            account_ids,
            tpp_consent: true,
            user_consented_at: now,
            single_sync_only: false,
            last_fetch: None,
            failing_since: None,
            sync_ids: Vec::new(),
            manual_syncs: VecDeque::new(),
            script: VecDeque::new(),
            sticky_outcome: None,
            last_reauth_reminder: None,
            last_refresh_reminder: None,
            enrichment_announced: false,
            history_from,
            history_target: (target < history_from).then_some(target),
            enriched_at: now + enrichment_time(),
            daily_sync_cap: provider.daily_sync_cap,
            stale_after_days,
            force_new_id_on_reauth: false,
        };
        self.connections.insert(connection_id.clone(), conn);
        if let Some(u) = self.users.get_mut(user_id) {
            u.connection_ids.push(connection_id.clone());
            u.updated_at = now;
        }
        let sync_id = self.start_sync(&connection_id, "client-update", "ADD", now)?;
        if !asynchronous {
            self.finish_sync(sync_id, now);
        }
        Ok(NewConnection { connection_id, sync_id })
    }

    fn create_accounts(
        &mut self,
        user_id: &str,
        connection_id: &str,
        provider: &Provider,
        now: DateTime<Utc>,
    ) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for (i, kind) in provider.accounts.iter().enumerate() {
            let id = self.next_uuid();
            // What the bank holds depends on who and which bank, not on the connection: a
            // user who reconnects sees the same bank history (under new Moneyhub ids).
            let provider_label = label(&format!("{user_id}:{}:{i}", provider.id));
            let seed = AccountSeed {
                seed: self.seed,
                label: provider_label,
                kind: *kind,
                replace_ratio: self.replace_ratio,
                volume: provider.volume,
            };
            let account = Account {
                id,
                user_id: user_id.to_string(),
                connection_id: connection_id.to_string(),
                kind: *kind,
                provider_name: provider.name,
                bank_ref: provider.bank_ref,
                provider_account_id: format!("{}-{:08x}", provider.bank_ref, provider_label as u32),
                seed,
                id_label: label(&id.to_string()),
                base_balance: base_balance(&seed),
                date_added: now,
                date_modified: now,
                last_successful_sync: None,
                txs: Vec::new(),
                deferred: Vec::new(),
                number_seed: provider_label,
            };
            self.accounts.insert(id, account);
            ids.push(id);
        }
        ids
    }

    /// Deletes a user's connection: the consent is revoked and its accounts, transactions and
    /// syncs are deleted.
    pub fn delete_connection(&mut self, user_id: &str, connection_id: &str) -> Result<(), Refusal> {
        self.connection(user_id, connection_id).ok_or(Refusal::UnknownConnection)?;
        self.remove_connection_data(connection_id);
        if let Some(u) = self.users.get_mut(user_id) {
            u.connection_ids.retain(|c| c != connection_id);
        }
        Ok(())
    }

    fn remove_connection_data(&mut self, connection_id: &str) {
        if let Some(conn) = self.connections.remove(connection_id) {
            for a in &conn.account_ids {
                self.remove_account_data(a);
            }
            for s in &conn.sync_ids {
                self.syncs.remove(s);
            }
        }
    }

    fn remove_account_data(&mut self, account_id: &Uuid) {
        if let Some(acc) = self.accounts.remove(account_id) {
            for t in &acc.txs {
                self.tx_index.remove(&t.id);
            }
        }
    }

    /// Sets a connection's consent expiry (`PATCH .../connections/{id}`): in the future and
    /// at most 90 days ahead.
    pub fn set_expiry(
        &mut self,
        user_id: &str,
        connection_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let conn = self
            .connections
            .get_mut(connection_id)
            .filter(|c| c.user_id == user_id)
            .ok_or(Refusal::UnknownConnection)?;
        // Legacy connections and the providers that never set one (Handelsbanken, PensionBee,
        // Société Générale) have no consent expiry to move.
        if conn.expires_at.is_none() {
            let why = if conn.kind == ProviderType::Legacy {
                "legacy connections"
            } else {
                "this provider's connections"
            };
            return Err(Refusal::Invalid(format!("{why} have no consent expiry (expiresAt)")));
        }
        if expires_at <= now {
            return Err(Refusal::Invalid("expiresAt must be in the future".into()));
        }
        if expires_at > now + consent_period() {
            return Err(Refusal::Invalid("expiresAt must be at most 90 days ahead".into()));
        }
        conn.expires_at = Some(expires_at);
        conn.tpp_consent = true;
        conn.user_consented_at = now;
        // A new expiry starts a new reminder cycle (moving expiry within 5 days is how
        // Moneyhub suggests testing `reauthReminder`).
        conn.last_reauth_reminder = None;
        Ok(())
    }

    /// Records a manual sync (`POST /sync`) for the rate limits. Only that route counts: the
    /// fetch a reauth, refresh or reconsent runs is part of the user's flow, not a manual sync.
    pub fn record_manual_sync(&mut self, connection_id: &str, now: DateTime<Utc>) {
        if let Some(conn) = self.connections.get_mut(connection_id) {
            conn.manual_syncs.push_back(now);
        }
    }

    /// Checks the manual-sync limits (30 minutes between syncs, provider daily caps).
    pub fn check_manual_sync(&mut self, connection_id: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        let conn = self.connections.get_mut(connection_id).ok_or(Refusal::UnknownConnection)?;
        while conn.manual_syncs.front().is_some_and(|t| now - *t >= Duration::days(1)) {
            conn.manual_syncs.pop_front();
        }
        if let Some(last) = conn.manual_syncs.back() {
            let wait = *last + manual_sync_gap() - now;
            if wait > Duration::zero() {
                return Err(Refusal::TooSoon(ceil_secs(wait)));
            }
        }
        if let (Some(cap), Some(first)) = (conn.daily_sync_cap, conn.manual_syncs.front()) {
            if conn.manual_syncs.len() as u32 >= cap {
                return Err(Refusal::TooSoon(ceil_secs(*first + Duration::days(1) - now)));
            }
        }
        Ok(())
    }

    /// Starts a sync of a connection and returns its id; [`Store::finish_sync`] fetches.
    pub fn start_sync(
        &mut self,
        connection_id: &str,
        action: &'static str,
        method: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Uuid, Refusal> {
        let id = self.next_uuid();
        self.syncs_started += 1;
        let conn = self.connections.get_mut(connection_id).ok_or(Refusal::UnknownConnection)?;
        conn.sync_ids.push(id);
        let accounts = conn
            .account_ids
            .iter()
            .filter_map(|a| self.accounts.get(a))
            .map(|a| (a.id, a.provider_account_id.clone()))
            .collect();
        self.syncs.insert(
            id,
            SyncRecord {
                id,
                seq: self.syncs_started,
                connection_id: connection_id.to_string(),
                user_id: conn.user_id.clone(),
                action,
                method,
                fetch_status: None,
                created_at: now,
                fetched_at: None,
                accounts,
            },
        );
        Ok(id)
    }

    /// Scripts the outcomes of a connection's next fetches, and what every fetch after them
    /// does (`None`: succeed).
    pub fn script(
        &mut self,
        connection_id: &str,
        outcomes: Vec<FetchStatus>,
        thereafter: Option<FetchStatus>,
        append: bool,
    ) -> Result<(), Refusal> {
        let conn = self.connections.get_mut(connection_id).ok_or(Refusal::UnknownConnection)?;
        if !append {
            conn.script.clear();
        }
        conn.script.extend(outcomes);
        conn.sticky_outcome = thereafter;
        Ok(())
    }

    /// The provider stops reporting an account: it is deleted with its transactions and a
    /// `deletedAccount` webhook announces it. The connection keeps its other accounts.
    pub fn drop_account(&mut self, account_id: &Uuid, now: DateTime<Utc>) -> Result<(), Refusal> {
        let acc = self
            .accounts
            .get(account_id)
            .ok_or_else(|| Refusal::Invalid(format!("unknown account {account_id}")))?;
        let (user, conn) = (acc.user_id.clone(), acc.connection_id.clone());
        if let Some(c) = self.connections.get_mut(&conn) {
            c.account_ids.retain(|a| a != account_id);
        }
        self.remove_account_data(account_id);
        self.emit(&user, "deletedAccount", serde_json::json!({"accountId": account_id.to_string()}), now);
        Ok(())
    }

    /// Withdraws a provider for good: its connections report `status: never` and stop syncing.
    pub fn remove_provider(&mut self, bank_id: &str) -> Result<(), Refusal> {
        self.catalogue.get(bank_id).ok_or(Refusal::UnknownProvider)?;
        self.removed_providers.insert(bank_id.to_string());
        Ok(())
    }
}

fn ceil_secs(d: Duration) -> u64 {
    let ms = d.num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

/// `id` with `namespace` XORed into its random bits; the version (4) and variant bits kept.
fn namespaced(id: Uuid, namespace: u128) -> Uuid {
    // Version: bits 76..80; variant: bits 62..64 (big-endian u128 of the UUID).
    const FIXED: u128 = (0xf << 76) | (0x3 << 62);
    Uuid::from_u128(id.as_u128() ^ (namespace & !FIXED))
}

#[cfg(test)]
mod webhook_id_tests {
    use super::*;

    #[test]
    fn namespaced_ids_stay_v4_and_differ_per_namespace() {
        let id = Uuid::parse_str("c390a94f-3824-4cdf-8d02-b0c5304d9f66").unwrap();
        let a = namespaced(id, u128::MAX);
        let b = namespaced(id, 0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        assert_eq!(namespaced(id, 0), id);
        assert_ne!(a, b);
        for u in [a, b] {
            assert_eq!(u.get_version_num(), 4, "{u}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{u}");
        }
    }
}
