//! `moneyhub sandbox ...`: `serve` runs a sandbox; the other commands drive a running one
//! through its control API (`moneyhub_sandbox::kit::Control`).

mod control;
mod serve;

use crate::cli::{GlobalArgs, SandboxCommand, SandboxTarget};
use crate::exit::CmdResult;

/// Runs a `moneyhub sandbox` command.
pub async fn run(global: &GlobalArgs, target: &SandboxTarget, command: SandboxCommand) -> CmdResult {
    match command {
        SandboxCommand::Serve(args) => serve::serve(args).await,
        other => control::run(global, target, other).await,
    }
}
