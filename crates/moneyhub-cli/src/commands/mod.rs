//! One module per command.

mod sandbox;

use crate::cli::{Cli, Command, SandboxCommand};
use crate::exit;

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Sandbox { command: SandboxCommand::Serve(args) } => sandbox::serve(args).await,
    };
    match result {
        Ok(()) => exit::OK,
        Err(f) => f.report(),
    }
}
