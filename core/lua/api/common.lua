-- What every handler uses: the request context, expected failures, who is
-- asking (cookie or bearer token, CSRF for cookies), request body
-- validation, and the pinned generation.
local json = require "json"
local config = require "o2c.config"
local text = require "generation.text"

local M = {}

local FAILURE = {}

---------------------------------------------------------------------------
-- failures
---------------------------------------------------------------------------

function M.failure(status, code, message, details, headers)
  return setmetatable({ status = status, code = code, message = message, details = details,
    headers = headers }, FAILURE)
end

function M.is_failure(e)
  return getmetatable(e) == FAILURE
end

-- Raises an expected failure: the router answers it as JSON.
function M.fail(status, code, message, details, headers)
  error(M.failure(status, code, message, details, headers), 0)
end

function M.error_body(code, message, details)
  return { error = { code = code, message = message, details = details or {} } }
end

function M.not_found(what)
  M.fail(404, "not_found", what .. " not found")
end

-- Turns a store result (value or nil, message, code, extra) into the value
-- or the matching HTTP failure.
local STORE_STATUS = { not_found = 404, conflict = 409, exists = 409, invalid = 400,
  refused = 403, busy = 503, error = 500, disk_full = 507, database_unavailable = 503 }

-- A full disk, whichever route wrote: 507 disk_full.  MESSAGE says what could
-- not be done when a route can say it better than "this change".
function M.fail_disk_full(message)
  M.fail(507, "disk_full", message or ("the server's disk is full, so this change was not "
    .. "saved; nothing stored before was lost: try again once space is freed"))
end

function M.check(value, message, code, extra)
  if value ~= nil then return value end
  if code == "disk_full" then M.fail_disk_full() end
  local status = STORE_STATUS[code] or 500
  if status == 500 then error(message or "storage failure", 0) end
  M.fail(status, code, message or code, type(extra) == "table" and extra or nil)
end

---------------------------------------------------------------------------
-- text helpers
---------------------------------------------------------------------------

-- Percent-decodes S; nil when the result is not valid UTF-8 or holds a NUL.
function M.url_decode(s)
  local decoded = s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  if decoded:find("%z") or not utf8.len(decoded) then return nil end
  return decoded
end

function M.cookie(req, name)
  local header = req:header("Cookie")
  if not header then return nil end
  for part in header:gmatch("[^;]+") do
    local k, v = part:match("^%s*([^=]+)=(.*)$")
    if k == name then return (v:gsub("%s+$", "")) end
  end
  return nil
end

---------------------------------------------------------------------------
-- the context handed to handlers
---------------------------------------------------------------------------

local Context = {}
Context.__index = Context

function M.context(req, route, params)
  return setmetatable({ req = req, route = route, params = params }, Context)
end

-- The query parameters the route declares, checked (api/query.lua): the
-- router asks for them before the handler runs, so a wrong one is a 400.
function Context:query()
  if not self._query then
    self._query = require("api.query").check(self.route.query, self.req:query())
  end
  return self._query
end

-- The generation current when the request started, pinned until it ends.
function Context:gen()
  if not self._gen then
    self._gen = require("o2c.generation").pin()
    if not self._gen then
      M.fail(503, "not_ready", "no assessment scripts are loaded yet; see /api/v1/status")
    end
  end
  return self._gen
end

function Context:release()
  if self._gen then
    self._gen:release()
    self._gen = nil
  end
end

