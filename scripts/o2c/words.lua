-- The O2C wording and counts of the offline drafts (the text o2c writes when
-- no LLM is used). report.lua hands this table to the engine's drafts:
-- `lib.drafts(words)`; scripts/README.md lists every key and its default.
return {
  -- "<client>'s order-to-cash process stands at level N (name) overall ..."
  process = "order-to-cash process",

  -- The roadmap's phases, in order; the roadmap section's check requires each.
  phases = { "0-3 months", "3-6 months", "6-12 months" },

  -- What a roadmap phase says when no move falls in it, one per phase.
  quiet_phase = {
    "Confirm the target level of each area with its process owner and agree how each KPI is measured.",
    "Review the KPIs moved in the first phase against their targets and adjust the actions that lag.",
    "Re-assess the areas against their targets; raise the targets of areas that meet them.",
  },

  strongest_shown = 2,     -- executive summary: the strongest areas it names
  strong_level = 3,        -- ... called "Strongest areas" from this level, else "Relatively strongest areas"
  gaps_shown = 3,          -- executive summary: the largest gaps it names
  priorities_shown = 3,    -- executive summary: its numbered priorities
  gap_names_shown = 3,     -- recommendations: the gap questions named per area
  agent_ready_level = 3,   -- an area from this level is ready for its agent (deployed in the first phase)
}
