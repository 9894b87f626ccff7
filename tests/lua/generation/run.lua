#!/usr/bin/env lua5.4
-- Stand-in for the C host, for testing core/lua/generation and scripts/ with Debian's
-- lua5.4 before (and independently of) the host.
--
--   lua5.4 tests/lua/generation/run.lua              build, engine tests, every spec; "N passed, N failed"
--   lua5.4 tests/lua/generation/run.lua --check      only the build, printed like `o2c check --json`
--   lua5.4 tests/lua/generation/run.lua --bench      time gen:score on the examples
--   lua5.4 tests/lua/generation/run.lua --report median   the offline report (Markdown) for an example
--   lua5.4 tests/lua/generation/run.lua --root DIR   use DIR instead of the repository root
--
-- It emulates what the host gives a generation: a fresh state per build and per
-- spec file holding only the allowed globals, `load` forced to text mode with a
-- required env, GEN_MODULE(name) over core/lua/generation/*.lua, GEN_JSON_DECODE
-- (lua-cjson), and per-`it` instruction and memory budgets that a pcall inside
-- the spec cannot swallow (the hook keeps raising once the budget is spent).
local cjson_ok, cjson = pcall(require, "cjson")

local function script_dir()
  local source = arg and arg[0] or "tests/lua/generation/run.lua"
  return source:match("^(.*)/[^/]+$") or "."
end

local args = { root = nil, mode = "test" }
do
  local i = 1
  while arg and arg[i] do
    local a = arg[i]
    if a == "--root" then
      args.root = arg[i + 1]
      i = i + 1
    elseif a == "--check" then
      args.mode = "check"
    elseif a == "--bench" then
      args.mode = "bench"
    elseif a == "--report" then
      args.mode = "report"
      args.example = arg[i + 1]
      i = i + 1
    else
      io.stderr:write("unknown argument " .. a .. "\n")
      os.exit(2)
    end
    i = i + 1
  end
end
local ROOT = args.root or (script_dir() .. "/../../..")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function list_files(dir)
  local files = {}
  local p = io.popen(string.format("cd '%s' && find %s -type f 2>/dev/null | LC_ALL=C sort", ROOT, dir))
  for line in p:lines() do
    if not line:match("/%.") and not line:match("~$") then
      files[#files + 1] = line
    end
  end
  p:close()
  return files
end

-- sources as the host builds them: every file under scripts/ and kb/
local function load_sources()
  local sources = {}
  for _, root in ipairs({ "scripts", "kb" }) do
    for _, path in ipairs(list_files(root)) do
      sources[#sources + 1] = {
        path = path,
        kind = root == "kb" and "kb" or "script",
        rel = path:sub(#root + 2),
        text = read(ROOT .. "/" .. path),
      }
    end
  end
  return sources
end

---------------------------------------------------------------------------
-- the emulated generation state
---------------------------------------------------------------------------

local ALLOWED = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "rawequal", "rawget", "rawlen",
  "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type", "print",
}

local function new_state()
  local G = {}
  for _, name in ipairs(ALLOWED) do
    G[name] = _G[name]
  end
  for _, lib in ipairs({ "string", "table", "math", "utf8" }) do
    local copy = {}
    for k, v in pairs(_G[lib]) do
      copy[k] = v
    end
    G[lib] = copy
  end
  G.os = { time = os.time, date = os.date, clock = os.clock }
  G._G = G
  G.load = function(chunk, name, _, env)
    if type(chunk) ~= "string" then
      error("load: only text chunks are allowed", 2)
    end
    if type(env) ~= "table" then
      error("load: an environment table is required", 2)
    end
    return load(chunk, name, "t", env)
  end
  local modules = {}
  G.GEN_MODULE = function(name)
    if modules[name] == nil then
      local path = "core/lua/generation/" .. name .. ".lua"
      local chunk = assert(load(read(ROOT .. "/" .. path), "@" .. path, "t", G))
      modules[name] = chunk() or true
    end
    return modules[name]
  end
  if cjson_ok then
    G.GEN_JSON_ENCODE = cjson.encode
    G.GEN_JSON_DECODE = function(text)
      local decoded = cjson.decode(text)
      -- cjson decodes null as a lightuserdata; drop it like a missing key
      local function clean(v)
        if type(v) == "table" then
          for k, x in pairs(v) do
            if x == cjson.null then
              v[k] = nil
            else
              clean(x)
            end
          end
        end
        return v
      end
      return clean(decoded)
    end
  end
  local M = G.GEN_MODULE("init")
  return M, G
end

-- Runs fn under an instruction and memory budget. Once spent, the hook raises
-- on every later tick too, so a pcall in the spec cannot swallow it.
local BUDGET = { instructions = 200000000, kb = 256 * 1024 }
local function with_budget_limits(limits, fn, ...)
  local spent, killed = 0, nil
  local base_kb = collectgarbage("count")
  -- fn runs in its own coroutine: the hook belongs to that thread only, so
  -- once fn is stopped nothing else is.
  local co = coroutine.create(fn)
  local function hook()
    spent = spent + 10000
    if not killed then
      if spent > limits.instructions then
        killed = "instruction budget exceeded"
      elseif collectgarbage("count") - base_kb > limits.kb then
        killed = "memory budget exceeded"
      end
      if killed then
        -- from now on raise at every instruction: the one right after a
        -- pcall that caught the error raises again, outside that pcall
        debug.sethook(hook, "", 1)
      end
    end
    if killed then
      error(killed, 0)
    end
  end
  debug.sethook(co, hook, "", 10000)
  local results = table.pack(coroutine.resume(co, ...))
  if killed then
    collectgarbage()
    return false, killed
  end
  return table.unpack(results, 1, results.n)
end

local function with_budget(fn, ...)
  return with_budget_limits(BUDGET, fn, ...)
end

local function format_problem(p)
  if p.line then
    return string.format("%s:%d: %s", p.file or "?", p.line, p.message)
  end
  return string.format("%s: %s", p.file or "?", p.message)
end

---------------------------------------------------------------------------
-- modes
---------------------------------------------------------------------------

local function build()
  local M = new_state()
  local sources = load_sources()
  local t0 = os.clock()
  local gen, errors = M.build(sources)
  return gen, errors, os.clock() - t0, sources, M
end

local function mode_check()
  local gen, errors, seconds = build()
  local out = { ok = gen ~= nil, generation = "(computed by the host)", types = {}, errors = {} }
  if gen then
    out.types = gen:summary().types
  else
    for i, e in ipairs(errors) do
      out.errors[i] = e
      io.stderr:write(format_problem(e), "\n")
    end
  end
  print(cjson_ok and cjson.encode(out) or tostring(out.ok))
  io.stderr:write(string.format("build: %.1f ms\n", seconds * 1000))
  os.exit(gen and 0 or 1)
end

local function example(name)
  local data = cjson.decode(read(ROOT .. "/scripts/o2c/examples/" .. name .. ".json"))
  return data.answers, data.targets
end

local function mode_bench()
  local gen, errors, seconds = build()
  if not gen then
    for _, e in ipairs(errors) do
      print(format_problem(e))
    end
    os.exit(1)
  end
  print(string.format("build (o2c check equivalent): %.1f ms", seconds * 1000))
  for _, name in ipairs({ "laggard", "median", "leader" }) do
    local answers, targets = example(name)
    local n = 20000
    for _ = 1, 1000 do
      gen:score("o2c", answers, targets)
    end
    local t0 = os.clock()
    for _ = 1, n do
      gen:score("o2c", answers, targets)
    end
    local us = (os.clock() - t0) / n * 1e6
    local s = gen:score("o2c", answers, targets)
    print(string.format("score %-8s %6.1f us/call   overall %.2f (level %d %s)", name, us, s.overall.score,
      s.overall.level, s.overall.level_name))
  end
end

local function mode_report()
  local gen, errors = build()
  if not gen then
    for _, e in ipairs(errors) do
      print(format_problem(e))
    end
    os.exit(1)
  end
  local answers, targets = example(args.example or "median")
  local ctx = {
    assessment = { client = "Example Co", type = "o2c" },
    answers = answers, targets = targets, scores = gen:score("o2c", answers, targets),
    sections = {}, attachments = {},
  }
  local plan = gen:report_plan("o2c")
  local texts = {}
  for _, id in ipairs(plan.run_order) do
    local s
    for _, x in ipairs(plan.sections) do
      if x.id == id then
        s = x
      end
    end
    ctx.sections = {}
    for _, d in ipairs(s.depends) do
      ctx.sections[d] = texts[d]
    end
    if s.kind == "llm" then
      texts[id] = gen:section_draft("o2c", id, ctx)
      local ok, why = gen:section_check("o2c", id, texts[id], ctx)
      assert(ok, id .. ": " .. tostring(why))
    else
      texts[id] = gen:section_render("o2c", id, ctx)
    end
  end
  print("# Order-to-Cash maturity assessment: Example Co\n")
  print("*Drafted offline (no LLM).*\n")
  for _, s in ipairs(plan.sections) do
    print("## " .. s.title .. "\n")
    print(texts[s.id] .. "\n")
  end
end

---------------------------------------------------------------------------
-- test mode: engine tests, then every spec file through the harness
---------------------------------------------------------------------------

local function mode_test()
  local passed, failed = 0, 0
  local function report_failure(p)
    print(format_problem(p))
  end

  local gen, errors, seconds = build()
  if not gen then
    print("build failed:")
    for _, e in ipairs(errors) do
      report_failure(e)
    end
    failed = failed + 1
  else
    local t = gen:summary().types[1]
    print(string.format("build ok in %.1f ms: %s – %d areas, %d questions, %d sections, %d KB docs, %d agents",
      seconds * 1000, t.id, t.areas, t.questions, t.sections, t.kb_docs, t.agents))
  end

  -- engine tests (plain Lua with access to the emulated host)
  local engine = dofile(script_dir() .. "/engine_test.lua")
  local ep, ef = engine.run({
    root = ROOT, new_state = new_state, load_sources = load_sources, with_budget = with_budget,
    with_budget_limits = with_budget_limits,
    read = read, format_problem = format_problem,
  })
  passed, failed = passed + ep, failed + ef

  -- specs: a fresh state per file, a budget per `it`
  local sources = load_sources()
  local assertions, spec_files = 0, 0
  for _, s in ipairs(sources) do
    if s.path:match("^scripts/[^/]+/spec/[^/]+_spec%.lua$") then
      spec_files = spec_files + 1
      local M = new_state()
      local ok, n, _, collect_errors = with_budget(M.spec_collect, sources, s.path)
      if not ok then
        report_failure({ file = s.path, message = "collecting specs failed: " .. tostring(n) })
        failed = failed + 1
      else
        for _, e in ipairs(collect_errors) do
          report_failure(e)
          failed = failed + 1
        end
        for i = 1, n do
          local run_ok, result = with_budget(M.spec_run, i)
          if not run_ok then
            report_failure({ file = s.path, message = "test " .. i .. " stopped: " .. tostring(result) })
            failed = failed + 1
          elseif result.ok then
            passed = passed + 1
            assertions = assertions + result.assertions
          else
            for _, f in ipairs(result.failures) do
              report_failure({ file = f.file, line = f.line, message = result.name .. ": " .. f.message })
            end
            failed = failed + 1
          end
        end
      end
    end
  end
  print(string.format("engine: %d passed, %d failed; specs: %d files, %d assertions in passing tests",
    ep, ef, spec_files, assertions))
  print(string.format("%d passed, %d failed", passed, failed))
  os.exit(failed == 0 and 0 or 1)
end

if args.mode == "check" then
  mode_check()
elseif args.mode == "bench" then
  mode_bench()
elseif args.mode == "report" then
  mode_report()
else
  mode_test()
end
