//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Version line: the crate version and the Lua engine of this build.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", "Lua 5.4", ")");

/// Run Lua on sandboxed, isolated VMs.
#[derive(Debug, Parser)]
#[command(name = "luapool", version = VERSION, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a Lua script on one sandboxed VM.
    Run(RunArgs),
    /// Compile Lua files without running them and report every syntax error.
    Check(CheckArgs),
}

/// Arguments of `luapool run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Open the full standard library (io, os, package, debug) for a script you trust.
    #[arg(long)]
    pub(crate) trusted: bool,
    /// Run CODE instead of a file.
    #[arg(short = 'e', value_name = "CODE", conflicts_with = "script")]
    pub(crate) code: Option<String>,
    /// The script to run; `-` reads it from standard input.
    #[arg(value_name = "FILE", required_unless_present = "code")]
    pub(crate) script: Option<PathBuf>,
    /// Arguments for the script, in its `arg` table and as `...`.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) args: Vec<String>,
}

/// Arguments of `luapool check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Lua files to compile.
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn version_names_the_engine() {
        assert!(VERSION.contains(luapool::ENGINE));
    }
}
