//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Stop the script after this many seconds of wall-clock time (awaits included).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) timeout: Option<Duration>,
    /// Stop the script after this many seconds of CPU time.
    #[arg(long = "cpu-limit", value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) cpu_limit: Option<Duration>,
    /// Most memory the script may allocate, e.g. `64MiB`, `512KiB`, `1000000`.
    #[arg(long = "memory-limit", value_name = "SIZE", value_parser = luapool::bytes::parse)]
    pub(crate) memory_limit: Option<usize>,
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

/// Parses a positive number of seconds (`0.5`, `2`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("'{text}' must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
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
    fn parses_seconds() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn version_names_the_engine() {
        assert!(VERSION.contains(luapool::ENGINE));
    }
}
