//! Loading a scenario into a running sandbox, and the reset it may start from.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::locate::Step::{Index, Key};
use super::{ConnectionState, Scenario, ScenarioError};
use crate::config::{ClockMode, WebhookFormat, WebhookTarget};
use crate::lifecycle::{run_until, RunReport};
use crate::state::AppState;
use crate::store::model::FetchStatus;
use crate::store::Store;
use parking_lot::RwLockWriteGuard;

/// What a load did: the clock, and every user and connection of the scenario with its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedScenario {
    /// The sandbox's time after loading.
    pub now: String,
    /// Whether the clock stands still.
    pub frozen: bool,
    /// Whether the sandbox was reset first.
    pub reset: bool,
    /// What ran while the clock moved to the scenario's start.
    pub ran: RunReport,
    /// The users, in the scenario's order.
    pub users: Vec<LoadedUser>,
    /// Ids of the fault rules added.
    pub faults: Vec<String>,
}

/// A user of a loaded scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedUser {
    /// The scenario's `clientUserId`.
    pub client_user_id: String,
    /// The sandbox's user id.
    pub user_id: String,
    /// Whether the user existed before the load.
    pub existed: bool,
    /// The user's connections, in the scenario's order.
    pub connections: Vec<LoadedConnection>,
}

/// A connection of a loaded scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedConnection {
    /// The scenario's `key`, or the bank's name.
    pub key: String,
    /// The bank id.
    pub bank_id: String,
    /// The bank's name.
    pub bank_name: String,
    /// The connection id.
    pub connection_id: String,
    /// The state it was put in.
    pub state: ConnectionState,
    /// Whether the connection existed before the load.
    pub existed: bool,
}

/// Puts a sandbox back in its seeded state, as it was when it started: the clock (in the
/// configured mode), the store (users, connections, accounts, syncs, withdrawn providers,
/// pending events, its id sequence), the identity service's pending requests, codes and
/// refresh tokens, the Auth Requests, fault rules (ids restart), the webhook target (the
/// configured one), chaos (off) and the delivery log. Access tokens already issued stay
/// valid (they name users that no longer exist); the request log and the metrics keep
/// counting, as they describe the process, not the data. A scenario given at start-up is
/// loaded again.
pub(crate) fn reset(state: &AppState) -> Result<(), ScenarioError> {
    state.core.clock.reset(state.core.config.clock);
    *state.data.store.write() = state.core.fresh_store();
    *state.identity.sessions.lock() = Default::default();
    *state.auth_requests.lock() = Default::default();
    state.faults.reset();
    state.set_webhook(state.core.config.webhook.clone());
    state.webhooks.worker.set_chaos(Default::default());
    state.webhooks.worker.log.clear();
    if let Some(scenario) = &state.core.config.scenario {
        apply(state, scenario, true)?;
    }
    Ok(())
}

/// Loads `scenario` (see the module docs of [`super`]), after a [`reset`] when `reset_first`.
/// Every check that can fail runs before anything changes.
pub(crate) fn load(
    state: &AppState,
    scenario: &Scenario,
    reset_first: bool,
) -> Result<LoadedScenario, ScenarioError> {
    if reset_first {
        // Checked before the reset too, so that a bad scenario leaves the sandbox as it was.
        check(state, scenario, true)?;
        reset(state)?;
    }
    let mut loaded = apply(state, scenario, reset_first)?;
    loaded.reset = reset_first;
    Ok(loaded)
}

/// How long one chunk of a load may hold the store's write lock. A load applies its users in
/// chunks and releases the lock (fairly: waiting requests go first) between them, so a large
/// scenario delays other requests by about this much at a time, never by the whole load.
const CHUNK: std::time::Duration = std::time::Duration::from_millis(20);

