//! Streamed responses: `stream.start(status, headers)` in a handler sends the response
//! head at once; `stream.write(chunk)` sends body chunks as the handler makes them,
//! waiting while the client is slower than the handler (so memory stays bounded); the
//! response ends when the handler returns. The handler keeps running under its limits
//! (`request_timeout`, `cpu_limit`) and its handler slot while it streams.
//!
//! How the head gets out while the handler runs on: [`Watch`] polls the handler's
//! execution with [`POLLING`] set; `stream.start` (a host function running inside that
//! poll) leaves the head in [`STARTED`]; after the poll, `Watch` finds it and resolves
//! with the head and the still-running execution, which [`respond`](Worker::respond)
//! then hands to a task of its own. Only one execution runs on a thread at a time, so
//! what `stream.start` leaves during a poll belongs to the execution being polled.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use luapool::mlua::Value;
use luapool::{CopyBudget, HostError, HostResult, Module};
use tokio::sync::mpsc;

use super::Worker;
use crate::response::{stream_head, Reply};

/// Chunks a stream holds between the handler and the connection; a `stream.write` past
/// them waits for the client.
const QUEUED_CHUNKS: usize = 4;
/// The largest chunk passed on at once: longer strings are sent in pieces this long.
const PIECE: usize = 64 << 10;
/// What `stream.start` may copy (status line and headers).
const HEAD_BUDGET: usize = 64 << 10;

type Sender = mpsc::Sender<Result<Bytes, std::io::Error>>;

thread_local! {
    /// Set while a request's handler is polled by its [`Watch`].
    static POLLING: Cell<bool> = const { Cell::new(false) };
    /// The head of the stream `stream.start` began during the current poll.
    static STARTED: RefCell<Option<Head>> = const { RefCell::new(None) };
    /// The body's sender of each started stream, by the execution's id.
    static WRITERS: RefCell<HashMap<Arc<str>, Sender>> = RefCell::new(HashMap::new());
}

/// A streamed response's head, and its body as the handler writes it.
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

/// The `stream` module of handlers.
pub(crate) fn module() -> Module {
    Module::new("stream")
        .function("start", |(status, headers): (Value, Value)| {
            start(status, headers)
        })
        .function("started", |()| {
            let id = luapool::Context::id();
            Ok(id.is_some_and(|id| WRITERS.with(|w| w.borrow().contains_key(&id))))
        })
        .async_function("write", |chunk: Value| {
            // Read while the calling execution runs: which stream is its.
            let writer = luapool::Context::id()
                .and_then(|id| WRITERS.with(|w| w.borrow().get(&id).cloned()));
            write(writer, chunk)
        })
}

/// `stream.start(status, headers)`.
fn start(status: Value, headers: Value) -> HostResult<bool> {
    let id = luapool::Context::id();
    let started = id
        .as_ref()
        .is_some_and(|id| WRITERS.with(|w| w.borrow().contains_key(id)));
    if started || STARTED.with(|s| s.borrow().is_some()) {
        return Err(HostError::new(
            "stream.start: the response has started already",
        ));
    }
    let (Some(id), true) = (id, POLLING.get()) else {
        return Err(HostError::new(
            "stream.start: only a request's handler can stream (not a timer or init_worker)",
        ));
    };
    let (status, headers) = stream_head(status, headers, &mut CopyBudget::new(HEAD_BUDGET))
        .map_err(|why| HostError::new(format!("stream.start: {why}")))?;
    let (tx, body) = mpsc::channel(QUEUED_CHUNKS);
    WRITERS.with(|w| w.borrow_mut().insert(id, tx));
    STARTED.with(|s| {
        *s.borrow_mut() = Some(Head {
            status,
            headers,
            body,
        })
    });
    Ok(true)
}

