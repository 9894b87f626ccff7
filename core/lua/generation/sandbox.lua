-- Environments for consultant files (assessment scripts, KB Lua files, specs).
--
-- The generation's lua_State is already an allow-list sandbox (the C host removed
-- io, debug, package, ...). Inside it we still give every loaded file its own
-- environment table, built from that allow-list, so that one file's globals never
-- leak into another's and a script that replaces string.format replaces its own
-- copy only. Data shared between files (the questionnaire model, the KB) is handed
-- out as read-only views.
local problems = GEN_MODULE("problems")

local sandbox = {}

local BASE_FUNCTIONS = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "rawequal",
  "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable",
  "tonumber", "tostring", "type", "print", "load",
}
local LIBRARIES = { "string", "table", "math", "utf8" }

-- The strings' metatable indexes the real `string` table; lock it so a script
-- cannot reach that table through getmetatable("") and change it for everyone.
do
  local string_meta = getmetatable("")
  if type(string_meta) == "table" and rawget(string_meta, "__metatable") == nil then
    string_meta.__metatable = "locked"
  end
end

local function copy_shallow(t)
  local c = {}
  for k, v in pairs(t) do
    c[k] = v
  end
  return c
end

-- A fresh environment holding only the allowed globals, plus `extra` fields.
function sandbox.env(extra)
  local env = {}
  for _, name in ipairs(BASE_FUNCTIONS) do
    env[name] = _ENV[name]
  end
  for _, name in ipairs(LIBRARIES) do
    if _ENV[name] then
      env[name] = copy_shallow(_ENV[name])
    end
  end
  if os then
    env.os = { time = os.time, date = os.date, clock = os.clock }
  end
  env._G = env
  if extra then
    for k, v in pairs(extra) do
      env[k] = v
    end
  end
  return env
end

-- A deep copy of plain data (no cycles expected; functions are kept as they are).
function sandbox.copy(value)
  if type(value) ~= "table" then
    return value
  end
  local c = {}
  for k, v in pairs(value) do
    c[k] = sandbox.copy(v)
  end
  return c
end

-- Read-only views: a proxy per table, made on first use and cached, so reading
-- through a view is cheap and `view.a == view.a`. ipairs, #, pairs and
-- table.concat work on a view; assignment raises an error at the caller's line.
local views = setmetatable({}, { __mode = "k" })

function sandbox.readonly(t)
  if type(t) ~= "table" then
    return t
  end
  local view = views[t]
  if view then
    return view
  end
  view = setmetatable({}, {
    __index = function(_, k)
      return sandbox.readonly(t[k])
    end,
    __newindex = function(_, k)
      error(string.format("cannot change field %s: this table is read-only", problems.show(k)), 2)
    end,
    __len = function()
      return #t
    end,
    __pairs = function()
      return function(_, k)
        local nk, nv = next(t, k)
        return nk, sandbox.readonly(nv)
      end, view, nil
    end,
    __metatable = "read-only",
  })
  views[t] = view
  return view
end

-- Loads one text chunk with its own environment. Returns the function, or nil
-- and the compiler's "file:line: message".
function sandbox.load(text, path, env)
  return load(text, "@" .. path, "t", env)
end

local MODULE_NAME = "^[%w_%-]+$"

-- require(name) for the files of one folder.
--   folder  "scripts/o2c" (as the user sees it)
--   files   map path -> text
--   cache   map path -> module value (shared with whoever loaded the main files)
--   env_for function(path) -> a fresh environment for that module
--   lib_of  optional function() -> the engine library (library.lua), passed to
--           each module as its first argument (`local lib = ...`), the name second
-- `require "scoring"` loads folder/scoring.lua; `require "lib.format"` loads
-- folder/lib/format.lua. A name that starts with "/" or contains ".." is refused,
-- with the error at the line of the require call.
function sandbox.requirer(folder, files, cache, env_for, lib_of)
  local loading = {}
  return function(name)
    if type(name) ~= "string" or name == "" then
      error(string.format("require expects a module name such as \"scoring\" (got %s)",
        problems.show(name)), 2)
    end
    if name:sub(1, 1) == "/" or name:sub(1, 1) == "." or name:find("..", 1, true)
        or name:find("\\", 1, true) then
      error(string.format("require %q: only files inside %s/ can be required; use a name like \"scoring\" (no '/', '.' or '..' prefixes)",
        name, folder), 2)
    end
    local relative = name:gsub("%.lua$", ""):gsub("%.", "/")
    for segment in relative:gmatch("[^/]+") do
      if not segment:match(MODULE_NAME) then
        error(string.format("require %q: %q is not a valid module name (letters, digits, '_' and '-')",
          name, segment), 2)
      end
    end
    local path = folder .. "/" .. relative .. ".lua"
    if cache[path] ~= nil then
      return cache[path]
    end
    if loading[path] then
      error(string.format("require %q: %s requires itself through a cycle of requires", name, path), 2)
    end
    local text = files[path]
    if not text then
      error(string.format("require %q: no file %s", name, path), 2)
    end
    local chunk, message = sandbox.load(text, path, env_for(path))
    if not chunk then
      error(message, 0)
    end
    loading[path] = true
    local ok, result = pcall(chunk, lib_of and lib_of() or nil, name)
    loading[path] = nil
    if not ok then
      error(result, 0)
    end
    if result == nil then
      result = true
    end
    cache[path] = result
    return result
  end
end

return sandbox