/// Checks the scenario against the sandbox, then applies it. `clock_free`: the clock may be
/// set outright (a fresh or just reset sandbox) rather than only moved forward.
///
/// Decision (the reference is silent): a load is not one atomic step for other requests.
/// Everything that can be refused is checked first, but the users are then applied in chunks
/// that each hold the store's lock for at most [`CHUNK`], so that a scenario of 100,000 users
/// does not stop the sandbox for seconds; requests served meanwhile may see some of the
/// scenario's users and not yet others.
pub(crate) fn apply(
    state: &AppState,
    scenario: &Scenario,
    clock_free: bool,
) -> Result<LoadedScenario, ScenarioError> {
    let plan = check(state, scenario, clock_free)?;
    // The clock first, so that states are applied at the scenario's time.
    let ran = set_clock(state, scenario, clock_free)?;
    let now = state.core.clock.now();
    if let Some((target, chaos)) = plan.webhook {
        state.set_webhook(Some(target));
        state.webhooks.worker.set_chaos(chaos);
    }
    let users = apply_users(state, scenario, &plan.users, now)?;
    state.data.notify_webhooks();
    let mut faults = Vec::new();
    for rule in &scenario.faults {
        let added = state.faults.add(rule.clone()).map_err(ScenarioError)?;
        faults.push(added["id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(LoadedScenario {
        now: crate::clock::iso(state.core.clock.now()),
        frozen: state.core.clock.is_frozen(),
        reset: false,
        ran,
        users,
        faults,
    })
}

/// Sets the clock as `[clock]` says: outright when `clock_free`, else forward only (running
/// what falls due on the way); then frozen or following the wall clock.
fn set_clock(state: &AppState, scenario: &Scenario, clock_free: bool) -> Result<RunReport, ScenarioError> {
    let mut ran = RunReport::default();
    let Some(clock) = &scenario.clock else { return Ok(ran) };
    let frozen = clock.frozen.unwrap_or_else(|| state.core.clock.is_frozen());
    match clock.start {
        Some(start) if clock_free => state.core.clock.reset(ClockMode::Frozen(start)),
        Some(start) => {
            let by = start - state.core.clock.now();
            if by > Duration::zero() {
                let target = state.core.clock.advance(by).map_err(ScenarioError)?;
                ran = run_until(&state.data, target);
            }
        }
        None => {}
    }
    if frozen {
        state.core.clock.freeze();
    } else {
        state.core.clock.resume();
    }
    Ok(ran)
}

/// The users that exist, by `(client id, clientUserId)`: the oldest of each (the one a load
/// reuses). Built once per load, so that finding a user is a look-up, not a scan of every user
/// (which made loading 40,000 users take 24 s).
type UserIndex = HashMap<(String, String), (DateTime<Utc>, String)>;

fn index_users(store: &Store) -> UserIndex {
    let mut index = UserIndex::with_capacity(store.users.len());
    for u in store.users.values() {
        let Some(client_user_id) = &u.client_user_id else { continue };
        let entry = index.entry((u.client_id.clone(), client_user_id.clone()));
        let kept = entry.or_insert_with(|| (u.created_at, u.user_id.clone()));
        if u.created_at < kept.0 {
            *kept = (u.created_at, u.user_id.clone());
        }
    }
    index
}

/// Applies the scenario's users, in chunks of at most [`CHUNK`] under the store's lock.
fn apply_users(
    state: &AppState,
    scenario: &Scenario,
    planned: &[PlannedUser],
    now: DateTime<Utc>,
) -> Result<Vec<LoadedUser>, ScenarioError> {
    let mut index = index_users(&state.data.store.read());
    let mut claimed: HashSet<String> = HashSet::new();
    let mut users = Vec::with_capacity(scenario.users.len());
    let mut todo = scenario.users.iter().zip(planned).peekable();
    while todo.peek().is_some() {
        let mut store = state.data.store.write();
        let started = std::time::Instant::now();
        while started.elapsed() < CHUNK {
            let Some((user, planned)) = todo.next() else { break };
            let mut load = UserLoad { store: &mut store, index: &mut index, claimed: &mut claimed, now };
            users.push(load.user(scenario, user, planned)?);
        }
        RwLockWriteGuard::unlock_fair(store);
    }
    Ok(users)
}

/// One user's part of a load, under the store's lock.
struct UserLoad<'a> {
    store: &'a mut Store,
    index: &'a mut UserIndex,
    /// Connections already given to a scenario connection (each existing one is reused once).
    claimed: &'a mut HashSet<String>,
    now: DateTime<Utc>,
}

