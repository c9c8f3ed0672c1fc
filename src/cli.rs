//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::LazyLock;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};

/// Version line: the crate version and the Lua engine of this build, e.g. `0.1.0 (Lua 5.4)`.
static VERSION: LazyLock<String> =
    LazyLock::new(|| format!("{} ({})", env!("CARGO_PKG_VERSION"), luapool::ENGINE));

/// Run Lua on sandboxed, isolated VMs.
#[derive(Debug, Parser)]
#[command(name = "luapool", version = VERSION.as_str(), about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a Lua script on one sandboxed VM.
    Run(RunArgs),
    /// Compile Lua files without running them: `ok FILE` on stdout for each file that
    /// compiles, `file:line: message` on stderr for each that does not.
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
    /// Run CODE instead of a file (the chunk is named `(command line)`).
    #[arg(short = 'e', value_name = "CODE")]
    pub(crate) code: Option<String>,
    /// The script to run (`-` reads it from standard input), then its arguments, which
    /// the script gets in its `arg` table and as `...`. Everything after FILE goes to the
    /// script, even words that look like options.
    #[arg(
        value_names = ["FILE", "ARGS"],
        num_args = 0..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) script_and_args: Vec<String>,
}

/// Where the script of `luapool run` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `-e CODE`.
    Code(String),
    /// `-`: standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl RunArgs {
    /// The script's source and its arguments. Exactly one of FILE, `-` or `-e CODE` must
    /// be given; anything else is a usage error (exit code 2, like clap's own errors).
    pub(crate) fn source(&self) -> Result<(Source, &[String]), clap::Error> {
        match (&self.code, self.script_and_args.split_first()) {
            (Some(code), None) => Ok((Source::Code(code.clone()), &[])),
            (None, Some((file, args))) if file == "-" => Ok((Source::Stdin, args)),
            // FILE accepts hyphens so that the script's own arguments can be options, which
            // lets an unknown option of `run` through as a "file": reject it here.
            (None, Some((file, _))) if file.starts_with('-') => Err(run_usage_error(
                ErrorKind::UnknownArgument,
                format!("unexpected argument '{file}' (to run a file whose name starts with '-', write ./{file})"),
            )),
            (None, Some((file, args))) => Ok((Source::File(PathBuf::from(file)), args)),
            (Some(_), Some((file, _))) => Err(run_usage_error(
                ErrorKind::ArgumentConflict,
                format!(
                    "-e CODE cannot be used with a script ('{file}'): give one of FILE, `-` or -e CODE"
                ),
            )),
            (None, None) => Err(run_usage_error(
                ErrorKind::MissingRequiredArgument,
                "no script given: give one of FILE, `-` (standard input) or -e CODE",
            )),
        }
    }
}

/// A usage error of `luapool run`, printed with its usage line.
fn run_usage_error(kind: ErrorKind, message: impl std::fmt::Display) -> clap::Error {
    let mut cmd = Cli::command();
    cmd.build();
    match cmd.find_subcommand_mut("run") {
        Some(run) => run.error(kind, message),
        None => cmd.error(kind, message),
    }
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
