//! One module per command; `run` dispatches a parsed command line.

mod auth_requests;
mod catalog;
mod connect;
mod connections;
mod demo;
mod doctor;
pub mod mirror;
mod renew;
mod sandbox;
mod transactions;
mod users;

use crate::cli::{Cli, Command, SandboxCommand};
use crate::context::Ctx;
use crate::exit::{self, CmdResult};

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(()) => exit::OK,
        Err(f) => f.report(),
    }
}

async fn dispatch(cli: Cli) -> CmdResult {
    let global = cli.global;
    match cli.command {
        // Commands that need no client (or start their own sandbox).
        Command::Sandbox { command: SandboxCommand::Serve(args) } => sandbox::serve(args).await,
        Command::Demo(args) => demo::run(&global, args).await,
        Command::Doctor(args) if args.from_file.is_some() => doctor::offline(&global, args).await,
        Command::Mirror { command } => mirror::run(&global, command).await,
        command => {
            let ctx = Ctx::new(&global).await?;
            match command {
                Command::Catalog(args) => catalog::run(&ctx, args).await,
                Command::Users { command } => users::run(&ctx, command).await,
                Command::Connect(args) => connect::run(&ctx, args).await,
                Command::AuthRequests { command } => auth_requests::run(&ctx, command).await,
                Command::Reauth(args) => renew::reauth(&ctx, args).await,
                Command::Refresh(args) => renew::refresh(&ctx, args).await,
                Command::Reconsent(args) => renew::reconsent(&ctx, args).await,
                Command::Connections { command } => connections::run(&ctx, command).await,
                Command::Doctor(args) => doctor::run(&ctx, args).await,
                Command::Transactions { command } => transactions::run(&ctx, command).await,
                Command::Sandbox { .. } | Command::Demo(_) | Command::Mirror { .. } => Ok(()),
            }
        }
    }
}
