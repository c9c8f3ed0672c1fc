//! Host copies of handler data (issues 11 and 12): a reply, `json.encode` or a shared
//! dictionary cannot make the server copy more than a handler's memory limit; the request
//! fails with `500` and the server keeps serving.

use crate::{get, start_with, test_config};

/// One worker with the issue's `64MiB` memory limit, in dev mode (errors in bodies).
fn config() -> luapool_http::ServerConfig {
    let mut c = test_config();
    c.vm = c.vm.with_memory_limit(64 << 20);
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
    // 64 MiB (luapool::SharedDictConfig::DEFAULT_MAX_BYTES) of ~1 MiB entries.
    let kept = v["kept"].as_u64().unwrap();
    assert!((32..=64).contains(&kept), "{v}");
    assert_eq!(v["huge"], false);
    assert_eq!(v["err"], "too large");
}

/// Issue 15: no host function panics on bad script input (a panic would be reported as
/// `host function panicked` and poison the VM).
#[tokio::test]
async fn bad_http_request_arguments_never_panic() {
    let app = r#"
      local json = require("json")
      local down = "http://127.0.0.1:1/"
      local cases = {
        { url = down, timeout = math.maxinteger }, { url = down, timeout = 0 / 0 },
        { url = down, method = "GE T" }, { url = down, headers = { ["bad name"] = "x\n" } },
        { url = ":::" }, { url = "http://[::1" }, { url = "file:///etc/passwd" },
        { url = down, body = 1 }, { url = down, headers = "x" }, { url = "\255" }, 42,
      }
      function handle(req)
        local out = {}
        for i, case in ipairs(cases) do
          local ok, r, err = pcall(http.request, case)
          out[i] = tostring(ok) .. " " .. tostring(r) .. " " .. tostring(err)
        end
        return json.encode(out)
      end
    "#;
    let t = start_with(app, &[], config());
    let (status, body) = get(&t.url("/")).await;
    assert_eq!(status, 200, "{body}");
    let results: Vec<String> = serde_json::from_str(&body).unwrap();
    assert_eq!(results.len(), 11);
    for r in &results {
        assert!(!r.contains("panicked"), "{results:?}");
    }
    // Each failed as an error the script can see, never as a reply.
    assert!(
        results
            .iter()
            .all(|r| r.contains("nil") || r.starts_with("false")),
        "{results:?}"
    );
    let metrics = t.server().metrics();
    assert!(!metrics.contains("kind=\"poisoned\""), "{metrics}");
}
