//! [`Redis`]: the process's connection pool.
//!
//! Connections are opened lazily; at most `pool_size` are in use at once, each command,
//! pipeline or subscription having one to itself while it runs (so a blocking command
//! never holds up another script's). A connection is opened on the caller's runtime and
//! kept idle for that runtime only, as OpenResty keeps a cosocket pool per worker: its
//! reader task then runs on the thread that waits for its replies, with no hop to another
//! thread per command (a worker busy running Lua delays only its own connections, whose
//! replies it is not waiting for anyway). Subscriptions, and callers outside any runtime,
//! use the pool's own IO thread (`luapool-redis`). A connection that failed or timed out
//! is closed, and so are the caller's idle ones then (the server probably went away for
//! all of them): the next command opens a new one, which is how the pool recovers from a
//! Redis restart.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::AsyncConnectionConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, RedisConfig};

/// A connection pool to one Redis server, shared by every VM (and thread) of the
/// process: build it once from a [`RedisConfig`] and register it on each VM with
/// [`register`](crate::register), or make shared dictionaries with
/// [`Redis::dict`](crate::Redis::dict).
///
/// Cheap to clone (an `Arc` inside), `Send` and `Sync`. Building it opens no connection:
/// a server that is down at start makes the first commands fail (`nil, message` in
/// scripts), not the start; [`Redis::ping`] checks it.
#[derive(Clone)]
pub struct Redis {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: RedisConfig,
    client: redis::Client,
    io: IoRuntime,
    /// Connections idle in the threads' lists (see [`IDLE`]).
    idle_count: AtomicUsize,
    /// Alive while the pool is: the threads' idle lists drop the lists of dead pools.
    alive: Arc<()>,
    permits: Arc<Semaphore>,
}

thread_local! {
    /// The idle connections of this thread, per pool, for the runtime they were opened
    /// on (a thread runs one runtime at a time: the lists of an earlier one are dropped).
    static IDLE: RefCell<Vec<IdleList>> = const { RefCell::new(Vec::new()) };
}

/// The idle connections of one pool on one runtime.
struct IdleList {
    pool: Weak<()>,
    runtime: tokio::runtime::Id,
    conns: Vec<MultiplexedConnection>,
}

/// The runtime the connections live on; shut down without waiting when the pool goes
/// (a runtime must not be dropped the blocking way from inside another runtime, where
/// the last clone of a pool may well be dropped).
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl IoRuntime {
    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

/// How the pool is doing, for health checks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The most connections in use at once (`pool_size`).
    pub size: usize,
    /// Connections in use by a command right now.
    pub in_use: usize,
    /// Connections open and idle (kept for the runtime that opened them).
    pub idle: usize,
}

/// Why a command got no reply: what the script sees as the message of `nil, message`.
#[derive(Debug, Clone)]
pub(crate) struct Failure(pub(crate) String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Redis {
    /// A pool for `config` (checked with [`RedisConfig::validate`]); opens no
    /// connection yet.
    ///
    /// ```
    /// let redis = luapool_redis::Redis::new(luapool_redis::RedisConfig::default())?;
    /// assert_eq!(redis.status().size, 16);
    /// # Ok::<(), luapool_redis::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for a bad configuration, [`Error::Runtime`] if the IO thread
    /// cannot start.
    pub fn new(config: RedisConfig) -> Result<Redis, Error> {
        config.validate()?;
        let client = redis::Client::open(config.url.as_str()).map_err(|e| Error::Config {
            message: format!("[redis] url '{}': {e}", config.redacted_url()),
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("luapool-redis")
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime {
                message: e.to_string(),
            })?;
        let permits = Arc::new(Semaphore::new(config.pool_size));
        Ok(Redis {
            inner: Arc::new(Inner {
                config,
                client,
                io: IoRuntime(Some(runtime)),
                idle_count: AtomicUsize::new(0),
                alive: Arc::new(()),
                permits,
            }),
        })
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// How many connections are open, idle and in use.
    pub fn status(&self) -> PoolStatus {
        let size = self.inner.config.pool_size;
        let in_use = size - self.inner.permits.available_permits();
        PoolStatus {
            size,
            in_use,
            idle: self.inner.idle_count.load(Ordering::Relaxed),
        }
    }

    /// Sends `PING` and waits for the answer, within the configured timeouts: a health
    /// check, e.g. at start to log whether the server is reachable. Needs a tokio
    /// runtime with time enabled.
    ///
    /// # Errors
    /// [`Error::Unavailable`] with the reason.
    pub async fn ping(&self) -> Result<(), Error> {
        let cmd = redis::cmd("PING");
        match self.inner.query(&cmd).await {
            Ok(redis::Value::ServerError(e)) => Err(Error::Unavailable {
                message: crate::reply::server_error_text(&e),
            }),
            Ok(_) => Ok(()),
            Err(Failure(message)) => Err(Error::Unavailable { message }),
        }
    }

    /// [`Redis::ping`] from synchronous code (on a runtime of its own for the call).
    ///
    /// # Errors
    /// As [`Redis::ping`].
    pub fn ping_blocking(&self) -> Result<(), Error> {
        let redis = self.clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| Error::Runtime {
                            message: e.to_string(),
                        })?;
                    runtime.block_on(redis.ping())
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::Runtime {
                        message: "the ping thread panicked".to_string(),
                    })
                })
        })
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("config", &self.inner.config)
            .field("status", &self.status())
            .finish()
    }
}

