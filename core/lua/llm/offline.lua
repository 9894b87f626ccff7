-- The offline drafter: no LLM at all.  The report runner writes each section
-- with the section's own draft(ctx) and labels it with this provider and model,
-- so an offline report can never pass for an LLM-written one.
local M = { name = "offline", model = "offline-drafter", offline = true }

-- A drafted text in the shape llm.complete returns.
function M.result(text)
  return { text = text, usage = { input = 0, output = 0 }, model = M.model,
    provider = M.name, attempts = 0 }
end

return M
