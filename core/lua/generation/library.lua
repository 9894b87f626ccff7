-- The engine's report library, handed to a type's scripts as `lib`: report.lua
-- and every file it (or scoring.lua) requires start with `local lib = ...`.
-- One library per type and generation, bound to that type's questionnaire and
-- the knowledge base; every table in it is read-only. Each function a script may
-- call is documented in scripts/README.md ("The report library").
--
--   lib.questionnaire  the compiled questionnaire (read-only)
--   lib.kb             the knowledge base (read-only)
--   lib.chart          chart.radar { ... } (inline SVG)
--   lib.format         numbers, units, Markdown cells           (lib/format.lua)
--   lib.scoring        the standard roll-up; band_for, round      (lib/scoring.lua)
--   lib.facts          answers, areas and KPIs in words; briefs   (lib/facts.lua)
--   lib.checks         agents_known, required_phrases, missing_phase (lib/checks.lua)
--   lib.drafts(words)  the offline drafts, with the type's words  (lib/drafts.lua)
--   lib.generated      scorecard and appendix                    (lib/generated.lua)
local sandbox = GEN_MODULE("sandbox")
local chart = GEN_MODULE("chart")
local format = GEN_MODULE("lib/format")
local scoring = GEN_MODULE("lib/scoring")
local new_facts = GEN_MODULE("lib/facts")
local checks = GEN_MODULE("lib/checks")
local drafts = GEN_MODULE("lib/drafts")
local generated = GEN_MODULE("lib/generated")

local library = {}

-- questionnaire and kb are the read-only views the type's scripts see;
-- method() returns the type's scoring.method once scoring.lua is loaded.
function library.for_type(questionnaire, kb, method)
  local facts = new_facts(questionnaire, kb)
  local lib = {
    questionnaire = questionnaire,
    kb = kb,
    chart = chart,
    format = format,
    scoring = { standard = scoring.standard, band_for = scoring.band_for, round = scoring.round },
    facts = facts,
    checks = checks.new(kb),
    generated = generated.new(facts, questionnaire, method),
    -- A bad `words` table is reported at the script's line that passed it.
    drafts = function(words)
      local ok, result = pcall(drafts.new, facts, questionnaire, words)
      if not ok then
        error(result, 2)
      end
      return sandbox.readonly(result)
    end,
  }
  return sandbox.readonly(lib)
end

return library
