-- Loads one assessment type (a folder under scripts/ holding questionnaire.lua,
-- scoring.lua and report.lua), validates it and compiles what run time needs.
--
-- The three files are written as declarations:
--   questionnaire.lua  assessment { ... }, area { ... }, question { ... }
--   scoring.lua        returns a table: levels, default_target, question_score, score, method
--   report.lua         section { ... }
-- Each declaration records the line it was written on, so every problem found
-- afterwards names file:line. Problems are collected, not raised, so a
-- consultant sees all of them at once.
local problems = GEN_MODULE("problems")
local sandbox = GEN_MODULE("sandbox")
local kb = GEN_MODULE("kb")
local chart = GEN_MODULE("chart")
local answers = GEN_MODULE("answers")
local section_api = GEN_MODULE("sections")
local library = GEN_MODULE("library")

local loader = {}

local ID = "^[a-z][a-z0-9_]*$"
local QUESTION_TYPES = { scale = true, single = true, multi = true, kpi = true, text = true }
local TYPE_LIST = "scale, single, multi, kpi, text"
local DEFAULT_TEXT_LENGTH = 4000

local FIELDS = {
  assessment = { title = true, description = true },
  area = { id = true, title = true, description = true, weight = true, kb = true, target = true },
  question = {
    id = true, area = true, type = true, text = true, label = true, help = true, weight = true,
    required = true, na_allowed = true, visible_if = true, levels = true, choices = true,
    unit = true, min = true, max = true, benchmark = true, max_length = true, agents = true,
  },
  section = {
    id = true, title = true, kind = true, depends = true, max_tokens = true,
    prompt = true, draft = true, check = true, render = true,
  },
}

