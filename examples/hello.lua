-- luapool run examples/hello.lua [NAME]
-- A sandboxed script: print, the host library (json, sleep, log) and a module.
local greet = require("greet")          -- examples/greet.lua, loaded once per VM

local name = arg[1] or "world"
print(greet.hello(name))

local doc = json.decode('{"langs": ["lua", "rust"], "fast": true}')
print("json:", json.encode(doc.langs), doc.fast)

sleep(0.01)                              -- async: the thread is free meanwhile
log.info("slept 10 ms")

print("io is", io, "- the sandbox has no io")
return #doc.langs
