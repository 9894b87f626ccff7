// Every export of a finished report through the real API, read back with the
// tools a client would open it with: the PDF (WeasyPrint on the server)
// through pdftotext, the Word file through pandoc, the Excel workbook through
// openpyxl (Debian's python3), the ZIP through Python's zipfile; the Markdown
// has its chart as a file, not inline SVG; the chart alone as SVG and PNG.
// Then the same server without the helper programs (an empty PATH): each
// format that needs one answers 501 naming the Debian package, the report
// says which downloads are unavailable, and the others still work.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from './lib/o2c.mjs';
import { CLIENT, PYTHON, serverWithReport, fetchBytes, saved, run } from './lib/exports.mjs';

const flat = (s) => s.replace(/\s+/g, ' ');
// The sections a client's copy carries (the consultant's open questions stay out).
const clientSections = (report) => report.sections.filter((s) => s.id !== 'open_questions');

let ctx;
before(async () => { ctx = await serverWithReport(); });
after(async () => {
  if (!ctx) return;
  const stopped = await ctx.srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr.slice(-3000));
  ctx.srv.cleanup();
});

test('PDF: made on the server, with the client, the overall level and every section', async () => {
  const { admin, rid, report, scores } = ctx;
  const pdf = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=pdf`);
  assert.equal(pdf.status, 200, pdf.buf.toString().slice(0, 500));
  assert.equal(pdf.type, 'application/pdf');
  assert.equal(pdf.disposition, 'attachment; filename="acme-ltd-o2c-report.pdf"');
  assert.equal(pdf.buf.subarray(0, 4).toString(), '%PDF');
  const file = saved('report.pdf', pdf.buf);
  const text = flat(run('pdftotext', ['-layout', file, '-']));
  assert.ok(text.includes(CLIENT), 'the client name');
  const o = scores.overall;
  assert.ok(text.includes(`${o.level} ${o.level_name}`), `the overall level ${o.level} ${o.level_name}`);
  for (const s of clientSections(report)) assert.ok(text.includes(s.title), `section "${s.title}"`);
  // Paged media: page 2 carries the running header and its page number.
  const pages = Number(run('pdfinfo', [file]).match(/^Pages:\s+(\d+)/m)[1]);
  assert.ok(pages > 5, `${pages} pages: each section starts a page`);
  const page2 = flat(run('pdftotext', ['-f', '2', '-l', '2', '-layout', file, '-']));
  assert.ok(page2.includes(CLIENT), 'running header with the client name');
  assert.ok(page2.includes(`Page 2 of ${pages}`), `page number on page 2: ${page2.slice(-200)}`);
});

test('four PDFs asked at once: each waits its turn and comes back whole', async () => {
  const { admin, rid } = ctx;
  const all = await Promise.all([1, 2, 3, 4].map(() =>
    fetchBytes(admin, `/api/v1/reports/${rid}/download?format=pdf`)));
  for (const r of all) {
    assert.equal(r.status, 200);
    assert.equal(r.buf.subarray(0, 4).toString(), '%PDF');
  }
});

test('HTML: self-contained, with print CSS for paged media', async () => {
  const { admin, rid } = ctx;
  const html = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=html`);
  assert.equal(html.status, 200);
  const page = html.buf.toString('utf8');
  assert.match(page, /@page \{[^]*@top-left \{ content: "Acme Ltd"/);
  assert.match(page, /counter\(page\) " of " counter\(pages\)/);
  assert.match(page, /section\.report-section, section\.disclaimer \{ break-before: page; \}/);
  assert.doesNotMatch(page, /<script|<link|src="http/);
  // No branding configured: a neutral document.
  assert.doesNotMatch(page, /Prepared by|class="logo"|class="disclaimer"/);
});

test('DOCX: pandoc reads back the same headings, the tables and the chart as a picture', async () => {
  const { admin, rid, report } = ctx;
  const docx = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=docx`);
  assert.equal(docx.status, 200, docx.buf.toString().slice(0, 500));
  assert.equal(docx.type, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
  assert.equal(docx.disposition, 'attachment; filename="acme-ltd-o2c-report.docx"');
  const file = saved('report.docx', docx.buf);
  const md = run('pandoc', ['-f', 'docx', '-t', 'gfm', file]);
  assert.match(md, /^# Order-to-Cash maturity assessment: Acme Ltd$/m);
  for (const s of clientSections(report)) {
    assert.match(md, new RegExp(`^## ${s.title.replace(/[()]/g, '\\$&')}$`, 'm'), `heading "${s.title}"`);
  }
  assert.match(md, /^\| Area +\| Weight/m, 'the scorecard table is a table');
  const parts = run(PYTHON, ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', file]);
  assert.match(parts, /^word\/media\/[^\n]+\.png$/m, 'the chart is a PNG picture in the document');
  assert.match(run('pandoc', ['-f', 'docx', '-t', 'plain', file]), /Executive summary/);
});

test('XLSX: answers, areas, KPIs and gaps as sheets, scores as numbers', async () => {
  const { admin, rid, scores } = ctx;
  const x = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=xlsx`);
  assert.equal(x.status, 200, x.buf.toString().slice(0, 500));
  assert.equal(x.type, 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
  const file = saved('report.xlsx', x.buf);
  const dump = JSON.parse(run(PYTHON, ['-c', `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
print(json.dumps({ws.title: [[{"v": c.value, "t": c.data_type} for c in row] for row in ws.iter_rows()] for ws in wb}))
`, file]));
  assert.deepEqual(Object.keys(dump), ['Summary', 'Areas', 'Answers', 'KPIs', 'Gaps']);
  const header = (sheet) => dump[sheet][0].map((c) => c.v);
  const column = (sheet, name) => dump[sheet].slice(1).map((row) => row[header(sheet).indexOf(name)]);

  const areaScores = column('Areas', 'Score');
  assert.equal(areaScores.length, scores.areas.length);
  areaScores.forEach((cell, i) => {
    assert.equal(cell.t, 'n', `area ${i + 1}'s score is a number cell`);
    assert.equal(cell.v, scores.areas[i].score);
  });
  assert.ok(column('Areas', 'Target').every((c) => c.t === 'n'));
  const overall = dump.Summary.find((row) => row[0].v === 'Overall score (1 to 5)');
  assert.deepEqual(overall[1], { v: scores.overall.score, t: 'n' });

  const answered = column('Answers', 'Score').filter((c) => c.v !== null);
  assert.ok(answered.length >= 30, `${answered.length} question scores`);
  assert.ok(answered.every((c) => c.t === 'n'), 'question scores are numbers');
  const kpiValues = column('KPIs', 'Value').filter((c) => c.v !== null);
  assert.ok(kpiValues.length > 0 && kpiValues.every((c) => c.t === 'n'), 'KPI values are numbers');
  const gaps = column('Gaps', 'Gap');
  assert.ok(gaps.length > 0 && gaps.every((c) => c.t === 'n' && c.v > 0), 'gaps are positive numbers');
});

