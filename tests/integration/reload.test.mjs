// Hot reload as a consultant meets it: an edited question is served at
// once; a broken save keeps the last good scripts serving with the error
// shown in /api/v1/status; new folders are watched; SIGHUP reloads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync, renameSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, login, tempDir, SOURCE } from './lib/o2c.mjs';

let dir, srv, client;

before(async () => {
  dir = tempDir('o2c-reload-');
  cpSync(join(SOURCE, 'scripts'), join(dir, 'scripts'), { recursive: true });
  cpSync(join(SOURCE, 'kb'), join(dir, 'kb'), { recursive: true });
  srv = await startServer({ cwd: dir, data: join(dir, 'var') });
  client = await login(srv.url);
});

after(async () => {
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  rmSync(dir, { recursive: true, force: true });
});

function qfile() { return join(dir, 'scripts/o2c/questionnaire.lua'); }

async function questionText(id) {
  const r = await client.get('/api/v1/assessment-types/o2c');
  assert.equal(r.status, 200, r.text);
  return { text: r.json.questions.find((q) => q.id === id).text, generation: r.json.generation };
}

async function waitFor(check, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v) return Date.now() - t0;
    if (Date.now() - t0 > ms) return null;
    await new Promise((r) => setTimeout(r, 5));
  }
}

// Saves like editors do: in place, or to a temporary file renamed over.
function save(path, text, { byRename = false } = {}) {
  if (byRename) {
    writeFileSync(`${path}.tmp-save`, text);
    renameSync(`${path}.tmp-save`, path);
  } else {
    writeFileSync(path, text);
  }
}

// How fast is a benchmark (make bench); here: served at all, without a restart.
test('an edited question wording is served without a restart', async () => {
  const original = readFileSync(qfile(), 'utf8');
  const before = await questionText('md_ownership');
  const latencies = [];
  for (const [i, byRename] of [[1, false], [2, true], [3, false]]) {
    const wording = `Who owns customer master data? (edit ${i})`;
    const edited = original.replace(before.text, wording);
    assert.notEqual(edited, original, 'the question text was not found in questionnaire.lua');
    save(qfile(), edited, { byRename });
    const ms = await waitFor(async () => (await questionText('md_ownership')).text === wording);
    assert.ok(ms !== null, `edit ${i} was not served within 5 s`);
    latencies.push(ms);
  }
  save(qfile(), original);
  await waitFor(async () => (await questionText('md_ownership')).text === before.text);
  assert.equal(latencies.length, 3);
});

test('a broken save keeps the last good generation serving, with the error visible', async () => {
  const scoring = join(dir, 'scripts/o2c/scoring.lua');
  const original = readFileSync(scoring, 'utf8');
  const good = await questionText('md_ownership');
  const brokenLine = original.split('\n').length + 1;
  save(scoring, `${original}\nthis is not lua\n`);
  const ms = await waitFor(async () => {
    const s = await client.get('/api/v1/status');
    return s.json.reload.errors.length > 0 ? s : null;
  });
  assert.ok(ms !== null, 'the reload error never showed in /api/v1/status');
  const status = (await client.get('/api/v1/status')).json;
  const [err] = status.reload.errors;
  assert.equal(err.file, 'scripts/o2c/scoring.lua');
  assert.equal(err.line, brokenLine);
  assert.ok(err.message.length > 0);
  assert.equal(status.generation, good.generation, 'the broken scripts replaced the good ones');
  const still = await questionText('md_ownership');
  assert.equal(still.generation, good.generation);
  const preview = await client.post('/api/v1/assessment-types/o2c/score', { answers: { md_ownership: 4 } });
  assert.equal(preview.status, 200, 'scoring stopped working after a broken save');
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(metrics, /o2c_reload_errors [1-9]/);
  save(scoring, original);
  const fixed = await waitFor(async () => (await client.get('/api/v1/status')).json.reload.errors.length === 0);
  assert.ok(fixed !== null, 'fixing the file did not clear the error');
});

test('a new folder is watched, and SIGHUP reloads', async () => {
  const before = (await client.get('/api/v1/status')).json.generation;
  mkdirSync(join(dir, 'kb/extra'));
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(join(dir, 'kb/extra/notes.md'), '---\nid: extra-notes\ntitle: Extra notes\narea: billing\ntags: [test]\n---\n# Notes\n\nA note added while o2c runs.\n');
  const ms = await waitFor(async () => (await client.get('/api/v1/status')).json.generation !== before);
  assert.ok(ms !== null, 'a file in a new folder did not make a new generation');
  const afterFolder = (await client.get('/api/v1/status')).json;
  assert.deepEqual(afterFolder.reload.errors, []);
  const loads = afterFolder.reload.loads;
  srv.proc.kill('SIGHUP');
  const reloaded = await waitFor(async () => (await client.get('/api/v1/status')).json.reload.loads > loads);
  assert.ok(reloaded !== null, 'SIGHUP did not reload');
});
