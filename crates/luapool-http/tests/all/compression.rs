//! Response compression negotiated by `Accept-Encoding`, against a real server.

use std::io::Read;

use crate::{start, start_with, test_config, TestServer};

const APP: &str = r#"
function handle(req)
  local big = string.rep('{"name":"widget","price":19.99,"tags":["a","b"]},', 100)
  if req.path == "/big" then
    return { status = 200, headers = { ["content-type"] = "application/json" }, body = big }
  elseif req.path == "/small" then
    return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"a":1}' }
  elseif req.path == "/encoded" then
    return { status = 200, headers = { ["content-type"] = "text/plain", ["content-encoding"] = "identity-ish" }, body = big }
  elseif req.path == "/png" then
    return { status = 200, headers = { ["content-type"] = "image/png" }, body = big }
  end
  return 404, "not found"
end
"#;

fn big() -> String {
    r#"{"name":"widget","price":19.99,"tags":["a","b"]},"#.repeat(100)
}

fn server() -> TestServer {
    start_with(APP, &[], test_config().with_compression(true))
}

fn decode(encoding: &str, body: &[u8]) -> String {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => brotli::BrotliDecompress(&mut &body[..], &mut out).unwrap(),
        "zstd" => out = zstd::bulk::decompress(body, 1 << 20).unwrap(),
        other => panic!("{other}"),
    }
    String::from_utf8(out).unwrap()
}

/// GET (or HEAD) `path` with `accept-encoding`: the content-encoding, vary and body.
async fn fetch(
    t: &TestServer,
    method: reqwest::Method,
    path: &str,
    accept: &str,
) -> (Option<String>, Option<String>, Vec<u8>) {
    let r = crate::client()
        .request(method, t.url(path))
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = |name| {
        r.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let (encoding, vary) = (header("content-encoding"), header("vary"));
    (encoding, vary, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_encoding_round_trips() {
    let t = server();
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("*", "zstd"),
    ] {
        let (encoding, vary, body) = fetch(&t, reqwest::Method::GET, "/big", accept).await;
        assert_eq!(encoding.as_deref(), Some(expected), "{accept}");
        assert_eq!(vary.as_deref(), Some("accept-encoding"), "{accept}");
        assert!(
            body.len() < big().len() / 4,
            "{accept}: {} bytes",
            body.len()
        );
        assert_eq!(decode(expected, &body), big(), "{accept}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_small_already_encoded_and_binary_bodies_are_untouched() {
    let t = server();
    for (path, accept, vary) in [
        ("/big", "gzip;q=0, br;q=0, zstd;q=0", true),
        ("/big", "*;q=0", true),
        ("/big", "identity", true),
        ("/small", "gzip", false),
        ("/encoded", "gzip", false),
        ("/png", "gzip", false),
    ] {
        let (encoding, v, body) = fetch(&t, reqwest::Method::GET, path, accept).await;
        if path == "/encoded" {
            assert_eq!(encoding.as_deref(), Some("identity-ish"));
        } else {
            assert_eq!(encoding, None, "{path} {accept}");
        }
        assert_eq!(v.is_some(), vary, "{path} {accept}");
        let expected = if path == "/small" {
            "{\"a\":1}".to_string()
        } else {
            big()
        };
        assert_eq!(body, expected.as_bytes(), "{path} {accept}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_has_the_headers_of_get_and_no_body() {
    let t = server();
    let (encoding, vary, body) = fetch(&t, reqwest::Method::HEAD, "/big", "gzip").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(vary.as_deref(), Some("accept-encoding"));
    assert!(body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_is_off_by_default() {
    let t = start(APP);
    let (encoding, vary, body) = fetch(&t, reqwest::Method::GET, "/big", "gzip, br").await;
    assert_eq!((encoding, vary), (None, None));
    assert_eq!(body, big().as_bytes());
}
