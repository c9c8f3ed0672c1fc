//! One request, from hyper's service call to its response: its id, the access log and
//! the request metrics ([`Worker::handle`]); admission, the handler's call on the
//! worker's current VM, and the outcome as a response ([`Worker::respond`]).

use std::convert::Infallible;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;
use luapool::ExecOptions;
use tracing::info;

use super::admission::Admitted;
use super::stream::{Ran, Watch};
use super::Worker;
use crate::body::Body;
use crate::compress::negotiate;
use crate::metrics::{CountIfDropped, Raised, StatusLabels};
use crate::request::LuaRequest;
use crate::response::Reply;
use crate::timeouts::InRequest;

impl Worker {
    /// Answers one request and records it; `in_request` (the connection's activity) is
    /// dropped with the future, so a request hyper drops because its client went away
    /// ends too.
    ///
    /// A plain function returning its future (as are [`respond`](Worker::respond) and
    /// [`admit`](Worker::admit)): an `async fn` keeps each argument twice in its future,
    /// and the request (264 bytes) went through three of them; the future is moved
    /// whole into hyper's connection state for every request.
    pub(super) fn handle(
        self: Rc<Self>,
        req: Request<Incoming>,
        remote: Rc<str>,
        in_request: InRequest,
    ) -> impl Future<Output = Result<Response<Body>, Infallible>> + 'static {
        let start = Instant::now();
        let access = self
            .shared
            .host
            .config
            .access_log
            .then(|| (req.method().clone(), req.uri().clone()));
        let id = self.next_id();
        async move {
            let unanswered = CountIfDropped::new(&self.shared.metrics.cancelled);
            let response = self.respond(req, Rc::clone(&remote), &id).await;
            unanswered.disarm();
            drop(in_request);
            let status = response.status().as_u16();
            self.count(status);
            let elapsed = start.elapsed();
            self.metrics.latency.observe(elapsed.as_secs_f64());
            if let Some((method, uri)) = access {
                info!(
                    target: "luapool::access",
                    id = %id,
                    remote = %remote,
                    method = %method,
                    uri = %uri,
                    status,
                    micros = elapsed.as_micros() as u64,
                );
            }
            Ok(response)
        }
    }

    /// A new request id: the worker's prefix and a counter.
    fn next_id(&self) -> Arc<str> {
        use std::fmt::Write;
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        let mut id = String::with_capacity(self.id_prefix.len() + 20);
        id.push_str(&self.id_prefix);
        // Writing to a String cannot fail.
        let _ = write!(id, "{n}");
        id.into()
    }

    /// Counts a response by status.
    fn count(&self, status: u16) {
        let mut by_status = self.metrics.by_status.borrow_mut();
        by_status
            .entry(status)
            .or_insert_with(|| {
                self.shared
                    .metrics
                    .requests
                    .get_or_create(&StatusLabels { status })
                    .clone()
            })
            .inc();
    }

    /// Admits the request, runs its handler on the current VM and maps the outcome to
    /// a response; rebuilds the VM if the handler poisoned it.
    // Not an `async fn`, which would keep `req` twice (see `handle`).
    #[allow(clippy::manual_async_fn)]
    fn respond<'a>(
        &'a self,
        req: Request<Incoming>,
        remote: Rc<str>,
        id: &'a Arc<str>,
    ) -> impl Future<Output = Response<Body>> + 'a {
        async move {
            let statics = &self.shared.host.statics;
            if !statics.is_empty() {
                if let Some(response) = statics.serve(req.method(), req.uri(), req.headers()).await
                {
                    return response;
                }
            }
            let accepted = if self.shared.host.config.compression {
                negotiate(req.headers().get_all(http::header::ACCEPT_ENCODING))
            } else {
                None
            };
            let Admitted { parts, body, slot } = match self.admit(req).await {
                Ok(admitted) => admitted,
                Err(refused) => return refused,
            };
            let (vm, app) = self.live.current();
            let request = LuaRequest {
                parts,
                body,
                remote,
                id: Arc::clone(id),
            };
            // The request id goes with the execution: in its `log` lines, and as
            // `x-request-id` on its `http.request` calls.
            let options = ExecOptions::new().with_id(Arc::clone(id));
            // Planned here (the app compiled or fetched, `req` built); the future holds
            // the execution alone.
            let call = Box::pin(vm.with_options(&options).call_in_async::<Reply>(
                &app.script,
                "handle",
                request,
            ));
            let running = Raised::new(&self.metrics.in_flight);
            let result = match Watch::new(call).await {
                Ran::Done(result) => result,
                Ran::Streaming(head, rest) => {
                    // The handler runs on in a task of its own, which keeps its slot and
                    // its in-flight count until it ends.
                    // (`me` is always there: this worker is its thread's.)
                    match self.me() {
                        Some(me) => {
                            slot.forget();
                            std::mem::forget(running);
                            let task = me.finish_stream(Arc::clone(id), vm, rest);
                            tokio::task::spawn_local(task);
                        }
                        None => super::stream::finish(id, true),
                    }
                    let mut response = Response::new(Body::Channel(head.body));
                    *response.status_mut() = head.status;
                    *response.headers_mut() = head.headers;
                    return response;
                }
            };
            drop(running);
            drop(slot);
            self.metrics.vm_memory.set(vm.used_memory() as u64);
            self.heal(&vm);
            match self.reply(result, id, &app, accepted) {
                Ok(response) => response,
                // Boxed: the file's future stays out of every request's future.
                Err(file) => Box::pin(self.send_file(file, id, &app)).await,
            }
        }
    }
}
