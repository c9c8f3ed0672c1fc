//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::LazyLock;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use luapool::VmConfig;

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
    /// Serve HTTP with a Lua app: APP defines `function handle(req)`.
    Serve(Box<ServeArgs>),
}

/// The VM settings, one flag per [`VmConfig`] field that a command line may set, shared
/// by `run` and `serve` (for `serve` they win over `luapool.toml`). A flag left out keeps
/// the setting of the command (and, for `serve`, of the configuration file). Adding a
/// VM setting: its field in `VmConfig`, one flag here, one line in [`VmFlags::apply`].
#[derive(Debug, Args)]
#[command(next_help_heading = "VM settings")]
pub(crate) struct VmFlags {
    /// Run scripts you own as the `lua` interpreter would: full standard library (io,
    /// os, package, debug), with luapool's limits.
    #[arg(long)]
    trusted: bool,
    /// Wall-clock limit of one execution (for serve: of one request's handler), awaits
    /// included [run: none; serve: 30].
    #[arg(long, visible_alias = "request-timeout", value_name = "DURATION", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// CPU-time limit of one execution [default: none].
    #[arg(long = "cpu-limit", value_name = "DURATION", value_parser = parse_seconds)]
    cpu_limit: Option<Duration>,
    /// Lua instructions one execution may run, counted in steps of 1000 (deterministic,
    /// but about 2x slower) [default: none].
    #[arg(long = "instruction-limit", value_name = "N")]
    instruction_limit: Option<u64>,
    /// Most memory scripts may allocate, e.g. `64MiB`, `512KiB`, `1000000` (for serve:
    /// in one worker's VM) [default: none].
    #[arg(long = "memory-limit", value_name = "SIZE", value_parser = luapool::bytes::parse)]
    memory_limit: Option<usize>,
    /// Time an execution runs before it yields to the other ones on its thread; 0 turns
    /// slicing off [run: off; serve: 0.002].
    #[arg(long = "time-slice", value_name = "DURATION", value_parser = parse_seconds_or_zero)]
    time_slice: Option<Duration>,
    /// A directory `require` searches before the script's (APP's) own (repeatable).
    #[arg(long = "module-path", value_name = "DIR")]
    module_paths: Vec<PathBuf>,
}

impl VmFlags {
    /// `vm` with the settings given on the command line.
    pub(crate) fn apply(&self, mut vm: VmConfig) -> VmConfig {
        if self.trusted {
            vm = vm.with_trusted(true);
        }
        if let Some(timeout) = self.timeout {
            vm = vm.with_timeout(timeout);
        }
        if let Some(limit) = self.cpu_limit {
            vm = vm.with_cpu_limit(limit);
        }
        if let Some(limit) = self.instruction_limit {
            vm = vm.with_instruction_limit(limit);
        }
        if let Some(limit) = self.memory_limit {
            vm = vm.with_memory_limit(limit);
        }
        if let Some(slice) = self.time_slice {
            vm = vm.with_time_slice(slice);
        }
        if !self.module_paths.is_empty() {
            vm = vm.with_module_paths(&self.module_paths);
        }
        vm
    }
}

/// Arguments of `luapool run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
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
    /// Give the script the `redis` module, connected to URL (e.g.
    /// `redis://127.0.0.1:6379/0`).
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
    /// Settings of the script's VM (last: the flattened group's help heading applies to
    /// the arguments after it).
    #[command(flatten)]
    pub(crate) vm: VmFlags,
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
/// A positive duration: `500ms`, `2s`, or a number of seconds, as in `luapool.toml`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let d = luapool::duration::parse(text)?;
    if d.is_zero() {
        return Err(format!("'{text}' must be more than zero"));
    }
    Ok(d)
}

