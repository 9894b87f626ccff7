-- The OpenAPI 3.1 description of every route.  The router checks at start
-- that this document and its routes name exactly the same operations
-- (router.check_openapi), so neither can drift from the other; what the
-- routes declare (name, module, auth, path and query parameters) gives each
-- operation its operationId, tag, parameters and the 4XX answers every route
-- shares (add_from_routes).  `redocly lint` (tests/redocly.yaml) finds nothing.
local json = require "json"
local query = require "api.query"

local M = {}

local function ref(name) return { ["$ref"] = "#/components/schemas/" .. name } end
local function list(items) return { type = "array", items = items } end
local function obj(props, required)
  return { type = "object", properties = props, required = required and json.array(required) or nil }
end
local STRING, INTEGER, NUMBER, BOOLEAN = { type = "string" }, { type = "integer" },
  { type = "number" }, { type = "boolean" }
local ANY = {}
-- The account's old field name: still accepted and sent for one version.
local OLD_NAME = { type = "string", deprecated = true,
  description = "use username; accepted until the next version" }
local USERNAME = { type = "string", description = "the account's name (sign-in name)" }

local schemas = {
  Error = obj({ error = obj({ code = STRING, message = STRING, details = { type = "object" } },
    { "code", "message", "details" }) }, { "error" }),
  User = obj({ id = STRING, username = USERNAME, name = OLD_NAME,
    role = { type = "string", enum = { "admin", "consultant" } }, disabled = BOOLEAN,
    removed = { type = "boolean", description = "removed: kept so its name still shows on "
      .. "answers and in the audit log; cannot sign in or be changed" },
    created_at = STRING }),
  UserRemoval = obj({ user = ref("User"), reassigned_to = { type = "string",
      description = "who took over the assessments (absent: they stay, read-only)" },
    assessments_reassigned = INTEGER, assessments_read_only = INTEGER,
    revoked_sessions = INTEGER }),
  Login = obj({ username = STRING, password = STRING }, { "username", "password" }),
  Session = obj({ token = STRING, user = ref("User"), expires_at = STRING, csrf_token = STRING }),
  Answer = { description = "a value (number, choice id, list of choice ids, text or \"na\"), "
    .. "or {value, note}; null deletes the answer" },
  Answers = { type = "object", additionalProperties = ref("Answer") },
  Targets = { type = "object", additionalProperties = { type = "integer", minimum = 1,
    maximum = 5 } },
  Scores = obj({ overall = { type = "object" }, areas = list({ type = "object" }),
    kpis = list({ type = "object" }), hidden = list(STRING), missing_required = list(STRING) }),
  Assessment = obj({ id = STRING, type = STRING, client = STRING, owner = STRING,
    owner_name = { type = "string", description = "the owner's username" },
    read_only = { type = "boolean", description = "the owner was removed: the assessment can "
      .. "be read (by admins) but not changed until an admin reassigns it" },
    targets = ref("Targets"), revision = INTEGER, created_at = STRING,
    updated_at = STRING, answers = { type = "object" } }),
  Attachment = obj({ name = STRING, media_type = STRING, size = INTEGER, sha = STRING,
    created_at = STRING }),
  Report = obj({ id = STRING, assessment_id = STRING, status = STRING, provider = STRING,
    model = STRING, generation = STRING, sections = list(obj({ id = STRING, title = STRING,
      status = STRING, attempts = INTEGER, error = STRING, text = STRING,
      html = { type = "string", description = "a done section as the UI shows it: its text "
        .. "through libcmark-gfm (GitHub-flavoured, safe mode: raw HTML and javascript: links "
        .. "left out), headings one level down, the scorecard's chart as inline SVG" } })),
    downloads = list(obj({ format = { type = "string",
        enum = { "pdf", "docx", "xlsx", "html", "md", "zip" } },
      label = STRING, href = STRING,
      available = { type = "boolean", description = "false: the format's helper program is "
        .. "not installed on this server (the download answers 501 naming the package)" } })) }),
  AuditEvent = obj({ seq = INTEGER, at = { type = "string", format = "date-time" },
    at_ms = { type = "integer", description = "at in milliseconds since the Unix epoch" },
    user = STRING, action = STRING, target = STRING, address = STRING,
    details = { type = "object" } }),
}

