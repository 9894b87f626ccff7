-- Report sections at run time: the plan, and the calls into report.lua's
-- prompt / draft / check / render with a prepared `ctx`.
--
-- The host passes ctx = { assessment = {client=, type=}, answers=, scores=,
-- targets=, sections = {[id] = text}, attachments = {{name, media_type, size}} }.
-- Scripts receive a copy with answers unwrapped and a few conveniences:
--   ctx.client      the client's name ("the client" when missing)
--   ctx.answers     question id -> value (notes removed)
--   ctx.notes       question id -> note text
--   ctx.visible     question id -> true for visible questions
--   ctx.waiting     question id -> the earlier question to answer first, for
--                   questions hidden only because that one has no answer yet
--   ctx.report      { generation =, date_ms = } of the report being written
--                   (empty outside a report job)
--   ctx.targets     area id -> target level (defaults filled in)
--   ctx.scores      the scores table (computed here when the host gave none)
local problems = GEN_MODULE("problems")
local answers = GEN_MODULE("answers")

local sections = {}

local function section_of(T, id, kind)
  local s = T.section_by_id[id]
  if not s then
    error(string.format("unknown report section %s for type %s", problems.show(id), T.id), 3)
  end
  if kind and s.kind ~= kind then
    error(string.format("section '%s' is a %s section; %s", id, s.kind,
      s.kind == "generated" and "use section_render" or "use section_prompt, section_draft and section_check"), 3)
  end
  return s
end

-- "file:line: section 'x': message" for a script result of the wrong shape.
local function shape_error(s, fmt, ...)
  error(string.format("%s:%d: section '%s': " .. fmt, s.path, s.line or 0, s.id, ...), 0)
end

-- Only the plain fields a script may print about the report being written.
local function report_of(r)
  if type(r) ~= "table" then return {} end
  return {
    generation = type(r.generation) == "string" and r.generation or nil,
    date_ms = math.type(r.date_ms) and r.date_ms or nil,
  }
end

function sections.context(T, ctx)
  ctx = ctx or {}
  local assessment = type(ctx.assessment) == "table" and ctx.assessment or {}
  local values, notes = answers.values(ctx.answers or {})
  local targets = answers.targets(T, ctx.targets)
  local scores = ctx.scores
  if type(scores) ~= "table" then
    scores = answers.score(T, values, targets)
  end
  local visible, waiting = answers.visible(T, values)
  return {
    assessment = assessment,
    report = report_of(ctx.report),
    client = type(assessment.client) == "string" and assessment.client ~= "" and assessment.client or "the client",
    type = T.id,
    answers = values,
    notes = notes or {},
    visible = visible,
    waiting = waiting,
    targets = targets,
    scores = scores,
    sections = type(ctx.sections) == "table" and ctx.sections or {},
    attachments = type(ctx.attachments) == "table" and ctx.attachments or {},
  }
end

-- { sections = {{id, title, kind, depends, max_tokens}} in display order,
--   run_order = {ids} with every section after its dependencies }
function sections.plan(T)
  local list = {}
  for i, s in ipairs(T.sections) do
    local depends = {}
    for j, d in ipairs(s.depends) do
      depends[j] = d
    end
    list[i] = { id = s.id, title = s.title, kind = s.kind, depends = depends, max_tokens = s.max_tokens }
  end
  local order = {}
  for i, id in ipairs(T.run_order) do
    order[i] = id
  end
  return { sections = list, run_order = order }
end

-- { system = "...", user = "..." } (plus `attachments`, a list of attachment
-- names the provider may send along, when the script asks for them).
function sections.prompt(T, id, ctx)
  local s = section_of(T, id, "llm")
  local p = s.prompt(sections.context(T, ctx))
  if type(p) ~= "table" or type(p.system) ~= "string" or type(p.user) ~= "string" then
    shape_error(s, "prompt(ctx) must return { system = \"...\", user = \"...\" } (got %s)", problems.show(p))
  end
  local result = { system = p.system, user = p.user }
  if type(p.attachments) == "table" then
    result.attachments = {}
    for i, name in ipairs(p.attachments) do
      result.attachments[i] = tostring(name)
    end
  end
  return result
end

function sections.draft(T, id, ctx)
  local s = section_of(T, id, "llm")
  local text = s.draft(sections.context(T, ctx))
  if type(text) ~= "string" or not text:match("%S") then
    shape_error(s, "draft(ctx) must return the section's Markdown text (got %s)", problems.show(text))
  end
  return text
end

-- true, or false and the reason. An empty text never passes.
function sections.check(T, id, text, ctx)
  local s = section_of(T, id, "llm")
  if type(text) ~= "string" or not text:match("%S") then
    return false, "the section text is empty"
  end
  local ok, reason = s.check(text, sections.context(T, ctx))
  if ok then
    return true
  end
  return false, type(reason) == "string" and reason or "the section did not pass its check"
end

function sections.render(T, id, ctx)
  local s = section_of(T, id, "generated")
  local text = s.render(sections.context(T, ctx))
  if type(text) ~= "string" or not text:match("%S") then
    shape_error(s, "render(ctx) must return the section's Markdown text (got %s)", problems.show(text))
  end
  return text
end

return sections
