//! Fetching from a provider: what a sync does to the stored data.
//!
//! Each fetch compares the provider world (the generator) with what is stored, for the days
//! that can still change, and reconciles: new transactions, pending ones posting (in place or
//! under a new id), transactions the provider withdraws (deleted) and brings back (restored).
//! The changes become webhook events, per account.
//!
//! **Deferred fetches.** A fetch whose changes nobody is told about (the first fetch of a new
//! connection, which the client reads itself after the code exchange, and every fetch while
//! no webhook target is set) is not carried out at once: the account keeps its recipe (the
//! days it covers and the instant it ran at) in [`Account::deferred`], and the fetches are
//! replayed in order, each at its own instant, before anything reads or changes the
//! account's transactions ([`Store::realize_user`], [`Store::realize_account`]). A fetch
//! depends only on the generator, the instant and what was stored before it, so the replay
//! stores exactly what running it at the time would have (the same ids, `created` and
//! `modified` instants, pending and deleted flags, order). This is what lets a scenario of
//! 100,000 users load in seconds and stay small until they are read: generating and indexing
//! 3 months of history per connection was most of the load's time and memory.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use super::events::{sync_completed, TxChange, TxChanges};
use super::model::{flags, Account, FetchStatus, Tx};
use super::{consent_period, Refusal, Store};
use crate::rng::Rng;
use crate::seed::generator::{transactions_on, GenTx};

/// How far back each fetch looks for changes to already-fetched days (pending postings,
/// withdrawn and restored transactions all happen within this window).
fn rescan_window() -> Duration {
    Duration::days(12)
}

/// How many fetches an account may keep deferred before they are carried out anyway: bounds
/// the memory of an account that nobody reads and the time its first read takes.
const MAX_DEFERRED: usize = 64;

/// Where the days a fetch covers end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// Up to and including this instant (a sync: everything up to its time).
    Through(DateTime<Utc>),
    /// Before this instant (the history fetch: everything older than what is stored).
    Before(DateTime<Utc>),
}

impl Until {
    fn admits(self, date: DateTime<Utc>) -> bool {
        match self {
            Until::Through(t) => date <= t,
            Until::Before(t) => date < t,
        }
    }

    /// An instant on the last day covered.
    fn last_instant(self) -> DateTime<Utc> {
        match self {
            Until::Through(t) => t,
            Until::Before(t) => t - Duration::milliseconds(1),
        }
    }
}

/// A fetch of one account that ran but whose data nobody has read yet (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deferred {
    /// The first instant covered.
    from: DateTime<Utc>,
    /// Where the covered days end.
    until: Until,
    /// When the fetch ran (what pending, withdrawn and `created` are judged at).
    at: DateTime<Utc>,
}

/// What one fetch did. The counts cover the accounts fetched at once: a deferred fetch
/// (see the module docs) counts nothing here.
#[derive(Debug, Default)]
pub struct FetchReport {
    /// The outcome.
    pub status: Option<FetchStatus>,
    /// Transactions added.
    pub added: usize,
    /// Transactions updated (pending → posted in place).
    pub updated: usize,
    /// Transactions deleted.
    pub deleted: usize,
    /// Transactions restored.
    pub restored: usize,
}

