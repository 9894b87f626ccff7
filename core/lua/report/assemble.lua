-- A stored report as one document: Markdown, or self-contained HTML (inline
-- CSS with print styles, the scorecard's radar chart as inline SVG, no
-- external resource of any kind).  Used by the download route and `o2c run`.
--
--   local doc = { client =, type =, report = <store.report_get shape>,
--                 generated_at = ms (optional),
--                 audience = "client" (default) | "consultant" }
--   assemble.markdown(doc) -> text
--   assemble.html(doc)     -> text
--   assemble.filename(client, "md" | "html") -> "acme-ltd-o2c-report.md"
--   assemble.section_html(section, {heading_offset =}) -> one section's HTML
--   assemble.chart_svg(report) -> the scorecard's radar chart as SVG text, or nil
--   assemble.branding(doc) -> {firm, colour, footer, disclaimer, logo?, logo_type?}
--
-- Branding (the config's branding table, the logo read at start-up by
-- o2c.branding; doc.branding overrides both): the firm's name on the cover
-- ("Prepared by ... on ..."), its logo above the title, its colour for the
-- cover's rule and the links, its footer line and a closing disclaimer.
-- With nothing set the document is neutral.  In Markdown the logo appears
-- only when doc.logo_file names the file it is shipped as (the Word export).
--
-- Audience: the client's copy (the default, what a consultant hands over)
-- carries no internals (no report id, no generation hash on the cover; the
-- scripts' version is in the appendix, written for a reader) and leaves out
-- the consultant-only sections (M.CONSULTANT_ONLY: the open questions).  The
-- consultant's copy has them, plus the report id and generation on the cover.
-- Headings with nothing under them are dropped from every section's text.
--
-- Each section is labelled with who wrote it: the provider and model, or
-- "drafted offline" (the offline drafter: no LLM), or "generated from the
-- answers and scores" for the scorecard and appendix.  A report drafted
-- offline says so at the top, so it can never pass for an LLM-written one.
local base64 = require "o2c.base64"
local markdown = require "o2c.markdown"
local events = require "report.events"

local M = {}

local DEFAULT_COLOUR = "#1d4ed8"

function M.branding(doc)
  if doc.branding then return doc.branding end
  local set = (require "o2c.config").branding or {}
  local b = { firm = set.firm or "", footer = set.footer or "", disclaimer = set.disclaimer or "",
    colour = set.colour or DEFAULT_COLOUR }
  if not b.colour:match("^#%x%x%x%x%x%x$") then b.colour = DEFAULT_COLOUR end
  b.logo, b.logo_type = (require "o2c.branding").logo()
  return b
end

local function date_of(ms)
  return os.date("!%Y-%m-%d %H:%M UTC", (ms or os.time() * 1000) // 1000)
end

local function status_of(report)
  return events.report_status(report)
end

local MONTHS = { "January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December" }

-- "3 December 2026", for the client's cover.
local function day_of(ms)
  local d = os.date("!*t", (ms or os.time() * 1000) // 1000)
  return string.format("%d %s %d", d.day, MONTHS[d.month], d.year)
end

-- Sections written for the consultant only, by id (the engine's
-- lib.generated.open_questions writes "open_questions").
M.CONSULTANT_ONLY = { open_questions = true }

M.AUDIENCES = { client = true, consultant = true }

local function audience_of(doc)
  local audience = doc.audience or "client"
  if not M.AUDIENCES[audience] then
    error("assemble: audience must be \"client\" or \"consultant\" (got " .. tostring(audience) .. ")", 3)
  end
  return audience
end

-- The sections this audience reads, in order.
local function sections_for(report, audience)
  local list = {}
  for _, s in ipairs(report.sections) do
    if audience == "consultant" or not M.CONSULTANT_ONLY[s.id] then
      list[#list + 1] = s
    end
  end
  return list
end

-- Markdown without headings that have nothing under them: a heading followed
-- only by blank lines up to the next heading of the same or a higher level
-- (or the end) is dropped, so the client never sees an empty sub-heading.
function M.without_empty_headings(text)
  local lines = {}
  for line in (tostring(text or "") .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line
  end
  local function level(line)
    local hashes = line:match("^(#+)%s")
    return hashes and #hashes or nil
  end
  -- From the end, so a heading knows whether what follows it survived.
  local keep = {}
  for i = #lines, 1, -1 do
    local l = level(lines[i])
    if l then
      local has_content = false
      for j = i + 1, #lines do
        if keep[j] ~= false then
          local lj = level(lines[j])
          if lj and lj <= l then break end
          if lj or lines[j]:match("%S") then
            has_content = true
            break
          end
        end
      end
      keep[i] = has_content
    end
  end
  local out = {}
  for i, line in ipairs(lines) do
    if keep[i] ~= false then out[#out + 1] = line end
  end
  return (table.concat(out, "\n"):gsub("\n\n\n+", "\n\n"):gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The cover's lines: the date (and the state when not finished) for all;
-- the report id and generation for the consultant only.
local function cover_lines(doc, audience)
  local r = doc.report
  local status = status_of(r)
  local firm = M.branding(doc).firm
  local first = "Prepared " .. (firm ~= "" and "by " .. firm .. " " or "") .. "on "
    .. day_of(r.finished_at_ms or doc.generated_at)
  if status ~= "done" then first = first .. " (report " .. status .. ")" end
  local lines = { first, M.provider_line(r) }
  if audience == "consultant" then
    local internal = "For the consultant: report " .. tostring(r.id) .. ", written "
      .. date_of(r.finished_at_ms or doc.generated_at)
    if r.generation then internal = internal .. " from scripts and knowledge base " .. r.generation end
    lines[#lines + 1] = internal .. ". The client's copy leaves out the open questions."
  end
  return lines
end

-- "Acme Ltd." -> "acme-ltd": letters and digits only, so the name is safe
-- in a header and on every file system.
function M.filename(client, ext)
  local base = tostring(client or ""):lower():gsub("[^%w]+", "-"):gsub("^%-+", "")
    :gsub("%-+$", "")
  if base == "" then base = "assessment" end
  if #base > 60 then base = base:sub(1, 60):gsub("%-+$", "") end
  return base .. "-o2c-report." .. ext
end

-- Who wrote the report as a whole.
function M.provider_line(report)
  local llm_sections, offline, labels, seen = 0, 0, {}, {}
  for _, s in ipairs(report.sections) do
    if s.kind ~= "generated" and s.status == "done" then
      llm_sections = llm_sections + 1
      local label = events.label(s.provider, s.model, s.kind)
      if label == "drafted offline" then offline = offline + 1 end
      if not seen[label] then
        seen[label] = true
        labels[#labels + 1] = label
      end
    end
  end
  if llm_sections == 0 then
    local label = events.label(report.provider, report.model)
    if label == "drafted offline" then
      return "Drafted offline: no LLM was used; the text comes from the knowledge base and the scores."
    end
    return "Provider: " .. label
  end
  if offline == llm_sections then
    return "Drafted offline: no LLM was used; the text comes from the knowledge base and the scores."
  end
  return "Written by " .. table.concat(labels, ", ") .. " (each section says which)."
end

local STATUS_WORDS = { queued = "Not written yet (queued).", running = "Being written.",
  retrying = "Being written (retrying)." }

local function section_note(s)
  if s.status == "done" then
    local label = events.label(s.provider, s.model, s.kind)
    if s.kind == "generated" then return "Generated from the answers and scores (no LLM)." end
    if label == "drafted offline" then return "Drafted offline (no LLM)." end
    return "Written by " .. label .. "."
  elseif s.status == "failed" then
    return "Not written: " .. tostring(s.error or "failed")
  end
  return STATUS_WORDS[s.status] or s.status
end

local function title_of(doc)
  return "Order-to-Cash maturity assessment: " .. tostring(doc.client or "the client")
end


---------------------------------------------------------------------------
-- Markdown
---------------------------------------------------------------------------

function M.markdown(doc)
  local audience = audience_of(doc)
  local sections = sections_for(doc.report, audience)
  local out = {}
  local function add(s) out[#out + 1] = s end
  local brand = M.branding(doc)
  if brand.logo and doc.logo_file then
    add("![" .. (brand.firm ~= "" and brand.firm:gsub("[%[%]]", "") or "Logo") .. "]("
      .. doc.logo_file .. ")")
    add("")
  end
  add("# " .. title_of(doc))
  add("")
  for _, line in ipairs(cover_lines(doc, audience)) do add("- " .. line) end
  add("")
  add("## Contents")
  add("")
  for i, s in ipairs(sections) do
    add(string.format("%d. %s", i, s.title or s.id))
  end
  for _, s in ipairs(sections) do
    add("")
    add("## " .. (s.title or s.id))
    add("")
    add("*" .. section_note(s) .. "*")
    if s.status == "done" then
      add("")
      add(M.without_empty_headings(s.text))
      if s.warning then
        add("")
        add("> Note: this section did not pass its automatic check: " .. s.warning)
      end
    end
  end
  if brand.disclaimer ~= "" then
    add("")
    add("## Disclaimer")
    add("")
    add(brand.disclaimer)
  end
  if brand.footer ~= "" then
    add("")
    add("---")
    add("")
    add("*" .. brand.footer .. "*")
  end
  add("")
  return table.concat(out, "\n")
end

---------------------------------------------------------------------------
-- HTML
---------------------------------------------------------------------------

local CSS = [[
:root { --ink: #111827; --muted: #4b5563; --line: #d1d5db; --accent: #1d4ed8; --warn: #92400e; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.page { max-width: 60rem; margin: 0 auto; padding: 2.5rem 1.5rem 4rem; }
header.cover { border-bottom: 3px solid var(--accent); padding-bottom: 1rem; margin-bottom: 1.5rem; }
header.cover h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 .75rem; }
.meta { color: var(--muted); margin: .15rem 0; }
.provider { font-weight: 600; color: var(--ink); }
nav.toc ol { columns: 2; column-gap: 2rem; padding-left: 1.25rem; }
nav.toc a { color: var(--accent); text-decoration: none; }
section.report-section { margin-top: 2.5rem; }
h2 { font-size: 1.5rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; margin: 0 0 .4rem; }
h3 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
h4 { font-size: 1.05rem; margin: 1.25rem 0 .4rem; }
.byline { color: var(--muted); font-size: .9rem; font-style: italic; margin: 0 0 1rem; }
.failed { color: #991b1b; font-weight: 600; }
.warning { border-left: 4px solid #f59e0b; background: #fffbeb; color: var(--warn); padding: .5rem .75rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; vertical-align: top; }
th { background: #f3f4f6; text-align: left; }
tbody tr:nth-child(even) td { background: #fafafa; }
figure.chart { margin: 1rem auto; text-align: center; }
figure.chart svg { max-width: 100%; height: auto; }
blockquote { margin: 1rem 0; padding: .25rem 1rem; border-left: 4px solid var(--line); color: var(--muted); }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .9em;
  background: #f3f4f6; padding: 0 .2em; border-radius: 3px; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line); padding-top: .75rem; }
header.cover img.logo { display: block; max-height: 4.5rem; max-width: 16rem; margin: 0 0 1.25rem; }
footer p { margin: .2rem 0; }
section.disclaimer { margin-top: 2.5rem; color: var(--muted); font-size: .9rem; }
section.disclaimer h2 { font-size: 1.1rem; color: var(--ink); }
@media print {
  @page { size: A4; margin: 18mm 16mm; }
  body { font-size: 10.5pt; }
  .page { max-width: none; padding: 0; }
  nav.toc { break-after: page; }
  section.report-section { break-before: page; margin-top: 0; }
  h2, h3, h4 { break-after: avoid; }
  table, figure.chart, tr { break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
  tbody tr:nth-child(even) td, th, code, .warning { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
]]

local function escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end

-- The chart block of a generated section: an <svg> element starting a line,
-- drawn by generation/chart.lua from the scores (a model never writes a
-- generated section, and answers reach it only inside table cells, which
-- hold no line breaks).  Returns the text before, the SVG, the text after.
local function split_chart(text)
  local from = text:find("<svg[%s>]")
  while from and from > 1 and text:sub(from - 1, from - 1) ~= "\n" do
    from = text:find("<svg[%s>]", from + 1)
  end
  if not from then return text end
  local _, to = text:find("</svg>", from, true)
  if not to then return text end
  return text:sub(1, from - 1), text:sub(from, to), text:sub(to + 1)
end

-- The report's chart (the scorecard's radar) as SVG text, or nil.
function M.chart_svg(report)
  for _, s in ipairs(report.sections or {}) do
    if s.kind == "generated" and s.status == "done" and s.text then
      local _, svg = split_chart(s.text)
      if svg then return svg end
    end
  end
  return nil
end

-- One section's Markdown as HTML through o2c.markdown (libcmark-gfm, safe
-- mode: raw HTML in a model's text is left out).  A generated section's
-- chart goes around the renderer into a <figure>.  OPTS.heading_offset
-- deepens the text's headings (the UI shows them under its own).
function M.section_html(s, opts)
  local text = s.text or ""
  local before, svg, after = text, nil, nil
  if s.kind == "generated" then before, svg, after = split_chart(text) end
  local function render(md)
    local html, err = markdown.to_html(md, opts)
    if html then return html end
    return '<p class="warning">This text cannot be shown: ' .. escape(err) .. ".</p>"
  end
  if not svg then return render(before) end
  return render(before) .. '<figure class="chart">' .. svg .. "</figure>\n" .. render(after)
end

local function anchor(id)
  return "s-" .. tostring(id):gsub("[^%w_%-]", "-")
end

function M.html(doc)
  local audience = audience_of(doc)
  local r = doc.report
  local sections = sections_for(r, audience)
  local esc = escape
  local out = {}
  local function add(s) out[#out + 1] = s end
  add("<!doctype html>")
  add('<html lang="en">')
  add("<head>")
  add('<meta charset="utf-8">')
  -- Also when opened from disk: nothing in the file may load or run anything.
  add('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    .. 'style-src \'unsafe-inline\'; img-src data:">')
  add('<meta name="viewport" content="width=device-width, initial-scale=1">')
  add("<title>" .. esc(title_of(doc)) .. "</title>")
  add("<style>" .. CSS .. "</style>")
  local brand = M.branding(doc)
  if brand.colour ~= DEFAULT_COLOUR then
    add("<style>:root { --accent: " .. brand.colour .. "; }</style>")
  end
  add("</head>")
  add("<body>")
  add('<div class="page">')
  add('<header class="cover">')
  if brand.logo then
    add('<img class="logo" alt="' .. esc(brand.firm ~= "" and brand.firm or "Logo") .. '" src="data:'
      .. brand.logo_type .. ";base64," .. base64.encode(brand.logo) .. '">')
  end
  add("<h1>" .. esc(title_of(doc)) .. "</h1>")
  local cover = cover_lines(doc, audience)
  add('<p class="meta">' .. esc(cover[1]) .. "</p>")
  add('<p class="meta provider">' .. esc(cover[2]) .. "</p>")
  for i = 3, #cover do add('<p class="meta">' .. esc(cover[i]) .. "</p>") end
  add("</header>")
  add('<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>')
  for _, s in ipairs(sections) do
    add('<li><a href="#' .. anchor(s.id) .. '">' .. esc(s.title or s.id) .. "</a></li>")
  end
  add("</ol></nav>")
  add("<main>")
  for _, s in ipairs(sections) do
    add('<section class="report-section" id="' .. anchor(s.id) .. '">')
    add("<h2>" .. esc(s.title or s.id) .. "</h2>")
    local note = section_note(s)
    if s.status == "failed" then
      add('<p class="byline failed">' .. esc(note) .. "</p>")
    else
      add('<p class="byline">' .. esc(note) .. "</p>")
    end
    if s.status == "done" then
      add(M.section_html({ kind = s.kind, text = M.without_empty_headings(s.text) }))
      if s.warning then
        add('<p class="warning">Note: this section did not pass its automatic check: '
          .. esc(s.warning) .. "</p>")
      end
    end
    add("</section>")
  end
  add("</main>")
  if brand.disclaimer ~= "" then
    add('<section class="disclaimer"><h2>Disclaimer</h2>')
    for para in (brand.disclaimer .. "\n\n"):gmatch("(.-)\n%s*\n") do
      if para:match("%S") then add("<p>" .. esc(para) .. "</p>") end
    end
    add("</section>")
  end
  local foot = brand.footer ~= "" and brand.footer or "Written with o2c."
  add('<footer><p class="brand-footer">' .. esc(foot) .. "</p><p>" .. esc(M.provider_line(r))
    .. "</p></footer>")
  add("</div>")
  add("</body>")
  add("</html>")
  return table.concat(out, "\n")
end

return M
