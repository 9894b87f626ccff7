-- How O2C answers become scores.
--
-- The method below is the whole roll-up, in the words the report's appendix
-- prints. The code under it does exactly this, step by step; if you change one,
-- change the other, and update spec/scoring_spec.lua's hand-computed examples.
local scoring = {}

scoring.method = [[
**1. Each answer becomes a question score from 1 to 5.**

- *Maturity scale:* the level chosen (1-5) is the score.
- *Single choice:* the value written next to the chosen answer in the questionnaire (1-5).
- *Multiple choice:* 1 + 4 × (points of the ticked answers ÷ points of all answers). Nothing ticked scores 1; everything ticked scores 5.
- *KPI:* the number is placed in the benchmark bands of the knowledge base (`kb/benchmarks.lua`); the band's score is the question score. A KPI with no public benchmark is reported, not scored.
- *Free text:* never scored.

"Not applicable", unanswered and hidden (conditional) questions get no score. They leave the average: they are not counted as zero.

**2. Area score** = Σ (question weight × question score) ÷ Σ (question weight), over the area's questions that have a score, rounded to 2 decimals.

**3. Overall score** = Σ (area weight × area score) ÷ Σ (area weight), over the areas that have a score, rounded to 2 decimals.

**4. Level** = the whole part of the rounded score (2.99 is level 2, 3.00 is level 3): 1 Initial, 2 Managed, 3 Defined, 4 Quantitatively managed, 5 Optimizing.

**5. Target and gap.** Every area has a target level (3 unless the questionnaire or the assessment sets another). Gap = target − score: positive means short of the target, negative means ahead of it. The overall target is the weighted average of the targets of the scored areas, computed like the overall score.

**6. Completeness** = answered ÷ asked, over the visible questions of an area that take a value (free-text notes are not counted). "Not applicable" counts as answered.

*Worked example (billing, weight 2).* Invoice timing "the same day, with manual steps" = 3 (question weight 2); invoice creation level 3 (weight 1); e-invoicing "PDF by e-mail" = 2 (weight 1); 3 of 5 pre-send checks ticked = 1 + 4 × 3/5 = 3.4 (weight 1); accuracy measured "only through credit notes" = 2 (weight 1), so the accuracy KPI stays hidden; cost per invoice $4.10 falls in the band "worse than the median" = 3 (weight 1). Area score = (2×3 + 3 + 2 + 3.4 + 2 + 3) ÷ (2+1+1+1+1+1) = 19.4 ÷ 7 = 2.77, level 2 (Managed). With a target of 3 the gap is 0.23. Had cost per invoice been "not applicable", the score would be 16.4 ÷ 6 = 2.73.
]]

-- The five maturity levels (CMMI, the common reference; see kb/guides/maturity-levels.md).
scoring.levels = {
  { name = "Initial", description = "Ad hoc and reactive; results depend on individuals." },
  { name = "Managed", description = "Planned and repeatable within a team, but not across the organisation." },
  { name = "Defined", description = "One documented standard way of working across the organisation." },
  { name = "Quantitatively managed", description = "Measured against targets and managed with data." },
  { name = "Optimizing", description = "Continuous improvement and automation remove the causes of errors." },
}

-- The target level of an area unless its `area { target = ... }` or the assessment sets one.
scoring.default_target = 3

local NOT_ASSESSED = "Not assessed"

-- Rounds to 2 decimals (half away from zero is not needed: scores are positive).
local function round2(x)
  return math.floor(x * 100 + 0.5) / 100
end
scoring.round = round2

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

-- The benchmark band a KPI value falls in: the first band that holds it.
function scoring.band_for(bands, value)
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
-- Returns (the one table the API, the report and the UI use):
--   overall  = { score, level, level_name, target, gap, completeness, answered, total }
--   areas    = { { id, title, weight, score, level, level_name, target, gap,
--                  completeness, answered, total, scored } }   in questionnaire order
--   kpis     = { { id, area, name, status, value, unit, band, score, benchmark,
--                  benchmark_name, benchmark_text, source } }
--              status: "answered", "not applicable", "unanswered" or "hidden"
--   questions = { [question id] = score } for every question that has a score
--   missing_required = { question ids: visible, required and unanswered }
-- `score`, `level` and `gap` are absent (nil) for an area with nothing scored;
-- its level_name is "Not assessed".
function scoring.score(model, answers, visible, targets)
  local areas, questions, missing = {}, {}, {}
  local overall_sum, overall_weight, overall_target = 0, 0, 0
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
      completeness = total > 0 and round2(answered / total) or 1,
      score = nil, level = nil, gap = nil, level_name = nil, -- set below
    }
    if weights > 0 then
      local s = round2(sum / weights)
      result.score = s
      result.level = scoring.level(s)
      result.gap = round2(target - s)
      overall_sum = overall_sum + area.weight * s
      overall_weight = overall_weight + area.weight
      overall_target = overall_target + area.weight * target
    end
    result.level_name = scoring.level_name(result.level)
    areas[a] = result
    all_answered = all_answered + answered
    all_total = all_total + total
  end

  local overall = {
    answered = all_answered, total = all_total,
    completeness = all_total > 0 and round2(all_answered / all_total) or 1,
  }
  if overall_weight > 0 then
    overall.score = round2(overall_sum / overall_weight)
    overall.level = scoring.level(overall.score)
    overall.target = round2(overall_target / overall_weight)
    overall.gap = round2(overall.target - overall.score)
  else
    -- nothing scored yet: the target is the average over all areas
    local t, w = 0, 0
    for a = 1, #model.areas do
      local area = model.areas[a]
      t = t + area.weight * targets[area.id]
      w = w + area.weight
    end
    overall.target = w > 0 and round2(t / w) or scoring.default_target
  end
  overall.level_name = scoring.level_name(overall.level)

  local kpis = {}
  for k = 1, #model.kpis do
    local q = model.kpis[k]
    local entry = {
      id = q.id, area = q.area, name = q.label, unit = q.unit,
      benchmark = q.benchmark, benchmark_name = q.benchmark_name,
      benchmark_text = q.benchmark_text, source = q.source,
      status = nil, value = nil, band = nil, score = nil, -- set below
    }
    local value = answers[q.id]
    if not visible[q.id] then
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
