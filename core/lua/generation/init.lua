-- A generation: every assessment type under scripts/ and the knowledge base in
-- kb/, loaded, validated and compiled into one `gen` object that the API, the
-- report runner and `o2c check` / `o2c test` use.
--
-- The C host runs this file as trusted code inside the generation's own sandboxed
-- lua_State (chunkname "@core/lua/generation/init.lua") and reaches the other files of
-- core/lua/generation/ through GEN_MODULE(name). When the host also registers
-- GEN_JSON_DECODE (lua-cjson's decode), examples/*.json are validated at build
-- time and specs can read them with assessment.example(name).
--
--   local M = dofile-equivalent("core/lua/generation/init.lua")
--   local gen, errors = M.build(sources)
--     sources: { {path = "scripts/o2c/questionnaire.lua", kind = "script" | "kb",
--                 rel = "o2c/questionnaire.lua", text = "..."} , ... }
--     errors:  { {file = "scripts/o2c/scoring.lua", line = 42, message = "..."} , ... }
--
-- Every gen method is pure and deterministic; what it returns is plain data
-- (strings, numbers, booleans, tables; no functions, no cycles), fresh per call.
local problems = GEN_MODULE("problems")
local sandbox = GEN_MODULE("sandbox")
local kb = GEN_MODULE("kb")
local loader = GEN_MODULE("loader")
local answers = GEN_MODULE("answers")
local sections = GEN_MODULE("sections")
local spec = GEN_MODULE("spec")

local M = {}

local TYPE_ID = "^[a-z][a-z0-9_%-]*$"

-- Splits sources into the KB's files and one file map per assessment type.
-- A type is a folder directly under the scripts root holding questionnaire.lua.
function M.index_sources(sources, errors)
  local kb_files, script_files, types = {}, {}, {}
  for i, s in ipairs(sources or {}) do
    if type(s) ~= "table" or type(s.path) ~= "string" or type(s.text) ~= "string" then
      errors:add("(sources)", nil, "source %d must be {path=, kind=, rel=, text=}", i)
    elseif s.kind == "kb" then
      kb_files[#kb_files + 1] = { path = s.path, rel = s.rel or s.path, text = s.text }
    else
      script_files[s.path] = s.text
      -- rel "o2c/questionnaire.lua" (the scripts root was given), or rel
      -- "questionnaire.lua" (the type folder itself was given, as in
      -- `o2c check scripts/o2c`): the type id is the folder's name.
      local id = (s.rel or ""):match("^([^/]+)/questionnaire%.lua$")
      if not id and s.rel == "questionnaire.lua" then
        id = s.path:match("([^/]+)/questionnaire%.lua$")
      end
      if id then
        if not id:match(TYPE_ID) then
          errors:add(s.path, nil, "the folder name %q is used as the assessment type id: use lowercase letters, digits, '_' or '-'", id)
        else
          types[#types + 1] = { id = id, folder = s.path:sub(1, #s.path - #"/questionnaire.lua") }
        end
      end
    end
  end
  table.sort(types, function(a, b) return a.id < b.id end)
  return kb_files, script_files, types
end

-- The questionnaire as the UI and API see it (computed once per generation).
local function export_questionnaire(T)
  local m = T.model
  local q_export = {}
  for i, q in ipairs(m.questions) do
    local e = {
      id = q.id, area = q.area, type = q.type, text = q.text, label = q.label, help = q.help,
      weight = q.weight, required = q.required, na_allowed = q.na_allowed,
      conditional = q.conditional,
    }
    if q.type == "scale" then
      e.levels = sandbox.copy(q.levels)
    elseif q.type == "single" or q.type == "multi" then
      e.choices = sandbox.copy(q.choices)
    elseif q.type == "kpi" then
      e.unit, e.min, e.max = q.unit, q.min, q.max
      e.benchmark = {
        id = q.benchmark, name = q.benchmark_name, figures = q.benchmark_text, source = q.source,
        better = q.better, bands = sandbox.copy(q.bands),
      }
    elseif q.type == "text" then
      e.max_length = q.max_length
    end
    if #q.agents > 0 then
      e.agents = sandbox.copy(q.agents)
    end
    q_export[i] = e
  end
  local a_export = {}
  for i, a in ipairs(m.areas) do
    local ids = {}
    for j, q in ipairs(a.questions) do
      ids[j] = q.id
    end
    a_export[i] = {
      id = a.id, title = a.title, description = a.description, weight = a.weight,
      target = T.default_targets[a.id], kb = a.kb, questions = ids,
    }
  end
  return {
    id = T.id, title = m.title, description = m.description,
    levels = sandbox.copy(T.levels),
    question_types = { "scale", "single", "multi", "kpi", "text" },
    areas = a_export, questions = q_export,
  }
end

local Gen = {}
Gen.__index = Gen

local function type_of(gen, id)
  local T = gen.types[id]
  if not T then
    error(string.format("unknown assessment type %s (loaded: %s)", problems.show(id), gen.type_list), 3)
  end
  return T
end

function Gen:has_type(id)
  return self.types[id] ~= nil
end

-- { types = { {id, title, areas, questions, sections, kb_docs, agents} } }
function Gen:summary()
  return sandbox.copy(self.summary_data)
end

function Gen:questionnaire(type_id)
  return sandbox.copy(type_of(self, type_id).export)
end

-- The visible question ids for these answers, in questionnaire order.
function Gen:visible(type_id, raw)
  local T = type_of(self, type_id)
  local visible = answers.visible(T, (answers.values(raw)))
  local list = {}
  for _, q in ipairs(T.model.questions) do
    if visible[q.id] then
      list[#list + 1] = q.id
    end
  end
  return list
end

function Gen:validate_answers(type_id, raw)
  return answers.validate(type_of(self, type_id), raw)
end

function Gen:validate_targets(type_id, targets)
  return answers.validate_targets(type_of(self, type_id), targets)
end

-- The scores table; its shape is documented in scripts/<type>/scoring.lua.
-- `hidden` (ids of questions hidden by visible_if) is added here for the UI.
function Gen:score(type_id, raw, targets)
  local T = type_of(self, type_id)
  local values = answers.values(raw)
  local visible, waiting = answers.visible(T, values)
  local scores = T.scoring.score(T.model, values, visible, answers.targets(T, targets), waiting)
  local hidden = {}
  if visible ~= T.all_visible then
    for _, q in ipairs(T.conditional) do
      if not visible[q.id] then
        hidden[#hidden + 1] = q.id
      end
    end
  end
  scores.hidden = hidden
  return scores
end

-- Validates answers (and targets) and scores them in one call: the scores,
-- or nil and the problems ({field, message}) -- what a preview needs, with
-- one copy of the answers into the generation instead of two.
function Gen:preview(type_id, raw, targets)
  local ok, problems = self:validate_answers(type_id, raw)
  if not ok then return nil, problems end
  if targets ~= nil then
    ok, problems = self:validate_targets(type_id, targets)
    if not ok then return nil, problems end
  end
  return self:score(type_id, raw, targets)
end

---------------------------------------------------------------------------
-- JSON in, JSON out: for the hot API routes, one string crosses each way
-- instead of copying answers in and a scores table of ~300 values out, and
-- the encoding runs on lua-cjson here (GEN_JSON_ENCODE, given by the host).
---------------------------------------------------------------------------

-- The fields of a scores table that are lists, empty or not: lua-cjson
-- (Debian's 2.1.0) writes an empty table as {}, so these are encoded apart.
local SCORE_LISTS = { "hidden", "missing_required", "areas", "kpis" }

local function encode_scores(scores)
  local encode = GEN_JSON_ENCODE
  local rest, lists = {}, {}
  for k, v in next, scores do rest[k] = v end
  for _, field in ipairs(SCORE_LISTS) do
    local v = rest[field]
    if type(v) == "table" then
      rest[field] = nil
      lists[#lists + 1] = '"' .. field .. '":' .. (next(v) == nil and "[]" or encode(v))
    end
  end
  local head = encode(rest)
  if #lists == 0 then return head end
  local tail = table.concat(lists, ",")
  if head == "{}" then return "{" .. tail .. "}" end
  return head:sub(1, -2) .. "," .. tail .. "}"
end

-- score() as JSON text.
function Gen:score_json(type_id, raw, targets)
  return encode_scores(self:score(type_id, raw, targets))
end

-- An object as the API means it: a table that is not a non-empty list.
local function is_object(v)
  if type(v) ~= "table" then return false end
  if next(v) == nil then return true end
  local n = 0
  for _ in next, v do n = n + 1 end
  return n ~= #v
end

-- The preview route's engine work on the request body's JSON text
-- ({"answers": {...}, "targets": {...}}): the scores as JSON text, or nil and
-- the problems ({{field, message}}) as JSON text, or nil and "" when the
-- body is not that shape (malformed, other fields, wrong types: the server
-- then checks it itself and answers as for any body).  JSON nulls are
-- dropped (an answer given as null is no answer).  Text only, so the host
-- can run it in a replica on the thread pool.
function Gen:preview_json(type_id, body_text)
  local decoded, body = pcall(GEN_JSON_DECODE, body_text)
  if not decoded or not is_object(body) or not is_object(body.answers)
      or (body.targets ~= nil and not is_object(body.targets)) then
    return nil, ""
  end
  for k in next, body do
    if k ~= "answers" and k ~= "targets" then return nil, "" end
  end
  local scores, problems = self:preview(type_id, body.answers, body.targets)
  if not scores then return nil, GEN_JSON_ENCODE(problems) end
  return encode_scores(scores)
end

-- The questionnaire as JSON text, encoded once per generation.
function Gen:questionnaire_json(type_id)
  local T = type_of(self, type_id)
  if not T.export_json then
    T.export_json = GEN_JSON_ENCODE(T.export)
  end
  return T.export_json
end

function Gen:report_plan(type_id)
  return sections.plan(type_of(self, type_id))
end

function Gen:section_prompt(type_id, id, ctx)
  return sections.prompt(type_of(self, type_id), id, ctx)
end

function Gen:section_draft(type_id, id, ctx)
  return sections.draft(type_of(self, type_id), id, ctx)
end

function Gen:section_check(type_id, id, text, ctx)
  return sections.check(type_of(self, type_id), id, text, ctx)
end

function Gen:section_render(type_id, id, ctx)
  return sections.render(type_of(self, type_id), id, ctx)
end

-- { docs = {{id, title, area, tags, path}}, agents = {{id, name, area, automates,
--   prerequisites, kpi}}, benchmarks = {{id, name, unit, better, definition,
--   figures, sources, banded}} }
function Gen:kb()
  return sandbox.copy(self.kb_summary)
end

-- Agents a text names: known ids, and names that look like agents but are not
-- in the catalogue (what report checks reject).
function Gen:agent_mentions(text)
  return kb.agent_mentions(self.K, text)
end

local function sort_errors(list)
  for i, e in ipairs(list) do
    e.order = i
  end
  table.sort(list, function(a, b)
    if a.file ~= b.file then
      return (a.file or "") < (b.file or "")
    end
    if (a.line or 0) ~= (b.line or 0) then
      return (a.line or 0) < (b.line or 0)
    end
    return a.order < b.order
  end)
  for _, e in ipairs(list) do
    e.order = nil
  end
  return list
end

-- build_types(sources, only): builds the KB and the types (all, or the one
-- named `only`). Returns gen or nil, errors.
function M.build_types(sources, only)
  local errors = problems.collector()
  local kb_files, script_files, types = M.index_sources(sources, errors)
  local K = kb.load(kb_files, errors)
  if #kb_files == 0 then
    errors:add("kb", nil, "the knowledge base is empty: kb/ needs its documents, benchmarks and agents")
  end
  if not errors:empty() then
    return nil, sort_errors(errors.list)
  end
  local view = kb.view(K)
  local gen = setmetatable({ types = {}, K = K }, Gen)
  local summary, ids = {}, {}
  for _, t in ipairs(types) do
    if not only or t.id == only then
      local T = loader.load_type({
        id = t.id, folder = t.folder, files = script_files, kb = K, kb_view = view,
        errors = errors, decode_json = rawget(_ENV, "GEN_JSON_DECODE"),
      })
      if T then
        T.export = export_questionnaire(T)
        gen.types[t.id] = T
        ids[#ids + 1] = t.id
        summary[#summary + 1] = {
          id = t.id, title = T.model.title, areas = #T.model.areas, questions = #T.model.questions,
          sections = #T.sections, kb_docs = #K.docs, agents = #K.agents,
        }
      end
    end
  end
  if #types == 0 then
    errors:add("scripts", nil, "no assessment type found: a type is a folder under scripts/ holding questionnaire.lua")
  elseif only and not gen.types[only] and errors:empty() then
    errors:add("scripts", nil, "no assessment type %q", only)
  end
  if not errors:empty() then
    return nil, sort_errors(errors.list)
  end
  gen.summary_data = { types = summary }
  gen.type_list = table.concat(ids, ", ")
  gen.kb_summary = kb.summary(K)
  return gen
end

-- build(sources) -> gen, or nil and errors {{file=, line=, message=}}
function M.build(sources)
  return M.build_types(sources, nil)
end

-- "file:line: message" lines for printing errors.
function M.format_errors(errors)
  local lines = {}
  for i, e in ipairs(errors or {}) do
    lines[i] = problems.format(e)
  end
  return table.concat(lines, "\n")
end

---------------------------------------------------------------------------
-- `o2c test`: the spec harness (see spec.lua). The host runs, per spec file, in
-- a fresh generation state:
--   local n, tests, errors = M.spec_collect(sources, "scripts/o2c/spec/scoring_spec.lua")
--   for i = 1, n do local result = M.spec_run(i) end   -- each in its own protected call
-- and counts an `it` killed by the instruction or memory budget as failed.
---------------------------------------------------------------------------

function M.spec_collect(sources, spec_path)
  return spec.collect(M, sources, spec_path)
end

function M.spec_run(i)
  return spec.run(i)
end

-- Collects and runs one spec file in one call:
-- { passed = N, failed = N, results = {...}, errors = {...} }
function M.run_spec(sources, spec_path)
  local n, _, errors = spec.collect(M, sources, spec_path)
  local report = { passed = 0, failed = 0, results = {}, errors = errors }
  for i = 1, n do
    local result = spec.run(i)
    report.results[i] = result
    if result.ok then
      report.passed = report.passed + 1
    else
      report.failed = report.failed + 1
    end
  end
  if #errors > 0 then
    report.failed = report.failed + #errors
  end
  return report
end

return M