impl UserLoad<'_> {
    fn user(
        &mut self,
        scenario: &Scenario,
        user: &super::ScenarioUser,
        planned: &PlannedUser,
    ) -> Result<LoadedUser, ScenarioError> {
        let key = (planned.client_id.clone(), user.client_user_id.clone());
        // Another request may have deleted an indexed user since the index was built.
        let existing =
            self.index.get(&key).map(|(_, id)| id.clone()).filter(|id| self.store.users.contains_key(id));
        let existed = existing.is_some();
        let user_id = match existing {
            Some(id) => id,
            None => {
                let id = self
                    .store
                    .create_user(&planned.client_id, Some(user.client_user_id.clone()), self.now)
                    .user_id
                    .clone();
                self.index.insert(key, (self.now, id.clone()));
                id
            }
        };
        let mut connections = Vec::with_capacity(user.connections.len());
        for (conn, (bank_id, bank_name)) in user.connections.iter().zip(&planned.banks) {
            let named = |e: crate::store::Refusal| {
                ScenarioError(format!("{}: {bank_name}: {e:?}", scenario.source.name))
            };
            let found = self
                .store
                .connections_of(&user_id)
                .into_iter()
                .filter(|c| &c.bank_id == bank_id && !self.claimed.contains(&c.id))
                .min_by_key(|c| c.connected_on)
                .map(|c| c.id.clone());
            let existed = found.is_some();
            let connection_id = match found {
                Some(id) => id,
                None => {
                    self.store
                        .create_connection(&user_id, bank_id, None, false, self.now)
                        .map_err(named)?
                        .connection_id
                }
            };
            self.claimed.insert(connection_id.clone());
            if conn.state == ConnectionState::ProviderWithdrawn {
                self.store.remove_provider(bank_id).map_err(named)?;
            }
            if let Some(c) = self.store.connections.get_mut(&connection_id) {
                put_in_state(c, conn.state, conn.days, conn.since, self.now);
                if conn.single_sync_only {
                    c.single_sync_only = true;
                }
            }
            connections.push(LoadedConnection {
                key: conn.key.clone().unwrap_or_else(|| bank_name.clone()),
                bank_id: bank_id.clone(),
                bank_name: bank_name.clone(),
                connection_id,
                state: conn.state,
                existed,
            });
        }
        Ok(LoadedUser { client_user_id: user.client_user_id.clone(), user_id, existed, connections })
    }
}

/// `PUT /__sandbox/connections/{id}/state`: puts one connection in a scenario state, with the
/// same checks and effects as a scenario's connection (`days`, `since`, `singleSyncOnly`).
pub(crate) fn set_state(
    state: &AppState,
    connection_id: &str,
    wanted: &super::StateRequest,
) -> Result<(), ScenarioError> {
    wanted.check()?;
    let now = state.core.clock.now();
    let mut store = state.data.store.write();
    let bank_id = store
        .connections
        .get(connection_id)
        .map(|c| c.bank_id.clone())
        .ok_or_else(|| ScenarioError(format!("unknown connection {connection_id:?}")))?;
    let provider =
        state.core.catalogue.get(&bank_id).ok_or_else(|| ScenarioError("unknown provider".into()))?;
    let consent = matches!(wanted.state, ConnectionState::ConsentEnding | ConnectionState::ConsentLapsed);
    if consent && provider.no_expiry {
        return Err(ScenarioError(format!("{} never sets a consent expiry (expiresAt)", provider.name)));
    }
    if wanted.state == ConnectionState::ProviderWithdrawn {
        store.remove_provider(&bank_id).map_err(|e| ScenarioError(format!("{e:?}")))?;
    }
    if let Some(c) = store.connections.get_mut(connection_id) {
        put_in_state(c, wanted.state, wanted.days, wanted.since, now);
        if let Some(v) = wanted.single_sync_only {
            c.single_sync_only = v;
        }
    }
    Ok(())
}

/// Sets a connection's script and consent for `state`; `healthy` clears what a former state
/// set (a reused connection may have been failing).
fn put_in_state(
    c: &mut crate::store::model::Connection,
    state: ConnectionState,
    days: Option<i64>,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) {
    c.script.clear();
    c.sticky_outcome = match state {
        ConnectionState::Failing => Some(FetchStatus::Error),
        ConnectionState::MfaDue => Some(FetchStatus::MfaRequired),
        ConnectionState::CredentialsRejected => Some(FetchStatus::CredentialsError),
        _ => None,
    };
    if let Some(since) = since {
        c.last_fetch = Some(FetchStatus::Error);
        c.failing_since = Some(since);
    }
    let expiry = match (state, days) {
        (ConnectionState::ConsentEnding, Some(d)) => Some(now + Duration::days(d)),
        (ConnectionState::ConsentLapsed, d) => Some(now - Duration::days(d.unwrap_or(100))),
        _ => None,
    };
    if let Some(at) = expiry {
        c.expires_at = Some(at);
        c.last_reauth_reminder = None;
    }
}

