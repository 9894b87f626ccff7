-- Scores for the mini assessment: weighted averages, as scripts/o2c does.
local scoring = {}

scoring.method = "Question score 1-5; area = weighted average of its questions; overall = weighted average of the areas."

scoring.levels = {
  { name = "Initial", description = "Ad hoc." },
  { name = "Managed", description = "Repeatable in a team." },
  { name = "Defined", description = "One standard." },
  { name = "Measured", description = "Managed with data." },
  { name = "Optimizing", description = "Improved continuously." },
}

scoring.default_target = 3

local function round2(x)
  return math.floor(x * 100 + 0.5) / 100
end

-- Sets score, level, gap and level_name of R (an area or the overall).
local function rate(r, sum, weights)
  if weights > 0 then
    r.score = round2(sum / weights)
    r.level = math.max(1, math.min(5, math.floor(r.score)))
    r.gap = round2(r.target - r.score)
  end
  r.level_name = r.level and scoring.levels[r.level].name or "Not assessed"
  return r
end

-- The first band that holds VALUE.
local function band_for(bands, value)
  for _, b in ipairs(bands) do
    if b.otherwise or (b.at_most and value <= b.at_most) or (b.below and value < b.below)
        or (b.at_least and value >= b.at_least) or (b.above and value > b.above) then
      return b
    end
  end
end

function scoring.question_score(q, value)
  local kind = q.type
  if value == nil or value == "na" then
    return nil
  elseif kind == "scale" then
    return type(value) == "number" and math.floor(value) or nil
  elseif kind == "single" then
    local c = q.choice_by_id[value]
    return c and c.value
  elseif kind == "multi" and type(value) == "table" then
    local points = 0
    for _, id in ipairs(value) do
      local c = q.choice_by_id[id]
      points = points + (c and c.value or 0)
    end
    return 1 + 4 * points / q.max_points
  elseif kind == "kpi" and type(value) == "number" and q.bands then
    return band_for(q.bands, value).score
  end
end

function scoring.score(model, answers, visible, targets)
  local areas, missing, questions = {}, {}, {}
  local sum, weights, target, answered, total = 0, 0, 0, 0, 0
  for i, area in ipairs(model.areas) do
    local r = { id = area.id, title = area.title, weight = area.weight, target = targets[area.id],
      answered = 0, total = 0 }
    local a_sum, a_weights = 0, 0
    for _, q in ipairs(area.questions) do
      local id = q.id
      if visible[id] and q.type ~= "text" then
        r.total = r.total + 1
        local s = scoring.question_score(q, answers[id])
        if answers[id] == nil then
          missing[#missing + 1] = q.required and id or nil
        else
          r.answered = r.answered + 1
        end
        if s then
          questions[id], a_sum, a_weights = s, a_sum + q.weight * s, a_weights + q.weight
        end
      end
    end
    r.completeness = r.total > 0 and round2(r.answered / r.total) or 1
    areas[i] = rate(r, a_sum, a_weights)
    answered, total = answered + r.answered, total + r.total
    if r.score then
      sum, weights, target = sum + r.weight * r.score, weights + r.weight, target + r.weight * r.target
    end
  end
  local kpis = {}
  for i, q in ipairs(model.kpis) do
    local value = answers[q.id]
    local b = type(value) == "number" and q.bands and visible[q.id] and band_for(q.bands, value)
    kpis[i] = { id = q.id, area = q.area, name = q.label, unit = q.unit, value = value,
      status = not visible[q.id] and "hidden" or value == nil and "unanswered" or value == "na" and "not applicable" or "answered",
      band = b and b.label, score = b and b.score }
  end
  local overall = rate({ answered = answered, total = total, completeness = total > 0 and round2(answered / total) or 1,
    target = weights > 0 and round2(target / weights) or scoring.default_target }, sum, weights)
  return { overall = overall, areas = areas, kpis = kpis, questions = questions, missing_required = missing }
end

return scoring
