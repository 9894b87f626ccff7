-- lib.generated: the sections built from the scores and answers alone, no LLM.
--   scorecard(ctx)       radar chart (score against target per area), area table, KPI table
--   appendix(ctx)        method and sources: the scoring method, benchmark sources,
--                        every answer with its score and note, and where the report
--                        comes from (date, scripts and knowledge-base version)
--   open_questions(ctx)  for the consultant: the questions not yet answered. A
--                        section with the id "open_questions" is left out of the
--                        client's copy of the report (report/assemble.lua).
local format = GEN_MODULE("lib/format")
local chart = GEN_MODULE("chart")

local generated_lib = {}

-- facts: the type's lib.facts; questionnaire: its questionnaire (read-only
-- view); method: returns the type's scoring.method text (loaded after this).
function generated_lib.new(facts, questionnaire, method)
  local generated = {}

  function generated.scorecard(ctx)
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end
    add(chart.scorecard(ctx.scores.areas))
    add("")
    add("| Area | Weight | Score | Level | Target | Gap | Answered |")
    add("|---|---:|---:|---|---:|---:|---:|")
    for _, a in ipairs(ctx.scores.areas) do
      add(string.format("| %s | %s | %s | %s | %s | %s | %d of %d |", format.cell(a.title), format.number(a.weight),
        format.score(a.score), a.level and string.format("%d %s", a.level, a.level_name) or a.level_name,
        format.number(a.target), a.gap and format.number(a.gap) or "–", a.answered, a.total))
    end
    local o = ctx.scores.overall
    add(string.format("| **Overall** | | **%s** | **%s** | %s | %s | %d of %d |", format.score(o.score),
      o.level and string.format("%d %s", o.level, o.level_name) or o.level_name, format.number(o.target),
      o.gap and format.number(o.gap) or "–", o.answered, o.total))
    add("")
    add("| KPI | Value | Position against benchmark | Public figures | Source |")
    add("|---|---:|---|---|---|")
    for _, k in ipairs(ctx.scores.kpis) do
      local value = k.status == "answered" and format.with_unit(k.value, k.unit) or format.status_word(k.status)
      add(string.format("| %s | %s | %s | %s | %s |", format.cell(k.name), format.cell(value),
        format.cell(k.band or "–"), format.cell(k.benchmark_text), format.cell(k.source)))
    end
    return table.concat(out, "\n")
  end

  -- "3 December 2026" (UTC), or nil without a date.
  local function date_of(ms)
    if math.type(ms) ~= "integer" then
      return nil
    end
    local d = os.date("!*t", ms // 1000)
    local months = { "January", "February", "March", "April", "May", "June", "July", "August", "September",
      "October", "November", "December" }
    return string.format("%d %s %d", d.day, months[d.month], d.year)
  end

  local function answers_table(ctx, add)
    for _, area in ipairs(questionnaire.areas) do
      add("")
      add("#### " .. area.title)
      add("")
      add("| Question | Answer | Score | Note |")
      add("|---|---|---:|---|")
      for _, q in ipairs(area.questions) do
        local value = ctx.answers[q.id]
        local answer
        local gate = ctx.waiting and ctx.waiting[q.id]
        if not ctx.visible[q.id] and gate then
          answer = "not asked yet (follows the answer to “" .. questionnaire.question_by_id[gate].label .. "”)"
        elseif not ctx.visible[q.id] then
          answer = "not asked (condition not met)"
        else
          answer = facts.answer_text(q, value)
        end
        local qs = ctx.scores.questions[q.id]
        add(string.format("| %s | %s | %s | %s |", format.cell(q.text), format.cell(answer),
          qs and format.number(qs) or "–", format.cell(ctx.notes[q.id] or "")))
      end
    end
  end

  function generated.appendix(ctx)
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end
    add("### Method")
    add("")
    add(method())
    add("")
    add("### Benchmark sources")
    add("")
    local seen = {}
    for _, k in ipairs(ctx.scores.kpis) do
      if not seen[k.benchmark] then
        seen[k.benchmark] = true
        add(string.format("- %s: %s Source: %s.", k.benchmark_name, k.benchmark_text, format.clause(k.source)))
      end
    end
    add("")
    add("### Answers")
    answers_table(ctx, add)
    if #ctx.attachments > 0 then
      add("")
      add("### Evidence received")
      add("")
      for _, a in ipairs(ctx.attachments) do
        add(string.format("- %s (%s, %s bytes)", tostring(a.name), tostring(a.media_type), tostring(a.size)))
      end
    end
    -- Traceability, for a reader: when, and from which version of the
    -- questionnaire, scoring rules and knowledge base.
    local report = ctx.report or {}
    local date = date_of(report.date_ms)
    local lines = {}
    if date then
      lines[#lines + 1] = "This report was prepared on " .. date .. "."
    end
    if report.generation then
      lines[#lines + 1] = "The questionnaire, the scoring rules and the knowledge base it was written from are version "
        .. report.generation .. ", kept unchanged so that every score and statement in it can be traced back to them."
    end
    if #lines > 0 then
      add("")
      add("### About this report")
      add("")
      add(table.concat(lines, " "))
    end
    return table.concat(out, "\n")
  end

  function generated.open_questions(ctx)
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end
    add("*For the consultant: this section is left out of the client's copy of the report.*")
    add("")
    local open = facts.open_questions(ctx)
    if #open == 0 then
      add("Every question asked is answered; nothing is open.")
      return table.concat(out, "\n")
    end
    local asked, required, later = 0, 0, 0
    for _, group in ipairs(open) do
      for _, item in ipairs(group.questions) do
        if item.waits_for then
          later = later + 1
        else
          asked = asked + 1
          if item.question.required then
            required = required + 1
          end
        end
      end
    end
    local intro = string.format("%d %s not answered yet (%d of them required)", asked,
      asked == 1 and "question asked is" or "questions asked are", required)
    if later > 0 then
      intro = intro .. string.format(", and %d more will be asked once those are answered", later)
    end
    add(intro .. ". Until the client answers them, the scores leave them out and the client's copy does not mention "
      .. "them: an unanswered KPI is never reported as “not measured”.")
    for _, group in ipairs(open) do
      add("")
      add("### " .. group.area.title)
      add("")
      for _, item in ipairs(group.questions) do
        local q = item.question
        if item.waits_for then
          add(string.format("- **%s**: asked once “%s” is answered.", q.label, item.waits_for.label))
        else
          add(string.format("- **%s**%s: %s", q.label, q.required and " (required)" or "", q.text))
        end
      end
    end
    return table.concat(out, "\n")
  end

  return generated
end

return generated_lib
