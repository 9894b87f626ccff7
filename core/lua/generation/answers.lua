-- Answers at run time: unwrapping {value=, note=}, which questions are visible,
-- validating an answer set, resolving targets and scoring. All functions take the
-- compiled type T built by loader.lua. score() is on the API's hot path (every
-- preview request): it allocates only the result tables and what visibility needs.
local problems = GEN_MODULE("problems")
local text = GEN_MODULE("text")

local answers = {}

local NA = "na"
local MAX_NOTE = 2000

-- Answer values without their notes. When no answer is wrapped (the usual case
-- for a preview), the input table itself is returned: no copy.
function answers.values(raw)
  if type(raw) ~= "table" then
    return {}, nil
  end
  local wrapped = false
  for _, v in pairs(raw) do
    if type(v) == "table" and (v.value ~= nil or v.note ~= nil) then
      wrapped = true
      break
    end
  end
  if not wrapped then
    return raw, nil
  end
  local values, notes = {}, {}
  for k, v in pairs(raw) do
    if type(v) == "table" and (v.value ~= nil or v.note ~= nil) then
      values[k] = v.value
      if type(v.note) == "string" and v.note ~= "" then
        notes[k] = v.note
      end
    else
      values[k] = v
    end
  end
  return values, notes
end

-- Which questions are visible for these values: a map id -> true, and the
-- questions hidden only because the client has not answered yet: a map
-- id -> the id of the earlier question still to answer ("waiting").
-- Questions are walked in questionnaire order; visible_if(a) sees only the
-- answers of earlier visible questions ("the answers so far"), so hiding a
-- question also hides the questions that depend on it. A question is waiting
-- when its visible_if, returning false, read an earlier question that is shown
-- but unanswered (or itself waiting): answering that one may show it. Any
-- other hidden question was hidden by what the client answered.
-- A visible_if that fails at run time shows its question (the error was
-- already caught at load time for the empty answer set; hiding data silently
-- would be worse).
-- When nothing is hidden the answer is T.all_visible itself (read only), and
-- the walk stops at the last conditional question: previews are the hot path.
local NONE_WAITING = setmetatable({}, { __newindex = function() error("read-only", 2) end })

function answers.visible(T, values)
  if #T.conditional == 0 then
    return T.all_visible, NONE_WAITING
  end
  local questions = T.model.questions
  local by_id = T.model.question_by_id
  local seen, hidden, waiting = {}, nil, nil
  local index, gate = 0, nil
  -- Fires only for keys absent from `seen`: unanswered, hidden or unknown.
  setmetatable(seen, { __index = function(_, key)
    local q = by_id[key]
    if gate == nil and q and q.index < index then
      if hidden and hidden[key] then
        gate = waiting and waiting[key] or nil
      elseif values[key] == nil then
        gate = key
      end
    end
    return nil
  end })
  for i = 1, T.last_conditional do
    local q = questions[i]
    local shown = true
    if q.visible_if then
      index, gate = q.index, nil
      local ok, result = pcall(q.visible_if, seen)
      shown = not ok or (result and true or false)
    end
    if shown then
      rawset(seen, q.id, values[q.id])
    else
      hidden = hidden or {}
      hidden[q.id] = true
      if gate then
        waiting = waiting or {}
        waiting[q.id] = gate
      end
    end
  end
  if not hidden then
    return T.all_visible, NONE_WAITING
  end
  local visible = {}
  for i = 1, #questions do
    local id = questions[i].id
    if not hidden[id] then
      visible[id] = true
    end
  end
  return visible, waiting or NONE_WAITING
end

-- Targets as a map area id -> level 1-5: `targets` may be nil (the script's
-- defaults), one level for every area, or a map of some areas (others keep their
-- default). Invalid entries are ignored here; validate_targets reports them.
function answers.targets(T, targets)
  if targets == nil then
    return T.default_targets
  end
  if type(targets) == "number" then
    return T.uniform_targets[math.tointeger(targets)] or T.default_targets
  end
  if type(targets) ~= "table" then
    return T.default_targets
  end
  local resolved = {}
  for id, level in pairs(T.default_targets) do
    resolved[id] = level
  end
  for id, level in pairs(targets) do
    if resolved[id] and type(level) == "number" and level >= 1 and level <= 5 and level == math.floor(level) then
      resolved[id] = math.tointeger(level)
    end
  end
  return resolved
end

local function is_whole(x)
  return type(x) == "number" and x == math.floor(x)
end

