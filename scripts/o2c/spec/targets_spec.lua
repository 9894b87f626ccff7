-- Targets per area: the script's default, one level for all areas, or a map.
describe("targets and gaps", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)
  local answers = { md_ownership = 2, cr_policy = 4, co_dso_tracking = "monthly", co_strategy = 3 }
  local function area(scores, id)
    for _, a in ipairs(scores.areas) do
      if a.id == id then
        return a
      end
    end
  end

  it("defaults every area to target level 3", function()
    local s = o2c:score(answers)
    expect(area(s, "master_data").target).to_equal(3)
    expect(area(s, "master_data").gap).to_equal(1)
    expect(area(s, "credit").gap).to_equal(-1)   -- ahead of target
  end)

  it("applies one number to every area", function()
    local s = o2c:score(answers, 5)
    expect(area(s, "credit").target).to_equal(5)
    expect(area(s, "credit").gap).to_equal(1)
  end)

  it("overrides only the areas named in a map", function()
    local s = o2c:score(answers, { collections = 4 })
    expect(area(s, "collections").target).to_equal(4)
    expect(area(s, "collections").gap).to_equal(1)
    expect(area(s, "credit").target).to_equal(3)
  end)

  it("weights the overall target over every area, answered or not", function()
    -- 8 areas: weights 1, 1, 1, 2 (billing), 1, 2 (collections), 1, 1; all target 3 but collections 5
    local s = o2c:score(answers, { collections = 5 })
    expect(s.overall.target).to_equal(3.4)   -- (8 × 3 + 2 × 5) ÷ 10
  end)

  it("rejects unknown areas and levels outside 1-5", function()
    local ok, errors = o2c:validate_targets({ colections = 4, credit = 6 })
    expect(ok).to_be_nil()
    expect(errors[1].field).to_equal("targets.colections")
    expect(errors[1].message).to_contain("unknown area id")
    expect(errors[2].field).to_equal("targets.credit")
    expect(errors[2].message).to_contain("whole level from 1 to 5")
    expect(o2c:validate_targets(4)).to_be(true)
  end)
end)
