-- Query parameters, declared once per route next to its method and path:
--
--   { method = "GET", path = "/api/v1/audit", ..., query = {
--       limit = { type = "integer", min = 1, max = 1000, default = 100,
--                 description = "events per page" },
--       since = { type = "time", description = "events at or after this time" } } }
--
-- The router checks them before the handler runs (ctx:query() returns the
-- checked values, typed, with their defaults), and the OpenAPI document
-- lists them from the same declarations.  A parameter the route does not
-- declare, one given twice, an empty one, or one that is not valid UTF-8
-- or not of its declared kind is a 400 that names it and says what it
-- expects; unknown ones are refused rather than ignored so that a typo
-- ("limt") is not silently served the default.
--
-- Kinds:  integer {min=, max=}   enum {values={...}}   boolean (true|false)
--         time (ISO-8601 date or time, what the store parses)
--         uuid (an id the API returned: UUIDv7)
--         string {max=, pattern=, pattern_help=} (a Lua pattern)
local api = require "api.common"
local json = require "json"

local M = {}

local SHOWN_MAX = 40 -- characters of a refused value quoted back in the message

---------------------------------------------------------------------------
-- what each kind accepts
---------------------------------------------------------------------------

local function integer_expects(spec)
  if spec.min and spec.max then
    return "a whole number from " .. spec.min .. " to " .. spec.max
  elseif spec.min then
    return "a whole number of at least " .. spec.min
  end
  return "a whole number"
end

local function parse_integer(text, spec)
  if not text:match("^%-?%d+$") then return nil end
  local n = tonumber(text) -- a float when it does not fit: then out of range below
  if spec.min and n < spec.min then return nil end
  if spec.max and n > spec.max then return nil end
  return math.tointeger(n)
end

local function parse_enum(text, spec)
  for _, allowed in ipairs(spec.values) do
    if text == allowed then return text end
  end
  return nil
end

local BOOLEANS = { ["true"] = true, ["false"] = false }

local function parse_boolean(text)
  return BOOLEANS[text]
end

local function two_digits_in(s, lo, hi)
  local n = tonumber(s)
  return n >= lo and n <= hi
end

-- "YYYY-MM-DD" with an optional "Thh:mm[:ss[.fff]]" and "Z" or "+hh:mm":
-- exactly what store_lua_parse_time (core/store/store_lua.c) accepts.
local function parse_time(text)
  local y, mo, d, rest = text:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y or not two_digits_in(mo, 1, 12) or not two_digits_in(d, 1, 31) then return nil end
  if rest == "" then return text end
  local h, mi, clock = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
  if not h or not two_digits_in(h, 0, 23) or not two_digits_in(mi, 0, 59) then return nil end
  local s, after_s = clock:match("^:(%d%d)(.*)$")
  if s then
    if not two_digits_in(s, 0, 60) then return nil end
    clock = after_s
  end
  clock = clock:gsub("^%.%d+", "", 1)
  if clock == "Z" or clock == "z" then return text end
  return clock:match("^[+%-]%d%d:%d%d$") and text or nil
end

local UUID7 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-7%x%x%x%-[89abAB]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function parse_uuid(text)
  return text:match(UUID7) and text or nil
end

local function string_expects(spec)
  local what = "text of at most " .. spec.max .. " bytes"
  if spec.pattern_help then what = what .. " (" .. spec.pattern_help .. ")" end
  return what
end

local function parse_string(text, spec)
  if #text > spec.max then return nil end
  if spec.pattern and not text:match(spec.pattern) then return nil end
  return text
end

-- kind -> { parse(text, spec) -> value | nil, expects(spec) -> text, schema(spec) -> table }
local KINDS = {
  integer = { parse = parse_integer, expects = integer_expects,
    schema = function(spec)
      return { type = "integer", minimum = spec.min, maximum = spec.max }
    end },
  enum = { parse = parse_enum,
    expects = function(spec) return "one of " .. table.concat(spec.values, ", ") end,
    schema = function(spec) return { type = "string", enum = json.array(spec.values) } end },
  boolean = { parse = parse_boolean, expects = function() return "true or false" end,
    schema = function() return { type = "boolean" } end },
  time = { parse = parse_time,
    expects = function()
      return "an ISO-8601 date or time, such as 2024-05-01 or 2024-05-01T09:30:00Z "
        .. "(a + in an offset is sent as %2B)"
    end,
    schema = function() return { type = "string", examples = json.array({ "2024-05-01",
      "2024-05-01T09:30:00Z" }) } end },
  uuid = { parse = parse_uuid,
    expects = function() return "an id as the API returns them (a UUIDv7)" end,
    schema = function() return { type = "string", format = "uuid" } end },
  string = { parse = parse_string, expects = string_expects,
    schema = function(spec) return { type = "string", maxLength = spec.max } end },
}

