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
