-- JSON for the product VM, on lua-cjson.
--
-- Debian's lua-cjson 2.1.0 encodes every empty table as {}; an API needs []
-- for empty lists.  Mark lists with json.array(t): an empty marked list is
-- swapped for a random sentinel string before encoding and the sentinel's
-- JSON text is replaced by [] afterwards.  Only the paths leading to empty
-- marked lists are copied; the caller's tables are never changed.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local M = {}

M.null = cjson.null
M.array_mt = { __name = "json.array" }

cjson.encode_sparse_array(false, 2, 10)
cjson.decode_max_depth(64)
cjson.encode_max_depth(64)

function M.array(t)
  return setmetatable(t or {}, M.array_mt)
end

local sentinel = string.format("\1o2c-empty-array-%08x%08x\1", math.random(0, 0x7fffffff),
  math.random(0, 0x7fffffff))
local sentinel_json = cjson.encode(sentinel)

-- Returns V with empty marked lists replaced, and whether anything changed.
local function swap_empty(v, depth)
  if type(v) ~= "table" or depth > 64 then
    return v, false
  end
  if next(v) == nil then
    if getmetatable(v) == M.array_mt then
      return sentinel, true
    end
    return v, false
  end
  local copy
  for k, child in pairs(v) do
    local new, changed = swap_empty(child, depth + 1)
    if changed then
      if not copy then
        copy = {}
        for k2, v2 in pairs(v) do copy[k2] = v2 end
      end
      copy[k] = new
    end
  end
  return copy or v, copy ~= nil
end

-- Encodes V; raises on values JSON cannot hold (functions, cycles, sparse arrays).
function M.encode(v)
  local swapped, changed = swap_empty(v, 0)
  local text = cjson.encode(swapped)
  if changed then
    text = text:gsub(sentinel_json:gsub("%p", "%%%0"), "[]")
  end
  return text
end

-- Decodes TEXT; returns the value, or nil and a message.  Never raises.
function M.decode(text)
  if type(text) ~= "string" then
    return nil, "expected JSON text"
  end
  return cjson_safe.decode(text)
end

return M