local function sorted_keys(set)
  local keys = {}
  for k in pairs(set) do
    keys[#keys + 1] = tostring(k)
  end
  table.sort(keys)
  return keys
end

local function nonempty_string(v)
  return type(v) == "string" and v:match("%S") ~= nil
end

local function positive_number(v)
  return type(v) == "number" and v > 0 and v == v and v ~= math.huge
end

local function whole_level(v)
  return type(v) == "number" and v == math.floor(v) and v >= 1 and v <= 5
end

-- Every declaration function: checks the argument is a table, records where it
-- was written, and stores it in `list`.
-- `order`, when given, also receives every declaration (to keep areas and
-- questions in the order they were written).
local function declarer(kind, list, default_path, order)
  return function(entry)
    local path, line = problems.here(2)
    if type(entry) ~= "table" then
      error(string.format("%s { ... } expects a table of fields (got %s)", kind, problems.show(entry)), 2)
    end
    local decl = { entry = entry, path = path or default_path, line = line }
    list[#list + 1] = decl
    if order then
      order[#order + 1] = { kind = kind, decl = decl }
    end
  end
end

local function check_fields(decl, kind, what, errors)
  for key in pairs(decl.entry) do
    if not FIELDS[kind][key] then
      errors:add(decl.path, decl.line, "%s: unknown field %s (known fields: %s)", what, problems.show(key),
        table.concat(sorted_keys(FIELDS[kind]), ", "))
    end
  end
end

-- Runs a file with its own environment and `arg` as its `...`. Returns true
-- when it ran to the end.
local function run_file(path, text, env, errors, arg)
  local chunk, message = sandbox.load(text, path, env)
  if not chunk then
    errors:add_raised(path, message)
    return false
  end
  local ok, err = pcall(chunk, arg)
  if not ok then
    errors:add_raised(path, err)
    return false
  end
  return true, err
end

---------------------------------------------------------------------------
-- questionnaire.lua
---------------------------------------------------------------------------

local function compile_area(decl, index, K, errors)
  local e = decl.entry
  local what = string.format("area %s", problems.show(e.id))
  check_fields(decl, "area", what, errors)
  if type(e.id) ~= "string" or not e.id:match(ID) then
    errors:add(decl.path, decl.line, "area id must be lowercase letters, digits and '_' (got %s)", problems.show(e.id))
  end
  if not nonempty_string(e.title) then
    errors:add(decl.path, decl.line, "%s: title must be a text (got %s)", what, problems.show(e.title))
  end
  if e.description ~= nil and type(e.description) ~= "string" then
    errors:add(decl.path, decl.line, "%s: description must be a text (got %s)", what, problems.show(e.description))
  end
  local weight = e.weight == nil and 1 or e.weight
  if not positive_number(weight) then
    errors:add(decl.path, decl.line, "%s: weight must be a positive number (got %s)", what, problems.show(e.weight))
    weight = 1
  end
  if e.target ~= nil and not whole_level(e.target) then
    errors:add(decl.path, decl.line, "%s: target must be a whole level from 1 to 5 (got %s)", what, problems.show(e.target))
  end
  if e.kb == nil then
    errors:add(decl.path, decl.line, "%s: kb must name the KB document for this area (e.g. kb = \"credit\")", what)
  elseif type(e.kb) ~= "string" or not K.doc_by_id[e.kb] then
    errors:add(decl.path, decl.line, "%s: kb %s is not a KB document id (known: %s)", what, problems.show(e.kb),
      table.concat(sorted_keys(K.doc_by_id), ", "))
  end
  return {
    id = e.id, title = e.title, description = e.description or "", weight = weight, kb = e.kb,
    target = whole_level(e.target) and math.tointeger(e.target) or nil,
    index = index, questions = {}, path = decl.path, line = decl.line,
  }
end

local function compile_choices(decl, e, q, what, errors)
  if type(e.choices) ~= "table" or #e.choices < 2 then
    errors:add(decl.path, decl.line, "%s: choices must list at least two { id = \"...\", label = \"...\", value = N } entries", what)
    return
  end
  q.choices, q.choice_by_id = {}, {}
  local points, any_positive = 0, false
  for i, c in ipairs(e.choices) do
    local where = string.format("%s, choice %d", what, i)
    if type(c) ~= "table" then
      errors:add(decl.path, decl.line, "%s must be a table (got %s)", where, problems.show(c))
    else
      for key in pairs(c) do
        if key ~= "id" and key ~= "label" and key ~= "value" then
          errors:add(decl.path, decl.line, "%s: unknown field %s (known: id, label, value)", where, problems.show(key))
        end
      end
      if type(c.id) ~= "string" or not c.id:match("^[a-z0-9][a-z0-9_%-]*$") or c.id == "na" then
        errors:add(decl.path, decl.line, "%s: id must be lowercase letters, digits, '_' or '-', and not \"na\" (got %s)",
          where, problems.show(c.id))
      elseif q.choice_by_id[c.id] then
        errors:add(decl.path, decl.line, "%s: choice id %q is used twice", where, c.id)
      end
      if not nonempty_string(c.label) then
        errors:add(decl.path, decl.line, "%s: label must be a text (got %s)", where, problems.show(c.label))
      end
      if q.type == "single" then
        if type(c.value) ~= "number" or c.value < 1 or c.value > 5 then
          errors:add(decl.path, decl.line, "%s: value must be a score from 1 to 5 (got %s)", where, problems.show(c.value))
        end
      elseif type(c.value) ~= "number" or c.value < 0 or c.value ~= c.value or c.value == math.huge then
        errors:add(decl.path, decl.line, "%s: value must be the points (0 or more) this choice adds (got %s)",
          where, problems.show(c.value))
      else
        points = points + c.value
        any_positive = any_positive or c.value > 0
      end
      local choice = { id = c.id, label = c.label, value = c.value }
      q.choices[#q.choices + 1] = choice
      if type(c.id) == "string" then
        q.choice_by_id[c.id] = choice
      end
    end
  end
  if q.type == "multi" then
    if not any_positive then
      errors:add(decl.path, decl.line, "%s: at least one choice must be worth more than 0 points", what)
    end
    q.max_points = points > 0 and points or 1
  end
end

local function compile_question(decl, index, current_area, area_by_id, K, errors)
  local e = decl.entry
  local what = string.format("question %s", problems.show(e.id))
  check_fields(decl, "question", what, errors)
  if type(e.id) ~= "string" or not e.id:match(ID) then
    errors:add(decl.path, decl.line, "question id must be lowercase letters, digits and '_' (got %s)", problems.show(e.id))
  end
  local q = {
    id = e.id, type = e.type, text = e.text, help = e.help, index = index,
    path = decl.path, line = decl.line,
  }
  -- area: written on the question, or the last area declared above it
  local area_id = e.area
  if area_id == nil then
    area_id = current_area and current_area.id
  end
  if area_id == nil then
    errors:add(decl.path, decl.line, "%s has no area: declare area { ... } above it or set area = \"...\"", what)
  elseif not area_by_id[area_id] then
    errors:add(decl.path, decl.line, "%s: area %s is not declared (areas: %s)", what, problems.show(area_id),
      table.concat(sorted_keys(area_by_id), ", "))
  end
  q.area = area_id
  if not QUESTION_TYPES[e.type] then
    errors:add(decl.path, decl.line, "%s: type must be one of %s (got %s)", what, TYPE_LIST, problems.show(e.type))
  end
  if not nonempty_string(e.text) then
    errors:add(decl.path, decl.line, "%s: text must be the question as the client reads it (got %s)", what, problems.show(e.text))
  end
  if e.help ~= nil and type(e.help) ~= "string" then
    errors:add(decl.path, decl.line, "%s: help must be a text (got %s)", what, problems.show(e.help))
  end
  if e.label ~= nil and not nonempty_string(e.label) then
    errors:add(decl.path, decl.line, "%s: label must be a short text (got %s)", what, problems.show(e.label))
  end
  q.label = nonempty_string(e.label) and e.label or e.text
  local scored = e.type ~= "text"
  if not scored then
    if e.weight ~= nil then
      errors:add(decl.path, decl.line, "%s: text questions are not scored; remove weight", what)
    end
    q.weight = 0
  else
    q.weight = e.weight == nil and 1 or e.weight
    if not positive_number(q.weight) then
      errors:add(decl.path, decl.line, "%s: weight must be a positive number (got %s)", what, problems.show(e.weight))
      q.weight = 1
    end
  end
  if e.required ~= nil and type(e.required) ~= "boolean" then
    errors:add(decl.path, decl.line, "%s: required must be true or false (got %s)", what, problems.show(e.required))
  end
  if e.required == nil then
    q.required = scored
  else
    q.required = e.required == true
  end
  if e.na_allowed ~= nil and type(e.na_allowed) ~= "boolean" then
    errors:add(decl.path, decl.line, "%s: na_allowed must be true or false (got %s)", what, problems.show(e.na_allowed))
  end
  q.na_allowed = e.na_allowed == true
  if q.na_allowed and not scored then
    errors:add(decl.path, decl.line, "%s: a text question can simply be left empty; remove na_allowed", what)
  end
  if e.visible_if ~= nil and type(e.visible_if) ~= "function" then
    errors:add(decl.path, decl.line, "%s: visible_if must be a function of the answers, e.g. function(a) return a.x == \"yes\" end (got %s)",
      what, problems.show(e.visible_if))
  end
  q.visible_if = type(e.visible_if) == "function" and e.visible_if or nil
  q.conditional = q.visible_if ~= nil
  if e.agents ~= nil then
    if type(e.agents) ~= "table" then
      errors:add(decl.path, decl.line, "%s: agents must be a list of agent ids from the KB catalogue", what)
    else
      for _, id in ipairs(e.agents) do
        if not K.agent_by_id[id] then
          errors:add(decl.path, decl.line, "%s: agent %s is not in the KB catalogue (known: %s)", what,
            problems.show(id), table.concat(sorted_keys(K.agent_by_id), ", "))
        end
      end
    end
  end
  q.agents = type(e.agents) == "table" and sandbox.copy(e.agents) or {}

  -- fields that belong to one type only
  local own = {
    levels = "scale", choices = "single or multi", unit = "kpi", min = "kpi", max = "kpi",
    benchmark = "kpi", max_length = "text",
  }
  for key, kinds in pairs(own) do
    if e[key] ~= nil and e.type and not kinds:find(e.type, 1, true) then
      errors:add(decl.path, decl.line, "%s: %s belongs to %s questions, not %s", what, key, kinds, tostring(e.type))
    end
  end

  if e.type == "scale" then
    if type(e.levels) ~= "table" or #e.levels ~= 5 then
      errors:add(decl.path, decl.line, "%s: levels must list 5 descriptors, one per level 1-5 (got %s)", what,
        type(e.levels) == "table" and tostring(#e.levels) or problems.show(e.levels))
    else
      for i = 1, 5 do
        if not nonempty_string(e.levels[i]) then
          errors:add(decl.path, decl.line, "%s: level %d needs a descriptor text", what, i)
        end
      end
    end
    q.levels = type(e.levels) == "table" and sandbox.copy(e.levels) or {}
  elseif e.type == "single" or e.type == "multi" then
    compile_choices(decl, e, q, what, errors)
  elseif e.type == "kpi" then
    local b = type(e.benchmark) == "string" and K.benchmark_by_id[e.benchmark]
    if not b then
      errors:add(decl.path, decl.line, "%s: benchmark must be a benchmark id from kb/ (got %s; known: %s)", what,
        problems.show(e.benchmark), table.concat(sorted_keys(K.benchmark_by_id), ", "))
    end
    q.unit = e.unit or (b and b.unit)
    if not nonempty_string(q.unit) then
      errors:add(decl.path, decl.line, "%s: unit must be a text such as \"days\" (got %s)", what, problems.show(e.unit))
    end
    if type(e.min) ~= "number" or type(e.max) ~= "number" or not (e.min < e.max) then
      errors:add(decl.path, decl.line, "%s: min and max must be numbers with min < max (got min = %s, max = %s)", what,
        problems.show(e.min), problems.show(e.max))
    end
    q.min, q.max = e.min, e.max
    if b then
      q.benchmark = b.id
      q.benchmark_name = b.name
      q.benchmark_text = b.figures
      q.source = b.source
      q.better = b.better
      q.bands = b.bands and sandbox.copy(b.bands) or nil
    end
  elseif e.type == "text" then
    q.max_length = e.max_length or DEFAULT_TEXT_LENGTH
    if type(q.max_length) ~= "number" or q.max_length < 1 or q.max_length ~= math.floor(q.max_length) then
      errors:add(decl.path, decl.line, "%s: max_length must be a whole number of characters (got %s)", what,
        problems.show(e.max_length))
      q.max_length = DEFAULT_TEXT_LENGTH
    end
  end
  return q
end

-- visible_if may read only earlier questions: they are "the answers so far".
-- Run it once on an empty answer set through a table that records what it reads.
local function check_visible_if(q, question_by_id, errors)
  local reads = {}
  local probe = setmetatable({}, { __index = function(_, key)
    reads[#reads + 1] = key
    return nil
  end })
  local ok, err = pcall(q.visible_if, probe)
  if not ok then
    local file, line, text = problems.split(err)
    errors:add(file or q.path, line or q.line, "question '%s': visible_if fails on an empty answer set: %s",
      tostring(q.id), text)
    return
  end
  for _, key in ipairs(reads) do
    local other = question_by_id[key]
    if not other then
      errors:add(q.path, q.line, "question '%s': visible_if reads %s, which is not a question id", tostring(q.id),
        problems.show(key))
    elseif other.index >= q.index then
      errors:add(q.path, q.line, "question '%s': visible_if reads '%s', which comes later; a condition may only use earlier questions (move '%s' above it)",
        tostring(q.id), key, tostring(q.id))
    end
  end
end

local function load_questionnaire(T, path, text, env_for, K, errors)
  local heads, area_decls, question_decls = {}, {}, {}
  local order = {}
  local env = env_for(path)
  env.assessment = declarer("assessment", heads, path)
  env.area = declarer("area", area_decls, path, order)
  env.question = declarer("question", question_decls, path, order)
  if not run_file(path, text, env, errors) then
    return nil
  end
  local model = {
    id = T.id, title = T.id, description = "",
    areas = {}, area_by_id = {}, questions = {}, question_by_id = {}, kpis = {},
  }
  if #heads == 0 then
    errors:add(path, 1, "the questionnaire needs assessment { title = \"...\", description = \"...\" } at the top")
  else
    if #heads > 1 then
      errors:add(heads[2].path, heads[2].line, "assessment { ... } may appear only once (first at line %d)", heads[1].line)
    end
    local head = heads[1]
    check_fields(head, "assessment", "assessment", errors)
    if not nonempty_string(head.entry.title) then
      errors:add(head.path, head.line, "assessment: title must be a text (got %s)", problems.show(head.entry.title))
    else
      model.title = head.entry.title
    end
    if head.entry.description ~= nil and type(head.entry.description) ~= "string" then
      errors:add(head.path, head.line, "assessment: description must be a text")
    end
    model.description = type(head.entry.description) == "string" and head.entry.description or ""
  end
  -- Areas first (a question may name an area declared further down).
  for i, decl in ipairs(area_decls) do
    local area = compile_area(decl, i, K, errors)
    if type(area.id) == "string" then
      local first = model.area_by_id[area.id]
      if first then
        errors:add(decl.path, decl.line, "area id '%s' is already used at line %d", area.id, first.line)
      else
        model.area_by_id[area.id] = area
      end
    end
    model.areas[#model.areas + 1] = area
  end
  if #area_decls == 0 then
    errors:add(path, 1, "the questionnaire declares no areas: add area { id = ..., title = ..., kb = ... }")
  end
  local current_area
  for _, item in ipairs(order) do
    if item.kind == "area" then
      current_area = item.decl.entry
    else
      local q = compile_question(item.decl, #model.questions + 1, current_area, model.area_by_id, K, errors)
      if type(q.id) == "string" then
        local first = model.question_by_id[q.id]
        if first then
          errors:add(q.path, q.line, "question id '%s' is already used at line %d", q.id, first.line)
        else
          model.question_by_id[q.id] = q
        end
      end
      model.questions[#model.questions + 1] = q
      local area = model.area_by_id[q.area]
      if area then
        area.questions[#area.questions + 1] = q
      end
      if q.type == "kpi" then
        model.kpis[#model.kpis + 1] = q
      end
    end
  end
  for _, area in ipairs(model.areas) do
    local scored = 0
    for _, q in ipairs(area.questions) do
      if q.type ~= "text" then
        scored = scored + 1
      end
    end
    if scored == 0 then
      errors:add(area.path, area.line, "area '%s' has no scored questions; add question { ... } entries after it or remove the area",
        tostring(area.id))
    end
  end
  for _, q in ipairs(model.questions) do
    if q.visible_if then
      check_visible_if(q, model.question_by_id, errors)
    end
  end
  return model
end

---------------------------------------------------------------------------
-- scoring.lua
---------------------------------------------------------------------------

local function check_scoring(S, path, errors)
  if type(S) ~= "table" then
    errors:add(path, nil, "scoring.lua must end with `return scoring` (a table); it returned %s", problems.show(S))
    return false
  end
  local ok = true
  local function need(cond, fmt, ...)
    if not cond then
      errors:add(path, nil, fmt, ...)
      ok = false
    end
  end
  need(type(S.score) == "function", "scoring.lua must define function scoring.score(model, answers, visible, targets)")
  need(type(S.question_score) == "function", "scoring.lua must define function scoring.question_score(question, value)")
  need(type(S.method) == "string", "scoring.lua must set scoring.method to a Markdown text explaining the roll-up")
  need(whole_level(S.default_target), "scoring.default_target must be a whole level from 1 to 5 (got %s)",
    problems.show(S.default_target))
  if type(S.levels) ~= "table" or #S.levels ~= 5 then
    need(false, "scoring.levels must list the 5 maturity levels, each { name = \"...\", description = \"...\" }")
  else
    for i = 1, 5 do
      local l = S.levels[i]
      need(type(l) == "table" and nonempty_string(l.name) and nonempty_string(l.description),
        "scoring.levels[%d] must be { name = \"...\", description = \"...\" }", i)
    end
  end
  return ok
end

-- The scores table contract (the API, the report and the UI rely on it).
local function check_scores_shape(T, scores)
  if type(scores) ~= "table" then
    return "score() must return a table (got " .. problems.show(scores) .. ")"
  end
  local o = scores.overall
  if type(o) ~= "table" or type(o.level_name) ~= "string" or type(o.answered) ~= "number"
      or type(o.total) ~= "number" or type(o.completeness) ~= "number" then
    return "score() must return overall = { score, level, level_name, target, gap, completeness, answered, total }"
  end
  if type(scores.areas) ~= "table" or #scores.areas ~= #T.model.areas then
    return string.format("score() must return areas with one entry per area (%d)", #T.model.areas)
  end
  for i, a in ipairs(scores.areas) do
    if type(a) ~= "table" or a.id ~= T.model.areas[i].id or type(a.level_name) ~= "string"
        or type(a.target) ~= "number" or type(a.completeness) ~= "number" then
      return string.format("score(): areas[%d] must be { id = %q, score, level, level_name, target, gap, completeness, answered, total } in questionnaire order",
        i, tostring(T.model.areas[i].id))
    end
    if a.score ~= nil and (type(a.score) ~= "number" or a.score < 1 or a.score > 5 or type(a.level) ~= "number") then
      return string.format("score(): areas[%d].score must be a number from 1 to 5 with its level (got %s)", i, problems.show(a.score))
    end
  end
  if type(scores.kpis) ~= "table" or #scores.kpis ~= #T.model.kpis then
    return string.format("score() must return kpis with one entry per KPI question (%d)", #T.model.kpis)
  end
  return nil
end

---------------------------------------------------------------------------
-- report.lua
---------------------------------------------------------------------------

local function compile_section(decl, errors)
  local e = decl.entry
  local what = string.format("section %s", problems.show(e.id))
  check_fields(decl, "section", what, errors)
  if type(e.id) ~= "string" or not e.id:match(ID) then
    errors:add(decl.path, decl.line, "section id must be lowercase letters, digits and '_' (got %s)", problems.show(e.id))
  end
  if not nonempty_string(e.title) then
    errors:add(decl.path, decl.line, "%s: title must be a text (got %s)", what, problems.show(e.title))
  end
  local s = {
    id = e.id, title = e.title, kind = e.kind, depends = {}, max_tokens = e.max_tokens,
    prompt = e.prompt, draft = e.draft, check = e.check, render = e.render,
    path = decl.path, line = decl.line,
  }
  if e.depends ~= nil then
    if type(e.depends) ~= "table" then
      errors:add(decl.path, decl.line, "%s: depends must be a list of section ids", what)
    else
      for i, id in ipairs(e.depends) do
        s.depends[i] = id
      end
    end
  end
  if e.kind == "llm" then
    for _, fn in ipairs({ "prompt", "draft", "check" }) do
      if type(e[fn]) ~= "function" then
        errors:add(decl.path, decl.line, "%s: an llm section needs %s = function(ctx) ... end", what, fn)
      end
    end
    if e.render ~= nil then
      errors:add(decl.path, decl.line, "%s: render belongs to generated sections; an llm section has prompt, draft and check", what)
    end
    if type(e.max_tokens) ~= "number" or e.max_tokens < 1 or e.max_tokens ~= math.floor(e.max_tokens) then
      errors:add(decl.path, decl.line, "%s: max_tokens must be a whole positive number (got %s)", what, problems.show(e.max_tokens))
    end
  elseif e.kind == "generated" then
    if type(e.render) ~= "function" then
      errors:add(decl.path, decl.line, "%s: a generated section needs render = function(ctx) ... end", what)
    end
    for _, fn in ipairs({ "prompt", "draft", "check", "max_tokens" }) do
      if e[fn] ~= nil then
        errors:add(decl.path, decl.line, "%s: %s belongs to llm sections; a generated section has only render", what, fn)
      end
    end
  else
    errors:add(decl.path, decl.line, "%s: kind must be \"llm\" or \"generated\" (got %s)", what, problems.show(e.kind))
  end
  return s
end

-- Orders sections so each comes after what it depends on (display order among
-- those ready). Reports a dependency cycle once, naming its members.
local function run_order(sections, by_id, errors)
  local order, state = {}, {}
  local function visit(s, trail)
    if state[s.id] == "done" then
      return
    end
    if state[s.id] == "active" then
      local names = {}
      for i = #trail, 1, -1 do
        names[#names + 1] = trail[i]
        if trail[i] == s.id then
          break
        end
      end
      local cycle = {}
      for i = #names, 1, -1 do
        cycle[#cycle + 1] = names[i]
      end
      cycle[#cycle + 1] = s.id
      errors:add(s.path, s.line, "sections depend on each other in a cycle: %s", table.concat(cycle, " -> "))
      return "cycle"
    end
    state[s.id] = "active"
    trail[#trail + 1] = s.id
    for _, dep in ipairs(s.depends) do
      local d = by_id[dep]
      if d and visit(d, trail) == "cycle" then
        return "cycle"
      end
    end
    trail[#trail] = nil
    state[s.id] = "done"
    order[#order + 1] = s.id
  end
  for _, s in ipairs(sections) do
    if type(s.id) == "string" and visit(s, {}) == "cycle" then
      return nil
    end
  end
  return order
end

local function load_report(T, path, text, env_for, errors)
  local decls = {}
  local env = env_for(path)
  env.section = declarer("section", decls, path)
  if not run_file(path, text, env, errors, T.lib) then
    return nil
  end
  local sections, by_id = {}, {}
  for _, decl in ipairs(decls) do
    local s = compile_section(decl, errors)
    if type(s.id) == "string" then
      if by_id[s.id] then
        errors:add(s.path, s.line, "section id '%s' is already used at line %d", s.id, by_id[s.id].line)
      else
        by_id[s.id] = s
      end
    end
    sections[#sections + 1] = s
  end
  if #sections == 0 then
    errors:add(path, 1, "report.lua declares no sections: add section { id = ..., title = ..., kind = ... }")
  end
  for _, s in ipairs(sections) do
    for _, dep in ipairs(s.depends) do
      if not by_id[dep] then
        errors:add(s.path, s.line, "section '%s' depends on %s, which is not a section id", tostring(s.id), problems.show(dep))
      elseif dep == s.id then
        errors:add(s.path, s.line, "section '%s' depends on itself", s.id)
      end
    end
  end
  return sections, by_id, run_order(sections, by_id, errors)
end

---------------------------------------------------------------------------
-- the type
---------------------------------------------------------------------------

-- A plausible full answer set (middle answers, every KPI at the middle of its
-- range) used to try scoring and every report section at load time, so a script
-- that only fails when it meets real answers fails in `o2c check`, not in a report.
local function sample_answers(model, pick)
  local set = {}
  for _, q in ipairs(model.questions) do
    if q.type == "scale" then
      set[q.id] = pick == "high" and 5 or 3
    elseif q.type == "single" then
      local best = q.choices[1]
      for _, c in ipairs(q.choices) do
        if pick == "high" and c.value > best.value then
          best = c
        elseif pick ~= "high" and math.abs(c.value - 3) < math.abs(best.value - 3) then
          best = c
        end
      end
      set[q.id] = best and best.id
    elseif q.type == "multi" then
      local list = {}
      for i, c in ipairs(q.choices) do
        if pick == "high" or i % 2 == 1 then
          list[#list + 1] = c.id
        end
      end
      set[q.id] = list
    elseif q.type == "kpi" then
      set[q.id] = (q.min + q.max) / 2
    elseif q.type == "text" then
      set[q.id] = "Sample evidence note."
    end
  end
  return set
end

loader.sample_answers = sample_answers

local function check_sections(T, errors)
  for _, pick in ipairs({ "middle", "high" }) do
    local ctx = {
      assessment = { client = "Sample client", type = T.id },
      answers = sample_answers(T.model, pick),
      attachments = { { name = "ageing-report.png", media_type = "image/png", size = 1024 } },
    }
    ctx.sections = {}
    -- Scored once for all the sections, as the report runner does; when
    -- scoring fails, each section scores for itself and reports the error.
    local scored, scores = pcall(answers.score, T, answers.values(ctx.answers), answers.targets(T, nil))
    if scored and type(scores) == "table" then ctx.scores = scores end
    for _, id in ipairs(T.run_order) do
      local s = T.section_by_id[id]
      local ok, err = pcall(function()
        if s.kind == "llm" then
          section_api.prompt(T, id, ctx)
          local text = section_api.draft(T, id, ctx)
          local passed, reason = section_api.check(T, id, text, ctx)
          if not passed then
            error({ file = s.path, line = s.line,
              message = string.format("section '%s': its offline draft does not pass its own check: %s", id, tostring(reason)) })
          end
          ctx.sections[id] = text
        else
          ctx.sections[id] = section_api.render(T, id, ctx)
        end
      end)
      if not ok then
        if type(err) == "table" then
          errors:add(err.file, err.line, err.message)
        else
          local file, line, text = problems.split(err)
          errors:add(file or s.path, line or s.line, "section '%s' (%s answers): %s", id, pick, text)
        end
        return
      end
    end
  end
end

-- loader.load_type(spec) -> T or nil
--   spec = { id=, folder=, files = {path -> text}, kb = K, kb_view = view,
--            errors = collector, decode_json = function or nil }
function loader.load_type(spec)
  local errors, K, files, folder = spec.errors, spec.kb, spec.files, spec.folder
  local before = errors:count()
  local T = { id = spec.id, folder = folder, files = {} }
  for _, name in ipairs({ "questionnaire", "scoring", "report" }) do
    local path = folder .. "/" .. name .. ".lua"
    T.files[name] = path
    if not files[path] then
      errors:add(path, nil, "missing: every assessment type has questionnaire.lua, scoring.lua and report.lua")
    end
  end
  if errors:count() > before then
    return nil
  end

  -- One module cache and one `require` per type. Each file gets a fresh
  -- environment; `questionnaire` is filled in once the questionnaire is compiled.
  local cache, shared = {}, { kb = spec.kb_view, chart = sandbox.readonly(chart) }
  local require_fn
  local function env_for()
    return sandbox.env({
      require = require_fn, kb = shared.kb, chart = shared.chart, questionnaire = shared.questionnaire,
    })
  end
  require_fn = sandbox.requirer(folder, files, cache, env_for, function() return shared.lib end)
  T.require = require_fn

  local model = load_questionnaire(T, T.files.questionnaire, files[T.files.questionnaire], env_for, K, errors)
  if not model or errors:count() > before then
    return nil
  end
  T.model = model
  shared.questionnaire = sandbox.readonly(model)
  -- The engine's report library, bound to this questionnaire: report.lua and
  -- the modules get it as `...`; the appendix reads the method once scoring is in.
  shared.lib = library.for_type(shared.questionnaire, shared.kb, function()
    return T.scoring and T.scoring.method
  end)
  T.lib = shared.lib

  -- scoring.lua is an ordinary module: loading it through require puts it in
  -- the cache, so report.lua's `require "scoring"` gets the same table.
  local ok, S = pcall(require_fn, "scoring")
  if not ok then
    errors:add_raised(T.files.scoring, S)
    return nil
  end
  if not check_scoring(S, T.files.scoring, errors) then
    return nil
  end
  T.scoring = S
  T.levels = {}
  for i = 1, 5 do
    T.levels[i] = { level = i, name = S.levels[i].name, description = S.levels[i].description }
  end

  -- run-time tables precomputed once per generation
  T.default_targets, T.uniform_targets = {}, {}
  local ids = {}
  for _, area in ipairs(model.areas) do
    T.default_targets[area.id] = area.target or math.tointeger(S.default_target)
    ids[#ids + 1] = area.id
  end
  T.area_list = table.concat(ids, ", ")
  for level = 1, 5 do
    local map = {}
    for _, area in ipairs(model.areas) do
      map[area.id] = level
    end
    T.uniform_targets[level] = map
  end
  T.conditional, T.all_visible, T.last_conditional = {}, {}, 0
  for i, q in ipairs(model.questions) do
    T.all_visible[q.id] = true
    if q.visible_if then
      T.conditional[#T.conditional + 1] = q
      T.last_conditional = i -- visibility needs walking only this far
    end
  end

  for _, pick in ipairs({ "empty", "middle", "high" }) do
    local set = pick == "empty" and {} or sample_answers(model, pick)
    local scored_ok, scores = pcall(answers.score, T, set, nil)
    local problem
    if not scored_ok then
      local file, line, text = problems.split(scores)
      errors:add(file or T.files.scoring, line, "scoring fails on %s answers: %s", pick == "empty" and "an empty set of" or pick, text)
      return nil
    end
    problem = check_scores_shape(T, scores)
    if problem then
      errors:add(T.files.scoring, nil, "%s", problem)
      return nil
    end
  end

  local sections, by_id, order = load_report(T, T.files.report, files[T.files.report], env_for, errors)
  if not sections or errors:count() > before then
    return nil
  end
  T.sections, T.section_by_id, T.run_order = sections, by_id, order
  check_sections(T, errors)

  -- examples/*.json must be valid answer sets (checked when the host can decode JSON)
  T.examples = {}
  for path, text in pairs(files) do
    local name = path:match("^" .. folder:gsub("%p", "%%%0") .. "/examples/([^/]+)%.json$")
    if name then
      T.examples[name] = path
      if spec.decode_json then
        local decoded_ok, data = pcall(spec.decode_json, text)
        if not decoded_ok or type(data) ~= "table" then
          errors:add(path, nil, "not valid JSON: %s", tostring(data))
        else
          local valid, list = answers.validate(T, data.answers or {})
          if not valid then
            for _, e in ipairs(list) do
              errors:add(path, nil, "%s: %s", e.field, e.message)
            end
          end
          local targets_ok, tlist = answers.validate_targets(T, data.targets)
          if not targets_ok then
            for _, e in ipairs(tlist) do
              errors:add(path, nil, "%s: %s", e.field, e.message)
            end
          end
        end
      end
    end
  end
  if errors:count() > before then
    return nil
  end
  return T
end

return loader
