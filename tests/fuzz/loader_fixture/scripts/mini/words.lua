-- Small text helpers shared by report.lua (a module reached through require;
-- like every module, it gets the engine library as its first argument).
local lib = ...
local words = {}

function words.count(text)
  local n = 0
  for _ in text:gmatch("%S+") do
    n = n + 1
  end
  return n
end

function words.score(x)
  return x and string.format("%.2f", x) or "not scored"
end

-- "Name (`id`)" for each agent of an area, as reports must write them.
function words.agents(area_id)
  local out = {}
  for _, a in ipairs(lib.kb.agents_for_area(area_id)) do
    out[#out + 1] = a.name .. " (`" .. a.id .. "`)"
  end
  return table.concat(out, ", ")
end

return words
