// The firm's branding on what a client receives: a server configured with a
// firm name, a PNG logo, a colour, a footer line and a disclaimer renders
// them in the HTML, the PDF (WeasyPrint) and the Word file (pandoc), read
// back with the tools a client opens them with.  A logo that is not a PNG
// or SVG, too large, or an SVG with a script, and a colour that is not one,
// stop start-up with a message naming the key; the default stays neutral.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { o2c, tempDir } from './lib/o2c.mjs';
import { serverWithReport, fetchBytes, saved, run, PYTHON } from './lib/exports.mjs';

const work = tempDir('o2c-branding-');
const FIRM = 'Northwind Advisory';
const FOOTER = 'Northwind Advisory LLP · Confidential';
const DISCLAIMER = 'This assessment reflects the answers given in December 2026.\n\n'
  + 'It is not an audit opinion.';
const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="60">'
  + '<rect width="240" height="60" fill="#0f766e"/></svg>';
const flat = (s) => s.replace(/\s+/g, ' ');

function configFile(name, branding) {
  const file = join(work, name);
  writeFileSync(file, `return { branding = ${luaTable(branding)} }\n`);
  return file;
}
function luaTable(t) {
  return '{ ' + Object.entries(t).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ') + ' }';
}

let ctx, logo;
before(async () => {
  const png = spawnPng(SVG);
  logo = saved('logo.png', png);
  const config = configFile('branded.conf.lua', { firm: FIRM, logo, colour: '#0f766e',
    footer: FOOTER, disclaimer: DISCLAIMER });
  ctx = await serverWithReport({ args: ['--config', config] });
  ctx.png = png;
});
after(async () => {
  if (!ctx) return;
  const stopped = await ctx.srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr.slice(-3000));
  ctx.srv.cleanup();
});

// The SVG as PNG bytes (run() reads text, which would mangle them).
function spawnPng(svg) {
  const r = spawnSync('rsvg-convert', ['--format=png'], { input: svg });
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

test('HTML: the logo on the cover, the firm, its colour, footer and disclaimer', async () => {
  const html = await fetchBytes(ctx.admin, `/api/v1/reports/${ctx.rid}/download?format=html`);
  assert.equal(html.status, 200);
  const page = html.buf.toString('utf8');
  const img = page.match(/<img class="logo" alt="([^"]*)" src="data:image\/png;base64,([^"]+)">/);
  assert.ok(img, 'the logo as an image on the cover');
  assert.equal(img[1], FIRM);
  assert.ok(Buffer.from(img[2], 'base64').equals(ctx.png), 'the configured file, byte for byte');
  assert.match(page, new RegExp(`Prepared by ${FIRM} on \\d+ \\w+ \\d{4}`));
  assert.match(page, /--accent: #0f766e/);
  assert.match(page, /<section class="disclaimer"><h2>Disclaimer<\/h2>\n<p>This assessment reflects[^<]*<\/p>\n<p>It is not an audit opinion\.<\/p>/);
  assert.ok(page.includes(`<p class="brand-footer">${FOOTER}</p>`), 'the footer line');
  assert.doesNotMatch(page, /Written with o2c/);
});

test('PDF: the firm in the running header, the footer on each page, the disclaimer', async () => {
  const pdf = await fetchBytes(ctx.admin, `/api/v1/reports/${ctx.rid}/download?format=pdf`);
  assert.equal(pdf.status, 200, pdf.buf.toString().slice(0, 300));
  const file = saved('branded.pdf', pdf.buf);
  const text = flat(run('pdftotext', ['-layout', file, '-']));
  assert.ok(text.includes(`Prepared by ${FIRM}`), 'the cover names the firm');
  assert.ok(text.includes('It is not an audit opinion.'), 'the disclaimer');
  const page2 = flat(run('pdftotext', ['-f', '2', '-l', '2', '-layout', file, '-']));
  assert.ok(page2.includes(FIRM), `running header with the firm: ${page2.slice(0, 200)}`);
  assert.ok(page2.includes(FOOTER), `footer line on page 2: ${page2.slice(-300)}`);
  const images = run('pdfimages', ['-list', file]);
  assert.ok(images.split('\n').length > 3, `the logo is an image in the PDF:\n${images}`);
});

test('DOCX: the logo as a picture, the firm on the cover, the disclaimer', async () => {
  const docx = await fetchBytes(ctx.admin, `/api/v1/reports/${ctx.rid}/download?format=docx`);
  assert.equal(docx.status, 200, docx.buf.toString().slice(0, 300));
  const file = saved('branded.docx', docx.buf);
  const text = flat(run('pandoc', ['-f', 'docx', '-t', 'plain', file]));
  assert.ok(text.includes(`Prepared by ${FIRM}`), 'the cover names the firm');
  assert.ok(text.includes('It is not an audit opinion.'), 'the disclaimer');
  assert.ok(text.includes(FOOTER), 'the footer line');
  const media = run(PYTHON, ['-c', 'import sys, zipfile; print("\\n".join(n for n in '
    + 'zipfile.ZipFile(sys.argv[1]).namelist() if n.startswith("word/media/")))', file]);
  assert.equal(media.trim().split('\n').length, 2, `the chart and the logo:\n${media}`);
});

test('a bad logo or colour stops start-up with the key and what to do', () => {
  const text = saved('notes.txt', Buffer.from('not an image'));
  const big = saved('big.png', Buffer.concat([spawnPng(SVG), Buffer.alloc(600 * 1024)]));
  const scripted = saved('scripted.svg', Buffer.from(SVG.replace('</svg>',
    '<script>alert(1)</script></svg>')));
  const cases = [
    [{ logo: text }, /branding\.logo: .*notes\.txt is neither a PNG nor an SVG image/],
    [{ logo: big }, /branding\.logo: .*big\.png is \d+ KiB; the limit is 512 KiB/],
    [{ logo: scripted }, /branding\.logo: .*scripted\.svg is an SVG with scripts/],
    [{ logo: join(work, 'missing.png') }, /branding\.logo: cannot read .*missing\.png/],
    [{ colour: 'teal' }, /branding\.colour: expected a colour "#rrggbb"/],
  ];
  for (const [branding, message] of cases) {
    const r = o2c(['check', '--config', configFile('bad.conf.lua', branding)]);
    assert.equal(r.status, 2, `${JSON.stringify(branding)}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const svgOk = saved('logo.svg', Buffer.from(SVG));
  const r = o2c(['check', '--config', configFile('svg.conf.lua', { logo: svgOk })]);
  assert.equal(r.status, 0, r.stderr);
});
