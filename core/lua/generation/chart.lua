-- Inline SVG charts for generated report sections (no LLM, no external assets).
-- Scripts reach this as `chart` in their environment:
--
--   chart.radar {
--     title = "Score against target",
--     axes = { "Billing", "Credit", ... },            -- one label per spoke
--     max = 5,                                          -- value at the rim
--     series = {
--       { name = "Target", values = { 3, 4, ... }, color = "#d97706", dashed = true },
--       { name = "Score",  values = { 2.4, 3.1, ... }, color = "#2563eb", fill = true },
--     },
--   }
--
-- The result is one <svg> element without blank lines, so Markdown keeps it as
-- a single HTML block. Numbers are printed with one decimal: the same input
-- always gives the same bytes.
local chart = {}

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

function chart.radar(spec)
  assert(type(spec) == "table", "chart.radar expects a table")
  local axes, series = spec.axes or {}, spec.series or {}
  local n = #axes
  local max = spec.max or 5
  local size = spec.size or 520
  local cx, cy = size / 2, size / 2 + 10
  local radius = size / 2 - 120
  local out = {}
  local function add(s)
    out[#out + 1] = s
  end
  local title = spec.title or "Radar chart"
  -- Side margins leave room for long labels anchored left or right of a spoke.
  local margin = 110
  add(string.format('<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="%d 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="12">',
    -margin, size + 2 * margin, size + 40, size + 2 * margin, size + 40))
  add("<title>" .. xml_escape(title) .. "</title>")
  if n < 3 then
    add('<text x="10" y="20">A radar chart needs at least three axes.</text></svg>')
    return table.concat(out, "\n")
  end
  local step = 2 * math.pi / n
  -- Rings at every whole level, labelled on the first spoke.
  for level = 1, max do
    local pts = {}
    for i = 0, n - 1 do
      local x, y = point(cx, cy, radius * level / max, i * step)
      pts[#pts + 1] = num(x) .. "," .. num(y)
    end
    add(string.format('<polygon points="%s" fill="none" stroke="#d1d5db" stroke-width="1"/>', table.concat(pts, " ")))
    local lx, ly = point(cx, cy, radius * level / max, 0)
    add(string.format('<text x="%s" y="%s" fill="#6b7280" font-size="10">%d</text>', num(lx + 4), num(ly + 4), level))
  end
  -- Spokes and their labels.
  for i = 0, n - 1 do
    local x, y = point(cx, cy, radius, i * step)
    add(string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#d1d5db" stroke-width="1"/>',
      num(cx), num(cy), num(x), num(y)))
    local lx, ly = point(cx, cy, radius + 18, i * step)
    local anchor = "middle"
    if lx > cx + 5 then
      anchor = "start"
    elseif lx < cx - 5 then
      anchor = "end"
    end
    add(string.format('<text x="%s" y="%s" text-anchor="%s" fill="#111827">%s</text>',
      num(lx), num(ly + 4), anchor, xml_escape(axes[i + 1])))
  end
  -- One polygon per series, in the order given (later ones drawn on top).
  for _, s in ipairs(series) do
    local pts = {}
    for i = 0, n - 1 do
      local v = tonumber(s.values and s.values[i + 1]) or 0
      if v < 0 then
        v = 0
      elseif v > max then
        v = max
      end
      local x, y = point(cx, cy, radius * v / max, i * step)
      pts[#pts + 1] = num(x) .. "," .. num(y)
    end
    local color = s.color or "#2563eb"
    add(string.format('<polygon points="%s" fill="%s" fill-opacity="%s" stroke="%s" stroke-width="2"%s/>',
      table.concat(pts, " "), s.fill and color or "none", s.fill and "0.2" or "0", color,
      s.dashed and ' stroke-dasharray="6 4"' or ""))
  end
  -- Legend under the chart.
  local lx = 20
  for _, s in ipairs(series) do
    local color = s.color or "#2563eb"
    add(string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"%s/>',
      lx, size + 20, lx + 24, size + 20, color, s.dashed and ' stroke-dasharray="6 4"' or ""))
    add(string.format('<text x="%d" y="%d" fill="#111827">%s</text>', lx + 30, size + 24, xml_escape(s.name or "")))
    lx = lx + 40 + 8 * #(s.name or "")
  end
  add("</svg>")
  return table.concat(out, "\n")
end

return chart
