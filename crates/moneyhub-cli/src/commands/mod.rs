//! One module per command; `run` dispatches a parsed command line.

mod auth_requests;
mod catalog;
mod completions;
mod connect;
mod connections;
#[cfg(feature = "sandbox")]
mod demo;
mod doctor;
mod healthcheck;
#[cfg(feature = "mirror")]
mod mirror;
mod renew;
#[cfg(feature = "sandbox")]
mod sandbox;
mod transactions;
mod users;

use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::exit::{self, CmdResult};

/// The failure of a command this build does not have: which feature it needs, and how to get
/// it.
#[cfg(not(all(feature = "sandbox", feature = "mirror")))]
pub fn missing_feature(feature: &str, what: &str) -> exit::Failure {
    exit::Failure::usage(format!(
        "{what} is not in this build of moneyhub: it needs the `{feature}` feature \
         (cargo install moneyhub-cli --features {feature})"
    ))
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(()) => exit::OK,
        Err(f) => f.report(),
    }
}

/// Whether `command` prints CSV (`--output csv`).
fn prints_csv(command: &Command) -> bool {
    #[cfg(feature = "mirror")]
    {
        use crate::cli::MirrorCommand;
        matches!(command, Command::Mirror { command: MirrorCommand::Actions(_) | MirrorCommand::History(_) })
    }
    #[cfg(not(feature = "mirror"))]
    {
        let _ = command;
        false
    }
}

async fn dispatch(cli: Cli) -> CmdResult {
    let mut global = cli.global;
    if global.output_arg == crate::cli::OutputArg::Csv && !prints_csv(&cli.command) {
        return Err(exit::Failure::usage(
            "--output csv is for `mirror actions` and `mirror history`; this command prints table or json",
        ));
    }
    global.output = global.output_arg.format();
    match cli.command {
        // Commands that need no client (or start their own sandbox).
        #[cfg(feature = "sandbox")]
        Command::Sandbox { command, target } => sandbox::run(&global, &target, command).await,
        #[cfg(not(feature = "sandbox"))]
        Command::Sandbox { .. } => Err(missing_feature("sandbox", "`moneyhub sandbox`")),
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => demo::run(&global, args).await,
        #[cfg(not(feature = "sandbox"))]
        Command::Demo(_) => {
            Err(missing_feature("sandbox", "`moneyhub demo` (it runs on an embedded sandbox)"))
        }
        Command::Doctor(args) if args.from_file.is_some() => doctor::offline(&global, args).await,
        #[cfg(feature = "mirror")]
        Command::Doctor(args) if args.mirror.is_some() => mirror::doctor(&global, args).await,
        #[cfg(not(feature = "mirror"))]
        Command::Doctor(args) if args.mirror.is_some() => {
            Err(missing_feature("mirror", "`moneyhub doctor --mirror`"))
        }
        #[cfg(feature = "mirror")]
        Command::Mirror { command } => mirror::run(&global, command).await,
        #[cfg(not(feature = "mirror"))]
        Command::Mirror { .. } => Err(missing_feature("mirror", "`moneyhub mirror`")),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::Healthcheck(args) => healthcheck::run(args).await,
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
                Command::Sandbox { .. }
                | Command::Demo(_)
                | Command::Mirror { .. }
                | Command::Completions(_)
                | Command::Healthcheck(_)
                | Command::Man(_) => Ok(()),
            }
        }
    }
}
