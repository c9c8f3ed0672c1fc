//! Integration tests of the HTTP server: each starts a server in-process on
//! `127.0.0.1:0` and drives it with a real HTTP client.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod bodies;
mod compression;
mod contract;
mod errors;
mod host;
mod host_copies;
mod hostile;
mod isolation;
mod lifecycle;
mod routing;
mod static_files;
mod streaming;
mod timers;
mod tls;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use luapool_http::{Server, ServerConfig};

/// A server running an app written to a temporary directory.
pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn app_path(&self) -> PathBuf {
        self.dir.path().join("app.lua")
    }

    /// Waits until `metric` appears in the server's metrics text, for up to 10 s.
    pub async fn wait_for_metric(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.server().metrics();
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {needle:?} in:\n{text}"
            );
            tokio::task::yield_now().await;
        }
    }
}

/// One worker on a free port; `tweak` adjusts the configuration.
pub fn test_config() -> ServerConfig {
    ServerConfig::default()
        .with_listen("127.0.0.1:0".parse().unwrap())
        .with_workers(1)
}

/// Writes `app.lua` (and `files`, as name/source pairs) to a temp dir.
pub fn write_app(source: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.lua"), source).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

pub fn start_with(source: &str, files: &[(&str, &str)], config: ServerConfig) -> TestServer {
    let dir = write_app(source, files);
    let server = Server::start(dir.path().join("app.lua"), config).unwrap();
    let base = format!("http://{}", server.local_addr());
    TestServer {
        server: Some(server),
        base,
        dir,
    }
}

pub fn start(source: &str) -> TestServer {
    start_with(source, &[], test_config())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET `url` with `c`: the body.
pub async fn body_of(c: &reqwest::Client, url: &str) -> String {
    c.get(url).send().await.unwrap().text().await.unwrap()
}

/// [`get`] taking an owned URL, for `tokio::spawn`.
pub async fn get_owned(url: String) -> (u16, String) {
    get(&url).await
}

/// GET `url`: status and body.
pub async fn get(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}
