// The host as a user meets it: the command line, configuration errors,
// `o2c test` budgets, `o2c check`, and `o2c serve` start-up and shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, writeFileSync, appendFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { o2c, tempDir, startServer, logLines, SOURCE } from './lib/o2c.mjs';

test('version and help', () => {
  const v = o2c(['version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^o2c \d+\.\d+\.\d+\n$/);
  const h = o2c(['help']);
  assert.equal(h.status, 0);
  for (const cmd of ['serve', 'run', 'check', 'test', 'user', 'db', 'audit', 'version', 'help']) {
    assert.match(h.stdout, new RegExp(`^  ${cmd} `, 'm'));
    const own = o2c([cmd, '--help']);
    assert.equal(own.status, 0, `${cmd} --help`);
    assert.match(own.stdout, new RegExp(`usage: o2c ${cmd}`));
    assert.equal(o2c(['help', cmd]).stdout, own.stdout);
  }
});

test('usage errors exit 2 and say what was wrong', () => {
  const unknown = o2c(['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const badFlag = o2c(['check', '--no-such-flag']);
  assert.equal(badFlag.status, 2);
  assert.match(badFlag.stderr, /usage: o2c check/);
  assert.equal(o2c([]).status, 2);
});

test('an unknown option, a missing value or an unwanted one is named, exit 2', () => {
  const cases = [
    [['--bogus'], /^o2c: unknown option '--bogus'/],
    [['serve', '--bogus'], /^o2c serve: unknown option --bogus\n/],
    [['serve', '--bogus=1'], /^o2c serve: unknown option --bogus\n/],
    [['serve', '-x'], /^o2c serve: unknown option -x\n/],
    [['serve', '--listen'], /^o2c serve: --listen needs a value\n/],
    [['check', '--no-such-flag'], /^o2c check: unknown option --no-such-flag\n/],
    [['run', '--bogus'], /^o2c run: unknown option --bogus\n/],
    [['test', '--bogus'], /^o2c test: unknown option --bogus\n/],
    [['user', 'list', '--bogus'], /^o2c user: unknown option --bogus\n/],
    [['user', 'list', '--json=yes'], /^o2c user: --json takes no value\n/],
    [['audit', '--role', 'admin'], /^o2c audit: unknown option --role\n/],
  ];
  for (const [args, message] of cases) {
    const r = o2c(args);
    assert.equal(r.status, 2, `o2c ${args.join(' ')}`);
    assert.match(r.stderr, message, `o2c ${args.join(' ')}`);
  }
});

test('a bad config value stops start-up with file, key, expectation and value', () => {
  const dir = tempDir();
  const file = join(dir, 'o2c.conf.lua');
  writeFileSync(file, 'return { llm = { rpm = "fast" } }\n');
  const r = o2c(['serve', '--config', file]);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), `${file}: llm.rpm: expected a positive number, got "fast"`);

  writeFileSync(file, 'return { limits = { max_connectoins = 10 } }\n');
  const unknownKey = o2c(['serve', '--config', file]);
  assert.equal(unknownKey.status, 2);
  assert.match(unknownKey.stderr, /limits\.max_connectoins: unknown key/);

  writeFileSync(file, 'return { listen = 8080 }\n');
  assert.match(o2c(['serve', '--config', file]).stderr, /listen: expected "host:port".*got 8080/);

  writeFileSync(file, 'local f = io.open("/etc/passwd")\nreturn {}\n');
  const sandboxed = o2c(['serve', '--config', file]);
  assert.equal(sandboxed.status, 2);
  assert.match(sandboxed.stderr, /o2c\.conf\.lua:1: attempt to index a nil value \(global 'io'\)/);

  writeFileSync(file, 'while true do end\n');
  const looping = o2c(['serve', '--config', file]);
  assert.equal(looping.status, 2);
  assert.match(looping.stderr, /o2c\.conf\.lua:1: instruction budget exceeded/);

  const env = o2c(['check'], { env: { O2C_LLM_RPM: 'fast' } });
  assert.equal(env.status, 2);
  assert.equal(env.stderr.trim(), 'O2C_LLM_RPM: llm.rpm: expected a positive number, got "fast"');

  assert.equal(o2c(['serve', '--config', join(dir, 'missing.lua')]).status, 2);
  rmSync(dir, { recursive: true });
});

test('o2c test stops a runaway loop and a memory bomb and goes on', () => {
  const r = o2c(['test', join(SOURCE, 'tests/integration/fixtures/budgets')]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /budgets_spec\.lua:\d+: instruction budget exceeded .*loops forever/);
  assert.match(r.stdout, /budgets_spec\.lua:\d+: memory budget exceeded .*eats memory/);
  assert.match(r.stdout, /^2 passed, 2 failed$/m);
});

test('o2c test and o2c check on the O2C assessment', () => {
  const t = o2c(['test', 'scripts/o2c']);
  assert.equal(t.status, 0, t.stdout);
  const [, passed] = t.stdout.match(/^(\d+) passed, 0 failed$/m);
  assert.ok(Number(passed) >= 30);
  const c = o2c(['check', 'scripts/o2c', '--json']);
  assert.equal(c.status, 0, c.stderr);
  const out = JSON.parse(c.stdout);
  assert.equal(out.ok, true);
  assert.deepEqual(out.errors, []);
  assert.match(out.generation, /^[0-9a-f]{16}$/);
  const [o2cType] = out.types;
  assert.ok(o2cType.areas >= 8 && o2cType.questions >= 40 && o2cType.sections >= 6);
  assert.ok(o2cType.kb_docs >= 8 && o2cType.agents >= 12);
});

test('a syntax error in scoring.lua is named with file:line and exit 1', () => {
  const dir = tempDir();
  cpSync(join(SOURCE, 'scripts'), join(dir, 'scripts'), { recursive: true });
  cpSync(join(SOURCE, 'kb'), join(dir, 'kb'), { recursive: true });
  const scoring = join(dir, 'scripts/o2c/scoring.lua');
  const lines = readFileSync(scoring, 'utf8').split('\n').length;
  appendFileSync(scoring, '\nlocal broken = = 1\n');
  const r = o2c(['check', 'scripts/o2c'], { cwd: dir });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`scripts/o2c/scoring\\.lua:${lines + 1}: `));
  const json = JSON.parse(o2c(['check', 'scripts/o2c', '--json'], { cwd: dir }).stdout);
  assert.equal(json.ok, false);
  assert.equal(json.errors[0].file, 'scripts/o2c/scoring.lua');
  assert.equal(json.errors[0].line, lines + 1);
  rmSync(dir, { recursive: true });
});

