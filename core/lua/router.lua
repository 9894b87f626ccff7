-- Routes requests to handlers.  Handlers return status, body (a table is
-- sent as JSON) and optional headers; errors raised as http errors become
-- the JSON error shape, anything else a logged 500.
local json = require "json"

local M = {}

local routes = {}

local function add(method, pattern, name, handler)
  routes[#routes + 1] = { method = method, pattern = "^" .. pattern .. "$", name = name,
    handler = handler }
end

local JSON_HEADERS = { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" }

local function send(req, status, body, headers)
  headers = headers or JSON_HEADERS
  if type(body) == "table" then
    body = json.encode(body)
  end
  req:respond(status, headers, body or "")
end

function M.error_body(code, message, details)
  return { error = { code = code, message = message, details = details or {} } }
end

add("GET", "/healthz", "healthz", function()
  return 200, { status = "ok" }
end)

function M.start() end

function M.dispatch(req)
  local method, path = req:method(), req:path()
  if method == "HEAD" then method = "GET" end
  local allowed
  for _, r in ipairs(routes) do
    local captures = { path:match(r.pattern) }
    if #captures > 0 or path:match(r.pattern) then
      if r.method == method then
        req:set_route(r.name)
        local status, body, headers = r.handler(req, table.unpack(captures))
        return send(req, status, body, headers)
      end
      allowed = true
    end
  end
  if allowed then
    return send(req, 405, M.error_body("method_not_allowed", method .. " is not allowed on " .. path))
  end
  send(req, 404, M.error_body("not_found", "no such route: " .. path))
end

return M
