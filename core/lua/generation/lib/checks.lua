-- lib.checks: pieces for a section's check(text, ctx) and for stating in its
-- prompt what the check looks for. Bound to the knowledge base per type.
local checks_lib = {}

-- kb: the KB view (kb.agent_mentions).
function checks_lib.new(kb)
  local checks = {}

  -- true, or false and why: the text names agents that are not in kb/agents.lua.
  function checks.agents_known(text)
    local _, unknown = kb.agent_mentions(text)
    if #unknown > 0 then
      return false, "names agents that are not in the KB catalogue: " .. table.concat(unknown, ", ")
        .. " (use only names from kb/agents.lua)"
    end
    return true
  end

  -- The prompt line that lists the exact phrases a check looks for, so a model
  -- that follows it passes the first time (a re-ask costs a call); "" for none.
  function checks.required_phrases(phrases)
    if #phrases == 0 then return "" end
    local quoted = {}
    for i, p in ipairs(phrases) do
      quoted[i] = '"' .. p .. '"'
    end
    return "Required phrases (use each exactly as written): " .. table.concat(quoted, "; ")
  end

  -- The first of `phases` ("0-3 months", ...) the text does not name, or nil.
  -- "0–3 months" (en dash) and "0 - 3 months" count as "0-3 months".
  function checks.missing_phase(text, phases)
    local plain = text:gsub("–", "-")
    for _, phase in ipairs(phases) do
      local from, to, rest = phase:match("^(%d+)-(%d+)%s*(.*)$")
      local found
      if from then
        found = plain:find(from .. "%s*-%s*" .. to .. "%s*" .. rest:gsub("%p", "%%%0"))
      else
        found = plain:find(phase, 1, true)
      end
      if not found then
        return phase
      end
    end
    return nil
  end

  return checks
end

return checks_lib