function answers.validate_targets(T, targets)
  if targets == nil then
    return true
  end
  local errors = {}
  local function bad(field, fmt, ...)
    errors[#errors + 1] = { field = field, message = string.format(fmt, ...) }
  end
  if type(targets) == "number" then
    if not is_whole(targets) or targets < 1 or targets > 5 then
      bad("targets", "a target is a whole level from 1 to 5 (got %s)", problems.show(targets))
    end
  elseif type(targets) ~= "table" then
    bad("targets", "targets must be a level 1-5 for every area, or an object mapping area ids to levels (got %s)",
      problems.show(targets))
  else
    for id, level in pairs(targets) do
      local field = "targets." .. tostring(id)
      if not T.model.area_by_id[id] then
        bad(field, "unknown area id; areas are %s", T.area_list)
      elseif not is_whole(level) or level < 1 or level > 5 then
        bad(field, "a target is a whole level from 1 to 5 (got %s)", problems.show(level))
      end
    end
  end
  if #errors == 0 then
    return true
  end
  table.sort(errors, function(a, b) return a.field < b.field end)
  return nil, errors
end

local function quoted_list(choices)
  local ids = {}
  for i, c in ipairs(choices) do
    ids[i] = string.format("%q", c.id)
  end
  return table.concat(ids, ", ")
end

-- The field an answer's problem is reported under: "answers.dso", or
-- "answers.dso.value" when the answer came as {value=, note=}.  Built only
-- when there is a problem: validation is on every save and preview.
local function field_of(id, wrapped)
  return "answers." .. tostring(id) .. (wrapped and ".value" or "")
end

-- Checks one value against its question; reports problems through BAD.
local function check_value(q, value, id, wrapped, bad)
  if value == NA then
    if not q.na_allowed then
      bad(field_of(id, wrapped), '"not applicable" is not offered for this question; answer it or leave it out')
    end
    return
  end
  local na_hint = q.na_allowed and ' or "na"' or ""
  local kind = q.type
  if kind == "scale" then
    if type(value) ~= "number" or value < 1 or value > 5 or value ~= math.floor(value) then
      bad(field_of(id, wrapped), "expected a whole number from 1 to 5%s (got %s)", na_hint, problems.show(value))
    end
  elseif kind == "single" then
    if type(value) ~= "string" or not q.choice_by_id[value] then
      bad(field_of(id, wrapped), "expected one of %s%s (got %s)", quoted_list(q.choices), na_hint, problems.show(value))
    end
  elseif kind == "multi" then
    if type(value) ~= "table" then
      bad(field_of(id, wrapped), "expected a list of choice ids from %s (got %s)", quoted_list(q.choices),
        problems.show(value))
      return
    end
    local n, seen = 0, {}
    for _ in pairs(value) do
      n = n + 1
    end
    if n ~= #value then
      bad(field_of(id, wrapped), "expected a list (an array) of choice ids, not an object")
      return
    end
    for i, choice in ipairs(value) do
      if type(choice) ~= "string" or not q.choice_by_id[choice] then
        bad(string.format("%s[%d]", field_of(id, wrapped), i), "unknown choice %s; choices are %s",
          problems.show(choice), quoted_list(q.choices))
      elseif seen[choice] then
        bad(string.format("%s[%d]", field_of(id, wrapped), i), "choice %q is listed twice", choice)
      else
        seen[choice] = true -- only known choice ids (strings): never NaN as a key
      end
    end
  elseif kind == "kpi" then
    if type(value) ~= "number" or value ~= value or value == math.huge or value == -math.huge then
      bad(field_of(id, wrapped), "expected a number of %s from %s to %s%s (got %s)", q.unit, tostring(q.min),
        tostring(q.max), na_hint, problems.show(value))
    elseif value < q.min or value > q.max then
      bad(field_of(id, wrapped), "%s is outside the valid range %s to %s %s", tostring(value), tostring(q.min),
        tostring(q.max), q.unit)
    end
  elseif kind == "text" then
    if type(value) ~= "string" then
      bad(field_of(id, wrapped), "expected a text (got %s)", problems.show(value))
    elseif #value > q.max_length then
      bad(field_of(id, wrapped), "the text is %d bytes long; the limit is %d", #value, q.max_length)
    elseif text.problem(value) then
      bad(field_of(id, wrapped), text.problem(value))
    end
  end
end

-- true, or nil and { {field = "answers.dso", message = "..."} } sorted by field.
function answers.validate(T, raw)
  local errors = {}
  local function bad(field, fmt, ...)
    errors[#errors + 1] = { field = field, message = select("#", ...) > 0 and string.format(fmt, ...) or fmt }
  end
  if type(raw) ~= "table" then
    bad("answers", "answers must be an object mapping question ids to values (got %s)", problems.show(raw))
    return nil, errors
  end
  local question_by_id = T.model.question_by_id
  for id, answer in pairs(raw) do
    local q = question_by_id[id]
    if not q then
      bad(field_of(id), "unknown question id %s; question ids are listed in the questionnaire of %s",
        problems.show(id), T.id)
    else
      local value, wrapped = answer, false
      if type(answer) == "table" and (answer.value ~= nil or answer.note ~= nil) then
        local field = field_of(id)
        for key in pairs(answer) do
          if key ~= "value" and key ~= "note" then
            bad(field, "an answer object has only 'value' and 'note' (got %s)", problems.show(key))
          end
        end
        if answer.note ~= nil and type(answer.note) ~= "string" then
          bad(field .. ".note", "a note is a text (got %s)", problems.show(answer.note))
        elseif answer.note and #answer.note > MAX_NOTE then
          bad(field .. ".note", "the note is %d bytes long; the limit is %d", #answer.note, MAX_NOTE)
        elseif answer.note and text.problem(answer.note) then
          bad(field .. ".note", text.problem(answer.note))
        end
        value, wrapped = answer.value, true
      end
      if value ~= nil then
        check_value(q, value, id, wrapped, bad)
      end
    end
  end
  if #errors == 0 then
    return true
  end
  table.sort(errors, function(a, b)
    if a.field ~= b.field then
      return a.field < b.field
    end
    return a.message < b.message
  end)
  return nil, errors
end

-- The scores table (see scripts/<type>/scoring.lua for its shape and the roll-up).
function answers.score(T, raw, targets)
  local values = answers.values(raw)
  local visible, waiting = answers.visible(T, values)
  return T.scoring.score(T.model, values, visible, answers.targets(T, targets), waiting)
end

return answers
