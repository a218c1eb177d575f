//! The state every handler shares.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::TokenMinter;
use crate::clock::Clock;
use crate::config::{ClientRegistration, SandboxConfig, WebhookTarget};
use crate::identity::IdentityState;
use crate::keys::SigningKey;
use crate::request_log::RequestLog;
use crate::seed::catalogue::Catalogue;
use crate::store::Store;

/// Shared state of one sandbox.
#[derive(Debug)]
pub struct AppState {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The configuration it started with.
    pub config: SandboxConfig,
    /// Virtual clock.
    pub clock: Clock,
    /// id_token / webhook signing key.
    pub key: Arc<SigningKey>,
    /// Access tokens.
    pub tokens: TokenMinter,
    /// Moneyhub's data.
    pub store: RwLock<Store>,
    /// Identity-service state (pushed requests, codes, used assertion ids, refresh tokens).
    pub identity: Mutex<IdentityState>,
    /// Request log.
    pub log: RequestLog,
    /// Requests answered, by method (`other` for a method HTTP does not define), route
    /// template and status (for `/__sandbox/metrics`).
    pub route_counts: Mutex<std::collections::BTreeMap<(&'static str, String, u16), u64>>,
    /// Provider catalogue.
    pub catalogue: Arc<Catalogue>,
    /// The discovery document, built once.
    pub discovery: Value,
    /// Wakes the webhook delivery worker when events are recorded.
    pub webhook_wakeup: tokio::sync::Notify,
    /// Set when the sandbox is stopping, so background tasks end.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Where webhooks go now (changeable at runtime; see [`AppState::set_webhook`]).
    pub webhook: Mutex<Option<WebhookTarget>>,
    /// Webhook delivery: HTTP client, delivery log, chaos settings.
    pub webhook_worker: crate::webhooks::WebhookWorker,
    /// Fault-injection rules for the public routes.
    pub faults: crate::faults::Faults,
    /// The Auth Requests API's requests.
    pub auth_requests: Mutex<crate::rest::auth_requests::AuthRequests>,
}

impl AppState {
    /// Builds the state for a sandbox reachable at `base_url`.
    pub fn new(config: SandboxConfig, base_url: String) -> Result<Self, String> {
        let key = SigningKey::shared()?;
        let catalogue = Arc::new(Catalogue::new());
        let store = new_store(&config, catalogue.clone());
        if let Some(target) = &config.webhook {
            crate::webhooks::validate_target(target, config.allow_remote_webhooks)?;
        }
        let webhook_worker = crate::webhooks::WebhookWorker::new(config.seed)?;
        let webhook = Mutex::new(config.webhook.clone());
        let faults = crate::faults::Faults::new(config.seed);
        let discovery = crate::identity::discovery_document(&base_url, &catalogue);
        Ok(AppState {
            clock: Clock::new(config.clock),
            base_url,
            key,
            tokens: TokenMinter::new(),
            store: RwLock::new(store),
            identity: Mutex::new(IdentityState::default()),
            log: RequestLog::default(),
            route_counts: Mutex::new(std::collections::BTreeMap::new()),
            catalogue,
            discovery,
            config,
            webhook_wakeup: tokio::sync::Notify::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            webhook,
            webhook_worker,
            faults,
            auth_requests: Mutex::new(Default::default()),
        })
    }

    /// The store as a new sandbox starts with it (for a reset).
    pub fn fresh_store(&self) -> Store {
        new_store(&self.config, self.catalogue.clone())
    }

    /// Tells the webhook worker that events may be waiting.
    pub fn notify_webhooks(&self) {
        self.webhook_wakeup.notify_one();
    }

    /// Sets (or clears) the webhook target. The store records events only while there is a
    /// target, so nothing piles up unheard; clearing it also discards events not yet sent.
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        // Lock order: target, then store (nothing takes them the other way round), so two
        // concurrent calls cannot leave `record_events` disagreeing with the target.
        let mut current = self.webhook.lock();
        let mut store = self.store.write();
        store.record_events = target.is_some();
        if target.is_none() {
            store.outbox.clear();
        }
        *current = target;
        drop(store);
        drop(current);
        self.notify_webhooks();
    }

    /// Whether the sandbox is stopping.
    pub fn shutting_down(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The OIDC issuer: `<base>/oidc`.
    pub fn issuer(&self) -> String {
        format!("{}/oidc", self.base_url)
    }

    /// A registered client.
    pub fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.config.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Finishes an asynchronous sync in the background, shortly after (real time).
    pub fn finish_sync_later(self: &Arc<Self>, sync_id: Uuid) {
        let state = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(StdDuration::from_millis(50)).await;
            let now = state.clock.now();
            state.store.write().finish_sync(sync_id, now);
            state.notify_webhooks();
        });
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
