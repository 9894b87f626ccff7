-- Assessments: create, list, read, delete; answers with optimistic
-- concurrency (a stale revision gets 409 with the current state); scores;
-- evidence attachments.  Access rules live in the store: whatever a
-- consultant may not see comes back as "not found".  The store also writes
-- the audit event of each change in the change's own transaction.
local api = require "api.common"
local json = require "json"

local store = require "o2c.store"
local chart = require "generation.chart"

local M = {}

local NAME_PATTERN = "^[%w][%w._%-]*$"
local NAME_MAX = 100

-- Stores each generation's sources once, the first time a result of it is kept.
local stored_generations = {}

local function remember_generation(g)
  local hash = g:hash()
  if stored_generations[hash] then return hash end
  if not store.generation_exists(hash) then
    api.check(store.generation_put(hash, g:sources()))
  end
  stored_generations[hash] = true
  return hash
end

local function load_assessment(ctx)
  return api.check(store.assessment_get(ctx.user, ctx.params.id))
end

local function answer_values(answers)
  local values = {}
  for qid, a in pairs(answers) do
    values[qid] = a.note and { value = a.value, note = a.note } or a.value
  end
  return values
end

local function current_state(ctx, a)
  local answers = api.check(store.answers_get(ctx.user, a.id))
  a.answers = answers
  return a
end

-- The scores as JSON text (json.raw), or nil when the type is not loaded.
local function score_of(ctx, a, answers)
  local g = ctx:gen()
  if not g:call("has_type", a.type) then return nil end
  return json.raw(g:call("score_json", a.type, answer_values(answers), a.targets))
end

---------------------------------------------------------------------------

local function create(ctx)
  local body = ctx:body({
    type = { type = "string", required = true, max = 64 },
    client = { type = "string", required = true, min = 1, max = 200 },
    targets = { type = "object" },
  })
  api.require_type(ctx, body.type)
  if body.targets then
    local ok, problems = ctx:gen():call("validate_targets", body.type, body.targets)
    if not ok then
      api.fail(400, "invalid", "body.targets." .. problems[1].field:gsub("^targets%.", "") ..
        ": " .. problems[1].message, { field = problems[1].field })
    end
  end
  local a = api.check(store.assessment_create(ctx.user, body)) -- audited by the store
  a.answers = {}
  return 201, a
end

