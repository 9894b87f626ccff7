-- The O2C report plan: which sections the report has, what each depends on, and
-- for each LLM section its prompt, token budget, offline draft and check.
--
--   section {
--     id, title,
--     kind = "llm" | "generated",
--     depends = { ids },            -- run after these; their text is in ctx.sections
--     max_tokens = N,               -- llm: the answer's length budget
--     prompt = function(ctx) return { system = "...", user = "..." } end,
--     draft = function(ctx) return "markdown" end,   -- the offline provider's text
--     check = function(text, ctx) return true end,   -- or false, "why"
--     render = function(ctx) return "markdown" end,  -- generated sections only
--   }
--
-- Sections are shown in the order written here; the host runs them as a graph,
-- so the per-area findings run side by side and the summary waits for them.
-- ctx: client, answers, notes, visible, scores, targets, sections, attachments.
-- To change what the LLM is asked, edit the texts in the prompt functions below;
-- to change the offline drafts' O2C wording and counts, edit words.lua.
--
-- `lib` is the engine's report library (scripts/README.md, "The report
-- library"): the facts and briefs the prompts are built from, the offline
-- drafts, the checks' pieces and the generated sections.
local lib = ...
local words = require "words"

local facts, checks = lib.facts, lib.checks
local drafts = lib.drafts(words)
local generated = lib.generated
local word_count = lib.format.word_count

---------------------------------------------------------------------------
-- the rules every LLM section follows
---------------------------------------------------------------------------

local function system_prompt(ctx)
  return table.concat({
    "You are a senior order-to-cash (O2C) consultant writing one section of a maturity assessment report for "
      .. ctx.client .. ".",
    "Write plain, direct business English in Markdown. Do not repeat the section title; start with the content. Use ### sub-headings or bold lead-ins where the section asks for them.",
    "Use only the facts given: the scores, the client's answers and notes, and the knowledge-base passages. Do not invent figures, benchmarks, sources or facts about the client.",
    "Quote a benchmark only with its source and year, as given. When a KPI has no public benchmark, say so.",
    "Scores run from 1 to 5; levels are 1 Initial, 2 Managed, 3 Defined, 4 Quantitatively managed, 5 Optimizing.",
    "Name an automation agent only if it appears in the catalogue given, by its exact catalogue name, for example: the Cash Matching Agent. Never write an agent's id or any other identifier, and never use the word \"Agent\" with a capital A otherwise.",
    "Write KPI and practice names as ordinary words inside a sentence (\"start measuring invoice accuracy\"), not as labels or code.",
  }, "\n")
end

local agents_known = checks.agents_known
local required_phrases = checks.required_phrases

-- "level 2": the summary states the overall level (none before any answer).
local function overall_level_phrases(ctx)
  local level = ctx.scores.overall.level
  return level and { "level " .. level } or {}
end

-- "level 2" for a scored area, else "target level 3": the findings state a level.
local function area_level_phrase(ctx, area_id)
  local s = facts.area_score(ctx, area_id)
  if s.level then return "level " .. s.level end
  return "target level " .. lib.format.number(s.target)
end

-- The title of the area with the largest weighted gap, which the
-- recommendations must address; none when every area meets its target.
local function largest_gap_phrase(ctx)
  local priorities = facts.priorities(ctx)
  return #priorities > 0 and { priorities[1].area.title } or {}
end

local ROADMAP_PHASES = words.phases

