//! One user's work under a claim: what the events ask for, what Moneyhub says now, and the
//! writes that make the mirror agree.
//!
//! Every event is a hint about what changed; the truth is what Moneyhub answers *now*:
//!
//! * transaction events (`new`, `updated`, `deleted`, `restored`): the ids are fetched by id
//!   (batches of 50, fetched concurrently by the client). Found → upsert (a row only replaces
//!   an older `dateModified`); missing → tombstone. So a `deleted` that arrives after the
//!   transaction was restored does not bury it, and replays or reordering change nothing.
//! * `deletedAccount`: the account's transactions become tombstones.
//! * `syncCompleted`: the connection is reconciled incrementally: everything Moneyhub
//!   modified since the connection's watermark minus a safety margin is listed and upserted
//!   (new, updated and restored transactions whose webhooks were lost); then, since deletions
//!   leave no trace in such a listing, Moneyhub's count of the connection's transactions is
//!   compared with the local live count and, where they differ, the difference is narrowed
//!   down by date ranges (the last two weeks first, then halves) and the ids listed there are
//!   compared with the local ones; local ids no longer listed are checked by id and buried
//!   if missing. Every `full_reconcile_every`, and the first time a connection is seen
//!   (backfill), every transaction of the connection is listed and compared.
//! * The user's connections list (fetched when needed) tells which connections are gone
//!   (purged), which accounts were dropped (tombstoned) and which connections are new
//!   (backfilled).
//!
//! Within a session later observations override earlier ones (they are fresher), listings
//! run before the look-ups by id and ids a listing already saw are not looked up again; the
//! resulting writes go to the database in one transaction with the events' ledger rows.
//!
//! The stored JSON of a transaction is the object Moneyhub sent, byte for byte
//! ([`TransactionRecord`]): fields the client's model does not know are kept too. Only the
//! keys the rows are indexed by (id, account, dates, status) are decoded; the JSON is moved
//! into the row, never copied or encoded again.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;

use moneyhub::{Connection, ConnectionId, TransactionFilter, TransactionRecord, UserId};
use moneyhub_types::{AccountId, TransactionId, WebhookEvent};

use crate::db::{Claim, ConnectionUpdate, InboxEvent, LiveRow, LocalAccount, LocalConnection, TxRow, Writes};
use crate::error::Result;
use crate::{Inner, Progress, ProgressPhase};

/// Decisions kept in memory before an intermediate write (large backfills).
const FLUSH_AT: usize = 20_000;
/// Ids per `by_ids` call (the client splits them into requests of 50).
const IDS_PER_CALL: usize = 2_000;
/// Ids per request of a `by_ids` call (the client's batch size).
const IDS_PER_REQUEST: usize = 50;
/// Count-guided search stops halving a date range holding at most this many local rows.
const BISECT_LEAF: usize = 100;
/// ... looking first at this many most recent days.
const RECENT_DAYS: u64 = 14;

/// What a session did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SessionReport {
    /// Events applied.
    pub events: usize,
    /// Transactions fetched by id.
    pub fetched_by_id: usize,
    /// Transactions read from listings.
    pub listed: usize,
    /// Rows written as live versions (the database keeps the newer of two versions).
    pub upserts: usize,
    /// Rows written as tombstones.
    pub tombstones: usize,
    /// Connections reconciled.
    pub reconciled: usize,
    /// Connections fully listed (backfills and full reconciliations).
    pub full: usize,
    /// Connections purged.
    pub purged: usize,
    /// Accounts dropped.
    pub dropped_accounts: usize,
    /// Events ignored (no user, unknown or malformed payload).
    pub ignored: usize,
    /// Incremental reconciliations whose window count differed from Moneyhub's (ids compared).
    pub window_mismatches: usize,
}

impl SessionReport {
    /// Adds another report's counts.
    pub fn add(&mut self, o: &SessionReport) {
        self.events += o.events;
        self.fetched_by_id += o.fetched_by_id;
        self.listed += o.listed;
        self.upserts += o.upserts;
        self.tombstones += o.tombstones;
        self.reconciled += o.reconciled;
        self.full += o.full;
        self.purged += o.purged;
        self.dropped_accounts += o.dropped_accounts;
        self.ignored += o.ignored;
        self.window_mismatches += o.window_mismatches;
    }
}

/// How a connection is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every transaction of the connection.
    Full,
    /// Modified since `modified_from`, then counts compared (and ids where they differ).
    Incremental { modified_from: NaiveDate },
}

