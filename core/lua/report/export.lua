-- A stored report in the formats a consultant hands over: Markdown that
-- pastes into other tools (the chart as an image file), self-contained HTML
-- with paged-media print CSS, PDF (WeasyPrint on that HTML), Word (pandoc
-- on the Markdown, with core/data/reference.docx for the styles), Excel
-- (libxlsxwriter: answers, scores, KPIs, gaps), a ZIP of the Markdown with
-- its chart, and the chart alone as SVG or PNG (rsvg-convert).
--
-- The helper programs run as child processes through o2c.spawn (time and
-- size limits, never on the loop).  One that is not installed is an error
-- naming its Debian package:
--   export.render(format, doc) -> bytes | nil, {status =, code =, message =}
--   export.available()         -> {pdf = bool, docx = bool, ...}
--   export.chart_svg(report)   -> svg text | nil
--   export.FORMATS[format]     -> {ext =, type =, label =}
--
-- DOC is assemble's document ({client, type, report, audience?}); xlsx also
-- needs doc.scores, doc.questionnaire and doc.answers (values and notes).
local assemble = require "report.assemble"
local event = require "o2c.event"
local spawn = require "o2c.spawn"
local timer = require "o2c.timer"

local M = {}

-- Limits for one helper run: a report renders in seconds and weighs a few MB.
M.TIMEOUT_MS = 120000
M.MAX_OUTPUT = 64 * 1024 * 1024

-- Helpers running at once (a PDF keeps a core busy for seconds): the others
-- wait their turn, up to the time limit.
M.MAX_RUNNING = 2
local running, freed = 0, nil

-- A slot to run a helper in, released when the returned value goes out of
-- scope (also when the task is cancelled); nil when none came in time.
local function slot()
  freed = freed or event.new()
  local deadline = timer.now() + M.TIMEOUT_MS
  while running >= M.MAX_RUNNING do
    if timer.now() >= deadline then return nil end
    freed:wait(1000)
  end
  running = running + 1
  return setmetatable({}, { __close = function()
    running = running - 1
    freed:signal()
  end })
end

-- The helpers, each with the Debian package that installs it.
local PACKAGES = { weasyprint = "weasyprint", pandoc = "pandoc", ["rsvg-convert"] = "librsvg2-bin",
  zip = "zip" }

