-- Reports: start a job (202 at once), read a report, follow it live with
-- Server-Sent Events, retry one failed section, download it (Markdown,
-- HTML, PDF, Word, Excel, ZIP: report/export.lua) and its chart alone.  The
-- job itself is report/runner.lua; access rules live in the store (a report is visible to whoever may see its assessment).
local api = require "api.common"
local json = require "json"
local llm = require "llm"
local store = require "o2c.store"
local assemble = require "report.assemble"
local export = require "report.export"
local events = require "report.events"
local runner = require "report.runner"
local task = require "o2c.task"

local M = {}

local HEARTBEAT_MS = 15000

local storage
local function db_storage()
  storage = storage or require("report.storage_db").new()
  return storage
end

-- Stores each generation's sources once, the first time a report of it is kept.
local stored_generations = {}
local function remember_generation(g)
  local hash = g:hash()
  if not stored_generations[hash] then
    if not store.generation_exists(hash) then
      api.check(store.generation_put(hash, g:sources()))
    end
    stored_generations[hash] = true
  end
  return hash
end

local function load_report(ctx)
  return api.check(store.report_get(ctx.user, ctx.params.id))
end

-- Each download format, and whether this server can make it now (a helper
-- program not installed: the UI hides that button).
local function downloads(report_id)
  local available = export.available()
  local list = json.array()
  for _, format in ipairs(export.ORDER) do
    list[#list + 1] = { format = format, label = export.FORMATS[format].label,
      available = available[format],
      href = "/api/v1/reports/" .. report_id .. "/download?format=" .. format }
  end
  return list
end

-- The report as the API shows it: public status ("partial" when some
-- sections failed), who wrote each section, lists as JSON lists.
local function report_json(report)
  local sections = json.array()
  for i, s in ipairs(report.sections or {}) do
    local out = {}
    for k, v in pairs(s) do out[k] = v end
    out.depends = json.array(s.depends or {})
    out.label = s.status == "done" and events.label(s.provider, s.model, s.kind) or nil
    -- What the UI shows: the server's rendering, under the UI's own <h3> titles.
    out.html = s.status == "done" and assemble.section_html(s, { heading_offset = 1 }) or nil
    sections[i] = out
  end
  local out = {}
  for k, v in pairs(report) do out[k] = v end
  out.sections = sections
  out.status = events.report_status(report)
  out.stored_status = report.status
  out.provider_label = assemble.provider_line(report)
  out.active = runner.active(report.id)
  out.downloads = downloads(report.id)
  return out
end

---------------------------------------------------------------------------

