-- Any OpenAI-compatible chat server (llama.cpp server, Ollama, vLLM, OpenAI):
-- POST {base}/v1/chat/completions.  Same shape as llm/anthropic.lua: build(p),
-- parse(res).  The Bearer key, when O2C_OPENAI_API_KEY is set, is added by
-- o2c.scheduler's slot:request.
local json = require "json"

local M = { name = "openai" }

function M.base_url(cfg)
  return cfg.openai_base_url
end

local function endpoint(base)
  return (base:gsub("/+$", "")) .. "/v1/chat/completions"
end

function M.build(p)
  local user = p.user
  if p.images and #p.images > 0 then
    user = { { type = "text", text = p.user } }
    for _, image in ipairs(p.images) do
      user[#user + 1] = { type = "image_url",
        image_url = { url = "data:" .. image.media_type .. ";base64," .. image.data_base64 } }
    end
  end
  local messages = {}
  if p.system and p.system ~= "" then
    messages[#messages + 1] = { role = "system", content = p.system }
  end
  messages[#messages + 1] = { role = "user", content = user }
  return {
    method = "POST",
    url = endpoint(p.base_url),
    headers = { ["content-type"] = "application/json" },
    body = json.encode({ model = p.model, max_tokens = p.max_tokens, messages = messages }),
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

-- A string or number field as a string (JSON null and tables: nil).
local function scalar(v)
  if type(v) == "string" or type(v) == "number" then return tostring(v) end
  return nil
end

local function parse_error(res)
  local doc = json.decode(res.body)
  local err = type(doc) == "table" and type(doc.error) == "table" and doc.error or nil
  local message = err and type(err.message) == "string" and err.message or snippet(res.body)
  local etype = err and scalar(err.type)
  local code = err and scalar(err.code)
  local error_type = etype
  if code and code ~= etype then error_type = (etype or "error") .. "/" .. code end
  -- OpenAI's quota answer is a spend cap: never retried (the retry rules' word for it).
  if etype == "insufficient_quota" or code == "insufficient_quota" then
    error_type = error_type .. " (enforced_spend_limit_reached)"
  end
  return nil, { status = res.status, error_type = error_type, detail = message }
end

function M.parse(res)
  if res.status < 200 or res.status > 299 then
    return parse_error(res)
  end
  local doc = json.decode(res.body)
  local choice = type(doc) == "table" and type(doc.choices) == "table" and doc.choices[1]
  local message = type(choice) == "table" and type(choice.message) == "table" and choice.message
  if not message or type(message.content) ~= "string" then
    return nil, { status = res.status, invalid = true, error_type = "invalid_response",
      detail = "the reply is not a complete chat completion: " .. snippet(res.body) }
  end
  local usage = type(doc.usage) == "table" and doc.usage or {}
  return {
    text = message.content,
    usage = { input = count(usage.prompt_tokens), output = count(usage.completion_tokens) },
    model = type(doc.model) == "string" and doc.model or nil,
    stop_reason = type(choice.finish_reason) == "string" and choice.finish_reason or nil,
  }
end

return M