/// A date range to compare: first day, last day, Moneyhub's count, local `(id, date)` rows.
type Range = (Option<NaiveDate>, Option<NaiveDate>, u64, Vec<(TransactionId, i64)>);

enum Decision {
    Live(TxRow),
    /// Deleted at Moneyhub; the `dateModified` of the last live version seen.
    Gone(i64),
}

/// What the claimed events ask for.
#[derive(Default)]
struct Plan {
    ids: Vec<TransactionId>,
    dropped_accounts: Vec<AccountId>,
    /// connection → latest `completedAt` (ms).
    syncs: BTreeMap<ConnectionId, i64>,
    /// A reminder asked for the connections to be listed again (lifecycle loop).
    relist: bool,
    ignored: usize,
}

/// What the events ask for. The stored body (verified when it arrived) is decoded once, here;
/// from there on every id keeps its type.
///
/// The match over [`WebhookEvent`] names every variant and has no catch-all: an event type
/// added to `moneyhub-types` stops this crate compiling until it is decided here what the
/// mirror does with it.
fn plan(events: &[InboxEvent]) -> Plan {
    let mut p = Plan::default();
    let mut seen = HashSet::new();
    for e in events {
        let parsed = moneyhub::webhooks::read_verified(&e.body, e.signed)
            .map_err(|err| err.to_string())
            .and_then(|env| WebhookEvent::from_envelope(&env).map_err(|err| err.to_string()));
        let event = match parsed {
            Ok(ev) => ev,
            Err(err) => {
                tracing::warn!(seq = e.seq, error = %err, "stored event cannot be read; ignored");
                p.ignored += 1;
                continue;
            }
        };
        match event {
            WebhookEvent::NewTransactions(t)
            | WebhookEvent::UpdatedTransactions(t)
            | WebhookEvent::DeletedTransactions(t)
            | WebhookEvent::RestoredTransactions(t) => {
                for a in t.accounts {
                    for id in a.transactions {
                        if seen.insert(id.clone()) {
                            p.ids.push(id);
                        }
                    }
                }
            }
            WebhookEvent::DeletedAccount(d) => p.dropped_accounts.push(d.account_id),
            WebhookEvent::SyncCompleted(s) => {
                let at = s.completed_at.timestamp_millis();
                let entry = p.syncs.entry(s.connection_id).or_insert(at);
                *entry = (*entry).max(at);
            }
            // Reminders say a connection's state is changing: list the connections again so
            // the lifecycle loop sees it (no transaction data).
            WebhookEvent::ReauthReminder(_) | WebhookEvent::RefreshReminder(_) => p.relist = true,
            // Enrichment and events this crate does not know carry no transaction data: kept
            // in the inbox, nothing to apply.
            WebhookEvent::PostConnectionEnrichmentCompleted(_) | WebhookEvent::Unknown { .. } => {}
        }
    }
    p
}

pub(crate) fn row_of(t: TransactionRecord, user_id: &UserId, connection_id: Option<ConnectionId>) -> TxRow {
    TxRow {
        user_id: user_id.clone(),
        connection_id,
        date_ms: t.date.timestamp_millis(),
        modified_ms: t.date_modified.timestamp_millis(),
        status: t.status.as_str().to_owned(),
        // Exactly what Moneyhub sent, fields this crate does not model included (moved, not
        // copied).
        raw: String::from(Box::<str>::from(t.json)),
        id: t.id,
        account_id: t.account_id,
    }
}

fn day_start_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or(i64::MIN)
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) struct Session<'a> {
    inner: &'a Inner,
    /// The claim's key, for logs (`""` for events that name no user).
    user_id: String,
    /// The user, when the key is one.
    user: Option<UserId>,
    local_connections: HashMap<ConnectionId, LocalConnection>,
    local_accounts: HashMap<AccountId, LocalAccount>,
    remote: Option<Vec<Connection>>,
    account_connection: HashMap<AccountId, ConnectionId>,
    decisions: HashMap<TransactionId, Decision>,
    /// Ids seen by a listing or a look-up in this session.
    observed: HashSet<TransactionId>,
    writes: Writes,
    report: SessionReport,
}