local function body(schema)
  return { required = true, content = { ["application/json"] = { schema = schema } } }
end

local function response(description, schema, ctype)
  local r = { description = description }
  if schema then r.content = { [ctype or "application/json"] = { schema = schema } } end
  return r
end

local ERRORS = {
  ["400"] = response("invalid request (the message names the field or query parameter)",
    ref("Error")),
  ["401"] = response("not signed in", ref("Error")),
  ["403"] = response("a change sent with the session cookie but without its CSRF token",
    ref("Error")),
  ["404"] = response("not found, or not yours", ref("Error")),
  admin = response("not found: to anyone but an admin this route does not exist", ref("Error")),
  read_only = response("the assessment is read-only (its owner was removed), or a change sent "
    .. "with the session cookie but without its CSRF token", ref("Error")),
}

local BINARY = { type = "string", format = "binary" }
local BUSY = response("busy: other exports kept the helper programs busy past the time "
  .. "limit; try again", ref("Error"))
local DOWNLOAD_TYPES = {
  ["text/markdown"] = { schema = STRING },
  ["text/html"] = { schema = STRING },
  ["application/pdf"] = { schema = BINARY },
  ["application/vnd.openxmlformats-officedocument.wordprocessingml.document"] = {
    schema = BINARY },
  ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"] = { schema = BINARY },
  ["application/zip"] = { schema = BINARY },
}

