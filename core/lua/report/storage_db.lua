-- The runner's storage for `o2c serve`: the database (o2c.store), acting as
-- the system actor.  Every section transition is its own transaction in the
-- store, so a crash loses at most the calls in flight.
--
-- The storage interface (report/storage_memory.lua is the other one):
--   s:load(report_id)        -> report {id, assessment_id, status, provider, model,
--                               generation, sections = {{id, title, kind, depends,
--                               status, attempts, text, error, warning, ...}}}
--   s:inputs(report)         -> {assessment = {id, client, type}, targets,
--                               answers = {qid = value | {value=, note=}},
--                               attachments = {{name, media_type, size}}}
--   s:attachment(report, name) -> media_type, bytes
--   s:section_start(report_id, section_id, provider, model)
--   s:section_retrying(report_id, section_id, error, wait_ms)
--   s:section_done(report_id, section_id, {text=, tokens_in=, tokens_out=, warning=})
--   s:section_fail(report_id, section_id, error)
--   s:report_start(report_id)
--   s:report_finish(report_id) -> "done" | "partial" | "failed"
--   s:audit(action, details)
-- Failures return nil, message (the runner raises them).
local store = require "o2c.store"
local text = require "generation.text"

local M = {}
M.__index = M

function M.new()
  return setmetatable({ actor = store.system_actor() }, M)
end

function M:load(report_id)
  return store.report_get(self.actor, report_id)
end

-- {qid = {value=, note=, by=, ...}} -> {qid = value | {value=, note=}}
local function answer_values(answers)
  local values = {}
  for qid, a in pairs(answers) do
    values[qid] = a.note and { value = a.value, note = a.note } or a.value
  end
  return values
end

function M:inputs(report)
  local a, err = store.assessment_get(self.actor, report.assessment_id)
  if not a then return nil, err end
  local answers, err2 = store.answers_get(self.actor, a.id)
  if not answers then return nil, err2 end
  local attachments = {}
  for i, meta in ipairs(store.attachment_list(self.actor, a.id) or {}) do
    attachments[i] = { name = meta.name, media_type = meta.media_type, size = meta.size }
  end
  return {
    assessment = { id = a.id, client = a.client, type = a.type },
    targets = a.targets,
    answers = answer_values(answers),
    attachments = attachments,
  }
end

function M:attachment(report, name)
  local meta, bytes = store.attachment_get(self.actor, report.assessment_id, name)
  if not meta then return nil, bytes end
  return meta.media_type, bytes
end

function M:section_start(report_id, section_id, provider, model)
  return store.section_start(report_id, section_id, provider, model)
end

-- What the runner stores comes from a model or a provider's error, not a
-- client: kept, with invalid bytes and NUL shown as U+FFFD, where the store
-- would refuse it (it keeps no NUL; responses must be UTF-8).
local function kept(s)
  return type(s) == "string" and text.clean(s) or s
end

function M:section_retrying(report_id, section_id, error, wait_ms)
  return store.section_retrying(report_id, section_id, kept(error), wait_ms)
end

function M:section_done(report_id, section_id, result)
  local out = {}
  for k, v in pairs(result) do out[k] = v end
  out.text, out.warning = kept(result.text), kept(result.warning)
  return store.section_done(report_id, section_id, out)
end

function M:section_fail(report_id, section_id, error)
  return store.section_fail(report_id, section_id, kept(error))
end

function M:report_start(report_id)
  return store.report_start(report_id)
end

function M:report_finish(report_id)
  return store.report_finish(report_id)
end

function M:audit(action, details)
  return store.audit(self.actor, action, details)
end

-- Report ids of the jobs a restart cut short.
function M:unfinished()
  return store.jobs_unfinished()
end

return M
