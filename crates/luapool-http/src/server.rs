//! [`Server`]: binds the listener, starts the workers and the admin listener, reloads
//! and shuts down.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{error, info};

use crate::admin::Admin;
use crate::app::{App, Host};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::metrics::{KindLabels, Metrics};
use crate::tls::Certificates;
use crate::worker::{self, Control, Shared, WorkerSummary};

/// A running HTTP server whose handlers are Lua.
///
/// Each worker is an OS thread with a current-thread runtime that accepts connections,
/// serves them with hyper (HTTP/1.1 with keep-alive, HTTP/2 cleartext; or, with
/// [`ServerConfig::tls`], HTTPS with HTTP/2 or HTTP/1.1 by ALPN) and runs their handlers
/// on its own VM, each request as a coroutine with its own globals.
///
/// ```no_run
/// use std::time::Duration;
/// use luapool_http::{Server, ServerConfig};
///
/// let server = Server::start("examples/hello/app.lua", ServerConfig::default())?;
/// println!("listening on http://{}", server.local_addr());
/// // ... later:
/// let summary = server.shutdown(Duration::from_secs(30));
/// assert_eq!(summary.abandoned, 0);
/// # Ok::<(), luapool_http::Error>(())
/// ```
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    app_path: std::path::PathBuf,
    workers: Mutex<Vec<WorkerHandle>>,
    admin: Option<Admin>,
}

struct WorkerHandle {
    control: mpsc::UnboundedSender<Control>,
    thread: std::thread::JoinHandle<WorkerSummary>,
}

/// What [`Server::shutdown`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServerShutdownSummary {
    /// Workers stopped.
    pub workers: usize,
    /// Connections still open at the deadline, closed without finishing.
    pub abandoned: usize,
}

impl Server {
    /// Loads and checks the app, binds `config.listen`, starts the workers (and the
    /// admin listener if configured) and returns once all of them are serving.
    ///
    /// The app's top level runs once here, on a throwaway VM, so that syntax errors, a
    /// failing `require` or a missing `handle` stop the start.
    ///
    /// # Errors
    /// [`Error::App`] or [`Error::NoHandler`] for a bad app, [`Error::Config`] for a bad
    /// configuration, [`Error::Tls`] for a certificate or key that cannot be used,
    /// [`Error::Bind`] if the address cannot be bound,
    /// [`Error::Worker`] if a worker cannot start.
    pub fn start(app: impl AsRef<Path>, config: ServerConfig) -> Result<Server> {
        config.validate()?;
        let tls = config.tls.as_ref().map(Certificates::load).transpose()?;
        let app_path = app.as_ref().to_path_buf();
        let (dicts, redis) = shared_dicts(&config)?;
        let base = app_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let statics = crate::static_files::StaticFiles::new(&config.static_dirs, base)?;
        let host = Host {
            config: Arc::new(config),
            dicts,
            redis,
            statics,
        };
        let app = Arc::new(App::read(&app_path)?);
        host.check(&app)?;
        let config = Arc::clone(&host.config);
        let listener = bind(config.listen)?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            host,
            metrics: Metrics::new(),
            tls,
        });
        let mut workers = Vec::with_capacity(config.workers);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for index in 0..config.workers {
            let listener = listener
                .try_clone()
                .map_err(|source| Error::Bind { addr, source })?;
            let (control, control_rx) = mpsc::unbounded_channel();
            let (shared, app, ready) = (Arc::clone(&shared), Arc::clone(&app), ready_tx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("luapool-http-{index}"))
                .spawn(move || worker::run(index, listener, shared, app, control_rx, ready))
                .map_err(|e| Error::Worker {
                    index,
                    message: e.to_string(),
                })?;
            workers.push(WorkerHandle { control, thread });
        }
        drop(ready_tx);
        let mut server = Server {
            addr,
            shared,
            app_path,
            workers: Mutex::new(workers),
            admin: None,
        };
        for _ in 0..config.workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    server.stop_now();
                    return Err(e);
                }
                Err(_) => {
                    server.stop_now();
                    return Err(Error::Worker {
                        index: 0,
                        message: "a worker stopped while starting".to_string(),
                    });
                }
            }
        }
        server.shared.metrics.workers.set(config.workers as i64);
        if let Some(admin_addr) = config.admin {
            match Admin::start(admin_addr, Arc::clone(&server.shared)) {
                Ok(admin) => server.admin = Some(admin),
                Err(e) => {
                    server.stop_now();
                    return Err(e);
                }
            }
        }
        info!(
            addr = %server.addr,
            workers = config.workers,
            engine = luapool::ENGINE,
            "serving {}",
            server.app_path.display()
        );
        Ok(server)
    }

    /// The address the server listens on (with the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the admin listener, if it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(Admin::local_addr)
    }

    /// The scheme of the server's URLs: `"https"` with TLS, else `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.host.config
    }

    /// Re-reads the app file and switches every worker to it without dropping a
    /// request: requests in flight finish on the old code, new ones get the new code
    /// (and fresh module state). If the new app fails its check, the old one stays.
    ///
    /// With TLS, the certificate and key files are read again too: new connections get
    /// the new certificate, open ones keep theirs. If they cannot be used, the old
    /// certificate stays (and the app is still reloaded).
    ///
    /// # Errors
    /// As [`Server::start`]'s app errors (the server keeps serving the old app), or
    /// [`Error::Tls`] (the server keeps the old certificate).
    pub fn reload(&self) -> Result<()> {
        let tls = self.reload_tls();
        self.reload_app()?;
        tls
    }

    /// Reads the certificate and key again, if the server speaks TLS.
    fn reload_tls(&self) -> Result<()> {
        let Some(certs) = &self.shared.tls else {
            return Ok(());
        };
        match certs.reload() {
            Ok(()) => {
                info!(
                    "reloaded the TLS certificate {}",
                    certs.cert_path().display()
                );
                Ok(())
            }
            Err(e) => {
                Metrics::count(&self.shared.metrics.reloads, "tls_failed");
                error!("TLS reload failed, keeping the old certificate: {e}");
                Err(e)
            }
        }
    }

    /// Re-reads and checks the app and switches the workers to it.
    fn reload_app(&self) -> Result<()> {
        let outcome = App::read(&self.app_path).and_then(|app| {
            self.shared.host.check(&app)?;
            Ok(app)
        });
        let app = match outcome {
            Ok(app) => Arc::new(app),
            Err(e) => {
                Metrics::count(&self.shared.metrics.reloads, "failed");
                error!("reload failed, keeping the old app: {e}");
                return Err(e);
            }
        };
        for worker in self.lock_workers().iter() {
            let _ = worker.control.send(Control::Reload(Arc::clone(&app)));
        }
        Metrics::count(&self.shared.metrics.reloads, "ok");
        info!("reloaded {}", self.app_path.display());
        Ok(())
    }

    /// Successful reloads so far (failed ones keep the old app and do not count).
    pub fn reloads(&self) -> u64 {
        self.shared
            .metrics
            .reloads
            .get_or_create(&KindLabels { kind: "ok" })
            .get()
    }

    /// The server's metrics in Prometheus text format (what the admin listener's
    /// `/metrics` serves).
    pub fn metrics(&self) -> String {
        self.shared.metrics.render()
    }

    /// Stops accepting connections, lets requests in flight finish until `deadline`,
    /// then stops the workers and the admin listener. Blocks until they have stopped.
    pub fn shutdown(mut self, deadline: Duration) -> ServerShutdownSummary {
        self.stop(Instant::now() + deadline)
    }

    fn stop_now(&mut self) {
        self.stop(Instant::now());
    }

    fn stop(&mut self, deadline: Instant) -> ServerShutdownSummary {
        let workers = std::mem::take(&mut *self.lock_workers());
        for worker in &workers {
            let _ = worker.control.send(Control::Shutdown(deadline));
        }
        let mut summary = ServerShutdownSummary::default();
        for worker in workers {
            summary.workers += 1;
            match worker.thread.join() {
                Ok(s) => summary.abandoned += s.abandoned,
                Err(_) => error!("a worker thread panicked while stopping"),
            }
        }
        if let Some(admin) = self.admin.take() {
            admin.stop();
        }
        self.shared.metrics.workers.set(0);
        info!(abandoned = summary.abandoned, "server stopped");
        summary
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, Vec<WorkerHandle>> {
        // A poisoned lock only means a panic elsewhere; the list itself is intact.
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.lock_workers().is_empty() {
            self.stop_now();
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("app", &self.app_path)
            .finish_non_exhaustive()
    }
}

/// Binds the listening socket every worker accepts from.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_error = |source| Error::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(bind_error)?;
    socket.set_reuse_address(true).map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    socket.listen(4096).map_err(bind_error)?;
    Ok(socket.into())
}

