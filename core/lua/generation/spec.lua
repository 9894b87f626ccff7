-- The spec harness behind `o2c test DIR`: busted-style describe / it /
-- before_each / after_each, a callable `assert`, and `expect(x)` matchers.
--
-- The host runs each spec file in a fresh generation state, in two steps, so
-- that an `it` that loops forever or eats memory is stopped alone (by the host's
-- instruction and memory budgets) and the next one still runs:
--   n, tests, errors = spec.collect(M, sources, spec_path)  -- runs describe bodies
--   result = spec.run(i)  -- for i = 1..n, each in its own protected call
--     -> { name=, ok=, failures = {{file=, line=, message=}}, assertions=, file=, line= }
--
-- Failures name the spec's own file:line: matchers raise a failure record that
-- carries the position of the line that called them (Lua adds "file:line:" to
-- error(msg, level) for any active frame; `debug` is not needed).
--
-- Inside a spec:
--   require "scoring"              the type's own module (same cache as the build)
--   assessment.default()           the assessment built from the sources as they are
--   assessment.load(overrides)     rebuilt with some files replaced: returns a handle,
--                                  or nil, errors, "file:line: message" lines
--       overrides = { ["scoring.lua"] = "new text" | function(old) return new end | false,
--                     ["kb/agents.lua"] = ... }
--   assessment.example("laggard")  examples/laggard.json, decoded
--   assessment.source("scoring.lua")  a file's text (to compute line numbers)
--   handle:score(answers, targets), :visible(answers), :validate_answers(answers),
--   :validate_targets(t), :questionnaire(), :report_plan(), :context(answers, targets),
--   :section_prompt(id, ctx), :section_draft(id, ctx), :section_check(id, text, ctx),
--   :section_render(id, ctx), :kb(), :question(id), :agent_mentions(text), handle.model
local problems = GEN_MODULE("problems")
local sandbox = GEN_MODULE("sandbox")

local spec = {}

local state = { tests = {}, assertions = 0 }

---------------------------------------------------------------------------
-- values in messages
---------------------------------------------------------------------------

