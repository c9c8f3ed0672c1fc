//! The built-in modules of handlers written in Lua: `luapool.router` (routes and
//! middleware) and `luapool.response` (redirects, cookies). Their sources are under
//! `src/lua/`; each worker VM runs them once, and `require` returns the same sealed table
//! to every request (see [`luapool::Vm::register_lua_module`]).

use std::sync::OnceLock;

use luapool::{Script, Vm};

/// The modules: `require` name, script name (in error positions), source.
const MODULES: [(&str, &str, &str); 2] = [
    (
        "luapool.router",
        "luapool/router.lua",
        include_str!("lua/router.lua"),
    ),
    (
        "luapool.response",
        "luapool/response.lua",
        include_str!("lua/response.lua"),
    ),
];

/// Registers the modules on `vm`.
pub(crate) fn register(vm: &Vm) -> luapool::Result<()> {
    static SCRIPTS: OnceLock<Vec<(&'static str, Script)>> = OnceLock::new();
    let scripts = SCRIPTS.get_or_init(|| {
        MODULES
            .iter()
            .map(|&(name, file, source)| (name, Script::new(file, source)))
            .collect()
    });
    for (name, script) in scripts {
        vm.register_lua_module(name, script)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use luapool::{Script, Vm, VmConfig};

    fn vm() -> Vm {
        let vm = Vm::new(VmConfig::default()).unwrap();
        super::register(&vm).unwrap();
        vm
    }

    fn run(vm: &Vm, source: &str) {
        if let Err(e) = vm.exec(&Script::new("test.lua", source)) {
            panic!("{e}");
        }
    }

    fn fails(vm: &Vm, source: &str) -> String {
        vm.exec(&Script::new("test.lua", source))
            .expect_err(source)
            .to_string()
    }

    #[test]
    fn cookies() {
        let vm = vm();
        run(
            &vm,
            r#"local cookie = require("luapool.response").cookie
            assert(cookie("a", "1") == "a=1")
            assert(cookie("a", "") == "a=")
            local full = cookie("sid", "x.y-z", { path = "/app", domain = "example.com",
              max_age = 3600, expires = 0, http_only = true, secure = true, same_site = "strict" })
            assert(full == "sid=x.y-z; Path=/app; Domain=example.com; Max-Age=3600; " ..
              "Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict", full)
            assert(cookie("a", "b", { expires = "Wed, 21 Oct 2015 07:28:00 GMT" }) ==
              "a=b; Expires=Wed, 21 Oct 2015 07:28:00 GMT")
            for _, bad in ipairs({ "a b", "a;b", "a,b", 'a"b', "a\\b", "a\r\nSet-Cookie: x=1", "\127" }) do
              assert(not pcall(cookie, "n", bad), bad)
            end
            for _, bad in ipairs({ "", "a b", "a=b", "a;b", "a\n", "a(b)" }) do
              assert(not pcall(cookie, bad, "v"), bad)
            end
            assert(not pcall(cookie, "a", "b", { path = "/x\r\nevil" }))
            assert(not pcall(cookie, "a", "b", { path = "/x; Domain=evil" }))
            assert(not pcall(cookie, "a", "b", { maxAge = 1 }))
            assert(not pcall(cookie, "a", "b", { max_age = 1.5 }))
            assert(not pcall(cookie, "a", "b", { same_site = "sometimes" }))"#,
        );
    }

    #[test]
    fn redirects() {
        let vm = vm();
        run(
            &vm,
            r#"local redirect = require("luapool.response").redirect
            local r = redirect("/x")
            assert(r.status == 302 and r.headers.location == "/x" and r.body == "")
            for _, s in ipairs({ 301, 303, 307, 308 }) do assert(redirect("/x", s).status == s) end
            assert(not pcall(redirect, "/x", 200))
            assert(not pcall(redirect, "/x\r\nSet-Cookie: a=1"))
            assert(not pcall(redirect, ""))"#,
        );
    }

    #[test]
    fn the_modules_are_read_only_and_not_globals() {
        let vm = vm();
        let e = fails(&vm, "require('luapool.router').new = nil");
        assert!(
            e.contains("read-only") || e.contains("luapool.router"),
            "{e}"
        );
        run(
            &vm,
            r#"assert(_G["luapool.router"] == nil)
            local app = require("luapool.router").new()
            assert(getmetatable(app) == false)"#,
        );
    }

    /// Different route lists on one VM, as apps that build their routes conditionally
    /// make: each dispatches on its own routes.
    #[test]
    fn different_route_lists_share_the_cache_correctly() {
        let vm = vm();
        let source = r#"local router = require("luapool.router")
            local function req(method, path) return { method = method, path = path, headers = {} } end
            local function body(r) if type(r) == "table" then return r.status end return r end
            for round = 1, 3 do
              local a = router.new()
              a:get("/x/:id", function(_, p) return "a" .. p.id end)
              a:get("/y", function() return "ay" end)
              local b = router.new()
              b:get("/x/:id", function(_, p) return "b" .. p.id end)
              b:post("/y", function() return "by" end)
              local c = router.new()
              c:get("/y", function() return "cy" end)
              assert(a:dispatch(req("GET", "/x/1")) == "a1")
              assert(b:dispatch(req("GET", "/x/2")) == "b2")
              assert(a:dispatch(req("GET", "/y")) == "ay")
              assert(body(b:dispatch(req("GET", "/y"))) == 405)
              assert(b:dispatch(req("POST", "/y")) == "by")
              assert(c:dispatch(req("GET", "/y")) == "cy")
              assert(body(c:dispatch(req("GET", "/x/1"))) == 404)
              assert(body(router.new():dispatch(req("GET", "/"))) == 404)
            end
            -- wildcards after parameters, first registered wins among parameters
            local d = router.new()
            d:get("/*all", function(_, p) return "all " .. p.all end)
            d:get("/:a/:b", function(_, p) return p.a .. "+" .. p.b end)
            d:get("/:x/:y", function() return "never" end)
            assert(d:dispatch(req("GET", "/1/2")) == "1+2")
            assert(d:dispatch(req("GET", "/1/2/3")) == "all 1/2/3")
            assert(d:dispatch(req("GET", "/")) == "all ")
            -- pattern characters in paths are literal
            local e = router.new()
            e:get("/a.b/(x)%/:id", function(_, p) return p.id end)
            assert(e:dispatch(req("GET", "/a.b/(x)%/7")) == "7")
            assert(body(e:dispatch(req("GET", "/aXb/(x)%/7"))) == 404)"#;
        run(&vm, source);
    }

    /// More routes than a new router has room for, and parameters decoded whether or not
    /// the request has a `raw_path`.
    #[test]
    fn many_routes_and_decoded_parameters() {
        let vm = vm();
        let source = r#"local router = require("luapool.router")
            for round = 1, 3 do
              local app = router.new()
              for i = 1, 40 do
                app:get("/r" .. i .. "/:id", function(_, p) return i .. ":" .. p.id end)
              end
              app:post("/r1/:id", function(_, p) return "post " .. p.id end)
              for i = 1, 40 do
                local r = app:dispatch({ method = "GET", path = "/r" .. i .. "/x" })
                assert(r == i .. ":x", r)
              end
              assert(app:dispatch({ method = "POST", path = "/r1/y" }) == "post y")
              assert(app:dispatch({ method = "GET", path = "/r2/a%20b" }) == "2:a b")
              assert(app:dispatch({ method = "GET", path = "/r2/a b", raw_path = "/r2/a%20b" })
                == "2:a b")
              assert(app:dispatch({ method = "GET", path = "/r2/a%zz", raw_path = "/r2/a%zz" })
                == "2:a%zz")
              assert(app:dispatch({ method = "GET", path = "/r2/%41", raw_path = "/r2/%2541" })
                == "2:%41")
            end"#;
        run(&vm, source);
    }

    #[test]
    fn bad_routes_are_errors_at_the_caller() {
        let vm = vm();
        for (code, needle) in [
            ("app:get('x', f)", "starting with '/'"),
            ("app:get('/a/:', f)", "needs a name"),
            ("app:get('/*r/x', f)", "last segment"),
            ("app:get('/:a/:a', f)", "twice"),
            ("app:get('/a')", "must be a function"),
            (
                "app:get('/a', 1) app:dispatch({ method = 'GET', path = '/a' })",
                "route GET /a is a number",
            ),
            ("app:route('BAD METHOD', '/a', f)", "method"),
            ("app.get('/a', f)", "colon"),
            ("app.get({}, '/a', f)", "colon"),
            ("app.get({ {} }, '/a', f)", "colon"),
            ("app:use('x')", "middleware"),
        ] {
            let e = fails(
                &vm,
                &format!(
                    "local app = require('luapool.router').new() local f = function() end\n{code}"
                ),
            );
            assert!(
                e.contains(needle) && e.contains("test.lua:2"),
                "{code}: {e}"
            );
        }
    }
}