test('serve answers /healthz with security headers, logs JSON and stops cleanly', async () => {
  const secret = 'sk-ant-test-this-must-never-be-logged';
  const srv = await startServer({ env: { ANTHROPIC_API_KEY: secret } });
  const r = await fetch(`${srv.url}/healthz`, { headers: { 'X-Request-Id': 'probe-123' } });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok' });
  assert.equal(r.headers.get('x-request-id'), 'probe-123');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.match(r.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  assert.ok(r.headers.get('referrer-policy'));
  const missing = await fetch(`${srv.url}/no/such/route`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, 'not_found');
  const stopped = await srv.stop('SIGTERM');
  assert.equal(stopped.code, 0, stopped.stderr);
  const lines = logLines(stopped.stderr);
  assert.ok(lines.length > 0);
  for (const l of lines) {
    assert.ok(l.ts && l.level && l.msg, JSON.stringify(l));
  }
  assert.ok(lines.some((l) => l.msg === 'http' && l.request_id === 'probe-123' && l.status === 200));
  assert.ok(lines.some((l) => l.msg === 'stopped'));
  assert.ok(!lines.some((l) => /handle left open/.test(l.msg)));
  assert.ok(!stopped.stderr.includes(secret), 'an API key reached the log');
  assert.ok(!stopped.stdout.includes(secret), 'an API key reached stdout');
  srv.cleanup();
});

test('SIGINT stops serve too', async () => {
  const srv = await startServer();
  const stopped = await srv.stop('SIGINT');
  assert.equal(stopped.code, 0, stopped.stderr);
  srv.cleanup();
});
