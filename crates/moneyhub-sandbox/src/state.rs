//! The sandbox's rooms: the state its handlers share, split by who needs it.
//!
//! [`AppState`] is the whole sandbox, and only what acts on the whole sandbox takes it: the
//! control API, the dashboard, scenarios, the Auth Requests API (which spans the identity
//! service and Moneyhub's data) and the background workers. Every other handler takes the
//! rooms it reads, as axum sub-states ([`FromRef`]):
//!
//! | room | what is in it | who takes it |
//! |------|---------------|--------------|
//! | [`Core`] | base URL, configuration, virtual clock, provider catalogue, stopping flag | nearly everyone (read-only but for the clock) |
//! | [`DataRoom`] | Moneyhub's data ([`Store`]) and the bell that wakes the webhook worker when it records events | `data/`, `rest/`, `identity/` |
//! | [`IdentityRoom`] | signing key, access-token minter, OIDC sessions (PAR, codes, refresh tokens), discovery document | `identity/`, the [`BearerGrant`](crate::auth::BearerGrant) extractor |
//! | [`WebhookRoom`] | where webhooks go, the delivery worker (client, log, chaos) | `webhooks/`, `control/webhooks.rs` |
//! | [`Faults`] | fault-injection rules | `faults/`, `control/faults.rs` |
//! | [`AuthRequestsRoom`] | the Auth Requests API's requests | `rest/auth_requests.rs` |
//! | [`LogRoom`] | the request log and the request counts behind `/__sandbox/metrics` | `server.rs` (the log layer), `control/` |
//!
//! The bell lives with the store rather than with the webhooks: whoever changes Moneyhub's
//! data rings it, so the Data API and the identity routes never reach into the webhook room.
//!
//! Lock order, where two are taken together: webhook target, then store (see
//! [`AppState::set_webhook`]); nothing takes them the other way round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::extract::FromRef;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::TokenMinter;
use crate::clock::Clock;
use crate::config::{ClientRegistration, SandboxConfig, WebhookTarget};
use crate::faults::Faults;
use crate::identity::IdentityState;
use crate::keys::SigningKey;
use crate::request_log::RequestLog;
use crate::seed::catalogue::Catalogue;
use crate::store::Store;
use crate::webhooks::WebhookWorker;

/// What every room reads: where the sandbox is, how it started, its clock and catalogue.
#[derive(Debug)]
pub(crate) struct Core {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The configuration it started with.
    pub config: SandboxConfig,
    /// Virtual clock.
    pub clock: Clock,
    /// Provider catalogue.
    pub catalogue: Arc<Catalogue>,
    /// Set when the sandbox is stopping, so background tasks end.
    pub stopping: AtomicBool,
}

impl Core {
    /// Whether the sandbox is stopping.
    pub fn shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The OIDC issuer: `<base>/oidc`.
    pub fn issuer(&self) -> String {
        format!("{}/oidc", self.base_url)
    }

    /// A registered client.
    pub fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.config.clients.iter().find(|c| c.client_id == client_id)
    }

    /// The seeded store of a sandbox with this configuration, as it starts (and is reset to).
    pub fn fresh_store(&self) -> Store {
        new_store(&self.config, self.catalogue.clone())
    }
}

/// Moneyhub's data, and the bell that wakes the webhook worker when it records events.
#[derive(Debug)]
pub(crate) struct DataRoom {
    /// Moneyhub's data.
    pub store: RwLock<Store>,
    /// Rung when events may be waiting in the store's outbox; the webhook worker waits on it.
    pub wakeup: tokio::sync::Notify,
}

impl DataRoom {
    /// The store, for reading `user_id`'s data: with the user's deferred fetches carried out
    /// first (see `store/fetch.rs`), in the same hold of the lock as the read, so nothing
    /// fetched in between can be missed. Takes the write lock only when there is something
    /// to carry out.
    pub fn read_user(&self, user_id: &str) -> RwLockReadGuard<'_, Store> {
        let store = self.store.read();
        if !store.has_deferred(user_id) {
            return store;
        }
        drop(store);
        let mut store = self.store.write();
        store.realize_user(user_id);
        RwLockWriteGuard::downgrade(store)
    }

    /// Tells the webhook worker that events may be waiting.
    pub fn notify_webhooks(&self) {
        self.wakeup.notify_one();
    }

    /// Finishes an asynchronous sync in the background, shortly after (real time), at the
    /// virtual time of then.
    pub fn finish_sync_later(self: &Arc<Self>, core: &Arc<Core>, sync_id: Uuid) {
        let data = self.clone();
        let core = core.clone();
        tokio::spawn(async move {
            tokio::time::sleep(StdDuration::from_millis(50)).await;
            let now = core.clock.now();
            data.store.write().finish_sync(sync_id, now);
            data.notify_webhooks();
        });
    }
}

/// The identity service's own state.
#[derive(Debug)]
pub(crate) struct IdentityRoom {
    /// id_token / webhook signing key.
    pub key: Arc<SigningKey>,
    /// Access tokens.
    pub tokens: TokenMinter,
    /// Pushed requests, codes, used assertion ids, refresh tokens, interactions.
    pub sessions: Mutex<IdentityState>,
    /// The discovery document, built once.
    pub discovery: Value,
}

