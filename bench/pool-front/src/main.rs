//! pool-front: the alternative server architecture that bench/http.sh measures against
//! `luapool serve`. A hyper 1 server on a tokio multi-thread runtime (the "front", FRONT
//! threads) accepts connections and parses requests; every request is submitted to a
//! `luapool::WorkerPool` (WORKERS threads, each with its own VM) as
//! `Job::call_in(app, "handle", {req})` and the front awaits the result: one hop to a
//! worker thread and one back per request. `luapool serve` instead runs the handler on
//! the thread that owns the connection.
//!
//! usage: pool-front [ADDR] [WORKERS] [FRONT] [APP]
//!        (default 127.0.0.1:18084 1 1 bench/app.lua)
//!
//! `req` has `method`, `path`, `body` and `headers` (name -> value); the handler's
//! results become the response as `luapool serve` does it: a body string (200,
//! text/plain), `status, body`, or a table `{ status, headers, body }`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use luapool::{Job, Script, Value, VmConfig, WorkerPool, WorkerPoolConfig};

type Resp = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn status_of(v: &Value) -> Result<StatusCode, String> {
    v.as_integer()
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (100..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| format!("bad status {v:?}"))
}

fn body_of(v: Option<&Value>) -> Result<Bytes, String> {
    match v {
        None | Some(Value::Nil) => Ok(Bytes::new()),
        Some(Value::String(s)) => Ok(Bytes::from(s.clone())),
        Some(other) => Err(format!("the body must be a string, got {other:?}")),
    }
}

fn header_value(v: &Value) -> Result<HeaderValue, String> {
    let bytes = match v {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Number(n) => n.to_string().into_bytes(),
        other => return Err(format!("bad header value {other:?}")),
    };
    HeaderValue::from_bytes(&bytes).map_err(|e| e.to_string())
}

/// The handler's results as a response (see the module docs).
fn reply(values: Vec<Value>) -> Result<Resp, String> {
    let mut it = values.into_iter();
    let (first, second) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
    match (first, second) {
        (Value::String(body), Value::Nil) => Ok(text(StatusCode::OK, body)),
        (status @ (Value::Integer(_) | Value::Number(_)), body) => {
            Ok(text(status_of(&status)?, body_of(Some(&body))?))
        }
        (table @ Value::Map(_), Value::Nil) => {
            let status = match table.get("status") {
                None | Some(Value::Nil) => StatusCode::OK,
                Some(s) => status_of(s)?,
            };
            let mut resp = text(status, body_of(table.get("body"))?);
            match table.get("headers") {
                None | Some(Value::Nil) => {}
                Some(Value::Map(pairs)) => {
                    let mut own_ctype = false;
                    for (k, v) in pairs {
                        let name = k
                            .as_str()
                            .and_then(|k| HeaderName::from_bytes(k.as_bytes()).ok())
                            .ok_or_else(|| format!("bad header name {k:?}"))?;
                        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                            continue;
                        }
                        if name == CONTENT_TYPE && !own_ctype {
                            resp.headers_mut().remove(CONTENT_TYPE);
                            own_ctype = true;
                        }
                        let values = match v {
                            Value::Array(list) => list.iter().map(header_value).collect(),
                            v => vec![header_value(v)],
                        };
                        for hv in values {
                            resp.headers_mut().append(name.clone(), hv?);
                        }
                    }
                }
                Some(other) => return Err(format!("`headers` must be a table, got {other:?}")),
            }
            Ok(resp)
        }
        (first, _) => Err(format!("handle returned {first:?}")),
    }
}

async fn handle(pool: WorkerPool, app: Script, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(text(StatusCode::BAD_REQUEST, "bad request body")),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (Value::from(k.as_str()), Value::String(v.as_bytes().to_vec())))
        .collect();
    let req = Value::Map(vec![
        ("method".into(), parts.method.as_str().into()),
        ("path".into(), parts.uri.path().into()),
        ("body".into(), Value::String(body.to_vec())),
        ("headers".into(), Value::Map(headers)),
    ]);
    let resp = match pool.submit(Job::call_in(app, "handle", vec![req])).await {
        Ok(values) => reply(values).unwrap_or_else(|e| {
            eprintln!("pool-front: bad reply: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "bad reply")
        }),
        Err(e @ luapool::Error::Busy { .. }) => {
            text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e) => {
            eprintln!("pool-front: error: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "handler error")
        }
    };
    Ok(resp)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18084".to_owned());
    let workers: usize = args.next().map_or(Ok(1), |s| s.parse())?;
    let front: usize = args.next().map_or(Ok(1), |s| s.parse())?;
    let path = args.next().unwrap_or_else(|| "bench/app.lua".to_owned());
    let app = Script::new(path.clone(), std::fs::read(&path)?);

    // As `luapool serve` configures its VMs: defaults plus its 30 s request timeout.
    let vm = VmConfig::default().with_timeout(Duration::from_secs(30));
    let config = WorkerPoolConfig::default()
        .with_workers(workers)
        .with_concurrency(1024)
        .with_queue(4096)
        .with_vm(vm);
    let compile = app.clone();
    let pool = WorkerPool::builder(config)
        .init(move |vm| vm.compile(&compile))
        .build()?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(front)
        .thread_name("pool-front")
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("pool-front: {path} on http://{addr}, {workers} worker(s), {front} front thread(s)");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (pool, app) = (pool.clone(), app.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(pool.clone(), app.clone(), req));
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
