//! Webhook delivery: the events the store records (transaction changes, `syncCompleted`,
//! reminders...) are POSTed to the sandbox's webhook target as Moneyhub would send them.
//!
//! - The target (`AppState::webhook`) can change at runtime (`PUT /__sandbox/webhooks`);
//!   the store only records events while there is one, so nothing piles up unheard.
//! - A background worker ([`start`]) drains the outbox when woken
//!   (`AppState::notify_webhooks`) and, as a safety net, every 100 ms.
//! - Each event is sent once (no retry), with a 5 s limit; a 2xx in time counts as
//!   delivered. Every attempt goes to a bounded log (`GET /__sandbox/webhooks/deliveries`).
//! - Optional chaos (drop, duplicate, reorder) lets consumers be tested against an
//!   unreliable sender.

pub mod chaos;
pub mod delivery;
pub mod envelope;
pub mod log;

use std::time::Duration;

use parking_lot::Mutex;

use crate::config::{WebhookFormat, WebhookTarget};
use crate::state::AppState;
use chaos::{Chaos, ChaosSettings};
use log::DeliveryLog;

/// Moneyhub counts a webhook as received when the receiver answers 2xx within this.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the worker looks at the outbox even when nobody woke it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The delivery machinery of one sandbox (the target itself is `AppState::webhook`).
#[derive(Debug)]
pub struct WebhookWorker {
    /// One client for every delivery: no redirects (Moneyhub does not follow them), 5 s.
    client: reqwest::Client,
    /// Chaos settings and their seeded stream.
    chaos: Mutex<Chaos>,
    /// Every attempt.
    pub log: DeliveryLog,
    /// Whoever holds this delivers; the worker and `flush` take turns, keeping order.
    delivering: tokio::sync::Mutex<()>,
}

impl WebhookWorker {
    /// Waits for the delivery in flight (if any) to end and keeps the next one from starting
    /// until the guard drops. A jump of the clock holds it: a webhook signed before the jump
    /// and checked after it would carry an `iat` a day (or a month) away from the receiver's
    /// clock when that clock is the sandbox's, as in a test that advances time, and be
    /// refused for it; real time never jumps mid-delivery, so Moneyhub's never are.
    pub(crate) async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.delivering.lock().await
    }

    /// A worker for a sandbox seeded with `seed`.
    pub fn new(seed: u64) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .map_err(|e| format!("webhook HTTP client: {e}"))?;
        Ok(WebhookWorker {
            client,
            chaos: Mutex::new(Chaos::new(seed)),
            log: DeliveryLog::default(),
            delivering: tokio::sync::Mutex::new(()),
        })
    }

    /// The chaos settings.
    pub fn chaos(&self) -> ChaosSettings {
        self.chaos.lock().settings
    }

    /// Replaces the chaos settings.
    pub fn set_chaos(&self, settings: ChaosSettings) {
        self.chaos.lock().settings = settings;
    }
}

/// `json` / `jwt`.
pub fn format_name(format: WebhookFormat) -> &'static str {
    match format {
        WebhookFormat::Json => "json",
        WebhookFormat::Jwt => "jwt",
    }
}

/// Checks a receiver URL: absolute `http://` or `https://` with a host.
pub fn validate_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!("webhook url must be http:// or https:// with a host, got {:?}", u.as_str())),
        Err(e) => Err(format!("webhook url {url:?} is not a valid URL: {e}")),
    }
}

/// Validates a target before it is set: an http(s) URL, on a loopback host unless
/// `allow_remote` (see `SandboxConfig::allow_remote_webhooks`).
pub fn validate_target(target: &WebhookTarget, allow_remote: bool) -> Result<(), String> {
    validate_url(&target.url)?;
    if !allow_remote && !is_loopback_url(&target.url) {
        return Err(format!(
            "webhook url {:?} is not on a loopback address; a sandbox sends webhooks to another \
             machine only when started with remote webhooks allowed (--allow-remote-webhooks)",
            target.url
        ));
    }
    Ok(())
}

/// Whether the URL's host is `localhost` or a loopback IP address.
pub fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Starts the delivery worker. It ends by itself once the sandbox is stopping (after
/// finishing the delivery in hand: [`crate::Sandbox`] sets the flag when shut down or
/// dropped). It wakes on [`DataRoom::notify_webhooks`](crate::state::DataRoom::notify_webhooks)
/// and, so that an event recorded without a wake-up is not stranded, every [`POLL_INTERVAL`].
pub fn start(state: AppState) {
    tokio::spawn(async move {
        loop {
            if state.core.shutting_down() {
                break;
            }
            tokio::select! {
                _ = state.data.wakeup.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            // Cheap check first: most rounds find nothing to do.
            let pending = !state.data.store.read().outbox.is_empty();
            if pending && !state.core.shutting_down() {
                delivery::deliver_pending(&state).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(validate_url("http://127.0.0.1:9/hook").is_ok());
        assert!(validate_url("https://example.com").is_ok());
        assert!(validate_url("ftp://example.com").is_err());
        assert!(validate_url("not a url").is_err());
        assert!(validate_url("/relative").is_err());
        assert!(validate_url("mailto:a@b.c").is_err());
        let target = |url: &str| WebhookTarget { url: url.into(), format: Default::default() };
        assert!(validate_target(&target("http://127.0.0.1:9/hook"), false).is_ok());
        assert!(validate_target(&target("http://localhost:9/hook"), false).is_ok());
        assert!(validate_target(&target("http://[::1]:9/hook"), false).is_ok());
        assert!(validate_target(&target("https://example.com/hook"), false).is_err());
        assert!(validate_target(&target("http://10.0.0.1/hook"), false).is_err());
        assert!(validate_target(&target("https://example.com/hook"), true).is_ok());
    }
}
