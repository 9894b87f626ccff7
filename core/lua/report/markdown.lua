-- Markdown to HTML for report sections: the subset that the report scripts
-- and the LLM prompts produce (headings, paragraphs, bold, italics, code,
-- links, bullet and numbered lists with nesting, tables with alignment,
-- block quotes, rules).  No Markdown library is among the project's
-- dependencies, and this subset is small enough to read at once.
--
--   markdown.to_html(text, {allow_svg = true})
--
-- Every character of the text is escaped: LLM output can never inject
-- markup.  The one exception is an inline <svg>…</svg> block (the scorecard's
-- radar chart) when ALLOW_SVG is set, which the runner sets only for
-- generated sections: their text comes from the scripts' chart helper, not
-- from a model.
local M = {}

local function escape(s)
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end
M.escape = escape

local SAFE_URL = { "^https?://", "^mailto:", "^#" }

local function safe_url(url)
  for _, p in ipairs(SAFE_URL) do
    if url:find(p) then return true end
  end
  return false
end

-- Inline markup of one escaped line of text.
local function inline(text)
  local codes = {}
  -- Code spans first, so that nothing inside them is touched.
  text = text:gsub("`([^`]+)`", function(code)
    codes[#codes + 1] = "<code>" .. escape(code) .. "</code>"
    return "\1" .. #codes .. "\2"
  end)
  text = escape(text)
  text = text:gsub("%[([^%]]+)%]%(([^%)%s]+)%)", function(label, url)
    local raw = url:gsub("&amp;", "&")
    if not safe_url(raw) then return label end
    return '<a href="' .. url .. '">' .. label .. "</a>"
  end)
  text = text:gsub("%*%*(.-)%*%*", "<strong>%1</strong>")
  text = text:gsub("__([^_]+)__", "<strong>%1</strong>")
  text = text:gsub("%*([^%*%s][^%*]-)%*", "<em>%1</em>")
  text = text:gsub("\1(%d+)\2", function(i) return codes[tonumber(i)] end)
  return text
end
M.inline = inline

local function split_lines(text)
  local lines = {}
  text = text:gsub("\r\n", "\n")
  for line in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  return lines
end

local function is_blank(line) return not line:find("%S") end

local function table_cells(line)
  line = line:gsub("^%s*|", ""):gsub("|%s*$", "")
  local cells = {}
  -- "\|" is a literal bar inside a cell.
  line = line:gsub("\\|", "\3")
  for cell in (line .. "|"):gmatch("(.-)|") do
    cells[#cells + 1] = (cell:gsub("\3", "|"):match("^%s*(.-)%s*$"))
  end
  return cells
end

local function is_table_separator(line)
  return line and line:match("^%s*|?%s*:?%-+:?%s*|") ~= nil and not line:find("[^%s|:%-]")
end

local function list_marker(line)
  local indent, marker, rest = line:match("^(%s*)([%-%*%+])%s+(.*)$")
  if indent then return #indent, "ul", rest end
  indent, marker, rest = line:match("^(%s*)(%d+)[%.%)]%s+(.*)$")
  if indent then return #indent, "ol", rest, tonumber(marker) end
  return nil
end

local render_blocks

-- A list starting at line I; returns the HTML and the next line.
local function render_list(lines, i, opts)
  local base, kind, _, start = list_marker(lines[i])
  local out = {}
  local open = kind == "ol" and start and start ~= 1 and ('<ol start="' .. start .. '">') or
      ("<" .. kind .. ">")
  out[#out + 1] = open
  while i <= #lines do
    local indent, k, rest = list_marker(lines[i])
    if not indent or indent < base or (indent == base and k ~= kind) then break end
    if indent > base then break end
    -- The item: its first line, continuation lines, and a nested list.
    local item = { rest }
    i = i + 1
    local nested = {}
    while i <= #lines do
      local line = lines[i]
      if is_blank(line) then
        local nxt = lines[i + 1]
        local ni = nxt and list_marker(nxt)
        if ni and ni >= base then
          i = i + 1
        else
          break
        end
      else
        local ni = list_marker(line)
        if ni and ni <= base then break end
        if ni and ni > base then
          local html
          html, i = render_list(lines, i, opts)
          nested[#nested + 1] = html
        elseif line:match("^%s+") then
          item[#item + 1] = line:match("^%s*(.-)%s*$")
          i = i + 1
        else
          break
        end
      end
    end
    out[#out + 1] = "<li>" .. inline(table.concat(item, " ")) .. table.concat(nested) .. "</li>"
  end
  out[#out + 1] = "</" .. kind .. ">"
  return table.concat(out, "\n"), i
end

local function render_table(lines, i)
  local head = table_cells(lines[i])
  local aligns = {}
  for j, cell in ipairs(table_cells(lines[i + 1])) do
    local left, right = cell:sub(1, 1) == ":", cell:sub(-1) == ":"
    aligns[j] = (left and right) and "center" or (right and "right") or (left and "left") or nil
  end
  local function row(cells, tag)
    local out = {}
    for j, cell in ipairs(cells) do
      local a = aligns[j] and (' style="text-align:' .. aligns[j] .. '"') or ""
      out[#out + 1] = "<" .. tag .. a .. ">" .. inline(cell) .. "</" .. tag .. ">"
    end
    return "<tr>" .. table.concat(out) .. "</tr>"
  end
  local out = { "<table>", "<thead>" .. row(head, "th") .. "</thead>", "<tbody>" }
  i = i + 2
  while i <= #lines and lines[i]:match("^%s*|") do
    out[#out + 1] = row(table_cells(lines[i]), "td")
    i = i + 1
  end
  out[#out + 1] = "</tbody>"
  out[#out + 1] = "</table>"
  return table.concat(out, "\n"), i
end

render_blocks = function(lines, opts)
  local out = {}
  local para = {}
  local function flush()
    if #para > 0 then
      out[#out + 1] = "<p>" .. inline(table.concat(para, " ")) .. "</p>"
      para = {}
    end
  end
  local i = 1
  while i <= #lines do
    local line = lines[i]
    local level, heading = line:match("^(#+)%s+(.-)%s*#*%s*$")
    if is_blank(line) then
      flush()
      i = i + 1
    elseif opts.allow_svg and line:match("^%s*<svg[%s>]") then
      flush()
      local block = {}
      while i <= #lines do
        block[#block + 1] = lines[i]
        i = i + 1
        if block[#block]:find("</svg>", 1, true) then break end
      end
      out[#out + 1] = '<figure class="chart">' .. table.concat(block, "\n") .. "</figure>"
    elseif level and #level <= 6 then
      flush()
      local n = math.min(6, #level + (opts.shift or 0))
      out[#out + 1] = string.format("<h%d>%s</h%d>", n, inline(heading), n)
      i = i + 1
    elseif line:match("^%s*[%-%*_]%s*[%-%*_]%s*[%-%*_][%s%-%*_]*$") and not list_marker(line) then
      flush()
      out[#out + 1] = "<hr>"
      i = i + 1
    elseif line:match("^%s*|") and is_table_separator(lines[i + 1]) then
      flush()
      local html
      html, i = render_table(lines, i)
      out[#out + 1] = html
    elseif list_marker(line) then
      flush()
      local html
      html, i = render_list(lines, i, opts)
      out[#out + 1] = html
    elseif line:match("^%s*>") then
      flush()
      local quoted = {}
      while i <= #lines and lines[i]:match("^%s*>") do
        quoted[#quoted + 1] = lines[i]:gsub("^%s*>%s?", "")
        i = i + 1
      end
      out[#out + 1] = "<blockquote>" .. render_blocks(quoted, opts) .. "</blockquote>"
    else
      para[#para + 1] = line:match("^%s*(.-)%s*$")
      i = i + 1
    end
  end
  flush()
  return table.concat(out, "\n")
end

-- OPTS: allow_svg (pass <svg> blocks through), shift (add to heading levels).
function M.to_html(text, opts)
  return render_blocks(split_lines(text or ""), opts or {})
end

return M
