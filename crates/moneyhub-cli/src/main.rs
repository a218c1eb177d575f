//! `moneyhub`: Moneyhub's Open Finance API, the connection lifecycle and a local sandbox,
//! from a terminal.

#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod config;
mod context;
mod exit;
mod flow;
mod guard_store;
mod output;
mod resolve;
mod signals;

use std::io::Write;

use clap::Parser;

/// A last resort: a panic prints one line and exits with status 1. The backtrace follows only
/// when asked for, as with Rust's own hook: `RUST_BACKTRACE=1` or `full` (`RUST_LIB_BACKTRACE`
/// takes precedence, as [`std::backtrace::Backtrace::capture`] reads it).
///
/// `MONEYHUB_DEBUG_PANIC=1` panics on purpose right after the hook is installed, so that the
/// hook itself can be tested.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "moneyhub: internal error: {what}{place} (please report this)");
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            let _ = writeln!(err, "stack backtrace:\n{backtrace}");
        } else {
            let _ = writeln!(err, "note: run with `RUST_BACKTRACE=1` to display a backtrace");
        }
        drop(err);
        std::process::exit(exit::INTERNAL);
    }));
}

/// `MONEYHUB_LOG=debug` (any tracing filter) logs the client's requests to stderr.
fn init_logging() {
    if let Ok(filter) = std::env::var("MONEYHUB_LOG") {
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_new(filter) {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
        }
    }
}

fn main() {
    install_panic_hook();
    if std::env::var_os("MONEYHUB_DEBUG_PANIC").is_some_and(|v| v == "1") {
        panic!("MONEYHUB_DEBUG_PANIC=1 asked for a panic");
    }
    init_logging();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(commands::run(cli)),
        Err(e) => exit::Failure::internal(format!("could not start the async runtime: {e}")).report(),
    };
    std::process::exit(code);
}