impl Store {
    /// Runs the fetch of a started sync at `now` and records its outcome. Does nothing (and
    /// returns `None`) for a sync that is unknown or already finished.
    pub fn finish_sync(&mut self, sync_id: Uuid, now: DateTime<Utc>) -> Option<FetchReport> {
        let rec = self.syncs.get(&sync_id).filter(|s| s.fetch_status.is_none())?;
        let connection_id = rec.connection_id.clone();
        let method = rec.method;
        let conn = self.connections.get_mut(&connection_id)?;
        let removed = self.removed_providers.contains(&conn.bank_id);
        let mut outcome = conn.script.pop_front().or(conn.sticky_outcome).unwrap_or(FetchStatus::Success);
        if removed {
            outcome = FetchStatus::Error;
        }
        conn.last_synced_at = Some(now);
        conn.last_fetch = Some(outcome);
        let scan_from = conn
            .last_updated
            .map(|t| t - rescan_window())
            .unwrap_or(conn.history_from)
            .max(conn.history_from);
        let mut account_ids = conn.account_ids.clone();
        let user_id = conn.user_id.clone();
        match outcome {
            FetchStatus::Success => {
                conn.last_updated = Some(now);
                conn.failing_since = None;
            }
            FetchStatus::Partial => {
                // Some of the data failed: the last account's transactions did not arrive.
                conn.failing_since = None;
                account_ids.pop();
            }
            _ => {
                conn.failing_since.get_or_insert(now);
                account_ids.clear();
            }
        }
        // The fetch that creates a connection is read synchronously by the client after the
        // code exchange: Moneyhub announces only what arrives later (reference §14.3).
        let announced = method != "ADD" && self.record_events;
        let mut changes = TxChanges::default();
        for a in &account_ids {
            self.fetch_account(a, scan_from, Until::Through(now), now, announced, &mut changes);
            if outcome == FetchStatus::Success {
                if let Some(acc) = self.accounts.get_mut(a) {
                    acc.last_successful_sync = Some(now);
                }
            }
        }
        if let Some(rec) = self.syncs.get_mut(&sync_id) {
            rec.fetch_status = Some(outcome);
            rec.fetched_at = Some(now);
        }
        let report = FetchReport {
            status: Some(outcome),
            added: changes.count(TxChange::New),
            updated: changes.count(TxChange::Updated),
            deleted: changes.count(TxChange::Deleted),
            restored: changes.count(TxChange::Restored),
        };
        if announced {
            self.emit_changes(&user_id, changes, now);
        }
        let payload = sync_completed(sync_id, &connection_id, !outcome.is_failure(), now);
        self.emit(&user_id, "syncCompleted", payload, now);
        Some(report)
    }

    /// Runs the background history fetch of a new connection, if still due: transactions
    /// older than the first 3 months, back to the provider's history limit, announced with
    /// `newTransactions`.
    pub fn fetch_history(&mut self, connection_id: &str, now: DateTime<Utc>) -> Option<usize> {
        let conn = self.connections.get_mut(connection_id)?;
        let target = conn.history_target.take()?;
        if conn.is_expired(now) || self.removed_providers.contains(&conn.bank_id) {
            return Some(0);
        }
        let until = conn.history_from;
        conn.history_from = target;
        let account_ids = conn.account_ids.clone();
        let user_id = conn.user_id.clone();
        let announced = self.record_events;
        let mut changes = TxChanges::default();
        for a in &account_ids {
            self.fetch_account(a, target, Until::Before(until), now, announced, &mut changes);
        }
        let n = changes.len();
        self.emit_changes(&user_id, changes, now);
        Some(n)
    }

    /// Fetches one account's days from `from` to `until` at `at`: at once when its changes
    /// are announced (they go into `changes`), else deferred (see the module docs).
    fn fetch_account(
        &mut self,
        account_id: &Uuid,
        from: DateTime<Utc>,
        until: Until,
        at: DateTime<Utc>,
        announced: bool,
        changes: &mut TxChanges,
    ) {
        let Some(acc) = self.accounts.get_mut(account_id) else { return };
        if !announced && acc.deferred.len() < MAX_DEFERRED {
            acc.deferred.push(Deferred { from, until, at });
            return;
        }
        replay(acc, &mut self.tx_index);
        scan(acc, &mut self.tx_index, from, until, at, changes);
    }

    /// Carries out the deferred fetches of every account of `user_id`'s connections (see the
    /// module docs): what a read of the user's data needs first.
    pub fn realize_user(&mut self, user_id: &str) {
        for a in self.unread_accounts_of(user_id) {
            self.realize_account(&a);
        }
    }

    /// Carries out the deferred fetches of one account.
    pub fn realize_account(&mut self, account_id: &Uuid) {
        if let Some(acc) = self.accounts.get_mut(account_id) {
            replay(acc, &mut self.tx_index);
        }
    }

    /// Whether any account of `user_id`'s connections has fetches to carry out before a read.
    pub fn has_deferred(&self, user_id: &str) -> bool {
        !self.unread_accounts_of(user_id).is_empty()
    }

    /// The accounts of `user_id`'s connections with deferred fetches.
    fn unread_accounts_of(&self, user_id: &str) -> Vec<Uuid> {
        self.connections_of(user_id)
            .iter()
            .flat_map(|c| c.account_ids.iter().copied())
            .filter(|a| self.accounts.get(a).is_some_and(Account::has_deferred))
            .collect()
    }

