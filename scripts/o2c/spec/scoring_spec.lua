-- The roll-up, checked against examples computed by hand (the method is at the
-- top of scoring.lua; the billing example below is the one printed there).
local scoring = require "scoring"

describe("the roll-up", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  local function area(scores, id)
    for _, a in ipairs(scores.areas) do
      if a.id == id then
        return a
      end
    end
  end

  -- the worked example of scoring.method
  local billing = {
    bi_timing = "same_day",                     -- 3, question weight 2
    bi_process = 3,                             -- 3
    bi_einvoicing = "pdf",                      -- 2
    bi_controls = { "price", "po", "tax" },     -- 1 + 4 × 3/5 = 3.4
    bi_accuracy_measured = "credit_notes",      -- 2; bi_accuracy stays hidden
    bi_cost = 4.10,                             -- band "worse than the median" = 3
  }

  it("scores the billing example of the method: 19.4 ÷ 7 = 2.77", function()
    local a = area(o2c:score(billing), "billing")
    expect(a.score).to_equal(2.77)
    expect(a.level).to_equal(2)
    expect(a.level_name).to_equal("Managed")
    expect(a.target).to_equal(3)
    expect(a.gap).to_equal(0.23)
  end)

  it("drops 'not applicable' from the denominator: 16.4 ÷ 6 = 2.73", function()
    local answers = {}
    for k, v in pairs(billing) do
      answers[k] = v
    end
    answers.bi_cost = "na"
    local a = area(o2c:score(answers), "billing")
    expect(a.score).to_equal(2.73)
    expect(a.answered).to_equal(6)  -- "na" counts as answered
    expect(a.scored).to_equal(5)
    expect(a.completeness).to_equal(1)
  end)

  it("scores a multiple choice as 1 + 4 × ticked points ÷ all points", function()
    local q = o2c:question("ca_remittance")   -- bank files 2 points, three others 1 each
    expect(scoring.question_score(q, { "bank_files" })).to_be_near(2.6)
    expect(scoring.question_score(q, {})).to_equal(1)
    expect(scoring.question_score(q, { "bank_files", "email", "portals", "edi" })).to_equal(5)
  end)

  it("weights areas in the overall score: (1 × 2.75 + 2 × 1.75) ÷ 3 = 2.08", function()
    local s = o2c:score({
      md_ownership = 4, md_onboarding = 2, md_duplicates = "monthly",         -- 4, 2, 2
      md_fields = { "legal_tax", "terms", "credit" },                         -- 1 + 4 × 3/6 = 3
      co_dso_tracking = "not_tracked", co_strategy = 2, co_dunning = "standard", co_tools = {}, -- 1, 2, 3, 1
    })
    expect(area(s, "master_data").score).to_equal(2.75)
    expect(area(s, "collections").score).to_equal(1.75)
    expect(s.overall.score).to_equal(2.08)
    expect(s.overall.level).to_equal(2)
    expect(s.overall.target).to_equal(3)
    expect(s.overall.gap).to_equal(0.92)
  end)

  it("leaves areas without answers out of the overall score", function()
    local s = o2c:score({ md_ownership = 4 })
    expect(s.overall.score).to_equal(4)
    expect(area(s, "credit").score).to_be_nil()
    expect(area(s, "credit").level_name).to_equal("Not assessed")
  end)

  it("takes the level from the whole part of the rounded score", function()
    expect(scoring.level(2.99)).to_equal(2)
    expect(scoring.level(3.0)).to_equal(3)
    expect(scoring.round(2.995)).to_equal(3)
    expect(scoring.level(scoring.round(2.995))).to_equal(3)
    expect(scoring.level_name(4)).to_equal("Quantitatively managed")
  end)

  it("reports an empty answer set as not assessed, with nothing missing scored", function()
    local s = o2c:score({})
    expect(s.overall.score).to_be_nil()
    expect(s.overall.level_name).to_equal("Not assessed")
    expect(s.overall.answered).to_equal(0)
    expect(s.overall.completeness).to_equal(0)
    expect(s.missing_required).to_contain("md_ownership")
  end)

  it("does not score free-text evidence or count it in completeness", function()
    local s = o2c:score({ md_ownership = 3, md_evidence = "a note" })
    local a = area(s, "master_data")
    expect(a.total).to_equal(4)    -- five questions, one of them text
    expect(a.answered).to_equal(1)
    expect(s.questions.md_evidence).to_be_nil()
  end)

  it("accepts answers wrapped with a note", function()
    local plain = o2c:score({ md_ownership = 3 })
    local wrapped = o2c:score({ md_ownership = { value = 3, note = "seen the change log" } })
    expect(wrapped).to_equal(plain)
  end)
end)
