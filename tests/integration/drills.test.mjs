// The fault drills of tests/drills in their short versions (make load runs
// them in full): 3 SIGKILLs under load, the data folder on a full tmpfs, the
// provider down for 15 s, a broken scoring.lua saved under load.  Each
// drill is its own process that prints its checks; a check failing fails
// the test, except the server gaps listed in KNOWN_GAPS, which are reported
// as TODO tests (visible in the output, not failing the suite) until the
// server is fixed — then the TODO test passes and the entry can go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BIN, SOURCE } from './lib/o2c.mjs';

// { tag: { 'check as the drill names it': 'why, and where in the server' } }
// (empty: the one listed here, a full disk answered as a 500 "internal
// error", was fixed in 943f710).
const KNOWN_GAPS = {};

function runDrill(name) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(SOURCE, 'tests/drills', `${name}.mjs`), '--bin', BIN, '--quick'],
      { env: { ...process.env, O2C_SOURCE_DIR: SOURCE }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (code) => resolve({ code, out }));
  });
}

// The drill's verdict lines: [{ok, what, detail}].
function checksOf(out, tag) {
  const re = new RegExp(`^${tag}: (ok  |FAIL) (.*?)(?: -- (.*))?$`, 'gm');
  const list = [];
  let m;
  while ((m = re.exec(out))) list.push({ ok: m[1] === 'ok  ', what: m[2], detail: m[3] });
  return list;
}

function drillTest(file, tag, timeout) {
  const gaps = KNOWN_GAPS[tag] || {};
  let result;
  test(`drill ${file} --quick`, { timeout }, async (t) => {
    result = await runDrill(file);
    const lines = result.out.split('\n').filter((l) => l.startsWith(`${tag}: `) && !l.startsWith(`${tag}: load: `)
      && !/^\S+: (?:\s|[a-z_]+\s+\d)/.test(l));
    t.diagnostic(lines.join('\n'));
    if (/SKIPPED/.test(result.out)) {
      t.skip(result.out.match(/SKIPPED: .*/)[0]);
      return;
    }
    const checks = checksOf(result.out, tag);
    assert.ok(checks.length > 3, `the drill made too few checks:\n${result.out.slice(-3000)}`);
    const failed = checks.filter((c) => !c.ok && !gaps[c.what]);
    assert.deepEqual(failed.map((c) => `${c.what} (${c.detail})`), []);
    const known = checks.filter((c) => !c.ok && gaps[c.what]).length;
    if (!known) assert.equal(result.code, 0, result.out.slice(-3000));
  });
  for (const [what, why] of Object.entries(gaps)) {
    test(`drill ${file}: ${what}`, { todo: why }, () => {
      assert.ok(result, 'the drill did not run');
      if (/SKIPPED/.test(result.out)) return;
      const c = checksOf(result.out, tag).find((x) => x.what === what);
      assert.ok(c, 'the check was not made');
      assert.ok(c.ok, c.detail);
    });
  }
}

drillTest('kill', 'kill', 200000);
drillTest('disk_full', 'disk-full', 120000);
drillTest('provider_down', 'provider-down', 200000);
drillTest('broken_script', 'broken-script', 200000);
