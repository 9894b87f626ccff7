-- lib.format: numbers, units and Markdown pieces as report text. Pure
-- functions of their arguments; scripts reach them as lib.format.*.
local format = {}

-- 2.5 -> "2.5", 2.0 -> "2", 2.777 -> "2.78"; anything else through tostring.
function format.number(x)
  if type(x) ~= "number" then
    return tostring(x)
  end
  local s = string.format("%.2f", x):gsub("0+$", ""):gsub("%.$", "")
  return s
end

-- Scores always with two decimals, so columns line up: 2.50 ("–" for none).
function format.score(x)
  if type(x) ~= "number" then
    return "–"
  end
  return string.format("%.2f", x)
end

-- 42 "days" -> "42 days", 90.6 "%" -> "90.6%", 3.17 "USD" -> "$3.17".
function format.with_unit(value, unit)
  if type(value) ~= "number" then
    return tostring(value)
  end
  if unit:sub(1, 1) == "%" then
    return format.number(value) .. unit
  elseif unit == "USD" then
    return "$" .. string.format("%.2f", value)
  end
  return format.number(value) .. " " .. unit
end

-- Makes a text safe inside a Markdown table cell (no line breaks, "|" escaped).
function format.cell(text)
  return (tostring(text or ""):gsub("[\r\n]+", " "):gsub("|", "\\|"))
end

-- { "a", "b" } -> "- a\n- b"
function format.bullets(lines)
  local out = {}
  for i, line in ipairs(lines) do
    out[i] = "- " .. line
  end
  return table.concat(out, "\n")
end

-- A descriptor without its final full stop, to be used inside a sentence.
function format.clause(text)
  return (tostring(text):gsub("%.%s*$", ""))
end

function format.word_count(text)
  local n = 0
  for _ in text:gmatch("%S+") do
    n = n + 1
  end
  return n
end

-- A name as it reads inside a sentence: "Invoice accuracy" -> "invoice
-- accuracy"; acronyms and names that start with one stay ("DSO", "AR ageing").
function format.in_sentence(name)
  name = tostring(name or "")
  local first, second = name:sub(1, 1), name:sub(2, 2)
  if first:match("%u") and not second:match("[%u%d]") then
    return first:lower() .. name:sub(2)
  end
  return name
end

-- A name at the start of a sentence or list item: "auto-match rate" -> "Auto-match rate".
function format.capital(text)
  text = tostring(text or "")
  return text:sub(1, 1):upper() .. text:sub(2)
end

-- { "a", "b", "c" } -> "a, b and c" (`last` replaces "and": "or").
function format.list(items, last)
  local n = #items
  if n == 0 then
    return ""
  elseif n == 1 then
    return items[1]
  end
  return table.concat(items, ", ", 1, n - 1) .. " " .. (last or "and") .. " " .. items[n]
end

-- What a KPI status (scores.kpis[i].status) means in a report: "hidden" is
-- a KPI the client's answers say is not measured; "unanswered" has no answer yet.
format.STATUS_WORDS = {
  hidden = "not measured", unanswered = "not yet answered", ["not applicable"] = "not applicable or not known",
}

function format.status_word(status)
  return format.STATUS_WORDS[status] or tostring(status)
end

return format
