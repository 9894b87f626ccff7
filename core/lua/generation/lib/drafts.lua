-- lib.drafts: the text the offline provider writes, section by section, when
-- no LLM is used. Each draft is built from the same facts the prompts give the
-- LLM (lib.facts) and the KB's own words, so it reads as a consultant's first
-- draft: position, evidence, the next moves and the agents that fit.
-- Deterministic: the same answers always give the same text.
--
-- lib.drafts(words) returns { findings, executive_summary, recommendations,
-- roadmap }; `words` is the type's content (see DEFAULT_WORDS), any key left
-- out keeps its default.
local format = GEN_MODULE("lib/format")

local drafts_lib = {}

-- What a type may set. Counts are how many items a draft lists; levels are
-- thresholds on the 1-5 scale.
drafts_lib.DEFAULT_WORDS = {
  process = "process",             -- "<client>'s <process> stands at level N"
  phases = { "0-3 months", "3-6 months", "6-12 months" },  -- the roadmap's phases, in order
  quiet_phase = {                  -- what a phase says when no move falls in it (one per phase)
    "Confirm the target level of each area with its process owner and agree how each KPI is measured.",
    "Review the KPIs moved in the first phase against their targets and adjust the actions that lag.",
    "Re-assess the areas against their targets; raise the targets of areas that meet them.",
  },
  strongest_shown = 2,             -- summary: strongest areas named
  strong_level = 3,                -- summary: "Strongest areas" from this level, else "Relatively strongest"
  gaps_shown = 3,                  -- summary: largest gaps named
  priorities_shown = 3,            -- summary: numbered priorities
  gap_names_shown = 3,             -- recommendations: gap questions named per area
  agent_ready_level = 3,           -- an agent's prerequisites are "close" from this area level
}

local function join(lines)
  return table.concat(lines, "\n")
end

