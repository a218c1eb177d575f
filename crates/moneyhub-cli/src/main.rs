//! `moneyhub`: Moneyhub's Open Finance API, the connection lifecycle and a local sandbox,
//! from a terminal.

#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod advice;
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

/// Logging to stderr: the filter is MONEYHUB_LOG, else RUST_LOG (any tracing filter, such as
/// `debug`); without either, the servers (`sandbox serve`, `mirror run`) log at info (their
/// start, addresses and stop) and other commands not at all. `--log-format json` writes one
/// JSON object per line.
fn init_logging(cli: &cli::Cli) {
    use crate::cli::Command;
    #[cfg(feature = "mirror")]
    let mirror_run = matches!(cli.command, Command::Mirror { command: crate::cli::MirrorCommand::Run(_) });
    #[cfg(not(feature = "mirror"))]
    let mirror_run = false;
    let server = mirror_run || matches!(cli.command, Command::Sandbox { .. });
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let Some(filter) = from_env("MONEYHUB_LOG")
        .or_else(|| from_env("RUST_LOG"))
        .or_else(|| server.then(|| "info".to_owned()))
    else {
        return;
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "moneyhub: ignoring the log filter {filter:?}: {e}");
            return;
        }
    };
    // Colours only for people: stderr is a terminal, `NO_COLOR` is unset (or empty), `TERM` is
    // not `dumb`, and the format is text (never in JSON lines, a file or a pipe).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match cli.global.log_format {
        cli::LogFormat::Text => {
            builder.with_ansi(ansi).with_writer(move || output::LogWriter { colours: ansi }).try_init()
        }
        cli::LogFormat::Json => {
            builder.json().with_ansi(false).with_writer(|| output::LogWriter { colours: false }).try_init()
        }
    };
}

fn main() {
    install_panic_hook();
    if std::env::var_os("MONEYHUB_DEBUG_PANIC").is_some_and(|v| v == "1") {
        panic!("MONEYHUB_DEBUG_PANIC=1 asked for a panic");
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(&cli);
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(commands::run(cli)),
        Err(e) => exit::Failure::internal(format!("could not start the async runtime: {e}")).report(),
    };
    std::process::exit(code);
}