/// Arguments of `luapool serve`. Flags win over the configuration file.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The app: a Lua file defining `function handle(req)`.
    #[arg(value_name = "APP")]
    pub(crate) app: PathBuf,
    /// Configuration file (default: `luapool.toml` next to APP, if there is one).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on: HOST:PORT, :PORT or PORT (127.0.0.1), localhost:PORT
    /// [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", value_parser = luapool_http::parse_listen)]
    pub(crate) listen: Option<SocketAddr>,
    /// Worker threads, each with its own VM [default: one per core].
    #[arg(long, value_name = "N")]
    pub(crate) workers: Option<usize>,
    /// Requests a worker runs at once [default: 1024].
    #[arg(long, value_name = "N")]
    pub(crate) concurrency: Option<usize>,
    /// Requests a worker lets wait when all its slots are busy [default: 1024].
    #[arg(long = "max-queued", value_name = "N")]
    pub(crate) max_queued: Option<usize>,
    /// Timers (timer.after, timer.every) a worker holds at once [default: 1024].
    #[arg(long = "max-timers", value_name = "N")]
    pub(crate) max_timers: Option<usize>,
    /// Largest request body accepted, e.g. `1MiB` [default: 1MiB].
    #[arg(long = "max-body-size", value_name = "SIZE", value_parser = luapool::bytes::parse)]
    pub(crate) max_body_size: Option<usize>,
    /// Time a client has to send a request's headers, from the connection's accept or
    /// the first byte of a later request [default: 10].
    #[arg(long = "header-read-timeout", value_name = "DURATION", value_parser = parse_seconds)]
    pub(crate) header_read_timeout: Option<Duration>,
    /// Time a client has to send a request's body, from the end of its headers; then 408
    /// [default: 30].
    #[arg(long = "body-read-timeout", value_name = "DURATION", value_parser = parse_seconds)]
    pub(crate) body_read_timeout: Option<Duration>,
    /// How long a keep-alive connection may stay idle between requests [default: 75].
    #[arg(long = "keep-alive-timeout", value_name = "DURATION", value_parser = parse_seconds)]
    pub(crate) keep_alive_timeout: Option<Duration>,
    /// How long shutdown waits for requests in flight [default: 30].
    #[arg(long = "shutdown-timeout", value_name = "DURATION", value_parser = parse_seconds)]
    pub(crate) shutdown_timeout: Option<Duration>,
    /// A shared dictionary `shared.NAME` holding up to CAPACITY entries (repeatable).
    #[arg(long = "shared-dict", value_name = "NAME=CAPACITY", value_parser = parse_dict)]
    pub(crate) shared_dicts: Vec<(String, usize)>,
    /// Serve the files of DIR (relative to the app's directory) under the URL PREFIX,
    /// before any handler, e.g. `/assets=public` (repeatable) [default: none].
    #[arg(long = "static", value_name = "PREFIX=DIR", value_parser = parse_static)]
    pub(crate) static_dirs: Vec<(String, PathBuf)>,
    /// Redis server for the `redis` module and `backend = "redis"` dictionaries, e.g.
    /// `redis://127.0.0.1:6379/0` (`rediss://` for TLS); replaces `[redis] url`
    /// [default: none].
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
    /// Serve `/metrics` and `/healthz` on this address [default: off].
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<SocketAddr>,
    /// Log every request (target `luapool::access`).
    #[arg(long = "access-log")]
    pub(crate) access_log: bool,
    /// Development mode: error responses carry the Lua error and traceback.
    #[arg(long)]
    pub(crate) dev: bool,
    /// Reload the app when a `.lua` file next to it changes.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Serve HTTPS with this certificate chain (PEM; needs --tls-key). HTTP/2 and
    /// HTTP/1.1 by ALPN; SIGHUP reads it again [default: plain HTTP].
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Compress text-like responses (gzip, br, zstd, as Accept-Encoding prefers)
    /// [default: off].
    #[arg(long)]
    pub(crate) compression: bool,
    /// The smallest body compressed, e.g. `1KiB` [default: 1KiB].
    #[arg(long = "compression-min-size", value_name = "SIZE", value_parser = luapool::bytes::parse)]
    pub(crate) compression_min_size: Option<usize>,
    /// Settings of each worker's VM.
    #[command(flatten)]
    pub(crate) vm: VmFlags,
}

/// Parses `NAME=CAPACITY`.
fn parse_dict(text: &str) -> Result<(String, usize), String> {
    let (name, capacity) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not NAME=CAPACITY"))?;
    let capacity: usize = capacity
        .trim()
        .parse()
        .map_err(|_| format!("'{capacity}' is not a number of entries"))?;
    Ok((name.trim().to_string(), capacity))
}

fn parse_static(text: &str) -> Result<(String, PathBuf), String> {
    let (prefix, dir) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not PREFIX=DIR (e.g. /assets=public)"))?;
    if !prefix.starts_with('/') || dir.is_empty() {
        return Err(format!(
            "'{text}' is not PREFIX=DIR (the prefix starts with /)"
        ));
    }
    Ok((prefix.to_string(), PathBuf::from(dir)))
}

/// Parses a number of seconds that may be 0 (`0` turns the feature off).
fn parse_seconds_or_zero(text: &str) -> Result<Duration, String> {
    luapool::duration::parse(text)
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
    fn parses_listen_addresses() {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(luapool_http::parse_listen("8080"), Ok(local(8080)));
        assert_eq!(luapool_http::parse_listen(":9000"), Ok(local(9000)));
        assert_eq!(
            luapool_http::parse_listen("localhost:9001"),
            Ok(local(9001))
        );
        assert_eq!(
            luapool_http::parse_listen("0.0.0.0:80"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 80)))
        );
        assert_eq!(
            luapool_http::parse_listen("[::1]:81").map(|a| a.port()),
            Ok(81)
        );
        assert!(luapool_http::parse_listen("example.com:80").is_err());
        assert!(luapool_http::parse_listen("http").is_err());
    }

    #[test]
    fn parses_seconds() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_seconds("0").is_err());
        assert_eq!(parse_seconds_or_zero("0s"), Ok(Duration::ZERO));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn version_names_the_engine() {
        assert!(VERSION.contains(luapool::ENGINE));
    }
}
