// `o2c run`: one assessment headless, no database and no server.  The three
// example answer sets give complete reports drafted offline, with the radar
// chart, as Markdown and self-contained HTML; --json prints scores and the
// sections; a bad answers file is a usage error naming the field.  `o2c run`
// writes the consultant's copy: the open questions are in it and on stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { o2c, tempDir, SOURCE } from './lib/o2c.mjs';

const EXAMPLES = ['laggard', 'median', 'leader'];
const SECTIONS = ['open_questions', 'executive_summary', 'scorecard', 'findings_master_data', 'findings_credit',
  'findings_order_management', 'findings_billing', 'findings_cash_application', 'findings_collections',
  'findings_disputes', 'findings_reporting', 'recommendations', 'roadmap', 'appendix'];

for (const name of EXAMPLES) {
  test(`o2c run on ${name}: a complete report drafted offline, Markdown and HTML`, () => {
    const dir = tempDir('o2c-run-');
    const answers = `scripts/o2c/examples/${name}.json`;
    const md = join(dir, `${name}.md`);
    const r = o2c(['run', 'scripts/o2c', '--answers', answers, '--out', md]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress bars when stderr is not a terminal');
    assert.match(r.stdout, /overall score/);
    const text = readFileSync(md, 'utf8');
    assert.match(text, /^# Order-to-Cash maturity assessment: /);
    assert.match(text, /Drafted offline: no LLM was used/);
    assert.doesNotMatch(text, /<svg/, 'the chart is an image file, not inline SVG');
    assert.match(text, /!\[[^\]]+\]\(chart\.svg\)/);
    for (const title of ['Open questions', 'Executive summary', 'Scorecard', 'Recommendations', 'Roadmap',
      'Appendix: method and sources']) {
      assert.match(text, new RegExp(`^## ${title}$`, 'm'), title);
    }
    assert.equal((text.match(/^## Findings: /gm) || []).length, 8);
    assert.equal((text.match(/^\*Drafted offline \(no LLM\)\.\*$/gm) || []).length, 11);
    assert.doesNotMatch(text, /Not written/);
    // The consultant's copy: complete answers leave nothing open.
    assert.match(text, /^- For the consultant: report run-1, written .* from scripts and knowledge base [0-9a-f]{16}\./m);
    assert.match(text, /Every question asked is answered; nothing is open\./);
    assert.match(r.stdout, /^open questions: none, every question asked is answered$/m);
    // Prose, not internals: no code font, no agent ids.
    assert.doesNotMatch(text, /`/);
    assert.doesNotMatch(text, /[a-z]+(-[a-z]+)*-agent\b/);

    const html = join(dir, `${name}.html`);
    const h = o2c(['run', 'scripts/o2c', '--answers', answers, '--out', html]);
    assert.equal(h.status, 0, h.stderr);
    const page = readFileSync(html, 'utf8');
    assert.match(page, /^<!doctype html>/);
    assert.match(page, /<svg[^>]*role="img"/);
    assert.match(page, /Drafted offline: no LLM was used/);
    assert.match(page, /@media print/);
    assert.match(page, /<table>/);
    assert.doesNotMatch(page, /<script|<link|src="http|url\(http/, 'self-contained');
  });
}

test('o2c run on a half-answered assessment: open questions in the file and on stdout, no false "not measured"', () => {
  const dir = tempDir('o2c-run-');
  const median = JSON.parse(readFileSync(join(SOURCE, 'scripts/o2c/examples/median.json'), 'utf8'));
  const keep = Object.entries(median.answers).filter(([id]) => /^(md_|cr_|om_)/.test(id));
  const file = join(dir, 'half.json');
  writeFileSync(file, JSON.stringify({ client: 'Half Ltd', answers: Object.fromEntries(keep), targets: median.targets }));
  const out = join(dir, 'half.md');
  const r = o2c(['run', 'scripts/o2c', '--answers', file, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Half Ltd: overall score [\d.]+, level 3 \(Defined\); target 3\.4$/m, 'the target of all areas');
  assert.match(r.stdout, /^open questions: 22 of the 36 questions asked are not answered yet \(listed under "Open questions"/m);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /^## Open questions$/m);
  assert.match(text, /^- \*\*DSO\*\*: asked once “DSO measurement” is answered\.$/m);
  const findings = text.slice(text.indexOf('## Executive summary'));
  assert.doesNotMatch(findings, /not measured/i, 'nothing the client did not say');
  assert.doesNotMatch(findings, /Start measuring/);
});

test('a roadmap heading with nothing under it does not reach the report', () => {
  const dir = tempDir('o2c-run-');
  const scripts = join(dir, 'o2c');
  cpSync(join(SOURCE, 'scripts/o2c'), scripts, { recursive: true });
  const report = join(scripts, 'report.lua');
  // An LLM-like roadmap whose middle phase came back empty.
  const text = readFileSync(report, 'utf8').replace('draft = drafts.roadmap,',
    'draft = function() return "### 0-3 months\\n\\n- Name an owner for each area.\\n\\n### 3-6 months\\n\\n'
    + '### 6-12 months\\n\\n- Re-assess.\\n\\n#### Notes\\n" end,');
  assert.notEqual(text, readFileSync(report, 'utf8'));
  writeFileSync(report, text);
  const out = join(dir, 'r.md');
  const r = o2c(['run', scripts, '--kb', join(SOURCE, 'kb'), '--answers', 'scripts/o2c/examples/median.json',
    '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(out, 'utf8');
  const roadmap = md.slice(md.indexOf('## Roadmap'), md.indexOf('## Appendix'));
  assert.match(roadmap, /### 0-3 months\n\n- Name an owner for each area\./);
  assert.doesNotMatch(roadmap, /3-6 months/);
  assert.doesNotMatch(roadmap, /#### Notes/);
  assert.match(roadmap, /### 6-12 months\n\n- Re-assess\./);
});

test('o2c run --json: scores and the sections with their status, and the path', () => {
  const dir = tempDir('o2c-run-');
  const out = join(dir, 'median.md');
  const r = o2c(['run', 'scripts/o2c', '--answers', 'scripts/o2c/examples/median.json', '--out', out,
    '--json', '--target', '4']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(j).sort(), ['report', 'scores']);
  assert.equal(typeof j.scores.overall.score, 'number');
  assert.equal(j.scores.overall.target, 4, '--target sets every area');
  assert.ok(Array.isArray(j.scores.areas) && j.scores.areas.length >= 8);
  assert.deepEqual(j.report.sections.map((s) => s.id), SECTIONS);
  for (const s of j.report.sections) assert.equal(s.status, 'done', s.id);
  assert.equal(j.report.path, out);
  assert.ok(existsSync(out));
});

test('o2c run: the three examples score laggard < median < leader', () => {
  const scores = EXAMPLES.map((name) => {
    const r = o2c(['run', 'scripts/o2c', '--answers', `scripts/o2c/examples/${name}.json`,
      '--out', join(tempDir('o2c-run-'), 'r.md'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).scores.overall.score;
  });
  assert.ok(scores[0] < scores[1] && scores[1] < scores[2], scores.join(' < '));
});

test('o2c run without --out writes <client>-o2c-report.md in the working folder', () => {
  const dir = tempDir('o2c-run-');
  const answers = join(dir, 'a.json');
  writeFileSync(answers, JSON.stringify({ client: 'Müller & Söhne / Ltd', answers: {} }));
  const r = o2c(['run', join(SOURCE, 'scripts/o2c'), '--kb', join(SOURCE, 'kb'), '--answers', answers,
    '--json'], { cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.report.path, 'm-ller-s-hne-ltd-o2c-report.md');
  assert.ok(existsSync(join(dir, j.report.path)));
});

test('o2c run: a bad answers file is a usage error (exit 2) naming the field', () => {
  const dir = tempDir('o2c-run-');
  const cases = [
    [{ client: 'X', answers: { co_dso: 'forty' } }, /answers\.co_dso: /],
    [{ client: 'X', answers: { no_such_question: 3 } }, /answers\.no_such_question: /],
    [{ client: 'X' }, /answers: required/],
    [{ client: 'X', answers: {}, targets: { credit: 9 } }, /targets\.credit: /],
    [{ client: 42, answers: {} }, /client: expected text/],
  ];
  for (const [body, message] of cases) {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(body));
    const r = o2c(['run', 'scripts/o2c', '--answers', file, '--out', join(dir, 'x.md')]);
    assert.equal(r.status, 2, `${JSON.stringify(body)}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /bad\.json/);
  }
  writeFileSync(join(dir, 'broken.json'), '{"answers": {');
  const broken = o2c(['run', 'scripts/o2c', '--answers', join(dir, 'broken.json')]);
  assert.equal(broken.status, 2);
  assert.match(broken.stderr, /broken\.json: not valid JSON/);
  const missing = o2c(['run', 'scripts/o2c', '--answers', join(dir, 'missing.json')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read the answers file/);
  const noAnswers = o2c(['run', 'scripts/o2c']);
  assert.equal(noAnswers.status, 2);
  assert.match(noAnswers.stderr, /--answers/);
  const badTarget = o2c(['run', 'scripts/o2c', '--answers', 'scripts/o2c/examples/median.json', '--target', '7']);
  assert.equal(badTarget.status, 2);
  const badProvider = o2c(['run', 'scripts/o2c', '--answers', 'scripts/o2c/examples/median.json', '--provider', 'gpt']);
  assert.equal(badProvider.status, 2);
});

test('o2c run with a provider that cannot be reached: sections fail visibly, exit 1, never drafted offline', () => {
  const dir = tempDir('o2c-run-');
  const out = join(dir, 'r.md');
  const conf = join(dir, 'c.conf.lua');
  writeFileSync(conf, 'return { llm = { max_retries = 1, section_deadline_s = 5, timeout_s = 2 } }\n');
  const r = o2c(['run', 'scripts/o2c', '--answers', 'scripts/o2c/examples/median.json', '--out', out,
    '--provider', 'anthropic', '--json', '--config', conf],
  { env: { ANTHROPIC_API_KEY: 'test-key', O2C_ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' } });
  assert.equal(r.status, 1, r.stderr);
  const j = JSON.parse(r.stdout);
  const byId = Object.fromEntries(j.report.sections.map((s) => [s.id, s]));
  assert.equal(byId.scorecard.status, 'done');
  assert.equal(byId.findings_credit.status, 'failed');
  assert.ok(byId.findings_credit.error.length > 0);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /Not written: /);
  assert.doesNotMatch(text, /Drafted offline \(no LLM\)/);
});

test('o2c run --format: PDF, Word, Excel and ZIP files; a bad format or a missing helper says what to do', () => {
  const dir = tempDir('o2c-run-');
  const answers = 'scripts/o2c/examples/median.json';
  const magic = { pdf: '%PDF', docx: 'PK', xlsx: 'PK', zip: 'PK' };
  for (const [format, start] of Object.entries(magic)) {
    const out = join(dir, `median.${format}`);
    const r = o2c(['run', 'scripts/o2c', '--answers', answers, '--format', format, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(out).subarray(0, start.length).toString(), start, format);
  }
  const bad = o2c(['run', 'scripts/o2c', '--answers', answers, '--format', 'odt']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--format: expected one of pdf, docx, xlsx, html, md, zip \(got 'odt'\)/);
  const missing = join(dir, 'missing.pdf');
  const bare = o2c(['run', 'scripts/o2c', '--answers', answers, '--out', missing],
    { env: { PATH: tempDir('o2c-empty-path-') } });
  assert.equal(bare.status, 1);
  assert.match(bare.stderr, /needs weasyprint, which is not installed: install the Debian package weasyprint/);
  assert.equal(existsSync(missing), false, 'no file written');
});
