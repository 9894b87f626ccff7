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

local function questionnaire(ctx)
  local type_id = ctx.params.type
  api.require_type(ctx, type_id)
  local q = ctx:gen():call("questionnaire", type_id)
  q.generation = ctx:gen():hash()
  return 200, q
end

local ANSWER_SET = {
  answers = { type = "object", required = true },
  targets = { type = "object" },
}

-- Scores answers without storing anything.
local function score(ctx)
  local type_id = ctx.params.type
  local body = ctx:body(ANSWER_SET)
  api.require_type(ctx, type_id)
  local values = api.split_answers(body.answers)
  local g = ctx:gen()
  local scores, problems = g:call("preview", type_id, values, body.targets)
  if not scores then
    local first = problems and problems[1] or { field = "answers", message = "invalid" }
    api.fail(400, "invalid", first.field .. ": " .. first.message,
      { field = first.field, problems = json.array(problems or {}) })
  end
  return 200, { scores = api.scores_json(scores), generation = g:hash() }
end

return {
  { method = "GET", path = "/api/v1/assessment-types", name = "types.list", handler = list },
  { method = "GET", path = "/api/v1/assessment-types/{type}", name = "types.get",
    handler = questionnaire },
  { method = "POST", path = "/api/v1/assessment-types/{type}/score", name = "types.score",
    handler = score },
}