-- path -> method -> operation
local paths = {
  ["/healthz"] = { get = { summary = "liveness", security = {},
    responses = { ["200"] = response("up", obj({ status = STRING })) } } },
  ["/readyz"] = { get = { summary = "readiness: database reachable and a generation loaded",
    security = {}, responses = { ["200"] = response("ready"), ["503"] = response("not ready") } } },
  ["/metrics"] = { get = { summary = "Prometheus metrics", security = {},
    responses = { ["200"] = response("text format", STRING, "text/plain") } } },
  ["/api/v1/status"] = { get = { summary = "generation, reload errors, provider, breaker, queue",
    responses = { ["200"] = response("status", { type = "object" }) } } },
  ["/api/v1/openapi.json"] = { get = { summary = "this document", security = {},
    responses = { ["200"] = response("OpenAPI 3.1", { type = "object" }) } } },
  ["/api/v1/session"] = {
    post = { summary = "sign in", security = {}, requestBody = body(ref("Login")),
      responses = { ["201"] = response("signed in; sets the o2c_session and o2c_csrf cookies",
        ref("Session")), ["401"] = ERRORS["401"],
        ["429"] = response("too many failed attempts; see Retry-After", ref("Error")) } },
    delete = { summary = "sign out", responses = { ["204"] = response("signed out") } },
  },
  ["/api/v1/me"] = { get = { summary = "the signed-in user",
    responses = { ["200"] = response("user", obj({ user = ref("User") })) } } },
  ["/api/v1/assessment-types"] = { get = { summary = "loaded assessment types",
    responses = { ["200"] = response("types", list(obj({ id = STRING, title = STRING,
      generation = STRING }))) } } },
  ["/api/v1/assessment-types/{type}"] = { get = { summary = "the questionnaire",
    responses = { ["200"] = response("areas, questions, choices, conditions, units, ranges",
      { type = "object" }), ["404"] = ERRORS["404"] } } },
  ["/api/v1/assessment-types/{type}/score"] = { post = { summary = "preview scores; nothing stored",
    requestBody = body(obj({ answers = ref("Answers"), targets = ref("Targets") }, { "answers" })),
    responses = { ["200"] = response("scores", obj({ scores = ref("Scores"),
      generation = STRING })), ["400"] = ERRORS["400"] } } },
  ["/api/v1/assessments"] = {
    post = { summary = "create", requestBody = body(obj({ type = STRING, client = STRING,
      targets = ref("Targets") }, { "type", "client" })),
      responses = { ["201"] = response("created", ref("Assessment")), ["400"] = ERRORS["400"] } },
    get = { summary = "list (own; admin: all), newest first",
      responses = { ["200"] = response("a page", obj({ items = list(ref("Assessment")),
        next = STRING })) } },
  },
  ["/api/v1/assessments/{id}"] = {
    get = { summary = "assessment with answers and revision",
      responses = { ["200"] = response("assessment", ref("Assessment")), ["404"] = ERRORS["404"] } },
    delete = { summary = "delete (audited)", responses = { ["204"] = response("deleted"),
      ["403"] = ERRORS.read_only, ["404"] = ERRORS["404"] } },
  },
  ["/api/v1/assessments/{id}/answers"] = { patch = { summary = "save answers",
    requestBody = body(obj({ revision = INTEGER, answers = ref("Answers") },
      { "revision", "answers" })),
    responses = { ["200"] = response("saved", obj({ revision = INTEGER, scores = ref("Scores"),
      generation = STRING })), ["400"] = ERRORS["400"], ["403"] = ERRORS.read_only,
      ["404"] = ERRORS["404"], ["409"] = response("stale revision: details hold the current state", ref("Error")) } } },
  ["/api/v1/assessments/{id}/scores"] = { get = { summary = "scores of the saved answers",
    responses = { ["200"] = response("scores", obj({ scores = ref("Scores"), generation = STRING,
      revision = INTEGER })) } } },
  ["/api/v1/assessments/{id}/chart.svg"] = { get = {
    summary = "the scorecard's radar chart (score against target per area) of the saved "
      .. "answers, drawn like the report's",
    responses = { ["200"] = response("the chart", STRING, "image/svg+xml"),
      ["404"] = ERRORS["404"], ["409"] = response("the assessment's type is not loaded",
        ref("Error")) } } },
  ["/api/v1/assessments/{id}/attachments"] = { get = { summary = "evidence images",
    responses = { ["200"] = response("list", list(ref("Attachment"))) } } },
  ["/api/v1/assessments/{id}/attachments/{name}"] = {
    put = { summary = "upload an image (PNG, JPEG, WebP or GIF, checked by content)",
      requestBody = { required = true, content = { ["application/octet-stream"] = {
        schema = { type = "string", format = "binary" } } } },
      responses = { ["201"] = response("stored", ref("Attachment")), ["400"] = ERRORS["400"],
        ["403"] = ERRORS.read_only,
        ["413"] = response("too large", ref("Error")),
        ["415"] = response("not an accepted image", ref("Error")) } },
    get = { summary = "download", responses = { ["200"] = response("the image",
      { type = "string", format = "binary" }, "application/octet-stream") } },
    delete = { summary = "delete", responses = { ["204"] = response("deleted"),
      ["403"] = ERRORS.read_only } },
  },
  ["/api/v1/assessments/{id}/reports"] = {
    post = { summary = "start a report job",
      responses = { ["202"] = response("queued", obj({ report_id = STRING })) } },
    get = { summary = "the assessment's reports, newest first (no section texts)",
      responses = { ["200"] = response("reports", obj({ items = list(ref("Report")) })) } },
  },
  ["/api/v1/reports/{id}"] = { get = { summary = "status, sections and text",
    responses = { ["200"] = response("report", ref("Report")) } } },
  ["/api/v1/reports/{id}/events"] = { get = { summary = "Server-Sent Events of the report",
    responses = { ["200"] = response("event stream", STRING, "text/event-stream") } } },
  ["/api/v1/reports/{id}/sections/{section}/retry"] = { post = {
    summary = "retry one failed section",
    responses = { ["202"] = response("queued again"), ["409"] = response("not failed",
      ref("Error")) } } },
  ["/api/v1/reports/{id}/download"] = { get = { summary = "the report as a file",
    responses = { ["200"] = { description = "the file in the format asked for",
      content = DOWNLOAD_TYPES },
      ["404"] = response("no such report, or not yours", ref("Error")),
      ["500"] = response("the helper program failed (its message says how)", ref("Error")),
      ["501"] = response("not_installed: the format's helper program is not on this server; "
        .. "the message names the Debian package to install", ref("Error")),
      ["503"] = BUSY } } },
  ["/api/v1/reports/{id}/chart.svg"] = { get = { summary = "the report's radar chart (SVG)",
    responses = { ["200"] = response("the chart", BINARY, "image/svg+xml"),
      ["404"] = response("no such report, or its scorecard is not written yet", ref("Error")) } } },
  ["/api/v1/reports/{id}/chart.png"] = { get = {
    summary = "the report's radar chart as a PNG (rsvg-convert)",
    responses = { ["200"] = response("the chart", BINARY, "image/png"),
      ["404"] = response("no such report, or its scorecard is not written yet", ref("Error")),
      ["501"] = response("not_installed: rsvg-convert is missing (Debian package librsvg2-bin)",
        ref("Error")), ["503"] = BUSY } } },
  ["/api/v1/users"] = {
    get = { summary = "accounts (admin)", responses = { ["200"] = response("users",
      list(ref("User"))) } },
    post = { summary = "add an account (admin)", requestBody = body({ type = "object",
      properties = { username = USERNAME, name = OLD_NAME, role = { type = "string",
        enum = { "admin", "consultant" } }, password = { type = "string", minLength = 12 } },
      required = json.array({ "role", "password" }),
      anyOf = json.array({ { required = json.array({ "username" }) },
        { required = json.array({ "name" }) } }) }),
      responses = { ["201"] = response("added", ref("User")),
        ["409"] = response("the username is taken (a removed account keeps its name)",
          ref("Error")) } },
  },
  ["/api/v1/users/{username}"] = {
    patch = { summary = "change role, disable or enable, reset password (admin)",
      requestBody = body(obj({ role = STRING, disabled = { type = "boolean",
        description = "true disables the account and ends its sessions; false enables it "
          .. "again" }, password = STRING })),
      responses = { ["200"] = response("changed", ref("User")),
        ["409"] = response("the account was removed, or you tried to disable yourself",
          ref("Error")) } },
    delete = { summary = "remove an account (admin): its assessments go to reassign_to or "
      .. "stay read-only; nothing is deleted",
      responses = { ["200"] = response("removed", ref("UserRemoval")),
        ["403"] = response("refused: the only enabled admin cannot be removed (or a cookie "
          .. "change without its CSRF token)", ref("Error")),
        ["409"] = response("your own account, or already removed without reassign_to",
          ref("Error")) } },
  },
  ["/api/v1/audit"] = { get = { summary = "audit log (admin)",
    responses = { ["200"] = response("a page", obj({ items = list(ref("AuditEvent")),
      next = INTEGER })) } } },
  ["/"] = { get = { summary = "the web UI", security = {},
    responses = { ["200"] = response("HTML", STRING, "text/html") } } },
  ["/assets/{file}"] = { get = { summary = "web UI assets", security = {},
    responses = { ["200"] = response("file") } } },
}

