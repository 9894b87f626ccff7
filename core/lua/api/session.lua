-- Signing in and out.  The session token goes in an HttpOnly cookie (and in
-- the body, for API clients that send it as a Bearer token); a second,
-- script-readable cookie carries the CSRF token the web UI echoes back.
local api = require "api.common"
local config = require "o2c.config"
local event = require "o2c.event"
local random = require "o2c.random"
local timer = require "o2c.timer"

-- Secure when configured, or when a trusted proxy says the client used HTTPS.
local function cookie(ctx, name, value, max_age, http_only)
  local parts = { name .. "=" .. value, "Path=/", "SameSite=Strict", "Max-Age=" .. max_age }
  if http_only then parts[#parts + 1] = "HttpOnly" end
  if config.sessions.cookie_secure or ctx:https() then parts[#parts + 1] = "Secure" end
  return table.concat(parts, "; ")
end

-- Sign-ins the throttle told to wait (session.login's "wait": other
-- attempts for the same account or address are being checked and hold the
-- rest of its budget) queue here, oldest first.  Each finished sign-in
-- wakes the oldest, which asks again: admitted, refused (then it wakes the
-- next in turn), or still waiting (it keeps its place).  The poll catches
-- what no wake-up announces (attempts of another instance) and the deadline
-- turns a wait that lasts into the same 503 as a full hashing queue.
local WAIT_POLL_MS, WAIT_MAX_MS = 1000, 10000
local waiting = {} -- events of the waiting sign-ins, oldest first

local function wake_oldest()
  while #waiting > 0 do
    local ev = table.remove(waiting, 1)
    if ev:signal() > 0 then return end -- else its task is gone: try the next
  end
end

local function forget(ev)
  for i, e in ipairs(waiting) do
    if e == ev then table.remove(waiting, i) return end
  end
end

local function sign_in(username, password, address)
  local session = require "o2c.session"
  local deadline, ev, queued, woken = timer.now() + WAIT_MAX_MS, nil, false, false
  while true do
    local result, message, code, retry_after = session.login(username, password, address)
    if code ~= "wait" or timer.now() >= deadline then
      if queued then forget(ev) end
      wake_oldest() -- a verify ended or a turn was passed up: the next may go
      if code == "wait" then return nil, message, "busy" end
      return result, message, code, retry_after
    end
    ev = ev or event.new()
    if not queued then table.insert(waiting, woken and 1 or #waiting + 1, ev) end
    woken = ev:wait(math.max(1, math.min(WAIT_POLL_MS, deadline - timer.now())))
    queued = not woken -- a wake-up took it off the queue; a timeout did not
  end
end

-- A refused sign-in as the answer the client needs.
local function fail_login(message, code, retry_after)
  if code == "invalid" then api.fail(401, "invalid_credentials", "wrong username or password") end
  if code == "refused" then
    api.fail(429, "too_many_attempts", message, { retry_after = retry_after },
      { ["Retry-After"] = tostring(retry_after) })
  end
  if code == "busy" then
    -- Password checks are queued on the thread pool; the queue is full.
    api.fail(503, "busy", "too many sign-ins at this moment; try again in a few seconds",
      { retry_after = 2 }, { ["Retry-After"] = "2" })
  end
  if code == "disk_full" then
    -- Even a wrong password is refused: its failure could not be counted.
    api.fail_disk_full("the server's disk is full, so no session can be created until space "
      .. "is freed; nothing stored before was lost: sign in again once an administrator has "
      .. "freed space")
  end
  api.check(nil, message or "sign-in failed", code)
end

local function login(ctx)
  local body = ctx:body({
    username = { type = "string", required = true, min = 1, max = 64 },
    password = { type = "string", required = true, min = 1, max = 1024 },
  })
  local result, message, code, retry_after = sign_in(body.username, body.password, ctx:address())
  if not result then fail_login(message, code, retry_after) end
  local max_age = math.floor(config.sessions.absolute_timeout_s)
  local csrf = random.token(24)
  local headers = { ["Set-Cookie"] = {
    cookie(ctx, "o2c_session", result.token, max_age, true),
    cookie(ctx, "o2c_csrf", csrf, max_age, false),
  } }
  return 201, { token = result.token, user = result.user, expires_at = result.expires_at,
    csrf_token = csrf }, headers
end

local function logout(ctx)
  local ok, message, code = require("o2c.session").logout(ctx.token)
  -- Already revoked (a sign-out racing this one) is signed out all the same.
  if not ok and code ~= "not_found" then api.check(ok, message, code) end
  return 204, "", { ["Set-Cookie"] = {
    cookie(ctx, "o2c_session", "", 0, true),
    cookie(ctx, "o2c_csrf", "", 0, false),
  } }
end

local function me(ctx)
  return 200, { user = ctx.user, session = ctx.session }
end

return {
  { method = "POST", path = "/api/v1/session", name = "session.login", auth = false,
    handler = login },
  { method = "DELETE", path = "/api/v1/session", name = "session.logout", handler = logout },
  { method = "GET", path = "/api/v1/me", name = "me", handler = me },
}
