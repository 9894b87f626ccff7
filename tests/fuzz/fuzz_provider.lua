-- fuzz_provider's Lua half: one response through every provider adapter's
-- parse(), as llm/init.lua calls it, with the shape of what comes back
-- checked.  Returns, per adapter, the status and error type the retry rules
-- would be given (nil, nil when the call succeeded).
local ADAPTERS = { "llm.anthropic", "llm.openai" }

local adapters = {}
for i, name in ipairs(ADAPTERS) do adapters[i] = require(name) end

local function opt(v, kind, what)
  if v ~= nil and type(v) ~= kind then
    error(what .. " is a " .. type(v) .. ", not a " .. kind, 0)
  end
end

local function check_success(name, out)
  if type(out.text) ~= "string" then error(name .. ": text is not a string", 0) end
  if type(out.usage) ~= "table" then error(name .. ": no usage table", 0) end
  for _, k in ipairs({ "input", "output" }) do
    local n = out.usage[k]
    if n ~= nil and math.type(n) ~= "integer" then
      error(name .. ": usage." .. k .. " is not an integer: " .. tostring(n), 0)
    end
  end
  opt(out.model, "string", name .. ": model")
  opt(out.stop_reason, "string", name .. ": stop_reason")
end

local function check_failure(name, f, res)
  if type(f) ~= "table" then error(name .. ": failure is not a table", 0) end
  if math.type(f.status) ~= "integer" then error(name .. ": failure.status is not an integer", 0) end
  opt(f.error_type, "string", name .. ": failure.error_type")
  if type(f.detail) ~= "string" then error(name .. ": failure.detail is not a string", 0) end
  if f.invalid and (res.status < 200 or res.status > 299) then
    error(name .. ": an error status reported as an invalid body", 0)
  end
end

return function(status, headers, body)
  local res = { status = status, headers = headers, body = body }
  local results = {}
  for i, adapter in ipairs(adapters) do
    local out, failure = adapter.parse(res)
    if out then
      check_success(adapter.name, out)
      if status < 200 or status > 299 then error(adapter.name .. ": success on HTTP " .. status, 0) end
    else
      check_failure(adapter.name, failure, res)
      -- As llm/init.lua: an unreadable 200 is retried like a dropped connection.
      results[#results + 1] = failure.invalid and 0 or failure.status
      results[#results + 1] = failure.error_type or false
    end
  end
  return results
end