/// What the checks resolved: each user's client and banks, the webhook settings.
struct Plan {
    users: Vec<PlannedUser>,
    webhook: Option<(WebhookTarget, crate::webhooks::chaos::ChaosSettings)>,
}

struct PlannedUser {
    client_id: String,
    /// `(bank id, name)` per connection.
    banks: Vec<(String, String)>,
}

/// Everything that can be refused, before anything changes.
fn check(state: &AppState, scenario: &Scenario, clock_free: bool) -> Result<Plan, ScenarioError> {
    if let Some(start) = scenario.clock.as_ref().and_then(|c| c.start) {
        let now = state.core.clock.now();
        if !clock_free && start < now {
            return Err(scenario.error_at(
                &[Key("clock"), Key("start")],
                format!(
                    "the scenario starts at {}, before the sandbox's time {}: the clock never moves \
                     back, so load it with a reset (`moneyhub sandbox load --reset`, or \"reset\": true)",
                    crate::clock::iso(start),
                    crate::clock::iso(now)
                ),
            ));
        }
        if !clock_free {
            // The clock moves there: at most as far as `POST /__sandbox/clock/advance` goes.
            if let Err(why) = crate::clock::check_date("start", start, now) {
                return Err(scenario.error_at(&[Key("clock"), Key("start")], why));
            }
        }
        if clock_free && start.timestamp() < 0 {
            return Err(scenario.error_at(&[Key("clock"), Key("start")], "the clock starts after 1970"));
        }
    }
    let webhook = match &scenario.webhooks {
        None => None,
        Some(w) => {
            let format = match w.format.as_deref() {
                None => WebhookFormat::default(),
                Some(f) => f.parse().map_err(|e| scenario.error_at(&[Key("webhooks"), Key("format")], e))?,
            };
            let target = WebhookTarget { url: w.url.clone(), format };
            crate::webhooks::validate_target(&target, state.core.config.allow_remote_webhooks)
                .map_err(|e| scenario.error_at(&[Key("webhooks"), Key("url")], e))?;
            let chaos = match &w.chaos {
                None => Default::default(),
                Some(c) => c
                    .clone()
                    .into_settings()
                    .map_err(|e| scenario.error_at(&[Key("webhooks"), Key("chaos")], e))?,
            };
            Some((target, chaos))
        }
    };
    // Fault rules are checked on a scratch set, so a bad one changes nothing.
    let scratch = crate::faults::Faults::new(0);
    for (i, rule) in scenario.faults.iter().enumerate() {
        scratch.add(rule.clone()).map_err(|e| scenario.error_at(&[Key("faults"), Index(i)], e))?;
    }
    let mut users = Vec::with_capacity(scenario.users.len());
    for (u, user) in scenario.users.iter().enumerate() {
        let client_id = match &user.client_id {
            Some(id) if state.core.client(id).is_some() => id.clone(),
            Some(id) => {
                return Err(scenario.error_at(
                    &[Key("users"), Index(u), Key("clientId")],
                    format!("unknown API client {id:?}: the sandbox registers {}", client_ids(state)),
                ))
            }
            None => state.core.config.clients.first().map(|c| c.client_id.clone()).unwrap_or_default(),
        };
        let mut banks = Vec::with_capacity(user.connections.len());
        for (c, conn) in user.connections.iter().enumerate() {
            let at = |field| [Key("users"), Index(u), Key("connections"), Index(c), Key(field)];
            let provider = state.core.catalogue.find(conn.bank.trim()).ok_or_else(|| {
                scenario.error_at(
                    &at("bank"),
                    format!(
                        "unknown bank {:?}: name a provider by id, bankRef or name as \
                         /oidc/.well-known/all-connections lists them (`moneyhub catalog`)",
                        conn.bank
                    ),
                )
            })?;
            if matches!(conn.state, ConnectionState::ConsentEnding | ConnectionState::ConsentLapsed)
                && provider.no_expiry
            {
                return Err(scenario.error_at(
                    &at("state"),
                    format!("{} never sets a consent expiry (expiresAt)", provider.name),
                ));
            }
            banks.push((provider.id.to_string(), provider.name.to_string()));
        }
        users.push(PlannedUser { client_id, banks });
    }
    Ok(Plan { users, webhook })
}

fn client_ids(state: &AppState) -> String {
    state.core.config.clients.iter().map(|c| format!("{:?}", c.client_id)).collect::<Vec<_>>().join(", ")
}
