-- Tests of core/lua/generation itself (loader, sandbox, KB parser, gen API, spec
-- harness), run by tests/lua/generation/run.lua with access to the emulated host.
-- The assessment's own behaviour is tested by scripts/o2c/spec/*_spec.lua.
local engine = {}

local cjson_ok, cjson = pcall(require, "cjson")

function engine.run(host)
  local passed, failed = 0, 0
  local current

  local function fail(message, level)
    error({ engine_failure = true, message = message }, level or 2)
  end
  local function eq(actual, expected, what)
    if actual ~= expected then
      fail(string.format("%s: expected %s, got %s", what or "value", tostring(expected), tostring(actual)), 3)
    end
  end
  local function has(text, needle, what)
    if type(text) ~= "string" or not text:find(needle, 1, true) then
      fail(string.format("%s: expected to contain %q, got %s", what or "text", needle, tostring(text)), 3)
    end
  end
  local function case(name, fn)
    current = name
    local ok, err = xpcall(fn, function(e)
      if type(e) == "table" and e.engine_failure then
        return e.message
      end
      return debug.traceback(tostring(e), 2)
    end)
    if ok then
      passed = passed + 1
    else
      failed = failed + 1
      print("tests/lua/generation/engine_test.lua: " .. name .. ": " .. tostring(err))
    end
  end

  local sources = host.load_sources()
  local function with(changes)
    -- a copy of the sources with some files replaced (text), added, or removed (false)
    local list, done = {}, {}
    for _, s in ipairs(sources) do
      local v = changes[s.path]
      if v == nil then
        list[#list + 1] = s
      elseif v ~= false then
        list[#list + 1] = { path = s.path, kind = s.kind, rel = s.rel, text = v }
      end
      done[s.path] = true
    end
    for path, text in pairs(changes) do
      if not done[path] and text then
        local root = path:match("^([^/]+)/")
        list[#list + 1] = { path = path, kind = root == "kb" and "kb" or "script", rel = path:sub(#root + 2), text = text }
      end
    end
    return list
  end
  local function text_of(path)
    for _, s in ipairs(sources) do
      if s.path == path then
        return s.text
      end
    end
    error("no source " .. path)
  end
  local function build(list)
    local M = host.new_state()
    return M.build(list or sources)
  end
  local function errors_text(errors)
    local lines = {}
    for i, e in ipairs(errors or {}) do
      lines[i] = host.format_problem(e)
    end
    return table.concat(lines, "\n")
  end

  local gen = build()
  if not gen then
    print("engine tests skipped: the sources do not build")
    return 0, 1
  end

  -------------------------------------------------------------------------
  -- gen API shapes
  -------------------------------------------------------------------------

  case("odd values in a multi-choice answer are problems, never errors (NaN, numbers, repeats)", function()
    local ok, problems = gen:validate_answers("o2c", { ca_remittance = { "email", 0 / 0, 7, "email" } })
    eq(ok, nil, "validates")
    eq(#problems, 3, "problems")
    has(problems[1].field, "answers.ca_remittance[2]")
    has(problems[3].message, "listed twice")
  end)

  case("notes and text answers must be UTF-8 without NUL; messages quote bad text as UTF-8", function()
    local bad = { "a\0b", "a\255b", "a\192\175b", "a\237\160\128b", "a\226\130" }
    for _, s in ipairs(bad) do
      local ok, problems = gen:validate_answers("o2c", { md_evidence = { value = "ok", note = s } })
      eq(ok, nil, "note " .. ("%q"):format(s))
      eq(problems[1].field, "answers.md_evidence.note", "note field")
      has(problems[1].message, s:find("\0", 1, true) and "NUL" or "invalid UTF-8 at byte 2")
      ok, problems = gen:validate_answers("o2c", { md_evidence = s })
      eq(ok, nil, "text answer " .. ("%q"):format(s))
      eq(problems[1].field, "answers.md_evidence", "text answer field")
    end
    eq(gen:validate_answers("o2c", { md_evidence = { value = "Prüfung ✓ 😀", note = "“ok”" } }), true,
      "valid UTF-8 passes")
    -- A long unknown choice is quoted cut on a character boundary, repaired.
    local _, problems = gen:validate_answers("o2c", { md_duplicates = string.rep("é", 30) .. "\255" })
    eq(utf8.len(problems[1].message) ~= nil, true, "message is UTF-8: " .. problems[1].message)
  end)

  case("summary counts areas, questions, sections, KB documents and agents", function()
    local t = gen:summary().types[1]
    eq(t.id, "o2c")
    eq(t.areas >= 8, true, "areas >= 8")
    eq(t.questions >= 40, true, "questions >= 40")
    eq(t.sections >= 6, true, "sections >= 6")
    eq(t.kb_docs >= 8, true, "kb_docs >= 8")
    eq(t.agents >= 12, true, "agents >= 12")
  end)

  case("questionnaire export carries what the UI needs", function()
    local q = gen:questionnaire("o2c")
    local by_id, types = {}, {}
    for _, x in ipairs(q.questions) do
      by_id[x.id] = x
      types[x.type] = true
    end
    for _, kind in ipairs({ "scale", "single", "multi", "kpi", "text" }) do
      eq(types[kind], true, "question type " .. kind)
    end
    eq(#by_id.md_ownership.levels, 5, "scale levels")
    eq(by_id.cr_scoring.choices[1].id, "judgement", "choices")
    eq(by_id.co_dso.unit, "days", "unit")
    eq(by_id.co_dso.max, 365, "max")
    eq(by_id.co_dso.benchmark.bands[1].at_most, 30, "bands")
    eq(by_id.co_dso.conditional, true, "conditional flag")
    eq(by_id.co_dso.visible_if, nil, "visible_if stays inside")
    eq(by_id.cr_bad_debt.na_allowed, true, "na_allowed")
    eq(by_id.md_evidence.required, false, "text not required")
    eq(q.levels[3].name, "Defined", "level names")
    eq(q.areas[4].target, 3, "default target")
    eq(#q.areas[1].questions, 5, "area question ids")
  end)

  case("outputs are fresh per call and never alias the generation", function()
    local q = gen:questionnaire("o2c")
    q.questions[1].text = "changed"
    eq(gen:questionnaire("o2c").questions[1].text ~= "changed", true, "questionnaire copy")
    local answers = { md_ownership = { value = 3, note = "n" } }
    gen:score("o2c", answers)
    eq(answers.md_ownership.note, "n", "input answers untouched")
  end)

  case("scores are deterministic and JSON-encodable", function()
    local e = cjson.decode(text_of("scripts/o2c/examples/median.json"))
    local a = cjson.encode(gen:score("o2c", e.answers, e.targets))
    local b = cjson.encode(gen:score("o2c", e.answers, e.targets))
    eq(a, b, "same input, same output")
    has(a, '"level_name":"Defined"', "encoded scores")
  end)

  case("visible lists question ids in questionnaire order", function()
    local v = gen:visible("o2c", {})
    eq(v[1], "md_ownership")
    for _, id in ipairs(v) do
      if id == "co_dso" then
        fail("co_dso visible with no answers")
      end
    end
  end)

  case("unknown type and unknown section raise clear errors", function()
    local ok, err = pcall(gen.score, gen, "p2p", {})
    eq(ok, false)
    has(err, "unknown assessment type \"p2p\" (loaded: o2c)")
    ok, err = pcall(gen.section_draft, gen, "o2c", "nope", {})
    eq(ok, false)
    has(err, "unknown report section \"nope\"")
    ok, err = pcall(gen.section_draft, gen, "o2c", "scorecard", {})
    has(err, "use section_render")
  end)

  case("kb() summarises documents, agents and benchmarks", function()
    local k = gen:kb()
    eq(#k.agents >= 12, true, "agents")
    eq(k.docs[1].path:sub(1, 3), "kb/", "doc path")
    local ids = {}
    for _, b in ipairs(k.benchmarks) do
      ids[b.id] = b
    end
    eq(ids.invoice_accuracy.figures, "No public benchmark.", "no public benchmark")
    eq(ids.dso.banded, true)
  end)

  case("agent_mentions finds catalogue names and flags invented ones", function()
    local known, unknown = gen:agent_mentions(
      "Use the **Cash Matching Agent** (`cash-matching-agent`), the Super Dunning Agent and `magic-agent`. An Agent may help.")
    eq(known[1], "cash-matching-agent")
    eq(#unknown, 2, "unknown count")
    eq(unknown[1], "magic-agent")
    eq(unknown[2], "Super Dunning Agent")
  end)

  case("scoring one full answer set stays well under 100 µs", function()
    local e = cjson.decode(text_of("scripts/o2c/examples/leader.json"))
    for _ = 1, 500 do
      gen:score("o2c", e.answers, e.targets)
    end
    local n = 5000
    local t0 = os.clock()
    for _ = 1, n do
      gen:score("o2c", e.answers, e.targets)
    end
    local us = (os.clock() - t0) / n * 1e6
    eq(us < 100, true, string.format("score takes %.1f µs", us))
  end)

  -------------------------------------------------------------------------
  -- the report library's text: laggard, median, leader, empty, half-answered
  -------------------------------------------------------------------------

  local function example(name)
    return cjson.decode(text_of("scripts/o2c/examples/" .. name .. ".json"))
  end
  -- Half of the median company: the questions that open the KPIs of billing,
  -- cash application, collections and disputes are not answered yet.
  local function half_answers()
    local kept = {}
    for id, v in pairs(example("median").answers) do
      if (id:match("^md_") or id:match("^cr_") or id:match("^om_") or id:match("^bi_") or id == "ca_remittance"
          or id == "co_strategy" or id == "co_dunning") and not id:match("^bi_accuracy") then
        kept[id] = v
      end
    end
    return kept
  end
  local function answer_set(name)
    if name == "empty" then return {}, nil end
    if name == "half" then return half_answers(), example("median").targets end
    local e = example(name)
    return e.answers, e.targets
  end
  local REPORT = { generation = "3d5ef2a9c0b1d4e7", date_ms = 1796292000000 } -- 3 December 2026
  -- Every section of the o2c plan as the offline provider writes it.
  local function offline_texts(g, answers, targets)
    local ctx = { assessment = { client = "Example Co", type = "o2c" }, answers = answers, targets = targets,
      scores = g:score("o2c", answers, targets), sections = {}, attachments = {}, report = REPORT }
    local plan = g:report_plan("o2c")
    local kind = {}
    for _, sec in ipairs(plan.sections) do kind[sec.id] = sec.kind end
    local texts = {}
    for _, id in ipairs(plan.run_order) do
      ctx.sections = texts
      if kind[id] == "llm" then
        texts[id] = g:section_draft("o2c", id, ctx)
        local ok, reason = g:section_check("o2c", id, texts[id], ctx)
        eq(ok, true, id .. " passes its check: " .. tostring(reason))
      else
        texts[id] = g:section_render("o2c", id, ctx)
      end
    end
    return texts, plan
  end
  local function kpi_of(scores, id)
    for _, k in ipairs(scores.kpis) do
      if k.id == id then return k end
    end
  end
  local SETS = { "laggard", "median", "leader", "empty", "half" }

  case("a KPI hidden until an unanswered question is answered is unanswered, not hidden (waits_for names it)", function()
    local s = gen:score("o2c", half_answers())
    eq(kpi_of(s, "co_dso").status, "unanswered", "co_dso")
    eq(kpi_of(s, "co_dso").waits_for, "co_dso_tracking", "co_dso waits for")
    eq(kpi_of(s, "di_days").waits_for, "di_logging", "di_days waits for")
    local a = half_answers()
    a.co_dso_tracking = "not_tracked"
    s = gen:score("o2c", a)
    eq(kpi_of(s, "co_dso").status, "hidden", "not tracked: hidden by the answer")
    eq(kpi_of(s, "co_dso").waits_for, nil, "not tracked: waits for nothing")
    eq(kpi_of(gen:score("o2c", example("laggard").answers), "bi_accuracy").status, "hidden", "laggard says No")
  end)

  case("waiting follows a chain: a question behind a waiting one waits for the first unanswered question", function()
    local extra = table.concat({
      'question { id = "co_dso_trend", type = "kpi", label = "DSO trend", text = "DSO a year ago (days).",',
      '  benchmark = "dso", min = 0, max = 365, visible_if = function(a) return a.co_dso ~= nil end }',
      '',
    }, "\n")
    local g, errors = build(with({ ["scripts/o2c/questionnaire.lua"] = text_of("scripts/o2c/questionnaire.lua") .. extra }))
    eq(g ~= nil, true, errors_text(errors))
    eq(kpi_of(g:score("o2c", {}), "co_dso_trend").waits_for, "co_dso_tracking", "behind a waiting question")
    eq(kpi_of(g:score("o2c", { co_dso_tracking = "monthly" }), "co_dso_trend").waits_for, "co_dso", "behind a shown one")
    eq(kpi_of(g:score("o2c", { co_dso_tracking = "not_tracked" }), "co_dso_trend").status, "hidden", "decided")
  end)

  case("the overall target depends only on the targets, never on which areas are answered", function()
    for _, name in ipairs({ "laggard", "median", "leader" }) do
      local t = example(name).targets
      local full = gen:score("o2c", example(name).answers, t).overall.target
      eq(gen:score("o2c", {}, t).overall.target, full, name .. ": empty")
      eq(gen:score("o2c", half_answers(), t).overall.target, full, name .. ": half")
    end
  end)

  case("\"not measured\" only where an answer says so; unanswered KPIs only in the open questions", function()
    local laggard = offline_texts(gen, answer_set("laggard"))
    has(laggard.executive_summary, "**Not measured today:** Invoice accuracy, auto-match rate and dispute resolution time.")
    for _, name in ipairs({ "empty", "half" }) do
      local texts, plan = offline_texts(gen, answer_set(name))
      for _, sec in ipairs(plan.sections) do
        if sec.id ~= "open_questions" and texts[sec.id]:lower():find("not measured", 1, true) then
          fail(name .. " " .. sec.id .. " says \"not measured\" of an unanswered KPI")
        end
      end
      has(texts.open_questions, "- **DSO**: asked once “DSO measurement” is answered.", name)
    end
    local complete = offline_texts(gen, answer_set("median"))
    has(complete.open_questions, "nothing is open")
  end)

  case("no heading without content, no code font and no agent id, for all five answer sets", function()
    local agent_ids = {}
    for _, a in ipairs(gen:kb().agents) do agent_ids[#agent_ids + 1] = a.id end
    for _, name in ipairs(SETS) do
      local texts, plan = offline_texts(gen, answer_set(name))
      for _, sec in ipairs(plan.sections) do
        local text = texts[sec.id]
        local where = name .. " " .. sec.id
        if text:find("`", 1, true) then fail(where .. " uses code font: " .. text:match("[^\n]*`[^\n]*")) end
        for _, id in ipairs(agent_ids) do
          if text:find(id, 1, true) then fail(where .. " names the agent id " .. id) end
        end
        if text:find(":%s*$") then fail(where .. " ends with a lead-in that has nothing under it") end
        for heading, rest in text:gmatch("\n?(#+ [^\n]*)\n%s*()") do
          local after = text:sub(rest)
          if after == "" then fail(where .. ": nothing under " .. heading) end
        end
      end
    end
  end)

  case("the appendix tells when the report was prepared and from which scripts version", function()
    for _, name in ipairs(SETS) do
      local texts = offline_texts(gen, answer_set(name))
      has(texts.appendix, "### About this report", name)
      has(texts.appendix, "This report was prepared on 3 December 2026.", name)
      has(texts.appendix, "are version 3d5ef2a9c0b1d4e7", name)
    end
  end)

  -------------------------------------------------------------------------
  -- the sandbox
  -------------------------------------------------------------------------

  local function report_with(extra)
    return with({ ["scripts/o2c/report.lua"] = text_of("scripts/o2c/report.lua") .. extra })
  end

  case("scripts cannot reach io, os.execute, debug, GEN_MODULE or the real string table; load is text-only with an env", function()
    local probe = table.concat({
      'assert(io == nil, "io")',
      'assert(debug == nil, "debug")',
      'assert(os.execute == nil, "os.execute")',
      'assert(not pcall(load, "return 1"), "load without an env")',
      'assert(load("return 1", "=x", "t", {})() == 1, "load with an env")',
      'assert(dofile == nil and loadfile == nil, "dofile")',
      'assert(GEN_MODULE == nil and GEN_JSON_DECODE == nil, "host globals")',
      'assert(getmetatable("") == "locked", "string metatable")',
      'string.format = nil',
      '',
    }, "\n")
    local g, errors = build(report_with(probe))
    eq(g ~= nil, true, errors_text(errors))
    eq(string.format("%d", 1), "1", "the real string.format is untouched")
  end)

  case("scripts cannot change the questionnaire or the KB they read", function()
    local base = text_of("scripts/o2c/report.lua")
    local n = select(2, base:gsub("\n", "\n")) + 1
    local _, errors = build(report_with('questionnaire.areas[1].weight = 100\n'))
    local text = errors_text(errors)
    has(text, "scripts/o2c/report.lua:" .. n .. ": cannot change field \"weight\": this table is read-only")
    _, errors = build(report_with('table.sort(kb.agents, function(a, b) return a.id > b.id end)\n'))
    has(errors_text(errors), "read-only")
  end)

  case("require resolves only inside the type's folder", function()
    local base = text_of("scripts/o2c/report.lua")
    local n = select(2, base:gsub("\n", "\n")) + 1
    for _, name in ipairs({ "../kb/agents", "/etc/passwd", "./facts", "spec/../../x" }) do
      local _, errors = build(report_with('require "' .. name .. '"\n'))
      has(errors_text(errors), "scripts/o2c/report.lua:" .. n .. ": require \"" .. name .. "\": only files inside scripts/o2c/", name)
    end
    local _, errors = build(report_with('require "missing_module"\n'))
    has(errors_text(errors), "scripts/o2c/report.lua:" .. n .. ": require \"missing_module\": no file scripts/o2c/missing_module.lua")
    local g = build(with({
      ["scripts/o2c/lib/extra.lua"] = "return { answer = 42 }\n",
      ["scripts/o2c/report.lua"] = text_of("scripts/o2c/report.lua") .. 'assert(require("lib.extra").answer == 42)\n',
    }))
    eq(g ~= nil, true, "require of a sub-folder module")
  end)

  -------------------------------------------------------------------------
  -- load-time errors
  -------------------------------------------------------------------------

  case("a syntax error appended to scoring.lua names scoring.lua:<line>", function()
    local base = text_of("scripts/o2c/scoring.lua")
    local n = select(2, base:gsub("\n", "\n")) + 1
    local g, errors = build(with({ ["scripts/o2c/scoring.lua"] = base .. "this is not lua\n" }))
    eq(g, nil)
    has(errors_text(errors), "scripts/o2c/scoring.lua:" .. n .. ":")
  end)

  case("a missing scoring.lua or an empty KB is reported", function()
    local _, errors = build(with({ ["scripts/o2c/scoring.lua"] = false }))
    has(errors_text(errors), "scripts/o2c/scoring.lua: missing: every assessment type has questionnaire.lua, scoring.lua and report.lua")
    local only_scripts = {}
    for _, s in ipairs(sources) do
      if s.kind ~= "kb" then
        only_scripts[#only_scripts + 1] = s
      end
    end
    _, errors = build(only_scripts)
    has(errors_text(errors), "the knowledge base is empty")
  end)

  case("scoring.lua must return its parts", function()
    local _, errors = build(with({ ["scripts/o2c/scoring.lua"] = "return { levels = {} }\n" }))
    local text = errors_text(errors)
    has(text, "scoring.lua must define function scoring.score(model, answers, visible, targets)")
    has(text, "scoring.levels must list the 5 maturity levels")
  end)

  case("a scoring function that breaks the scores table is caught", function()
    local base = text_of("scripts/o2c/scoring.lua")
    local broken = base:gsub("return scoring\n$", "scoring.score = function() return { overall = {} } end\nreturn scoring\n")
    local _, errors = build(with({ ["scripts/o2c/scoring.lua"] = broken }))
    has(errors_text(errors), "score() must return overall = {")
  end)

  case("a section whose draft fails at run time is caught by the build", function()
    local base = text_of("scripts/o2c/report.lua")
    local broken = base:gsub("draft = drafts.recommendations,", "draft = function(ctx) return ctx.nothing.here end,", 1)
    local _, errors = build(with({ ["scripts/o2c/report.lua"] = broken }))
    has(errors_text(errors), "attempt to index a nil value (field 'nothing')")
    has(errors_text(errors), "scripts/o2c/report.lua:")
  end)

  case("front matter: missing block, unclosed block, bad list, missing key", function()
    local cases = {
      { "# no front matter\n", "kb/areas/x.md:1: a KB document starts with a front matter block" },
      { "---\nid: x\n", "kb/areas/x.md:1: the front matter is not closed" },
      { "---\nid: x\ntitle: X\narea: general\ntags: a, b\n---\nbody\n", "kb/areas/x.md:5: 'tags' must be a list like [a, b, c]" },
      { "---\nid: x\ntitle: X\ntags: [a]\n---\nbody\n", "kb/areas/x.md:1: the front matter needs 'area: ...'" },
      { "---\nid: x\nid: y\ntitle: X\narea: general\ntags: [a]\n---\nbody\n", "kb/areas/x.md:3: front matter key 'id' appears twice (first at line 2)" },
      { "---\nid: x\ntitle X\narea: general\ntags: [a]\n---\nbody\n", "kb/areas/x.md:3: expected 'key: value'" },
    }
    for _, c in ipairs(cases) do
      local _, errors = build(with({ ["kb/areas/x.md"] = c[1] }))
      has(errors_text(errors), c[2])
    end
  end)

  case("KB documents referenced by an area need their moves by level", function()
    local doc = text_of("kb/areas/credit.md"):gsub("%- Level 3:", "- Levl 3:", 1)
    local _, errors = build(with({ ["kb/areas/credit.md"] = doc }))
    has(errors_text(errors), "a 'Moves by level' bullet reads '- Level N: what to do'")
  end)

  case("agents: names end in Agent, areas and KPIs exist, ids are unique", function()
    local extra = 'agent { id = "x-agent", name = "X Bot", area = "nowhere", automates = "x", prerequisites = { "y" }, kpi = "zzz" }\n'
      .. 'agent { id = "dunning-agent", name = "Dunning Agent", area = "collections", automates = "x", prerequisites = { "y" }, kpi = "dso" }\n'
    local _, errors = build(with({ ["kb/agents.lua"] = text_of("kb/agents.lua") .. extra }))
    local text = errors_text(errors)
    has(text, "name must end with the word 'Agent'")
    has(text, "area 'nowhere' has no KB document")
    has(text, "kpi 'zzz' is not a benchmark id")
    has(text, "agent id 'dunning-agent' is already used")
  end)

  case("a type folder with a bad name and a script with no types are reported", function()
    local _, errors = build(with({ ["scripts/Bad Type/questionnaire.lua"] = "" }))
    has(errors_text(errors), "the folder name \"Bad Type\" is used as the assessment type id")
    local only_kb = {}
    for _, s in ipairs(sources) do
      if s.kind == "kb" then
        only_kb[#only_kb + 1] = s
      end
    end
    _, errors = build(only_kb)
    has(errors_text(errors), "no assessment type found")
  end)

  case("a type folder given as the root (rel = \"questionnaire.lua\") is found", function()
    local list = {}
    for _, src in ipairs(sources) do
      local copy = { path = src.path, kind = src.kind, rel = src.rel, text = src.text }
      if src.kind == "script" then
        copy.rel = src.path:match("^scripts/o2c/(.*)$")
      end
      if copy.rel then
        list[#list + 1] = copy
      end
    end
    local g, errors = build(list)
    eq(g ~= nil, true, errors_text(errors))
    eq(g:summary().types[1].id, "o2c")
  end)

  case("a broken example answer file is reported by the build", function()
    local _, errors = build(with({ ["scripts/o2c/examples/broken.json"] = '{"answers":{"md_ownership":9}}' }))
    has(errors_text(errors), "scripts/o2c/examples/broken.json: answers.md_ownership: expected a whole number from 1 to 5 (got 9)")
  end)

  -------------------------------------------------------------------------
  -- the spec harness
  -------------------------------------------------------------------------

  local FIXTURE = "scripts/o2c/spec/zz_fixture_spec.lua"
  local fixture = table.concat({
    'describe("outer", function()',                                            -- 1
    '  local log = {}',                                                         -- 2
    '  before_each(function() log[#log + 1] = "before" end)',                   -- 3
    '  after_each(function() log[#log + 1] = "after" end)',                     -- 4
    '  it("passes", function() expect(1 + 1).to_equal(2) end)',                 -- 5
    '  it("fails a matcher", function()',                                       -- 6
    '    expect({ a = 1 }).to_equal({ a = 2 })',                                -- 7
    '  end)',                                                                   -- 8
    '  it("raises in code", function()',                                        -- 9
    '    local t = nil',                                                        -- 10
    '    return t.x',                                                           -- 11
    '  end)',                                                                   -- 12
    '  it("loops forever", function() while true do end end)',                  -- 13
    '  it("swallows the kill", function() while true do pcall(function() while true do end end) end end)', -- 14
    '  it("eats memory", function() local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end end)',   -- 15
    '  it("ran the hooks", function() expect(log).to_contain("after") end)',    -- 16
    '  describe("inner", function()',                                           -- 17
    '    it("asserts", function() assert(false, "custom message") end)',        -- 18
    '  end)',                                                                   -- 19
    'end)',                                                                     -- 20
    'it("fails in another file", function() require("scoring").level(nil) end)', -- 21
    'it("escapes", function() require "../../kb/agents" end)',                  -- 22
    'it("uses never", function() expect(3).never.to_equal(3) end)',             -- 23
    'it("loads the assessment", function() expect(assessment.default().id).to_equal("o2c") end)', -- 24
    '',
  }, "\n")

  case("the harness reports file:line per failure and survives runaway tests", function()
    local list = with({ [FIXTURE] = fixture })
    local M = host.new_state()
    local ok, n, tests, errors = host.with_budget(M.spec_collect, list, FIXTURE)
    eq(ok, true, "collect")
    eq(#errors, 0, "collect errors: " .. errors_text(errors))
    eq(n, 12, "it blocks")
    eq(tests[2].name, "outer fails a matcher")
    eq(tests[2].line, 6)
    local results = {}
    for i = 1, n do
      local run_ok, result = host.with_budget_limits({ instructions = 20000000, kb = 64 * 1024 }, M.spec_run, i)
      results[i] = run_ok and result or { killed = result }
    end
    eq(results[1].ok, true, "passes")
    eq(results[1].assertions, 1, "assertion count")
    local f = results[2].failures[1]
    eq(f.file, FIXTURE)
    eq(f.line, 7, "matcher line")
    has(f.message, "expected {a = 1} to equal {a = 2} (first difference at [\"a\"])")
    eq(results[3].failures[1].line, 11, "runtime error line")
    has(results[3].failures[1].message, "attempt to index a nil value")
    eq(results[4].killed, "instruction budget exceeded", "infinite loop")
    eq(results[5].killed, "instruction budget exceeded", "pcall cannot swallow the kill")
    eq(results[6].killed, "memory budget exceeded", "memory bomb")
    eq(results[7].ok, true, "the next test still runs, hooks ran")
    eq(results[8].failures[1].line, 18)
    eq(results[8].failures[1].message, "custom message")
    eq(results[8].name, "outer inner asserts")
    eq(results[9].failures[1].line, 21, "error in another file is placed at the it line")
    has(results[9].failures[1].message, "error: ")
    eq(results[10].failures[1].line, 22, "escaping require")
    has(results[10].failures[1].message, "only files inside scripts/o2c/ can be required")
    eq(results[11].failures[1].line, 23)
    has(results[11].failures[1].message, "not: expected 3 to equal 3")
    eq(results[12].ok, true, "assessment.default")
  end)

  case("a syntax error in a spec file is a collect error with its line", function()
    local M = host.new_state()
    local n, _, errors = M.spec_collect(with({ [FIXTURE] = 'it("x", function() end)\n\nit("y", function( end)\n' }), FIXTURE)
    eq(n, 0)
    eq(errors[1].file, FIXTURE)
    eq(errors[1].line, 3)
  end)

  case("run_spec runs a whole file in one call", function()
    local M = host.new_state()
    local report = M.run_spec(sources, "scripts/o2c/spec/targets_spec.lua")
    eq(report.failed, 0)
    eq(report.passed > 0, true)
  end)

  return passed, failed
end

return engine
