//! The handler contract: what `req` holds and the reply shapes.

use crate::{client, get, start};

#[tokio::test]
async fn a_body_string_is_200_text_plain() {
    let t = start("function handle(req) return 'hi' end");
    let r = client().get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "hi");
}

#[tokio::test]
async fn status_and_body() {
    let t = start("function handle(req) return 418, 'teapot' end");
    assert_eq!(get(&t.url("/")).await, (418, "teapot".to_string()));
}

#[tokio::test]
async fn a_table_reply_sets_status_headers_and_body() {
    let t = start(
        r#"function handle(req)
             return { status = 201,
                      headers = { ["content-type"] = "application/json", ["set-cookie"] = { "a=1", "b=2" } },
                      body = '{"ok":true}' }
           end"#,
    );
    let r = client().get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);
}

#[tokio::test]
async fn the_request_table() {
    let t = start(
        r#"local json = require("json")
           function handle(req)
             return json.encode({
               method = req.method, path = req.path, query = req.query,
               agent = req.headers["x-test"], multi = req.headers["x-multi"],
               body = req.body, remote = req.remote_addr, id = req.id })
           end"#,
    );
    let r = client()
        .post(t.url("/a/b?x=1&y=%20two&x=3&flag"))
        .header("X-Test", "yes")
        .header("x-multi", "1")
        .header("x-multi", "2")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/a/b");
    assert_eq!(v["query"]["x"], serde_json::json!(["1", "3"]));
    assert_eq!(v["query"]["y"], " two");
    assert_eq!(v["query"]["flag"], "");
    assert_eq!(v["agent"], "yes");
    assert_eq!(v["multi"], serde_json::json!(["1", "2"]));
    assert_eq!(v["body"], "payload");
    assert!(
        v["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{v}"
    );
    assert!(!v["id"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn request_ids_are_unique() {
    let t = start("function handle(req) return req.id end");
    let mut ids = std::collections::HashSet::new();
    for _ in 0..50 {
        let (status, id) = get(&t.url("/")).await;
        assert_eq!(status, 200);
        assert!(ids.insert(id));
    }
}

#[tokio::test]
async fn http2_cleartext_and_keep_alive() {
    let t = start("function handle(req) return 'h' end");
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = h2.get(t.url("/")).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.text().await.unwrap(), "h");
    }
    let h1 = client();
    for _ in 0..3 {
        let r = h1.get(t.url("/")).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_11);
        assert_eq!(r.text().await.unwrap(), "h");
    }
}
