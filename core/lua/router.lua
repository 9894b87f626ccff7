-- The router: matches a request to a route, resolves who is asking, runs
-- the handler and sends what it returns.
--
-- Route modules (core/lua/api/*.lua) return a list of routes:
--   { method = "GET", path = "/api/v1/assessments/{id}", name = "assessment.get",
--     auth = true | false | "admin", query = { limit = { type = "integer", ... } },
--     handler = function(ctx) ... end }
-- `query` declares the query parameters the route takes (api/query.lua);
-- any other, or a wrong value, is a 400 before the handler runs.
-- A handler returns status, body (a table is sent as JSON, a string as is)
-- and optional headers, or raises api.fail(...) for an expected error.  Any
-- other error becomes a logged 500 with the request id; the server goes on.
local api = require "api.common"
local json = require "json"
local log = require "o2c.log"
local metrics = require "metrics"
local text = require "generation.text"
local timer = require "o2c.timer"

local M = {}

local MODULES = { "api.ops", "api.session", "api.types", "api.assessments", "api.admin",
  "api.reports", "api.web" }

local routes = {}

-- "/api/v1/assessments/{id}/answers" -> "^/api/v1/assessments/([^/]+)/answers$", {"id"}
local function compile(path)
  local names = {}
  local pattern = path:gsub("[%-%.%+%*%?%^%$%%]", "%%%0"):gsub("{(%w+)}", function(name)
    names[#names + 1] = name
    return "([^/]+)"
  end)
  return "^" .. pattern .. "$", names
end

function M.add(route)
  assert(route.method and route.path and route.handler and route.name, "incomplete route")
  route.pattern, route.params = compile(route.path)
  require("api.query").check_declarations(route.query, route.name)
  if route.auth == nil then route.auth = true end
  routes[#routes + 1] = route
end

-- Every route, for the OpenAPI check and /metrics.
function M.routes()
  return routes
end

local function load_modules()
  for _, name in ipairs(MODULES) do
    local ok, mod = pcall(require, name)
    if ok then
      for _, route in ipairs(mod) do
        route.module = route.module or name:gsub("^api%.", "") -- its OpenAPI tag
        M.add(route)
      end
    elseif not tostring(mod):find("no embedded file 'core/lua/" .. name:gsub("%.", "/"), 1, true) then
      error(mod, 0)
    end
  end
end

-- Every route must be in the OpenAPI document and every documented
-- operation must be a route; each difference is logged as an error.
function M.check_openapi()
  local documented, routed, problems = {}, {}, {}
  for _, op in ipairs(require("api.openapi").operations()) do documented[op] = true end
  for _, r in ipairs(routes) do
    local op = r.method .. " " .. r.path
    routed[op] = true
    if not documented[op] then problems[#problems + 1] = op .. ": route missing from openapi" end
  end
  for op in pairs(documented) do
    if not routed[op] then problems[#problems + 1] = op .. ": documented but not routed" end
  end
  table.sort(problems)
  for _, p in ipairs(problems) do log.error("openapi mismatch", { operation = p }) end
  return problems
end

function M.start()
  load_modules()
  M.check_openapi()
end

local function params_of(route, ...)
  local params = {}
  for i, name in ipairs(route.params) do
    local value = api.url_decode((select(i, ...)))
    if not value then return nil end
    params[name] = value
  end
  return params
end

-- The route for METHOD and PATH with its decoded parameters; or nil and
-- the methods PATH allows (for a 405); or nil, nil, "bad_path".
local function match(method, path)
  if method == "HEAD" then method = "GET" end
  for _, r in ipairs(routes) do
    if r.method == method then
      local first = path:match(r.pattern)
      if first then
        if #r.params == 0 then return r, {} end
        local params = params_of(r, path:match(r.pattern))
        if not params then return nil, nil, "bad_path" end
        return r, params
      end
    end
  end
  local allowed = {}
  for _, r in ipairs(routes) do
    if path:match(r.pattern) then allowed[#allowed + 1] = r.method end
  end
  return nil, allowed
end

-- JSON and text/* bodies are text: sent as valid UTF-8 even when they quote
-- rows stored before text was checked (each invalid byte becomes U+FFFD).
local function is_text(content_type)
  return content_type ~= nil and (content_type:find("^application/json")
    or content_type:find("^text/")) ~= nil
end

local function send(req, status, body, headers)
  headers = headers or {}
  if type(body) == "table" then
    body = json.encode(body)
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  if type(body) == "string" and is_text(headers["Content-Type"]) then body = text.repair(body) end
  headers["Cache-Control"] = headers["Cache-Control"] or "no-store"
  req:respond(status, headers, body or "")
  return status
end

local function send_error(req, e)
  local details = e.details or {}
  details.request_id = details.request_id or req:id()
  return send(req, e.status, api.error_body(e.code, e.message, details), e.headers)
end

-- Message handler: keep expected errors as they are, add a traceback to the rest.
local function on_error(e)
  if api.is_failure(e) then return e end
  return { internal = true, trace = debug.traceback(tostring(e), 2) }
end

local function run(req, route, params)
  local ctx = api.context(req, route, params)
  local ok, status, body, headers = xpcall(function()
    api.authenticate(ctx)
    ctx:query() -- checked before the handler, after who may know the route exists
    return route.handler(ctx)
  end, on_error)
  ctx:release()
  if ok then
    return send(req, status, body, headers)
  end
  if status.internal then
    log.error("request failed", { request_id = req:id(), route = route.name, error = status.trace })
    return send_error(req, api.failure(500, "internal",
      "internal error: the server logged the details under this request id"))
  end
  return send_error(req, status)
end

function M.dispatch(req)
  local started = timer.clock()
  local path = req:path()
  local route, params, problem = match(req:method(), path)
  local status
  if route then
    req:set_route(route.name)
    status = run(req, route, params)
  elseif problem then
    status = send_error(req, api.failure(400, "bad_request", "the path is not valid UTF-8 text"))
  elseif params and #params > 0 then
    status = send_error(req, api.failure(405, "method_not_allowed",
      req:method() .. " is not allowed on " .. path, { allowed = json.array(params) },
      { Allow = table.concat(params, ", ") }))
  else
    status = send_error(req, api.failure(404, "not_found", "no such route: " .. path))
  end
  metrics.observe_request(route and route.name or "unmatched", status,
    timer.clock() - started)
end

return M