    fn emit_changes(&mut self, user_id: &str, changes: TxChanges, now: DateTime<Utc>) {
        if !self.record_events || changes.is_empty() {
            return;
        }
        let mut ids = Vec::new();
        let events = changes.into_events(user_id, now, || {
            let id = self.next_webhook_id();
            ids.push(id);
            id
        });
        self.outbox.extend(events);
    }

    /// Renews a connection after a reauth (user went back to the bank): new consent period,
    /// errors cleared, a fresh fetch. Keeps the id when the chosen accounts are all of them
    /// (unless the connection is scripted to change id); when only some are chosen they move
    /// to a new connection id and the rest stay behind under the old one. Returns the id the
    /// id_token must carry and the sync it ran.
    pub fn reauth(
        &mut self,
        user_id: &str,
        connection_id: &str,
        chosen: Option<Vec<Uuid>>,
        now: DateTime<Utc>,
    ) -> Result<(String, Uuid), Refusal> {
        let conn = self.connection(user_id, connection_id).ok_or(Refusal::UnknownConnection)?.clone();
        let chosen: Vec<Uuid> = match chosen {
            Some(c) if !c.is_empty() => {
                if let Some(bad) = c.iter().find(|a| !conn.account_ids.contains(a)) {
                    return Err(Refusal::Invalid(format!(
                        "account {bad} is not part of connection {connection_id}"
                    )));
                }
                c
            }
            _ => conn.account_ids.clone(),
        };
        let all = chosen.len() == conn.account_ids.len();
        let target_id = if all && !conn.force_new_id_on_reauth {
            connection_id.to_string()
        } else {
            let new_id = format!("{}:{}", conn.bank_id, self.next_uuid());
            let mut moved = conn.clone();
            moved.id = new_id.clone();
            moved.account_ids = chosen.clone();
            moved.sync_ids = Vec::new();
            moved.manual_syncs.clear();
            moved.force_new_id_on_reauth = false;
            moved.connected_on = now;
            self.connections.insert(new_id.clone(), moved);
            for a in &chosen {
                if let Some(acc) = self.accounts.get_mut(a) {
                    acc.connection_id = new_id.clone();
                }
            }
            if all {
                self.connections.remove(connection_id);
            } else if let Some(old) = self.connections.get_mut(connection_id) {
                old.account_ids.retain(|a| !chosen.contains(a));
            }
            if let Some(u) = self.users.get_mut(user_id) {
                if all {
                    u.connection_ids.retain(|c| c != connection_id);
                }
                u.connection_ids.push(new_id.clone());
            }
            new_id
        };
        let provider_no_expiry = self.catalogue().get(&conn.bank_id).is_none_or(|p| p.no_expiry);
        if let Some(c) = self.connections.get_mut(&target_id) {
            c.expires_at = (!provider_no_expiry).then(|| now + consent_period());
            c.tpp_consent = true;
            c.user_consented_at = now;
            c.last_fetch = None;
            c.failing_since = None;
            // The user went back to the bank: whatever was failing is fixed.
            c.script.clear();
            c.sticky_outcome = None;
            c.last_reauth_reminder = None;
        }
        let sync_id = self.start_sync(&target_id, "client-update", "UPDATE", now)?;
        self.finish_sync(sync_id, now);
        Ok((target_id, sync_id))
    }

