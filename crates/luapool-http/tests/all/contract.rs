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
    assert_eq!(v["query"]["x"], "1");
    assert_eq!(v["query"]["y"], " two");
    assert_eq!(v["query"]["flag"], "");
    assert_eq!(v["agent"], "yes");
    assert_eq!(v["multi"], "1");
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

/// The app of the request tests below: `handle` returns `json.encode(f(req))` for the
/// `f` given.
fn echo(f: &str) -> String {
    format!(
        r#"local json = require("json")
           local f = {f}
           function handle(req) return json.encode(f(req)) end"#
    )
}

/// POSTs `body` with `content_type` to `path` and returns the reply's JSON.
async fn post_json(
    t: &crate::TestServer,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> serde_json::Value {
    let r = client()
        .post(t.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn path_is_decoded_and_raw_path_and_raw_query_are_as_sent() {
    let t = start(&echo(
        "function(req) return { path = req.path:find('\\255') and 'binary' or req.path, \
         raw = req.raw_path, q = req.raw_query, n = #req.path, b = req.path:byte(-1) } end",
    ));
    let v = post_json(&t, "/a%20b/c%2Fd/%FF?x=1&y=%20", "text/plain", "").await;
    // "%FF" decodes to one byte that is not UTF-8 (which json.encode refuses): the
    // handler reports its length and value.
    assert_eq!(v["path"], "binary");
    assert_eq!(v["raw"], "/a%20b/c%2Fd/%FF");
    assert_eq!(v["q"], "x=1&y=%20");
    assert_eq!(v["n"], 10);
    assert_eq!(v["b"], 255);
    let v = post_json(&t, "/plain+plus%C3%A9", "text/plain", "").await;
    assert_eq!(v["path"], "/plain+plusé");
    assert_eq!(v["q"], "");
}

#[tokio::test]
async fn repeated_query_keys_and_headers_give_their_first_value_and_all_values() {
    let t = start(&echo(
        "function(req) return { x = req.query.x, xs = req:query_all('x'), none = #req:query_all('z'), \
         h = req.headers['x-multi'], hs = req:header_all('X-Multi'), one = req:header_all('x-one'), \
         y = req:query_all('y') } end",
    ));
    let r = client()
        .get(t.url("/?x=1&y=a+b&x=2&x=%33"))
        .header("x-multi", "a")
        .header("x-multi", "b")
        .header("x-one", "only")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["x"], "1");
    assert_eq!(v["xs"], serde_json::json!(["1", "2", "3"]));
    assert_eq!(v["none"], 0);
    assert_eq!(v["y"], serde_json::json!(["a b"]));
    assert_eq!(v["h"], "a");
    assert_eq!(v["hs"], serde_json::json!(["a", "b"]));
    assert_eq!(v["one"], serde_json::json!(["only"]));
}

#[tokio::test]
async fn cookies_are_parsed_first_wins_quotes_removed() {
    let t = start(&echo("function(req) return req.cookies end"));
    let r = client()
        .get(t.url("/"))
        .header("cookie", "sid=abc; theme=\"dark\"; sid=other")
        .header("cookie", "lang = en ;broken; e=")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({ "sid": "abc", "theme": "dark", "lang": "en", "e": "" })
    );
    // No cookie header: an empty table.
    let (_, body) = get(&t.url("/")).await;
    assert_eq!(body, "{}");
}

#[tokio::test]
async fn an_urlencoded_form_is_decoded_as_the_query() {
    let t = start(&echo(
        "function(req) local f, err = req:form() return { f = f, err = err } end",
    ));
    let v = post_json(
        &t,
        "/",
        "application/x-www-form-urlencoded; charset=utf-8",
        "name=J%C3%BCrgen+Q&tag=a&tag=b&empty",
    )
    .await;
    assert_eq!(
        v["f"],
        serde_json::json!({ "name": "Jürgen Q", "tag": "a", "empty": "" })
    );
    let v = post_json(&t, "/", "text/plain", "a=1").await;
    assert!(v["err"].as_str().unwrap().starts_with("req:form: "), "{v}");
}

#[tokio::test]
async fn a_multipart_form_has_fields_and_files() {
    let t = start(&echo(
        "function(req) local f, err = req:form() \
         if not f then return { err = err } end \
         return { title = f.title, name = f.upload.filename, type = f.upload.content_type, \
                  size = #f.upload.data, first = f.upload.data:byte(1), last = f.upload.data:byte(-1) } end",
    ));
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello world\r\n\
          --XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.bin\"\r\n\
          Content-Type: application/octet-stream\r\n\r\n",
    );
    body.extend_from_slice(b"\x00\xff\r\n--\xfe");
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let v = post_json(&t, "/", "multipart/form-data; boundary=XyZ", body).await;
    assert_eq!(
        v,
        serde_json::json!({ "title": "Hello world", "name": "a.bin",
            "type": "application/octet-stream", "size": 7, "first": 0, "last": 254 })
    );
    // A bad body: nil and a message.
    let v = post_json(&t, "/", "multipart/form-data; boundary=XyZ", "garbage").await;
    assert!(v["err"].as_str().unwrap().starts_with("req:form: "), "{v}");
    let v = post_json(&t, "/", "multipart/form-data", "--x--").await;
    assert!(v["err"].as_str().unwrap().starts_with("req:form: "), "{v}");
}