local function create(ctx)
  local a = api.check(store.assessment_get(ctx.user, ctx.params.id))
  local g = ctx:gen()
  if not g:call("has_type", a.type) then
    api.fail(409, "type_not_loaded", "the assessment type '" .. a.type
      .. "' is not in the scripts being served")
  end
  local plan = g:call("report_plan", a.type)
  local provider = llm.choose()
  local model = llm.model(provider)
  local sections = {}
  for i, s in ipairs(plan.sections) do
    sections[i] = { id = s.id, title = s.title, kind = s.kind, depends = s.depends or {} }
  end
  local report = api.check(store.report_create(ctx.user, a.id, {
    provider = provider, model = model, generation = remember_generation(g),
    sections = sections,
  }))
  runner.start(db_storage(), report.id)
  return 202, { report_id = report.id, status = "queued", provider = provider, model = model,
    sections = #sections }, { Location = "/api/v1/reports/" .. report.id }
end

local function get(ctx)
  return 200, report_json(load_report(ctx))
end

---------------------------------------------------------------------------
-- Server-Sent Events
---------------------------------------------------------------------------

local function sse(e)
  return "id: " .. e.id .. "\nevent: " .. e.name .. "\ndata: " .. e.json .. "\n\n"
end

-- The whole story so far (or what follows Last-Event-ID), then live events
-- until the report is done, with a heartbeat comment every 15 s.  The
-- client going away cancels this task (cancel_on_close) and nothing else.
local function stream(ctx)
  local report = load_report(ctx)
  local req = ctx.req
  local bus = events.get(report.id) or events.open(report)
  local report_id = report.id
  report = nil -- the stream may last an hour: keep only what it needs
  local after = bus:parse_id(req:header("Last-Event-ID"))
  req:cancel_on_close(true)
  local ok = req:stream_begin(200, {
    ["Content-Type"] = "text/event-stream; charset=utf-8",
    ["Cache-Control"] = "no-store",
    ["X-Accel-Buffering"] = "no",
  })
  if not ok then return 200, "" end
  if not req:stream_write("retry: 3000\n\n") then return 200, "" end
  while true do
    for _, e in ipairs(bus:since(after)) do
      after = e.seq
      if not req:stream_write(sse(e)) then return 200, "" end
    end
    if bus:finished() and not runner.active(report_id) then break end
    if not bus:wait(after, HEARTBEAT_MS) then
      if not req:stream_write(": heartbeat\n\n") then return 200, "" end
      -- Nothing writes this report any more (its job ended without
      -- finishing it: see the log): stop rather than beat forever.
      if not runner.active(report_id) and bus:last_seq() == after then break end
    end
  end
  req:stream_end()
  return 200, ""
end

---------------------------------------------------------------------------
-- retry one section
---------------------------------------------------------------------------

-- SECTION_ID, then every failed section that waits for it, directly or not.
local function to_requeue(report, section_id)
  local chosen, list = { [section_id] = true }, {}
  local changed = true
  while changed do
    changed = false
    for _, s in ipairs(report.sections) do
      if not chosen[s.id] and s.status == "failed" then
        for _, d in ipairs(s.depends or {}) do
          if chosen[d] then
            chosen[s.id], changed = true, true
            break
          end
        end
      end
    end
  end
  for _, s in ipairs(report.sections) do
    if s.id == section_id then table.insert(list, 1, s) elseif chosen[s.id] then list[#list + 1] = s end
  end
  return list
end

local function retry(ctx)
  local report = load_report(ctx)
  local section_id = ctx.params.section
  local target
  for _, s in ipairs(report.sections) do
    if s.id == section_id then target = s end
  end
  if not target then api.not_found("section '" .. section_id .. "' of this report") end
  if target.status ~= "failed" then
    api.fail(409, "conflict", "section '" .. section_id .. "' is " .. tostring(target.status)
      .. "; only a failed section can be retried", { status = target.status })
  end
  local sections = to_requeue(report, section_id)
  local requeued = json.array()
  for _, s in ipairs(sections) do
    local ok, message, code = store.section_retry(ctx.user, report.id, s.id)
    if ok then
      requeued[#requeued + 1] = s.id
    elseif s.id == section_id then
      api.check(ok, message, code)
    end
  end
  local kept = {}
  for _, s in ipairs(sections) do
    for _, id in ipairs(requeued) do
      if id == s.id then kept[#kept + 1] = s end
    end
  end
  runner.requeue(db_storage(), report.id, kept)
  return 202, { report_id = report.id, section = section_id, requeued = requeued }
end

---------------------------------------------------------------------------
-- download
---------------------------------------------------------------------------

-- The file's name and headers; a self-contained HTML may load or run nothing.
local function file_headers(content_type, disposition)
  return {
    ["Content-Type"] = content_type,
    ["Content-Disposition"] = disposition,
    ["Cache-Control"] = "private, no-store",
    ["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    ["X-Content-Type-Options"] = "nosniff",
  }
end

-- What the Excel export adds: the scores (by the generation being served),
-- the questionnaire, the answers and notes.
local function with_scores(ctx, a, doc)
  local g = ctx:gen()
  if not g:call("has_type", a.type) then
    api.fail(409, "type_not_loaded", "the assessment type '" .. a.type
      .. "' is not in the scripts being served")
  end
  local values, notes = {}, {}
  for qid, answer in pairs(api.check(store.answers_get(ctx.user, a.id))) do
    values[qid], notes[qid] = answer.value, answer.note
  end
  doc.answers, doc.notes = values, notes
  doc.scores = g:call("score", a.type, values, a.targets)
  doc.questionnaire = g:call("questionnaire", a.type)
  return doc
end

local function download(ctx)
  local format = ctx:query().format
  local report = load_report(ctx)
  local a = api.check(store.assessment_get(ctx.user, report.assessment_id))
  -- audience: what a client may read (assemble leaves consultant-only parts out).
  local doc = { client = a.client, type = a.type, report = report, audience = "client" }
  if format == "xlsx" then with_scores(ctx, a, doc) end
  local body, err = export.render(format, doc)
  if not body then api.fail(err.status, err.code, err.message) end
  return 200, body, file_headers(export.FORMATS[format].type,
    'attachment; filename="' .. assemble.filename(a.client, export.FORMATS[format].ext) .. '"')
end

-- chart.svg and chart.png: the scorecard's radar chart alone, for a slide.
local function chart(kind)
  return function(ctx)
    local report = load_report(ctx)
    local body, err
    if kind == "svg" then
      body = export.chart_svg(report)
      if not body then
        api.fail(404, "not_found", "this report has no chart yet: its scorecard section is "
          .. "not written")
      end
    else
      body, err = export.chart_png(report)
      if not body then api.fail(err.status, err.code, err.message) end
    end
    return 200, body, file_headers(kind == "svg" and "image/svg+xml" or "image/png",
      'inline; filename="chart.' .. kind .. '"')
  end
end

local function list(ctx)
  local a = api.check(store.assessment_get(ctx.user, ctx.params.id))
  local items = json.array()
  for i, r in ipairs(api.check(store.report_list(ctx.user, a.id))) do
    r.status = events.report_status(r)
    items[i] = r
  end
  return 200, { items = items }
end

-- Start-up (core/lua/server.lua): every job a restart cut short, looked up
-- in a task of its own: start-up runs in no task, and on PostgreSQL a store
-- call waits for its answer, which only a task can.
function M.resume()
  task.spawn(function() runner.resume_all(db_storage()) end)
end

M.routes = {
  { method = "POST", path = "/api/v1/assessments/{id}/reports", name = "reports.create",
    handler = create },
  { method = "GET", path = "/api/v1/assessments/{id}/reports", name = "reports.list",
    handler = list },
  { method = "GET", path = "/api/v1/reports/{id}", name = "reports.get", handler = get },
  { method = "GET", path = "/api/v1/reports/{id}/events", name = "reports.events",
    handler = stream },
  { method = "POST", path = "/api/v1/reports/{id}/sections/{section}/retry",
    name = "reports.retry", handler = retry },
  { method = "GET", path = "/api/v1/reports/{id}/download", name = "reports.download",
    handler = download, query = {
      format = { type = "enum", values = { "md", "html", "pdf", "docx", "xlsx", "zip" },
        default = "md", description = "the file's format: md (the chart as chart.svg), html "
          .. "(self-contained, print CSS), pdf, docx (Word), xlsx (Excel), zip (the Markdown "
          .. "with chart.svg and chart.png)" },
    } },
  { method = "GET", path = "/api/v1/reports/{id}/chart.svg", name = "reports.chart_svg",
    handler = chart("svg") },
  { method = "GET", path = "/api/v1/reports/{id}/chart.png", name = "reports.chart_png",
    handler = chart("png") },
}

for i, route in ipairs(M.routes) do M[i] = route end
return M