/// A connection lent to one command; back to the idle list when dropped after the
/// command completed, closed otherwise (a command cut short by a timeout, or a script
/// whose request ended, may still be running on the server).
pub(crate) struct Lease {
    inner: Arc<Inner>,
    conn: Option<MultiplexedConnection>,
    /// The runtime the connection lives on; `None`: the IO runtime (not kept idle).
    runtime: Option<tokio::runtime::Id>,
    healthy: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub(crate) fn conn(&mut self) -> Result<&mut MultiplexedConnection, Failure> {
        self.conn
            .as_mut()
            .ok_or_else(|| Failure("the connection is gone".to_string()))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(conn), Some(runtime), true) = (self.conn.take(), self.runtime, self.healthy) {
            self.inner.put_idle(runtime, conn);
        }
    }
}

impl Inner {
    /// Runs `f` on this thread's idle list for this pool and `runtime`, after dropping
    /// the lists of dead pools and of this pool's other runtimes.
    fn with_idle<T>(
        &self,
        runtime: tokio::runtime::Id,
        f: impl FnOnce(&mut Vec<MultiplexedConnection>) -> T,
    ) -> T {
        IDLE.with(|lists| {
            let mut lists = lists.borrow_mut();
            let me = Arc::downgrade(&self.alive);
            lists.retain(|l| {
                let keep = l.pool.strong_count() > 0
                    && (!Weak::ptr_eq(&l.pool, &me) || l.runtime == runtime);
                if !keep && Weak::ptr_eq(&l.pool, &me) {
                    self.idle_count.fetch_sub(l.conns.len(), Ordering::Relaxed);
                }
                keep
            });
            let index = match lists
                .iter()
                .position(|l| Weak::ptr_eq(&l.pool, &me) && l.runtime == runtime)
            {
                Some(i) => i,
                None => {
                    lists.push(IdleList {
                        pool: me,
                        runtime,
                        conns: Vec::new(),
                    });
                    lists.len() - 1
                }
            };
            f(&mut lists[index].conns)
        })
    }

    fn take_idle(&self, runtime: tokio::runtime::Id) -> Option<MultiplexedConnection> {
        let conn = self.with_idle(runtime, Vec::pop);
        if conn.is_some() {
            self.idle_count.fetch_sub(1, Ordering::Relaxed);
        }
        conn
    }

