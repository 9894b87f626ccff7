-- The knowledge base (kb/): Markdown documents with front matter, KPI benchmarks
-- (`benchmark { ... }` entries in kb/*.lua) and the agent catalogue (`agent { ... }`
-- entries in kb/*.lua). Loaded and validated once per generation; assessment
-- scripts see it through read-only views (`kb` in their environment).
local problems = GEN_MODULE("problems")
local sandbox = GEN_MODULE("sandbox")
local frontmatter = GEN_MODULE("frontmatter")

local kb = {}

local DOC_SCHEMA = { id = "string", title = "string", area = "string", tags = "list" }
local DOC_ID = "^[a-z][a-z0-9%-]*$"
local AREA_ID = "^[a-z][a-z0-9_]*$"
local BAND_BOUNDS = { "at_most", "below", "at_least", "above" }

local BENCHMARK_FIELDS = {
  id = true, name = true, unit = true, definition = true, better = true,
  figures = true, sources = true, bands = true, note = true,
}
local AGENT_FIELDS = {
  id = true, name = true, area = true, automates = true, prerequisites = true, kpi = true,
}

local function sorted_keys(set)
  local keys = {}
  for k in pairs(set) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

local function check_unknown_fields(entry, known, errors, path, line, what)
  for key in pairs(entry) do
    if not known[key] then
      errors:add(path, line, "%s: unknown field %s (known fields: %s)", what,
        problems.show(key), table.concat(sorted_keys(known), ", "))
    end
  end
end

local function nonempty_string(v)
  return type(v) == "string" and v:match("%S") ~= nil
end

local function string_list(v)
  if type(v) ~= "table" or #v == 0 then
    return false
  end
  for i = 1, #v do
    if not nonempty_string(v[i]) then
      return false
    end
  end
  return true
end

-- Benchmark bands: a list read top to bottom, the first band that holds the
-- value wins. Each band has one bound (at_most, below, at_least or above) or
-- `otherwise = true` (the last band), a score 1-5 and a label.
local function check_bands(b, errors, path, line)
  local what = string.format("benchmark '%s'", b.id)
  if type(b.bands) ~= "table" or #b.bands == 0 then
    errors:add(path, line, "%s: bands must be a list of { at_most = N, score = S, label = \"...\" } entries", what)
    return
  end
  local previous
  for i, band in ipairs(b.bands) do
    local where = string.format("%s, band %d", what, i)
    if type(band) ~= "table" then
      errors:add(path, line, "%s must be a table (got %s)", where, problems.show(band))
      return
    end
    local bound_key, count = nil, 0
    for _, key in ipairs(BAND_BOUNDS) do
      if band[key] ~= nil then
        bound_key, count = key, count + 1
      end
    end
    if band.otherwise ~= nil then
      count = count + 1
    end
    for key in pairs(band) do
      if key ~= "score" and key ~= "label" and key ~= "otherwise" and key ~= "at_most"
          and key ~= "below" and key ~= "at_least" and key ~= "above" then
        errors:add(path, line, "%s: unknown field %s (known: at_most, below, at_least, above, otherwise, score, label)",
          where, problems.show(key))
      end
    end
    if count ~= 1 then
      errors:add(path, line, "%s needs exactly one of at_most, below, at_least, above or otherwise = true", where)
    elseif band.otherwise ~= nil then
      if band.otherwise ~= true then
        errors:add(path, line, "%s: otherwise must be true", where)
      elseif i ~= #b.bands then
        errors:add(path, line, "%s: the 'otherwise' band must be the last one", where)
      end
    else
      local bound = band[bound_key]
      if type(bound) ~= "number" then
        errors:add(path, line, "%s: %s must be a number (got %s)", where, bound_key, problems.show(bound))
      else
        local lower_is_better = bound_key == "at_most" or bound_key == "below"
        if (b.better == "lower") ~= lower_is_better then
          errors:add(path, line, "%s: a benchmark where %s is better uses %s", where, b.better,
            b.better == "lower" and "at_most or below" or "at_least or above")
        elseif previous and ((lower_is_better and bound < previous) or (not lower_is_better and bound > previous)) then
          errors:add(path, line, "%s: bounds must run from the best band to the worst (%s after %s)",
            where, tostring(bound), tostring(previous))
        end
        previous = bound
      end
    end
    if type(band.score) ~= "number" or band.score < 1 or band.score > 5 then
      errors:add(path, line, "%s: score must be a number from 1 to 5 (got %s)", where, problems.show(band.score))
    end
    if not nonempty_string(band.label) then
      errors:add(path, line, "%s: label must be a short text such as \"top quartile\"", where)
    end
  end
  if b.bands[#b.bands] and b.bands[#b.bands].otherwise ~= true then
    errors:add(path, line, "%s: the last band must be { otherwise = true, ... } so every value falls in a band", what)
  end
end

local function check_benchmark(b, errors, path, line)
  local what = string.format("benchmark %s", problems.show(b.id))
  check_unknown_fields(b, BENCHMARK_FIELDS, errors, path, line, what)
  if type(b.id) ~= "string" or not b.id:match(AREA_ID) then
    errors:add(path, line, "benchmark id must be lowercase letters, digits and '_' (got %s)", problems.show(b.id))
  end
  for _, key in ipairs({ "name", "unit", "definition", "figures" }) do
    if not nonempty_string(b[key]) then
      errors:add(path, line, "%s: %s must be a text (got %s)", what, key, problems.show(b[key]))
    end
  end
  if b.better ~= "lower" and b.better ~= "higher" then
    errors:add(path, line, "%s: better must be \"lower\" or \"higher\" (got %s)", what, problems.show(b.better))
  end
  if not string_list(b.sources) then
    errors:add(path, line, "%s: sources must be a list of texts naming where the figures come from", what)
  end
  if b.bands ~= nil then
    check_bands(b, errors, path, line)
  end
end

local function check_agent(a, errors, path, line)
  local what = string.format("agent %s", problems.show(a.id))
  check_unknown_fields(a, AGENT_FIELDS, errors, path, line, what)
  if type(a.id) ~= "string" or not a.id:match("^[a-z][a-z0-9%-]*%-agent$") then
    errors:add(path, line, "agent id must be lowercase words joined by '-' ending in '-agent' (got %s)", problems.show(a.id))
  end
  if not nonempty_string(a.name) or not a.name:match("%f[%w]Agent$") then
    errors:add(path, line, "%s: name must end with the word 'Agent', e.g. \"Cash Matching Agent\" (got %s); reports are checked for agent names outside the catalogue",
      what, problems.show(a.name))
  end
  for _, key in ipairs({ "area", "automates", "kpi" }) do
    if not nonempty_string(a[key]) then
      errors:add(path, line, "%s: %s must be a text (got %s)", what, key, problems.show(a[key]))
    end
  end
  if not string_list(a.prerequisites) then
    errors:add(path, line, "%s: prerequisites must be a list of texts (what must be in place first)", what)
  end
end

local function load_doc(file, errors)
  local doc = frontmatter.parse(file.text, file.path, errors, DOC_SCHEMA)
  if not doc then
    return nil
  end
  local meta, lines = doc.meta, doc.meta_lines
  if meta.id and not meta.id:match(DOC_ID) then
    errors:add(file.path, lines.id, "id must be lowercase letters, digits and '-' (got %q)", meta.id)
  end
  if meta.area and not meta.area:match(AREA_ID) then
    errors:add(file.path, lines.area, "area must be an area id such as credit or cash_application (got %q)", meta.area)
  end
  if doc.body == "" then
    errors:add(file.path, doc.body_line, "the document has no text after its front matter")
  end
  local sections = {}
  for i, s in ipairs(doc.sections) do
    local bullets = {}
    for j, b in ipairs(s.bullets) do
      bullets[j] = b.text
    end
    sections[i] = { heading = s.heading, text = s.text, bullets = bullets }
  end
  local section = {}
  for i, s in ipairs(doc.sections) do
    section[s.heading:lower()] = sections[i]
  end
  -- "## Moves by level" holds bullets "Level 3: ..." read by report drafts.
  local moves, moves_line
  local moves_section = doc.section["moves by level"]
  if moves_section then
    moves, moves_line = {}, moves_section.line
    for _, b in ipairs(moves_section.bullets) do
      local level, text = b.text:match("^%**Level%s+(%d)%**%s*[:.%-]%**%s*(.+)$")
      level = tonumber(level)
      if not level or level < 2 or level > 5 then
        errors:add(file.path, b.line, "a 'Moves by level' bullet reads '- Level N: what to do' with N from 2 to 5")
      elseif moves[level] then
        moves[level] = moves[level] .. " " .. text
      else
        moves[level] = text
      end
    end
  end
  return {
    id = meta.id, title = meta.title, area = meta.area, tags = meta.tags or {},
    path = file.path, line = lines.id or 1,
    heading = doc.title, intro = doc.intro, body = doc.body,
    sections = sections, section = section, moves = moves, moves_line = moves_line,
  }
end

-- Runs the kb/*.lua files: each may call benchmark { ... } and agent { ... }.
local function load_lua(file, errors, found)
  local function recorder(kind)
    return function(entry)
      local path, line = problems.here(2)
      if type(entry) ~= "table" then
        error(string.format("%s { ... } expects a table (got %s)", kind, problems.show(entry)), 2)
      end
      found[#found + 1] = { kind = kind, entry = entry, path = path or file.path, line = line }
    end
  end
  local env = sandbox.env({ benchmark = recorder("benchmark"), agent = recorder("agent") })
  local chunk, message = sandbox.load(file.text, file.path, env)
  if not chunk then
    errors:add_raised(file.path, message)
    return
  end
  local ok, err = pcall(chunk)
  if not ok then
    errors:add_raised(file.path, err)
  end
end

-- kb.load(files, errors) -> the KB. files: { {path=, rel=, text=} } under kb/.
-- README.md files are documentation about the KB, not KB documents.
function kb.load(files, errors)
  local K = {
    docs = {}, doc_by_id = {}, docs_by_area = {}, areas = {},
    benchmarks = {}, benchmark_by_id = {}, agents = {}, agent_by_id = {},
  }
  local found = {}
  table.sort(files, function(a, b) return a.path < b.path end)
  for _, file in ipairs(files) do
    local name = file.rel:match("([^/]+)$") or file.rel
    if name:match("%.md$") and name:upper() ~= "README.MD" then
      local doc = load_doc(file, errors)
      if doc and doc.id then
        local first = K.doc_by_id[doc.id]
        if first then
          errors:add(doc.path, doc.line, "KB document id '%s' is already used by %s", doc.id, first.path)
        else
          K.docs[#K.docs + 1] = doc
          K.doc_by_id[doc.id] = doc
          if doc.area then
            K.areas[doc.area] = true
            local list = K.docs_by_area[doc.area] or {}
            list[#list + 1] = doc
            K.docs_by_area[doc.area] = list
          end
        end
      end
    elseif name:match("%.lua$") then
      load_lua(file, errors, found)
    end
  end
  for _, f in ipairs(found) do
    local entry = f.entry
    if f.kind == "benchmark" then
      check_benchmark(entry, errors, f.path, f.line)
      if type(entry.id) == "string" then
        if K.benchmark_by_id[entry.id] then
          errors:add(f.path, f.line, "benchmark id '%s' is already used at line %d", entry.id, K.benchmark_by_id[entry.id].line)
        else
          local b = sandbox.copy(entry)
          b.path, b.line = f.path, f.line
          b.source = type(entry.sources) == "table" and table.concat(entry.sources, "; ") or nil
          K.benchmarks[#K.benchmarks + 1] = b
          K.benchmark_by_id[entry.id] = b
        end
      end
    else
      check_agent(entry, errors, f.path, f.line)
      if type(entry.id) == "string" then
        if K.agent_by_id[entry.id] then
          errors:add(f.path, f.line, "agent id '%s' is already used at line %d", entry.id, K.agent_by_id[entry.id].line)
        else
          local a = sandbox.copy(entry)
          a.path, a.line = f.path, f.line
          K.agents[#K.agents + 1] = a
          K.agent_by_id[entry.id] = a
        end
      end
    end
  end
  for _, a in ipairs(K.agents) do
    if type(a.area) == "string" and not K.areas[a.area] then
      errors:add(a.path, a.line, "agent '%s': area '%s' has no KB document (areas with documents: %s)",
        a.id, a.area, table.concat(sorted_keys(K.areas), ", "))
    end
    if type(a.kpi) == "string" and not K.benchmark_by_id[a.kpi] then
      errors:add(a.path, a.line, "agent '%s': kpi '%s' is not a benchmark id in kb/ (known: %s)",
        a.id, a.kpi, table.concat(sorted_keys(K.benchmark_by_id), ", "))
    end
  end
  -- Longest names first, so "Cash Matching Agent" wins over a shorter suffix.
  K.agent_names = {}
  for _, a in ipairs(K.agents) do
    if type(a.name) == "string" then
      K.agent_names[#K.agent_names + 1] = a
    end
  end
  table.sort(K.agent_names, function(x, y)
    if #x.name ~= #y.name then
      return #x.name > #y.name
    end
    return x.name < y.name
  end)
  return K
end

-- Words that may stand before "Agent" without making it a name ("The Agent ...").
local NOT_A_NAME = {
  A = true, An = true, The = true, This = true, That = true, Each = true, Every = true,
  One = true, Our = true, Your = true, Any = true, No = true, Which = true,
}

-- agent_mentions(K, text) -> known, unknown
--   known:   ids of catalogue agents the text names (by name or id), sorted
--   unknown: names or ids that look like agents but are not in the catalogue
-- A name is a capitalised phrase ending in the word "Agent" ("Cash Matching
-- Agent"); an id is a word ending in "-agent" ("cash-matching-agent").
function kb.agent_mentions(K, text)
  local known, unknown, seen = {}, {}, {}
  local function add(list, value)
    if not seen[value] then
      seen[value] = true
      list[#list + 1] = value
    end
  end
  for id in text:gmatch("%f[%w][%w][%w%-]*%-agent%f[^%w%-]") do
    if K.agent_by_id[id] then
      add(known, id)
    else
      add(unknown, id)
    end
  end
  for pos in text:gmatch("()%f[%w]Agent%f[%W]") do
    local matched
    for _, a in ipairs(K.agent_names) do
      local start = pos + 5 - #a.name
      if start >= 1 and text:sub(start, pos + 4) == a.name then
        matched = a
        break
      end
    end
    -- A catalogue name preceded by another capitalised word inside a sentence
    -- ("the Super Dunning Agent") is a different, invented name.
    local longer
    if matched then
      local before = text:sub(1, pos + 4 - #matched.name)
      local word = before:match("(%u[%w%-]*) $")
      if word and not NOT_A_NAME[word] then
        local head = before:sub(1, #before - #word - 1)
        if head ~= "" and not head:match("[%.!?:;\n%-%*#>(%[]%s*$") then
          longer = word .. " " .. matched.name
        end
      end
    end
    if matched and not longer then
      add(known, matched.id)
    elseif longer then
      add(unknown, longer)
    else
      local before = text:sub(math.max(1, pos - 60), pos - 1)
      local word = before:match("([%w%-]+)[%s%*_]*$")
      if word and word:match("^%u") and not NOT_A_NAME[word] then
        local phrase = before:match("(%u[%w%-]*[%s%*_]+[%w%-]+)[%s%*_]*$") or word
        add(unknown, (phrase:gsub("[%*_]", "") .. " Agent"))
      end
    end
  end
  table.sort(known)
  return known, unknown
end

-- The read-only view scripts get as `kb`.
function kb.view(K)
  local ro = sandbox.readonly
  local view = {
    docs = ro(K.docs),
    agents = ro(K.agents),
    benchmarks = ro(K.benchmarks),
  }
  function view.doc(id)
    return ro(K.doc_by_id[id])
  end
  function view.docs_for_area(area)
    return ro(K.docs_by_area[area] or {})
  end
  function view.agent(id)
    return ro(K.agent_by_id[id])
  end
  function view.agents_for_area(area)
    local list = {}
    for _, a in ipairs(K.agents) do
      if a.area == area then
        list[#list + 1] = a
      end
    end
    return ro(list)
  end
  function view.benchmark(id)
    return ro(K.benchmark_by_id[id])
  end
  function view.agent_mentions(text)
    return kb.agent_mentions(K, text)
  end
  return ro(view)
end

-- The JSON-able summary for gen:kb() and /api/v1/status.
function kb.summary(K)
  local docs, agents, benchmarks = {}, {}, {}
  for i, d in ipairs(K.docs) do
    docs[i] = { id = d.id, title = d.title, area = d.area, tags = sandbox.copy(d.tags), path = d.path }
  end
  for i, a in ipairs(K.agents) do
    agents[i] = {
      id = a.id, name = a.name, area = a.area, automates = a.automates,
      prerequisites = sandbox.copy(a.prerequisites), kpi = a.kpi,
    }
  end
  for i, b in ipairs(K.benchmarks) do
    benchmarks[i] = {
      id = b.id, name = b.name, unit = b.unit, better = b.better, definition = b.definition,
      figures = b.figures, sources = sandbox.copy(b.sources), banded = b.bands ~= nil,
    }
  end
  return { docs = docs, agents = agents, benchmarks = benchmarks }
end

return kb
