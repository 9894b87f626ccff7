-- A request without a socket, for fuzz_json: the methods router.lua and the
-- handlers call on the server's request userdata, over plain values.
--
--   local dispatch = dofile("tests/fuzz/fuzz_request.lua")
--   local status, body = dispatch(method, path, body, headers)
--
-- Raises when the router's answer breaks the API's contract: a 500, a JSON
-- body that does not decode, or an error without {error = {code, message}}.
local router = require "router"
local json = require "json"

local Request = {}
Request.__index = Request

function Request:method() return self._method end
function Request:path() return self._path end
function Request:query() return nil end
function Request:header(name) return self._headers[name:lower()] end
function Request:body() return self._body end
function Request:remote() return "127.0.0.1" end
function Request:id() return "fuzz-request" end
function Request:closed() return false end
function Request:set_route() end
function Request:cancel_on_close() end

function Request:respond(status, headers, body)
  assert(not self.status, "responded twice")
  self.status, self.response_headers, self.response = status, headers, body
  return true
end

local function check_answer(req)
  local status, text = req.status, req.response
  if not status then error("no response", 0) end
  if status == 500 then error("500: " .. tostring(text), 0) end
  local ctype = req.response_headers and req.response_headers["Content-Type"] or ""
  if ctype:find("^application/json") and status ~= 204 and json.decode(text) == nil then
    error(status .. " with a body that is not JSON: " .. tostring(text), 0)
  end
  if status >= 400 then
    local doc = json.decode(text)
    if type(doc) ~= "table" or type(doc.error) ~= "table" or type(doc.error.code) ~= "string"
        or type(doc.error.message) ~= "string" then
      error(status .. " without the error shape: " .. tostring(text), 0)
    end
  end
end

return function(method, path, body, headers)
  local h = {}
  for k, v in pairs(headers or {}) do h[k:lower()] = v end
  local req = setmetatable({ _method = method, _path = path, _body = body, _headers = h }, Request)
  router.dispatch(req)
  check_answer(req)
  return req.status, req.response
end