-- Merges the type's words over the defaults; refuses unknown keys, so a typo
-- fails `o2c check` at once instead of silently keeping the default.
local function merged_words(words)
  local w = {}
  for k, v in pairs(drafts_lib.DEFAULT_WORDS) do
    w[k] = v
  end
  if words == nil then
    return w
  end
  if type(words) ~= "table" then
    error(string.format("lib.drafts(words): words must be a table (got %s)", type(words)), 0)
  end
  for k, v in pairs(words) do
    local default = drafts_lib.DEFAULT_WORDS[k]
    if default == nil then
      local known = {}
      for name in pairs(drafts_lib.DEFAULT_WORDS) do
        known[#known + 1] = name
      end
      table.sort(known)
      error(string.format("lib.drafts(words): unknown key %s (known: %s)", tostring(k), table.concat(known, ", ")), 0)
    end
    if type(v) ~= type(default) then
      error(string.format("lib.drafts(words): %s must be a %s (got %s)", tostring(k), type(default), type(v)), 0)
    end
    w[k] = v
  end
  if #w.phases == 0 or #w.quiet_phase == 0 then
    error("lib.drafts(words): phases and quiet_phase must each list at least one text", 0)
  end
  return w
end

-- facts: the type's lib.facts; questionnaire: its questionnaire (read-only view).
function drafts_lib.new(facts, questionnaire, words)
  words = merged_words(words)
  local drafts = {}

  ---------------------------------------------------------------------------
  -- findings for one area
  ---------------------------------------------------------------------------

  function drafts.findings(ctx, area_id)
    local f = facts.area(ctx, area_id)
    local s = f.score
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end

    if not s.score then
      -- Nothing to find yet: the open questions (consultant only) list what to ask.
      add(string.format("**Position.** %s is not assessed yet: it has no scored answer. Its target is level %s.",
        f.area.title, format.number(s.target)))
      local ask = f.doc.section["evidence to ask for"]
      if ask and #ask.bullets > 0 then
        add("")
        add("**Evidence to collect** for the assessment: " .. table.concat(ask.bullets, " "))
      end
      return join(out)
    end
    add("**Position.** " .. f.area.title .. " is at " .. facts.position(s) .. ".")
    if s.total > 0 and s.answered < s.total then
      add(string.format("This position rests on %d of its %d questions; it may change when the others are answered.",
        s.answered, s.total))
    end
    if #f.not_applicable > 0 then
      local names = {}
      for _, q in ipairs(f.not_applicable) do
        names[#names + 1] = q.label
      end
      add("Marked not applicable and left out of the score: " .. table.concat(names, ", ") .. ".")
    end
    add("")

    add("**Strengths**")
    add("")
    if #f.strengths == 0 then
      add("- No practice in this area reaches level 4 yet.")
    else
      for _, item in ipairs(f.strengths) do
        add(string.format("- %s: %s.", item.question.label, item.text))
      end
    end
    add("")

    add("**Gaps**")
    add("")
    if #f.gaps == 0 then
      add(string.format("- No answer falls below the target level %s.", format.number(s.target)))
    else
      for _, item in ipairs(f.gaps) do
        local line = string.format("- %s: %s (scores %s of 5).", item.question.label, item.text, format.number(item.score))
        if item.next then
          line = line .. " Next step: " .. item.next .. "."
        end
        add(line)
      end
    end
    add("")

    -- Unanswered KPIs are the consultant's open questions, not findings.
    local kpi_lines = {}
    for _, k in ipairs(f.kpis) do
      if k.status ~= "unanswered" then
        kpi_lines[#kpi_lines + 1] = "- " .. facts.kpi_line(k)
      end
    end
    if #kpi_lines > 0 then
      add("**KPI position**")
      add("")
      for _, line in ipairs(kpi_lines) do
        add(line)
      end
      add("")
    end

    if #f.moves > 0 then
      if s.gap and s.gap <= 0 then
        add("**Beyond the target.** The area meets its target; the next level would take:")
      else
        add(string.format("**What reaching level %s takes** (from the knowledge base):", format.number(s.target)))
      end
      add("")
      for _, m in ipairs(f.moves) do
        add(string.format("- Level %d: %s", m.level, m.text))
      end
      add("")
    end

    if #f.notes > 0 then
      add("**Evidence noted**")
      add("")
      for _, n in ipairs(f.notes) do
        add(string.format("- %s: “%s”", n.question.label, n.text))
      end
      add("")
    end

    local ask = f.doc.section["evidence to ask for"]
    if ask and #ask.bullets > 0 and (s.completeness < 1 or #f.gaps > 0) then
      add("**Evidence to collect** to confirm these findings: " .. table.concat(ask.bullets, " ") )
    end
    return (join(out):gsub("%s+$", ""))
  end

  ---------------------------------------------------------------------------
  -- executive summary
  ---------------------------------------------------------------------------

  function drafts.executive_summary(ctx)
    local o = ctx.scores.overall
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end
    if not o.score then
      add(string.format("The assessment of %s has no scored answers yet, so no position can be stated. The target is level %s overall.",
        ctx.client, format.number(o.target)))
      return join(out)
    end
    add(string.format("%s's %s stands at **level %d (%s)** overall, with a score of %s against a target of %s.",
      ctx.client, words.process, o.level, o.level_name, format.score(o.score), format.number(o.target)))
    if o.completeness < 1 then
      add(string.format("The assessment is %d%% complete (%d of %d questions answered); unanswered questions are left out of the scores.",
        math.floor(o.completeness * 100 + 0.5), o.answered, o.total))
    end
    add("")
    local strongest = facts.strongest(ctx)
    if #strongest > 0 then
      local best = {}
      for i = 1, math.min(words.strongest_shown, #strongest) do
        best[#best + 1] = string.format("%s (level %d, %s)", strongest[i].title, strongest[i].level, format.score(strongest[i].score))
      end
      local lead = strongest[1].level >= words.strong_level and "Strongest areas" or "Relatively strongest areas"
      add("**" .. lead .. ":** " .. table.concat(best, " and ") .. ".")
      add("")
    end
    local priorities = facts.priorities(ctx)
    if #priorities == 0 then
      add("**Gaps:** every assessed area meets its target level; the recommendations focus on the next level where it pays.")
    else
      local gaps = {}
      for i = 1, math.min(words.gaps_shown, #priorities) do
        local s = priorities[i].score
        gaps[#gaps + 1] = string.format("%s (level %d against a target of %s)", s.title, s.level, format.number(s.target))
      end
      add("**Largest gaps to target:** " .. table.concat(gaps, "; ") .. ".")
    end
    add("")
    -- KPI headline: the scored KPIs, worst band first
    local kpis = {}
    for _, k in ipairs(ctx.scores.kpis) do
      if k.status == "answered" and k.score then
        kpis[#kpis + 1] = k
      end
    end
    table.sort(kpis, function(a, b)
      if a.score ~= b.score then return a.score < b.score end
      return a.id < b.id
    end)
    if #kpis > 0 then
      add("**KPIs against public benchmarks:**")
      add("")
      for _, k in ipairs(kpis) do
        add(string.format("- %s %s: %s.", k.name, format.with_unit(k.value, k.unit), k.band))
      end
      add("")
    end
    -- Only KPIs the client said are not measured: an unanswered one is an
    -- open question for the consultant, not a finding.
    local unmeasured = {}
    for i, k in ipairs(facts.not_measured(ctx)) do
      unmeasured[i] = i == 1 and k.name or format.in_sentence(k.name)
    end
    if #unmeasured > 0 then
      add("**Not measured today:** " .. format.list(unmeasured) .. ". Measuring "
        .. (#unmeasured == 1 and "it" or "them") .. " is part of the first phase.")
      add("")
    end
    if #priorities > 0 then
      add("**Priorities.**")
      add("")
      for i = 1, math.min(words.priorities_shown, #priorities) do
        local p = priorities[i]
        local move = p.moves[1]
        add(string.format("%d. %s: %s", i, p.area.title, move and move.text or "close the gaps listed in the findings."))
      end
    end
    return (join(out):gsub("%s+$", ""))
  end

  ---------------------------------------------------------------------------
  -- recommendations
  ---------------------------------------------------------------------------

  function drafts.recommendations(ctx)
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end
    local priorities = facts.priorities(ctx)
    if #priorities == 0 then
      local assessed = facts.strongest(ctx)
      if #assessed == 0 then
        add("No area has a scored answer yet; the recommendations follow from the answers.")
        return join(out)
      end
      local next_moves = {}
      for _, a in ipairs(assessed) do
        if a.level and a.level < 5 then
          local f = facts.area(ctx, a.id)
          if f.moves[1] then
            next_moves[#next_moves + 1] = string.format("- **%s** – towards level %d: %s", a.title, f.moves[1].level, f.moves[1].text)
          end
        end
      end
      if #next_moves == 0 then
        add("Every assessed area meets its target.")
        return join(out)
      end
      add("Every assessed area meets its target. To keep improving:")
      add("")
      for _, line in ipairs(next_moves) do
        add(line)
      end
      return join(out)
    end
    for i, p in ipairs(priorities) do
      local s = p.score
      add(string.format("### %d. %s: from level %d to level %s", i, p.area.title, s.level, format.number(s.target)))
      add("")
      local gap_names = {}
      for j = 1, math.min(words.gap_names_shown, #p.gaps) do
        local label = p.gaps[j].question.label
        gap_names[#gap_names + 1] = j == 1 and label or format.in_sentence(label)
      end
      if #gap_names > 0 then
        add("- **Gap:** " .. format.list(gap_names) .. string.format(" (area score %s, gap %s).", format.score(s.score), format.number(s.gap)))
      else
        add(string.format("- **Gap:** the area score is %s against a target of %s.", format.score(s.score), format.number(s.target)))
      end
      for _, m in ipairs(p.moves) do
        add(string.format("- **Action (level %d):** %s", m.level, m.text))
      end
      local agent = p.agents[1]
      if agent then
        local ready = s.level >= words.agent_ready_level and "they are close to what is in place" or "put them in place first"
        add(string.format("- **Automation:** %s. It needs %s; %s.", format.capital(facts.agent_phrase(agent)),
          facts.prerequisites(agent), ready))
      end
      local measures = {}
      for _, k in ipairs(p.kpis) do
        if k.status == "answered" and k.score and k.score < 5 then
          local q = questionnaire.question_by_id[k.id]
          local step = facts.next_step(q, k.value)
          measures[#measures + 1] = string.format("%s – %s", format.in_sentence(k.name),
            step or ("hold it in the best published band, “" .. k.band .. "”"))
        elseif k.status == "hidden" then
          measures[#measures + 1] = "start measuring " .. format.in_sentence(k.name)
        end
      end
      if #measures > 0 then
        measures[1] = format.capital(measures[1])
        add("- **Measure:** " .. table.concat(measures, "; ") .. ".")
      end
      add("")
    end
    return (join(out):gsub("%s+$", ""))
  end

  ---------------------------------------------------------------------------
  -- roadmap
  ---------------------------------------------------------------------------

  -- Phase of a move: the first level up goes in the first phase, the second in
  -- the second, anything further in the last. An agent is deployed once its area
  -- reaches words.agent_ready_level: at once if it is there, otherwise in the
  -- phase after the move to that level.
  function drafts.roadmap(ctx)
    local titles = words.phases
    local last = #titles
    local phases = {}
    for i = 1, last do
      phases[i] = {}
    end
    local priorities = facts.priorities(ctx)
    for _, p in ipairs(priorities) do
      local level = p.score.level or 1
      for _, m in ipairs(p.moves) do
        local phase = math.min(last, m.level - level)
        table.insert(phases[phase], string.format("%s – level %d: %s", p.area.title, m.level, m.text))
      end
      local agent = p.agents[1]
      if agent then
        local ready = words.agent_ready_level
        local phase = level >= ready and 1 or math.min(last, ready - level + 1)
        table.insert(phases[phase], string.format("%s – deploy the %s, with people reviewing its output at first.",
          p.area.title, agent.name))
      end
    end
    local unmeasured = {}
    for i, k in ipairs(facts.not_measured(ctx)) do
      unmeasured[i] = format.in_sentence(k.name)
    end
    if #unmeasured > 0 then
      table.insert(phases[1], "Start measuring " .. format.list(unmeasured) .. " every month.")
    end
    local out = {}
    for i, title in ipairs(titles) do
      out[#out + 1] = "### " .. title
      out[#out + 1] = ""
      if #phases[i] == 0 then
        out[#out + 1] = "- " .. (words.quiet_phase[i] or words.quiet_phase[#words.quiet_phase])
      else
        for _, line in ipairs(phases[i]) do
          out[#out + 1] = "- " .. line
        end
      end
      out[#out + 1] = ""
    end
    return (table.concat(out, "\n"):gsub("%s+$", ""))
  end

  return drafts
end

return drafts_lib
