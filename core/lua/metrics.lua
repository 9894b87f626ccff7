-- Request metrics for /metrics: counts by route and status, and a latency
-- histogram per route, kept in plain tables (state that a reload never drops
-- lives here, not in handlers).  Durations are in seconds, Prometheus' base
-- unit, so `promtool check metrics` accepts them.
local M = {}

-- Upper bounds in seconds: 1 ms to 5 s.
local BUCKETS = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 }

local counts = {}    -- route -> status -> n
local latency = {}   -- route -> { buckets = {n...}, sum = seconds, count = n }

-- One answered request: its route's name, status and duration in milliseconds.
function M.observe_request(route, status, ms)
  local seconds = ms / 1000
  local by_status = counts[route]
  if not by_status then
    by_status = {}
    counts[route] = by_status
  end
  by_status[status] = (by_status[status] or 0) + 1
  local h = latency[route]
  if not h then
    h = { buckets = {}, sum = 0, count = 0 }
    for i = 1, #BUCKETS do h.buckets[i] = 0 end
    latency[route] = h
  end
  for i, le in ipairs(BUCKETS) do
    if seconds <= le then h.buckets[i] = h.buckets[i] + 1 end
  end
  h.sum, h.count = h.sum + seconds, h.count + 1
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- Appends the Prometheus text for the request metrics to OUT (a list of lines).
function M.render(out)
  out[#out + 1] = "# HELP o2c_http_requests_total HTTP requests by route and status."
  out[#out + 1] = "# TYPE o2c_http_requests_total counter"
  for _, route in ipairs(sorted_keys(counts)) do
    for _, status in ipairs(sorted_keys(counts[route])) do
      out[#out + 1] = string.format('o2c_http_requests_total{route="%s",status="%s"} %d',
        route, status, counts[route][status])
    end
  end
  out[#out + 1] = "# HELP o2c_http_request_duration_seconds Time to answer, by route, in seconds."
  out[#out + 1] = "# TYPE o2c_http_request_duration_seconds histogram"
  local name = "o2c_http_request_duration_seconds"
  for _, route in ipairs(sorted_keys(latency)) do
    local h = latency[route]
    for i, le in ipairs(BUCKETS) do
      out[#out + 1] = string.format('%s_bucket{route="%s",le="%g"} %d', name, route, le,
        h.buckets[i])
    end
    out[#out + 1] = string.format('%s_bucket{route="%s",le="+Inf"} %d', name, route, h.count)
    out[#out + 1] = string.format('%s_sum{route="%s"} %.6f', name, route, h.sum)
    out[#out + 1] = string.format('%s_count{route="%s"} %d', name, route, h.count)
  end
end

return M
