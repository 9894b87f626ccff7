-- Assessment types: what is loaded, each questionnaire, and scoring previews.
local api = require "api.common"
local json = require "json"

local function list(ctx)
  local g = ctx:gen()
  local summary = g:call("summary")
  local out = json.array()
  for _, t in ipairs(summary.types) do
    out[#out + 1] = { id = t.id, title = t.title, generation = g:hash() }
  end
  return 200, out
end

-- The questionnaire with the generation it comes from; the generation
-- encodes it once, so this sends text without building any table.
local function questionnaire(ctx)
  local type_id = ctx.params.type
  api.require_type(ctx, type_id)
  local g = ctx:gen()
  local text = g:call("questionnaire_json", type_id)
  return 200, text:sub(1, -2) .. ',"generation":' .. json.encode(g:hash()) .. "}",
    { ["Content-Type"] = "application/json" }
end

local ANSWER_SET = {
  answers = { type = "object", required = true },
  targets = { type = "object" },
}

-- Scores answers without storing anything.  The generation reads the body
-- on the thread pool (the loop serves other requests meanwhile); when its
-- shape is wrong it says so with "" and the body is checked here, which
-- raises the same 400 as every other route.
local function score(ctx)
  local type_id = ctx.params.type
  ctx:require_json()
  api.require_type(ctx, type_id)
  local g = ctx:gen()
  local scores, problems_text = g:call_text("preview_json", type_id, ctx.req:body())
  if problems_text == "" then
    ctx:body(ANSWER_SET)
    api.fail(400, "invalid", "body: expected {\"answers\": {...}, \"targets\": {...}}",
      { field = "body" })
  end
  if not scores then
    local problems = json.decode(problems_text)
    local first = problems and problems[1] or { field = "answers", message = "invalid" }
    api.fail(400, "invalid", first.field .. ": " .. first.message,
      { field = first.field, problems = json.array(problems or {}) })
  end
  return 200, { scores = json.raw(scores), generation = g:hash() }
end

return {
  { method = "GET", path = "/api/v1/assessment-types", name = "types.list", handler = list },
  { method = "GET", path = "/api/v1/assessment-types/{type}", name = "types.get",
    handler = questionnaire },
  { method = "POST", path = "/api/v1/assessment-types/{type}/score", name = "types.score",
    handler = score },
}