-- Evidence images the provider may send along with a prompt.
local function attachment_names(ctx)
  local names = {}
  for _, a in ipairs(ctx.attachments) do
    names[#names + 1] = a.name
  end
  return names
end

---------------------------------------------------------------------------
-- sections, in the order they appear in the report
---------------------------------------------------------------------------

local findings_ids = {}
for _, area in ipairs(lib.questionnaire.areas) do
  findings_ids[#findings_ids + 1] = "findings_" .. area.id
end

-- The consultant's to-do: what the client has not answered yet. Shown in the
-- app and in `o2c run`, left out of the client's copy (the id says so).
section {
  id = "open_questions",
  title = "Open questions",
  kind = "generated",
  render = generated.open_questions,
}

section {
  id = "executive_summary",
  title = "Executive summary",
  kind = "llm",
  depends = findings_ids,
  max_tokens = 900,
  prompt = function(ctx)
    local parts = {
      "Write the executive summary of the O2C maturity assessment for " .. ctx.client .. ", 200 to 350 words.",
      "Open with the overall position, stated as \"level N (name)\" with the score and target. Then the two strongest areas, the largest gaps to target, the KPI position against benchmarks, and the three priorities.",
      required_phrases(overall_level_phrases(ctx)),
      "",
      "Scores:",
      facts.scores_brief(ctx),
      "",
      "Findings per area, as written by the team:",
    }
    for _, id in ipairs(findings_ids) do
      parts[#parts + 1] = "\n---\n" .. (ctx.sections[id] or "(missing)")
    end
    return { system = system_prompt(ctx), user = table.concat(parts, "\n") }
  end,
  draft = drafts.executive_summary,
  check = function(text, ctx)
    local phrase = overall_level_phrases(ctx)[1]
    if phrase and not text:lower():find(phrase, 1, true) then
      return false, "the summary must state the overall position as \"" .. phrase .. "\""
    end
    if word_count(text) > 600 then
      return false, "the summary is longer than 600 words"
    end
    return agents_known(text)
  end,
}

section {
  id = "scorecard",
  title = "Scorecard",
  kind = "generated",
  render = generated.scorecard,
}

for _, area in ipairs(lib.questionnaire.areas) do
  section {
    id = "findings_" .. area.id,
    title = "Findings: " .. area.title,
    kind = "llm",
    max_tokens = 1200,
    prompt = function(ctx)
      return {
        system = system_prompt(ctx),
        user = table.concat({
          "Write the findings for the area \"" .. area.title .. "\", 250 to 450 words, with these bold lead-ins in order: "
            .. "**Position.** (level, score, target and gap), **Strengths**, **Gaps** (each with the next step), "
            .. "**KPI position** (only if the area has KPIs: value, band, benchmark with source and year), and "
            .. "**What reaching the target takes** (from the knowledge-base passage).",
          "Ground every statement in the facts below. Where answers are missing, say what evidence is needed.",
          required_phrases({ area_level_phrase(ctx, area.id) }),
          "",
          facts.area_brief(ctx, area.id),
        }, "\n"),
        attachments = attachment_names(ctx),
      }
    end,
    draft = function(ctx)
      return drafts.findings(ctx, area.id)
    end,
    check = function(text, ctx)
      if word_count(text) < 40 then
        return false, "the findings are too short (under 40 words)"
      end
      if not text:lower():find("level", 1, true) then
        return false, "the findings must state the area's level"
      end
      return agents_known(text)
    end,
  }
end

section {
  id = "recommendations",
  title = "Recommendations",
  kind = "llm",
  depends = findings_ids,
  max_tokens = 1800,
  prompt = function(ctx)
    local parts = {
      "Write the recommendations: one per area that is short of its target, largest weighted gap first (at most 6).",
      "For each: a ### heading \"N. Area: from level X to level Y\", then bullets **Gap** (the answers behind it), **Action** (the knowledge base's moves for the next levels), **Automation** (one agent from the catalogue that fits, with its prerequisites – only where one fits) and **Measure** (the KPI to watch and the benchmark band to reach).",
      required_phrases(largest_gap_phrase(ctx)),
      "",
      "Scores:",
      facts.scores_brief(ctx),
      "",
      "Agent catalogue (the only agents you may name):",
      facts.catalogue(),
      "",
      "Findings per area:",
    }
    for _, id in ipairs(findings_ids) do
      parts[#parts + 1] = "\n---\n" .. (ctx.sections[id] or "(missing)")
    end
    return { system = system_prompt(ctx), user = table.concat(parts, "\n") }
  end,
  draft = drafts.recommendations,
  check = function(text, ctx)
    local title = largest_gap_phrase(ctx)[1]
    if title and not text:find(title, 1, true) then
      return false, "the recommendations must address the largest gap: " .. title
    end
    return agents_known(text)
  end,
}

section {
  id = "roadmap",
  title = "Roadmap",
  kind = "llm",
  depends = { "recommendations" },
  max_tokens = 1200,
  prompt = function(ctx)
    return {
      system = system_prompt(ctx),
      user = table.concat({
        "Turn the recommendations into a phased roadmap with exactly three ### sub-headings: \"0-3 months\", \"3-6 months\", \"6-12 months\".",
        "0-3 months: foundations and quick wins (policy, ownership, standard process, measuring what is not measured). 3-6 months: automation whose prerequisites are then in place. 6-12 months: the moves that reach the target levels.",
        "Bullets only; each bullet names its area. Keep agents exactly as the recommendations name them.",
        required_phrases(ROADMAP_PHASES),
        "",
        "Recommendations:",
        ctx.sections.recommendations or "(missing)",
      }, "\n"),
    }
  end,
  draft = drafts.roadmap,
  check = function(text, ctx)
    local missing = checks.missing_phase(text, ROADMAP_PHASES) -- "0–3 months" counts too
    if missing then
      return false, "the roadmap needs the phase \"" .. missing .. "\""
    end
    return agents_known(text)
  end,
}

section {
  id = "appendix",
  title = "Appendix: method and sources",
  kind = "generated",
  render = generated.appendix,
}
