//! HTTPS: ALPN picks HTTP/2 or HTTP/1.1, the handshake is bounded by the header read
//! timeout, certificates reload, and bad certificates stop the start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use luapool_http::{Error, Server, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{test_config, write_app, TestServer};

/// A self-signed certificate for `localhost` and `127.0.0.1`: its PEM and its key's.
fn self_signed() -> (String, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    (ck.cert.pem(), ck.key_pair.serialize_pem())
}

/// Writes `cert.pem` and `key.pem` into `dir`.
fn write_pair(dir: &Path, (cert, key): &(String, String)) -> TlsConfig {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    TlsConfig::new(dir.join("cert.pem"), dir.join("key.pem"))
}

/// A client that trusts only `cert_pem` and reaches `localhost` at `addr`.
fn https_client(cert_pem: &str, addr: SocketAddr, http1: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(30));
    if http1 {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// A TLS server answering "secure" (its certificate files in its app's directory).
fn start_tls(
    pair: &(String, String),
    tweak: impl FnOnce(luapool_http::ServerConfig) -> luapool_http::ServerConfig,
) -> TestServer {
    let dir = write_app(
        "function handle(req) return 'secure ' .. req.method end",
        &[],
    );
    let tls = write_pair(dir.path(), pair);
    let server = Server::start(
        dir.path().join("app.lua"),
        tweak(test_config()).with_tls(tls),
    )
    .unwrap();
    assert_eq!(server.scheme(), "https");
    let base = format!("https://localhost:{}", server.local_addr().port());
    TestServer {
        server: Some(server),
        base,
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_picks_http2_or_http1_over_tls() {
    let pair = self_signed();
    let t = start_tls(&pair, |c| c);
    let addr = t.server().local_addr();
    let r = https_client(&pair.0, addr, false)
        .get(t.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "secure GET");
    let r = https_client(&pair.0, addr, true)
        .post(t.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.text().await.unwrap(), "secure POST");
    // Plain HTTP to the TLS port gets no answer.
    let plain = crate::client().get(format!("http://{addr}/")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_handshake_is_closed() {
    let pair = self_signed();
    let t = start_tls(&pair, |c| {
        c.with_header_read_timeout(Duration::from_millis(500))
    });
    let addr = t.server().local_addr();
    // One sends nothing at all, one the first bytes of a ClientHello and then nothing.
    for first in [&b""[..], &[0x16, 0x03, 0x01, 0x02]] {
        let start = Instant::now();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(first).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the server kept a silent TLS connection open");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(400), "{waited:?}");
    }
    t.wait_for_metric("luapool_http_connections{worker=\"0\"} 0")
        .await;
    // The worker still serves.
    let r = https_client(&pair.0, addr, false)
        .get(t.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "secure GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_reads_the_certificate_again_and_keeps_it_when_the_new_one_is_bad() {
    let (old, new) = (self_signed(), self_signed());
    let t = start_tls(&old, |c| c);
    let addr = t.server().local_addr();
    let url = t.url("/");
    assert!(https_client(&old.0, addr, false)
        .get(&url)
        .send()
        .await
        .is_ok());
    write_pair(t.dir.path(), &new);
    t.server().reload().unwrap();
    // New connections see the new certificate (a new client: a new connection).
    let r = https_client(&new.0, addr, false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "secure GET");
    assert!(https_client(&old.0, addr, false)
        .get(&url)
        .send()
        .await
        .is_err());
    // A bad certificate: the reload fails, the current one stays.
    std::fs::write(t.dir.path().join("cert.pem"), "not a certificate").unwrap();
    let err = t.server().reload().unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("cert.pem"), "{err}");
    let r = https_client(&new.0, addr, false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "secure GET");
    t.wait_for_metric("luapool_reloads_total{kind=\"tls_failed\"} 1")
        .await;
}

#[test]
fn bad_certificates_stop_the_start_with_one_clear_error() {
    let dir = write_app("function handle() return 'x' end", &[]);
    let d = dir.path();
    let start = |tls: TlsConfig| {
        let err = Server::start(d.join("app.lua"), test_config().with_tls(tls)).unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        let text = err.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        text
    };
    let good = write_pair(d, &self_signed());
    let missing = PathBuf::from("/no/such/cert.pem");
    let err = start(TlsConfig::new(&missing, &good.key));
    assert!(err.contains("/no/such/cert.pem"), "{err}");
    std::fs::write(d.join("junk.pem"), "hello").unwrap();
    let err = start(TlsConfig::new(d.join("junk.pem"), &good.key));
    assert!(
        err.contains("junk.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = start(TlsConfig::new(&good.cert, d.join("junk.pem")));
    assert!(
        err.contains("junk.pem") && err.contains("no PEM private key"),
        "{err}"
    );
    let other = self_signed();
    std::fs::write(d.join("other-key.pem"), &other.1).unwrap();
    let err = start(TlsConfig::new(&good.cert, d.join("other-key.pem")));
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn a_config_file_names_the_files_relative_to_itself() {
    let dir = write_app("function handle() return 'x' end", &[]);
    std::fs::write(
        dir.path().join("luapool.toml"),
        "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let c = luapool_http::ServerConfig::from_file(dir.path().join("luapool.toml")).unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert, dir.path().join("cert.pem"));
    assert_eq!(tls.key, dir.path().join("key.pem"));
}
