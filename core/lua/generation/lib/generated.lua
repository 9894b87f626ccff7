-- lib.generated: the sections built from the scores and answers alone, no LLM.
--   scorecard(ctx)  radar chart (score against target per area), area table, KPI table
--   appendix(ctx)   every answer with its score and note, the scoring method, sources
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

  function generated.appendix(ctx)
    local out = {}
    local function add(line)
      out[#out + 1] = line
    end
    add("### Answers")
    for _, area in ipairs(questionnaire.areas) do
      add("")
      add("#### " .. area.title)
      add("")
      add("| Question | Answer | Score | Note |")
      add("|---|---|---:|---|")
      for _, q in ipairs(area.questions) do
        local value = ctx.answers[q.id]
        local answer
        if not ctx.visible[q.id] then
          answer = "not asked (condition not met)"
        else
          answer = facts.answer_text(q, value)
        end
        local qs = ctx.scores.questions[q.id]
        add(string.format("| %s | %s | %s | %s |", format.cell(q.text), format.cell(answer),
          qs and format.number(qs) or "–", format.cell(ctx.notes[q.id] or "")))
      end
    end
    add("")
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
        add(string.format("- %s: %s (%s)", k.benchmark_name, k.benchmark_text, k.source))
      end
    end
    if #ctx.attachments > 0 then
      add("")
      add("### Attachments")
      add("")
      for _, a in ipairs(ctx.attachments) do
        add(string.format("- %s (%s, %s bytes)", tostring(a.name), tostring(a.media_type), tostring(a.size)))
      end
    end
    return table.concat(out, "\n")
  end

  return generated
end

return generated_lib
