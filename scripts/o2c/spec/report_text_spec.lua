-- The report's text as the client reads it, for the three examples, an empty
-- assessment and a half-answered one: "not measured" only when the client
-- said so, the unanswered questions in the consultant's open questions, a
-- target that stays put as answers arrive, no heading or list with nothing
-- under it, names written as words (no ids, no code font), and the report's
-- origin told in the appendix.
local SETS = { "laggard", "median", "leader", "empty", "half" }
local GENERATION = "3d5ef2a9c0b1d4e7"
local DATE_MS = 1796292000000 -- 3 December 2026, 10:00 UTC

-- Half of the median company: master data, credit, order management and most
-- of billing answered; the questions that open the KPIs of billing, cash
-- application, collections and disputes left for later.
local HALF_KEEPS = { "md_", "cr_", "om_", "bi_", "ca_remittance", "co_strategy", "co_dunning" }
local HALF_DROPS = { bi_accuracy_measured = true, bi_accuracy = true }

local function half_answers()
  local all = assessment.example("median").answers
  local kept = {}
  for id, value in pairs(all) do
    for _, prefix in ipairs(HALF_KEEPS) do
      if id:sub(1, #prefix) == prefix and not HALF_DROPS[id] then
        kept[id] = value
      end
    end
  end
  return kept
end

local function answer_set(name)
  if name == "empty" then
    return {}, nil
  elseif name == "half" then
    return half_answers(), assessment.example("median").targets
  end
  local e = assessment.example(name)
  return e.answers, e.targets
end

local function context(o2c, answers, targets, client)
  return {
    assessment = { client = client, type = "o2c" },
    answers = answers, targets = targets, scores = o2c:score(answers, targets),
    sections = {}, attachments = {},
    report = { generation = GENERATION, date_ms = DATE_MS },
  }
end

-- Every section, as the offline provider writes it; each draft passes its check.
local function report_of(o2c, answers, targets, client)
  local ctx = context(o2c, answers, targets, client or "Example Co")
  local plan = o2c:report_plan()
  local kinds = {}
  for _, s in ipairs(plan.sections) do
    kinds[s.id] = s.kind
  end
  local texts = {}
  for _, id in ipairs(plan.run_order) do
    ctx.sections = texts
    if kinds[id] == "llm" then
      texts[id] = o2c:section_draft(id, ctx)
      local ok, reason = o2c:section_check(id, texts[id], ctx)
      assert(ok, id .. ": " .. tostring(reason))
    else
      texts[id] = o2c:section_render(id, ctx)
    end
  end
  return texts, plan
end

local function report_for(o2c, name)
  local answers, targets = answer_set(name)
  return report_of(o2c, answers, targets, name .. " Ltd")
end

-- The sections the client reads (all but the consultant's open questions).
local function client_sections(texts, plan)
  local list = {}
  for _, s in ipairs(plan.sections) do
    if s.id ~= "open_questions" then
      list[#list + 1] = { id = s.id, text = texts[s.id] }
    end
  end
  return list
end

local function kpi(scores, id)
  for _, k in ipairs(scores.kpis) do
    if k.id == id then
      return k
    end
  end
end

describe("\"not measured\"", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  it("comes from answers that say so (laggard), names written as words", function()
    local texts = report_for(o2c, "laggard")
    expect(texts.executive_summary).to_contain(
      "**Not measured today:** Invoice accuracy, auto-match rate and dispute resolution time. Measuring them is part of the first phase.")
  end)

  it("is never said of a KPI whose question is unanswered or waits on one (empty, half)", function()
    for _, name in ipairs({ "empty", "half" }) do
      local texts, plan = report_for(o2c, name)
      for _, s in ipairs(client_sections(texts, plan)) do
        expect(s.text:lower()).never.to_contain("not measured")
        expect(s.text).never.to_contain("Start measuring")
        expect(s.text).never.to_contain("start measuring")
      end
    end
  end)

  it("is said of DSO once the client answers that DSO is not measured", function()
    local answers = half_answers()
    answers.co_dso_tracking = "not_tracked"
    local texts = report_of(o2c, answers, assessment.example("median").targets)
    expect(texts.executive_summary).to_contain("**Not measured today:** DSO and collection effectiveness index.")
    expect(texts.roadmap).to_contain("- Start measuring DSO and collection effectiveness index every month.")
    expect(texts.findings_collections).to_contain("- **DSO**: not measured today.")
  end)

  it("scores a KPI waiting on its unanswered gate as unanswered, one the answers hide as hidden", function()
    local s = o2c:score(half_answers())
    expect(kpi(s, "co_dso").status).to_equal("unanswered")
    expect(kpi(s, "co_dso").waits_for).to_equal("co_dso_tracking")
    expect(kpi(s, "bi_accuracy").waits_for).to_equal("bi_accuracy_measured")
    local laggard = assessment.example("laggard")
    local l = o2c:score(laggard.answers, laggard.targets)
    expect(kpi(l, "bi_accuracy").status).to_equal("hidden")   -- "No", it is not measured
    expect(kpi(l, "bi_accuracy").waits_for).to_be_nil()
    expect(kpi(l, "co_dso").status).to_equal("answered")
  end)
end)

describe("the open questions", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  it("list for the consultant each unanswered question and what waits on it (half)", function()
    local texts = report_for(o2c, "half")
    local open = texts.open_questions
    expect(open).to_contain("*For the consultant: this section is left out of the client's copy of the report.*")
    expect(open).to_contain("14 questions asked are not answered yet (14 of them required), and 6 more will be asked once those are answered.")
    expect(open).to_contain("### Collections")
    expect(open).to_contain("- **DSO measurement** (required): How is days sales outstanding (DSO) measured?")
    expect(open).to_contain("- **DSO**: asked once “DSO measurement” is answered.")
    expect(open).to_contain("- **Invoice accuracy**: asked once “Invoice accuracy measurement” is answered.")
    expect(open).never.to_contain("### Credit management")   -- fully answered
  end)

  it("list every question of an empty assessment", function()
    local texts = report_for(o2c, "empty")
    expect(texts.open_questions).to_contain("36 questions asked are not answered yet (36 of them required)")
  end)

  it("say nothing is open for the complete examples", function()
    for _, name in ipairs({ "laggard", "median", "leader" }) do
      local texts = report_for(o2c, name)
      expect(texts.open_questions).to_contain("Every question asked is answered; nothing is open.")
    end
  end)
end)

describe("the overall target", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  it("depends only on the targets set, not on which areas are answered yet", function()
    for _, name in ipairs({ "laggard", "median", "leader" }) do
      local e = assessment.example(name)
      local full = o2c:score(e.answers, e.targets).overall.target
      expect(o2c:score({}, e.targets).overall.target).to_equal(full)
      expect(o2c:score(half_answers(), e.targets).overall.target).to_equal(full)
    end
    expect(o2c:score(half_answers(), assessment.example("median").targets).overall.target).to_equal(3.4)
  end)

  it("is the one the summary states for a half-answered assessment", function()
    local texts = report_for(o2c, "half")
    expect(texts.executive_summary).to_contain("against a target of 3.4.")
  end)
end)

describe("headings and lists", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  -- The first heading (or lead-in ending in ':') with nothing under it, or nil.
  local function empty_heading(text)
    local lines = {}
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
      lines[#lines + 1] = line
    end
    for i, line in ipairs(lines) do
      local hashes = line:match("^(#+)%s")
      local lead = not hashes and line:match(":%s*$") and not line:match("^%s*[-|]")
      if hashes or lead then
        local content = false
        for j = i + 1, #lines do
          local next_hashes = lines[j]:match("^(#+)%s")
          if next_hashes and (lead or #next_hashes <= #hashes) then
            break
          end
          if lines[j]:match("%S") then
            content = true
            break
          end
        end
        if not content then
          return line
        end
      end
    end
    return nil
  end

  it("never leave a heading or a lead-in with nothing under it, for all five answer sets", function()
    for _, name in ipairs(SETS) do
      local texts, plan = report_for(o2c, name)
      for _, s in ipairs(plan.sections) do
        local bad = empty_heading(texts[s.id])
        assert(bad == nil, name .. " " .. s.id .. ": nothing under " .. tostring(bad))
      end
    end
  end)

  it("do not claim that areas meet their target when none is assessed (empty)", function()
    local texts = report_for(o2c, "empty")
    expect(texts.recommendations).never.to_contain("Every assessed area meets its target")
    expect(texts.recommendations).to_contain("No area has a scored answer yet")
    expect(texts.findings_billing).to_contain("Billing and invoicing is not assessed yet: it has no scored answer. Its target is level 3.")
    expect(texts.findings_billing).never.to_contain("**Strengths**")
  end)
end)

describe("names in the text", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  it("are words: no ids and no code font in any section, for all five answer sets", function()
    local ids = {}
    for _, a in ipairs(o2c:kb().agents) do
      ids[#ids + 1] = a.id
    end
    for _, name in ipairs(SETS) do
      local texts, plan = report_for(o2c, name)
      for _, s in ipairs(plan.sections) do
        local text = texts[s.id]
        assert(not text:find("`", 1, true), name .. " " .. s.id .. " uses code font: "
          .. tostring(text:match("[^\n]*`[^\n]*")))
        for _, id in ipairs(ids) do
          assert(not text:find(id, 1, true), name .. " " .. s.id .. " names the agent id " .. id)
        end
      end
    end
  end)

  it("put agents and KPIs into sentences as words (laggard)", function()
    local texts = report_for(o2c, "laggard")
    expect(texts.roadmap).to_contain("- Start measuring invoice accuracy, auto-match rate and dispute resolution time every month.")
    expect(texts.roadmap).to_contain("- Billing and invoicing – deploy the Billing Trigger Agent, with people reviewing its output at first.")
    expect(texts.recommendations).to_contain("- **Automation:** The Billing Trigger Agent, which creates the invoice as soon as")
    expect(texts.recommendations).to_contain("- **Measure:** Start measuring invoice accuracy; cost per invoice – reach the next band")
    expect(texts.recommendations).to_contain("- **Gap:** Invoice timing, invoice accuracy measurement and pre-send invoice checks")
  end)
end)

describe("the appendix", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  it("tells a reader when the report was prepared and from which version of the scripts", function()
    for _, name in ipairs(SETS) do
      local texts, plan = report_for(o2c, name)
      expect(texts.appendix).to_contain("### About this report")
      expect(texts.appendix).to_contain("This report was prepared on 3 December 2026.")
      expect(texts.appendix).to_contain("the knowledge base it was written from are version " .. GENERATION)
      for _, s in ipairs(plan.sections) do
        if s.id ~= "appendix" then
          expect(texts[s.id]).never.to_contain(GENERATION)
        end
      end
    end
  end)
end)
