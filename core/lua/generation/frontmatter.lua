-- Markdown documents with a small front matter, as used by kb/*.md:
--
--   ---
--   id: billing
--   title: Billing and invoicing
--   area: billing
--   tags: [invoicing, e-invoicing]
--   ---
--   # Billing and invoicing
--   Intro paragraph.
--   ## What good looks like
--   - ...
--
-- Front matter lines are `key: value` or `key: [a, b, c]`; blank lines and lines
-- starting with `#` are ignored. The parser is strict: an unknown or repeated key,
-- a line without a colon or a missing closing `---` is an error at its line.
local frontmatter = {}

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function unquote(s)
  local inner = s:match('^"(.*)"$') or s:match("^'(.*)'$")
  return inner or s
end

-- Splits text into lines, keeping their numbers (1-based).
local function lines_of(text)
  local lines = {}
  for line in (text:gsub("\r\n", "\n") .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = line
  end
  return lines
end

-- parse(text, path, errors, schema) -> doc or nil
--   schema: { key = "string" | "list", ... } the keys allowed; all are required.
--   errors: a problems collector; every problem names path:line.
-- doc = { meta = {key = value}, meta_lines = {key = line}, title = "# heading",
--         intro = "text before the first ## heading",
--         sections = { {heading=, line=, text=, bullets={...}} },
--         section = { [lowercase heading] = section }, body = "...", body_line = n }
function frontmatter.parse(text, path, errors, schema)
  local lines = lines_of(text)
  if lines[1] ~= "---" then
    errors:add(path, 1, "a KB document starts with a front matter block: a line '---', then lines 'key: value', then '---'")
    return nil
  end
  local meta, meta_lines = {}, {}
  local closing
  for n = 2, #lines do
    local line = lines[n]
    if line == "---" then
      closing = n
      break
    end
    local stripped = trim(line)
    if stripped ~= "" and stripped:sub(1, 1) ~= "#" then
      local key, value = line:match("^([%a_][%w_]*):%s*(.-)%s*$")
      if not key then
        errors:add(path, n, "expected 'key: value' in the front matter (got %s)", string.format("%q", line))
      elseif not schema[key] then
        local known = {}
        for k in pairs(schema) do
          known[#known + 1] = k
        end
        table.sort(known)
        errors:add(path, n, "unknown front matter key '%s' (known keys: %s)", key, table.concat(known, ", "))
      elseif meta[key] ~= nil then
        errors:add(path, n, "front matter key '%s' appears twice (first at line %d)", key, meta_lines[key])
      elseif schema[key] == "list" then
        local inner = value:match("^%[(.*)%]$")
        if not inner then
          errors:add(path, n, "'%s' must be a list like [a, b, c] (got %q)", key, value)
        else
          local list = {}
          for item in (inner .. ","):gmatch("([^,]*),") do
            item = unquote(trim(item))
            if item == "" then
              if trim(inner) ~= "" then
                errors:add(path, n, "'%s' has an empty item; write [a, b, c]", key)
              end
            else
              list[#list + 1] = item
            end
          end
          meta[key], meta_lines[key] = list, n
        end
      else
        value = unquote(value)
        if value == "" then
          errors:add(path, n, "'%s' needs a value", key)
        end
        meta[key], meta_lines[key] = value, n
      end
    end
  end
  if not closing then
    errors:add(path, 1, "the front matter is not closed: add a line '---' after the last 'key: value' line")
    return nil
  end
  local keys = {}
  for key in pairs(schema) do
    keys[#keys + 1] = key
  end
  table.sort(keys)
  for _, key in ipairs(keys) do
    if meta[key] == nil then
      errors:add(path, 1, "the front matter needs '%s: ...'", key)
    end
  end
  local doc = { meta = meta, meta_lines = meta_lines, sections = {}, section = {}, body_line = closing + 1 }
  local body, intro, current = {}, {}, nil
  for n = closing + 1, #lines do
    local line = lines[n]
    body[#body + 1] = line
    local h1 = line:match("^#%s+(.-)%s*$")
    local h2 = line:match("^##%s+(.-)%s*$")
    if h2 then
      current = { heading = h2, line = n, lines = {} }
      doc.sections[#doc.sections + 1] = current
      local key = h2:lower()
      if doc.section[key] then
        errors:add(path, n, "heading '## %s' appears twice (first at line %d)", h2, doc.section[key].line)
      end
      doc.section[key] = current
    elseif h1 and not doc.title and not current then
      doc.title = h1
    elseif current then
      current.lines[#current.lines + 1] = { text = line, line = n }
    else
      intro[#intro + 1] = line
    end
  end
  doc.body = trim(table.concat(body, "\n"))
  doc.intro = trim(table.concat(intro, "\n"))
  for _, section in ipairs(doc.sections) do
    local texts, bullets = {}, {}
    for _, l in ipairs(section.lines) do
      texts[#texts + 1] = l.text
      local item = l.text:match("^[-*]%s+(.*)$")
      if item then
        bullets[#bullets + 1] = { text = trim(item), line = l.line }
      elseif bullets[#bullets] and l.text:match("^%s%s+%S") then
        -- an indented line continues the bullet above it
        local last = bullets[#bullets]
        last.text = last.text .. " " .. trim(l.text)
      end
    end
    section.text = trim(table.concat(texts, "\n"))
    section.bullets = bullets
  end
  return doc
end

return frontmatter
