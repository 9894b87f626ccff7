-- Administration: accounts (add, change, enable, remove) and the audit log.  Every route here is for
-- admins; to anyone else they do not exist (404).
local api = require "api.common"
local json = require "json"

local NAME = { type = "string", required = true, min = 1, max = 64,
  pattern = "^[%w][%w._%-]*$", pattern_help = "use letters, digits, '.', '_' and '-'" }
local USERNAME = { type = "string", min = NAME.min, max = NAME.max, pattern = NAME.pattern,
  pattern_help = NAME.pattern_help }
local ROLE = { type = "string", enum = { "admin", "consultant" } }
local PASSWORD = { type = "string", min = 12, max = 1024 }

local function store() return require "o2c.store" end

local function list_users()
  return 200, json.array(api.check(store().user_list()))
end

-- The account name of a body that may still use the old field: `username`,
-- or `name` (deprecated: accepted until the next version).
local function body_username(body)
  local username, old = body.username, body.name
  if username and old and username ~= old then
    api.fail(400, "invalid", "body.username and body.name differ: send only username "
      .. "(name is its old spelling)", { field = "body.username" })
  end
  username = username or old
  if not username then
    api.fail(400, "invalid", "body.username: required", { field = "body.username" })
  end
  return username
end

local function add_user(ctx)
  local body = ctx:body({
    username = USERNAME,
    name = USERNAME,
    role = { type = "string", required = true, enum = { "admin", "consultant" } },
    password = { type = "string", required = true, min = 12, max = 1024 },
  })
  local user = { name = body_username(body), role = body.role, password = body.password,
    actor = ctx.user, address = ctx:address() } -- the store audits the change
  return 201, api.check(store().user_add(user))
end

local function change_user(ctx)
  local body = ctx:body({ role = ROLE, disabled = { type = "boolean" }, password = PASSWORD })
  local name = ctx.params.username
  local s = store()
  api.check(s.user_get(name))
  if body.disabled ~= nil and name == ctx.user.name and body.disabled then
    api.fail(409, "conflict", "you cannot disable your own account")
  end
  -- Each change is audited by the store with who made it and from where.
  local who, from = ctx.user, ctx:address()
  if body.role then api.check(s.user_set_role(name, body.role, who, from)) end
  if body.disabled ~= nil then api.check(s.user_set_disabled(name, body.disabled, who, from)) end
  if body.password then api.check(s.user_set_password(name, body.password, who, from)) end
  return 200, api.check(s.user_get(name))
end

-- Removes an account: a tombstone stays (its name on answers and in the
-- audit log); its assessments go to ?reassign_to= or stay, read-only.
local function remove_user(ctx)
  local name = ctx.params.username
  if name == ctx.user.name then
    api.fail(409, "conflict", "you cannot remove your own account; another admin can")
  end
  local q = ctx:query()
  local removal = api.check(store().user_remove(name, q.reassign_to, ctx.user, ctx:address()))
  return 200, removal
end

local function audit(ctx)
  local q = ctx:query()
  local page = api.check(store().audit_query({ since = q.since, user = q.user, after = q.after,
    limit = q.limit }))
  return 200, { items = json.array(page.items), next = page.next or json.null }
end

return {
  { method = "GET", path = "/api/v1/users", name = "users.list", auth = "admin",
    handler = list_users },
  { method = "POST", path = "/api/v1/users", name = "users.add", auth = "admin",
    handler = add_user },
  { method = "PATCH", path = "/api/v1/users/{username}", name = "users.change", auth = "admin",
    handler = change_user },
  { method = "DELETE", path = "/api/v1/users/{username}", name = "users.remove", auth = "admin",
    handler = remove_user, query = {
      reassign_to = { type = "string", max = NAME.max, pattern = NAME.pattern,
        pattern_help = NAME.pattern_help, description = "the enabled account that takes over "
          .. "the removed account's assessments; without it they stay, read-only, visible "
          .. "to admins" },
    } },
  { method = "GET", path = "/api/v1/audit", name = "audit", auth = "admin", handler = audit,
    query = {
      since = { type = "time", description = "only events at or after this time" },
      user = { type = "string", max = NAME.max, pattern = NAME.pattern,
        pattern_help = NAME.pattern_help, description = "only this user's events" },
      after = { type = "integer", min = 0, description = "the `next` of the previous page" },
      limit = { type = "integer", min = 1, max = 1000, default = 100,
        description = "events per page" },
      -- The web UI's filter form sends these two and narrows the page itself.
      action = { type = "string", max = 64, pattern = "^%a[%w_.]*$",
        pattern_help = "letters, digits, '_' and '.', starting with a letter",
        description = "an action name or its start, such as user. (not applied by the server "
          .. "yet: the web UI narrows the page)" },
      ["until"] = { type = "time", description = "only events up to this time (not applied "
        .. "by the server yet: the web UI narrows the page)" },
    } },
}