-- "assessments.create" -> "assessmentsCreate": the route's name (also its
-- metrics label), in the form client generators turn into method names.
local function operation_id(route_name)
  return (route_name:gsub("[._%-](%w)", string.upper))
end

local WRITES = { post = true, put = true, patch = true, delete = true }

-- The 4XX answers the router and api.common give any route: an unknown
-- query parameter (400), not signed in (401), a cookie change without the
-- CSRF token (403), an unknown id in the path or an admin route (404).
local function add_shared_errors(op, route, method)
  local responses = op.responses
  responses["400"] = responses["400"] or ERRORS["400"]
  if route.auth ~= false then
    responses["401"] = responses["401"] or ERRORS["401"]
    if WRITES[method] then responses["403"] = responses["403"] or ERRORS["403"] end
  end
  if route.auth == "admin" then
    responses["404"] = responses["404"] or ERRORS.admin
  elseif #route.params > 0 then
    responses["404"] = responses["404"] or ERRORS["404"]
  end
end

-- Parameters come from what the router knows: the {names} in each path,
-- and the query parameters each route declares (api/query.lua), so they
-- are written once, next to the route.
local function add_from_routes(routes)
  for _, r in ipairs(routes) do
    local method = r.method:lower()
    local op = paths[r.path] and paths[r.path][method]
    if op then -- a route not described is reported by router.check_openapi
      op.operationId = operation_id(r.name)
      if r.module then op.tags = json.array({ r.module }) end
      add_shared_errors(op, r, method)
      local params = query.openapi_parameters(r.query)
      for name in r.path:gmatch("{(%w+)}") do
        params[#params + 1] = { name = name, ["in"] = "path", required = true, schema = STRING }
      end
      if #params > 0 then op.parameters = json.array(params) end
    end
  end
end

-- Every route that writes answers a full disk the same way (api.fail_disk_full).
local STORES_NOTHING = { ["/api/v1/assessment-types/{type}/score"] = true }
local DISK_FULL = response("the server's disk is full: nothing was stored", ref("Error"))

for path, ops in pairs(paths) do
  for method, op in pairs(ops) do
    if op.security then op.security = json.array(op.security) end
    if WRITES[method] and not STORES_NOTHING[path] then op.responses["507"] = DISK_FULL end
  end
end

-- One tag per route module (router.lua's MODULES).
local TAGS = {
  { name = "ops", description = "Liveness, readiness, status, Prometheus metrics and this "
    .. "description." },
  { name = "session", description = "Signing in and out, and who is signed in." },
  { name = "types", description = "The loaded assessment types: questionnaires and score "
    .. "previews." },
  { name = "assessments", description = "Assessments, their answers, scores and evidence "
    .. "images." },
  { name = "reports", description = "Report jobs written section by section by the LLM, their "
    .. "events and downloads." },
  { name = "admin", description = "Accounts and the audit log (admins only)." },
  { name = "web", description = "The web UI's page and assets." },
}

local document = {
  openapi = "3.1.0",
  info = { title = "o2c", version = "1", description = "Order-to-Cash maturity assessments: "
    .. "questionnaires, answers, scores and LLM-written reports.",
    -- The repository carries no open-source licence: all rights reserved
    -- (an SPDX LicenseRef, as OpenAPI 3.1's identifier takes SPDX expressions).
    license = { name = "Proprietary", identifier = "LicenseRef-Proprietary" } },
  servers = json.array({ { url = "/", description = "the o2c server that serves this document" } }),
  tags = json.array(TAGS),
  security = json.array({ { bearer = json.array() }, { cookie = json.array() } }),
  components = {
    schemas = schemas,
    securitySchemes = {
      bearer = { type = "http", scheme = "bearer" },
      cookie = { type = "apiKey", ["in"] = "cookie", name = "o2c_session" },
    },
  },
  paths = paths,
}

local with_parameters = false

function M.document()
  if not with_parameters then
    add_from_routes(require("router").routes())
    with_parameters = true
  end
  return document
end

-- {"GET /api/v1/me", ...} for every documented operation.
function M.operations()
  local ops = {}
  for path, methods in pairs(paths) do
    for method in pairs(methods) do ops[#ops + 1] = method:upper() .. " " .. path end
  end
  table.sort(ops)
  return ops
end

return M
