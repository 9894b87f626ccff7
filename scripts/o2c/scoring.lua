-- How O2C answers become scores.
--
-- The method below is the whole roll-up, in the words the report's appendix
-- prints. The engine's standard roll-up (lib.scoring.standard, see
-- scripts/README.md) does exactly this, step by step, with the levels and the
-- default target set here. If you change the method text, or replace a step
-- (`function scoring.question_score(q, value) ... end` before the return), keep
-- the two in agreement and update spec/scoring_spec.lua's hand-computed examples.
local lib = ...

local scoring = lib.scoring.standard {
method = [[
**1. Each answer becomes a question score from 1 to 5.**

- *Maturity scale:* the level chosen (1-5) is the score.
- *Single choice:* the value written next to the chosen answer in the questionnaire (1-5).
- *Multiple choice:* 1 + 4 × (points of the ticked answers ÷ points of all answers). Nothing ticked scores 1; everything ticked scores 5.
- *KPI:* the number is placed in the benchmark bands of the knowledge base (their sources are listed below); the band's score is the question score. A KPI with no public benchmark is reported, not scored.
- *Free text:* never scored.

"Not applicable", unanswered and hidden (conditional) questions get no score. They leave the average: they are not counted as zero.

**2. Area score** = Σ (question weight × question score) ÷ Σ (question weight), over the area's questions that have a score, rounded to 2 decimals.

**3. Overall score** = Σ (area weight × area score) ÷ Σ (area weight), over the areas that have a score, rounded to 2 decimals.

**4. Level** = the whole part of the rounded score (2.99 is level 2, 3.00 is level 3): 1 Initial, 2 Managed, 3 Defined, 4 Quantitatively managed, 5 Optimizing.

**5. Target and gap.** Every area has a target level (3 unless the questionnaire or the assessment sets another). Gap = target − score: positive means short of the target, negative means ahead of it. The overall target is the client's ambition: the weighted average of the targets of all areas (area weights, as for the overall score), answered or not, so it does not move as answers arrive.

**6. Completeness** = answered ÷ asked, over the visible questions of an area that take a value (free-text notes are not counted). "Not applicable" counts as answered.

*Worked example (billing, weight 2).* Invoice timing "the same day, with manual steps" = 3 (question weight 2); invoice creation level 3 (weight 1); e-invoicing "PDF by e-mail" = 2 (weight 1); 3 of 5 pre-send checks ticked = 1 + 4 × 3/5 = 3.4 (weight 1); accuracy measured "only through credit notes" = 2 (weight 1), so the accuracy KPI stays hidden; cost per invoice $4.10 falls in the band "worse than the median" = 3 (weight 1). Area score = (2×3 + 3 + 2 + 3.4 + 2 + 3) ÷ (2+1+1+1+1+1) = 19.4 ÷ 7 = 2.77, level 2 (Managed). With a target of 3 the gap is 0.23. Had cost per invoice been "not applicable", the score would be 16.4 ÷ 6 = 2.73.
]],

-- The five maturity levels (CMMI, the common reference; see kb/guides/maturity-levels.md).
levels = {
  { name = "Initial", description = "Ad hoc and reactive; results depend on individuals." },
  { name = "Managed", description = "Planned and repeatable within a team, but not across the organisation." },
  { name = "Defined", description = "One documented standard way of working across the organisation." },
  { name = "Quantitatively managed", description = "Measured against targets and managed with data." },
  { name = "Optimizing", description = "Continuous improvement and automation remove the causes of errors." },
},

-- The target level of an area unless its `area { target = ... }` or the assessment sets one.
default_target = 3,
}

return scoring