    fn put_idle(&self, runtime: tokio::runtime::Id, conn: MultiplexedConnection) {
        self.with_idle(runtime, |conns| conns.push(conn));
        self.idle_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Closes this thread's idle connections for `runtime`.
    fn clear_idle(&self, runtime: Option<tokio::runtime::Id>) {
        if let Some(runtime) = runtime {
            let n = self.with_idle(runtime, |conns| std::mem::take(conns).len());
            self.idle_count.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Runs `fut` on the IO runtime and waits for it from the caller's; cancelled when
    /// the caller stops waiting.
    pub(crate) async fn on_io<T, F>(&self, fut: F) -> Result<T, Failure>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let handle = self
            .io
            .handle()
            .ok_or_else(|| Failure("the redis pool is shut down".to_string()))?;
        let task = AbortOnDrop(handle.spawn(fut));
        task.wait()
            .await
            .map_err(|e| Failure(format!("the redis task failed: {e}")))
    }

    /// A connection to run one command on: an idle one, or a new one; waits at most
    /// `pool_timeout` for one to be free.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease, Failure> {
        let config = &self.config;
        let permit = match tokio::time::timeout(
            config.pool_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Failure("the redis pool is shut down".to_string())),
            Err(_) => {
                return Err(Failure(format!(
                    "no free connection within {} (all {} in use)",
                    show(config.pool_timeout),
                    config.pool_size
                )))
            }
        };
        let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        let idle = runtime.and_then(|r| self.take_idle(r));
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect(runtime.is_some()).await?,
        };
        Ok(Lease {
            inner: Arc::clone(self),
            conn: Some(conn),
            runtime,
            healthy: false,
            _permit: permit,
        })
    }

    /// Opens a connection: on the caller's runtime if `here` (its reader task then runs
    /// there), else on the IO runtime.
    async fn connect(&self, here: bool) -> Result<MultiplexedConnection, Failure> {
        let timeout = self.config.connect_timeout;
        let client = self.client.clone();
        let settings = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        let url = self.config.redacted_url();
        let connect = async move {
            client
                .get_multiplexed_async_connection_with_config(&settings)
                .await
        };
        let opened = if here {
            tokio::time::timeout(timeout, async { Ok(connect.await) }).await
        } else {
            tokio::time::timeout(timeout, self.on_io(connect)).await
        };
        match opened {
            Ok(Ok(Ok(conn))) => Ok(conn),
            Ok(Ok(Err(e))) => Err(Failure(format!("cannot connect to {url}: {e}"))),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure(format!(
                "cannot connect to {url}: timed out after {}",
                show(timeout)
            ))),
        }
    }

    /// Sends `request` on a leased connection and waits at most `command_timeout`. A
    /// server error reply is a reply (`Ok`); a transport error or a timeout is a
    /// [`Failure`], and closes the connection and the idle ones.
    async fn send(self: &Arc<Self>, request: Request<'_>) -> Result<Vec<redis::Value>, Failure> {
        let mut lease = self.lease().await?;
        let timeout = self.config.command_timeout;
        let conn = lease.conn()?;
        let work = async {
            match request {
                Request::Cmd(cmd) => conn.req_packed_command(cmd).await.map(|v| vec![v]),
                Request::Pipeline(pipe, offset, count) => {
                    conn.req_packed_commands(pipe, offset, count).await
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(values)) => {
                lease.healthy = true;
                Ok(values)
            }
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                {
                    // The server went away, probably for the idle connections too.
                    self.clear_idle(lease.runtime);
                } else {
                    // The server answered (an aborted transaction, say).
                    lease.healthy = true;
                }
                Err(Failure(crate::reply::error_text(&e)))
            }
            Err(_) => Err(Failure(format!("timed out after {}", show(timeout)))),
        }
    }

    /// One command's raw reply.
    pub(crate) async fn query(self: &Arc<Self>, cmd: &redis::Cmd) -> Result<redis::Value, Failure> {
        let values = self.send(Request::Cmd(cmd)).await?;
        values
            .into_iter()
            .next()
            .ok_or_else(|| Failure("no reply".to_string()))
    }

    /// A pipeline's raw replies: one per command, or for a transaction (`atomic`) the
    /// reply of `EXEC` alone.
    pub(crate) async fn query_pipeline(
        self: &Arc<Self>,
        pipe: &redis::Pipeline,
        len: usize,
        atomic: bool,
    ) -> Result<Vec<redis::Value>, Failure> {
        let (offset, count) = if atomic { (len + 1, 1) } else { (0, len) };
        self.send(Request::Pipeline(pipe, offset, count)).await
    }

    /// Subscribes to `channels` on a connection of its own (counted in the pool) and
    /// collects up to `max` messages, waiting at most `wait` in all.
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        channels: Vec<Vec<u8>>,
        patterns: bool,
        wait: Duration,
        max: usize,
    ) -> Result<Vec<Message>, Failure> {
        let permit = match tokio::time::timeout(
            self.config.pool_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(Failure(format!(
                    "no free connection within {} (all {} in use)",
                    show(self.config.pool_timeout),
                    self.config.pool_size
                )))
            }
        };
        let client = self.client.clone();
        let connect_timeout = self.config.connect_timeout;
        let url = self.config.redacted_url();
        let work = async move {
            let _permit = permit;
            let pubsub = tokio::time::timeout(connect_timeout, client.get_async_pubsub()).await;
            let mut pubsub = match pubsub {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => return Err(Failure(format!("cannot connect to {url}: {e}"))),
                Err(_) => {
                    return Err(Failure(format!(
                        "cannot connect to {url}: timed out after {}",
                        show(connect_timeout)
                    )))
                }
            };
            let subscribed = tokio::time::timeout(connect_timeout, async {
                if patterns {
                    pubsub.psubscribe(&channels).await
                } else {
                    pubsub.subscribe(&channels).await
                }
            })
            .await;
            match subscribed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Failure(crate::reply::error_text(&e))),
                Err(_) => {
                    return Err(Failure(format!(
                        "subscribing timed out after {}",
                        show(connect_timeout)
                    )))
                }
            }
            let mut messages = Vec::new();
            let deadline = tokio::time::Instant::now() + wait;
            let mut stream = std::pin::pin!(pubsub.on_message());
            while messages.len() < max {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(msg)) => messages.push(Message {
                        channel: msg.get_channel_name().as_bytes().to_vec(),
                        pattern: msg.get_pattern::<Vec<u8>>().ok(),
                        payload: msg.get_payload_bytes().to_vec(),
                    }),
                    Ok(None) => {
                        if messages.is_empty() {
                            return Err(Failure("the connection closed".to_string()));
                        }
                        break;
                    }
                    Err(_) => break,
                }
            }
            Ok(messages)
        };
        self.on_io(work).await?
    }
}

/// What [`Inner::send`] sends.
enum Request<'a> {
    Cmd(&'a redis::Cmd),
    /// The pipeline, and which replies to keep: from `offset`, `count` of them.
    Pipeline(&'a redis::Pipeline, usize, usize),
}

/// One pub/sub message.
pub(crate) struct Message {
    pub(crate) channel: Vec<u8>,
    pub(crate) pattern: Option<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
}

/// A spawned task that is aborted when nobody waits for it any more.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn wait(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A duration as the configuration writes it (`500ms`, `1s`).
pub(crate) fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
