-- The progress of report jobs, in memory: one bus per report holding every
-- event since it was opened, so that a subscriber arriving late (or coming
-- back with Last-Event-ID) gets the whole story and then the live events.
--
-- A bus is opened from the report's stored state ("seeded"): for each
-- section the events that lead to its current status, and report.done if
-- the report is finished.  So a server restarted mid-report, or a bus
-- evicted from memory, still tells a subscriber everything that happened.
--
-- Events (SSE `event:` names; data is JSON):
--   report.started   {report_id, status="running"}
--   section.queued   {report_id, section, title, kind, depends}
--   section.started  {report_id, section, attempt, provider, model, label}
--   section.retrying {report_id, section, attempt, wait_s, reason}
--   section.done     {report_id, section, provider, model, label, tokens_in,
--                     tokens_out, warning}
--   section.failed   {report_id, section, error}
--   report.done      {report_id, status = "done" | "partial" | "failed"}
-- Every event also carries `at` (ms since the epoch).  A bus keeps each
-- event as {id, seq, name, json}: M.data(e) decodes its data.  Ids are
-- "<tag>-<n>": n counts up per bus; the tag names this bus in this process,
-- so an id from before a restart is recognised as stale and the full story
-- is sent again.
local event = require "o2c.event"
local json = require "json"
local text = require "generation.text"
local timer = require "o2c.timer"
local random = require "o2c.random"

local M = {}

local EPOCH = random.token(8):gsub("[^%w]", "x")
local MAX_BUSES = 500          -- buses kept; finished ones are dropped first
local FINISHED_KEEP_MS = 15 * 60 * 1000

local buses = {}   -- report id -> bus
local count = 0
local opened = 0   -- buses opened by this process: part of each bus's tag

local Bus = {}
Bus.__index = Bus

-- Who wrote a section, as printed in the report: "anthropic / <model>",
-- "drafted offline", or "generated (no LLM)" for sections built from the
-- scores alone.
function M.label(provider, model, kind)
  if kind == "generated" then return "generated from the answers and scores (no LLM)" end
  if provider == nil or provider == "offline" then return "drafted offline" end
  if model and model ~= "" then return provider .. " / " .. model end
  return provider
end

local function evict()
  if count < MAX_BUSES then return end
  local now = timer.wall()
  local oldest, oldest_at
  for id, b in pairs(buses) do
    if b.finished_at and b.ev:waiting() == 0 then
      if now - b.finished_at > FINISHED_KEEP_MS then
        buses[id] = nil
        count = count - 1
      elseif not oldest_at or b.finished_at < oldest_at then
        oldest, oldest_at = id, b.finished_at
      end
    end
  end
  if count >= MAX_BUSES and oldest then
    buses[oldest] = nil
    count = count - 1
  end
end

function Bus:emit(name, data)
  data = data or {}
  data.report_id = self.report_id
  data.at = data.at or timer.wall()
  self.seq = self.seq + 1
  -- Kept as JSON text: encoded once for every subscriber, and a few hundred
  -- bytes per event instead of its tables (a bus lives as long as its report).
  self.list[#self.list + 1] = { id = self.tag .. "-" .. self.seq, seq = self.seq, name = name,
    json = text.repair(json.encode(data)) } -- sections quote stored text: send it valid
  if name == "report.done" then
    self.finished_at = timer.wall()
  elseif name == "report.started" then
    self.finished_at = nil
  end
  self.ev:signal()
end

-- Whether the report's story has ended (its last event is report.done).
function Bus:finished()
  local last = self.list[#self.list]
  return last ~= nil and last.name == "report.done"
end

-- The events after sequence number AFTER (0: all).
function Bus:since(after)
  local out = {}
  for i = after + 1, #self.list do out[#out + 1] = self.list[i] end
  return out
end

-- Waits until an event after AFTER exists or TIMEOUT_MS passes; returns
-- whether there is something new.
function Bus:wait(after, timeout_ms)
  if self.seq > after then return true end
  self.ev:wait(timeout_ms)
  return self.seq > after
end

function Bus:last_seq()
  return self.seq
end

local function section_events(bus, s)
  bus:emit("section.queued", { section = s.id, title = s.title, kind = s.kind,
    depends = s.depends or {} })
  if s.status == "done" then
    local label = M.label(s.provider, s.model, s.kind)
    bus:emit("section.started", { section = s.id, attempt = s.attempts, provider = s.provider,
      model = s.model, label = label, at = s.started_at_ms })
    bus:emit("section.done", { section = s.id, provider = s.provider, model = s.model,
      label = label, tokens_in = s.tokens_in, tokens_out = s.tokens_out,
      warning = s.warning, at = s.finished_at_ms })
  elseif s.status == "failed" then
    bus:emit("section.failed", { section = s.id, error = s.error, at = s.finished_at_ms })
  end
end

-- The report's public status: "partial" when some sections failed but
-- others were written.
function M.report_status(report)
  local status = report.status
  if status ~= "failed" and status ~= "partial" then return status end
  for _, s in ipairs(report.sections or {}) do
    if s.status == "done" then return "partial" end
  end
  return "failed"
end

local FINISHED = { done = true, partial = true, failed = true }

-- The bus of REPORT (a stored report with its sections), opened and seeded
-- from it when this process has none.
function M.open(report)
  local b = buses[report.id]
  if b then return b end
  evict()
  opened = opened + 1
  b = setmetatable({ report_id = report.id, tag = EPOCH .. "z" .. opened, seq = 0, list = {},
    ev = event.new() }, Bus)
  buses[report.id] = b
  count = count + 1
  for _, s in ipairs(report.sections or {}) do section_events(b, s) end
  if FINISHED[report.status] then
    b:emit("report.done", { status = M.report_status(report), at = report.finished_at_ms })
  end
  return b
end

-- The data of event E (a table).
function M.data(e)
  return json.decode(e.json) or {}
end

function M.get(report_id)
  return buses[report_id]
end

-- The sequence number in a Last-Event-ID given by this bus, or 0 (the
-- whole story) for anything else.
function Bus:parse_id(id)
  if not id then return 0 end
  local tag, seq = id:match("^([%w]+)%-(%d+)$")
  if tag ~= self.tag then return 0 end
  seq = tonumber(seq) or 0
  return seq <= self.seq and seq or 0
end

-- Tests and /metrics.
function M.stats()
  return { buses = count }
end

return M
