-- Report jobs: write a report's sections as a graph, each section stored as
-- soon as it is written.
--
--   runner.start(storage, report_id)  -- a task writes the report (or wakes the
--                                     -- one already writing it) once one of
--                                     -- llm.report_jobs places is free;
--                                     -- returns at once
--   runner.run(storage, report_id)    -- the same, in the calling task; returns
--                                     -- the report's final status
--   runner.requeue(storage, report_id, sections) -- put back to queued (retry)
--   runner.resume_all(storage)        -- start-up: every job a restart cut short
--
-- STORAGE is report/storage_db.lua (o2c serve) or report/storage_memory.lua
-- (o2c run); both have the same methods, documented in storage_db.lua.
--
-- One job: pin the current generation -> load the report and its inputs ->
-- score the answers -> start every section whose dependencies are done, each
-- in its own task -> when one ends, look again -> when none runs, finish the
-- report.  A section whose dependency failed is failed too ("waits for X,
-- which failed"), so the report can end; a retry puts both back to queued.
--
-- A section:
--   generated  section_render(ctx): no LLM.
--   offline    section_draft(ctx), then section_check: a failed check is kept
--              as a warning (the drafter is deterministic; asking again
--              would give the same text).
--   LLM        section_prompt(ctx) -> llm.complete (job = report id, so the
--              scheduler is fair across reports) -> section_check; a failed
--              check asks once more with the reason appended, and if that
--              fails too the text is kept with the reason as its warning.
--              Provider failures (after the llm module's retries, breaker,
--              deadline) fail the section with the provider's message.  The
--              offline drafter never stands in for a failing provider.
--
-- Generations: a job pins the generation current when it starts and keeps
-- it to its end.  A resumed or retried job uses the generation current at
-- that moment: the one recorded with the report when it is still current,
-- otherwise the newer one (the recorded one is no longer loaded; a warning
-- is logged and the audit entry names both).  Sections already written are
-- never written again.
local gen = require "o2c.generation"
local task = require "o2c.task"
local event = require "o2c.event"
local timer = require "o2c.timer"
local log = require "o2c.log"
local config = require "o2c.config"
local base64 = require "o2c.base64"
local llm = require "llm"
local events = require "report.events"

local M = {}

-- What a prompt may send along: at most this many images, this many bytes.
local MAX_IMAGES = 5
local MAX_IMAGE_BYTES = 20 * 1024 * 1024

local active = {} -- report id -> job running in this process

local function raise(value, err)
  if value == nil then error(err or "storage failure", 0) end
  return value
end

local function first_line(s)
  s = tostring(s)
  return s:match("^[^\n]*")
end

local function traceback(e)
  return debug.traceback(tostring(e), 2)
end

---------------------------------------------------------------------------
-- one section
---------------------------------------------------------------------------

-- The ctx handed to the section's script functions.
local function section_ctx(job, s)
  local texts = {}
  for _, d in ipairs(s.depends or {}) do
    local dep = job.by_id[d]
    if dep and dep.status == "done" then texts[d] = dep.text end
  end
  local inputs = job.inputs
  local report = job.report or {}
  return {
    assessment = { client = inputs.assessment.client, type = inputs.assessment.type },
    -- For the appendix's traceability: the scripts' version and the date.
    report = { generation = report.generation, date_ms = report.created_at_ms },
    answers = inputs.answers,
    scores = job.scores,
    targets = inputs.targets,
    sections = texts,
    attachments = inputs.attachments,
  }
end

local function load_images(job, names)
  local images, total = {}, 0
  for _, name in ipairs(names or {}) do
    if #images >= MAX_IMAGES then break end
    local media_type, bytes = job.storage:attachment(job.report, name)
    if media_type and total + #bytes <= MAX_IMAGE_BYTES then
      total = total + #bytes
      images[#images + 1] = { media_type = media_type, data_base64 = base64.encode(bytes) }
    elseif not media_type then
      log.warn("attachment not sent with the prompt", { report_id = job.id, name = name,
        error = tostring(bytes) })
    end
  end
  return images
end

local function deadline_ms()
  local llm_cfg = config.llm or {}
  return math.floor((llm_cfg.section_deadline_s or 600) * 1000)
end

-- The LLM's text for section S, checked: {text, tokens_in, tokens_out,
-- warning} or nil, error.
local function write_with_llm(job, s, ctx)
  local g, type_id = job.gen, job.type
  local prompt = g:call("section_prompt", type_id, s.id, ctx)
  local images = load_images(job, prompt.attachments)
  local deadline_at = timer.now() + deadline_ms() -- both asks share the section's deadline
  local function ask(user)
    return llm.complete{
      provider = job.provider, job = job.id, system = prompt.system, user = user,
      max_tokens = s.max_tokens or 1024, images = images,
      deadline_at = deadline_at,
      on_retry = function(info)
        local reason = info.message or info.reason or "retrying"
        job.storage:section_retrying(job.id, s.id, reason, info.wait_ms)
        job.bus:emit("section.retrying", { section = s.id, attempt = info.attempt,
          wait_s = (info.wait_ms or 0) / 1000, reason = reason })
      end,
    }
  end
  local res, err = ask(prompt.user)
  if not res then return nil, err end
  local result = { text = res.text, tokens_in = res.usage.input, tokens_out = res.usage.output,
    model = res.model }
  local ok, reason = g:call("section_check", type_id, s.id, res.text, ctx)
  if ok then return result end
  log.info("section failed its check: asking again", { report_id = job.id, section = s.id,
    reason = reason })
  local again, err2 = ask(prompt.user .. "\n\n---\nA previous draft of this section was "
    .. "rejected for this reason: " .. reason .. "\nWrite the section again so that this "
    .. "is fixed, following every instruction above.")
  if not again then
    result.warning = "check failed: " .. reason .. " (asking again failed: " .. err2 .. ")"
    return result
  end
  result.tokens_in = result.tokens_in + again.usage.input
  result.tokens_out = result.tokens_out + again.usage.output
  result.text = again.text
  local ok2, reason2 = g:call("section_check", type_id, s.id, again.text, ctx)
  if not ok2 then result.warning = "check failed twice: " .. reason2 end
  return result
end

-- The gate: at most GATE_MAX LLM sections, across every job, run at once
-- (build a prompt and wait on the provider); the others wait their turn,
-- first come first served, as an entry in a queue -- not as a task: with
-- hundreds of reports queued, a waiting task per section (its coroutine,
-- its context, its prompt) would sit in memory until the rate limit lets
-- it through.  The provider's scheduler keeps its own fairness between the
-- jobs that are through.
local GATE_MAX = 48
local gate = { active = 0, head = 1, tail = 0, queue = {} }
local spawn_section -- (job, s, holding): defined with the job below

local function gate_next()
  while gate.active < GATE_MAX and gate.head <= gate.tail do
    local entry = gate.queue[gate.head]
    gate.queue[gate.head] = nil
    gate.head = gate.head + 1
    gate.active = gate.active + 1
    spawn_section(entry.job, entry.s, true)
  end
end

local function gate_leave()
  gate.active = gate.active - 1
  gate_next()
end

local function gate_enqueue(job, s)
  gate.tail = gate.tail + 1
  gate.queue[gate.tail] = { job = job, s = s }
  gate_next()
end

local function uses_llm(job, s)
  return s.kind ~= "generated" and job.provider ~= "offline"
end

local function write_section(job, s)
  if uses_llm(job, s) then
    return write_with_llm(job, s, section_ctx(job, s))
  end
  local ctx = section_ctx(job, s)
  local g, type_id = job.gen, job.type
  if s.kind == "generated" then
    return { text = g:call("section_render", type_id, s.id, ctx) }
  end
  local text = g:call("section_draft", type_id, s.id, ctx)
  local ok, reason = g:call("section_check", type_id, s.id, text, ctx)
  return { text = text, warning = not ok and ("check failed: " .. reason) or nil }
end

-- Runs in its own task: writes S and stores the result, whatever happens.
local function section_task(job, s)
  -- Let the loop turn first: a report drafted offline never yields
  -- otherwise, and would hold every other request until it is written.
  timer.sleep(0)
  local provider, model = job.provider, job.model
  if s.kind == "generated" then provider, model = nil, nil end
  local attempt = (s.attempts or 0) + 1
  s.attempts = attempt
  raise(job.storage:section_start(job.id, s.id, provider, model))
  job.bus:emit("section.started", { section = s.id, attempt = attempt, provider = provider,
    model = model, label = events.label(provider, model, s.kind) })
  local started = timer.now()
  local ok, result, err = xpcall(write_section, traceback, job, s)
  if not ok then
    log.error("report section raised an error", { report_id = job.id, section = s.id,
      error = result })
    result, err = nil, first_line(result)
  end
  if result then
    result.provider = provider
    result.model = result.model or model
    local stored, serr = job.storage:section_done(job.id, s.id, result)
    if stored then
      s.status, s.text = "done", result.text
      job.bus:emit("section.done", { section = s.id, provider = provider, model = result.model,
        label = events.label(provider, result.model, s.kind), tokens_in = result.tokens_in or 0,
        tokens_out = result.tokens_out or 0, warning = result.warning,
        elapsed_ms = timer.now() - started })
      return
    end
    err = "the section was written but could not be stored: " .. tostring(serr)
  end
  job.storage:section_fail(job.id, s.id, err)
  s.status, s.error = "failed", err
  job.bus:emit("section.failed", { section = s.id, error = err })
end

---------------------------------------------------------------------------
-- the job
---------------------------------------------------------------------------

local Job = {}
Job.__index = Job

-- Fails S because a dependency failed, so that the report can end.
function Job:block(s, dep)
  local err = "not written: it needs '" .. dep .. "', which failed (retry that section)"
  self.storage:section_fail(self.id, s.id, err)
  s.status, s.error = "failed", err
  self.bus:emit("section.failed", { section = s.id, error = err, blocked_by = dep })
end

-- Starts every queued section that can run; returns how many are running.
function Job:launch()
  local running = 0
  for _, s in ipairs(self.order) do
    if s.status == "queued" then
      local waiting, failed_dep = false, nil
      for _, d in ipairs(s.depends or {}) do
        local dep = self.by_id[d]
        if not dep or dep.status == "failed" then
          failed_dep = d
          break
        elseif dep.status ~= "done" then
          waiting = true
        end
      end
      if failed_dep then
        self:block(s, failed_dep)
      elseif not waiting then
        s.status = "running"
        if uses_llm(self, s) then
          gate_enqueue(self, s)
        else
          spawn_section(self, s, false)
        end
      end
    end
    if s.status == "running" then running = running + 1 end
  end
  return running
end

-- Runs section S of JOB in a task of its own; HOLDING: it has a place in
-- the gate, given back when the task ends however it ends.
spawn_section = function(job, s, holding)
  task.spawn(function()
    local _ <close> = holding and setmetatable({}, { __close = gate_leave }) or nil
    local ok, e = xpcall(section_task, traceback, job, s)
    if not ok then
      log.error("report section task failed", { report_id = job.id, section = s.id,
        error = e })
      if s.status == "running" then
        s.status, s.error = "failed", first_line(e)
        job.storage:section_fail(job.id, s.id, s.error)
        job.bus:emit("section.failed", { section = s.id, error = s.error })
      end
    end
    job.wake:signal()
  end)
end

-- The sections in an order where each comes after its dependencies.
local function run_order(sections)
  local by_id, order, seen = {}, {}, {}
  for _, s in ipairs(sections) do by_id[s.id] = s end
  local function visit(s, depth)
    if seen[s.id] or depth > #sections then return end
    seen[s.id] = true
    for _, d in ipairs(s.depends or {}) do
      if by_id[d] then visit(by_id[d], depth + 1) end
    end
    order[#order + 1] = s
  end
  for _, s in ipairs(sections) do visit(s, 0) end
  return order, by_id
end

local PENDING = { queued = true, running = true, retrying = true }

-- Loads everything the job needs; raises with a message on failure.
function Job:prepare(g)
  local report = raise(self.storage:load(self.id))
  self.report = report
  self.bus = events.open(report)
  self.provider = report.provider or "offline"
  self.model = report.model
  local inputs = raise(self.storage:inputs(report))
  self.inputs = inputs
  self.type = inputs.assessment.type
  if report.generation and g:hash() ~= report.generation then
    log.warn("report continues with the current generation", { report_id = self.id,
      recorded = report.generation, current = g:hash() })
    self.storage:audit("report.generation_changed", { report_id = self.id,
      recorded = report.generation, current = g:hash() })
  end
  self.scores = g:call("score", self.type, inputs.answers, inputs.targets)
  local plan = g:call("report_plan", self.type)
  local max_tokens = {}
  for _, p in ipairs(plan.sections) do max_tokens[p.id] = p.max_tokens end
  self.sections = {}
  for i, stored in ipairs(report.sections) do
    self.sections[i] = {
      id = stored.id, title = stored.title, kind = stored.kind,
      depends = stored.depends or {}, max_tokens = max_tokens[stored.id],
      attempts = stored.attempts or 0, text = stored.text,
      -- A section cut short by a restart is written again.
      status = PENDING[stored.status] and "queued" or stored.status,
    }
  end
  self.order, self.by_id = run_order(self.sections)
end

-- Fails every section still pending with ERR (the job cannot run at all).
function Job:fail_all(err)
  for _, s in ipairs(self.report and self.report.sections or {}) do
    if PENDING[s.status] then
      self.storage:section_fail(self.id, s.id, err)
      if self.bus then self.bus:emit("section.failed", { section = s.id, error = err }) end
    end
  end
end

function Job:finish()
  local status, err = self.storage:report_finish(self.id)
  if not status then
    log.error("report could not be finished", { report_id = self.id, error = err })
    return nil
  end
  -- The store records report.finished in the audit log with the counts.
  return status
end

function Job:body()
  local g <close> = gen.pin()
  if not g then
    local report = self.storage:load(self.id)
    self.report = report
    if report then self.bus = events.open(report) end
    self:fail_all("no assessment scripts are loaded (see /api/v1/status)")
    return self:finish()
  end
  self.gen = g
  local ok, err = pcall(self.prepare, self, g)
  if not ok then
    log.error("report job cannot start", { report_id = self.id, error = err })
    if self.report then self:fail_all("the report cannot be written: " .. first_line(err)) end
    return self:finish()
  end
  self.storage:report_start(self.id)
  self.bus:emit("report.started", { status = "running" })
  while self:launch() > 0 do
    self.wake:wait()
  end
  active[self.id] = nil
  local status = self:finish()
  self.status = status
  self.bus:emit("report.done", { status = status or "failed" })
  return status
end

local function new_job(storage, report_id)
  return setmetatable({ id = report_id, storage = storage, wake = event.new(),
    ended = event.new() }, Job)
end

local function job_main(job)
  local ok, status = xpcall(Job.body, traceback, job)
  if active[job.id] == job then active[job.id] = nil end
  if not ok then
    log.error("report job failed", { report_id = job.id, error = status })
    status = nil
  end
  job.finished = true
  job.ended:signal()
  return status
end

---------------------------------------------------------------------------
-- entry points
---------------------------------------------------------------------------

-- Admission: at most JOBS_MAX jobs are loaded and writing at once; the
-- others wait, first come first served, as a bare job (an id, no task, no
-- inputs).  A loaded job holds its report, inputs, scores and events (some
-- 50 KB), and the rate limit decides how fast reports end anyway: JOBS_MAX
-- jobs keep the section gate full (each has up to 8 sections ready at once).
-- JOBS_MAX is config llm.report_jobs.
local admission = { running = 0, head = 1, tail = 0, queue = {} }
local admit_next -- defined below

local function spawn_job(job)
  admission.running = admission.running + 1
  task.spawn(function()
    timer.sleep(0) -- the request that started the job is answered first
    job_main(job)
    admission.running = admission.running - 1
    admit_next()
  end)
end

local function jobs_max()
  return (config.llm or {}).report_jobs or 32
end

admit_next = function()
  while admission.running < jobs_max() and admission.head <= admission.tail do
    local job = admission.queue[admission.head]
    admission.queue[admission.head] = nil
    admission.head = admission.head + 1
    spawn_job(job)
  end
end

function M.start(storage, report_id)
  local job = active[report_id]
  if job then
    job.wake:signal()
    return job
  end
  job = new_job(storage, report_id)
  active[report_id] = job
  admission.tail = admission.tail + 1
  admission.queue[admission.tail] = job
  admit_next()
  return job
end

-- Runs the job in the calling task; returns the report's final status.
function M.run(storage, report_id)
  local job = active[report_id]
  if job then
    while not job.finished do job.ended:wait() end
    return job.status
  end
  job = new_job(storage, report_id)
  active[report_id] = job
  job_main(job)
  return job.status
end

-- SECTIONS ({id, title, kind, depends}) of a report went back to queued (the
-- retry button): the job writing the report picks them up, or a new job
-- starts.
function M.requeue(storage, report_id, sections)
  local job = active[report_id]
  local bus = events.get(report_id)
  -- The retry put the report back to queued; the job still writing it
  -- marks it running again.
  if job and job.bus then storage:report_start(report_id) end
  for _, q in ipairs(sections) do
    local s = job and job.by_id and job.by_id[q.id]
    if s and s.status == "failed" then s.status, s.error = "queued", nil end
    if bus then
      bus:emit("section.queued", { section = q.id, title = q.title, kind = q.kind,
        depends = q.depends or {} })
    end
  end
  return M.start(storage, report_id)
end

function M.active(report_id)
  return active[report_id] ~= nil
end

-- Jobs writing, and jobs waiting for their turn (/metrics, tests).
function M.stats()
  return { running = admission.running, waiting = admission.tail - admission.head + 1 }
end

-- Start-up: every job a restart cut short, without re-writing a section
-- already stored.
function M.resume_all(storage)
  local ids = storage:unfinished() or {}
  for _, id in ipairs(ids) do
    log.info("resuming report job", { report_id = id })
    M.start(storage, id)
  end
  return #ids
end

return M
