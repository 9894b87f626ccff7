-- The mini report: LLM findings over both areas, an LLM summary that depends
-- on them, and a generated scorecard.
local lib = ...
local words = require "words"
local scoring = require "scoring"

local function system(ctx)
  return "You write one section of an assessment report for " .. ctx.client
    .. ". Name only agents from the catalogue."
end

-- true, or false and why: no agent outside kb/agents.lua.
local agents_known = lib.checks.agents_known

section {
  id = "findings",
  title = "Findings",
  kind = "llm",
  max_tokens = 600,
  prompt = function(ctx)
    local parts = { "Write the findings per area." }
    for _, area in ipairs(lib.questionnaire.areas) do
      parts[#parts + 1] = area.title .. ":\n" .. lib.kb.doc(area.kb).body
    end
    return { system = system(ctx), user = table.concat(parts, "\n\n") }
  end,
  draft = function(ctx)
    local out = {}
    for _, r in ipairs(ctx.scores.areas) do
      local agents = words.agents(r.id)
      out[#out + 1] = string.format("%s: level %s, score %s, target %d. %s", r.title, r.level or "-",
        words.score(r.score), r.target, agents ~= "" and ("Consider " .. agents .. ".") or "")
    end
    return table.concat(out, "\n")
  end,
  check = function(text)
    if not text:lower():find("level", 1, true) then
      return false, "the findings must state the levels"
    end
    return agents_known(text)
  end,
}

section {
  id = "summary",
  title = "Summary",
  kind = "llm",
  depends = { "findings" },
  max_tokens = 400,
  prompt = function(ctx)
    return { system = system(ctx), user = "Summarise in 100 words:\n" .. (ctx.sections.findings or "") }
  end,
  draft = function(ctx)
    local o = ctx.scores.overall
    return string.format("Overall level %s (%s).", o.level or "-", scoring.levels[o.level or 1].name)
  end,
  check = function(text, ctx)
    local level = ctx.scores.overall.level
    if level and not text:lower():find("level " .. level, 1, true) then
      return false, "the summary must state level " .. level
    end
    if words.count(text) > 150 then
      return false, "longer than 150 words"
    end
    return agents_known(text)
  end,
}

section {
  id = "scorecard",
  title = "Scorecard",
  kind = "generated",
  render = function(ctx)
    local axes, scores, targets = {}, {}, {}
    for i, a in ipairs(ctx.scores.areas) do
      axes[i], scores[i], targets[i] = a.title, a.score or 0, a.target
    end
    return lib.chart.radar {
      title = "Score against target",
      axes = axes,
      max = 5,
      series = { { name = "Target", values = targets, dashed = true }, { name = "Score", values = scores, fill = true } },
    }
  end,
}
