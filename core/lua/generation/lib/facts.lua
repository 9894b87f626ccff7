-- lib.facts: the facts of one assessment, gathered from ctx for the report:
-- what each answer says in words, an area's strengths and gaps, KPI positions,
-- the KB's next moves and the agents that fit. Prompts, offline drafts and
-- generated sections all read these, so the LLM and the offline drafter work
-- from the same facts. Built once per assessment type (library.lua), bound to
-- that type's questionnaire and the knowledge base.
local format = GEN_MODULE("lib/format")
local scoring = GEN_MODULE("lib/scoring")

-- questionnaire: the type's questionnaire (read-only view); kb: the KB view.
return function(questionnaire, kb)
  local facts = {}
  local band_for = scoring.band_for

  ---------------------------------------------------------------------------
  -- answers in words
  ---------------------------------------------------------------------------

  local function choice_labels(q, ids)
    local labels = {}
    for _, id in ipairs(ids) do
      local c = q.choice_by_id[id]
      labels[#labels + 1] = c and c.label or tostring(id)
    end
    return labels
  end

  -- What an answer says, in words: "level 3 – A documented policy ...".
  function facts.answer_text(q, value)
    if value == nil then
      return "not answered"
    elseif value == "na" then
      return "not applicable"
    end
    if q.type == "scale" then
      return string.format("level %d – %s", value, format.clause(q.levels[value] or ""))
    elseif q.type == "single" then
      local c = q.choice_by_id[value]
      return c and format.clause(c.label) or tostring(value)
    elseif q.type == "multi" then
      if #value == 0 then
        return "none of the options"
      end
      return string.format("%d of %d: %s", #value, #q.choices, table.concat(choice_labels(q, value), "; "))
    elseif q.type == "kpi" then
      return format.with_unit(value, q.unit)
    end
    return tostring(value)
  end

  -- The step up from this answer, in words, or nil at the top.
  function facts.next_step(q, value)
    if q.type == "scale" and type(value) == "number" and value < 5 then
      return format.clause(q.levels[value + 1])
    elseif q.type == "single" then
      local current = q.choice_by_id[value]
      local best
      for _, c in ipairs(q.choices) do
        if current and c.value > current.value and (not best or c.value < best.value) then
          best = c
        end
      end
      return best and format.clause(best.label)
    elseif q.type == "multi" and type(value) == "table" then
      local ticked, missing = {}, {}
      for _, id in ipairs(value) do
        ticked[id] = true
      end
      for _, c in ipairs(q.choices) do
        if not ticked[c.id] then
          missing[#missing + 1] = c.label
        end
      end
      if #missing > 0 then
        return "add " .. table.concat(missing, "; ")
      end
    elseif q.type == "kpi" and type(value) == "number" and q.bands then
      local current = band_for(q.bands, value)
      for i, b in ipairs(q.bands) do
        if b == current and i > 1 then
          return "reach the next band, “" .. q.bands[i - 1].label .. "”"
        end
      end
    end
    return nil
  end

  ---------------------------------------------------------------------------
  -- areas
  ---------------------------------------------------------------------------

  function facts.area_score(ctx, area_id)
    for _, a in ipairs(ctx.scores.areas) do
      if a.id == area_id then
        return a
      end
    end
    return nil
  end

  function facts.kpi_line(k)
    local name = "**" .. k.name .. "**"
    if k.status == "hidden" then
      return name .. ": not measured today."
    elseif k.status ~= "answered" then
      return name .. ": " .. format.status_word(k.status) .. "."
    end
    local value = format.with_unit(k.value, k.unit)
    if k.score then
      return string.format("%s: %s – %s (scores %d of 5). Benchmark: %s Source: %s.", name, value, k.band, k.score,
        k.benchmark_text, k.source)
    end
    return string.format("%s: %s – no public benchmark; compare it with the client's own target and trend (%s).",
      name, value, k.source)
  end

  -- One agent for a prompt, by its catalogue name (never its id: the text a
  -- model copies from here ends up in the client's document).
  local function agent_line(agent)
    return string.format("%s automates: %s Prerequisites: %s. Moves: %s.", agent.name,
      agent.automates, table.concat(agent.prerequisites, "; "), kb.benchmark(agent.kpi).name)
  end
  facts.agent_line = agent_line

  -- "the Cash Matching Agent, which matches incoming payments ..." (no full stop).
  function facts.agent_phrase(agent)
    return string.format("the %s, which %s", agent.name, format.clause(format.in_sentence(agent.automates)))
  end

  -- "electronic bank statements loaded daily, clean open-item data ... and ..."
  function facts.prerequisites(agent)
    local items = {}
    for i, p in ipairs(agent.prerequisites) do
      items[i] = format.clause(format.in_sentence(p))
    end
    return format.list(items)
  end

  -- Everything the report says about one area.
  function facts.area(ctx, area_id)
    local area = questionnaire.area_by_id[area_id]
    local s = facts.area_score(ctx, area_id)
    local f = {
      area = area, score = s, doc = kb.doc(area.kb),
      strengths = {}, gaps = {}, not_applicable = {}, unanswered = {}, kpis = {}, notes = {}, agents = {},
    }
    local target = s.target
    for _, q in ipairs(area.questions) do
      local value = ctx.answers[q.id]
      local qs = ctx.scores.questions[q.id]
      if ctx.visible[q.id] then
        if q.type == "text" then
          if type(value) == "string" and value:match("%S") then
            f.notes[#f.notes + 1] = { question = q, text = value }
          end
        elseif value == nil then
          f.unanswered[#f.unanswered + 1] = q
        elseif value == "na" then
          f.not_applicable[#f.not_applicable + 1] = q
        elseif qs and qs >= math.max(4, target) then
          f.strengths[#f.strengths + 1] = { question = q, score = qs, text = facts.answer_text(q, value) }
        elseif qs and qs < target then
          f.gaps[#f.gaps + 1] = {
            question = q, score = qs, text = facts.answer_text(q, value), next = facts.next_step(q, value),
          }
        end
        local note = ctx.notes[q.id]
        if note then
          f.notes[#f.notes + 1] = { question = q, text = note }
        end
      end
    end
    table.sort(f.strengths, function(a, b)
      if a.score ~= b.score then return a.score > b.score end
      return a.question.index < b.question.index
    end)
    table.sort(f.gaps, function(a, b)
      if a.score ~= b.score then return a.score < b.score end
      if a.question.weight ~= b.question.weight then return a.question.weight > b.question.weight end
      return a.question.index < b.question.index
    end)
    for _, k in ipairs(ctx.scores.kpis) do
      if k.area == area_id then
        f.kpis[#f.kpis + 1] = k
      end
    end
    -- The KB's moves from the current level up to the target (or one level of
    -- stretch when the target is already met).
    f.moves = {}
    local from = (s.level or 1) + 1
    local to = math.max(target, from)
    if f.doc.moves then
      for level = from, math.min(to, 5) do
        if f.doc.moves[level] then
          f.moves[#f.moves + 1] = { level = level, text = f.doc.moves[level] }
        end
      end
    end
    -- Agents: first those attached to the gap questions, then the area's others.
    local seen = {}
    for _, g in ipairs(f.gaps) do
      for _, id in ipairs(g.question.agents) do
        if not seen[id] then
          seen[id] = true
          f.agents[#f.agents + 1] = kb.agent(id)
        end
      end
    end
    if #f.agents == 0 and s.gap and s.gap > 0 then
      for _, agent in ipairs(kb.agents_for_area(area_id)) do
        f.agents[#f.agents + 1] = agent
      end
    end
    return f
  end

  -- What is still to answer, per area, for the consultant's open questions:
  -- shown questions with no answer, and questions hidden until an earlier one
  -- is answered (ctx.waiting). Free-text notes are never open.
  --   { { area =, questions = { { question =, waits_for = question | nil } } } }
  function facts.open_questions(ctx)
    local waiting = ctx.waiting or {}
    local out = {}
    for _, area in ipairs(questionnaire.areas) do
      local items = {}
      for _, q in ipairs(area.questions) do
        if q.type ~= "text" then
          if ctx.visible[q.id] and ctx.answers[q.id] == nil then
            items[#items + 1] = { question = q }
          elseif not ctx.visible[q.id] and waiting[q.id] then
            items[#items + 1] = { question = q, waits_for = questionnaire.question_by_id[waiting[q.id]] }
          end
        end
      end
      if #items > 0 then
        out[#out + 1] = { area = area, questions = items }
      end
    end
    return out
  end

  -- KPIs the client's answers say are not measured (never merely unanswered ones).
  function facts.not_measured(ctx)
    local list = {}
    for _, k in ipairs(ctx.scores.kpis) do
      if k.status == "hidden" then
        list[#list + 1] = k
      end
    end
    return list
  end

  -- Areas short of their target, largest weighted gap first.
  function facts.priorities(ctx)
    local list = {}
    for i, a in ipairs(ctx.scores.areas) do
      if a.gap and a.gap > 0 then
        list[#list + 1] = { score = a, index = i, weight = a.gap * a.weight }
      end
    end
    table.sort(list, function(x, y)
      if x.weight ~= y.weight then return x.weight > y.weight end
      return x.index < y.index
    end)
    local areas = {}
    for i, item in ipairs(list) do
      areas[i] = facts.area(ctx, item.score.id)
    end
    return areas
  end

  -- Scored areas, strongest first.
  function facts.strongest(ctx)
    local list = {}
    for i, a in ipairs(ctx.scores.areas) do
      if a.score then
        list[#list + 1] = { a = a, i = i }
      end
    end
    table.sort(list, function(x, y)
      if x.a.score ~= y.a.score then return x.a.score > y.a.score end
      return x.i < y.i
    end)
    local out = {}
    for i, item in ipairs(list) do
      out[i] = item.a
    end
    return out
  end

  -- "level 2 (Managed), score 2.77 against a target of 3"
  function facts.position(s)
    if not s.score then
      return string.format("not assessed yet (target level %s)", format.number(s.target))
    end
    local gap
    if s.gap > 0 then
      gap = string.format("%s short of it", format.number(s.gap))
    elseif s.gap < 0 then
      gap = string.format("%s ahead of it", format.number(-s.gap))
    else
      gap = "exactly on it"
    end
    return string.format("level %d (%s), score %s against a target of %s – %s", s.level, s.level_name,
      format.score(s.score), format.number(s.target), gap)
  end

  ---------------------------------------------------------------------------
  -- grounding for prompts: the facts of one area as plain Markdown
  ---------------------------------------------------------------------------

  function facts.area_brief(ctx, area_id)
    local f = facts.area(ctx, area_id)
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end
    add(string.format("Area: %s (weight %s). %s", f.area.title, format.number(f.area.weight), f.area.description))
    add("Position: " .. facts.position(f.score) .. ".")
    add(string.format("Completeness: %d of %d questions answered.", f.score.answered, f.score.total))
    add("")
    add("Answers (question – answer – score out of 5):")
    for _, q in ipairs(f.area.questions) do
      if ctx.visible[q.id] and q.type ~= "text" then
        local qs = ctx.scores.questions[q.id]
        add(string.format("- %s – %s – %s", q.text, facts.answer_text(q, ctx.answers[q.id]),
          qs and format.number(qs) or "no score"))
      end
    end
    if #f.notes > 0 then
      add("")
      add("Client's notes and evidence:")
      for _, n in ipairs(f.notes) do
        add(string.format("- %s: %s", n.question.label, n.text))
      end
    end
    if #f.kpis > 0 then
      add("")
      add("KPIs against benchmark:")
      for _, k in ipairs(f.kpis) do
        add("- " .. facts.kpi_line(k))
      end
    end
    if #f.agents > 0 then
      add("")
      add("Agents from the catalogue that fit the gaps of this area:")
      for _, a in ipairs(f.agents) do
        add("- " .. agent_line(a))
      end
    end
    add("")
    add("Knowledge-base passage for this area (" .. f.doc.path .. "):")
    add(f.doc.body)
    return table.concat(out, "\n")
  end

  -- The KB's agent catalogue, one line per agent, for a prompt that may name agents.
  function facts.catalogue()
    local lines = {}
    for _, agent in ipairs(kb.agents) do
      lines[#lines + 1] = "- " .. agent_line(agent) .. " Area: " .. agent.area .. "."
    end
    return table.concat(lines, "\n")
  end

  function facts.scores_brief(ctx)
    local out = {}
    local o = ctx.scores.overall
    out[#out + 1] = "Overall: " .. facts.position(o) .. string.format(" (%d of %d questions answered).", o.answered, o.total)
    for _, a in ipairs(ctx.scores.areas) do
      out[#out + 1] = string.format("- %s: %s.", a.title, facts.position(a))
    end
    return table.concat(out, "\n")
  end

  return facts
end
