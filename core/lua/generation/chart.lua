-- Inline SVG charts for generated report sections (no LLM, no external assets),
-- and the one chart drawer of o2c: the report, its downloads and the UI's
-- scorecard all show what this file draws. Scripts reach it as `chart` in
-- their environment; the product VM as require "generation.chart".
--
--   chart.radar {
--     title = "Score against target",
--     desc = "Billing: 2.4 against target 3; ...",     -- optional, read by screen readers
--     axes = { "Billing and invoicing", "Credit", ... }, -- one label per spoke (wrapped)
--     missing = { [2] = true },                          -- optional: spokes with no value yet
--     max = 5,                                           -- value at the rim
--     series = {
--       { name = "Target", values = { 3, 4, ... }, color = "#d97706", dashed = true },
--       { name = "Score",  values = { 2.4, 3.1, ... }, color = "#2563eb", fill = true, dots = true },
--     },
--   }
--   chart.scorecard(areas) -- the scorecard's radar from a scores table's areas
--                          -- ({title, score, target}, score nil when not assessed)
--
-- The result is one <svg> element without blank lines, so Markdown keeps it as
-- a single HTML block. Numbers are printed with one decimal: the same input
-- always gives the same bytes.
local chart = {}

local INK, MUTED, GRID = "#111827", "#6b7280", "#d1d5db"