#[tokio::test]
async fn too_many_multipart_parts_are_refused() {
    let t = start(&echo(
        "function(req) local f, err = req:form() return { ok = f ~= nil, err = err } end",
    ));
    let mut body = String::new();
    for i in 0..1001 {
        body.push_str(&format!(
            "--b\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n"
        ));
    }
    body.push_str("--b--\r\n");
    let v = post_json(&t, "/", "multipart/form-data; boundary=b", body).await;
    assert_eq!(v["ok"], false);
    assert!(v["err"].as_str().unwrap().contains("1000"), "{v}");
}

#[tokio::test]
async fn json_bodies_decode_or_give_nil_and_a_message() {
    let t = start(&echo(
        "function(req) local v, err = req:json() \
         return { v = v, err = err, null = v and v.n == json.null } end",
    ));
    let v = post_json(
        &t,
        "/",
        "application/json",
        r#"{"a":[1,2],"s":"x","n":null}"#,
    )
    .await;
    assert_eq!(
        v["v"],
        serde_json::json!({ "a": [1, 2], "s": "x", "n": null })
    );
    assert_eq!(v["null"], true);
    let v = post_json(&t, "/", "application/json", "{oops").await;
    assert!(v["v"].is_null());
    assert!(v["err"].as_str().unwrap().starts_with("req:json: "), "{v}");
}

#[tokio::test]
async fn non_utf8_bytes_are_kept_in_query_path_and_headers() {
    let t = start(
        r#"function handle(req)
             local q = req.query.a
             local h = req.headers["x-bin"]
             return string.format("%d %d %d %d %s", #q, q:byte(1), #h, h:byte(1),
                                  req.path == "/\xfe" and "path" or "no")
           end"#,
    );
    let r = client()
        .get(t.url("/%FE?a=%FF%00"))
        .header(
            "x-bin",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "2 255 2 255 path");
}

#[tokio::test]
async fn req_is_a_plain_table_with_a_hidden_shared_metatable() {
    let t = start(
        r#"function handle(req)
             req.path = "changed"; req.extra = 1
             local mt = getmetatable(req)
             local function count() local n = 0 for _ in pairs(req) do n = n + 1 end return n end
             local before = count()
             -- query and cookies are made on first read, then kept as fields.
             local q, c = req.query, req.cookies
             local same = q == req.query and c == req.cookies
             return tostring(mt) .. " " .. req.path .. " " .. type(req.json) .. " " .. before
                    .. " " .. count() .. " " .. tostring(same) .. " " .. tostring(req.nothing)
           end"#,
    );
    let (_, body) = get(&t.url("/")).await;
    assert_eq!(body, "false changed function 9 11 true nil");
}