    /// Renews a legacy connection after the refresh flow (the user answered MFA): same id,
    /// errors cleared, a fresh fetch.
    pub fn refresh(
        &mut self,
        user_id: &str,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Uuid, Refusal> {
        let c = self
            .connections
            .get_mut(connection_id)
            .filter(|c| c.user_id == user_id)
            .ok_or(Refusal::UnknownConnection)?;
        c.last_fetch = None;
        c.failing_since = None;
        c.user_consented_at = now;
        c.script.clear();
        c.sticky_outcome = None;
        c.last_refresh_reminder = None;
        let sync_id = self.start_sync(connection_id, "client-update", "UPDATE", now)?;
        self.finish_sync(sync_id, now);
        Ok(sync_id)
    }

    /// Renews consent without a trip to the bank (reconsent flow): same id, new expiry, then a
    /// fetch under the renewed consent (as the code exchange of every flow does).
    /// Refused once `tppConsent` is false.
    pub fn reconsent(
        &mut self,
        user_id: &str,
        connection_id: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let c = self
            .connections
            .get_mut(connection_id)
            .filter(|c| c.user_id == user_id)
            .ok_or(Refusal::UnknownConnection)?;
        if !c.tpp_consent(now) {
            return Err(Refusal::Invalid("tppConsent is false: this connection needs a reauth".into()));
        }
        if c.expires_at.is_none() {
            return Err(Refusal::Invalid("this connection has no consent expiry to renew".into()));
        }
        let exp = expires_at.unwrap_or(now + consent_period());
        if exp <= now || exp > now + consent_period() {
            return Err(Refusal::Invalid(
                "the new consent expiry must be in the future and at most 90 days ahead".into(),
            ));
        }
        c.last_reauth_reminder = None;
        c.expires_at = Some(exp);
        c.tpp_consent = true;
        c.user_consented_at = now;
        // Failures of the lapsed period do not count against the renewed consent.
        c.failing_since = None;
        // Like the other flows, the code exchange fetches: fresh data under the new consent.
        let sync_id = self.start_sync(connection_id, "client-update", "UPDATE", now)?;
        self.finish_sync(sync_id, now);
        Ok(())
    }
}

/// The Moneyhub id of a provider transaction: generation 0 is the id it gets when first seen,
/// generation 1 the id of the posted twin that replaces an unmatched pending transaction.
pub fn tx_id(acc: &Account, key: u64, generation: u64) -> Uuid {
    Rng::derive(acc.seed.seed, &[acc.id_label, key, generation]).uuid()
}

impl Account {
    /// Whether fetches of this account wait to be carried out at its next read.
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }
}

/// Carries out an account's deferred fetches, oldest first, each at its own instant. What
/// they change was never announced (that is why they were deferred), so it is dropped.
fn replay(acc: &mut Account, index: &mut std::collections::HashMap<Uuid, (Uuid, u32)>) {
    if acc.deferred.is_empty() {
        return;
    }
    let mut unannounced = TxChanges::default();
    for d in std::mem::take(&mut acc.deferred) {
        scan(acc, index, d.from, d.until, d.at, &mut unannounced);
    }
}

/// Reconciles the stored transactions of `acc` with the provider's, for the generated
/// transactions dated from `from` to `until`, as of `at`.
fn scan(
    acc: &mut Account,
    index: &mut std::collections::HashMap<Uuid, (Uuid, u32)>,
    from: DateTime<Utc>,
    until: Until,
    at: DateTime<Utc>,
    changes: &mut TxChanges,
) {
    for day in days_between(from, until.last_instant()) {
        for g in transactions_on(&acc.seed, day) {
            if g.date >= from && until.admits(g.date) {
                apply(acc, index, &g, at, changes);
            }
        }
    }
}

fn apply(
    acc: &mut Account,
    index: &mut std::collections::HashMap<Uuid, (Uuid, u32)>,
    g: &GenTx,
    now: DateTime<Utc>,
    changes: &mut TxChanges,
) {
    let now_ms = now.timestamp_millis();
    let pending = g.pending_at(now);
    let visible = !g.withdrawn_at(now);
    let first_id = tx_id(acc, g.key, 0);
    let current_id = if g.replaced_on_post && !pending { tx_id(acc, g.key, 1) } else { first_id };
    if current_id != first_id {
        // The pending twin we stored (if any) is replaced by the posted transaction.
        if let Some(&(_, pos)) = index.get(&first_id) {
            if let Some(t) = acc.txs.get_mut(pos as usize) {
                if !t.is_deleted() {
                    t.flags |= flags::DELETED;
                    t.modified_ms = now_ms;
                    changes.push(acc.id, TxChange::Deleted, t.id);
                }
            }
        }
    }
    match index.get(&current_id) {
        None if visible => {
            let pos = acc.txs.len() as u32;
            acc.txs.push(Tx {
                id: current_id,
                key: g.key,
                date_ms: g.date.timestamp_millis(),
                created_ms: now_ms,
                modified_ms: now_ms,
                amount: g.amount,
                merchant: g.merchant,
                flags: if pending { flags::PENDING } else { 0 },
            });
            index.insert(current_id, (acc.id, pos));
            acc.date_modified = now;
            changes.push(acc.id, TxChange::New, current_id);
        }
        None => {}
        Some(&(_, pos)) => {
            let Some(t) = acc.txs.get_mut(pos as usize) else { return };
            if !visible {
                if !t.is_deleted() {
                    t.flags |= flags::DELETED;
                    t.modified_ms = now_ms;
                    changes.push(acc.id, TxChange::Deleted, t.id);
                }
            } else if t.is_deleted() {
                t.flags &= !flags::DELETED;
                if !pending {
                    t.flags &= !flags::PENDING;
                }
                t.modified_ms = now_ms;
                changes.push(acc.id, TxChange::Restored, t.id);
            } else if t.is_pending() && !pending {
                t.flags &= !flags::PENDING;
                t.modified_ms = now_ms;
                changes.push(acc.id, TxChange::Updated, t.id);
            }
        }
    }
}

