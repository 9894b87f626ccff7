-- Conditional questions: visible_if sees the answers so far; hidden questions
-- leave the score and the completeness count even when an answer is stored.
describe("conditional questions", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  it("hides the DSO and CEI questions while DSO is not measured", function()
    local visible = o2c:visible({ co_dso_tracking = "not_tracked" })
    expect(visible).never.to_contain("co_dso")
    expect(visible).never.to_contain("co_cei")
    expect(o2c:visible({ co_dso_tracking = "monthly" })).to_contain("co_dso")
  end)

  it("flags conditional questions in the questionnaire", function()
    local flags = {}
    for _, q in ipairs(o2c:questionnaire().questions) do
      flags[q.id] = q.conditional
    end
    expect(flags.co_dso).to_be(true)
    expect(flags.co_dso_tracking).to_be(false)
  end)

  it("ignores a stored answer to a hidden question", function()
    local base = { co_dso_tracking = "not_tracked", co_strategy = 2, co_dunning = "standard", co_tools = {} }
    local with_hidden = { co_dso_tracking = "not_tracked", co_strategy = 2, co_dunning = "standard", co_tools = {},
      co_dso = 25 }
    local a = o2c:score(base).areas[6]
    local b = o2c:score(with_hidden).areas[6]
    expect(a.id).to_equal("collections")
    expect(b.score).to_equal(a.score)          -- (1 + 2 + 3 + 1) ÷ 4 = 1.75
    expect(b.score).to_equal(1.75)
    expect(b.total).to_equal(4)                -- hidden questions are not asked
    expect(o2c:score(with_hidden).hidden).to_contain("co_dso")
  end)

  it("counts a shown KPI with its weight: (3 + 2 × 5 + 2 + 3 + 1) ÷ 6 = 3.17", function()
    local s = o2c:score({ co_dso_tracking = "monthly", co_dso = 25, co_strategy = 2, co_dunning = "standard", co_tools = {} })
    local c = s.areas[6]
    expect(c.score).to_equal(3.17)
    expect(c.total).to_equal(6)
    expect(c.answered).to_equal(5)
    expect(c.completeness).to_equal(0.83)
    expect(s.missing_required).to_contain("co_cei")
  end)

  it("hides a question whose condition depends on a hidden one", function()
    -- di_root_cause needs disputes logged in a system
    expect(o2c:visible({ di_logging = "spreadsheet" })).never.to_contain("di_root_cause")
    expect(o2c:visible({ di_logging = "system_codes" })).to_contain("di_root_cause")
    expect(o2c:visible({ di_logging = "not_logged" })).never.to_contain("di_days")
  end)
end)
