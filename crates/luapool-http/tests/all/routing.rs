//! `luapool.router` and `luapool.response` against a real server, and bodiless statuses.

use crate::{client, get, start};

const APP: &str = r#"
local router = require("luapool.router")
local response = require("luapool.response")
local app = router.new()
local trail = {}
app:use(function(req, next)
  trail[#trail + 1] = "a>"
  if req.headers["x-deny"] then return 403, "denied" end
  local res = next()
  trail[#trail + 1] = "<a"
  res.headers["x-trail"] = table.concat(trail, " ")
  return res
end)
app:use(function(req, next)
  trail[#trail + 1] = "b>"
  local res = next()
  trail[#trail + 1] = "<b"
  return res
end)
app:get("/", function(req) trail[#trail + 1] = "h" return "home" end)
app:get("/users/:id", function(req, p) return "user " .. p.id end)
app:put("/users/:id", function(req, p) return 200, "put " .. p.id end)
app:get("/users/new", function(req) return "new form" end)
app:get("/files/:dir/:name", function(req, p) return p.dir .. "|" .. p.name end)
app:get("/static/*rest", function(req, p) return "static [" .. p.rest .. "]" end)
app:post("/users", function(req) return { status = 201, body = "created" } end)
app:any("/any", function(req) return "any " .. req.method end)
app:route("options", "/users", function(req) return 204 end)
app:get("/leak", function(req)
  leaked = (leaked or 0) + 1
  return tostring(leaked)
end)
app:get("/go", function(req) return response.redirect("/users/1") end)
app:get("/moved", function(req) return response.redirect("https://example.com/", 301) end)
app:get("/cookie", function(req)
  return { headers = { ["set-cookie"] = response.cookie("sid", "abc", { path = "/", http_only = true, same_site = "lax" }) } }
end)
app:get("/nothing", function(req) return 204, "dropped" end)
app:get("/same", function(req) return { status = 304, headers = { etag = '"v1"' }, body = "dropped" } end)
handle = app:handler()
"#;

async fn fetch(
    c: &reqwest::Client,
    method: &str,
    url: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = c
        .request(method.parse().unwrap(), url)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn routes_match_with_parameters_and_wildcards() {
    let t = start(APP);
    let c = client();
    for (method, path, status, body) in [
        ("GET", "/", 200, "home"),
        ("GET", "/users/42", 200, "user 42"),
        ("PUT", "/users/7", 200, "put 7"),
        // a static route beats a parameter, whatever the order
        ("GET", "/users/new", 200, "new form"),
        // parameters are percent-decoded
        ("GET", "/users/a%20b%2Fc", 200, "user a b/c"),
        ("GET", "/files/x/y.txt", 200, "x|y.txt"),
        ("GET", "/static/css/site.css", 200, "static [css/site.css]"),
        ("GET", "/static/", 200, "static []"),
        ("POST", "/users", 201, "created"),
        ("DELETE", "/any", 200, "any DELETE"),
        ("GET", "/users/42?x=1", 200, "user 42"),
    ] {
        let (s, _, b) = fetch(&c, method, &t.url(path)).await;
        assert_eq!((s, b.as_str()), (status, body), "{method} {path}");
    }
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let t = start(APP);
    let c = client();
    for path in ["/nope", "/users/42/more", "/users/", "/static", "/files/x"] {
        let (s, h, _) = fetch(&c, "GET", &t.url(path)).await;
        assert_eq!(s, 404, "{path}");
        // the 404 went through the middleware too
        assert!(h.contains_key("x-trail"), "{path}");
    }
    let (s, h, _) = fetch(&c, "DELETE", &t.url("/users/42")).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "GET, HEAD, PUT");
    let (s, h, _) = fetch(&c, "GET", &t.url("/users")).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "OPTIONS, POST");
    // route("options", ...) upper-cases the method
    let (s, _, b) = fetch(&c, "OPTIONS", &t.url("/users")).await;
    assert_eq!((s, b.as_str()), (204, ""));
}

#[tokio::test]
async fn head_falls_back_to_get() {
    let t = start(APP);
    let (s, h, b) = fetch(&client(), "HEAD", &t.url("/users/9")).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-length"], "6");
    assert_eq!(b, "");
}

#[tokio::test]
async fn middleware_runs_in_order_around_the_route_and_can_short_circuit() {
    let t = start(APP);
    let c = client();
    let (s, h, b) = fetch(&c, "GET", &t.url("/")).await;
    assert_eq!((s, b.as_str()), (200, "home"));
    assert_eq!(h["x-trail"], "a> b> h <b <a");
    let r = c
        .get(t.url("/"))
        .header("x-deny", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.headers().contains_key("x-trail"));
    assert_eq!(r.text().await.unwrap(), "denied");
}

#[tokio::test]
async fn route_handlers_share_nothing_between_requests() {
    let t = start(APP);
    for _ in 0..5 {
        assert_eq!(get(&t.url("/leak")).await, (200, "1".to_string()));
        // the middleware's trail is per request too
        let (_, h, _) = fetch(&client(), "GET", &t.url("/")).await;
        assert_eq!(h["x-trail"], "a> b> h <b <a");
    }
}

#[tokio::test]
async fn redirects_and_cookies() {
    let t = start(APP);
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (s, h, _) = fetch(&c, "GET", &t.url("/go")).await;
    assert_eq!((s, &h["location"]), (302, &"/users/1".parse().unwrap()));
    let (s, h, _) = fetch(&c, "GET", &t.url("/moved")).await;
    assert_eq!(
        (s, &h["location"]),
        (301, &"https://example.com/".parse().unwrap())
    );
    let (s, h, _) = fetch(&c, "GET", &t.url("/cookie")).await;
    assert_eq!(s, 200);
    assert_eq!(h["set-cookie"], "sid=abc; Path=/; HttpOnly; SameSite=Lax");
}

#[tokio::test]
async fn replies_204_and_304_have_no_body_and_no_content_type() {
    let t = start(APP);
    let c = client();
    let (s, h, b) = fetch(&c, "GET", &t.url("/nothing")).await;
    assert_eq!((s, b.as_str()), (204, ""));
    assert!(!h.contains_key("content-type"));
    let (s, h, b) = fetch(&c, "GET", &t.url("/same")).await;
    assert_eq!((s, b.as_str()), (304, ""));
    assert!(!h.contains_key("content-type"));
    assert_eq!(h["etag"], "\"v1\"");
}

#[tokio::test]
async fn a_route_error_is_a_500() {
    let t = start(
        r#"local app = require("luapool.router").new()
           app:get("/", function(req) error("boom") end)
           function handle(req) return app:dispatch(req) end"#,
    );
    let (s, _) = get(&t.url("/")).await;
    assert_eq!(s, 500);
}

#[tokio::test]
async fn a_router_built_once_in_a_module_dispatches_every_request() {
    let routes = r#"local app = require("luapool.router").new()
        app:get("/users/:id", function(req, params) return "user " .. params.id .. " " .. req.query.x end)
        return app"#;
    let t = crate::start_with(
        r#"local app = require("routes")
           function handle(req) return app:dispatch(req) end"#,
        &[("routes.lua", routes)],
        crate::test_config(),
    );
    for i in 0..3 {
        assert_eq!(
            get(&t.url(&format!("/users/{i}?x={i}"))).await,
            (200, format!("user {i} {i}"))
        );
    }
    assert_eq!(get(&t.url("/users")).await.0, 404);
}

#[tokio::test]
async fn the_route_tree_is_out_of_the_scripts_reach() {
    // A request clears every table it can reach from its router object (the VM's route
    // tree is shared by every request); the next requests still route as declared.
    let t = start(
        r#"local router = require("luapool.router")
           local app = router.new()
           app:get("/users/:id", function(req, p) return "user " .. p.id end)
           app:get("/poke", function(req)
             local seen, queue, cleared = {}, { app }, 0
             while #queue > 0 and cleared < 10000 do
               local t = table.remove(queue)
               if not seen[t] then
                 seen[t] = true
                 local keys = {}
                 for k, v in pairs(t) do
                   keys[#keys + 1] = k
                   if type(v) == "table" then queue[#queue + 1] = v end
                 end
                 for _, k in ipairs(keys) do
                   if t ~= app and pcall(rawset, t, k, nil) then cleared = cleared + 1 end
                 end
               end
             end
             return tostring(getmetatable(app))
           end)
           handle = app:handler()"#,
    );
    assert_eq!(get(&t.url("/users/1")).await, (200, "user 1".to_string()));
    assert_eq!(get(&t.url("/poke")).await, (200, "false".to_string()));
    for i in 2..5 {
        assert_eq!(
            get(&t.url(&format!("/users/{i}"))).await,
            (200, format!("user {i}"))
        );
    }
    assert_eq!(get(&t.url("/nope")).await.0, 404);
}