local function show(value, depth)
  depth = depth or 0
  local kind = type(value)
  if kind == "string" then
    local s = value
    if #s > 120 then
      s = s:sub(1, 117) .. "..."
    end
    return string.format("%q", s)
  elseif kind ~= "table" then
    return tostring(value)
  end
  if depth >= 2 then
    return "{...}"
  end
  local parts, n = {}, #value
  for i = 1, n do
    parts[#parts + 1] = show(value[i], depth + 1)
  end
  local keys = {}
  for k in pairs(value) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. show(k) .. "]"
    parts[#parts + 1] = key .. " = " .. show(value[k], depth + 1)
  end
  local s = "{" .. table.concat(parts, ", ") .. "}"
  if #s > 300 then
    s = s:sub(1, 297) .. "...}"
  end
  return s
end

-- Deep equality; on a difference returns false and the path where it is.
local function deep_equal(a, b, path)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false, path
  end
  for k, v in pairs(a) do
    local ok, where = deep_equal(v, b[k], path .. "[" .. show(k) .. "]")
    if not ok then
      return false, where
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false, path .. "[" .. show(k) .. "]"
    end
  end
  return true
end

---------------------------------------------------------------------------
-- assertions
---------------------------------------------------------------------------

-- Raises a failure at the spec line that called the matcher: level 1 is this
-- function, 2 the matcher, 3 the spec (matchers call verify as a statement,
-- never as a tail call, so the frames stay in place).
local function verify(pass, fmt, ...)
  state.assertions = state.assertions + 1
  if pass then
    return
  end
  local file, line = problems.here(3)
  error({ spec_failure = true, file = file, line = line, message = string.format(fmt, ...) }, 0)
end

local function expectation(actual, negated)
  local e = {}
  local function expect_that(pass, fmt, ...)
    if negated then
      pass = not pass
      fmt = "not: " .. fmt
    end
    return pass, fmt, ...
  end

  function e.to_equal(expected)
    local same, where = deep_equal(actual, expected, "")
    local detail = (not same and where ~= "") and (" (first difference at " .. where .. ")") or ""
    verify(expect_that(same, "expected %s to equal %s%s", show(actual), show(expected), detail))
  end
  function e.to_be(expected)
    verify(expect_that(rawequal(actual, expected), "expected %s to be %s", show(actual), show(expected)))
  end
  function e.to_be_near(expected, eps)
    eps = eps or 1e-9
    local pass = type(actual) == "number" and type(expected) == "number" and math.abs(actual - expected) <= eps
    verify(expect_that(pass, "expected %s to be within %s of %s", show(actual), tostring(eps), show(expected)))
  end
  function e.to_be_truthy()
    verify(expect_that(actual and true or false, "expected %s to be truthy", show(actual)))
  end
  function e.to_be_falsy()
    verify(expect_that(not actual, "expected %s to be false or nil", show(actual)))
  end
  function e.to_be_nil()
    verify(expect_that(actual == nil, "expected %s to be nil", show(actual)))
  end
  function e.to_be_a(kind)
    local actual_kind = math.type(actual) == "integer" and kind == "integer" and "integer" or type(actual)
    verify(expect_that(actual_kind == kind, "expected a %s, got %s", kind, show(actual)))
  end
  local function compare(name, op)
    return function(limit)
      local pass = type(actual) == "number" and type(limit) == "number" and op(actual, limit)
      verify(expect_that(pass, "expected %s to be %s %s", show(actual), name, show(limit)))
    end
  end
  e.to_be_less_than = compare("less than", function(a, b) return a < b end)
  e.to_be_greater_than = compare("greater than", function(a, b) return a > b end)
  e.to_be_at_most = compare("at most", function(a, b) return a <= b end)
  e.to_be_at_least = compare("at least", function(a, b) return a >= b end)
  function e.to_contain(item)
    local pass = false
    if type(actual) == "string" and type(item) == "string" then
      pass = actual:find(item, 1, true) ~= nil
    elseif type(actual) == "table" then
      for _, v in pairs(actual) do
        if deep_equal(v, item, "") then
          pass = true
          break
        end
      end
    end
    verify(expect_that(pass, "expected %s to contain %s", show(actual), show(item)))
  end
  function e.to_match(pattern)
    local pass = type(actual) == "string" and actual:find(pattern) ~= nil
    verify(expect_that(pass, "expected %s to match the pattern %s", show(actual), show(pattern)))
  end
  function e.to_have_length(n)
    local len = (type(actual) == "table" or type(actual) == "string") and #actual or nil
    verify(expect_that(len == n, "expected length %s, got %s (%s)", tostring(n), tostring(len), show(actual)))
  end
  -- expect(function() ... end).to_fail_with("pattern")
  function e.to_fail_with(pattern)
    if type(actual) ~= "function" then
      verify(false, "to_fail_with needs a function, got %s", show(actual))
      return
    end
    local ok, err = pcall(actual)
    local message = err
    if type(err) == "table" and err.message then
      message = err.line and string.format("%s:%d: %s", err.file or "?", err.line, err.message) or err.message
    end
    message = tostring(message)
    local pass = not ok and (pattern == nil or message:find(pattern) ~= nil)
    if negated then
      verify(not pass, "expected no failure matching %s, got %s", show(pattern), ok and "no failure" or show(message))
    else
      verify(pass, "expected a failure matching %s, got %s", show(pattern), ok and "no failure" or show(message))
    end
  end
  if not negated then
    e.never = expectation(actual, true)
  end
  return e
end

local function expect(actual)
  return expectation(actual, false)
end

-- assert(v, message) plus a few named checks: assert.equal, assert.same,
-- assert.near, assert.is_true, assert.is_nil, assert.fails.
local assert_table = setmetatable({}, {
  __call = function(_, value, message, ...)
    verify(value and true or false, "%s", message or "assertion failed")
    return value, message, ...
  end,
})
function assert_table.equal(expected, actual)
  verify(expected == actual, "expected %s, got %s", show(expected), show(actual))
end
function assert_table.same(expected, actual)
  local same, where = deep_equal(actual, expected, "")
  verify(same, "expected %s, got %s%s", show(expected), show(actual),
    (not same and where ~= "") and (" (first difference at " .. where .. ")") or "")
end
function assert_table.near(expected, actual, eps)
  eps = eps or 1e-9
  verify(type(actual) == "number" and math.abs(actual - expected) <= eps, "expected %s within %s, got %s",
    show(expected), tostring(eps), show(actual))
end
function assert_table.is_true(value)
  verify(value == true, "expected true, got %s", show(value))
end
function assert_table.is_nil(value)
  verify(value == nil, "expected nil, got %s", show(value))
end
function assert_table.fails(fn, pattern)
  local ok, err = pcall(fn)
  local message = tostring(type(err) == "table" and err.message or err)
  verify(not ok and (pattern == nil or message:find(pattern) ~= nil),
    "expected a failure matching %s, got %s", show(pattern), ok and "no failure" or show(message))
end

---------------------------------------------------------------------------
-- the `assessment` helper
---------------------------------------------------------------------------

local Handle = {}
Handle.__index = Handle

local function handle_for(gen, id)
  local h = setmetatable({ gen = gen, id = id }, Handle)
  h.model = sandbox.readonly(gen.types[id].model)
  return h
end

function Handle:score(a, t) return self.gen:score(self.id, a, t) end
function Handle:visible(a) return self.gen:visible(self.id, a) end
function Handle:validate_answers(a) return self.gen:validate_answers(self.id, a) end
function Handle:validate_targets(t) return self.gen:validate_targets(self.id, t) end
function Handle:questionnaire() return self.gen:questionnaire(self.id) end
function Handle:report_plan() return self.gen:report_plan(self.id) end
function Handle:summary() return self.gen:summary() end
function Handle:kb() return self.gen:kb() end
function Handle:agent_mentions(text) return self.gen:agent_mentions(text) end
function Handle:question(id) return self.model.question_by_id[id] end
function Handle:section_prompt(id, ctx) return self.gen:section_prompt(self.id, id, ctx) end
function Handle:section_draft(id, ctx) return self.gen:section_draft(self.id, id, ctx) end
function Handle:section_check(id, text, ctx) return self.gen:section_check(self.id, id, text, ctx) end
function Handle:section_render(id, ctx) return self.gen:section_render(self.id, id, ctx) end

-- A ctx shaped like the one the host passes to report sections.
function Handle:context(a, t, client)
  return {
    assessment = { client = client or "Example Co", type = self.id },
    answers = a or {}, targets = t, scores = self:score(a or {}, t),
    sections = {}, attachments = {},
  }
end

local function make_assessment(M, sources, home, type_id, type_rel)
  local assessment = { type = type_id }
  local default_gen, default_errors

  local function build(list)
    local gen, errors = M.build_types(list, type_id)
    if not gen then
      return nil, errors, M.format_errors(errors)
    end
    return handle_for(gen, type_id)
  end

  function assessment.default()
    if not type_id then
      error("this spec folder is not an assessment type (no questionnaire.lua next to spec/)", 2)
    end
    if not default_gen and not default_errors then
      local h, errors, text = build(sources)
      default_gen, default_errors = h, text
      if not h then
        default_errors = text or "build failed"
      end
    end
    if not default_gen then
      error("the assessment does not build:\n" .. default_errors, 2)
    end
    return default_gen
  end

  function assessment.load(overrides)
    if not type_id then
      error("this spec folder is not an assessment type (no questionnaire.lua next to spec/)", 2)
    end
    local list, done = {}, {}
    overrides = overrides or {}
    local function target_of(key, s)
      if s.path == key then
        return true
      end
      if key:sub(1, 3) == "kb/" then
        return s.kind == "kb" and (s.path:sub(-#key - 1) == "/" .. key or s.path == key)
      end
      return s.path == home .. "/" .. key
    end
    for _, s in ipairs(sources) do
      local copy = { path = s.path, kind = s.kind, rel = s.rel, text = s.text }
      for key, value in pairs(overrides) do
        if target_of(key, s) then
          done[key] = true
          if value == false then
            copy = nil
          elseif type(value) == "function" then
            copy.text = value(s.text)
          else
            copy.text = value
          end
          break
        end
      end
      if copy then
        list[#list + 1] = copy
      end
    end
    for key, value in pairs(overrides) do
      if not done[key] and type(value) == "string" then
        if key:sub(1, 3) == "kb/" then
          list[#list + 1] = { path = key, kind = "kb", rel = key:sub(4), text = value }
        else
          list[#list + 1] = { path = home .. "/" .. key, kind = "script", rel = type_rel .. "/" .. key, text = value }
        end
      elseif not done[key] then
        error(string.format("assessment.load: no file %s to change", show(key)), 2)
      end
    end
    return build(list)
  end

  -- The current text of a file of the type folder ("questionnaire.lua") or of
  -- the KB ("kb/agents.lua"), e.g. to compute the line an edit lands on.
  function assessment.source(name)
    for _, s in ipairs(sources) do
      if s.path == home .. "/" .. name or s.path == name
          or (name:sub(1, 3) == "kb/" and s.kind == "kb" and s.path:sub(-#name - 1) == "/" .. name) then
        return s.text
      end
    end
    error(string.format("no file %s", show(name)), 2)
  end

  function assessment.example(name)
    local decode = rawget(_ENV, "GEN_JSON_DECODE")
    if not decode then
      error("assessment.example needs JSON decoding, which this host does not provide (GEN_JSON_DECODE)", 2)
    end
    local path = home .. "/examples/" .. name .. ".json"
    for _, s in ipairs(sources) do
      if s.path == path then
        local data = decode(s.text)
        data.answers = data.answers or {}
        return data
      end
    end
    error(string.format("no example %s", path), 2)
  end

  return assessment
end

---------------------------------------------------------------------------
-- collect and run
---------------------------------------------------------------------------

local function to_failure(err, test)
  if type(err) == "table" and err.spec_failure then
    return { file = err.file or test.file, line = err.line or test.line, message = err.message }
  end
  local file, line, text = problems.split(err)
  if file == test.file and line then
    return { file = file, line = line, message = text }
  end
  return { file = test.file, line = test.line, message = "error: " .. tostring(type(err) == "table" and show(err) or err) }
end

-- spec.collect(M, sources, spec_path) -> count, tests {{name, file, line}}, errors
function spec.collect(M, sources, spec_path)
  state = { tests = {}, assertions = 0, path = spec_path }
  local errors = problems.collector()
  local text
  for _, s in ipairs(sources or {}) do
    if s.path == spec_path then
      text = s.text
    end
  end
  if not text then
    errors:add(spec_path, nil, "spec file not found among the sources")
    return 0, {}, errors.list
  end
  local home = spec_path:match("^(.*)/spec/[^/]+$") or spec_path:match("^(.*)/[^/]+$") or "."

  -- Is the spec's home folder an assessment type?
  local index_errors = problems.collector()
  local _, script_files, types = M.index_sources(sources, index_errors)
  local type_id, type_rel
  for _, t in ipairs(types) do
    if t.folder == home then
      type_id = t.id
    end
  end
  for _, s in ipairs(sources) do
    if s.path == home .. "/questionnaire.lua" and s.rel then
      type_rel = s.rel:match("^(.*)/questionnaire%.lua$")
    end
  end
  local assessment = make_assessment(M, sources, home, type_id, type_rel or type_id)

  -- require: the type's own modules, shared with its build when it builds
  local cache = {}
  local function env_for()
    return sandbox.env()
  end
  local fallback = sandbox.requirer(home, script_files, cache, env_for)
  local function spec_require(name)
    if type_id then
      local ok, h = pcall(assessment.default)
      if ok then
        return h.gen.types[type_id].require(name)
      end
    end
    return fallback(name)
  end

  local root = { name = nil, befores = {}, afters = {} }
  local current = root
  local function full_name(block, name)
    local parts = { name }
    while block and block.name do
      table.insert(parts, 1, block.name)
      block = block.parent
    end
    return table.concat(parts, " ")
  end
  local env = sandbox.env({ expect = expect, assert = assert_table, assessment = assessment })
  env.require = function(name)
    local ok, result = pcall(spec_require, name)
    if not ok then
      local file, line = problems.here(2)
      local _, _, text = problems.split(result)
      error(string.format("%s:%s: %s", file or spec_path, tostring(line or 0), text), 0)
    end
    return result
  end
  function env.describe(name, fn)
    local file, line = problems.here(2)
    if type(name) ~= "string" or type(fn) ~= "function" then
      error("describe expects a name and a function: describe(\"scoring\", function() ... end)", 2)
    end
    local block = { name = name, parent = current, befores = {}, afters = {} }
    local saved = current
    current = block
    local ok, err = pcall(fn)
    current = saved
    if not ok then
      errors:add_raised(file, err)
      if not errors.list[#errors.list].line then
        errors.list[#errors.list].line = line
      end
    end
  end
  function env.it(name, fn)
    local file, line = problems.here(2)
    if type(name) ~= "string" or type(fn) ~= "function" then
      error("it expects a name and a function: it(\"rolls up\", function() ... end)", 2)
    end
    state.tests[#state.tests + 1] = { name = full_name(current, name), fn = fn, block = current, file = file, line = line }
  end
  function env.before_each(fn)
    current.befores[#current.befores + 1] = fn
  end
  function env.after_each(fn)
    current.afters[#current.afters + 1] = fn
  end

  local chunk, message = sandbox.load(text, spec_path, env)
  if not chunk then
    errors:add_raised(spec_path, message)
  else
    local ok, err = pcall(chunk)
    if not ok then
      errors:add_raised(spec_path, err)
    end
  end
  local list = {}
  for i, t in ipairs(state.tests) do
    list[i] = { name = t.name, file = t.file, line = t.line }
  end
  return #state.tests, list, errors.list
end

function spec.run(i)
  local test = state.tests[i]
  if not test then
    return { name = tostring(i), ok = false, assertions = 0,
      failures = { { file = state.path, message = "there is no test number " .. tostring(i) } } }
  end
  state.assertions = 0
  local chain = {}
  local block = test.block
  while block do
    table.insert(chain, 1, block)
    block = block.parent
  end
  local failures = {}
  local function handler(err)
    return err
  end
  local ok, err = xpcall(function()
    for _, b in ipairs(chain) do
      for _, fn in ipairs(b.befores) do
        fn()
      end
    end
    test.fn()
  end, handler)
  if not ok then
    failures[#failures + 1] = to_failure(err, test)
  end
  for j = #chain, 1, -1 do
    for _, fn in ipairs(chain[j].afters) do
      local after_ok, after_err = xpcall(fn, handler)
      if not after_ok then
        failures[#failures + 1] = to_failure(after_err, test)
      end
    end
  end
  return {
    name = test.name, ok = #failures == 0, failures = failures,
    assertions = state.assertions, file = test.file, line = test.line,
  }
end

return spec