/// `stream.write(chunk)`: `true`, or `nil, "closed"` once the client is gone.
async fn write(
    writer: Option<Sender>,
    chunk: Value,
) -> HostResult<(Option<bool>, Option<&'static str>)> {
    let Some(writer) = writer else {
        return Err(HostError::new("stream.write: call stream.start first"));
    };
    let chunk = match chunk {
        Value::String(s) => s,
        other => {
            return Err(HostError::new(format!(
                "bad argument #1 to 'stream.write' (string expected, got {})",
                other.type_name()
            )))
        }
    };
    let len = chunk.as_bytes().len();
    let mut at = 0;
    while at < len {
        let end = (at + PIECE).min(len);
        // Copied one piece at a time: the host holds at most `QUEUED_CHUNKS + 1` pieces
        // of a stream, however long the string.
        let piece = Bytes::copy_from_slice(&chunk.as_bytes()[at..end]);
        if writer.send(Ok(piece)).await.is_err() {
            return Ok((None, Some("closed")));
        }
        at = end;
    }
    Ok((Some(true), None))
}

/// Ends the stream of execution `id`: its body ends when the chunks written so far are
/// sent, or is cut off if the handler failed.
pub(super) fn finish(id: &str, failed: bool) {
    let writer = WRITERS.with(|w| w.borrow_mut().remove(id));
    if let (Some(writer), true) = (writer, failed) {
        // Best effort: a full queue means the client is not reading anyway; dropping
        // the sender then ends the body (the connection closes when the handler
        // failed, since the length was not sent and the chunked end is not either).
        let _ = writer.try_send(Err(std::io::Error::other("the handler failed")));
    }
}

/// What a handler's execution gave: its outcome, or a stream it started.
pub(super) enum Ran<F: Future> {
    /// The handler returned (or failed) without streaming.
    Done(F::Output),
    /// The handler started a stream: its head, and the execution (still running, or
    /// its outcome if it ended in the same poll).
    Streaming(Head, Rest<F>),
}

/// The rest of a handler that started streaming.
pub(super) enum Rest<F: Future> {
    Running(Pin<Box<F>>),
    Finished(F::Output),
}

/// Polls a handler's execution with streaming allowed; see the module docs.
pub(super) struct Watch<F> {
    call: Option<Pin<Box<F>>>,
}

impl<F: Future> Watch<F> {
    pub(super) fn new(call: Pin<Box<F>>) -> Self {
        Watch { call: Some(call) }
    }
}

impl<F: Future> Future for Watch<F> {
    type Output = Ran<F>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ran<F>> {
        let Some(call) = self.call.as_mut() else {
            return Poll::Pending;
        };
        POLLING.set(true);
        let polled = call.as_mut().poll(cx);
        POLLING.set(false);
        let started = STARTED.with(|s| s.borrow_mut().take());
        match (polled, started) {
            (Poll::Ready(out), None) => Poll::Ready(Ran::Done(out)),
            (Poll::Ready(out), Some(head)) => {
                Poll::Ready(Ran::Streaming(head, Rest::Finished(out)))
            }
            (Poll::Pending, None) => Poll::Pending,
            (Poll::Pending, Some(head)) => match self.call.take() {
                Some(call) => Poll::Ready(Ran::Streaming(head, Rest::Running(call))),
                None => Poll::Pending,
            },
        }
    }
}

impl Worker {
    /// The rest of a streaming handler, in a task of its own: waits for it, ends the
    /// stream, and gives back the handler slot and the in-flight count it held.
    pub(super) async fn finish_stream<F>(
        self: Rc<Self>,
        id: Arc<str>,
        vm: Rc<luapool::Vm>,
        rest: Rest<F>,
    ) where
        F: Future<Output = luapool::Result<Reply>>,
    {
        let result = match rest {
            Rest::Running(call) => call.await,
            Rest::Finished(result) => result,
        };
        finish(&id, result.is_err());
        if let Err(e) = &result {
            self.log_background_error("streaming handler", &id, e);
        }
        self.metrics.in_flight.dec();
        self.slots.add_permits(1);
        self.metrics.vm_memory.set(vm.used_memory() as u64);
        self.heal(&vm);
    }
}
