-- The report's Excel workbook (o2c.xlsx, libxlsxwriter): what a consultant
-- pivots and charts for the client.  Sheets:
--   Summary    the overall score, level, target and gap
--   Areas      score, level, target and gap per area (weights, answered)
--   Answers    every question: the answer, its score and the note
--   KPIs       each KPI's value against its benchmark
--   Gaps       the questions scored below their area's target, largest first
-- Scores, levels, targets, gaps, weights and KPI values are number cells.
--
--   workbook.render(doc) -> bytes | nil, {status, code, message}
-- DOC: {client, scores (the scoring's result), questionnaire (the type's,
-- as the API shows it), answers = {qid = value}, notes = {qid = text}}.
local xlsx = require "o2c.xlsx"

local M = {}

local SCORE = "0.00"
local function col(title, width, extra)
  local c = { title = title, width = width }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function num(x)
  return type(x) == "number" and x or nil
end

local function level_text(level, name)
  if level and name then return string.format("%d %s", level, name) end
  return name
end

local function summary_sheet(doc)
  local o = doc.scores.overall or {}
  return {
    name = "Summary",
    columns = { col("Item", 34), col("Value", 40, { number_format = "General" }) },
    rows = {
      { "Client", doc.client },
      { "Overall score (1 to 5)", num(o.score) },
      { "Overall level", num(o.level) },
      { "Level name", o.level_name },
      { "Target", num(o.target) },
      { "Gap to target", num(o.gap) },
      { "Questions answered", num(o.answered) },
      { "Questions in total", num(o.total) },
    },
  }
end

local function areas_sheet(doc)
  local rows = {}
  for i, a in ipairs(doc.scores.areas or {}) do
    rows[i] = { a.title, num(a.weight), num(a.score), num(a.level), a.level_name, num(a.target),
      num(a.gap), num(a.answered), num(a.total) }
  end
  return {
    name = "Areas",
    columns = { col("Area", 40), col("Weight", 9), col("Score", 9, { number_format = SCORE }),
      col("Level", 8), col("Level name", 14), col("Target", 9), col("Gap", 9,
        { number_format = SCORE }), col("Answered", 10), col("Questions", 10) },
    rows = rows,
  }
end

-- The answer as a cell: numbers stay numbers (a scale level, a KPI value),
-- choices become their labels.  Second value: the answer in words.
local function answer_cells(q, value)
  if value == nil then return nil, "not answered" end
  if value == "na" then return nil, "not applicable" end
  if q.type == "scale" and type(value) == "number" then
    return value, (q.levels or {})[value]
  elseif q.type == "kpi" and type(value) == "number" then
    return value, q.unit and string.format("%g %s", value, q.unit) or tostring(value)
  elseif q.type == "single" or q.type == "multi" then
    local labels, by_id = {}, {}
    for _, c in ipairs(q.choices or {}) do by_id[c.id] = c.label end
    for _, id in ipairs(type(value) == "table" and value or { value }) do
      labels[#labels + 1] = by_id[id] or tostring(id)
    end
    return nil, #labels > 0 and table.concat(labels, "; ") or "none of the options"
  end
  return nil, tostring(value)
end

local function question_index(questionnaire)
  local by_id, area_title = {}, {}
  for _, q in ipairs(questionnaire.questions or {}) do by_id[q.id] = q end
  for _, a in ipairs(questionnaire.areas or {}) do area_title[a.id] = a.title end
  return by_id, area_title
end

local function answers_sheet(doc)
  local by_id, area_title = question_index(doc.questionnaire)
  local hidden = {}
  for _, id in ipairs(doc.scores.hidden or {}) do hidden[id] = true end
  local rows = {}
  for _, area in ipairs(doc.questionnaire.areas or {}) do
    for _, qid in ipairs(area.questions or {}) do
      local q = by_id[qid]
      local value, words = answer_cells(q, doc.answers[qid])
      if hidden[qid] then value, words = nil, "not asked (condition not met)" end
      rows[#rows + 1] = { area_title[q.area] or q.area, q.text, value, words,
        num((doc.scores.questions or {})[qid]), doc.notes[qid] }
    end
  end
  return {
    name = "Answers",
    columns = { col("Area", 30), col("Question", 60, { wrap = true }), col("Answer (number)", 14),
      col("Answer", 50, { wrap = true }), col("Score", 9, { number_format = SCORE }),
      col("Note", 40, { wrap = true }) },
    rows = rows,
  }
end

local function kpis_sheet(doc)
  local _, area_title = question_index(doc.questionnaire)
  local rows = {}
  for i, k in ipairs(doc.scores.kpis or {}) do
    rows[i] = { k.name, area_title[k.area] or k.area, num(k.value), k.unit,
      k.status == "answered" and "answered" or tostring(k.status):gsub("_", " "), num(k.score),
      k.band, k.benchmark_text, k.source }
  end
  return {
    name = "KPIs",
    columns = { col("KPI", 30), col("Area", 28), col("Value", 10), col("Unit", 12),
      col("Status", 14), col("Score", 8, { number_format = SCORE }),
      col("Position against benchmark", 36, { wrap = true }),
      col("Benchmark figures", 60, { wrap = true }), col("Source", 40, { wrap = true }) },
    rows = rows,
  }
end

local function gaps_sheet(doc)
  local by_id, area_title = question_index(doc.questionnaire)
  local target = {}
  for _, a in ipairs(doc.scores.areas or {}) do target[a.id] = a.target end
  local gaps = {}
  for qid, score in pairs(doc.scores.questions or {}) do
    local q = by_id[qid]
    local t = q and target[q.area]
    if type(score) == "number" and type(t) == "number" and score < t then
      gaps[#gaps + 1] = { q = q, score = score, target = t, gap = t - score }
    end
  end
  table.sort(gaps, function(a, b)
    if a.gap ~= b.gap then return a.gap > b.gap end
    return a.q.id < b.q.id
  end)
  local rows = {}
  for i, g in ipairs(gaps) do
    local _, words = answer_cells(g.q, doc.answers[g.q.id])
    rows[i] = { area_title[g.q.area] or g.q.area, g.q.text, words, g.score, g.target,
      math.floor(g.gap * 100 + 0.5) / 100 }
  end
  return {
    name = "Gaps",
    columns = { col("Area", 30), col("Question", 60, { wrap = true }),
      col("Answer", 44, { wrap = true }), col("Score", 9, { number_format = SCORE }),
      col("Area target", 11), col("Gap", 9, { number_format = SCORE }) },
    rows = rows,
  }
end

function M.render(doc)
  if not doc.scores or not doc.questionnaire then
    return nil, { status = 500, code = "export_failed",
      message = "the Excel export needs the scores and the questionnaire" }
  end
  doc.answers, doc.notes = doc.answers or {}, doc.notes or {}
  local bytes, err = xlsx.workbook {
    title = "Order-to-Cash maturity assessment: " .. tostring(doc.client or "the client"),
    sheets = { summary_sheet(doc), areas_sheet(doc), answers_sheet(doc), kpis_sheet(doc),
      gaps_sheet(doc) },
  }
  if not bytes then
    return nil, { status = 500, code = "export_failed", message = "the Excel export: " .. err }
  end
  return bytes
end

return M
