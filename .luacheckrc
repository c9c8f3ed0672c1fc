-- luacheck configuration (luacheck is not run by CI): `luacheck crates/luapool/src/lua`.
-- luapool's own Lua helpers run on LuaJIT, Lua 5.4 and 5.5: only the globals all of them
-- have (the helpers read `_VERSION`, and take everything else as parameters).
files["crates/luapool/src/lua"] = { std = "min" }
