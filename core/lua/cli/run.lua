-- `o2c run DIR --answers F.json [--target N] [--out F] [--format X] [--provider P] [--json]`:
-- one assessment, headless, with no database and no server.  Scores the
-- answers with the generation built from DIR (and the KB), then writes the
-- report with the same runner as `o2c serve`, on in-memory storage.
--
-- core/cli/cmd_run.c builds the generation, makes it current and calls
--   require("cli.run").main{ dir =, answers =, target =, out =, format =, provider =,
--                            json = bool, progress = bool (stderr is a terminal) }
-- in a task; the number returned is the exit code: 0 ok, 1 a section failed
-- (or the file could not be written), 2 a usage problem (the answers file).
--
-- The answers file: { "client": "...", "answers": { qid: value | {value, note} },
--                     "targets": { area: level }?, "type": "o2c"? }
-- (the shape of scripts/<type>/examples/*.json).
local gen = require "o2c.generation"
local task = require "o2c.task"
local json = require "json"
local llm = require "llm"
local api = require "api.common"
local assemble = require "report.assemble"
local export = require "report.export"
local events = require "report.events"
local runner = require "report.runner"
local storage_memory = require "report.storage_memory"

local M = {}

local USAGE = 2
local FAILED = 1

local function usage_error(fmt, ...)
  io.stderr:write("o2c run: ", string.format(fmt, ...), "\n")
  return USAGE
end

-- The answers file as a table, or nil and the exit code after saying why.
local function read_answers(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, usage_error("cannot read the answers file: %s", err) end
  local text = f:read("a")
  f:close()
  local data, derr = json.decode(text)
  if data == nil then
    return nil, usage_error("%s: not valid JSON: %s", path, tostring(derr))
  end
  if type(data) ~= "table" or data[1] ~= nil then
    return nil, usage_error("%s: expected an object like {\"client\": \"...\", \"answers\": {...}}",
      path)
  end
  if type(data.answers) ~= "table" or data.answers == json.null or data.answers[1] ~= nil then
    return nil, usage_error("%s: answers: required, an object of question id -> answer "
      .. "(see scripts/o2c/examples/median.json)", path)
  end
  for _, field in ipairs({ "client", "type" }) do
    if data[field] ~= nil and type(data[field]) ~= "string" then
      return nil, usage_error("%s: %s: expected text", path, field)
    end
  end
  if data.targets ~= nil and (type(data.targets) ~= "table" or data.targets[1] ~= nil) then
    return nil, usage_error("%s: targets: expected an object of area id -> level", path)
  end
  return data
end

local function pick_type(g, data, path)
  local types = g:call("summary").types
  if data.type then
    if g:call("has_type", data.type) then return data.type end
    local ids = {}
    for i, t in ipairs(types) do ids[i] = t.id end
    return nil, usage_error("%s: type: no assessment type '%s' in the scripts (loaded: %s)", path,
      data.type, table.concat(ids, ", "))
  end
  if #types == 1 then return types[1].id end
  return nil, usage_error("%s: type: the scripts hold %d assessment types; name one with \"type\"",
    path, #types)
end

-- Raw answers with JSON nulls dropped (a null means "no answer").
local function without_nulls(t)
  local out = {}
  for k, v in pairs(t) do
    if v ~= json.null then out[k] = v end
  end
  return out
end

local function check(g, type_id, answers, targets, path)
  local ok, problems = g:call("validate_answers", type_id, answers)
  if not ok then
    local p = problems[1]
    return usage_error("%s: %s: %s%s", path, p.field, p.message,
      #problems > 1 and string.format(" (and %d more problems)", #problems - 1) or "")
  end
  if targets then
    local tok, tproblems = g:call("validate_targets", type_id, targets)
    if not tok then
      return usage_error("%s: %s: %s", path, tproblems[1].field, tproblems[1].message)
    end
  end
end

---------------------------------------------------------------------------
-- progress bars (stderr, only on a terminal)
---------------------------------------------------------------------------

local BAR = 20
local FILL = { queued = 0, started = 0.35, retrying = 0.35, done = 1, failed = 1 }
local WORDS = { queued = "queued", started = "writing", done = "done", failed = "FAILED" }

local function progress(bus, report)
  local rows, order = {}, {}
  for _, s in ipairs(report.sections) do
    rows[s.id] = { title = s.title or s.id, state = "queued" }
    order[#order + 1] = s.id
  end
  local width = 0
  for _, id in ipairs(order) do width = math.max(width, utf8.len(rows[id].title) or 0) end
  width = math.min(width, 44)
  local drawn = false
  local function draw()
    local out = {}
    if drawn then out[#out + 1] = string.format("\27[%dA", #order + 1) end
    local done = 0
    for _, id in ipairs(order) do
      if rows[id].state == "done" or rows[id].state == "failed" then done = done + 1 end
    end
    out[#out + 1] = string.format("\27[2K  report %d/%d sections\n", done, #order)
    for _, id in ipairs(order) do
      local r = rows[id]
      local n = math.floor(BAR * (FILL[r.state] or 0) + 0.5)
      local bar = string.rep(r.state == "failed" and "!" or "#", n) .. string.rep(".", BAR - n)
      local title = r.title
      if (utf8.len(title) or 0) > width then
        title = title:sub(1, utf8.offset(title, width - 1) - 1) .. "…"
      end
      local pad = string.rep(" ", width - (utf8.len(title) or #title))
      local word = r.detail or WORDS[r.state] or r.state
      out[#out + 1] = string.format("\27[2K  [%s] %s%s  %s\n", bar, title, pad, word)
    end
    io.stderr:write(table.concat(out))
    io.stderr:flush()
    drawn = true
  end
  local after = 0
  while true do
    for _, e in ipairs(bus:since(after)) do
      after = e.seq
      local data = events.data(e)
      local row = rows[data.section or ""]
      local state = e.name:match("^section%.(.+)$")
      if row and state then
        row.state = state
        row.detail = nil
        if state == "retrying" then
          row.detail = string.format("retrying in %.0f s: %s", data.wait_s or 0,
            tostring(data.reason or ""):sub(1, 60))
        elseif state == "failed" then
          row.detail = "FAILED: " .. tostring(data.error or ""):sub(1, 70)
        elseif state == "done" and data.warning then
          row.detail = "done (warning: " .. tostring(data.warning):sub(1, 50) .. ")"
        end
      end
    end
    draw()
    if bus:finished() then return end
    bus:wait(after, 1000)
  end
end

---------------------------------------------------------------------------

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then return nil, werr or cerr end
  return true
end

-- The format asked for, else the one --out's extension names, else md.
local function format_of(opts)
  if opts.format then
    if export.FORMATS[opts.format] then return opts.format end
    local names = {}
    for i, f in ipairs(export.ORDER) do names[i] = f end
    return nil, usage_error("--format: expected one of %s (got '%s')",
      table.concat(names, ", "), opts.format)
  end
  local ext = (opts.out or ""):lower():match("%.([%w]+)$")
  if ext == "htm" then ext = "html" end
  return export.FORMATS[ext] and ext or "md"
end

-- What the Excel export adds to the document: scores, questionnaire, answers.
local function with_scores(doc, g, type_id, answers, scores)
  local values, notes = {}, {}
  for qid, a in pairs(answers) do
    if type(a) == "table" and a[1] == nil and (a.value ~= nil or a.note ~= nil) then
      values[qid], notes[qid] = a.value, a.note
    else
      values[qid] = a
    end
  end
  doc.answers, doc.notes, doc.scores = values, notes, scores
  doc.questionnaire = g:call("questionnaire", type_id)
  return doc
end

-- What is left to ask the client (the report's "Open questions" section
-- lists each one; the client's copy leaves it out).
local function open_questions_line(overall)
  local open = overall.total - overall.answered
  if open == 0 then return "open questions: none, every question asked is answered" end
  return string.format("open questions: %d of the %d questions asked are not answered yet (listed under "
    .. "\"Open questions\" in the report, with those they lead to; left out of the client's copy)", open,
    overall.total)
end

function M.main(opts)
  local path = opts.answers
  local format, fcode = format_of(opts)
  if not format then return fcode end
  local data, code = read_answers(path)
  if not data then return code end
  local g <close> = gen.pin()
  if not g then return usage_error("no assessment scripts are loaded") end
  local type_id, tcode = pick_type(g, data, path)
  if not type_id then return tcode end
  local answers = without_nulls(data.answers)
  local targets = data.targets
  if opts.target then
    targets = {}
    for _, area in ipairs(g:call("questionnaire", type_id).areas) do
      targets[area.id] = opts.target
    end
  end
  local bad = check(g, type_id, answers, targets, path)
  if bad then return bad end

  local provider = opts.provider or "offline"
  if provider == "auto" then provider = llm.choose() end
  local client = data.client or "the client"
  local scores = g:call("score", type_id, answers, targets)
  local plan = g:call("report_plan", type_id)
  local mem = storage_memory.new()
  local report = mem:create{
    assessment = { client = client, type = type_id }, targets = targets, answers = answers,
    provider = provider, model = llm.model(provider), generation = g:hash(),
    sections = plan.sections,
  }
  local shown
  if opts.progress then
    local bus = events.open(report)
    shown = task.spawn(progress, bus, report)
  end

  runner.run(mem, report.id)
  report = mem:load(report.id)
  if shown then
    -- The bars draw the last events on their next turn.
    while shown:alive() do require("o2c.timer").sleep(20) end
  end

  local out = opts.out or assemble.filename(client, export.FORMATS[format].ext)
  -- The consultant runs this: their copy (assemble's audience).
  local doc = with_scores({ client = client, type = type_id, report = report,
    audience = "consultant" }, g, type_id, answers, scores)
  local body, xerr = export.render(format, doc)
  if not body then
    io.stderr:write("o2c run: cannot make the ", format, " file: ", xerr.message, "\n")
    return FAILED
  end
  local written, werr = write_file(out, body)
  if not written then
    io.stderr:write("o2c run: cannot write the report to ", out, ": ", tostring(werr), "\n")
    return FAILED
  end

  local failed = 0
  local sections = json.array()
  for i, s in ipairs(report.sections) do
    sections[i] = { id = s.id, status = s.status, error = s.error, warning = s.warning }
    if s.status == "failed" then failed = failed + 1 end
  end
  if opts.json then
    io.stdout:write(json.encode({
      scores = api.scores_json(scores),
      report = { status = report.status, provider = provider,
        provider_label = assemble.provider_line(report), generation = g:hash(),
        sections = sections, path = out },
    }), "\n")
  else
    local o = scores.overall
    io.stdout:write(string.format("%s: overall score %s, level %s (%s); target %s\n", client,
      o.score and string.format("%.2f", o.score) or "-", tostring(o.level or "-"),
      tostring(o.level_name or "-"), o.target and string.format("%g", o.target) or "-"))
    io.stdout:write(string.format("report %s: %d sections, %d failed; %s\nwritten to %s\n",
      report.status, #report.sections, failed, assemble.provider_line(report), out))
    io.stdout:write(open_questions_line(o), "\n")
    for _, s in ipairs(report.sections) do
      if s.status == "failed" then
        io.stdout:write("  failed: ", s.id, ": ", tostring(s.error), "\n")
      end
    end
  end
  io.stdout:flush()
  return failed > 0 and FAILED or 0
end

return M