/// The shared dictionaries of `config` (`[shared_dicts]` and `[shared.NAME]`), and the
/// Redis pool if `[redis]` is configured. Redis being down is no error: the server
/// starts degraded (commands return `nil, message` until Redis is back), with a warning.
fn shared_dicts(
    config: &ServerConfig,
) -> Result<(luapool::SharedDicts, Option<luapool_redis::Redis>)> {
    use crate::config::DictBackend;
    let mut memory: Vec<luapool::SharedDictConfig> = config
        .shared_dicts
        .iter()
        .map(|(name, capacity)| luapool::SharedDictConfig::new(name.clone(), *capacity))
        .collect();
    let mut remote = Vec::new();
    for (name, spec) in &config.shared {
        match spec.backend {
            DictBackend::Memory => {
                let mut c =
                    luapool::SharedDictConfig::new(name.clone(), spec.capacity.unwrap_or(0));
                c.max_bytes = spec.max_bytes;
                c.max_value_bytes = spec.max_value_bytes;
                memory.push(c);
            }
            DictBackend::Redis => {
                let mut c = luapool_redis::RedisDictConfig::new(name.clone());
                c.prefix = spec.prefix.clone();
                c.max_value_bytes = spec.max_value_bytes;
                remote.push(c);
            }
        }
    }
    let dicts = luapool::SharedDicts::from_config(&memory)?;
    let Some(redis_config) = &config.redis else {
        return Ok((dicts, None));
    };
    let redis_error = |e: luapool_redis::Error| Error::Config {
        message: e.to_string(),
    };
    let redis = luapool_redis::Redis::new(redis_config.clone()).map_err(redis_error)?;
    match redis.ping_blocking() {
        Ok(()) => tracing::info!(url = %redis_config.redacted_url(), "redis is reachable"),
        Err(e) => tracing::warn!(
            url = %redis_config.redacted_url(),
            "{e}; starting anyway: redis commands return nil and a message until it answers"
        ),
    }
    let dicts = redis.add_dicts(dicts, &remote).map_err(redis_error)?;
    Ok((dicts, Some(redis)))
}
