-- Storage stubs for the fuzz targets' product VM (fuzz_http, fuzz_json).
--
-- The targets fuzz parsing, routing, body validation and the generation
-- bridge, not SQLite: these stand in for o2c.store, o2c.session, o2c.auth
-- and o2c.audit.  They are stateless, so every input gets the same answers
-- whatever ran before it (libFuzzer needs that to reproduce a crash):
--   - two fixed Bearer tokens sign in a consultant and an admin;
--   - assessment "a1" exists (type o2c, revision 3); any other id is not found;
--   - saving answers on revision 3 succeeds (revision 4); any other is a conflict;
--   - every other store function answers "not found", like a missing row.
local TOKENS = {
  ["fuzz-consultant-token"] = { id = "u-consultant", name = "fuzz", role = "consultant" },
  ["fuzz-admin-token"] = { id = "u-admin", name = "root", role = "admin" },
}

local ASSESSMENT_ID = "a1"
local REVISION = 3

local function not_found()
  return nil, "not found (fuzz stub)", "not_found"
end

local function stub(functions)
  return setmetatable(functions, { __index = function() return not_found end })
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local session = stub({
  validate = function(token)
    local user = TOKENS[token]
    if not user then return nil end
    return copy(user), { expires_at = "2030-01-01T00:00:00Z", idle_expires_at = "2030-01-01T00:00:00Z" }
  end,
  login = function() return nil, "wrong user name or password", "invalid" end,
  logout = function() return true end,
  count = function() return 0 end,
})

local function assessment(id)
  return { id = id, type = "o2c", client = "Acme", revision = REVISION, owner = "u-consultant",
    created_at = "2024-01-01T00:00:00Z", updated_at = "2024-01-01T00:00:00Z" }
end

local store = stub({
  check = function() return true end,
  audit = function() return true end,
  system_actor = function() return { id = "system", name = "system", role = "admin" } end,
  assessment_get = function(_, id)
    if id == ASSESSMENT_ID then return assessment(id) end
    return not_found()
  end,
  assessment_create = function(_, body)
    local a = assessment(ASSESSMENT_ID)
    a.type, a.client, a.targets, a.revision = body.type, body.client, body.targets, 0
    return a
  end,
  assessment_list = function() return { items = {} } end,
  assessment_delete = function() return true end,
  answers_get = function(_, id)
    if id == ASSESSMENT_ID then return {} end
    return not_found()
  end,
  answers_save = function(_, id, revision, changes)
    if id ~= ASSESSMENT_ID then return not_found() end
    assert(type(changes) == "table", "answers_save: changes must be a table")
    if revision ~= REVISION then return nil, "revision conflict (fuzz stub)", "conflict" end
    return REVISION + 1
  end,
  score_put = function() return true end,
  score_latest = function() return nil end,
  generation_exists = function() return true end,
  report_list = function() return {} end,
  attachment_list = function() return {} end,
  jobs_unfinished = function() return {} end,
})

package.loaded["o2c.store"] = store
package.loaded["o2c.session"] = session
package.loaded["o2c.auth"] = stub({})
package.loaded["o2c.audit"] = stub({ write = function() return true end })
