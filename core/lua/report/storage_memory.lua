-- The runner's storage for `o2c run`: no database, everything in a table of
-- this process.  Same interface as report/storage_db.lua (see there).
--
--   local mem = require("report.storage_memory").new()
--   local report = mem:create{assessment = {client=, type=}, targets=, answers=,
--                             provider=, model=, generation=, sections = plan.sections}
local timer = require "o2c.timer"

local function now() return timer.wall() end

local M = {}
M.__index = M

function M.new()
  return setmetatable({ reports = {}, inputs_of = {}, audits = {}, serial = 0 }, M)
end

local function copy_list(list)
  local out = {}
  for i, v in ipairs(list or {}) do out[i] = v end
  return out
end

-- A queued report with queued sections, like store.report_create.
function M:create(spec)
  self.serial = self.serial + 1
  local id = "run-" .. self.serial
  local sections = {}
  for i, s in ipairs(spec.sections) do
    sections[i] = { id = s.id, title = s.title, kind = s.kind, depends = copy_list(s.depends),
      status = "queued", attempts = 0, tokens_in = 0, tokens_out = 0 }
  end
  local report = { id = id, assessment_id = id, status = "queued", provider = spec.provider,
    model = spec.model, generation = spec.generation, created_at_ms = now(),
    sections = sections }
  self.reports[id] = report
  self.inputs_of[id] = {
    assessment = { id = id, client = spec.assessment.client, type = spec.assessment.type },
    targets = spec.targets,
    answers = spec.answers or {},
    attachments = {},
  }
  return report
end

local function find(self, report_id, section_id)
  local r = self.reports[report_id]
  if not r then return nil, "no report " .. tostring(report_id) end
  if not section_id then return r end
  for _, s in ipairs(r.sections) do
    if s.id == section_id then return s, r end
  end
  return nil, "no section " .. tostring(section_id) .. " in report " .. report_id
end

function M:load(report_id)
  return find(self, report_id)
end

function M:inputs(report)
  return self.inputs_of[report.id]
end

function M:attachment(_, name)
  return nil, "no attachment " .. tostring(name) .. " (o2c run sends none)"
end

function M:section_start(report_id, section_id, provider, model)
  local s, err = find(self, report_id, section_id)
  if not s then return nil, err end
  s.status, s.attempts = "running", s.attempts + 1
  s.provider, s.model = provider, model
  s.error, s.warning, s.started_at_ms, s.finished_at_ms = nil, nil, now(), nil
  return true
end

function M:section_retrying(report_id, section_id, error)
  local s, err = find(self, report_id, section_id)
  if not s then return nil, err end
  s.status, s.error = "retrying", error
  return true
end

function M:section_done(report_id, section_id, result)
  local s, err = find(self, report_id, section_id)
  if not s then return nil, err end
  s.status, s.text, s.warning, s.error = "done", result.text, result.warning, nil
  s.provider, s.model = result.provider or s.provider, result.model or s.model
  s.tokens_in = s.tokens_in + (result.tokens_in or 0)
  s.tokens_out = s.tokens_out + (result.tokens_out or 0)
  s.finished_at_ms = now()
  return true
end

function M:section_fail(report_id, section_id, error)
  local s, err = find(self, report_id, section_id)
  if not s then return nil, err end
  s.status, s.error, s.finished_at_ms = "failed", error, now()
  return true
end

function M:report_start(report_id)
  local r, err = find(self, report_id)
  if not r then return nil, err end
  if r.status == "queued" then r.status = "running" end
  return true
end

function M:report_finish(report_id)
  local r, err = find(self, report_id)
  if not r then return nil, err end
  local done, failed = 0, 0
  for _, s in ipairs(r.sections) do
    if s.status == "done" then
      done = done + 1
    elseif s.status == "failed" then
      failed = failed + 1
    else
      return nil, "report " .. report_id .. ": section " .. s.id .. " is still " .. s.status
    end
  end
  r.status = failed == 0 and "done" or (done > 0 and "partial" or "failed")
  r.finished_at_ms = now()
  return r.status
end

function M:audit(action, details)
  self.audits[#self.audits + 1] = { action = action, details = details }
  return true
end

function M:unfinished()
  return {}
end

return M
