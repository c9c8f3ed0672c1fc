//! `[static]` directories: served before the handler, with ETag, Last-Modified, Range
//! and precompressed files; nothing outside the directory.

use luapool_http::Server;
use reqwest::header;

use crate::{test_config, write_app};

struct Static {
    server: Server,
    base: String,
    dir: tempfile::TempDir,
}

fn start() -> Static {
    let dir = write_app(
        "function handle(req) return 'handler: ' .. req.path end",
        &[],
    );
    let public = dir.path().join("public");
    std::fs::create_dir_all(public.join("css")).unwrap();
    std::fs::write(public.join("hello.txt"), "hello, static world").unwrap();
    std::fs::write(public.join("css/site.css"), "body { color: red }").unwrap();
    std::fs::write(public.join("css/site.css.gz"), gzip(b"body { color: red }")).unwrap();
    std::fs::write(public.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "not for you").unwrap();
    let mut config = test_config();
    config.static_dirs.insert("/assets".into(), "public".into());
    let server = Server::start(dir.path().join("app.lua"), config).unwrap();
    let base = format!("http://{}", server.local_addr());
    Static { server, base, dir }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // A stored (uncompressed) gzip member: enough for the server to pick the file.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1);
    let len = data.len() as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

#[tokio::test]
async fn files_are_served_with_validators_and_ranges() {
    let s = start();
    let c = client();
    let r = c
        .get(format!("{}/assets/hello.txt", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/plain");
    let etag = r.headers()[header::ETAG].clone();
    assert!(r.headers().contains_key(header::LAST_MODIFIED));
    assert_eq!(r.text().await.unwrap(), "hello, static world");
    // If-None-Match: 304 with no body.
    let r = c
        .get(format!("{}/assets/hello.txt", s.base))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()[header::ETAG], etag);
    assert_eq!(r.text().await.unwrap(), "");
    // A range.
    let r = c
        .get(format!("{}/assets/hello.txt", s.base))
        .header(header::RANGE, "bytes=7-12")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "static");
    // A directory's index.html.
    let (status, body) = crate::get(&format!("{}/assets/", s.base)).await;
    assert_eq!((status, body.as_str()), (200, "<h1>home</h1>"));
    drop(s.server);
}

#[tokio::test]
async fn precompressed_files_follow_accept_encoding() {
    let s = start();
    let c = client();
    let url = format!("{}/assets/css/site.css", s.base);
    let r = c
        .get(&url)
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/css");
    assert_eq!(r.bytes().await.unwrap()[..2], [0x1f, 0x8b]);
    let r = c.get(&url).send().await.unwrap();
    assert!(!r.headers().contains_key(header::CONTENT_ENCODING));
    assert_eq!(r.text().await.unwrap(), "body { color: red }");
    drop(s.server);
}

#[tokio::test]
async fn nothing_outside_the_directory_and_other_paths_reach_the_handler() {
    let s = start();
    // Sent as is (a URL library would remove the dot segments first).
    for path in [
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/css/../../secret.txt",
    ] {
        let reply = raw_get(&s.base, path).await;
        assert!(!reply.contains("not for you"), "{path}: {reply}");
        assert!(!reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
    }
    let (status, _) = crate::get(&format!("{}/assets/missing.txt", s.base)).await;
    assert_eq!(status, 404);
    // Not under the prefix, or not GET/HEAD: the handler answers.
    let (status, body) = crate::get(&format!("{}/assetsfoo", s.base)).await;
    assert_eq!((status, body.as_str()), (200, "handler: /assetsfoo"));
    let r = client()
        .post(format!("{}/assets/hello.txt", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "handler: /assets/hello.txt");
    drop(s.server);
}

/// The reply to `GET path` sent byte for byte on a new connection.
async fn raw_get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn a_changed_file_is_read_again_and_large_files_stream() {
    let s = start();
    let url = format!("{}/assets/hello.txt", s.base);
    let first = client().get(&url).send().await.unwrap();
    assert_eq!(first.headers()[header::CONTENT_TYPE], "text/plain");
    let etag = first.headers()[header::ETAG].clone();
    assert_eq!(first.text().await.unwrap(), "hello, static world");
    // Served from memory now; a new version (another length) is seen at once.
    std::fs::write(s.dir.path().join("public/hello.txt"), "changed!").unwrap();
    let second = client().get(&url).send().await.unwrap();
    assert_ne!(second.headers()[header::ETAG], etag);
    assert_eq!(second.text().await.unwrap(), "changed!");
    // A file over the in-memory limit takes the streaming path, whole.
    let big = vec![b'x'; 3 << 20];
    std::fs::write(s.dir.path().join("public/big.bin"), &big).unwrap();
    let r = client()
        .get(format!("{}/assets/big.bin", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), big.len());
    drop(s.server);
}
