//! Host copies of handler data (issues 11 and 12): a reply, `json.encode` or a shared
//! dictionary cannot make the server copy more than a handler's memory limit; the request
//! fails with `500` and the server keeps serving.

use crate::{get, start_with, test_config};

/// One worker with the issue's `64MiB` memory limit, in dev mode (errors in bodies).
fn config() -> luapool_http::ServerConfig {
    let mut c = test_config();
    c.memory_limit = Some(64 << 20);
    c.dev = true;
    c.shared_dicts.insert("cache".to_string(), 100_000);
    c
}

const APP: &str = r#"
local json = require("json")
function handle(req)
  if req.path == "/ok" then return "fine" end
  local s = string.rep("x", 30000000)
  local t = {}
  for i = 1, 1000 do t[i] = s end
  if req.path == "/json" then return json.encode(t) end
  if req.path == "/headers" then return { headers = { ["x-big"] = t }, body = "" } end
  if req.path == "/body-and-header" then
    return { headers = { ["x-a"] = s, ["x-b"] = s }, body = s }
  end
  if req.path == "/dict" then
    local v = string.rep("d", 1024 * 1024 - 200)
    local stored = 0
    for i = 1, 1000 do if shared.cache:set("k" .. i, v) then stored = stored + 1 end end
    local ok, err = shared.cache:set("huge", s)
    return json.encode({ stored = stored, kept = #shared.cache:keys(0), huge = ok, err = err })
  end
  return 404, "no"
end
"#;

#[tokio::test]
async fn an_amplified_reply_is_a_500_and_the_server_survives() {
    let t = start_with(APP, &[], config());
    for path in ["/json", "/headers", "/body-and-header"] {
        let (status, body) = get(&t.url(path)).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.contains("host copy limit exceeded"), "{path}: {body}");
        assert_eq!(get(&t.url("/ok")).await, (200, "fine".to_string()));
    }
}

#[tokio::test]
async fn a_dictionary_keeps_within_its_default_byte_capacity() {
    let t = start_with(APP, &[], config());
    let (status, body) = get(&t.url("/dict")).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["stored"], 1000);
    // 64 MiB (luapool::DEFAULT_MAX_BYTES) of ~1 MiB entries.
    let kept = v["kept"].as_u64().unwrap();
    assert!((32..=64).contains(&kept), "{v}");
    assert_eq!(v["huge"], false);
    assert_eq!(v["err"], "too large");
}
