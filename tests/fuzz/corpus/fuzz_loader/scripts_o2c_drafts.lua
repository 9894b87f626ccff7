scripts/o2c/drafts.lua
-- Offline drafts: what the report says when no LLM is used. Each draft is built
-- from the same facts the prompts give the LLM (facts.lua) and the KB's own
-- words, so it reads as a consultant's first draft: position, evidence, the next
-- moves and the agents that fit. Deterministic: the same answers always give the
-- same text.
local facts = require "facts"

local drafts = {}

local function join(lines)
  return table.concat(lines, "\n")
end

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

  add("**Position.** " .. f.area.title .. " is at " .. facts.position(s) .. ".")
  if s.total > 0 and s.answered < s.total then
    add(string.format("%d of %d questions are still unanswered, so this position may change.", s.total - s.answered, s.total))
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
    add(string.format("- No answer falls below the target level %s.", facts.number(s.target)))
  else
    for _, item in ipairs(f.gaps) do
      local line = string.format("- %s: %s (scores %s of 5).", item.question.label, item.text, facts.number(item.score))
      if item.next then
        line = line .. " Next step: " .. item.next .. "."
      end
      add(line)
    end
  end
  add("")

  if #f.kpis > 0 then
    add("**KPI position**")
    add("")
    for _, k in ipairs(f.kpis) do
      add("- " .. facts.kpi_line(k))
    end
    add("")
  end

  if #f.moves > 0 then
    if s.gap and s.gap <= 0 then
      add("**Beyond the target.** The area meets its target; the next level would take:")
    else
      add(string.format("**What reaching level %s takes** (from the knowledge base):", facts.number(s.target)))
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
    add(string.format("The assessment of %s has no scored answers yet; the findings below list what remains to be answered.", ctx.client))
    return join(out)
  end
  add(string.format("%s's order-to-cash process stands at **level %d (%s)** overall, with a score of %s against a target of %s.",
    ctx.client, o.level, o.level_name, facts.score(o.score), facts.number(o.target)))
  if o.completeness < 1 then
    add(string.format("The assessment is %d%% complete (%d of %d questions answered); unanswered questions are left out of the scores.",
      math.floor(o.completeness * 100 + 0.5), o.answered, o.total))
  end
  add("")
  local strongest = facts.strongest(ctx)
  if #strongest > 0 then
    local best = {}
    for i = 1, math.min(2, #strongest) do
      best[#best + 1] = string.format("%s (level %d, %s)", strongest[i].title, strongest[i].level, facts.score(strongest[i].score))
    end
    local lead = strongest[1].level >= 3 and "Strongest areas" or "Relatively strongest areas"
    add("**" .. lead .. ":** " .. table.concat(best, " and ") .. ".")
    add("")
  end
  local priorities = facts.priorities(ctx)
  if #priorities == 0 then
    add("**Gaps:** every assessed area meets its target level; the recommendations focus on the next level where it pays.")
  else
    local gaps = {}
    for i = 1, math.min(3, #priorities) do
      local s = priorities[i].score
      gaps[#gaps + 1] = string.format("%s (level %d against a target of %s)", s.title, s.level, facts.number(s.target))
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
      add(string.format("- %s %s: %s.", k.name, facts.with_unit(k.value, k.unit), k.band))
    end
    add("")
  end
  local unmeasured = {}
  for _, k in ipairs(ctx.scores.kpis) do
    if k.status == "hidden" then
      unmeasured[#unmeasured + 1] = k.name
    end
  end
  if #unmeasured > 0 then
    add("**Not measured today:** " .. table.concat(unmeasured, ", ") .. ". Measuring them is part of the first phase.")
    add("")
  end
  if #priorities > 0 then
    add("**Priorities.**")
    add("")
    for i = 1, math.min(3, #priorities) do
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

-- The agent worth recommending for an area: the first whose area practice is
-- at level 2 or more (below that, the practice comes first).
local function pick_agent(p)
  return p.agents[1]
end

function drafts.recommendations(ctx)
  local out = {}
  local function add(line)
    out[#out + 1] = line
  end
  local priorities = facts.priorities(ctx)
  if #priorities == 0 then
    add("Every assessed area meets its target. To keep improving:")
    add("")
    for _, a in ipairs(facts.strongest(ctx)) do
      if a.level and a.level < 5 then
        local f = facts.area(ctx, a.id)
        if f.moves[1] then
          add(string.format("- **%s** – towards level %d: %s", a.title, f.moves[1].level, f.moves[1].text))
        end
      end
    end
    return join(out)
  end
  for i, p in ipairs(priorities) do
    local s = p.score
    add(string.format("### %d. %s: from level %d to level %s", i, p.area.title, s.level, facts.number(s.target)))
    add("")
    local gap_names = {}
    for j = 1, math.min(3, #p.gaps) do
      gap_names[#gap_names + 1] = p.gaps[j].question.label
    end
    if #gap_names > 0 then
      add("- **Gap:** " .. table.concat(gap_names, ", ") .. string.format(" (area score %s, gap %s).", facts.score(s.score), facts.number(s.gap)))
    else
      add(string.format("- **Gap:** the area score is %s against a target of %s.", facts.score(s.score), facts.number(s.target)))
    end
    for _, m in ipairs(p.moves) do
      add(string.format("- **Action (level %d):** %s", m.level, m.text))
    end
    local agent = pick_agent(p)
    if agent then
      local ready = s.level >= 3 and "its prerequisites are close to what is in place" or "put its prerequisites in place first"
      add(string.format("- **Automation:** %s (`%s`) – %s Prerequisites: %s; %s.", agent.name, agent.id,
        agent.automates, table.concat(agent.prerequisites, "; "), ready))
    end
    local measures = {}
    for _, k in ipairs(p.kpis) do
      if k.status == "answered" and k.score and k.score < 5 then
        local q = questionnaire.question_by_id[k.id]
        local step = facts.next_step(q, k.value)
        measures[#measures + 1] = string.format("%s: %s", k.name,
          step or ("hold it in the best published band (" .. k.band .. ")"))
      elseif k.status == "hidden" then
        measures[#measures + 1] = string.format("%s: start measuring it", k.name)
      end
    end
    if #measures > 0 then
      add("- **Measure:** " .. table.concat(measures, "; ") .. ".")
    end
    add("")
  end
  return (join(out):gsub("%s+$", ""))
end

---------------------------------------------------------------------------
-- roadmap
---------------------------------------------------------------------------

-- Phase of a move: the first level up goes in 0-3 months, the second in 3-6,
-- anything further in 6-12. An agent is deployed once its area reaches level 3:
-- now if it is there, otherwise in the phase after the move to level 3.
local PHASES = { "0-3 months", "3-6 months", "6-12 months" }

-- What a phase says when no move falls in it.
local QUIET_PHASE = {
  "Confirm the target level of each area with its process owner and agree how each KPI is measured.",
  "Review the KPIs moved in the first phase against their targets and adjust the actions that lag.",
  "Re-assess the areas against their targets; raise the targets of areas that meet them.",
}

function drafts.roadmap(ctx)
  local phases = { {}, {}, {} }
  local priorities = facts.priorities(ctx)
  for _, p in ipairs(priorities) do
    local level = p.score.level or 1
    for _, m in ipairs(p.moves) do
      local phase = math.min(3, m.level - level)
      table.insert(phases[phase], string.format("%s – level %d: %s", p.area.title, m.level, m.text))
    end
    local agent = p.agents[1]
    if agent then
      local phase = level >= 3 and 1 or math.min(3, 3 - level + 1)
      table.insert(phases[phase], string.format("%s – deploy the %s (`%s`), with people reviewing its output at first.",
        p.area.title, agent.name, agent.id))
    end
  end
  for _, k in ipairs(ctx.scores.kpis) do
    if k.status == "hidden" then
      table.insert(phases[1], string.format("Start measuring %s monthly.", k.name))
    end
  end
  local out = {}
  for i, title in ipairs(PHASES) do
    out[#out + 1] = "### " .. title
    out[#out + 1] = ""
    if #phases[i] == 0 then
      out[#out + 1] = "- " .. QUIET_PHASE[i]
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
