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

-- Returns T with empty marked lists replaced, or nil when nothing under T
-- needed it.  Leaves are never visited: only tables recurse (the hot path
-- encodes score tables with hundreds of numbers and strings).
local function swap_empty(t, depth)
  local copy
  for k, child in next, t do
    if type(child) == "table" and depth < 64 then
      local new
      if next(child) == nil then
        if getmetatable(child) == M.array_mt then new = sentinel end
      else
        new = swap_empty(child, depth + 1)
      end
      if new then
        if not copy then
          copy = {}
          for k2, v2 in next, t do copy[k2] = v2 end
        end
        copy[k] = new
      end
    end
  end
  return copy
end

-- Encodes V; raises on values JSON cannot hold (functions, cycles, sparse arrays).
-- Replaces each sentinel in TEXT by [] (plain search: no pattern matching).
local function replace_sentinels(text)
  local parts, pos = {}, 1
  while true do
    local i, j = text:find(sentinel_json, pos, true)
    if not i then break end
    parts[#parts + 1] = text:sub(pos, i - 1)
    parts[#parts + 1] = "[]"
    pos = j + 1
  end
  parts[#parts + 1] = text:sub(pos)
  return table.concat(parts)
end

function M.encode(v)
  local swapped
  if type(v) == "table" then
    if next(v) == nil and getmetatable(v) == M.array_mt then return "[]" end
    swapped = swap_empty(v, 0)
  end
  if not swapped then return cjson.encode(v) end
  return replace_sentinels(cjson.encode(swapped))
end

-- Decodes TEXT; returns the value, or nil and a message.  Never raises.
function M.decode(text)
  if type(text) ~= "string" then
    return nil, "expected JSON text"
  end
  return cjson_safe.decode(text)
end

return M