-- The addresses of X-Forwarded-For, left to right; nil if one is not an
-- IP address (then the header is not believed at all).
local function forwarded_hops(header)
  local proxies, hops = require "o2c.proxies", {}
  for part in (header .. ","):gmatch("([^,]*),") do
    local hop = proxies.address(part:match("^%s*(.-)%s*$"))
    if not hop then return nil end
    hops[#hops + 1] = hop
  end
  return hops
end

-- The client's address: the peer's, unless the peer is a trusted proxy
-- (config trusted_proxies); then the rightmost X-Forwarded-For address that
-- is not itself a trusted proxy, since only the hops we trust could not
-- have been written by the client.
local function client_address(req)
  local proxies, peer = require "o2c.proxies", req:remote()
  local header = req:header("X-Forwarded-For")
  if not header or not proxies.trusted(peer) then return peer end
  local hops = forwarded_hops(header)
  if not hops then return peer end
  for i = #hops, 1, -1 do
    if not proxies.trusted(hops[i]) then return hops[i] end
  end
  return hops[1] -- every hop is a trusted proxy: the first is the origin
end

function Context:address()
  if not self._address then self._address = client_address(self.req) end
  return self._address
end

-- Whether the client reached us over HTTPS: a trusted proxy says so in
-- X-Forwarded-Proto (its first value: the scheme the client used).
function Context:https()
  local proto = self.req:header("X-Forwarded-Proto")
  if not proto or not require("o2c.proxies").trusted(self.req:remote()) then return false end
  return (proto:match("^%s*([^,%s]*)") or ""):lower() == "https"
end

---------------------------------------------------------------------------
-- who is asking
---------------------------------------------------------------------------

local UNSAFE = { POST = true, PUT = true, PATCH = true, DELETE = true }

local function same_origin(req)
  local origin, host = req:header("Origin"), req:header("Host")
  if not origin or not host then return false end
  return origin == "http://" .. host or origin == "https://" .. host
end

-- A cookie-authenticated change must come from our own pages: the CSRF
-- header matching the o2c_csrf cookie, or a same-origin Origin header.
local function check_csrf(ctx)
  local req = ctx.req
  if not UNSAFE[req:method()] or same_origin(req) then return end
  local sent, expected = req:header("X-CSRF-Token"), M.cookie(req, "o2c_csrf")
  if sent and expected and #sent >= 16 and sent == expected then return end
  M.fail(403, "csrf", "this change was sent with a session cookie but without the "
    .. "X-CSRF-Token header from the o2c_csrf cookie (or a same-origin Origin header)")
end

function M.token_of(req)
  local auth = req:header("Authorization")
  if auth then
    local token = auth:match("^[Bb]earer%s+(%S+)%s*$")
    if not token then
      M.fail(401, "unauthenticated", "the Authorization header must be 'Bearer <token>'")
    end
    return token, "bearer"
  end
  local cookie = M.cookie(req, "o2c_session")
  if cookie then return cookie, "cookie" end
  return nil
end

function M.authenticate(ctx)
  local route = ctx.route
  if route.auth == false then return end
  local token, kind = M.token_of(ctx.req)
  if not token then
    M.fail(401, "unauthenticated", "sign in first: send the session cookie or a Bearer token")
  end
  local user, info = require("o2c.session").validate(token)
  if not user then
    M.fail(401, "unauthenticated", "the session has expired or was signed out; sign in again")
  end
  ctx.user, ctx.session, ctx.token = user, info, token
  if kind == "cookie" then check_csrf(ctx) end
  if route.auth == "admin" and user.role ~= "admin" then
    -- Admin routes look like any other missing thing to everyone else.
    M.fail(404, "not_found", "no such route: " .. ctx.req:path())
  end
end

---------------------------------------------------------------------------
-- request bodies
---------------------------------------------------------------------------

local function type_name(v)
  if v == json.null then return "null" end
  local t = type(v)
  if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
  if t == "table" then return next(v) == nil and "empty object or list" or
      (v[1] ~= nil and "list" or "object") end
  return t
end

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

-- Checks V against SPEC ({type=, required=, max=, min=, enum=, fields=, items=}).
-- Raises a 400 naming FIELD on the first problem.
local function validate(v, spec, field)
  local function bad(msg)
    M.fail(400, "invalid", field .. ": " .. msg, { field = field })
  end
  local t = spec.type
  if t == "string" then
    if type(v) ~= "string" then bad("expected text, got " .. type_name(v)) end
    if spec.max and #v > spec.max then bad("longer than " .. spec.max .. " bytes") end
    if spec.min and #v < spec.min then bad("shorter than " .. spec.min .. " characters") end
    local problem = text.problem(v)
    if problem then bad(problem) end
    if spec.pattern and not v:match(spec.pattern) then bad(spec.pattern_help or "not allowed") end
  elseif t == "integer" then
    if math.type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) end
    if math.type(v) ~= "integer" then bad("expected a whole number, got " .. type_name(v)) end
  elseif t == "number" then
    if type(v) ~= "number" then bad("expected a number, got " .. type_name(v)) end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then bad("expected true or false, got " .. type_name(v)) end
  elseif t == "object" then
    if type(v) ~= "table" or (next(v) ~= nil and is_list(v)) then
      bad("expected an object, got " .. type_name(v))
    end
    if spec.fields then
      for k in pairs(v) do
        if type(k) ~= "string" or not spec.fields[k] then
          M.fail(400, "invalid", field .. "." .. tostring(k) .. ": unknown field",
            { field = field .. "." .. tostring(k) })
        end
      end
      local out = {}
      for name, sub in pairs(spec.fields) do
        local value = v[name]
        if value == nil or value == json.null then
          if sub.required then
            M.fail(400, "invalid", field .. "." .. name .. ": required",
              { field = field .. "." .. name })
          end
        else
          out[name] = validate(value, sub, field .. "." .. name)
        end
      end
      return out
    end
  elseif t == "array" then
    if type(v) ~= "table" or not is_list(v) then bad("expected a list, got " .. type_name(v)) end
    if spec.max and #v > spec.max then bad("more than " .. spec.max .. " items") end
  end
  if spec.enum then
    local ok = false
    for _, allowed in ipairs(spec.enum) do if v == allowed then ok = true end end
    if not ok then bad("must be one of " .. table.concat(spec.enum, ", ")) end
  end
  if t == "integer" or t == "number" then
    if spec.min and v < spec.min then bad("must be at least " .. spec.min) end
    if spec.max and v > spec.max then bad("must be at most " .. spec.max) end
  end
  return v
