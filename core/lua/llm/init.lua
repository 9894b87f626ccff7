-- LLM calls for report sections: which provider, and one section's call through
-- the provider's scheduler with retries (require "llm").
--
--   local llm = require "llm"
--   local name, reason = llm.choose()            -- "anthropic" | "openai" | "offline"
--   local out, err, code = llm.complete{
--     provider = name, job = report_id, system = "...", user = "...", max_tokens = 1024,
--     images = {{media_type = "image/png", data_base64 = "..."}},
--     deadline_ms = 600000,        -- or deadline_at (o2c.timer.now() clock); default
--                                  -- cfg.llm.section_deadline_s from now
--     timeout_ms = 120000,         -- per attempt; default cfg.llm.timeout_s
--     on_retry = function(info) end,  -- {attempt, wait_ms, reason, message, status,
--                                     --  server_delay, error} before each wait
--     retry = {max_attempts =, base_ms =, cap_ms =},  -- defaults: cfg.llm.max_retries, 500, 8000
--   }
--   -- out = {text, usage = {input, output}, model, provider, attempts, stop_reason}
--   -- or nil, message, code: "unavailable" (circuit open), "spend_limit", "client_error"
--   --   (400/401/403/404/413...: never retried), "exhausted" (attempts used),
--   --   "timeout" (attempts used, the last timed out), "deadline", "too_large"
--   --   (can never fit the provider's limits), "offline" (the offline provider
--   --   writes nothing: the runner calls the section's draft()).
--
-- One attempt: acquire a slot (the circuit breaker's check, then the scheduler:
-- fair by job, inside the limits; the task waits) -> the adapter builds the
-- request -> slot:request (o2c.http, the API key added in C) -> slot:finish
-- (usage true-up, rate-limit headers, the 429 pause, the breaker's verdict) ->
-- the retry rules (o2c.scheduler.retry_decide, in C) -> on_retry -> o2c.timer.sleep.
local scheduler = require "o2c.scheduler"
local timer = require "o2c.timer"
local log = require "o2c.log"
local gentext = require "generation.text"

local M = {}

local ADAPTERS = { anthropic = "llm.anthropic", openai = "llm.openai", offline = "llm.offline" }

-- Tokens counted for an image we cannot measure here (Anthropic bills about
-- width x height / 750, at most ~1600 for an image it does not shrink further).
local IMAGE_TOKENS = 1600
-- The provider adds a few tokens of framing around the messages.
local FRAMING_TOKENS = 16

function M.adapter(name)
  local module = ADAPTERS[name]
  return module and require(module) or nil
end

local function llm_config(cfg)
  cfg = cfg or scheduler.config()
  return cfg.llm or cfg
end

-- The provider to use and why.  auto = anthropic when ANTHROPIC_API_KEY is set,
-- else offline.  A configured provider is kept even when it cannot work (no
-- key): its sections then fail visibly; the offline drafter never stands in.
function M.choose(cfg)
  local c = llm_config(cfg)
  local p = c.provider or "auto"
  if p == "auto" then
    if c.anthropic_key_set then
      return "anthropic", "auto: ANTHROPIC_API_KEY is set"
    end
    return "offline", "auto: ANTHROPIC_API_KEY is not set, sections are drafted offline"
  elseif p == "anthropic" then
    if c.anthropic_key_set then return "anthropic", "configured" end
    return "anthropic", "configured, but ANTHROPIC_API_KEY is not set: calls will be refused"
  elseif p == "openai" then
    return "openai", "configured (" .. tostring(c.openai_base_url) .. ")"
  elseif p == "offline" then
    return "offline", "configured"
  end
  error("llm.choose: unknown provider " .. tostring(p) .. " (auto|anthropic|openai|offline)")
end

-- The model a provider writes with.
function M.model(name, cfg)
  if name == "offline" then return require("llm.offline").model end
  return llm_config(cfg).model
end

-- Logged once at start by `o2c serve`.
function M.log_choice(cfg)
  local name, reason = M.choose(cfg)
  local c = llm_config(cfg)
  local fields = { provider = name, reason = reason, model = M.model(name, cfg) }
  if name == "anthropic" then fields.base_url = c.anthropic_base_url end
  if name == "openai" then fields.base_url = c.openai_base_url end
  if name ~= "offline" then
    if c.learn_limits then
      fields.limits = "learned from the provider's headers"
    else
      fields.limits = string.format("%g requests, %g input tokens, %g output tokens per minute",
        c.rpm, c.itpm, c.otpm)
    end
    fields.concurrency = c.concurrency
  end
  log.info("LLM provider", fields)
  return name, reason
end

-- For GET /api/v1/status.
function M.status()
  local name, reason = M.choose()
  local status = { provider = name, reason = reason, model = M.model(name) }
  if name ~= "offline" then
    status.scheduler = scheduler.stats(name)
    status.breaker_state = status.scheduler.breaker_state
    status.breaker_until = status.scheduler.breaker_until
    status.queue_depth = status.scheduler.queue_depth
  end
  return status
end

function M.stats()
  return scheduler.stats()
end

function M.metrics_text()
  return scheduler.metrics_text()
end

-- An upper bound of the input tokens (the scheduler's guarantee needs one):
-- bytes / 3 of all the text, plus each image and the framing.
function M.estimate_input_tokens(system, user, images)
  local bytes = #(system or "") + #(user or "")
  return (bytes + 2) // 3 + #(images or {}) * IMAGE_TOKENS + FRAMING_TOKENS
end

local function check_request(req)
  if type(req) ~= "table" then error("llm.complete: expected a table", 3) end
  if type(req.user) ~= "string" or req.user == "" then
    error("llm.complete: user must be a non-empty string", 3)
  end
  if req.system ~= nil and type(req.system) ~= "string" then
    error("llm.complete: system must be a string", 3)
  end
  local max_tokens = req.max_tokens or 1024
  if math.type(max_tokens) ~= "integer" or max_tokens < 1 then
    error("llm.complete: max_tokens must be a positive integer", 3)
  end
  for i, image in ipairs(req.images or {}) do
    if type(image) ~= "table" or type(image.media_type) ~= "string"
        or type(image.data_base64) ~= "string" then
      error("llm.complete: images[" .. i .. "] must be {media_type =, data_base64 =}", 3)
    end
  end
  return max_tokens
end

-- One call through a granted slot.  Returns the parsed result, or nil and a
-- failure {status (0 = no usable response), error_type, detail, headers, transport}.
local function attempt_once(slot, adapter, request, timeout_ms)
  local slot_ <close> = slot
  request.timeout_ms = timeout_ms
  local res, err, code = slot:request(request)
  if not res then
    slot:finish(0)
    return nil, { status = 0, error_type = code, detail = err, transport = code }
  end
  local out, failure = adapter.parse(res)
  if out then
    slot:finish(res.status, out.usage.input, out.usage.output, res.headers)
    return out
  end
  failure.headers = res.headers
  if failure.invalid then
    -- A 200 whose body is not the API's JSON: the provider did not answer
    -- properly (a truncated body), so it is retried like a dropped connection.
    failure.status = 0
    failure.transport = "invalid_response"
  end
  -- A 429 was refused before any work: it used no tokens.  Other errors keep
  -- the reservation (the provider may have counted the input).
  local used = failure.status == 429 and 0 or nil
  slot:finish(failure.status, used, used, res.headers)
  return nil, failure
end

local CODES = {
  spend_limit = "spend_limit",
  deadline = "deadline",
}

local function failure_code(reason, failure)
  if CODES[reason] then return CODES[reason] end
  if reason == "not_retryable" or reason == "should_retry_false" then
    if failure.status >= 400 and failure.status <= 499 then return "client_error" end
    return "exhausted"
  end
  if failure.transport == "timeout" then return "timeout" end
  return "exhausted"
end

local function describe(provider, message, failure)
  if failure.invalid then
    message = message:gsub("^no response", "HTTP 200 with an unreadable body", 1)
  end
  local text = provider .. ": " .. message
  if failure.detail and failure.detail ~= "" then
    text = text .. " - " .. failure.detail
  end
  return text
end

-- The section's call, with retries.  See the top of this file.
function M.complete(req)
  local max_tokens = check_request(req)
  local cfg = llm_config()
  local provider = req.provider or M.choose()
  if provider == "offline" then
    return nil, "the offline provider writes no text: draft the section with its draft(ctx)",
      "offline"
  end
  local adapter = M.adapter(provider)
  if not adapter then error("llm.complete: unknown provider " .. tostring(provider), 2) end
  local images = req.images or {}
  local model = req.model or cfg.model
  local deadline_at = req.deadline_at
    or timer.now() + math.floor(req.deadline_ms or cfg.section_deadline_s * 1000)
  local timeout_ms = math.floor(req.timeout_ms or cfg.timeout_s * 1000)
  local retry = req.retry or {}
  -- A prompt quotes what clients wrote, maybe in rows stored before text was
  -- checked: the provider is sent valid UTF-8 whatever those hold.
  local system = type(req.system) == "string" and gentext.repair(req.system) or req.system
  local user = type(req.user) == "string" and gentext.repair(req.user) or req.user
  local est = M.estimate_input_tokens(system, user, images)
  local job = req.job and tostring(req.job) or "default"
  local attempt = 0
  while true do
    attempt = attempt + 1
    local slot, err, code = scheduler.acquire(provider, job, est, max_tokens, deadline_at)
    if not slot then
      return nil, err, code
    end
    local request = adapter.build{ base_url = req.base_url or adapter.base_url(cfg),
      model = model, max_tokens = max_tokens, system = system, user = user,
      images = images }
    local left = deadline_at - timer.now()
    local out, failure = attempt_once(slot, adapter, request,
      math.max(1, math.min(timeout_ms, left)))
    if out then
      out.provider, out.attempts = provider, attempt
      out.model = out.model or model
      return out
    end
    local again, wait_ms, reason, message, server_delay = scheduler.retry_decide{
      provider = provider, status = failure.status, error_type = failure.error_type,
      headers = failure.headers, attempt = attempt, deadline_at = deadline_at,
      max_attempts = retry.max_attempts, base_ms = retry.base_ms, cap_ms = retry.cap_ms,
    }
    if not again then
      return nil, describe(provider, message, failure), failure_code(reason, failure)
    end
    if req.on_retry then
      req.on_retry{ attempt = attempt, wait_ms = wait_ms, reason = reason,
        message = describe(provider, message, failure), status = failure.status,
        server_delay = server_delay, error = failure.detail, headers = failure.headers }
    end
    if wait_ms > 0 then timer.sleep(wait_ms) end
  end
end

return M
