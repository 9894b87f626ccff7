-- KPI answers become scores through the bands of kb/benchmarks.lua; edges are
-- the published figures, and each edge belongs to the band the source puts it in.
local scoring = require "scoring"

describe("KPI bands", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)
  local function score_of(id, value)
    return scoring.question_score(o2c:question(id), value)
  end

  it("puts DSO 30 in the top band and 30.1 below it (APQC: top ≤ 30)", function()
    expect(score_of("co_dso", 30)).to_equal(5)
    expect(score_of("co_dso", 30.1)).to_equal(4)
  end)

  it("puts DSO 36 at the median band and 48 in the bottom band", function()
    expect(score_of("co_dso", 36)).to_equal(4)
    expect(score_of("co_dso", 36.5)).to_equal(3)
    expect(score_of("co_dso", 47.9)).to_equal(3)
    expect(score_of("co_dso", 48)).to_equal(2)
  end)

  it("scores CEI at the CRF median 86.5 and at 80", function()
    expect(score_of("co_cei", 86.5)).to_equal(4)
    expect(score_of("co_cei", 86.4)).to_equal(3)
    expect(score_of("co_cei", 80)).to_equal(3)
    expect(score_of("co_cei", 79.9)).to_equal(2)
  end)

  it("scores dispute days at APQC's 4 and 30", function()
    expect(score_of("di_days", 4)).to_equal(5)
    expect(score_of("di_days", 4.5)).to_equal(3)
    expect(score_of("di_days", 30)).to_equal(2)
  end)

  it("scores cost per invoice at $0.71, $3.17 and $11.50", function()
    expect(score_of("bi_cost", 0.71)).to_equal(5)
    expect(score_of("bi_cost", 3.17)).to_equal(4)
    expect(score_of("bi_cost", 11.49)).to_equal(3)
    expect(score_of("bi_cost", 11.5)).to_equal(2)
  end)

  it("needs more than 60% auto-match for the upper band", function()
    expect(score_of("ca_auto_match", 60)).to_equal(2)
    expect(score_of("ca_auto_match", 60.5)).to_equal(4)
  end)

  it("reports KPIs without a public benchmark but does not score them", function()
    local s = o2c:score({ bi_accuracy_measured = "yes", bi_accuracy = 97 })
    expect(s.questions.bi_accuracy).to_be_nil()
    local kpi
    for _, k in ipairs(s.kpis) do
      if k.id == "bi_accuracy" then
        kpi = k
      end
    end
    expect(kpi.status).to_equal("answered")
    expect(kpi.band).to_equal("no public benchmark")
    expect(kpi.benchmark_text).to_contain("No public benchmark")
  end)

  it("gives every scored KPI its band, benchmark text and source", function()
    local s = o2c:score({ co_dso_tracking = "monthly", co_dso = 42 })
    local kpi
    for _, k in ipairs(s.kpis) do
      if k.id == "co_dso" then
        kpi = k
      end
    end
    expect(kpi.value).to_equal(42)
    expect(kpi.unit).to_equal("days")
    expect(kpi.score).to_equal(3)
    expect(kpi.band).to_contain("worse than the median")
    expect(kpi.benchmark_text).to_contain("APQC")
    expect(kpi.source).to_contain("CFO.com (2018)")
  end)
end)
