-- The HTTP entry point: every request runs handle(req) in its own task.
local router = require "router"

local M = {}

function M.start()
  router.start()
  -- Report jobs a restart cut short carry on (core/lua/report/runner.lua).
  require("api.reports").resume()
end

function M.handle(req)
  router.dispatch(req)
end

return M