M.FORMATS = {
  md = { ext = "md", type = "text/markdown; charset=utf-8", label = "Markdown" },
  html = { ext = "html", type = "text/html; charset=utf-8", label = "HTML" },
  pdf = { ext = "pdf", type = "application/pdf", label = "PDF", needs = { "weasyprint" } },
  docx = { ext = "docx", label = "Word",
    type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    needs = { "pandoc", "rsvg-convert" } },
  xlsx = { ext = "xlsx", label = "Excel",
    type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
  zip = { ext = "zip", type = "application/zip", label = "ZIP",
    needs = { "zip", "rsvg-convert" } },
}
M.ORDER = { "pdf", "docx", "xlsx", "html", "md", "zip" }

local function not_installed(program, what)
  return { status = 501, code = "not_installed", message = string.format(
    "%s needs %s, which is not installed: install the Debian package %s",
    what, program, PACKAGES[program] or program) }
end

-- The first lines of a helper's complaint, for the error message.
local function excerpt(text)
  local lines = {}
  for line in tostring(text or ""):gmatch("[^\n]+") do
    if not line:match("^WARNING") then lines[#lines + 1] = line end
    if #lines == 3 then break end
  end
  return table.concat(lines, " / "):sub(1, 400)
end

-- Runs PROGRAM; its stdout, or nil and the error for the response.
local function run(program, what, opts)
  local turn <close> = slot()
  if not turn then
    return nil, { status = 503, code = "busy", message = string.format(
      "%s: the server is busy with other exports; try again in a minute", what) }
  end
  local res, err, code = spawn.run {
    program = program, args = opts.args, input = opts.input, files = opts.files,
    timeout_ms = M.TIMEOUT_MS, max_output = M.MAX_OUTPUT,
  }
  if not res then
    if code == "not_found" then return nil, not_installed(program, what) end
    return nil, { status = 500, code = "export_failed",
      message = string.format("%s: %s failed: %s", what, program, err) }
  end
  if res.exit_code ~= 0 then
    return nil, { status = 500, code = "export_failed", message = string.format(
      "%s: %s exited with code %d: %s", what, program, res.exit_code, excerpt(res.stderr)) }
  end
  return res.stdout
end

function M.available()
  local out = {}
  for format, f in pairs(M.FORMATS) do
    local ok = true
    for _, program in ipairs(f.needs or {}) do
      if not spawn.find(program) then ok = false end
    end
    out[format] = ok
  end
  out.png = spawn.find("rsvg-convert") ~= nil
  return out
end

---------------------------------------------------------------------------
-- the chart
---------------------------------------------------------------------------

-- The scorecard's radar chart: the first SVG of a generated section.
function M.chart_svg(report)
  for _, s in ipairs(report.sections or {}) do
    if s.kind == "generated" and s.status == "done" then
      local svg = (s.text or ""):match("<svg.-</svg>")
      if svg then return svg end
    end
  end
  return nil
end

local function chart_title(svg)
  local t = svg:match("<title>(.-)</title>") or "Chart"
  return (t:gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&quot;", '"'):gsub("&amp;", "&"))
end

function M.chart_png(report)
  local svg = M.chart_svg(report)
  if not svg then
    return nil, { status = 404, code = "not_found",
      message = "this report has no chart yet: its scorecard section is not written" }
  end
  -- Twice the drawing's size: sharp on a slide and in print.
  return run("rsvg-convert", "The PNG chart", { args = { "--format=png", "--zoom=2",
    "--background-color=white" }, input = svg })
end

---------------------------------------------------------------------------
-- Markdown (the chart as an image file) and HTML (print CSS)
---------------------------------------------------------------------------

-- DOC with each inline chart replaced by a Markdown image of FILE.
local function with_chart_file(doc, file)
  local sections = {}
  for i, s in ipairs(doc.report.sections or {}) do
    local copy = {}
    for k, v in pairs(s) do copy[k] = v end
    if s.kind == "generated" and type(s.text) == "string" then
      copy.text = s.text:gsub("<svg.-</svg>", function(svg)
        return "![" .. chart_title(svg):gsub("[%[%]]", "") .. "](" .. file .. ")"
      end)
    end
    sections[i] = copy
  end
  local report = {}
  for k, v in pairs(doc.report) do report[k] = v end
  report.sections = sections
  local out = {}
  for k, v in pairs(doc) do out[k] = v end
  out.report = report
  return out
end

function M.markdown(doc, chart_file)
  return assemble.markdown(with_chart_file(doc, chart_file or "chart.svg"))
end

-- A CSS string: quotes, backslashes, line breaks and "<" (never "</style>") escaped.
local function css_string(s)
  return '"' .. tostring(s):gsub('[\\"<\n\r]', function(c)
    return string.format("\\%x ", c:byte())
  end) .. '"'
end

-- Paged media (WeasyPrint, and browsers that print margin boxes): A4, a
-- running header with the client's name (and the firm's, when branded)
-- from page 2 on, the firm's footer line and "Page N of M" at the foot,
-- each section on a new page.  Plain values where the screen CSS uses
-- var() in shorthands, which WeasyPrint ignores.
local function print_css(doc)
  local brand = assemble.branding(doc)
  local margin = 'font: 8.5pt "DejaVu Sans", sans-serif; color: #4b5563;'
  local right = brand.firm ~= "" and brand.firm or "Order-to-Cash maturity assessment"
  local foot = ""
  if brand.footer ~= "" then
    foot = "\n  @bottom-left { content: " .. css_string(brand.footer) .. "; " .. margin .. " }"
  end
  return [[
<style media="print">
@page { size: A4; margin: 22mm 16mm 20mm 16mm;
  @top-left { content: ]] .. css_string(doc.client or "the client") .. "; " .. margin .. [[ }
  @top-right { content: ]] .. css_string(right) .. "; " .. margin .. [[ }]] .. foot .. [[

  @bottom-right { content: "Page " counter(page) " of " counter(pages); ]] .. margin .. [[ } }
@page :first { @top-left { content: none; } @top-right { content: none; } }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
header.cover { border-bottom: 3px solid ]] .. brand.colour .. [[; }
a { color: ]] .. brand.colour .. [[; }
h2 { border-bottom: 1px solid #d1d5db; }
th, td { border: 1px solid #d1d5db; }
blockquote { border-left: 4px solid #d1d5db; }
footer { border-top: 1px solid #d1d5db; }
section.report-section, section.disclaimer { break-before: page; }
h2, h3, h4 { break-after: avoid; }
table { break-inside: auto; }
tr, figure.chart { break-inside: avoid; }
</style>
]]
end

function M.html(doc)
  local html = assemble.html(doc)
  local css = print_css(doc)
  return (html:gsub("</head>", function() return css .. "</head>" end, 1))
end

---------------------------------------------------------------------------
-- PDF, Word, ZIP
---------------------------------------------------------------------------

local function pdf(doc)
  return run("weasyprint", "The PDF export", { args = { "--quiet", "-", "-" },
    input = M.html(doc) })
end

-- The firm's logo as a PNG for Word (an SVG one rasterised), or nil.
local function logo_png(doc)
  local brand = assemble.branding(doc)
  if not brand.logo then return nil end
  if brand.logo_type == "image/png" then return brand.logo end
  return run("rsvg-convert", "The Word export's logo", { args = { "--format=png",
    "--height=160", "--keep-aspect-ratio" }, input = brand.logo })
end

local function docx(doc)
  local png, err = M.chart_png(doc.report)
  if not png and err.status ~= 404 then return nil, err end
  local logo, logo_err = logo_png(doc)
  if logo_err then return nil, logo_err end
  local reference = require("o2c.assets").get("data/reference.docx")
  local with_logo = {}
  for k, v in pairs(doc) do with_logo[k] = v end
  if logo then with_logo.logo_file = "logo.png" end
  return run("pandoc", "The Word export", {
    args = { "--from=gfm", "--to=docx", "--reference-doc=reference.docx", "--output=-",
      "report.md" },
    files = { ["report.md"] = M.markdown(with_logo, "chart.png"), ["chart.png"] = png,
      ["logo.png"] = logo, ["reference.docx"] = reference },
  })
end

local function zip(doc)
  local svg = M.chart_svg(doc.report)
  local md_name = assemble.filename(doc.client, "md")
  local files = { [md_name] = M.markdown(doc, "chart.svg") }
  local names = { md_name }
  if svg then
    local png, err = M.chart_png(doc.report)
    if not png then return nil, err end
    files["chart.svg"], files["chart.png"] = svg, png
    names[2], names[3] = "chart.svg", "chart.png"
  end
  -- -X: no extra file attributes (uid, times beyond the DOS ones); "-": to stdout.
  local args = { "-q", "-X", "-" }
  for _, n in ipairs(names) do args[#args + 1] = n end
  return run("zip", "The ZIP export", { args = args, files = files })
end

local RENDER = {
  md = function(doc) return M.markdown(doc, "chart.svg") end,
  html = M.html,
  pdf = pdf,
  docx = docx,
  xlsx = function(doc) return require("report.workbook").render(doc) end,
  zip = zip,
}

function M.render(format, doc)
  local render = RENDER[format]
  if not render then
    return nil, { status = 400, code = "invalid", message = "unknown format " .. tostring(format) }
  end
  -- Every helper the format needs, before any runs: one message, the first missing.
  for _, program in ipairs(M.FORMATS[format].needs or {}) do
    if not spawn.find(program) then
      return nil, not_installed(program, "The " .. M.FORMATS[format].label .. " export")
    end
  end
  return render(doc)
end

return M
