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

#![forbid(unsafe_code)]

pub mod auth;
pub mod clock;
pub mod config;
mod control;
mod data;
pub mod error;
mod faults;
pub mod http;
mod identity;
pub mod keys;
pub mod kit;
pub mod lifecycle;
pub mod request_log;
mod rest;
pub mod rng;
pub mod scenario;
pub mod seed;
mod server;
mod state;
pub mod store;
mod ui;
mod webhooks;

pub use config::{
    ClientRegistration, ClockMode, ConsentMode, SandboxConfig, WebhookFormat, WebhookTarget,
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};
pub use server::{serve, spawn, Sandbox, SandboxError};

/// Whether a webhook URL's host is `localhost` or a loopback IP address: the targets a
/// sandbox accepts without [`SandboxConfig::allow_remote_webhooks`].
pub fn webhooks_on_loopback(url: &str) -> bool {
    webhooks::is_loopback_url(url)
}