-- Raises when a route's declarations are not ones this module knows, so a
-- mistake shows at start rather than as a 500 on the first request.
function M.check_declarations(declared, route_name)
  for name, spec in pairs(declared or {}) do
    local where = route_name .. ": query parameter " .. name
    assert(KINDS[spec.type], where .. ": unknown type " .. tostring(spec.type))
    assert(spec.type ~= "string" or spec.max, where .. ": a string needs a max length")
    assert(spec.type ~= "enum" or spec.values, where .. ": an enum needs its values")
  end
end

---------------------------------------------------------------------------
-- checking a request's query
---------------------------------------------------------------------------

-- TEXT (valid UTF-8) cut to SHOWN_MAX characters, whole characters only.
local function shortened(text)
  local cut = utf8.offset(text, SHOWN_MAX + 1)
  return cut and text:sub(1, cut - 1) .. "..." or text
end

local function quoted(text)
  return json.encode(shortened(text))
end

-- A 400 naming the parameter, as body fields are named.
local function refuse(name, message)
  api.fail(400, "invalid", name .. ": " .. message, { field = name, location = "query" })
end

local function takes(declared)
  local names = {}
  for name in pairs(declared) do names[#names + 1] = name end
  table.sort(names)
  if #names == 0 then return "this route takes no query parameters" end
  return "this route takes " .. table.concat(names, ", ")
end

-- The raw query as a list of {name, value}; VALUE is nil when it does not
-- decode to valid UTF-8 text (refused once its name is known).
local function pairs_of(raw)
  local list = {}
  for pair in (raw or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    local name = api.url_decode((k:gsub("+", " ")))
    if not name then
      api.fail(400, "invalid", "a query parameter's name is not valid UTF-8 text",
        { location = "query" })
    end
    list[#list + 1] = { name = name, value = api.url_decode((v:gsub("+", " "))) }
  end
  return list
end

-- Checks the raw query string against DECLARED (name -> spec); returns
-- name -> value, typed, with the declared defaults.  Raises a 400 naming
-- the first parameter that is wrong.
function M.check(declared, raw)
  declared = declared or {}
  local values = {}
  for _, p in ipairs(pairs_of(raw)) do
    local name, spec = p.name, declared[p.name]
    if not spec then
      api.fail(400, "invalid", "unknown query parameter " .. quoted(name) .. "; "
        .. takes(declared), { field = shortened(name), location = "query" })
    end
    if values[name] ~= nil then refuse(name, "given more than once; send it once") end
    local kind = KINDS[spec.type]
    if not p.value then
      refuse(name, "not valid UTF-8 text (or holds a NUL); expected " .. kind.expects(spec))
    end
    if p.value == "" then refuse(name, "empty; expected " .. kind.expects(spec)) end
    local value = kind.parse(p.value, spec)
    if value == nil then
      refuse(name, "expected " .. kind.expects(spec) .. ", got " .. quoted(p.value))
    end
    values[name] = value
  end
  for name, spec in pairs(declared) do
    if values[name] == nil then values[name] = spec.default end
  end
  return values
end

---------------------------------------------------------------------------
-- the OpenAPI description of the same declarations
---------------------------------------------------------------------------

-- DECLARED as OpenAPI parameter objects, in name order.
function M.openapi_parameters(declared)
  local names = {}
  for name in pairs(declared or {}) do names[#names + 1] = name end
  table.sort(names)
  local out = {}
  for i, name in ipairs(names) do
    local spec = declared[name]
    local kind = KINDS[spec.type]
    local schema = kind.schema(spec)
    schema.default = spec.default
    local expects = kind.expects(spec)
    out[i] = { name = name, ["in"] = "query", required = false, schema = schema,
      description = spec.description and (spec.description .. "; " .. expects) or expects }
  end
  return out
end

return M
