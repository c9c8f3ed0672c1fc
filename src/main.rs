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

/// The binary's allocator, which Lua's allocations go through too (mlua allocates for
/// the VM with Rust's global allocator, so that memory limits can count it). mimalloc
/// keeps allocation-heavy scripts close to the engines' own allocators: on LuaJIT,
/// binary-trees ran 3.7x slower than the bare interpreter with glibc's malloc (see
/// docs/performance.md, "Engines"). The library itself leaves the choice to the
/// application.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
