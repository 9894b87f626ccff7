-- Two kinds of validation: answers sent by the UI or API (field + message),
-- and the assessment's own files, checked at load with file:line.

-- The line on which `needle` first appears in `text`.
local function line_of(text, needle)
  local at = assert(text:find(needle, 1, true), "not found: " .. needle)
  return select(2, text:sub(1, at):gsub("\n", "\n")) + 1
end

local function lines_in(text)
  return select(2, text:gsub("\n", "\n"))
end

describe("answer validation", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  local function first_error(answers)
    local ok, errors = o2c:validate_answers(answers)
    expect(ok).to_be_nil()
    return errors[1]
  end

  it("accepts a complete example", function()
    expect(o2c:validate_answers(assessment.example("median").answers)).to_be(true)
  end)

  it("names an unknown question id", function()
    local e = first_error({ dso = 40 })
    expect(e.field).to_equal("answers.dso")
    expect(e.message).to_contain("unknown question id")
  end)

  it("checks the range of a maturity scale", function()
    local e = first_error({ md_ownership = 7 })
    expect(e.field).to_equal("answers.md_ownership")
    expect(e.message).to_equal("expected a whole number from 1 to 5 (got 7)")
    expect(first_error({ md_ownership = 2.5 }).message).to_contain("whole number")
  end)

  it("checks choices against the list", function()
    local e = first_error({ cr_scoring = "psychic" })
    expect(e.message).to_contain('expected one of "judgement", "bureau"')
    local dup = first_error({ md_fields = { "terms", "terms" } })
    expect(dup.field).to_equal("answers.md_fields[2]")
    expect(dup.message).to_contain("listed twice")
  end)

  it("checks KPI ranges and types", function()
    expect(first_error({ co_dso = 400 }).message).to_equal("400 is outside the valid range 0 to 365 days")
    expect(first_error({ co_dso = "forty" }).message).to_contain("expected a number of days")
  end)

  it("allows 'na' only where the question offers it", function()
    expect(first_error({ md_ownership = "na" }).message).to_contain('"not applicable" is not offered')
    expect(o2c:validate_answers({ cr_bad_debt = "na" })).to_be(true)
  end)

  it("checks answers wrapped with a note", function()
    expect(o2c:validate_answers({ bi_timing = { value = "same_day", note = "seen the billing log" } })).to_be(true)
    local e = first_error({ bi_timing = { value = "same_day", notes = "typo" } })
    expect(e.message).to_contain("only 'value' and 'note'")
  end)

  it("lists every problem, sorted by field", function()
    local _, errors = o2c:validate_answers({ zz = 1, aa = 2, md_ownership = 9 })
    expect(#errors).to_equal(3)
    expect(errors[1].field).to_equal("answers.aa")
    expect(errors[2].field).to_equal("answers.md_ownership")
    expect(errors[3].field).to_equal("answers.zz")
  end)
end)

describe("load-time validation names file:line", function()
  local questionnaire_text = assessment.source("questionnaire.lua")

  it("reports a weight that is not a number at the question's line", function()
    local line = line_of(questionnaire_text, 'id = "cr_policy"') - 1
    local edited = questionnaire_text:gsub('id = "cr_policy",', 'id = "cr_policy",\n  weight = "3x",', 1)
    local o2c, errors, text = assessment.load({ ["questionnaire.lua"] = edited })
    expect(o2c).to_be_nil()
    expect(#errors).to_equal(1)
    expect(text).to_equal(string.format(
      'scripts/o2c/questionnaire.lua:%d: question "cr_policy": weight must be a positive number (got "3x")', line))
  end)

  it("names scoring.lua and the line of a syntax error appended to it", function()
    local _, errors = assessment.load({ ["scoring.lua"] = function(text) return text .. "local x = = 1\n" end })
    local n = lines_in(assessment.source("scoring.lua")) + 1
    expect(errors[1].file).to_equal("scripts/o2c/scoring.lua")
    expect(errors[1].line).to_equal(n)
    expect(errors[1].message).to_match("expected near 'local'")
  end)

  it("rejects an unknown question type, a short level list and a reused id", function()
    local extra = table.concat({
      'question { id = "x_type", area = "credit", type = "number", text = "?" }',
      'question { id = "x_levels", area = "credit", type = "scale", text = "?", levels = { "a", "b", "c", "d" } }',
      'question { id = "cr_policy", area = "credit", type = "scale", text = "?", levels = { "1", "2", "3", "4", "5" } }',
    }, "\n")
    local first = lines_in(questionnaire_text) + 1
    local _, _, text = assessment.load({ ["questionnaire.lua"] = questionnaire_text .. extra .. "\n" })
    expect(text).to_contain(string.format(
      'questionnaire.lua:%d: question "x_type": type must be one of scale, single, multi, kpi, text (got "number")', first))
    expect(text).to_contain(string.format("questionnaire.lua:%d: question \"x_levels\": levels must list 5 descriptors", first + 1))
    expect(text).to_contain(string.format("questionnaire.lua:%d: question id 'cr_policy' is already used at line %d",
      first + 2, line_of(questionnaire_text, 'id = "cr_policy"') - 1))
  end)

  it("rejects a visible_if that reads a later question", function()
    local extra = 'question { id = "x_early", area = "reporting", type = "scale", text = "?", '
      .. 'levels = { "1", "2", "3", "4", "5" }, visible_if = function(a) return a.x_late == 1 end }\n'
      .. 'question { id = "x_late", area = "reporting", type = "scale", text = "?", levels = { "1", "2", "3", "4", "5" } }\n'
    local line = lines_in(questionnaire_text) + 1
    local _, _, text = assessment.load({ ["questionnaire.lua"] = questionnaire_text .. extra })
    expect(text).to_contain(string.format("questionnaire.lua:%d: question 'x_early': visible_if reads 'x_late', which comes later", line))
  end)

  it("rejects a visible_if that fails on an empty answer set", function()
    local extra = 'question { id = "x_bad", area = "reporting", type = "kpi", text = "?", benchmark = "dso", min = 0, max = 1,\n'
      .. '  visible_if = function(a) return a.co_dso > 40 end }\n'
    local line = lines_in(questionnaire_text) + 2
    local _, _, text = assessment.load({ ["questionnaire.lua"] = questionnaire_text .. extra })
    expect(text).to_contain(string.format("questionnaire.lua:%d: question 'x_bad': visible_if fails on an empty answer set", line))
  end)

  it("checks references into the KB: documents, agents and benchmarks", function()
    local edited = questionnaire_text
      :gsub('kb = "credit"', 'kb = "credit-management"', 1)
      :gsub('agents = { "dunning%-agent" }', 'agents = { "magic-agent" }', 1)
      :gsub('benchmark = "dso"', 'benchmark = "days_sales"', 1)
    local _, _, text = assessment.load({ ["questionnaire.lua"] = edited })
    expect(text).to_contain('area "credit": kb "credit-management" is not a KB document id')
    expect(text).to_contain('question "co_dunning": agent "magic-agent" is not in the KB catalogue')
    expect(text).to_contain('question "co_dso": benchmark must be a benchmark id from kb/ (got "days_sales"')
  end)

  it("refuses require outside the type's folder, at the line of the require", function()
    local report_text = assessment.source("report.lua")
    local line = lines_in(report_text) + 1
    local _, errors = assessment.load({ ["report.lua"] = report_text .. 'local x = require "../secrets"\n' })
    expect(errors[1].file).to_equal("scripts/o2c/report.lua")
    expect(errors[1].line).to_equal(line)
    expect(errors[1].message).to_contain("only files inside scripts/o2c/ can be required")
  end)

  it("rejects report sections that depend on an unknown section or on each other", function()
    local report_text = assessment.source("report.lua")
    local line = lines_in(report_text) + 1
    local extra = 'section { id = "a", title = "A", kind = "generated", depends = { "b" }, render = function() return "a" end }\n'
      .. 'section { id = "b", title = "B", kind = "generated", depends = { "a", "nope" }, render = function() return "b" end }\n'
    local _, _, text = assessment.load({ ["report.lua"] = report_text .. extra })
    expect(text).to_contain(string.format("report.lua:%d: section 'b' depends on \"nope\", which is not a section id", line + 1))
    expect(text).to_contain("sections depend on each other in a cycle: a -> b -> a")
  end)

  it("checks KB front matter strictly", function()
    local doc = assessment.source("kb/areas/credit.md")
    local _, _, text = assessment.load({ ["kb/areas/credit.md"] = doc:gsub("tags:", "tag:", 1) })
    expect(text).to_contain("kb/areas/credit.md:5: unknown front matter key 'tag' (known keys: area, id, tags, title)")
  end)

  it("checks that benchmark bands run from best to worst", function()
    local text = assessment.source("kb/benchmarks.lua")
    local line = line_of(text, "benchmark {\n  id = \"dso\"")
    local edited = text:gsub("{ at_most = 36, score = 4", "{ at_most = 26, score = 4", 1)
    local _, _, errors = assessment.load({ ["kb/benchmarks.lua"] = edited })
    expect(errors).to_contain(string.format("kb/benchmarks.lua:%d: benchmark 'dso', band 2: bounds must run from the best band to the worst (26 after 30)", line))
  end)
end)