-- One page of the caller's assessments (an admin sees everyone's), each
-- with what the dashboard shows: completeness, score, report status.
local function list(ctx)
  local q = ctx:query()
  local page = api.check(store.assessment_list(ctx.user, { limit = q.limit, after = q.after }))
  local items = json.array()
  for _, a in ipairs(page.items) do
    local latest = store.score_latest(ctx.user, a.id)
    local overall = latest and latest.scores and latest.scores.overall
    local reports = store.report_list(ctx.user, a.id)
    a.summary = {
      score = overall and overall.score or json.null,
      level_name = overall and overall.level_name or json.null,
      completeness = overall and overall.completeness or 0,
      report_status = reports and reports[1] and reports[1].status or json.null,
      report_id = reports and reports[1] and reports[1].id or json.null,
    }
    items[#items + 1] = a
  end
  return 200, { items = items, next = page.next or json.null }
end

local function get(ctx)
  local a = current_state(ctx, load_assessment(ctx))
  return 200, a
end

local function delete(ctx)
  local a = load_assessment(ctx)
  api.check(store.assessment_delete(ctx.user, a.id)) -- audited by the store
  return 204, ""
end

---------------------------------------------------------------------------
-- answers
---------------------------------------------------------------------------

local NOTE_MAX = 4000

-- {qid: value | {value=, note=} | null} -> the store's change list.
local function changes_of(answers)
  local changes = {}
  for qid, v in pairs(answers) do
    if v == json.null then
      changes[qid] = false
    elseif type(v) == "table" and (v.value ~= nil or v.note ~= nil) and v[1] == nil then
      if v.note ~= nil and (type(v.note) ~= "string" or #v.note > NOTE_MAX) then
        api.fail(400, "invalid", "body.answers." .. qid .. ".note: expected text of at most "
          .. NOTE_MAX .. " bytes", { field = "answers." .. qid .. ".note" })
      end
      changes[qid] = { value = v.value, note = v.note }
    else
      changes[qid] = { value = v }
    end
  end
  return changes
end

local function save_answers(ctx)
  local body = ctx:body({
    revision = { type = "integer", required = true, min = 0 },
    answers = { type = "object", required = true },
  })
  local a = load_assessment(ctx)
  local values = api.split_answers(body.answers)
  api.check_answers(ctx, a.type, values)
  local revision, message, code, current = store.answers_save(ctx.user, a.id, body.revision,
    changes_of(body.answers))
  if not revision then
    if code == "conflict" then
      local state = current_state(ctx, load_assessment(ctx))
      api.fail(409, "conflict", "these answers were changed elsewhere since revision "
        .. body.revision .. "; the current state is in details", {
          your_revision = body.revision, revision = state.revision, answers = state.answers,
          current = state })
    end
    api.check(nil, message, code)
  end
  -- Score the saved state and keep the snapshot with its generation.
  local answers = api.check(store.answers_get(ctx.user, a.id))
  local scores = score_of(ctx, a, answers)
  if scores then
    store.score_put(ctx.user, a.id, remember_generation(ctx:gen()), scores.text)
  end
  return 200, { revision = revision, scores = scores or json.null,
    generation = ctx:gen():hash() }
end

local function scores(ctx)
  local a = load_assessment(ctx)
  local answers = api.check(store.answers_get(ctx.user, a.id))
  local s = score_of(ctx, a, answers)
  if not s then
    api.fail(409, "type_not_loaded", "the assessment type '" .. a.type
      .. "' is not in the scripts being served")
  end
  return 200, { scores = s, generation = ctx:gen():hash(), revision = a.revision }
end

-- The scorecard's radar chart of the saved answers as SVG, drawn by the same
-- generation/chart.lua as the report's, so the UI draws no chart of its own.
local function chart_svg(ctx)
  local a = load_assessment(ctx)
  local g = ctx:gen()
  if not g:call("has_type", a.type) then
    api.fail(409, "type_not_loaded", "the assessment type '" .. a.type
      .. "' is not in the scripts being served")
  end
  local answers = api.check(store.answers_get(ctx.user, a.id))
  local s = g:call("score", a.type, answer_values(answers), a.targets)
  return 200, chart.scorecard(s.areas or {}), {
    ["Content-Type"] = "image/svg+xml",
    ["Cache-Control"] = "private, no-store",
    -- Opened on its own, the image may load and run nothing.
    ["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'",
    ["X-Content-Type-Options"] = "nosniff",
  }
end

---------------------------------------------------------------------------
-- attachments (evidence images)
---------------------------------------------------------------------------

-- The image type from the first bytes, whatever the name or header claim.
local function sniff_image(bytes)
  if bytes:sub(1, 8) == "\137PNG\r\n\26\n" then return "image/png" end
  if bytes:sub(1, 3) == "\255\216\255" then return "image/jpeg" end
  if bytes:sub(1, 6) == "GIF87a" or bytes:sub(1, 6) == "GIF89a" then return "image/gif" end
  if bytes:sub(1, 4) == "RIFF" and bytes:sub(9, 12) == "WEBP" then return "image/webp" end
  return nil
end

local function check_name(name)
  if #name > NAME_MAX or not name:match(NAME_PATTERN) or name:find("..", 1, true) then
    api.fail(400, "invalid_name", "attachment names use letters, digits, '.', '_' and '-' "
      .. "(starting with a letter or digit, at most " .. NAME_MAX .. " characters, no '..')",
      { field = "name" })
  end
end

local function put_attachment(ctx)
  local name = ctx.params.name
  check_name(name)
  local a = load_assessment(ctx)
  local bytes = ctx.req:body()
  if #bytes == 0 then
    api.fail(400, "empty", "the upload is empty: send the image bytes as the request body")
  end
  local media_type = sniff_image(bytes)
  if not media_type then
    api.fail(415, "unsupported_media_type",
      "only PNG, JPEG, WebP and GIF images are accepted (checked by content, not by name)")
  end
  local meta = api.check(store.attachment_put(ctx.user, a.id, name, media_type, bytes))
  return 201, meta
end

local function get_attachment(ctx)
  local name = ctx.params.name
  check_name(name)
  local a = load_assessment(ctx)
  local meta, bytes, code = store.attachment_get(ctx.user, a.id, name)
  if not meta then api.check(nil, bytes, code) end
  return 200, bytes, {
    ["Content-Type"] = meta.media_type,
    ["Content-Disposition"] = 'attachment; filename="' .. name .. '"',
    ["Cache-Control"] = "private, no-store",
    ["Content-Security-Policy"] = "default-src 'none'; sandbox",
  }
end

local function list_attachments(ctx)
  local a = load_assessment(ctx)
  return 200, json.array(api.check(store.attachment_list(ctx.user, a.id)))
end

local function delete_attachment(ctx)
  local name = ctx.params.name
  check_name(name)
  local a = load_assessment(ctx)
  api.check(store.attachment_delete(ctx.user, a.id, name))
  return 204, ""
end

local P = "/api/v1/assessments"
return {
  { method = "POST", path = P, name = "assessments.create", handler = create },
  { method = "GET", path = P, name = "assessments.list", handler = list, query = {
    limit = { type = "integer", min = 1, max = 200, default = 50,
      description = "assessments per page" },
    after = { type = "uuid", description = "the `next` of the previous page" },
  } },
  { method = "GET", path = P .. "/{id}", name = "assessments.get", handler = get },
  { method = "DELETE", path = P .. "/{id}", name = "assessments.delete", handler = delete },
  { method = "PATCH", path = P .. "/{id}/answers", name = "assessments.answers",
    handler = save_answers },
  { method = "GET", path = P .. "/{id}/scores", name = "assessments.scores", handler = scores },
  { method = "GET", path = P .. "/{id}/chart.svg", name = "assessments.chart", handler = chart_svg },
  { method = "GET", path = P .. "/{id}/attachments", name = "attachments.list",
    handler = list_attachments },
  { method = "PUT", path = P .. "/{id}/attachments/{name}", name = "attachments.put",
    handler = put_attachment },
  { method = "GET", path = P .. "/{id}/attachments/{name}", name = "attachments.get",
    handler = get_attachment },
  { method = "DELETE", path = P .. "/{id}/attachments/{name}", name = "attachments.delete",
    handler = delete_attachment },
}
