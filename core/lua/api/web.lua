-- The web UI: the files of core/web, embedded in the binary, served as they
-- are (no build step).  `/` is the single page (index.html); the page routes
-- itself with the URL's hash (#/assessments/<id>/...), so no other path needs
-- to fall back to it.  Scripts, styles and icons are /assets/<file> (one flat
-- folder: core/web/*; the OpenAPI document lists these two routes).
--
-- Caching: every file is revalidated (Cache-Control: no-cache) against an
-- ETag computed from its bytes, so a new binary is picked up on the next load
-- and an unchanged file costs a 304.  HTML carries the strict CSP: nothing
-- inline, nothing from another origin.
local api = require "api.common"
local assets = require "o2c.assets"

local CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
  .. "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

local TYPES = {
  html = "text/html; charset=utf-8",
  css = "text/css; charset=utf-8",
  js = "text/javascript; charset=utf-8",
  mjs = "text/javascript; charset=utf-8",
  json = "application/json",
  svg = "image/svg+xml",
  png = "image/png",
  ico = "image/x-icon",
  txt = "text/plain; charset=utf-8",
}

-- name -> quoted ETag; the files never change while the binary runs.
local etags = {}

-- FNV-1a (32 bit) of the bytes, with the length: enough to tell versions of
-- one file apart; computed once per file.
local function etag_of(name, body)
  local tag = etags[name]
  if tag then return tag end
  local h = 2166136261
  for i = 1, #body do
    h = ((h ~ body:byte(i)) * 16777619) & 0xffffffff
  end
  tag = string.format('"%08x-%x"', h, #body)
  etags[name] = tag
  return tag
end

-- A file name the UI may ask for: letters, digits, '.', '_', '-'; no dot first.
local function safe(name)
  return name and name:match("^[%w_][%w%._%-]*$") and not name:find("..", 1, true)
end

local function serve(ctx, name)
  local body = safe(name) and assets.get("web/" .. name)
  if not body then api.not_found("file /" .. name) end
  local ext = name:match("%.(%w+)$") or ""
  local tag = etag_of(name, body)
  local headers = {
    ["Content-Type"] = TYPES[ext] or "application/octet-stream",
    ["Cache-Control"] = "no-cache",
    ["ETag"] = tag,
  }
  if ext == "html" then headers["Content-Security-Policy"] = CSP end
  local since = ctx.req:header("If-None-Match")
  if since and since == tag then return 304, "", headers end
  return 200, body, headers
end

local function index(ctx)
  return serve(ctx, "index.html")
end

local function file(ctx)
  return serve(ctx, ctx.params.file)
end

return {
  { method = "GET", path = "/", name = "web.index", auth = false, handler = index },
  { method = "GET", path = "/assets/{file}", name = "web.asset", auth = false, handler = file },
}
