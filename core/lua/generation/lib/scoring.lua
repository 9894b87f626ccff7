-- lib.scoring: the standard roll-up of answers into scores (the method a
-- type's scoring.lua prints in its `method` text), and the pieces it is made of.
-- A type's scoring.lua gives the content:
--
--   local lib = ...
--   local scoring = lib.scoring.standard {
--     method = [[...Markdown...]], levels = { { name =, description = } x5 },
--     default_target = 3,
--   }
--   return scoring
--
-- and may replace any function of the table it gets back (scoring.score,
-- scoring.question_score, ...) with its own.
local lib_scoring = {}

local NOT_ASSESSED = "Not assessed"

-- Rounds to 2 decimals (half away from zero is not needed: scores are positive).
function lib_scoring.round(x)
  return math.floor(x * 100 + 0.5) / 100
end

-- The benchmark band a KPI value falls in: the first band that holds it.
function lib_scoring.band_for(bands, value)
  for i = 1, #bands do
    local b = bands[i]
    if b.otherwise
        or (b.at_most and value <= b.at_most)
        or (b.below and value < b.below)
        or (b.at_least and value >= b.at_least)
        or (b.above and value > b.above) then
      return b
    end
  end
  return nil
end

-- The scoring table of a type: its content plus the standard functions.
--   content.method          Markdown explaining the roll-up (printed in the appendix)
--   content.levels          the 5 maturity levels, { name =, description = }
--   content.default_target  the target level of an area unless one is set
function lib_scoring.standard(content)
  if type(content) ~= "table" then
    error(string.format("lib.scoring.standard expects a table { method =, levels =, default_target = } (got %s)",
      type(content)), 2)
  end
  local scoring = {}
  for k, v in pairs(content) do
    scoring[k] = v
  end
  scoring.round = lib_scoring.round
  scoring.band_for = lib_scoring.band_for

  -- Step 4: the level of a rounded score.
  function scoring.level(score)
    local level = math.floor(score)
    if level < 1 then
      return 1
    elseif level > 5 then
      return 5
    end
    return level
  end

  function scoring.level_name(level)
    local l = level and scoring.levels[level]
    return l and l.name or NOT_ASSESSED
  end

  -- Step 1: one answer -> a score from 1 to 5, or nil when it does not count.
  -- `question` is the compiled question: type, weight, choice_by_id (single and
  -- multi), max_points (multi: the points of all choices), bands (kpi, from the KB).
  function scoring.question_score(question, value)
    if value == nil or value == "na" then
      return nil
    end
    local kind = question.type
    if kind == "scale" then
      if type(value) == "number" and value >= 1 and value <= 5 then
        return math.floor(value)
      end
    elseif kind == "single" then
      local choice = question.choice_by_id[value]
      return choice and choice.value
    elseif kind == "multi" then
      if type(value) ~= "table" then
        return nil
      end
      local points = 0
      for i = 1, #value do
        local choice = question.choice_by_id[value[i]]
        if choice then
          points = points + choice.value
        end
      end
      return 1 + 4 * points / question.max_points
    elseif kind == "kpi" then
      if type(value) == "number" and question.bands then
        local band = scoring.band_for(question.bands, value)
        return band and band.score
      end
    end
    return nil
  end

  -- Steps 2-6: the whole scores table.
  --   model    the compiled questionnaire (areas with their questions, kpis)
  --   answers  question id -> value ("na" for not applicable)
  --   visible  question id -> true for the questions shown to this client
  --   targets  area id -> target level
  --   waiting  question id -> the earlier question still to answer, for hidden
  --            questions that answer may show (optional)
  -- Returns (the one table the API, the report and the UI use):
  --   overall  = { score, level, level_name, target, gap, completeness, answered, total }
  --   areas    = { { id, title, weight, score, level, level_name, target, gap,
  --                  completeness, answered, total, scored } }   in questionnaire order
  --   kpis     = { { id, area, name, status, value, unit, band, score, benchmark,
  --                  benchmark_name, benchmark_text, source } }
  --              status: "answered", "not applicable", "unanswered" (not yet
  --              answered: shown without an answer, or hidden until an earlier
  --              question is answered; `waits_for` names that question) or
  --              "hidden" (the client's answers hide it: not measured)
  --   questions = { [question id] = score } for every question that has a score
  --   missing_required = { question ids: visible, required and unanswered }
  -- `score`, `level` and `gap` are absent (nil) for an area with nothing scored;
  -- its level_name is "Not assessed".
  function scoring.score(model, answers, visible, targets, waiting)
    waiting = waiting or {}
    local areas, questions, missing = {}, {}, {}
    local overall_sum, overall_weight, overall_target, target_weight = 0, 0, 0, 0
    local all_answered, all_total = 0, 0

    for a = 1, #model.areas do
      local area = model.areas[a]
      local sum, weights, answered, total, scored = 0, 0, 0, 0, 0
      local list = area.questions
      for i = 1, #list do
        local q = list[i]
        if visible[q.id] and q.type ~= "text" then
          total = total + 1
          local value = answers[q.id]
          if value == nil then
            if q.required then
              missing[#missing + 1] = q.id
            end
          else
            answered = answered + 1
            local s = scoring.question_score(q, value)
            if s then
              questions[q.id] = s
              sum = sum + q.weight * s
              weights = weights + q.weight
              scored = scored + 1
            end
          end
        end
      end

      local target = targets[area.id]
      local result = {
        id = area.id, title = area.title, weight = area.weight, target = target,
        answered = answered, total = total, scored = scored,
        completeness = total > 0 and scoring.round(answered / total) or 1,
        score = nil, level = nil, gap = nil, level_name = nil, -- set below
      }
      if weights > 0 then
        local s = scoring.round(sum / weights)
        result.score = s
        result.level = scoring.level(s)
        result.gap = scoring.round(target - s)
        overall_sum = overall_sum + area.weight * s
        overall_weight = overall_weight + area.weight
      end
      -- The overall target is the client's ambition over every area: it
      -- must not move as answers arrive.
      overall_target = overall_target + area.weight * target
      target_weight = target_weight + area.weight
      result.level_name = scoring.level_name(result.level)
      areas[a] = result
      all_answered = all_answered + answered
      all_total = all_total + total
    end

    local overall = {
      answered = all_answered, total = all_total,
      completeness = all_total > 0 and scoring.round(all_answered / all_total) or 1,
    }
    overall.target = target_weight > 0 and scoring.round(overall_target / target_weight) or scoring.default_target
    if overall_weight > 0 then
      overall.score = scoring.round(overall_sum / overall_weight)
      overall.level = scoring.level(overall.score)
      overall.gap = scoring.round(overall.target - overall.score)
    end
    overall.level_name = scoring.level_name(overall.level)

    local kpis = {}
    for k = 1, #model.kpis do
      local q = model.kpis[k]
      local entry = {
        id = q.id, area = q.area, name = q.label, unit = q.unit,
        benchmark = q.benchmark, benchmark_name = q.benchmark_name,
        benchmark_text = q.benchmark_text, source = q.source,
        status = nil, value = nil, band = nil, score = nil, waits_for = nil, -- set below
      }
      local value = answers[q.id]
      if not visible[q.id] and waiting[q.id] then
        entry.status = "unanswered"
        entry.waits_for = waiting[q.id]
      elseif not visible[q.id] then
        entry.status = "hidden"
      elseif value == nil then
        entry.status = "unanswered"
      elseif value == "na" then
        entry.status = "not applicable"
      else
        entry.status = "answered"
        entry.value = value
        if type(value) == "number" and q.bands then
          local band = scoring.band_for(q.bands, value)
          entry.band = band and band.label
          entry.score = band and band.score
        else
          entry.band = "no public benchmark"
        end
      end
      kpis[k] = entry
    end

    return {
      overall = overall, areas = areas, kpis = kpis,
      questions = questions, missing_required = missing,
    }
  end

  return scoring
end

return lib_scoring
