//! `luapool serve`: the HTTP server, until SIGTERM or SIGINT; SIGHUP reloads the app.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use luapool_http::{Server, ServerConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info};

use crate::cli::ServeArgs;

/// Starts the server and serves until told to stop. A startup error (bad app, bad
/// configuration, address in use) prints one line and exits with 1.
pub(crate) fn serve(args: ServeArgs) -> ExitCode {
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let shutdown_timeout = config.shutdown_timeout;
    let server = match Server::start(&args.app, config) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    match serve_until_stopped(&server, &args) {
        Ok(signals) => signals.exit_on_the_next(),
        Err(e) => error!("{e}"),
    }
    let summary = server.shutdown(shutdown_timeout);
    if summary.abandoned > 0 {
        info!(
            abandoned = summary.abandoned,
            "some connections were still open at the deadline"
        );
    }
    ExitCode::SUCCESS
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("luapool: {e}");
    ExitCode::FAILURE
}

/// The configuration: the file (given, or `luapool.toml` next to the app), then flags.
fn config(args: &ServeArgs) -> Result<ServerConfig, luapool_http::Error> {
    let default_file = args
        .app
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("luapool.toml");
    let mut c = match &args.config {
        Some(path) => ServerConfig::from_file(path)?,
        None if default_file.is_file() => ServerConfig::from_file(&default_file)?,
        None => ServerConfig::default(),
    };
    // Each flag given wins over the file.
    macro_rules! flag {
        ($field:ident, $setter:ident) => {
            if let Some(v) = args.$field {
                c = c.$setter(v);
            }
        };
    }
    flag!(listen, with_listen);
    flag!(workers, with_workers);
    flag!(concurrency, with_concurrency);
    flag!(max_queued, with_max_queued);
    flag!(max_timers, with_max_timers);
    flag!(max_body_size, with_max_body_size);
    flag!(header_read_timeout, with_header_read_timeout);
    flag!(body_read_timeout, with_body_read_timeout);
    flag!(keep_alive_timeout, with_keep_alive_timeout);
    flag!(shutdown_timeout, with_shutdown_timeout);
    flag!(admin, with_admin);
    for (name, capacity) in &args.shared_dicts {
        c = c.with_shared_dict(name, *capacity);
    }
    for (prefix, dir) in &args.static_dirs {
        c = c.with_static(prefix, dir);
    }
    if let Some(url) = &args.redis {
        let mut redis = c.redis.clone().unwrap_or_default();
        redis.url = url.clone();
        c = c.with_redis(redis);
    }
    if args.access_log {
        c = c.with_access_log(true);
    }
    if args.dev {
        c = c.with_dev(true);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        c = c.with_tls(luapool_http::TlsConfig::new(cert, key));
    }
    if args.compression {
        c = c.with_compression(true);
    }
    flag!(compression_min_size, with_compression_min_size);
    let vm = args.vm.apply(c.vm.clone());
    let c = c.with_vm(vm);
    c.validate()?;
    Ok(c)
}

/// The stop signals' handlers, kept installed after the first stop signal so that a
/// second one is not lost (the first already replaced the default action).
struct StopSignals {
    runtime: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// While the server drains, a second SIGTERM or SIGINT (a second Ctrl-C) exits at
    /// once, with the status a shell gives an interrupted program.
    fn exit_on_the_next(self) {
        let StopSignals {
            runtime,
            mut term,
            mut int,
        } = self;
        std::thread::spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            eprintln!("luapool: second stop signal: exiting without waiting for requests");
            std::process::exit(130);
        });
    }
}

/// Installs the signal handlers, announces the address, then waits for SIGTERM or
/// SIGINT, reloading on SIGHUP (and on file changes with `--watch`).
fn serve_until_stopped(server: &Server, args: &ServeArgs) -> std::io::Result<StopSignals> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (term, int) = runtime.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let watched = args
            .watch
            .then(|| watch_dirs(&args.app, &server.config().vm.module_paths));
        let mut stamp = watched.as_ref().map(|dirs| fingerprint(dirs));
        // Only now, with the handlers installed and the files fingerprinted, tell the
        // world (tests and scripts read the address from here; useful with port 0).
        println!("listening on {}://{}", server.scheme(), server.local_addr());
        if let Some(admin) = server.admin_addr() {
            println!("admin on http://{admin}");
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: shutting down"); break }
                _ = int.recv() => { info!("SIGINT: shutting down"); break }
                _ = hup.recv() => { info!("SIGHUP: reloading"); let _ = server.reload(); }
                _ = tick.tick(), if watched.is_some() => {
                    let dirs = watched.as_deref().unwrap_or_default();
                    let now = fingerprint(dirs);
                    if stamp.as_ref() != Some(&now) {
                        stamp = Some(now);
                        info!("a Lua file changed: reloading");
                        let _ = server.reload();
                    }
                }
            }
        }
        Ok::<_, std::io::Error>((term, int))
    })?;
    Ok(StopSignals { runtime, term, int })
}

/// The directories `--watch` looks at: the app's and the module paths.
fn watch_dirs(app: &Path, module_paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = vec![app
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf()];
    dirs.extend(module_paths.iter().cloned());
    dirs
}

/// Path, modification time and length of every `.lua` file in `dirs` (one level deep):
/// any change, added or removed file changes it.
fn fingerprint(dirs: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut files: Vec<_> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "lua"))
        .map(|e| {
            let meta = e.metadata().ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            (e.path(), modified, meta.map_or(0, |m| m.len()))
        })
        .collect();
    files.sort();
    files
}
