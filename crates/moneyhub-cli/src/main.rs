//! `moneyhub`: Moneyhub's Open Finance API, the connection lifecycle and a local sandbox,
//! from a terminal.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod exit;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(commands::run(cli)),
        Err(e) => exit::Failure::internal(format!("could not start the async runtime: {e}")).report(),
    };
    std::process::exit(code);
}
