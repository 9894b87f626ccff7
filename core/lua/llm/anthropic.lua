-- Anthropic's Messages API: POST {base}/v1/messages.
--
-- build(p) turns a section's prompt into the HTTP request (the API key is added
-- by o2c.scheduler's slot:request, never here); parse(res) turns the answer into
-- {text, usage, model, stop_reason}, or nil and a failure the retry rules can
-- classify: {status, error_type, detail, invalid}.
local json = require "json"

local M = { name = "anthropic", version = "2023-06-01" }

-- What an error type means for the person reading the section's status.
local HINTS = {
  authentication_error = "the API key was refused (check ANTHROPIC_API_KEY)",
  permission_error = "the API key may not use this model or feature",
  not_found_error = "not found (check O2C_ANTHROPIC_BASE_URL and the model name)",
  request_too_large = "the request is too large (fewer or smaller attachments)",
  invalid_request_error = "the request was refused as invalid",
  rate_limit_error = "rate limited by the provider",
  overloaded_error = "the API is overloaded",
  api_error = "the API had an internal error",
}

function M.base_url(cfg)
  return cfg.anthropic_base_url
end

local function endpoint(base)
  return (base:gsub("/+$", "")) .. "/v1/messages"
end

-- p: {base_url, model, max_tokens, system, user, images = {{media_type, data_base64}}}
function M.build(p)
  local content = { { type = "text", text = p.user } }
  for _, image in ipairs(p.images or {}) do
    content[#content + 1] = {
      type = "image",
      source = { type = "base64", media_type = image.media_type, data = image.data_base64 },
    }
  end
  local body = {
    model = p.model,
    max_tokens = p.max_tokens,
    messages = { { role = "user", content = content } },
  }
  if p.system and p.system ~= "" then body.system = p.system end
  return {
    method = "POST",
    url = endpoint(p.base_url),
    headers = { ["anthropic-version"] = M.version, ["content-type"] = "application/json" },
    body = json.encode(body),
  }
end

local function count(v)
  return type(v) == "number" and math.tointeger(v // 1) or nil
end

local function snippet(body)
  body = tostring(body or ""):gsub("%s+", " ")
  if #body > 200 then body = body:sub(1, 200) .. "..." end
  return body ~= "" and body or "(empty body)"
end

local function parse_error(res)
  local doc = json.decode(res.body)
  local err = type(doc) == "table" and type(doc.error) == "table" and doc.error or nil
  local etype = err and type(err.type) == "string" and err.type or nil
  local message = err and type(err.message) == "string" and err.message or snippet(res.body)
  local code = err and type(err.details) == "table" and err.details.error_code
  local error_type = etype
  if type(code) == "string" then error_type = (etype or "error") .. "/" .. code end
  local hint = HINTS[etype or ""]
  return nil, {
    status = res.status,
    error_type = error_type,
    detail = hint and (hint .. ": " .. message) or message,
  }
end

function M.parse(res)
  if res.status < 200 or res.status > 299 then
    return parse_error(res)
  end
  local doc = json.decode(res.body)
  if type(doc) ~= "table" or type(doc.content) ~= "table" then
    return nil, { status = res.status, invalid = true, error_type = "invalid_response",
      detail = "the reply is not a complete Messages API answer: " .. snippet(res.body) }
  end
  local parts = {}
  for _, block in ipairs(doc.content) do
    if type(block) == "table" and block.type == "text" and type(block.text) == "string" then
      parts[#parts + 1] = block.text
    end
  end
  local usage = type(doc.usage) == "table" and doc.usage or {}
  return {
    text = table.concat(parts),
    usage = { input = count(usage.input_tokens), output = count(usage.output_tokens) },
    model = type(doc.model) == "string" and doc.model or nil,
    stop_reason = type(doc.stop_reason) == "string" and doc.stop_reason or nil,
  }
end

return M
