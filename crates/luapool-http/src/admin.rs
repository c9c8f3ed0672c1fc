//! The admin listener: `/metrics` (Prometheus text) and `/healthz`, on its own thread so
//! that it answers even while every worker is busy.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::body::Body;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tracing::debug;

use crate::error::{Error, Result};
use crate::worker::Shared;

/// A running admin listener.
pub(crate) struct Admin {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Admin {
    pub(crate) fn start(addr: SocketAddr, shared: Arc<Shared>) -> Result<Admin> {
        let bind_error = |source| Error::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Worker {
                index: usize::MAX,
                message: format!("admin listener: cannot start its runtime: {e}"),
            })?;
        let (stop, mut stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("luapool-admin".to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let shared = Arc::clone(&shared);
                                tokio::spawn(async move {
                                    let service = hyper::service::service_fn(move |req| {
                                        let shared = Arc::clone(&shared);
                                        async move { Ok::<_, Infallible>(answer(&shared, &req)) }
                                    });
                                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await
                                    {
                                        debug!("admin connection ended: {e}");
                                    }
                                });
                            }
                        }
                    }
                });
            })
            .map_err(|e| Error::Worker {
                index: usize::MAX,
                message: format!("admin listener: {e}"),
            })?;
        Ok(Admin {
            addr: local,
            stop,
            thread,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn answer(shared: &Shared, req: &Request<Incoming>) -> Response<Body> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.render(),
        ),
        "/healthz" => (
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics or /healthz\n".to_string(),
        ),
    };
    let mut response = Response::new(Body::full(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}
