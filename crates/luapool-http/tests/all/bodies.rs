//! Reply bodies beyond one string: a list of chunks, and a file read as it is sent.

use crate::{client, start_with, test_config};

const APP: &str = r#"
    function handle(req)
      if req.path == "/chunks" then
        return { headers = { ["x-n"] = "3" }, body = { "a", "bc", "def" } }
      elseif req.path == "/file" then
        return { file = "files/" .. req.query.name,
                 headers = { ["content-disposition"] = "attachment" } }
      elseif req.path == "/raw" then
        return { file = req.query.path }
      elseif req.path == "/created" then
        return { status = 201, file = "files/data.json" }
      end
      return 404, "no"
    end"#;

fn serve() -> crate::TestServer {
    let big: String = (0..200_000).map(|i| format!("{i:08}\n")).collect();
    let t = start_with(APP, &[], test_config());
    let files = t.dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("big.csv"), &big).unwrap();
    std::fs::write(files.join("data.json"), "{\"a\":1}").unwrap();
    std::fs::write(
        t.dir.path().join("secret.txt"),
        "not under files/ but inside the app",
    )
    .unwrap();
    // A link to a file outside the app's directory.
    std::os::unix::fs::symlink("/etc/passwd", files.join("link.txt")).unwrap();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_chunks_is_sent_whole_with_its_length() {
    let t = serve();
    let r = client().get(t.url("/chunks")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "6");
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "abcdef");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_reply_streams_the_file_with_a_guessed_type_and_the_handlers_headers() {
    let t = serve();
    let expected = std::fs::read(t.dir.path().join("files/big.csv")).unwrap();
    let r = client()
        .get(t.url("/file?name=big.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv");
    assert_eq!(r.headers()["content-disposition"], "attachment");
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        expected.len().to_string()
    );
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), &expected[..]);
    // The handler's status stands.
    let r = client().get(t.url("/created")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "{\"a\":1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_reply_cannot_leave_the_apps_directory() {
    let t = serve();
    let status = |path: String| {
        let url = t.url(&path);
        async move { client().get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/file?name=missing.txt".into()).await, 404);
    assert_eq!(status("/raw?path=secret.txt".into()).await, 200);
    for bad in [
        "/etc/passwd",
        "../app.lua",
        "files/../../x",
        "",
        "files/link.txt",
    ] {
        let path = format!("/raw?path={}", luapool_url_encode(bad));
        assert_eq!(status(path).await, 500, "{bad}");
    }
}

fn luapool_url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