end

-- Decodes the JSON body and checks it against FIELDS (an object spec's
-- fields).  Returns the checked table; raises a 400 naming the field.
-- Raises 415 unless the request says its body is JSON.
function Context:require_json()
  local ctype = self.req:header("Content-Type") or ""
  if not ctype:lower():find("^application/json") then
    M.fail(415, "unsupported_media_type", "send the body as application/json")
  end
end

-- "body.answers.md_evidence.note" for the path { "answers", "md_evidence",
-- "note" } (list items as "[2]").  Built only for a message.
local function field_name(path, depth)
  local parts = { "body" }
  for i = 1, depth do
    local k = path[i]
    parts[#parts + 1] = type(k) == "string" and "." .. text.repair(k) or "[" .. tostring(k) .. "]"
  end
  return table.concat(parts)
end

-- Every string in a decoded body, names of fields included, passes the one
-- text rule (gen/text.lua), whether or not a schema describes it: answers
-- and their notes are free-form objects here.  PATH holds the keys down to V.
local function check_texts(v, path, depth)
  if type(v) == "string" then
    local problem = text.problem(v)
    if problem then
      local field = field_name(path, depth)
      M.fail(400, "invalid", field .. ": " .. problem, { field = field })
    end
  elseif type(v) == "table" then
    for k, child in pairs(v) do
      path[depth + 1] = k
      local problem = type(k) == "string" and text.problem(k)
      if problem then
        local field = field_name(path, depth + 1)
        M.fail(400, "invalid", field .. ": the field's name " .. problem, { field = field })
      end
      check_texts(child, path, depth + 1)
    end
    path[depth + 1] = nil
  end
end

-- lua-cjson refuses a \u escape of a lone surrogate (\ud800 without its
-- pair) as "invalid unicode escape code"; say what that means.
local function json_problem(err)
  err = tostring(err)
  if err:find("invalid unicode escape", 1, true) then
    return err .. " (each \\u escape must be a Unicode character: a lone surrogate such as "
      .. "\\ud800 is not text)"
  end
  return err
end

function Context:body(fields)
  local req = self.req
  self:require_json()
  local value, err = json.decode(req:body())
  if value == nil then
    M.fail(400, "malformed_json", "the body is not valid JSON: " .. json_problem(err))
  end
  check_texts(value, {}, 0)
  return validate(value, { type = "object", fields = fields }, "body")
end

M.validate = validate

---------------------------------------------------------------------------
-- assessment helpers shared by several route modules
---------------------------------------------------------------------------

-- Marks the lists of a scores table so that empty ones encode as [].
function M.scores_json(scores)
  for _, field in ipairs({ "hidden", "missing_required", "areas", "kpis" }) do
    if type(scores[field]) == "table" then json.array(scores[field]) end
  end
  return scores
end

-- Splits a JSON answers object into values to check and deletions (null).
-- Values keep their {value=, note=} shape.
function M.split_answers(answers)
  local values, deleted = {}, {}
  for qid, v in pairs(answers) do
    if v == json.null then deleted[#deleted + 1] = qid else values[qid] = v end
  end
  return values, deleted
end

-- Validates answers with the pinned generation; raises 400 naming the field.
function M.check_answers(ctx, type_id, values)
  local ok, problems = ctx:gen():call("validate_answers", type_id, values)
  if not ok then
    local first = problems and problems[1] or { field = "answers", message = "invalid" }
    M.fail(400, "invalid", first.field .. ": " .. first.message,
      { field = first.field, problems = json.array(problems or {}) })
  end
end

function M.require_type(ctx, type_id)
  if not ctx:gen():call("has_type", type_id) then
    M.fail(404, "not_found", "no assessment type '" .. type_id .. "' is loaded")
  end
end

return M
