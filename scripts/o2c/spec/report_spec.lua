-- The report plan and its sections: order, dependencies, generated sections,
-- and the checks every LLM section's text must pass.
local function ids_of(list)
  local ids = {}
  for i, s in ipairs(list) do
    ids[i] = s.id
  end
  return ids
end

local function position(list, id)
  for i, v in ipairs(list) do
    if v == id then
      return i
    end
  end
end

-- Runs the whole plan offline, like the host's offline provider does.
local function offline_report(o2c, name)
  local e = assessment.example(name)
  local ctx = o2c:context(e.answers, e.targets, name .. " Ltd")
  local plan = o2c:report_plan()
  local texts = {}
  for _, id in ipairs(plan.run_order) do
    ctx.sections = texts
    local kind
    for _, s in ipairs(plan.sections) do
      if s.id == id then
        kind = s.kind
      end
    end
    if kind == "llm" then
      texts[id] = o2c:section_draft(id, ctx)
      local ok, reason = o2c:section_check(id, texts[id], ctx)
      assert(ok, id .. ": " .. tostring(reason))
    else
      texts[id] = o2c:section_render(id, ctx)
    end
  end
  return texts, ctx
end

describe("the report plan", function()
  local o2c, plan
  before_each(function()
    o2c = assessment.default()
    plan = o2c:report_plan()
  end)

  it("has the sections a consultant expects, in display order", function()
    local ids = ids_of(plan.sections)
    expect(ids[1]).to_equal("open_questions")  -- the consultant's, left out of the client's copy
    expect(ids[2]).to_equal("executive_summary")
    expect(ids[3]).to_equal("scorecard")
    expect(ids).to_contain("findings_billing")
    expect(ids[#ids - 2]).to_equal("recommendations")
    expect(ids[#ids - 1]).to_equal("roadmap")
    expect(ids[#ids]).to_equal("appendix")
    expect(#ids).to_equal(14)            -- 8 areas + 6
  end)

  it("runs the findings before the summary and the recommendations before the roadmap", function()
    local order = plan.run_order
    expect(position(order, "findings_collections")).to_be_less_than(position(order, "executive_summary"))
    expect(position(order, "recommendations")).to_be_less_than(position(order, "roadmap"))
    expect(plan.sections[2].depends).to_have_length(8)
  end)

  it("marks the scorecard and the appendix as generated, the rest as llm with a token budget", function()
    for _, s in ipairs(plan.sections) do
      if s.id == "scorecard" or s.id == "appendix" or s.id == "open_questions" then
        expect(s.kind).to_equal("generated")
        expect(s.max_tokens).to_be_nil()
      else
        expect(s.kind).to_equal("llm")
        expect(s.max_tokens).to_be_greater_than(0)
      end
    end
  end)
end)

describe("report sections", function()
  local o2c
  before_each(function()
    o2c = assessment.default()
  end)

  it("draw a radar chart of score against target in the scorecard", function()
    local texts = offline_report(o2c, "median")
    expect(texts.scorecard).to_contain("<svg")
    expect(texts.scorecard).to_contain("<polygon")
    expect(texts.scorecard).to_contain("Target")
    expect(texts.scorecard).to_contain("| Collections | 2 | 3.06 | 3 Defined | 4 | 0.94 |")
  end)

  it("list every answer and the method in the appendix", function()
    local texts = offline_report(o2c, "laggard")
    expect(texts.appendix).to_contain("### Method")
    expect(texts.appendix).to_contain("Σ (question weight × question score)")
    expect(texts.appendix).to_contain("not asked (condition not met)")
    expect(texts.appendix).to_contain("Bank details are changed when a customer e-mails new ones")
  end)

  it("draft offline text that passes every check, for all three examples", function()
    for _, name in ipairs({ "laggard", "median", "leader" }) do
      local texts = offline_report(o2c, name)
      expect(texts.executive_summary).to_contain(name .. " Ltd")
      expect(texts.roadmap).to_contain("### 6-12 months")
    end
  end)

  it("ground the findings prompt in the area's KB passage, answers and benchmarks", function()
    local e = assessment.example("median")
    local p = o2c:section_prompt("findings_collections", o2c:context(e.answers, e.targets))
    expect(p.system).to_contain("Name an automation agent only if it appears in the catalogue")
    expect(p.user).to_contain("kb/areas/collections.md")
    expect(p.user).to_contain("38 days – worse than the median")
    expect(p.user).to_contain("CFO.com (2018)")
  end)

  it("state in each LLM prompt the phrases its check requires", function()
    -- A model that writes the "Required phrases" line's phrases passes the
    -- check the first time; without them the same text fails it.
    local plan = o2c:report_plan()
    local filler = string.rep("The team reviewed the process and agreed on the next steps. ", 6)
    for _, name in ipairs({ "laggard", "median", "leader", "none" }) do
      local ctx
      if name == "none" then
        ctx = o2c:context({})
      else
        local e = assessment.example(name)
        ctx = o2c:context(e.answers, e.targets)
      end
      for _, s in ipairs(plan.sections) do
        if s.kind == "llm" then
          local p = o2c:section_prompt(s.id, ctx)
          local line = p.user:match("\nRequired phrases[^:\n]*: ([^\n]*)")
          local phrases = {}
          for phrase in (line or ""):gmatch('"([^"]+)"') do
            phrases[#phrases + 1] = phrase
          end
          local ok, reason = o2c:section_check(s.id, filler .. "Covered here: " .. table.concat(phrases, "; ") .. ".", ctx)
          assert(ok, name .. " " .. s.id .. ": " .. tostring(reason))
          if #phrases > 0 then
            expect(o2c:section_check(s.id, filler, ctx)).to_be(false)
          end
        end
      end
    end
  end)

  it("reject recommendations that name an agent outside the catalogue", function()
    local e = assessment.example("median")      -- largest gap: collections
    local ctx = o2c:context(e.answers, e.targets)
    local ok, reason = o2c:section_check("recommendations",
      "### 1. Collections\nDeploy the Magic Collections Agent and the Dunning Agent (`dunning-agent`).", ctx)
    expect(ok).to_be(false)
    expect(reason).to_contain("Magic Collections Agent")
    expect(o2c:section_check("recommendations", "### 1. Collections\nDeploy the Dunning Agent (`dunning-agent`).", ctx))
      .to_be(true)
  end)

  it("reject a roadmap without its three phases", function()
    local ctx = o2c:context({})
    local ok, reason = o2c:section_check("roadmap", "### 0-3 months\n- x\n### 3-6 months\n- y", ctx)
    expect(ok).to_be(false)
    expect(reason).to_contain("6-12 months")
    expect(o2c:section_check("roadmap", "### 0–3 months\n- x\n### 3–6 months\n- y\n### 6–12 months\n- z", ctx)).to_be(true)
  end)

  it("return plain data: no functions in scores, plans or prompts", function()
    local function plain(v, depth)
      if type(v) == "function" or type(v) == "userdata" or depth > 20 then
        return false
      end
      if type(v) == "table" then
        for k, x in pairs(v) do
          if not plain(k, depth + 1) or not plain(x, depth + 1) then
            return false
          end
        end
      end
      return true
    end
    local e = assessment.example("leader")
    expect(plain(o2c:score(e.answers, e.targets), 0)).to_be(true)
    expect(plain(o2c:questionnaire(), 0)).to_be(true)
    expect(plain(o2c:report_plan(), 0)).to_be(true)
    expect(plain(o2c:kb(), 0)).to_be(true)
  end)
end)
