//! `moneyhub completions <shell>` and `moneyhub man`: generated from the command-line grammar
//! itself (clap_complete, clap_mangen), so they never drift from it.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::{CmdResult, Failure};
use crate::output;

/// Prints the completion script for a shell.
pub fn completions(args: CompletionsArgs) -> CmdResult {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "moneyhub", &mut out);
    output::emit(&String::from_utf8_lossy(&out));
    Ok(())
}

/// Prints the main man page, or writes every page into `--out-dir`.
pub fn man(args: ManArgs) -> CmdResult {
    let cmd = Cli::command();
    if let Some(dir) = args.out_dir {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::usage(format!("--out-dir {}: {e}", dir.display())))?;
        clap_mangen::generate_to(cmd, &dir).map_err(|e| {
            Failure::internal(format!("could not write the man pages into {}: {e}", dir.display()))
        })?;
        output::line(&format!("Wrote the man pages into {}.", dir.display()));
        return Ok(());
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| Failure::internal(format!("could not render the man page: {e}")))?;
    output::emit(&String::from_utf8_lossy(&out));
    Ok(())
}