/// Webhook delivery: where they go and the machinery that sends them.
#[derive(Debug)]
pub(crate) struct WebhookRoom {
    /// Where webhooks go now (changeable at runtime; see [`AppState::set_webhook`]).
    pub target: Mutex<Option<WebhookTarget>>,
    /// Webhook delivery: HTTP client, delivery log, chaos settings.
    pub worker: WebhookWorker,
}

/// The Auth Requests API's requests.
pub(crate) type AuthRequestsRoom = Mutex<crate::rest::auth_requests::AuthRequests>;

/// Requests answered: the log and the counts.
#[derive(Debug, Default)]
pub(crate) struct LogRoom {
    /// Request log.
    pub requests: RequestLog,
    /// Requests answered, by method (`other` for a method HTTP does not define), route
    /// template and status (for `/__sandbox/metrics`).
    pub route_counts: Mutex<std::collections::BTreeMap<(&'static str, String, u16), u64>>,
}

/// The rooms the Data API and the identity REST routes (users, connections, syncs,
/// catalogues) work in: the core and Moneyhub's data. Their bearer grant comes through
/// [`BearerGrant`](crate::auth::BearerGrant), which reads the identity room itself.
#[derive(Debug, Clone)]
pub(crate) struct DataApi {
    /// Base URL, configuration, clock, catalogue.
    pub core: Arc<Core>,
    /// Moneyhub's data.
    pub data: Arc<DataRoom>,
}

impl FromRef<AppState> for DataApi {
    fn from_ref(state: &AppState) -> Self {
        DataApi { core: state.core.clone(), data: state.data.clone() }
    }
}

/// The whole sandbox: its rooms (cheap to clone: each is shared). The router's state is an
/// `AppState`; handlers take
/// the rooms they need (`State<Arc<Core>>`, `State<Arc<DataRoom>>`, ...).
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// Base URL, configuration, clock, catalogue.
    pub core: Arc<Core>,
    /// Moneyhub's data.
    pub data: Arc<DataRoom>,
    /// The identity service.
    pub identity: Arc<IdentityRoom>,
    /// Webhook delivery.
    pub webhooks: Arc<WebhookRoom>,
    /// Fault-injection rules for the public routes.
    pub faults: Arc<Faults>,
    /// The Auth Requests API's requests.
    pub auth_requests: Arc<AuthRequestsRoom>,
    /// Request log and metrics.
    pub log: Arc<LogRoom>,
}

macro_rules! room {
    ($field:ident: $room:ty) => {
        impl FromRef<AppState> for Arc<$room> {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    };
}
room!(core: Core);
room!(data: DataRoom);
room!(identity: IdentityRoom);
room!(webhooks: WebhookRoom);
room!(faults: Faults);
room!(auth_requests: AuthRequestsRoom);
room!(log: LogRoom);

impl AppState {
    /// Builds the state for a sandbox reachable at `base_url`.
    pub fn new(config: SandboxConfig, base_url: String) -> Result<Self, String> {
        let key = SigningKey::shared()?;
        let catalogue = Arc::new(Catalogue::new());
        let store = new_store(&config, catalogue.clone());
        if let Some(target) = &config.webhook {
            crate::webhooks::validate_target(target, config.allow_remote_webhooks)?;
        }
        let worker = WebhookWorker::new(config.seed)?;
        let target = Mutex::new(config.webhook.clone());
        let faults = Faults::new(config.seed);
        let discovery = crate::identity::discovery_document(&base_url, &catalogue);
        Ok(AppState {
            identity: Arc::new(IdentityRoom {
                key,
                tokens: TokenMinter::new(),
                sessions: Mutex::new(IdentityState::default()),
                discovery,
            }),
            data: Arc::new(DataRoom { store: RwLock::new(store), wakeup: tokio::sync::Notify::new() }),
            webhooks: Arc::new(WebhookRoom { target, worker }),
            faults: Arc::new(faults),
            auth_requests: Arc::new(Mutex::new(Default::default())),
            log: Arc::new(LogRoom::default()),
            core: Arc::new(Core {
                clock: Clock::new(config.clock),
                base_url,
                catalogue,
                config,
                stopping: AtomicBool::new(false),
            }),
        })
    }

    /// Sets (or clears) the webhook target. The store records events only while there is a
    /// target, so nothing piles up unheard; clearing it also discards events not yet sent.
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        // Lock order: target, then store (nothing takes them the other way round), so two
        // concurrent calls cannot leave `record_events` disagreeing with the target.
        let mut current = self.webhooks.target.lock();
        let mut store = self.data.store.write();
        store.record_events = target.is_some();
        if target.is_none() {
            store.outbox.clear();
        }
        *current = target;
        drop(store);
        drop(current);
        self.data.notify_webhooks();
    }
}

/// The seeded store of a sandbox with this configuration.
fn new_store(config: &SandboxConfig, catalogue: Arc<Catalogue>) -> Store {
    let mut store = Store::new(config.seed, config.pending_replace_ratio, catalogue);
    store.history_delay =
        chrono::Duration::from_std(config.history_delay).unwrap_or(chrono::Duration::seconds(1));
    // Record events only when someone listens (see `set_webhook`).
    store.record_events = config.webhook.is_some();
    store
}
