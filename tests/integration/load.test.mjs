// make load USERS=50 as part of make test: the load generator
// (tests/load/load.mjs) with 50 virtual users against the real server and
// the mock provider at 600 requests/minute with 10% faults, then the
// summary it writes as JSON is checked: every user finished, every report
// done, no acknowledged answer lost, conflicts provoked and resolved, no
// request failed, the provider's limits kept, the database intact.
// Latency is printed, not asserted (ctest runs other suites beside this one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, SOURCE, tempDir } from './lib/o2c.mjs';

const USERS = 50;

function runLoadProcess(args) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(SOURCE, 'tests/load/load.mjs'), ...args],
      { env: { ...process.env, O2C_SOURCE_DIR: SOURCE }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (code) => resolve({ code, out }));
  });
}

test(`make load USERS=${USERS}: every report done, no answer lost`, { timeout: 280000 }, async (t) => {
  const dir = tempDir('o2c-load-test-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'summary.json');
  const { code, out } = await runLoadProcess(['--bin', BIN, '--users', String(USERS), '--json', json,
    '--max-seconds', '250']);
  const text = out.slice(out.indexOf('=== o2c load'));
  t.diagnostic(text);
  let s;
  try { s = JSON.parse(readFileSync(json, 'utf8')); } catch { assert.fail(`no summary was written:\n${out.slice(-4000)}`); }

  assert.equal(s.usersOk, USERS, `users who could not finish: ${s.failures.join('\n')}`);
  assert.equal(s.reports.done, USERS, JSON.stringify(s.reports));
  assert.equal(s.answers.lost, 0, JSON.stringify(s.lost));
  assert.ok(s.answers.acknowledged >= USERS * 30, `${s.answers.acknowledged} answers acknowledged`);
  assert.ok(s.answers.checked >= USERS * 30, `${s.answers.checked} answers checked`);
  assert.ok(s.twoTabUsers > 0 && s.conflicts.seen > 0, 'two tabs provoked conflicts');
  assert.equal(s.conflicts.unresolved, 0);
  assert.equal(s.conflicts.resolved, s.conflicts.seen);
  for (const step of s.steps) assert.equal(step.okPct, 100, `${step.step}: ${JSON.stringify(step.errors)}`);
  for (const step of ['login', 'create', 'answer', 'score_preview', 'upload', 'report_request', 'report_stream',
    'download_md', 'download_html', 'verify_read']) {
    assert.ok(s.steps.some((x) => x.step === step && x.n >= USERS), `step ${step} ran for every user`);
  }
  // The provider's view: faults were injected, the limits were kept.
  assert.ok(s.provider.accepted > USERS * 11, `${s.provider.accepted} provider calls`);
  assert.ok(Object.values(s.provider.faults).reduce((a, b) => a + b, 0) > 0, 'faults were injected');
  assert.equal(s.provider.rateLimited, 0, `the mock refused ${s.provider.rateLimited} calls over its limit`);
  assert.equal(s.provider.anyLimitExceeded, false, JSON.stringify(s.provider.limitExceeded));
  assert.equal(s.dbCheck.status, 0, s.dbCheck.output);
  assert.equal(s.server.exit.code, 0, `o2c serve exit: ${JSON.stringify(s.server.exit)}`);
  assert.equal(s.logErrors, 0, `error lines in the server's log: ${JSON.stringify(s.logErrorSamples)}`);
  if (!/-asan$/.test(BIN)) {
    // Steady state (sampled); the start-up peak is printed with the summary.
    assert.ok(s.server.sampledRssMiB <= 150, `server RSS ${s.server.sampledRssMiB} MiB`);
  }
  assert.equal(code, 0, text);
});
