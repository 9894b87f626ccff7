// What the running server publishes, checked by the standard tools a user
// points at it: `promtool check metrics` (Debian's prometheus package) on
// /metrics after real traffic, and `redocly lint` (npm @redocly/cli, the
// recommended rules in tests/redocly.yaml) on /api/v1/openapi.json.  Both
// must report nothing.  A missing tool fails the test and names the package.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, login, tempDir, logLines, SOURCE } from './lib/o2c.mjs';
import { startMock } from '../mock_provider/mock.mjs';

const MEDIAN = JSON.parse(readFileSync(join(SOURCE, 'scripts/o2c/examples/median.json'), 'utf8'));
const REDOCLY = join(SOURCE, 'tests/node_modules/.bin/redocly');

let mock, srv, admin;

before(async () => {
  // A provider that fails once, so the LLM families hold error and retry samples.
  mock = await startMock({ apiKey: 'test-key', schedule: ['500'] });
  srv = await startServer({ env: { O2C_LLM_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'test-key',
    O2C_ANTHROPIC_BASE_URL: mock.url } });
  admin = await login(srv.url);
});

after(async () => {
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr.slice(-3000));
  assert.deepEqual(logLines(stopped.stderr).filter((l) => l.msg === 'openapi mismatch'), [],
    'routes and OpenAPI differ');
  srv.cleanup();
  await mock.stop();
});

// Runs a checking tool; a tool that is not installed fails with what to install.
function runTool(command, args, { input, env = {}, install }) {
  const r = spawnSync(command, args, { input, encoding: 'utf8', timeout: 120000,
    env: { ...process.env, ...env } });
  if (r.error?.code === 'ENOENT') assert.fail(`${command} is not installed: ${install}`);
  assert.ifError(r.error);
  return r;
}

// Traffic on several routes, with errors, and one report written by the mock.
async function someTraffic() {
  const a = await admin.post('/api/v1/assessments', { type: 'o2c', client: 'Acme GmbH' });
  assert.equal(a.status, 201, a.text);
  const saved = await admin.patch(`/api/v1/assessments/${a.json.id}/answers`,
    { revision: 0, answers: MEDIAN.answers });
  assert.equal(saved.status, 200, saved.text);
  assert.equal((await admin.get('/api/v1/assessments/nope')).status, 404);
  assert.equal((await fetch(`${srv.url}/api/v1/me`)).status, 401);
  const started = await admin.post(`/api/v1/assessments/${a.json.id}/reports`);
  assert.equal(started.status, 202, started.text);
  for (let i = 0; i < 600; i++) {
    const r = await admin.get(`/api/v1/reports/${started.json.report_id}`);
    if (['done', 'partial', 'failed'].includes(r.json.status)) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail('the report did not finish');
}

test('/metrics passes `promtool check metrics` with no finding', async () => {
  await someTraffic();
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(text, /^o2c_http_request_duration_seconds_bucket\{route="assessments\.create",le="0\.001"\} \d+$/m);
  assert.match(text, /^o2c_llm_calls_total\{provider="anthropic",status="500"\} 1$/m);
  const r = runTool('promtool', ['check', 'metrics'], { input: text,
    install: "install Debian's prometheus package (make test-deps does: config/install-deps.sh --test)" });
  assert.equal(`${r.stdout}${r.stderr}`, '', 'promtool found problems');
  assert.equal(r.status, 0);
  // What promtool's lint stands for, said in our words too.
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
    else assert.doesNotMatch(name, /_total$/, `${type} ${name}`);
    assert.doesNotMatch(name, /_(ms|milliseconds|us|microseconds)(_|$)/, `${name} is not in base units`);
  }
});

test('the OpenAPI description passes `redocly lint` with no error and no warning', async () => {
  assert.ok(existsSync(REDOCLY),
    'the npm package @redocly/cli is not installed: run tests/install-npm.sh (make test-deps does)');
  const file = join(tempDir('o2c-openapi-'), 'openapi.json');
  writeFileSync(file, await (await fetch(`${srv.url}/api/v1/openapi.json`)).text());
  const r = runTool(REDOCLY, ['lint', file, '--config', join(SOURCE, 'tests/redocly.yaml'),
    '--format', 'json'], { env: { REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    install: 'run tests/install-npm.sh' });
  const report = JSON.parse(r.stdout);
  const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} ${p.location?.[0]?.pointer}: ${p.message}`);
  assert.deepEqual(problems, []);
  assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 });
  assert.equal(r.status, 0, r.stderr);
});
