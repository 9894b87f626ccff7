// The LLM client as `o2c serve` wires it: the provider choice logged at start,
// the scheduler and breaker in /api/v1/status and /metrics, the API key never
// shown, a clean shutdown with the HTTP client closed.  The calls themselves
// (shapes, every retry rule, breaker, fairness, limits) are proven against the
// mock by tests/unit/test_llm_client.c, which drives the same Lua in a real VM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../mock_provider/mock.mjs';
import { startServer, login, logLines } from './lib/o2c.mjs';

const KEY = 'sk-ant-test-0123456789abcdef';
const servers = [];
let mock;

after(async () => {
  for (const s of servers) {
    await s.stop('SIGKILL');
    s.cleanup();
  }
  if (mock) await mock.stop();
});

async function serve(env) {
  const srv = await startServer({ env: { ANTHROPIC_API_KEY: '', O2C_LLM_PROVIDER: 'auto', ...env } });
  servers.push(srv);
  return srv;
}

function choiceLine(stderr) {
  return logLines(stderr).find((l) => l.msg === 'LLM provider');
}

test('auto with ANTHROPIC_API_KEY: anthropic, in status and metrics, key never shown', { timeout: 60000 }, async () => {
  mock = await startMock({ apiKey: KEY, rpm: 60 });
  const srv = await serve({ ANTHROPIC_API_KEY: KEY, O2C_ANTHROPIC_BASE_URL: mock.url,
    O2C_LLM_RPM: '40' });
  const choice = choiceLine(srv.stderr());
  assert.ok(choice, 'the provider choice is logged at start');
  assert.equal(choice.provider, 'anthropic');
  assert.match(choice.reason, /ANTHROPIC_API_KEY is set/);
  assert.equal(choice.base_url, mock.url);

  const admin = await login(srv.url);
  const status = await admin.get('/api/v1/status');
  assert.equal(status.status, 200);
  const llm = status.json.llm;
  assert.equal(llm.provider, 'anthropic');
  assert.equal(llm.model, 'claude-sonnet-4-5');
  assert.equal(llm.breaker_state, 'closed');
  assert.equal(llm.queue_depth, 0);
  assert.equal(llm.scheduler.limits.requests.limit, 40);
  assert.equal(llm.scheduler.limits.requests.configured, true);

  const metrics = await fetch(`${srv.url}/metrics`).then((r) => r.text());
  assert.match(metrics, /o2c_llm_breaker_state\{provider="anthropic",state="closed"\} 1/);
  assert.match(metrics, /o2c_llm_ratelimit_limit\{provider="anthropic",budget="requests"\} 40/);
  assert.match(metrics, /# TYPE o2c_llm_calls_total counter/);

  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, `o2c serve did not stop cleanly:\n${stopped.stderr}`);
  assert.doesNotMatch(stopped.stderr, /handle left open/);
  for (const text of [stopped.stderr, stopped.stdout, status.text, metrics]) {
    assert.ok(!text.includes(KEY), 'the API key was shown');
  }
});

test('auto without a key drafts offline; a configured provider is never replaced', { timeout: 60000 }, async () => {
  const offline = await serve({});
  const c1 = choiceLine(offline.stderr());
  assert.equal(c1.provider, 'offline');
  assert.equal(c1.model, 'offline-drafter');
  assert.match(c1.reason, /not set/);
  const s1 = await (await login(offline.url)).get('/api/v1/status');
  assert.equal(s1.json.llm.provider, 'offline');
  assert.equal((await offline.stop()).code, 0);

  const configured = await serve({ O2C_LLM_PROVIDER: 'anthropic' });
  const c2 = choiceLine(configured.stderr());
  assert.equal(c2.provider, 'anthropic', 'no silent fallback to offline');
  assert.match(c2.reason, /ANTHROPIC_API_KEY is not set/);
  assert.equal((await configured.stop()).code, 0);
});