impl<'a> Session<'a> {
    pub(crate) async fn load(inner: &'a Inner, claim: &mut Claim) -> Result<Session<'a>> {
        let user_id = claim.user_id().to_owned();
        let user = user_id.parse::<UserId>().ok();
        let (local_connections, local_accounts) = if user.is_some() {
            let c = claim.connections().await?;
            let a = claim.accounts().await?;
            (c, a)
        } else {
            (Vec::new(), Vec::new())
        };
        let account_connection = local_accounts
            .iter()
            .filter(|a| !a.removed)
            .map(|a| (a.account_id.clone(), a.connection_id.clone()))
            .collect();
        Ok(Session {
            inner,
            user_id,
            user,
            local_connections: local_connections.into_iter().map(|c| (c.connection_id.clone(), c)).collect(),
            local_accounts: local_accounts.into_iter().map(|a| (a.account_id.clone(), a)).collect(),
            remote: None,
            account_connection,
            decisions: HashMap::new(),
            observed: HashSet::new(),
            writes: Writes::default(),
            report: SessionReport::default(),
        })
    }

    /// Applies the claim's events (everything but the final write).
    pub(crate) async fn apply_events(&mut self, claim: &mut Claim) -> Result<()> {
        let events = claim.events().to_vec();
        self.report.events = events.len();
        let p = plan(&events);
        self.report.ignored += p.ignored;
        if self.user.is_none() {
            // No user (or not a user id): nothing can be fetched; the events stay in the inbox.
            self.report.ignored += events.len() - p.ignored;
            return Ok(());
        }
        let unknown_account = !p.ids.is_empty() && self.local_accounts.is_empty();
        if !p.syncs.is_empty()
            || p.relist
            || !p.dropped_accounts.is_empty()
            || unknown_account
            || self.local_connections.is_empty()
        {
            self.load_remote().await?;
        }
        for account in &p.dropped_accounts {
            self.drop_account(account);
        }
        // Reconcile synced connections, and backfill connections seen for the first time.
        let mut targets: BTreeMap<ConnectionId, (Mode, i64)> = BTreeMap::new();
        let remote: Vec<Connection> = self.remote.clone().unwrap_or_default();
        for c in &remote {
            let id = &c.id;
            let local = self.local_connections.get(id);
            let synced = p.syncs.get(id).copied();
            let moneyhub_now = synced.unwrap_or_else(|| connection_time(c));
            match (local, synced) {
                (Some(l), _) if !l.backfilled || l.removed => {
                    targets.insert(id.clone(), (Mode::Full, moneyhub_now));
                }
                (None, _) => {
                    targets.insert(id.clone(), (Mode::Full, moneyhub_now));
                }
                (Some(l), Some(at)) => {
                    targets.insert(id.clone(), (self.mode_for(l, at), at));
                }
                (Some(_), None) => {}
            }
        }
        for (connection_id, (mode, at)) in targets {
            self.reconcile(claim, &connection_id, mode, at).await?;
        }
        // The announced ids, except those the listings above already saw (a listing made now
        // is as fresh as a look-up by id).
        let remaining: Vec<TransactionId> =
            p.ids.into_iter().filter(|id| !self.observed.contains(id)).collect();
        self.refresh(claim, &remaining).await?;
        Ok(())
    }

    fn mode_for(&self, l: &LocalConnection, at: i64) -> Mode {
        let cfg = &self.inner.config;
        let (Some(watermark), Some(last_full)) = (l.watermark_ms, l.last_full_ms) else { return Mode::Full };
        if at.saturating_sub(last_full) >= cfg.full_reconcile_every.num_milliseconds() {
            return Mode::Full;
        }
        let modified_from = ms_to_time(watermark)
            .checked_sub_signed(cfg.safety_margin)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .date_naive();
        Mode::Incremental { modified_from }
    }

    /// Fetches the user's connections and derives purges, account moves and drops.
    pub(crate) async fn load_remote(&mut self) -> Result<()> {
        if self.remote.is_some() {
            return Ok(());
        }
        let Some(user) = self.user.clone() else { return Ok(()) };
        self.inner.budget.take(1).await;
        let remote = match self.inner.client.connections().list(&user).await {
            Ok(list) => list,
            // The user is gone: so are all their connections.
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let remote_ids: HashSet<&ConnectionId> = remote.iter().map(|c| &c.id).collect();
        let mut listed_accounts: HashSet<AccountId> = HashSet::new();
        for c in &remote {
            for a in &c.account_ids {
                let (account, connection) = (a.clone(), c.id.clone());
                listed_accounts.insert(account.clone());
                let known = self.local_accounts.get(&account);
                if known.is_none_or(|k| k.removed || k.connection_id != connection) {
                    self.writes.accounts.push((account.clone(), connection.clone()));
                }
                self.account_connection.insert(account, connection);
            }
        }
        let mut purged = Vec::new();
        for l in self.local_connections.values() {
            if !l.removed && !remote_ids.contains(&l.connection_id) {
                purged.push(l.connection_id.clone());
            }
        }
        purged.sort();
        for p in &purged {
            tracing::info!(user = %self.user_id, connection = %p, "connection removed at Moneyhub: purging");
            self.decisions
                .retain(|_, d| !matches!(d, Decision::Live(r) if r.connection_id.as_ref() == Some(p)));
            self.report.purged += 1;
        }
        let dropped: Vec<AccountId> = self
            .local_accounts
            .values()
            .filter(|a| {
                !a.removed && !listed_accounts.contains(&a.account_id) && !purged.contains(&a.connection_id)
            })
            .map(|a| a.account_id.clone())
            .collect();
        self.observe_lifecycle(&user, &remote, &purged).await;
        self.writes.purged_connections.extend(purged);
        for a in dropped {
            self.drop_account(&a);
        }
        self.remote = Some(remote);
        Ok(())
    }

    /// Records what the listing says of each connection for the lifecycle loop (written with
    /// the session's other writes, in its transaction): every listed connection as seen, the
    /// account types of accounts new to the mirror (one `GET /accounts`, best effort), a
    /// connection that appeared holding accounts another one held as moved from it (spec §5),
    /// and the purged ones as removed.
    async fn observe_lifecycle(&mut self, user: &UserId, remote: &[Connection], purged: &[ConnectionId]) {
        // Types are read when an account or a connection is new to the mirror (a reauth moves
        // known accounts to a new connection id).
        let new_accounts = remote
            .iter()
            .flat_map(|c| c.account_ids.iter())
            .any(|a| self.local_accounts.get(a).is_none_or(|l| l.removed))
            || remote.iter().any(|c| self.local_connections.get(&c.id).is_none_or(|l| l.removed));
        let mut types: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        if new_accounts {
            match self.inner.client.accounts().list(user, &moneyhub::AccountFilter::new()).await {
                Ok(accounts) => {
                    for a in accounts {
                        types.insert(a.id.as_str().to_owned(), a.kind.as_str().to_owned());
                    }
                }
                Err(e) => {
                    tracing::warn!(user = %self.user_id, error = %e, "could not read account types; staleness uses the per-type thresholds");
                }
            }
        }
        let batch = &mut self.writes.lifecycle;
        batch.now_ms = self.inner.client.now().timestamp_millis();
        batch.notify = self.inner.config.notify.is_some();
        batch.auto_sync = self.inner.config.auto_sync.is_some();
        for c in remote {
            let moved_from = if self.local_connections.contains_key(&c.id) {
                None
            } else {
                c.account_ids
                    .iter()
                    .filter_map(|a| self.local_accounts.get(a))
                    .find(|l| !l.removed && l.connection_id != c.id)
                    .map(|l| l.connection_id.as_str().to_owned())
            };
            let account_types = c
                .account_ids
                .iter()
                .filter_map(|a| types.get(a.as_str()).map(|t| (a.as_str().to_owned(), t.clone())))
                .collect();
            batch.items.retain(|(id, _)| id != c.id.as_str());
            batch.items.push((
                c.id.as_str().to_owned(),
                crate::lifecycle::Observation::Seen {
                    connection: Box::new(c.clone()),
                    account_types,
                    moved_from,
                },
            ));
        }
        for p in purged {
            batch.items.push((p.as_str().to_owned(), crate::lifecycle::Observation::Removed));
        }
    }

    fn drop_account(&mut self, account: &AccountId) {
        if self.writes.dropped_accounts.contains(account) {
            return;
        }
        // A dropped account's transactions are gone, including any decided in this session.
        self.decisions
            .retain(|_, d| !matches!(d, Decision::Live(r) if r.account_id.as_ref() == Some(account)));
        self.account_connection.remove(account);
        self.writes.accounts.retain(|(a, _)| a != account);
        self.writes.dropped_accounts.push(account.clone());
        self.report.dropped_accounts += 1;
    }

    fn decide_live(&mut self, raw: TransactionRecord) {
        let Some(user) = &self.user else { return };
        let account = raw.account_id.as_ref();
        if account.is_some_and(|a| self.writes.dropped_accounts.contains(a)) {
            return;
        }
        let connection = account.and_then(|a| self.account_connection.get(a)).cloned();
        let row = row_of(raw, user, connection);
        self.decisions.insert(row.id.clone(), Decision::Live(row));
    }

    fn decide_gone(&mut self, id: &TransactionId) {
        let seen = match self.decisions.get(id) {
            Some(Decision::Live(r)) => r.modified_ms,
            Some(Decision::Gone(m)) => *m,
            None => 0,
        };
        self.decisions.insert(id.clone(), Decision::Gone(seen));
    }

    /// Fetches ids and decides each: found → live, missing → gone.
    async fn refresh(&mut self, claim: &mut Claim, ids: &[TransactionId]) -> Result<()> {
        let Some(user) = self.user.clone() else { return Ok(()) };
        for chunk in ids.chunks(IDS_PER_CALL) {
            let requests = u32::try_from(chunk.len().div_ceil(IDS_PER_REQUEST)).unwrap_or(u32::MAX);
            self.inner.budget.take(requests).await;
            let got = self.inner.client.transactions().by_ids_records(&user, chunk).await?;
            self.report.fetched_by_id += got.transactions.len();
            if got
                .transactions
                .iter()
                .any(|t| t.account_id.as_ref().is_some_and(|a| !self.account_connection.contains_key(a)))
                && self.remote.is_none()
            {
                self.load_remote().await?;
            }
            for t in got.transactions {
                self.observed.insert(t.id.clone());
                self.decide_live(t);
            }
            for id in &got.missing {
                self.observed.insert(id.clone());
                self.decide_gone(id);
            }
            self.maybe_flush(claim).await?;
        }
        Ok(())
    }

    /// Reconciles one connection (which must be in the remote list).
    pub(crate) async fn reconcile(
        &mut self,
        claim: &mut Claim,
        connection_id: &ConnectionId,
        mode: Mode,
        at: i64,
    ) -> Result<()> {
        let Some(conn) =
            self.remote.as_ref().and_then(|r| r.iter().find(|c| &c.id == connection_id)).cloned()
        else {
            return Ok(());
        };
        let accounts: Vec<AccountId> = conn.account_ids.clone();
        let phase = match (mode, self.local_connections.get(connection_id).is_some_and(|l| l.backfilled)) {
            (Mode::Full, false) => ProgressPhase::Backfill,
            (Mode::Full, true) => ProgressPhase::Full,
            (Mode::Incremental { .. }, _) => ProgressPhase::Incremental,
        };
        if !accounts.is_empty() {
            let base = TransactionFilter::new().accounts(conn.account_ids.iter().cloned());
            let mut full = mode == Mode::Full;
            if let Mode::Incremental { modified_from } = mode {
                // 1. Everything modified since the watermark (minus the margin): new, updated
                // and restored transactions, whatever webhooks were lost.
                let mut listed = HashSet::new();
                let modified = base.clone().modified(Some(modified_from), None);
                self.list_into(claim, connection_id, phase, modified, &HashMap::new(), &mut listed).await?;
                // 2. Deletions leave no trace in that listing: compare counts, and ids where
                // they differ.
                let local = claim.live_rows(&accounts).await?;
                if !self.find_differences(claim, connection_id, phase, &base, &accounts, &local).await? {
                    full = true;
                }
            }
            if full {
                let local = claim.live_rows(&accounts).await?;
                let versions: HashMap<TransactionId, i64> =
                    local.iter().map(|r| (r.id.clone(), r.modified_ms)).collect();
                let mut listed = HashSet::new();
                self.list_into(claim, connection_id, phase, base, &versions, &mut listed).await?;
                let scope = self.live_in_scope(&accounts, &local, None);
                self.confirm_unlisted(claim, scope.into_keys(), &listed).await?;
            }
        }
        let full = mode == Mode::Full;
        self.report.reconciled += 1;
        if full {
            self.report.full += 1;
        }
        self.writes.connections.push(ConnectionUpdate {
            connection_id: connection_id.clone(),
            name: Some(conn.name.clone()),
            status: Some(conn.status.as_str().to_owned()),
            backfilled: true,
            watermark_ms: Some(at),
            last_full_ms: full.then_some(at),
            last_reconciled_ms: Some(at),
        });
        let last_full = if full {
            Some(at)
        } else {
            self.local_connections.get(connection_id).and_then(|l| l.last_full_ms)
        };
        self.local_connections.insert(
            connection_id.clone(),
            LocalConnection {
                connection_id: connection_id.clone(),
                backfilled: true,
                watermark_ms: Some(at),
                last_full_ms: last_full,
                removed: false,
            },
        );
        Ok(())
    }

    /// Moneyhub's count of a listing (`meta.count` of a one-row page), if it gives one.
    async fn count(&mut self, filter: &TransactionFilter) -> Result<Option<u64>> {
        let Some(user) = self.user.clone() else { return Ok(None) };
        self.inner.budget.take(1).await;
        Ok(self.inner.client.transactions().count(&user, filter).await?)
    }

    /// Finds where the local live set differs from Moneyhub's by comparing counts over date
    /// ranges (halving the range around the median local date while it holds more than a
    /// page's worth of local rows), then compares ids in each differing range and checks
    /// the unlisted ones by id. `false` when Moneyhub gives no counts (list everything).
    async fn find_differences(
        &mut self,
        claim: &mut Claim,
        connection_id: &ConnectionId,
        phase: ProgressPhase,
        base: &TransactionFilter,
        accounts: &[AccountId],
        local: &[LiveRow],
    ) -> Result<bool> {
        let versions: HashMap<TransactionId, i64> =
            local.iter().map(|r| (r.id.clone(), r.modified_ms)).collect();
        let scope: Vec<(TransactionId, i64)> =
            self.live_in_scope(accounts, local, None).into_iter().collect();
        let Some(total) = self.count(base).await? else { return Ok(false) };
        let mut stack: Vec<Range> = vec![(None, None, total, scope)];
        while let Some((lo, hi, remote, mut rows)) = stack.pop() {
            if remote == rows.len() as u64 {
                continue;
            }
            self.report.window_mismatches += 1;
            rows.sort_by_key(|r| r.1);
            let first_day = rows.first().map(|r| ms_to_time(r.1).date_naive());
            let last_day = rows.last().map(|r| ms_to_time(r.1).date_naive());
            // Most differences are recent (pending transactions replaced, withdrawals): look
            // at the last two weeks first, then halve around the median date.
            let recent = last_day.and_then(|d| d.checked_sub_days(chrono::Days::new(RECENT_DAYS)));
            let candidate = match recent {
                Some(r) if first_day.is_some_and(|f| f < r) => Some(r),
                _ => rows.get(rows.len() / 2).map(|r| ms_to_time(r.1).date_naive()),
            };
            // Split before that day, or after the first day if that is it.
            let split =
                candidate.and_then(|mid| if Some(mid) == first_day { mid.succ_opt() } else { Some(mid) });
            let splittable = rows.len() > BISECT_LEAF
                && split.is_some_and(|d| hi.is_none_or(|h| d <= h) && lo.is_none_or(|l| d > l));
            let Some(split) = split.filter(|_| splittable) else {
                let range = base.clone().dates(lo, hi);
                let mut listed = HashSet::new();
                self.list_into(claim, connection_id, phase, range, &versions, &mut listed).await?;
                self.confirm_unlisted(claim, rows.into_iter().map(|r| r.0), &listed).await?;
                continue;
            };
            let left_hi = split.pred_opt();
            let Some(left_remote) = self.count(&base.clone().dates(lo, left_hi)).await? else {
                return Ok(false);
            };
            let boundary = day_start_ms(split);
            let right_rows = rows.split_off(rows.partition_point(|r| r.1 < boundary));
            stack.push((lo, left_hi, left_remote, rows));
            stack.push((Some(split), hi, remote.saturating_sub(left_remote), right_rows));
        }
        Ok(true)
    }

    /// Lists every page of `filter`, recording the ids in `listed` and deciding every row
    /// whose version differs from the stored live one (`local`: id → `dateModified`).
    async fn list_into(
        &mut self,
        claim: &mut Claim,
        connection_id: &ConnectionId,
        phase: ProgressPhase,
        filter: TransactionFilter,
        local: &HashMap<TransactionId, i64>,
        listed: &mut HashSet<TransactionId>,
    ) -> Result<()> {
        let Some(user) = self.user.clone() else { return Ok(()) };
        let mut pages = Box::pin(self.inner.client.transactions().pages_records(&user, filter));
        let mut done: u64 = 0;
        loop {
            // One request per page (the last one included).
            self.inner.budget.take(1).await;
            let Some(page) = pages.try_next().await? else { break };
            done += page.transactions.len() as u64;
            self.report.listed += page.transactions.len();
            let total = page.meta.count;
            for t in page.transactions {
                let id = &t.id;
                listed.insert(id.clone());
                self.observed.insert(id.clone());
                let unchanged = local.get(id) == Some(&t.date_modified.timestamp_millis())
                    && !self.decisions.contains_key(id);
                if !unchanged {
                    self.decide_live(t);
                }
            }
            self.inner.progress(&Progress {
                user_id: user.clone(),
                connection_id: connection_id.clone(),
                phase,
                done,
                total,
            });
            self.maybe_flush(claim).await?;
        }
        Ok(())
    }

    /// The live ids in scope (these accounts, dated from `from_ms`) with their dates: stored
    /// live ones not decided gone here, plus those decided live in this session.
    fn live_in_scope(
        &self,
        accounts: &[AccountId],
        local: &[LiveRow],
        from_ms: Option<i64>,
    ) -> HashMap<TransactionId, i64> {
        let mut ids: HashMap<TransactionId, i64> = local
            .iter()
            .filter(|r| from_ms.is_none_or(|f| r.date_ms >= f))
            .filter(|r| !matches!(self.decisions.get(&r.id), Some(Decision::Gone(_))))
            .map(|r| (r.id.clone(), r.date_ms))
            .collect();
        for (id, d) in &self.decisions {
            if let Decision::Live(r) = d {
                let in_scope = r.account_id.as_ref().is_some_and(|a| accounts.contains(a))
                    && from_ms.is_none_or(|from| r.date_ms >= from);
                if in_scope {
                    ids.insert(id.clone(), r.date_ms);
                }
            }
        }
        ids
    }

    /// Checks by id those of `ids` Moneyhub no longer lists.
    async fn confirm_unlisted(
        &mut self,
        claim: &mut Claim,
        ids: impl IntoIterator<Item = TransactionId>,
        listed: &HashSet<TransactionId>,
    ) -> Result<()> {
        let mut missing: Vec<TransactionId> = ids.into_iter().filter(|id| !listed.contains(id)).collect();
        missing.sort();
        if !missing.is_empty() {
            tracing::debug!(user = %self.user_id, n = missing.len(), "checking ids no longer listed");
            self.refresh(claim, &missing).await?;
        }
        Ok(())
    }

    /// Reconciles every connection of the user: `full` → all, else only connections never
    /// backfilled.
    pub(crate) async fn reconcile_all(&mut self, claim: &mut Claim, full: bool) -> Result<()> {
        self.load_remote().await?;
        let remote: Vec<Connection> = self.remote.clone().unwrap_or_default();
        for c in &remote {
            let backfilled = self.local_connections.get(&c.id).is_some_and(|l| l.backfilled && !l.removed);
            if full || !backfilled {
                self.reconcile(claim, &c.id, Mode::Full, connection_time(c)).await?;
            }
        }
        Ok(())
    }

    async fn maybe_flush(&mut self, claim: &mut Claim) -> Result<()> {
        if self.decisions.len() < FLUSH_AT {
            return Ok(());
        }
        let mut w = Writes::default();
        self.drain_decisions(&mut w);
        claim.apply(w).await
    }

    fn drain_decisions(&mut self, w: &mut Writes) {
        for (id, d) in self.decisions.drain() {
            match d {
                Decision::Live(r) => {
                    self.report.upserts += 1;
                    w.upserts.push(r);
                }
                Decision::Gone(seen) => {
                    self.report.tombstones += 1;
                    w.tombstones.push((id, seen));
                }
            }
        }
        w.upserts.sort_by(|a, b| a.id.cmp(&b.id));
        w.tombstones.sort();
    }

    /// The writes still to do and the report.
    pub(crate) fn finish(mut self) -> (Writes, SessionReport) {
        let mut w = std::mem::take(&mut self.writes);
        self.drain_decisions(&mut w);
        (w, self.report)
    }
}

/// Moneyhub's time of a connection's last activity (for reconciliations not triggered by a
/// `syncCompleted`).
fn connection_time(c: &Connection) -> i64 {
    c.last_synced_at.or(c.last_updated).unwrap_or(c.connected_on).timestamp_millis()
}
