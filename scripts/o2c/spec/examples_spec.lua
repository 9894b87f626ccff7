-- The three example companies in examples/: they must validate, rank in the
-- order their names say, and produce a complete offline report.
describe("example companies", function()
  local o2c
  local scores = {}
  before_each(function()
    o2c = assessment.default()
    for _, name in ipairs({ "laggard", "median", "leader" }) do
      local e = assessment.example(name)
      scores[name] = o2c:score(e.answers, e.targets)
    end
  end)

  it("are valid answer sets with valid targets", function()
    for _, name in ipairs({ "laggard", "median", "leader" }) do
      local e = assessment.example(name)
      expect(o2c:validate_answers(e.answers)).to_be(true)
      expect(o2c:validate_targets(e.targets)).to_be(true)
    end
  end)

  it("rank laggard < median < leader overall", function()
    expect(scores.laggard.overall.score).to_be_less_than(scores.median.overall.score)
    expect(scores.median.overall.score).to_be_less_than(scores.leader.overall.score)
  end)

  it("land on plausible levels: laggard 1, median 3, leader 4 or more", function()
    expect(scores.laggard.overall.level).to_equal(1)
    expect(scores.median.overall.level).to_equal(3)
    expect(scores.leader.overall.level).to_be_at_least(4)
  end)

  it("rank laggard < median < leader in every area", function()
    for i, area in ipairs(scores.median.areas) do
      expect(scores.laggard.areas[i].score).to_be_less_than(area.score)
      expect(area.score).to_be_less_than(scores.leader.areas[i].score)
    end
  end)

  it("are complete: every visible required question is answered", function()
    for _, name in ipairs({ "laggard", "median", "leader" }) do
      expect(scores[name].missing_required).to_equal({})
      expect(scores[name].overall.completeness).to_equal(1)
    end
  end)
end)