/// The calendar days from `from` to `to` inclusive (UTC).
fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> impl Iterator<Item = NaiveDate> {
    let start = from.date_naive();
    let end = to.date_naive();
    start.iter_days().take_while(move |d| *d <= end)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Duration, Utc};

    use super::*;
    use crate::seed::catalogue::{Catalogue, MONEYHUB_MOCK};
    use crate::store::events::Event;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sync_at(store: &mut Store, conn: &str, at: DateTime<Utc>) -> FetchReport {
        let id = store.start_sync(conn, "auto-update", "UPDATE", at).unwrap();
        store.finish_sync(id, at).unwrap()
    }

    fn ids_of(events: &[Event], kind: &str) -> Vec<String> {
        events
            .iter()
            .filter(|e| e.event_type == kind)
            .flat_map(|e| e.payload["accounts"][0]["transactions"].as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn withdrawn_transactions_are_deleted_then_restored_under_the_same_id() {
        let start = t("2025-01-15T10:00:00Z");
        let mut store = Store::new(42, 0.0, Arc::new(Catalogue::new()));
        store.record_events = true;
        let user = store.create_user("c", None, start).user_id.clone();
        let conn = store.create_connection(&user, MONEYHUB_MOCK, None, false, start).unwrap().connection_id;
        let acc_id = store.connections[&conn].account_ids[0];
        let seed = store.accounts[&acc_id].seed;
        // The first transaction after connecting that the provider will withdraw for a while.
        let (g, from, len) = (1..400)
            .flat_map(|d| transactions_on(&seed, (start + Duration::days(d)).date_naive()))
            .find_map(|g| g.withdrawn.map(|(f, l)| (g, f as i64, l as i64)))
            .expect("the generator withdraws about 0.4% of transactions");
        let id = tx_id(&store.accounts[&acc_id], g.key, 0);
        // Keep the connection syncing daily up to the transaction, so the rescan window covers it.
        let mut at = start;
        while at < g.date {
            at += Duration::days(1);
            sync_at(&mut store, &conn, at.min(g.date + Duration::hours(1)));
        }
        sync_at(&mut store, &conn, g.date + Duration::hours(1));
        store.outbox.clear();
        let live = |s: &Store| s.tx_index.get(&id).map(|(a, p)| !s.accounts[a].txs[*p as usize].is_deleted());
        assert_eq!(live(&store), Some(true), "fetched once visible");
        sync_at(&mut store, &conn, g.date + Duration::days(from) + Duration::hours(2));
        assert_eq!(live(&store), Some(false), "withdrawn by the provider: deleted");
        assert!(ids_of(&store.outbox, "deletedTransactions").contains(&id.to_string()));
        store.outbox.clear();
        sync_at(&mut store, &conn, g.date + Duration::days(from + len) + Duration::hours(3));
        assert_eq!(live(&store), Some(true), "back again: restored");
        assert_eq!(ids_of(&store.outbox, "restoredTransactions"), vec![id.to_string()]);
    }

    /// Everything stored of one account, in order: what a replay must reproduce exactly.
    fn stored(store: &Store, acc: &Uuid) -> Vec<Tx> {
        let a = &store.accounts[acc];
        assert!(a.deferred.is_empty(), "read after realizing");
        for (pos, t) in a.txs.iter().enumerate() {
            assert_eq!(store.tx_index.get(&t.id), Some(&(a.id, pos as u32)), "indexed");
        }
        a.txs.clone()
    }

    #[test]
    fn deferred_fetches_replay_to_exactly_what_fetching_at_once_stores() {
        let start = t("2025-01-15T10:00:00Z");
        // Two stores, the same seed and the same story; nobody listens (no webhook target),
        // so every fetch is deferred. One is read after every step (its fetches run at once),
        // the other only at the end (they all replay then).
        let mut eager = Store::new(11, 0.5, Arc::new(Catalogue::new()));
        let mut lazy = Store::new(11, 0.5, Arc::new(Catalogue::new()));
        let mut accounts = Vec::new();
        for (i, store) in [&mut eager, &mut lazy].into_iter().enumerate() {
            let user = store.create_user("c", None, start).user_id.clone();
            let conn =
                store.create_connection(&user, MONEYHUB_MOCK, None, false, start).unwrap().connection_id;
            let read = |store: &mut Store| {
                if i == 0 {
                    store.realize_user(&user);
                }
            };
            read(store);
            store.fetch_history(&conn, start + Duration::seconds(1)).unwrap();
            read(store);
            let mut at = start;
            // 40 days of syncs every 23 hours: pending payments post (some under new ids),
            // the provider withdraws and restores a few.
            for _ in 0..(40 * 24 / 23) {
                at += Duration::hours(23);
                sync_at(store, &conn, at);
                read(store);
            }
            if i == 1 {
                let acc = store.connections[&conn].account_ids[0];
                assert!(!store.accounts[&acc].deferred.is_empty(), "nothing read yet: deferred");
                assert!(store.tx_index.is_empty(), "nothing generated yet");
                assert!(store.has_deferred(&user));
                store.realize_user(&user);
                assert!(!store.has_deferred(&user));
                // Unread for long, an account keeps at most MAX_DEFERRED fetches waiting.
                for _ in 0..MAX_DEFERRED + 5 {
                    at += Duration::hours(1);
                    sync_at(store, &conn, at);
                    assert!(store.accounts[&acc].deferred.len() <= MAX_DEFERRED);
                }
                store.realize_user(&user);
            }
            if i == 0 {
                for _ in 0..MAX_DEFERRED + 5 {
                    at += Duration::hours(1);
                    sync_at(store, &conn, at);
                }
                store.realize_user(&user);
            }
            accounts.push(store.connections[&conn].account_ids.clone());
        }
        assert_eq!(accounts[0], accounts[1], "same ids");
        let mut all = Vec::new();
        for (a, b) in accounts[0].iter().zip(&accounts[1]) {
            let (e, l) = (stored(&eager, a), stored(&lazy, b));
            assert_eq!(e, l);
            assert_eq!(eager.accounts[a].date_modified, lazy.accounts[b].date_modified);
            all.extend(e);
        }
        assert!(all.len() > 1000, "history and 40 days: {}", all.len());
        assert!(all.iter().any(|t| t.is_deleted()), "some were deleted on the way");
        assert!(
            all.iter().any(|t| t.created_ms != t.modified_ms),
            "some changed after they were first stored"
        );
        assert_eq!(eager.tx_index.len(), lazy.tx_index.len());
    }

    #[test]
    fn every_fetch_announces_sync_completed_and_failures_do_not_touch_data() {
        let start = t("2025-01-15T10:00:00Z");
        let mut store = Store::new(7, 0.0, Arc::new(Catalogue::new()));
        store.record_events = true;
        let user = store.create_user("c", None, start).user_id.clone();
        let conn = store.create_connection(&user, MONEYHUB_MOCK, None, false, start).unwrap().connection_id;
        let n = store.tx_index.len();
        store.script(&conn, vec![FetchStatus::Error], None, false).unwrap();
        let r = sync_at(&mut store, &conn, start + Duration::days(1));
        assert_eq!(r.status, Some(FetchStatus::Error));
        assert_eq!(store.tx_index.len(), n, "a failed fetch brings nothing");
        let r = sync_at(&mut store, &conn, start + Duration::days(1) + Duration::hours(4));
        assert!(r.added > 0, "the next success catches up");
        let completed: Vec<&Event> =
            store.outbox.iter().filter(|e| e.event_type == "syncCompleted").collect();
        let statuses: Vec<&str> =
            completed.iter().map(|e| e.payload["processingStatus"].as_str().unwrap()).collect();
        assert_eq!(statuses, vec!["success", "error", "success"]);
    }
}
