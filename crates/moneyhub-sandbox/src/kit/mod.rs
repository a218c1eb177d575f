//! The sandbox test kit: [`Control`], a typed client for the control API (`/__sandbox`), for
//! tests, demos and tools that drive a sandbox (in this process or another).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use moneyhub_sandbox::kit::{Advance, Control};
//!
//! let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
//! let control = Control::of(&sandbox);
//! let users = control.create_users(1, &["1ffe704d39629a929c8e293880fb449a"]).await?;
//! control.advance(Advance::days(3)).await?;
//! println!("user {} at {}", users[0].user_id, control.clock().await?.now);
//! # Ok(()) }
//! ```

mod control;
/// Helpers the workspace's integration tests share (feature `test-kit`; test-only).
#[cfg(feature = "test-kit")]
pub mod testing;
pub(crate) mod types;

pub use control::{Control, ControlError};
pub use types::*;

/// The sandbox's time format, as Moneyhub writes instants: `2019-09-27T14:29:43.687Z`
/// (for tests that compare a field the sandbox wrote with a time they computed).
pub use crate::clock::iso;
/// SHA-256, for tests that rebuild a PKCE challenge or an `at_hash`/`c_hash` by hand.
pub use crate::keys::sha256;
