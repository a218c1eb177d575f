//! # moneyhub-sandbox
//!
//! A faithful local Moneyhub: the OIDC identity service (discovery, JWKS, token endpoint,
//! PAR, authorisation with auto-consent), identity REST routes (users, connections, syncs,
//! catalogues) and the Data API (sync, accounts, transactions) under `/v2.0`, `/v3` and
//! `/v3.0`, with deterministic seeded data and Moneyhub's error bodies.
//!
//! Start one in a test with [`spawn`] (it listens on `127.0.0.1:0`) and point any client at
//! [`Sandbox::identity_url`] and [`Sandbox::api_url_v3`]:
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
//! let catalogue: serde_json::Value = reqwest::get(format!(
//!     "{}/oidc/.well-known/test-connections",
//!     sandbox.identity_url()
//! ))
//! .await?
//! .json()
//! .await?;
//! assert!(catalogue.as_array().is_some_and(|a| !a.is_empty()));
//! # Ok(()) }
//! ```
//!
//! The sandbox depends on no other crate of this project: it is an independent check of the
//! client.
//!
//! # The public surface
//!
//! Only what other crates need is public; everything else (the store, the seeded data, the
//! identity service, the webhook worker, the HTTP plumbing) is `pub(crate)`, so it can change
//! in any release without breaking anyone. What is public, and why:
//!
//! * [`spawn`], [`serve`], [`Sandbox`], [`SandboxError`]: starting and stopping a sandbox, and
//!   its URLs, clock and first client (tests, examples, the CLI's `sandbox serve`).
//! * [`config`] and its re-exports at the root ([`SandboxConfig`], [`ClientRegistration`],
//!   [`ClockMode`], [`ConsentMode`], [`WebhookTarget`], [`WebhookFormat`],
//!   [`DEFAULT_CLIENT_ID`], [`DEFAULT_CLIENT_SECRET`]): how a sandbox starts.
//! * [`kit`]: [`kit::Control`], the typed client of the control API, and the request and
//!   answer types the handlers use too ([`kit::types`](kit) is their one definition); plus
//!   [`kit::iso`] (the sandbox's time format) and [`kit::sha256`], which tests use to compare
//!   and rebuild what the sandbox wrote.
//! * [`scenario`]: scenario files (the CLI loads them and names their connection states).
//! * [`SigningKey`]: the key the sandbox signs id_tokens and webhooks with, shared by every
//!   sandbox of the process, so that tests can sign a payload as the sandbox would.
//! * [`webhooks_on_loopback`]: the rule the CLI applies before accepting a webhook target.
//!
//! `bench` (hidden) lets the crate's own benchmark reach the store; it is not part of the
//! API.
//!
//! # Rooms
//!
//! Inside, the sandbox is split into rooms (`state.rs`): the core (base URL, configuration,
//! virtual clock, catalogue), Moneyhub's data, the identity service, webhooks, faults, the
//! Auth Requests API and the request log. Handlers take the rooms they need as axum
//! sub-states (`FromRef`), and the Data API and identity REST handlers get their bearer grant
//! from one extractor (`auth::BearerGrant`) that answers Moneyhub's 401 bodies. Only the
//! control API, the dashboard, scenarios and the background workers see the whole sandbox.

#![forbid(unsafe_code)]

pub(crate) mod auth;
pub(crate) mod clock;
pub mod config;
mod control;
mod data;
pub(crate) mod error;
mod faults;
pub(crate) mod http;
mod identity;
pub(crate) mod keys;
pub mod kit;
pub(crate) mod lifecycle;
pub(crate) mod request_log;
mod rest;
pub(crate) mod rng;
pub mod scenario;
pub(crate) mod seed;
mod server;
mod state;
pub(crate) mod store;
mod ui;
mod webhooks;

pub use config::{
    ClientRegistration, ClockMode, ConsentMode, SandboxConfig, WebhookFormat, WebhookTarget,
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};
pub use keys::SigningKey;
pub use server::{serve, spawn, Sandbox, SandboxError};

/// Whether a webhook URL's host is `localhost` or a loopback IP address: the targets a
/// sandbox accepts without [`SandboxConfig::allow_remote_webhooks`].
pub fn webhooks_on_loopback(url: &str) -> bool {
    webhooks::is_loopback_url(url)
}

/// The store and catalogue for the crate's own benchmark (`benches/store.rs`), which times
/// them without a server. Not part of the public API: no semver promise, may change in any
/// release.
#[doc(hidden)]
pub mod bench {
    pub use crate::seed::catalogue::{Catalogue, MONEYHUB_MOCK};
    pub use crate::store::Store;
}
