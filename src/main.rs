//! `luapool`: the command-line interface.
//!
//! A thin layer over the `luapool` library: parse arguments, set up tracing, dispatch to
//! one module per subcommand.

mod check;
mod cli;
mod run;
mod serve;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Check(args) => check::check(args),
        cli::Command::Serve(args) => serve::serve(*args),
    }
}