local function xml_escape(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function num(x)
  local s = string.format("%.1f", x)
  if s == "-0.0" then
    s = "0.0"
  end
  return s
end

local function point(cx, cy, radius, angle)
  return cx + radius * math.sin(angle), cy - radius * math.cos(angle)
end

-- "Customer master data and onboarding" -> { "Customer master", "data and", "onboarding" }
local function wrap(label, width)
  local lines, line = {}, ""
  for word in tostring(label):gmatch("%S+") do
    if line ~= "" and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = word
    else
      line = line == "" and word or (line .. " " .. word)
    end
  end
  lines[#lines + 1] = line
  return lines
end

-- One spoke's label: wrapped lines, growing away from the chart.
local function axis_label(add, x, y, angle, label, missing, cx)
  local anchor = "middle"
  if x > cx + 5 then
    anchor = "start"
  elseif x < cx - 5 then
    anchor = "end"
  end
  local lines = wrap(label, 16)
  if missing then
    lines[#lines + 1] = false -- the "(not assessed)" note
  end
  local step, cos = 20, math.cos(angle)
  local y0
  if cos > 0.7 then
    y0 = y - (#lines - 1) * step -- top: upwards
  elseif cos < -0.7 then
    y0 = y + 10 -- bottom: downwards
  else
    y0 = y - (#lines - 1) * step / 2 + 5 -- sides: centred
  end
  add(string.format('<text x="%s" y="%s" text-anchor="%s" fill="%s" font-size="17">', num(x), num(y0), anchor,
    missing and MUTED or INK))
  for i, line in ipairs(lines) do
    local dy = i > 1 and step or 0
    if line then
      add(string.format('<tspan x="%s" dy="%d">%s</tspan>', num(x), dy, xml_escape(line)))
    else
      add(string.format('<tspan x="%s" dy="%d" font-size="14" font-style="italic">(not assessed)</tspan>', num(x), dy))
    end
  end
  add("</text>")
end

function chart.radar(spec)
  assert(type(spec) == "table", "chart.radar expects a table")
  local axes, series, missing = spec.axes or {}, spec.series or {}, spec.missing or {}
  local n = #axes
  local max = spec.max or 5
  local size = spec.size or 520
  -- Room above for a top label of four lines (three and "(not assessed)"),
  -- below for a bottom label and the legend, at the sides for labels
  -- anchored left or right of a spoke.
  local radius = size / 2 - 70
  local cx, cy = size / 2, radius + 105
  local height = cy + radius + 140
  local out = {}
  local function add(s)
    out[#out + 1] = s
  end
  local title = spec.title or "Radar chart"
  local margin = 130
  add(string.format('<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="%d 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="16">',
    -margin, size + 2 * margin, height, size + 2 * margin, height))
  add("<title>" .. xml_escape(title) .. "</title>")
  if spec.desc then
    add("<desc>" .. xml_escape(spec.desc) .. "</desc>")
  end
  if n < 3 then
    add('<text x="10" y="20">A radar chart needs at least three axes.</text></svg>')
    return table.concat(out, "\n")
  end
  local step = 2 * math.pi / n
  -- Rings at every whole level, labelled between the first two spokes.
  for level = 1, max do
    local pts = {}
    for i = 0, n - 1 do
      local x, y = point(cx, cy, radius * level / max, i * step)
      pts[#pts + 1] = num(x) .. "," .. num(y)
    end
    add(string.format('<polygon points="%s" fill="none" stroke="%s" stroke-width="1"/>', table.concat(pts, " "),
      level == max and "#9ca3af" or GRID))
    local lx, ly = point(cx, cy, radius * level / max, step / 2)
    add(string.format('<text x="%s" y="%s" text-anchor="middle" fill="%s" font-size="12">%d</text>', num(lx), num(ly + 4),
      MUTED, level))
  end
  -- Spokes and their labels.
  for i = 0, n - 1 do
    local x, y = point(cx, cy, radius, i * step)
    add(string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1"/>',
      num(cx), num(cy), num(x), num(y), GRID))
    local lx, ly = point(cx, cy, radius + 22, i * step)
    axis_label(add, lx, ly, i * step, axes[i + 1], missing[i + 1], cx)
  end
  -- One polygon per series, in the order given (later ones drawn on top).
  for _, s in ipairs(series) do
    local pts, dots = {}, {}
    for i = 0, n - 1 do
      local v = tonumber(s.values and s.values[i + 1]) or 0
      if v < 0 then
        v = 0
      elseif v > max then
        v = max
      end
      local x, y = point(cx, cy, radius * v / max, i * step)
      pts[#pts + 1] = num(x) .. "," .. num(y)
      if s.dots and not missing[i + 1] then
        dots[#dots + 1] = string.format('<circle cx="%s" cy="%s" r="5" fill="%s"/>', num(x), num(y), s.color or "#2563eb")
      end
    end
    local color = s.color or "#2563eb"
    add(string.format('<polygon points="%s" fill="%s" fill-opacity="%s" stroke="%s" stroke-width="2.5"%s/>',
      table.concat(pts, " "), s.fill and color or "none", s.fill and "0.18" or "0", color,
      s.dashed and ' stroke-dasharray="7 5"' or ""))
    for _, d in ipairs(dots) do
      add(d)
    end
  end
  -- Legend under the chart, centred.
  local width = 0
  for _, s in ipairs(series) do
    width = width + 50 + 9 * #(s.name or "")
  end
  local lx, ly = cx - width / 2, height - 20
  for _, s in ipairs(series) do
    local color = s.color or "#2563eb"
    add(string.format('<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="3"%s/>',
      num(lx), ly - 5, num(lx + 24), ly - 5, color, s.dashed and ' stroke-dasharray="7 5"' or ""))
    add(string.format('<text x="%s" y="%d" fill="%s">%s</text>', num(lx + 30), ly, INK, xml_escape(s.name or "")))
    lx = lx + 50 + 9 * #(s.name or "")
  end
  add("</svg>")
  return table.concat(out, "\n")
end

local function two_decimals(x)
  return (string.format("%.2f", x):gsub("0$", ""):gsub("%.0$", ""))
end

-- The scorecard's chart: maturity score against target per area.
function chart.scorecard(areas)
  local labels, scores, targets, missing, parts = {}, {}, {}, {}, {}
  for i, a in ipairs(areas) do
    local score = tonumber(a.score)
    labels[i] = a.title or a.id
    scores[i] = score or 0
    targets[i] = tonumber(a.target) or 0
    missing[i] = score == nil
    parts[i] = string.format("%s: %s, target %s", labels[i], score and two_decimals(score) or "not assessed",
      a.target and two_decimals(targets[i]) or "none")
  end
  return chart.radar {
    title = "Maturity score against target, per area (scale 1 to 5)",
    desc = table.concat(parts, "; "),
    axes = labels,
    missing = missing,
    max = 5,
    series = {
      { name = "Target", values = targets, color = "#d97706", dashed = true },
      { name = "Score", values = scores, color = "#2563eb", fill = true, dots = true },
    },
  }
end

return chart
