//! Bare hyper 1 server: the CPU-per-request ceiling that bench/http.sh compares
//! luapool against. One current-thread tokio runtime, HTTP/1.1 with keep-alive.
//!
//! usage: reference [ADDR] [plain|lua]     (default 127.0.0.1:18082 plain)
//!
//! `/` returns "Hello, World!" (text/plain); `/echo` echoes a POST body
//! (application/octet-stream, 405 for other methods); anything else is 404.
//! In `lua` mode every request to `/` or `/echo` calls one Lua function in a
//! fresh environment (a new table with `__index = _G`), with a `req` table of
//! method, path and body, and sends back the string it returns.

use std::convert::Infallible;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mlua::{Function, Lua, Table};

const HANDLER: &str = r#"
return function(req)
    if req.path == "/echo" then return req.body end
    return "Hello, World!"
end
"#;

struct LuaSide {
    lua: Lua,
    handler: Function,
    env_mt: Table,
}

impl LuaSide {
    fn new() -> mlua::Result<Self> {
        let lua = Lua::new();
        let handler: Function = lua.load(HANDLER).set_name("=handler").eval()?;
        let env_mt = lua.create_table()?;
        env_mt.raw_set("__index", lua.globals())?;
        Ok(Self {
            lua,
            handler,
            env_mt,
        })
    }

    /// One request: a fresh environment, a `req` table, one call.
    fn call(&self, method: &str, path: &str, body: &[u8]) -> mlua::Result<Bytes> {
        let env = self.lua.create_table()?;
        env.set_metatable(Some(self.env_mt.clone()))?;
        self.handler.set_environment(env)?;
        let req = self.lua.create_table_with_capacity(0, 3)?;
        req.raw_set("method", method)?;
        req.raw_set("path", path)?;
        req.raw_set("body", self.lua.create_string(body)?)?;
        let out: mlua::LuaString = self.handler.call(req)?;
        Ok(Bytes::copy_from_slice(&out.as_bytes()))
    }
}

fn respond(status: StatusCode, ctype: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

async fn handle(
    lua: Option<Rc<LuaSide>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let (ctype, body) = match path.as_str() {
        "/" => ("text/plain", Bytes::from_static(b"Hello, World!")),
        "/echo" if method == Method::POST => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Ok(respond(StatusCode::BAD_REQUEST, "text/plain", Bytes::new())),
            };
            ("application/octet-stream", body)
        }
        "/echo" => {
            return Ok(respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                Bytes::new(),
            ))
        }
        _ => {
            return Ok(respond(
                StatusCode::NOT_FOUND,
                "text/plain",
                Bytes::from_static(b"not found"),
            ))
        }
    };
    let body = match &lua {
        None => body,
        Some(l) => match l.call(method.as_str(), &path, &body) {
            Ok(b) => b,
            Err(e) => {
                let msg = Bytes::from(e.to_string());
                return Ok(respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    msg,
                ));
            }
        },
    };
    Ok(respond(StatusCode::OK, ctype, body))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18082".to_owned());
    let mode = args.next().unwrap_or_else(|| "plain".to_owned());
    let lua = match mode.as_str() {
        "plain" => None,
        "lua" => Some(Rc::new(LuaSide::new()?)),
        other => return Err(format!("unknown mode {other:?} (plain|lua)").into()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("reference: {mode} on http://{addr}");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let lua = lua.clone();
            tokio::task::spawn_local(async move {
                let svc = service_fn(move |req| handle(lua.clone(), req));
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
