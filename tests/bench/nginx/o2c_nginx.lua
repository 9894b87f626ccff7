-- The nginx side of `make bench`'s preview-score comparison: o2c's own
-- scoring engine (core/lua/generation + scripts/o2c + kb, the same files o2c loads,
-- read from disk, not copied) running under LuaJIT in lua-nginx-module, with
-- lua-cjson, behind the same request handling as o2c's
-- POST /api/v1/assessment-types/{type}/score:
--
--   bearer token -> hashed -> looked up in a shared dict -> user record
--   decoded, expiry checked (o2c: BLAKE2b + one SQLite primary-key lookup);
--   Content-Type check; JSON decode; body shape check (answers object
--   required, targets object optional, no other field); nulls split off;
--   has_type; validate_answers; validate_targets when given; score; hidden
--   list; JSON encode of {scores, generation}; the same security headers.
--
-- What differs from o2c (all in nginx's favour unless noted):
--   * One Lua state: no copy of answers into, and scores out of, a separate
--     generation state (o2c copies both ways through its C bridge).
--   * No instruction-count hook, no memory-budget allocator (o2c runs every
--     generation call under both).
--   * Read-only views (sandbox.readonly) are plain tables: LuaJIT without
--     LUA52COMPAT ignores __len/__pairs on tables.  They guard the
--     questionnaire handed to scripts at load time; scoring never reads
--     through them.
--   * Lua 5.4 -> 5.1 shim below: math.type/math.tointeger derived from the
--     value (LuaJIT has doubles only), _ENV as a plain table, no utf8 library
--     (the engine does not use it at run time).  Scores are identical: run.sh
--     compares both servers' responses field by field before timing them.
--   * Empty lists encode as {} (Debian's lua-cjson has no empty-array marker);
--     o2c marks them and sends [].  Only `hidden`/`missing_required` can be
--     empty, and neither is for a full answer set.
--   * The generation hash is an MD5 of the sources here (o2c: BLAKE2b).
local cjson = require "cjson.safe"

local M = {}

local gen, gen_hash

---------------------------------------------------------------------------
-- Lua 5.4 shim for the engine
---------------------------------------------------------------------------

local function shim_math()
  local m = {}
  for k, v in pairs(math) do
    m[k] = v
  end
  local floor, huge = math.floor, math.huge
  m.maxinteger = 2 ^ 53
  m.mininteger = -2 ^ 53
  function m.type(x)
    if type(x) ~= "number" then
      return nil
    end
    if x == floor(x) and x ~= huge and x ~= -huge then
      return "integer"
    end
    return "float"
  end
  function m.tointeger(x)
    if type(x) == "number" and x == floor(x) and x ~= huge and x ~= -huge then
      return x
    end
    return nil
  end
  return m
end

local function shim_table()
  local t = {}
  for k, v in pairs(table) do
    t[k] = v
  end
  t.unpack = t.unpack or unpack
  t.pack = t.pack or function(...)
    return { n = select("#", ...), ... }
  end
  return t
end

-- The globals the engine's trusted files see: what the C host's sandbox
-- allow-lists (string, table, math, utf8, os.time/date/clock, safe base
-- functions), plus GEN_MODULE and GEN_JSON_DECODE as the host registers them.
local function engine_env(root)
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, xpcall = xpcall, rawequal = rawequal, rawget = rawget,
    rawset = rawset, select = select, setmetatable = setmetatable,
    getmetatable = getmetatable, tonumber = tonumber, tostring = tostring,
    type = type, print = print, load = load, unpack = unpack,
    rawlen = function(v) return #v end,
    string = string, table = shim_table(), math = shim_math(),
    os = { time = os.time, date = os.date, clock = os.clock },
  }
  env._G = env
  env._ENV = env

  local modules = {}
  function env.GEN_MODULE(name)
    assert(name:match("^[a-z0-9_]+$"), "GEN_MODULE: bad module name")
    if modules[name] ~= nil then
      return modules[name]
    end
    local path = root .. "/core/lua/generation/" .. name .. ".lua"
    local f = assert(io.open(path, "rb"))
    local text = f:read("*a")
    f:close()
    local chunk = assert(load(text, "@core/lua/generation/" .. name .. ".lua", "t", env))
    local value = chunk()
    if value == nil then
      value = true
    end
    if name == "sandbox" then
      value.readonly = function(t) return t end
    end
    modules[name] = value
    return value
  end

  local decode = cjson.decode
  local null = cjson.null
  local function strip(t, depth)
    if depth > 64 then
      return
    end
    for k, v in pairs(t) do
      if v == null then
        t[k] = nil
      elseif type(v) == "table" then
        strip(v, depth + 1)
      end
    end
  end
  function env.GEN_JSON_DECODE(text)
    local v = decode(text)
    if type(v) == "table" then
      strip(v, 0)
    elseif v == null then
      v = nil
    end
    return v
  end
  return env
end

---------------------------------------------------------------------------
-- sources, as core/host/generation.c's gen_sources_read reads them
---------------------------------------------------------------------------

local function skipped(name)
  return name:sub(1, 1) == "." or name:sub(1, 1) == "#" or name:sub(-1) == "~"
      or name:sub(-4) == ".swp"
end

local function read_sources(root)
  local sources = {}
  for _, d in ipairs({ { dir = "scripts", kind = "script" }, { dir = "kb", kind = "kb" } }) do
    local p = assert(io.popen("cd '" .. root .. "' && find " .. d.dir .. " -type f | LC_ALL=C sort"))
    for path in p:lines() do
      local ok = true
      for part in path:gmatch("[^/]+") do
        if skipped(part) then ok = false end
      end
      if ok then
        local f = assert(io.open(root .. "/" .. path, "rb"))
        local text = f:read("*a")
        f:close()
        sources[#sources + 1] = { path = path, rel = path:sub(#d.dir + 2), kind = d.kind, text = text }
      end
    end
    p:close()
  end
  table.sort(sources, function(a, b) return a.path < b.path end)
  return sources
end

-- Called from init_by_lua (the master, before the worker forks).
function M.init(root, token)
  local env = engine_env(root)
  local init = env.GEN_MODULE("init")
  local sources = read_sources(root)
  local errors
  gen, errors = init.build(sources)
  if not gen then
    local lines = {}
    for i, e in ipairs(errors or {}) do
      lines[i] = (e.file or "?") .. ":" .. tostring(e.line or 0) .. ": " .. tostring(e.message)
    end
    error("o2c engine did not build under LuaJIT:\n" .. table.concat(lines, "\n"))
  end
  local all = {}
  for i, s in ipairs(sources) do
    all[i] = s.kind .. "\0" .. s.rel .. "\0" .. s.text
  end
  gen_hash = ngx.md5(table.concat(all, "\0")):sub(1, 16)

  -- One session, as o2c stores it: keyed by a hash of the token.
  local now = ngx.now()
  ngx.shared.sessions:set(ngx.encode_base64(ngx.sha1_bin(token)), cjson.encode({
    user = { id = "0190c3f2-0000-7000-8000-000000000001", name = "admin", role = "admin" },
    created_at = now, idle_expires_at = now + 8 * 3600, expires_at = now + 7 * 86400,
  }))
end

---------------------------------------------------------------------------
-- request handling
---------------------------------------------------------------------------

local HEADERS = {
  ["X-Content-Type-Options"] = "nosniff",
  ["Referrer-Policy"] = "no-referrer",
  ["X-Frame-Options"] = "DENY",
  ["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'",
  ["Cache-Control"] = "no-store",
}

local request_seq = 0

local function send(status, body)
  ngx.status = status
  request_seq = request_seq + 1
  ngx.header["X-Request-Id"] = string.format("%08x-%d", ngx.worker.pid(), request_seq)
  for k, v in pairs(HEADERS) do
    ngx.header[k] = v
  end
  ngx.header["Content-Type"] = "application/json"
  local text = cjson.encode(body)
  ngx.header["Content-Length"] = #text
  ngx.print(text)
  return ngx.exit(status)
end

local function fail(status, code, message, details)
  return send(status, { error = { code = code, message = message, details = details or {} } })
end

-- Who is asking: Authorization: Bearer <token> -> the session's user.
local function authenticate()
  local auth = ngx.var.http_authorization
  if not auth then
    return nil, "sign in first: send the session cookie or a Bearer token"
  end
  local token = auth:match("^[Bb]earer%s+(%S+)%s*$")
  if not token or #token ~= 43 then
    return nil, "the Authorization header must be 'Bearer <token>'"
  end
  local raw = ngx.shared.sessions:get(ngx.encode_base64(ngx.sha1_bin(token)))
  if not raw then
    return nil, "the session has expired or was signed out; sign in again"
  end
  local s = cjson.decode(raw)
  local now = ngx.now()
  if not s or now >= s.idle_expires_at or now >= s.expires_at then
    return nil, "the session has expired or was signed out; sign in again"
  end
  return s.user
end

local function is_object(v)
  if type(v) ~= "table" then
    return false
  end
  local n = 0
  for _ in pairs(v) do
    n = n + 1
  end
  return n == 0 or n ~= #v
end

function M.score(type_id)
  if ngx.req.get_method() ~= "POST" then
    return fail(405, "method_not_allowed", ngx.req.get_method() .. " is not allowed")
  end
  local user, why = authenticate()
  if not user then
    return fail(401, "unauthenticated", why)
  end
  local ctype = ngx.var.content_type or ""
  if not ctype:lower():find("^application/json") then
    return fail(415, "unsupported_media_type", "send the body as application/json")
  end
  ngx.req.read_body()
  local text = ngx.req.get_body_data()
  local body, err = cjson.decode(text or "")
  if body == nil then
    return fail(400, "malformed_json", "the body is not valid JSON: " .. tostring(err))
  end
  if not is_object(body) then
    return fail(400, "invalid", "body: expected an object", { field = "body" })
  end
  for k in pairs(body) do
    if k ~= "answers" and k ~= "targets" then
      return fail(400, "invalid", "body." .. tostring(k) .. ": unknown field",
        { field = "body." .. tostring(k) })
    end
  end
  local answers, targets = body.answers, body.targets
  if targets == cjson.null then targets = nil end
  if answers == nil or answers == cjson.null then
    return fail(400, "invalid", "body.answers: required", { field = "body.answers" })
  end
  if not is_object(answers) then
    return fail(400, "invalid", "body.answers: expected an object", { field = "body.answers" })
  end
  if targets ~= nil and not is_object(targets) then
    return fail(400, "invalid", "body.targets: expected an object", { field = "body.targets" })
  end
  if not gen:has_type(type_id) then
    return fail(404, "not_found", "no assessment type '" .. type_id .. "' is loaded")
  end
  local values = {}
  for qid, v in pairs(answers) do
    if v ~= cjson.null then values[qid] = v end
  end
  local ok, problems = gen:validate_answers(type_id, values)
  if not ok then
    local first = problems and problems[1] or { field = "answers", message = "invalid" }
    return fail(400, "invalid", first.field .. ": " .. first.message,
      { field = first.field, problems = problems })
  end
  if targets then
    local tok, tproblems = gen:validate_targets(type_id, targets)
    if not tok then
      return fail(400, "invalid", tproblems[1].field .. ": " .. tproblems[1].message,
        { field = tproblems[1].field })
    end
  end
  local scores = gen:score(type_id, values, targets)
  return send(200, { scores = scores, generation = gen_hash })
end

-- GET /_bench/engine?n=N: the engine alone under LuaJIT, for the scoring row:
-- N calls of score (and of validate_answers + score) on the answer set
-- POSTed once, each timed with clock_gettime; medians in µs.  No HTTP work is
-- timed; this is the counterpart of bench_core's generation_call timing.
local ffi = require "ffi"
pcall(ffi.cdef, [[
  typedef struct { long tv_sec; long tv_nsec; } o2c_bench_timespec;
  int clock_gettime(int clk_id, o2c_bench_timespec *tp);
]])
local ts = ffi.new("o2c_bench_timespec")
local function now_ns()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

local function median_us(xs)
  table.sort(xs)
  return xs[math.floor(#xs / 2) + 1] / 1000
end

function M.engine(type_id)
  ngx.req.read_body()
  local body = cjson.decode(ngx.req.get_body_data() or "")
  local n = tonumber(ngx.var.arg_n) or 2000
  local values = body.answers
  for _ = 1, n / 10 do
    gen:score(type_id, values, nil)
  end
  local score, both = {}, {}
  for i = 1, n do
    local t0 = now_ns()
    gen:score(type_id, values, nil)
    score[i] = now_ns() - t0
  end
  for i = 1, n do
    local t0 = now_ns()
    gen:validate_answers(type_id, values)
    gen:score(type_id, values, nil)
    both[i] = now_ns() - t0
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode({ n = n, score_p50_us = median_us(score), validate_and_score_p50_us = median_us(both) }))
end

function M.questionnaire(type_id)
  local user, why = authenticate()
  if not user then
    return fail(401, "unauthenticated", why)
  end
  if not gen:has_type(type_id) then
    return fail(404, "not_found", "no assessment type '" .. type_id .. "' is loaded")
  end
  local q = gen:questionnaire(type_id)
  q.generation = gen_hash
  return send(200, q)
end

return M
