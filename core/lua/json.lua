-- JSON for the product VM, on lua-cjson.
--
-- Debian's lua-cjson 2.1.0 encodes every empty table as {}; an API needs []
-- for empty lists.  Mark lists with json.array(t): an empty marked list is
-- swapped for a random sentinel string before encoding and the sentinel's
-- JSON text is replaced by [] afterwards.  json.raw(text) splices JSON text
-- encoded elsewhere (a generation's scores) the same way, without decoding
-- it.  Only the paths leading to those are copied; the caller's tables are
-- never changed.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local M = {}

M.null = cjson.null
M.array_mt = { __name = "json.array" }

cjson.encode_sparse_array(false, 2, 10)
-- JSON has no NaN, Infinity or hex numbers; lua-cjson accepts them unless told.
cjson.decode_invalid_numbers(false)
cjson_safe.decode_invalid_numbers(false)
cjson.decode_max_depth(64)
cjson.encode_max_depth(64)

function M.array(t)
  return setmetatable(t or {}, M.array_mt)
end

M.raw_mt = { __name = "json.raw" }

-- JSON TEXT, already encoded, to be sent as it is inside a value.
function M.raw(text)
  return setmetatable({ text = text }, M.raw_mt)
end

-- Sentinel number 0 stands for [], number n > 0 for the n-th raw text.
local sentinel_prefix = string.format("\1o2c-%08x%08x-", math.random(0, 0x7fffffff),
  math.random(0, 0x7fffffff))
local sentinel_json_prefix = cjson.encode(sentinel_prefix):sub(1, -2)
local sentinel_json_suffix = cjson.encode("\1"):sub(2)
local EMPTY = sentinel_prefix .. "0\1"

-- Returns T with empty marked lists and raw texts replaced, or nil when
-- nothing under T needed it; RAWS collects the raw texts.  Leaves are never
-- visited: only tables recurse (the hot path encodes score tables with
-- hundreds of numbers and strings).
local function swap(t, depth, raws)
  local copy
  for k, child in next, t do
    if type(child) == "table" and depth < 64 then
      local new
      local mt = getmetatable(child)
      if mt == M.raw_mt then
        raws[#raws + 1] = child.text
        new = sentinel_prefix .. #raws .. "\1"
      elseif next(child) == nil then
        if mt == M.array_mt then new = EMPTY end
      else
        new = swap(child, depth + 1, raws)
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

-- Replaces each sentinel in TEXT by [] or its raw text (plain search: no
-- pattern matching on the JSON itself).
local function replace_sentinels(text, raws)
  local parts, pos = {}, 1
  while true do
    local i, j = text:find(sentinel_json_prefix, pos, true)
    if not i then break end
    local n, k = text:match("^(%d+)()", j + 1)
    local stop = text:find(sentinel_json_suffix, k, true)
    parts[#parts + 1] = text:sub(pos, i - 1)
    parts[#parts + 1] = n == "0" and "[]" or raws[tonumber(n)]
    pos = stop + #sentinel_json_suffix
  end
  parts[#parts + 1] = text:sub(pos)
  return table.concat(parts)
end

-- Encodes V; raises on values JSON cannot hold (functions, cycles, sparse arrays).
function M.encode(v)
  local swapped, raws
  if type(v) == "table" then
    local mt = getmetatable(v)
    if mt == M.raw_mt then return v.text end
    if next(v) == nil and mt == M.array_mt then return "[]" end
    raws = {}
    swapped = swap(v, 0, raws)
  end
  if not swapped then return cjson.encode(v) end
  return replace_sentinels(cjson.encode(swapped), raws)
end

-- Decodes TEXT; returns the value, or nil and a message.  Never raises.
function M.decode(text)
  if type(text) ~= "string" then
    return nil, "expected JSON text"
  end
  return cjson_safe.decode(text)
end

return M
