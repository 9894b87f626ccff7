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
  api.check_answers(ctx, type_id, values)
  local g = ctx:gen()
  if body.targets then
    local ok, problems = g:call("validate_targets", type_id, body.targets)
    if not ok then
      api.fail(400, "invalid", problems[1].field .. ": " .. problems[1].message,
        { field = problems[1].field })
    end
  end
  local scores = g:call("score", type_id, values, body.targets)
  return 200, { scores = api.scores_json(scores), generation = g:hash() }
end

return {
  { method = "GET", path = "/api/v1/assessment-types", name = "types.list", handler = list },
  { method = "GET", path = "/api/v1/assessment-types/{type}", name = "types.get",
    handler = questionnaire },
  { method = "POST", path = "/api/v1/assessment-types/{type}/score", name = "types.score",
    handler = score },
}
