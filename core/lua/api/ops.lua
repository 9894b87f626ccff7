-- Operations: liveness, readiness, status, Prometheus metrics, OpenAPI.
local json = require "json"
local metrics = require "metrics"
local runner = require "report.runner"

local function optional(name)
  local ok, mod = pcall(require, name)
  return ok and mod or nil
end

local function healthz()
  return 200, { status = "ok" }
end

-- Ready when the database answers and a generation is loaded.
local function readyz()
  local problems = json.array()
  local store = optional("o2c.store")
  local ok, err = true, nil
  if store then ok, err = store.check() end
  if not ok then problems[#problems + 1] = "database: " .. tostring(err) end
  if not require("o2c.generation").status().generation then
    problems[#problems + 1] = "no generation of scripts and KB is loaded (see /api/v1/status)"
  end
  if #problems > 0 then
    return 503, { status = "not ready", problems = problems }
  end
  return 200, { status = "ready" }
end

local function llm_status()
  local llm = optional("llm")
  if llm and llm.status then return llm.status() end
  return { provider = "offline" }
end

local function status(ctx)
  local gen = require("o2c.generation").status()
  local server = optional("o2c.server")
  return 200, {
    generation = gen.generation or json.null,
    reload = { loads = gen.loads, failures = gen.failures, last_ms = gen.last_ms,
      errors = gen.errors },
    llm = llm_status(),
    queue = runner.stats(),
    server = server and server.stats() or json.null,
    user = ctx.user.name,
  }
end

-- One family of one sample, without labels; KIND is "gauge" or "counter".
local function single(out, kind, name, help, value)
  out[#out + 1] = "# HELP " .. name .. " " .. help
  out[#out + 1] = "# TYPE " .. name .. " " .. kind
  out[#out + 1] = string.format("%s %s", name, value)
end

local function gauge(out, name, help, value)
  single(out, "gauge", name, help, value)
end

local function metrics_text()
  local out = {}
  metrics.render(out)
  local server = optional("o2c.server")
  if server then
    local s = server.stats()
    gauge(out, "o2c_http_connections_open", "Open HTTP connections.", s.connections_open)
    out[#out + 1] = "# HELP o2c_http_connections_rejected_total Connections refused with 503:"
      .. " the server was full, or their address had its share (limits.connections_per_address)."
    out[#out + 1] = "# TYPE o2c_http_connections_rejected_total counter"
    out[#out + 1] = string.format('o2c_http_connections_rejected_total{reason="full"} %d',
      s.connections_rejected - s.connections_rejected_address)
    out[#out + 1] = string.format('o2c_http_connections_rejected_total{reason="address"} %d',
      s.connections_rejected_address)
  end
  local session = optional("o2c.session")
  if session and session.count then
    gauge(out, "o2c_sessions_active", "Sessions not expired or revoked.", session.count())
  end
  gauge(out, "o2c_lua_memory_bytes", "Memory held by the product Lua VM (requests, report jobs).",
    math.floor(collectgarbage("count") * 1024))
  local gen = require("o2c.generation").status()
  gauge(out, "o2c_generation_replicas",
    "States of the current generation built for scoring on the thread pool.", gen.replicas or 0)
  out[#out + 1] = "# HELP o2c_generation_info The generation of scripts and KB being served."
  out[#out + 1] = "# TYPE o2c_generation_info gauge"
  out[#out + 1] = string.format('o2c_generation_info{generation="%s"} 1', gen.generation or "")
  gauge(out, "o2c_reload_errors", "Errors of the last failed reload (0 when it loaded).",
    #gen.errors)
  single(out, "counter", "o2c_reload_failures_total", "Reloads that failed since start.",
    gen.failures)
  local llm = optional("llm")
  if llm and llm.metrics_text then out[#out + 1] = llm.metrics_text() end
  local jobs = runner.stats()
  gauge(out, "o2c_report_jobs_running", "Report jobs loaded and writing sections.", jobs.running)
  gauge(out, "o2c_report_jobs_waiting", "Report jobs waiting for a place to start.", jobs.waiting)
  return 200, table.concat(out, "\n") .. "\n",
    { ["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8" }
end

local function openapi()
  return 200, require("api.openapi").document()
end

return {
  { method = "GET", path = "/healthz", name = "healthz", auth = false, handler = healthz },
  { method = "GET", path = "/readyz", name = "readyz", auth = false, handler = readyz },
  { method = "GET", path = "/metrics", name = "metrics", auth = false, handler = metrics_text },
  { method = "GET", path = "/api/v1/status", name = "status", handler = status },
  { method = "GET", path = "/api/v1/openapi.json", name = "openapi", auth = false,
    handler = openapi },
}