test('Markdown: the chart as an image file; the ZIP holds it with chart.svg and chart.png', async () => {
  const { admin, rid } = ctx;
  const md = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=md`);
  assert.equal(md.status, 200);
  const text = md.buf.toString('utf8');
  assert.doesNotMatch(text, /<svg/i);
  assert.match(text, /^!\[Maturity score against target[^\]]*\]\(chart\.svg\)$/m);

  const zip = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=zip`);
  assert.equal(zip.status, 200, zip.buf.toString().slice(0, 500));
  assert.equal(zip.type, 'application/zip');
  const file = saved('report.zip', zip.buf);
  const listing = JSON.parse(run(PYTHON, ['-c', `
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(json.dumps({n: z.read(n).decode("latin-1") for n in z.namelist()}))
`, file]));
  assert.deepEqual(Object.keys(listing), ['acme-ltd-o2c-report.md', 'chart.svg', 'chart.png']);
  assert.equal(listing['acme-ltd-o2c-report.md'], Buffer.from(text, 'utf8').toString('latin1'));

  const svg = await fetchBytes(admin, `/api/v1/reports/${rid}/chart.svg`);
  assert.equal(svg.status, 200);
  assert.equal(svg.type, 'image/svg+xml');
  assert.match(svg.buf.toString(), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<\/svg>$/);
  assert.equal(listing['chart.svg'], svg.buf.toString('latin1'));
  const png = await fetchBytes(admin, `/api/v1/reports/${rid}/chart.png`);
  assert.equal(png.status, 200);
  assert.equal(png.type, 'image/png');
  assert.deepEqual([...png.buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(png.buf.length > 10000, 'a real picture');
});

test('the report lists its downloads, each available here', async () => {
  const { report } = ctx;
  assert.deepEqual(report.downloads.map((d) => [d.format, d.available]),
    [['pdf', true], ['docx', true], ['xlsx', true], ['html', true], ['md', true], ['zip', true]]);
});

test('without the helper programs: 501 naming the Debian package, the UI told, the rest works', async () => {
  // An empty PATH: the server finds none of weasyprint, pandoc, rsvg-convert, zip.
  const bare = await serverWithReport({ env: { PATH: tempDir('o2c-empty-path-') } });
  try {
    const { admin, rid, report } = bare;
    const want = { pdf: 'weasyprint', docx: 'pandoc', zip: 'zip' };
    for (const [format, pkg] of Object.entries(want)) {
      const r = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=${format}`);
      assert.equal(r.status, 501, `${format}: ${r.buf}`);
      assert.equal(r.json.error.code, 'not_installed');
      assert.match(r.json.error.message, new RegExp(`install the Debian package ${pkg}$`));
    }
    const png = await fetchBytes(admin, `/api/v1/reports/${rid}/chart.png`);
    assert.equal(png.status, 501);
    assert.match(png.json.error.message, /install the Debian package librsvg2-bin$/);
    const available = Object.fromEntries(report.downloads.map((d) => [d.format, d.available]));
    assert.deepEqual(available, { pdf: false, docx: false, xlsx: true, html: true, md: true, zip: false });
    for (const format of ['md', 'html', 'xlsx']) {
      const r = await fetchBytes(admin, `/api/v1/reports/${rid}/download?format=${format}`);
      assert.equal(r.status, 200, format);
    }
    assert.equal((await fetchBytes(admin, `/api/v1/reports/${rid}/chart.svg`)).status, 200);
  } finally {
    const stopped = await bare.srv.stop();
    assert.equal(stopped.code, 0, stopped.stderr.slice(-3000));
    bare.srv.cleanup();
  }
});
