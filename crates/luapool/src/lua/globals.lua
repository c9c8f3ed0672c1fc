-- globals.lua: the `__newindex` of the shared metatable of sandboxed executions' global
-- tables: the first assignment to a base name gives that one environment a metatable of
-- its own, whose shadow table holds the base names the execution assigned (a removed one
-- as a marker), read before the base. See `sandbox/globals.rs`, which loads it.
--
-- ...: base (the sandbox's base table), lazy (set of the names the base may provide on
--   first use), setmetatable_raw(t, mt) (sets a metatable even over `__metatable`),
--   rawget, rawset
-- Returns: the shared metatable's __newindex(env, k, v).
local base, lazy, setmetatable_raw, rawget, rawset = ...
local REMOVED = {}
local function of_base(k)
  return rawget(base, k) ~= nil or lazy[k] ~= nil
end
-- the metatable of one environment that assigned base names
local function own_metatable(shadow)
  return {
    __index = function(_, k)
      local v = shadow[k]
      if v == nil then return base[k] end
      if v == REMOVED then return nil end
      return v
    end,
    __newindex = function(env, k, v)
      if not of_base(k) then return rawset(env, k, v) end
      if v == nil then v = REMOVED end
      shadow[k] = v
    end,
    __metatable = false,
  }
end
-- the shared metatable's __newindex: a new global, or the first assignment to a base name
return function(env, k, v)
  if not of_base(k) then return rawset(env, k, v) end
  if v == nil then v = REMOVED end
  setmetatable_raw(env, own_metatable({ [k] = v }))
end
