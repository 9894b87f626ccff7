// The mock LLM provider does what tests/mock_provider/README.md says, over real
// HTTP on loopback: both API shapes, auth, token-bucket limits with the real
// headers, 429 + retry-after, every fault kind, the control API, determinism.
// Needs no o2c binary.  Small windows keep it fast.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startMock } from '../mock_provider/mock.mjs';

const SERVER = fileURLToPath(new URL('../mock_provider/server.mjs', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function mock(t, options) {
  const m = await startMock(options);
  t.after(() => m.stop());
  return m;
}

const ANTHROPIC_HEADERS = { 'x-api-key': 'test-key', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };

async function call(url, path, body, headers = {}, extra = {}) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...extra,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // truncated or not JSON: callers look at text
  }
  return { status: res.status, headers: res.headers, text, json };
}

const messages = (url, body, headers = ANTHROPIC_HEADERS, extra) => call(url, '/v1/messages', body, headers, extra);
const chat = (url, body, headers = { 'content-type': 'application/json' }) => call(url, '/v1/chat/completions', body, headers);

function ask(content, maxTokens = 400) {
  return { model: 'claude-test', max_tokens: maxTokens, messages: [{ role: 'user', content }] };
}

const tokensOf = (s) => Math.ceil(Buffer.byteLength(s, 'utf8') / 4);

test('Anthropic shape: reply, usage, headers, deterministic text, recorded request', async (t) => {
  const m = await mock(t, { rpm: 50, itpm: 10000, otpm: 5000 });
  const system = [{ type: 'text', text: 'You write O2C maturity reports.' }];
  const user = 'Section: Credit management\nAllowed agents: Dunning Assistant, Cash Matcher\nWrite the findings.';
  const body = {
    model: 'claude-test',
    max_tokens: 1000,
    system,
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: user },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo'.repeat(50) } },
      ],
    }],
  };
  const r = await messages(m.url, body);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.type, 'message');
  assert.equal(r.json.role, 'assistant');
  assert.equal(r.json.model, 'claude-test');
  assert.match(r.json.id, /^msg_/);
  assert.equal(r.json.stop_reason, 'end_turn');
  assert.equal(r.json.content.length, 1);
  assert.equal(r.json.content[0].type, 'text');
  const text = r.json.content[0].text;
  assert.match(text, /^\*\*Credit management\*\* \(mock [0-9a-f]{8}\)\n\nRecommended agent: \*\*(Dunning Assistant|Cash Matcher)\*\*\./);
  assert.ok(text.split('\n\n').length >= 4, 'a few paragraphs');
  assert.ok(tokensOf(text) <= 300, 'about replyTokens (300) at most');
  // usage = the documented estimate: ceil(bytes of all text / 4); images 0
  assert.equal(r.json.usage.input_tokens, tokensOf(system[0].text + user));
  assert.equal(r.json.usage.output_tokens, tokensOf(text));
  // headers
  assert.match(r.headers.get('request-id'), /^req_/);
  for (const kind of ['requests', 'input-tokens', 'output-tokens', 'tokens']) {
    for (const part of ['limit', 'remaining', 'reset']) {
      assert.ok(r.headers.get(`anthropic-ratelimit-${kind}-${part}`), `anthropic-ratelimit-${kind}-${part}`);
    }
  }
  assert.equal(r.headers.get('anthropic-ratelimit-requests-limit'), '50');
  assert.equal(r.headers.get('anthropic-ratelimit-requests-remaining'), '49');
  assert.match(r.headers.get('anthropic-ratelimit-requests-reset'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(Date.parse(r.headers.get('anthropic-ratelimit-requests-reset')) > Date.now());

  // The same request gets the same text; another prompt another one.
  const again = await messages(m.url, body);
  assert.equal(again.json.content[0].text, text);
  const other = await messages(m.url, ask('# Collections\nWrite it.'));
  assert.match(other.json.content[0].text, /^\*\*Collections\*\* \(mock [0-9a-f]{8}\)/);
  assert.doesNotMatch(other.json.content[0].text, /Recommended agent/);

  // A small max_tokens cuts the reply and says so.
  const short = await messages(m.url, ask('Section: Billing', 20));
  assert.equal(short.json.stop_reason, 'max_tokens');
  assert.ok(short.json.usage.output_tokens <= 20);

  // Recorded: secrets redacted, image data replaced by its length.
  const [first] = m.requests();
  assert.equal(first.method, 'POST');
  assert.equal(first.path, '/v1/messages');
  assert.equal(first.api, 'anthropic');
  assert.equal(first.status, 200);
  assert.equal(first.outcome, 'ok');
  assert.equal(first.headers['x-api-key'], '[redacted]');
  assert.equal(first.headers['anthropic-version'], '2023-06-01');
  assert.equal(first.body.messages[0].content[1].source.data, '[base64: 550 chars]');
  assert.equal(first.body.messages[0].content[0].text, user);
  assert.ok(!Number.isNaN(Date.parse(first.time)));
});

test('required phrases: written as asked, except for the disobeying share of prompts', async (t) => {
  const m = await mock(t, {});
  const prompt = (i) => `Section: Billing\nRequired phrases (use each exactly as written): "level 3"; "Cash application"\nClient ${i}.`;
  const textOf = async (i) => (await messages(m.url, ask(prompt(i)))).json.content[0].text;
  assert.match(await textOf(0), /^\*\*Billing\*\* \(mock [0-9a-f]{8}\)\n\nCovered here: level 3; Cash application\.\n\n/);
  assert.doesNotMatch((await messages(m.url, ask('Section: Billing\nClient 0.'))).json.content[0].text, /Covered here/);

  const obeyed = async () => {
    let n = 0;
    for (let i = 0; i < 40; i++) if ((await textOf(i)).includes('Covered here: level 3; Cash application.')) n++;
    return n;
  };
  assert.equal(await obeyed(), 40);
  await fetch(`${m.url}/_mock/config`, { method: 'POST', body: JSON.stringify({ disobey: 1 }) });
  assert.equal(await obeyed(), 0);
  await fetch(`${m.url}/_mock/config`, { method: 'POST', body: JSON.stringify({ disobey: 0.5 }) });
  const half = await obeyed();
  assert.ok(half > 5 && half < 35, `about half of 40 prompts obeyed: ${half}`);
  assert.equal(await obeyed(), half, 'the same prompts obey again');
  const bad = await fetch(`${m.url}/_mock/config`, { method: 'POST', body: JSON.stringify({ disobey: 2 }) });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /disobey must be between 0 and 1/);
});

test('OpenAI shape: reply, usage, x-ratelimit headers', async (t) => {
  const m = await mock(t, { rpm: 20, itpm: 1000, otpm: 2000 });
  const body = {
    model: 'llama-test',
    max_tokens: 500,
    messages: [{ role: 'system', content: 'You write reports.' }, { role: 'user', content: 'Section: Invoicing\nGo.' }],
  };
  const r = await chat(m.url, body);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'chat.completion');
  assert.match(r.json.id, /^chatcmpl-/);
  assert.equal(typeof r.json.created, 'number');
  assert.equal(r.json.model, 'llama-test');
  assert.equal(r.json.choices[0].index, 0);
  assert.equal(r.json.choices[0].message.role, 'assistant');
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  assert.match(r.json.choices[0].message.content, /^\*\*Invoicing\*\* \(mock /);
  const u = r.json.usage;
  assert.equal(u.prompt_tokens, tokensOf('You write reports.Section: Invoicing\nGo.'));
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.match(r.headers.get('x-request-id'), /^req_/);
  assert.equal(r.headers.get('x-ratelimit-limit-requests'), '20');
  assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '19');
  assert.match(r.headers.get('x-ratelimit-reset-requests'), /^(\d+ms|[\d.]+s|\d+m[\d.]+s)$/);
  assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '1000', 'tokens = the tighter (input) bucket');
  assert.equal(r.headers.get('x-ratelimit-remaining-tokens'), String(1000 - u.prompt_tokens));

  const short = await chat(m.url, { ...body, max_tokens: 10 });
  assert.equal(short.json.choices[0].finish_reason, 'length');
  assert.equal(m.requests()[0].api, 'openai');
});

test('auth and validation errors use each API\'s error shape', async (t) => {
  const m = await mock(t, { apiKey: 's3cret' });
  const noKey = await messages(m.url, ask('hi'), { 'anthropic-version': '2023-06-01' });
  assert.equal(noKey.status, 401);
  assert.deepEqual(Object.keys(noKey.json), ['type', 'error', 'request_id']);
  assert.equal(noKey.json.type, 'error');
  assert.equal(noKey.json.error.type, 'authentication_error');
  assert.equal(m.requests()[0].body.model, 'claude-test', 'rejected requests are recorded with their body');
  assert.equal(m.requests()[0].outcome, 'auth');
  const badKey = await messages(m.url, ask('hi'), { ...ANTHROPIC_HEADERS, 'x-api-key': 'wrong' });
  assert.equal(badKey.status, 401);
  assert.equal(badKey.json.error.message, 'invalid x-api-key');
  const good = { ...ANTHROPIC_HEADERS, 'x-api-key': 's3cret' };
  const noVersion = await messages(m.url, ask('hi'), { 'x-api-key': 's3cret' });
  assert.equal(noVersion.status, 400);
  assert.equal(noVersion.json.error.type, 'invalid_request_error');
  const noMax = await messages(m.url, { model: 'x', messages: [{ role: 'user', content: 'hi' }] }, good);
  assert.equal(noMax.status, 400);
  assert.match(noMax.json.error.message, /max_tokens/);
  const badImage = await messages(m.url, ask([{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'x' } }]), good);
  assert.equal(badImage.status, 400);
  assert.match(badImage.json.error.message, /media_type/);
  const notJson = await messages(m.url, '{"model":', good);
  assert.equal(notJson.status, 400);
  assert.equal((await messages(m.url, ask('hi'), good)).status, 200);

  const chatBody = { model: 'x', messages: [{ role: 'user', content: 'hi' }] };
  const noBearer = await chat(m.url, chatBody);
  assert.equal(noBearer.status, 401);
  assert.equal(noBearer.json.error.code, 'invalid_api_key');
  assert.equal((await chat(m.url, chatBody, { authorization: 'Bearer nope' })).status, 401);
  assert.equal((await chat(m.url, chatBody, { authorization: 'Bearer s3cret' })).status, 200);
  assert.equal((await call(m.url, '/v1/nothing', {}, good)).status, 404);
  // Without --api-key the OpenAI route needs no auth, Anthropic any key.
  m.configure({ apiKey: '' });
  assert.equal((await chat(m.url, chatBody)).status, 200);
  assert.equal((await messages(m.url, ask('hi'))).status, 200);
  assert.equal(m.requests().find((r) => r.headers.authorization).headers.authorization, '[redacted]');
  const s = m.stats();
  assert.equal(s.byStatus['401'], 4);
  assert.equal(s.accepted, 4, 'rejected requests are not accepted');
});

test('learned headers decrease as requests are made', async (t) => {
  const m = await mock(t, { rpm: 10, itpm: 1000, otpm: 10000, windowMs: 3600000 }); // slow refill: exact counts
  const prompt = 'x'.repeat(200); // 50 tokens
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const r = await messages(m.url, ask(prompt));
    assert.equal(r.status, 200);
    seen.push([r.headers.get('anthropic-ratelimit-requests-remaining'), r.headers.get('anthropic-ratelimit-input-tokens-remaining')]);
  }
  assert.deepEqual(seen, [['9', '950'], ['8', '900'], ['7', '850']]);
});

test('over the request limit: 429 + retry-after + headers, then the bucket refills', async (t) => {
  const m = await mock(t, { rpm: 2, windowMs: 3000 }); // refills one per 1.5 s
  assert.equal((await messages(m.url, ask('a'))).status, 200);
  assert.equal((await messages(m.url, ask('b'))).status, 200);
  const r = await messages(m.url, ask('c'));
  assert.equal(r.status, 429);
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, 'rate_limit_error');
  assert.match(r.json.error.message, /2 requests per minute/);
  assert.equal(r.headers.get('retry-after'), '2');
  assert.equal(r.headers.get('retry-after-ms'), null);
  assert.equal(r.headers.get('anthropic-ratelimit-requests-remaining'), '0');
  assert.match(r.headers.get('request-id'), /^req_/);
  await sleep(1550);
  assert.equal((await messages(m.url, ask('d'))).status, 200);
  const s = m.stats();
  assert.equal(s.rateLimited, 1);
  assert.equal(s.status429, 1);
  assert.equal(s.accepted, 3);
  // A full bucket plus its refill: 3 accepted within one 3-s window is within
  // the rules (a bucket of L admits up to 2L in a window); the judge is limitExceeded.
  assert.equal(s.peakRequestsInWindow, 3);
  assert.equal(s.peakArrivalsInWindow, 4);
  assert.equal(s.anyLimitExceeded, false);
  assert.equal(m.requests()[2].outcome, 'rate_limited');
  assert.equal(m.requests()[2].limit, 'requests');

  m.configure({ retryAfterMs: true });
  const r2 = await messages(m.url, ask('e'));
  assert.equal(r2.status, 429);
  assert.ok(Number(r2.headers.get('retry-after-ms')) > 0);
});

test('input-token and output-token buckets, and OpenAI 429s', async (t) => {
  const m = await mock(t, { itpm: 50, otpm: 100, windowMs: 3600000 });
  const forty = 'y'.repeat(160); // 40 tokens
  assert.equal((await messages(m.url, ask(forty, 30))).status, 200);
  const r = await messages(m.url, ask(forty, 30));
  assert.equal(r.status, 429);
  assert.match(r.json.error.message, /input tokens per minute/);
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  const huge = await messages(m.url, ask('z'.repeat(400))); // 100 tokens > the whole bucket
  assert.equal(huge.status, 400);

  // Output: max_tokens is reserved at the start (as Anthropic does), the
  // difference refunded at the end.
  m.configure({ itpm: 0 });
  m.reset();
  const used = [];
  for (const max of [30, 40]) {
    const ok = await messages(m.url, ask('q', max));
    assert.equal(ok.status, 200);
    assert.equal(ok.json.stop_reason, 'max_tokens');
    used.push(ok.json.usage.output_tokens);
    assert.equal(ok.headers.get('anthropic-ratelimit-output-tokens-remaining'), String(100 - used.reduce((a, b) => a + b)));
  }
  const out = await messages(m.url, ask('q', 40)); // about 30 left < 40 reserved
  assert.equal(out.status, 429);
  assert.match(out.json.error.message, /output tokens per minute/);

  m.configure({ otpm: 0, rpm: 1 });
  await chat(m.url, { model: 'x', messages: [{ role: 'user', content: 'hi' }] });
  const c = await chat(m.url, { model: 'x', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(c.status, 429);
  assert.equal(c.json.error.type, 'requests');
  assert.equal(c.json.error.code, 'rate_limit_exceeded');
  assert.equal(c.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.ok(Number(c.headers.get('retry-after')) >= 1);
  assert.equal(m.stats().anyLimitExceeded, false);
});

test('concurrency limit and latency', async (t) => {
  const m = await mock(t, { concurrency: 1, latencyMs: 300 });
  const started = Date.now();
  const [a, b] = await Promise.all([messages(m.url, ask('one')), messages(m.url, ask('two'))]);
  assert.deepEqual([a.status, b.status].sort(), [200, 429]);
  assert.ok(Date.now() - started >= 280, 'latency applied');
  const s = m.stats();
  assert.equal(s.peakConcurrency, 1);
  assert.equal(s.inFlight, 0);
  assert.equal(s.rateLimited, 1);
});

test('every fault kind, served from a schedule, and counted', async (t) => {
  const m = await mock(t, { schedule: '500,529,drop,truncate,spend,stall', stallMs: 300 });
  const r500 = await messages(m.url, ask('f'));
  assert.equal(r500.status, 500);
  assert.equal(r500.json.error.type, 'api_error');
  assert.ok(r500.headers.get('request-id'));
  const r529 = await messages(m.url, ask('f'));
  assert.equal(r529.status, 529);
  assert.equal(r529.json.error.type, 'overloaded_error');
  await assert.rejects(messages(m.url, ask('f')), TypeError, 'dropped connection');
  const cut = await messages(m.url, ask('f'));
  assert.equal(cut.status, 200);
  assert.equal(cut.json, null, 'truncated JSON does not parse');
  assert.match(cut.text, /^\{"id":"msg_/);
  assert.ok(cut.headers.get('anthropic-ratelimit-requests-remaining') === null); // no limits configured: no headers
  const spend = await messages(m.url, ask('f'));
  assert.equal(spend.status, 429);
  assert.equal(spend.json.error.type, 'rate_limit_error');
  assert.equal(spend.json.error.details.error_code, 'enforced_spend_limit_reached');
  assert.match(spend.json.error.message, /enforced_spend_limit_reached/);
  assert.equal(spend.headers.get('retry-after'), null);
  const t0 = Date.now();
  const stalled = await messages(m.url, ask('f'));
  assert.equal(stalled.status, 200);
  assert.ok(Date.now() - t0 >= 280, 'held for stallMs');
  assert.equal((await messages(m.url, ask('f'))).status, 200, 'schedule used up');

  // A stall with stallMs 0 holds until the client gives up.
  m.configure({ schedule: ['stall'], stallMs: 0 });
  await assert.rejects(messages(m.url, ask('f'), ANTHROPIC_HEADERS, { signal: AbortSignal.timeout(200) }));
  for (let i = 0; i < 50 && m.stats().abandoned === 0; i++) await sleep(10);

  // OpenAI shapes of the same faults.
  m.configure({ schedule: '529,spend,500' });
  const chatBody = { model: 'x', messages: [{ role: 'user', content: 'hi' }] };
  const c503 = await chat(m.url, chatBody);
  assert.equal(c503.status, 503);
  assert.equal(c503.json.error.type, 'server_error');
  const quota = await chat(m.url, chatBody);
  assert.equal(quota.status, 429);
  assert.equal(quota.json.error.code, 'insufficient_quota');
  assert.equal((await chat(m.url, chatBody)).status, 500);

  const s = m.stats();
  assert.deepEqual(s.faults, { 500: 2, 529: 2, drop: 1, truncate: 1, stall: 2, spend: 2, down: 0 });
  assert.equal(s.dropped, 1);
  assert.equal(s.abandoned, 1);
  assert.equal(s.status429, 2);
  assert.equal(s.rateLimited, 0, 'spend-limit 429s are not rate limiting');
  assert.deepEqual(s.byStatus, { 200: 3, 429: 2, 500: 2, 503: 1, 529: 1 });
  assert.equal(s.inFlight, 0);
  assert.deepEqual(m.requests().map((r) => r.outcome),
    ['500', '529', 'drop', 'truncate', 'spend', 'stall', 'ok', 'abandoned', '529', 'spend', '500']);
});

test('down mode refuses every request, then recovers; control API still answers', async (t) => {
  const m = await mock(t, {});
  const cfg = await (await fetch(`${m.url}/_mock/config`, { method: 'POST', body: JSON.stringify({ downForMs: 300 }) })).json();
  assert.equal(cfg.down, true);
  await assert.rejects(messages(m.url, ask('a')));
  await assert.rejects(chat(m.url, { model: 'x', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal((await fetch(`${m.url}/_mock/stats`)).status, 200);
  await sleep(350);
  assert.equal((await messages(m.url, ask('a'))).status, 200);
  m.configure({ down: true });
  await assert.rejects(messages(m.url, ask('a')));
  m.configure({ down: false });
  assert.equal((await messages(m.url, ask('a'))).status, 200);
  const s = m.stats();
  assert.equal(s.faults.down, 3);
  assert.equal(s.dropped, 3);
  assert.equal(s.byStatus['200'], 2);
});

test('random faults are reproducible with a seed', async (t) => {
  const m = await mock(t, { seed: 42, faultRate: 0.5, faults: '500,529' });
  const run = async () => {
    const out = [];
    for (let i = 0; i < 16; i++) out.push((await messages(m.url, ask(`p${i}`))).status);
    return out;
  };
  const first = await run();
  assert.ok(first.includes(200) && first.some((s) => s >= 500), `a mix: ${first}`);
  const f = m.stats().faults;
  assert.equal(f['500'] + f['529'], first.filter((s) => s !== 200).length);
  await (await fetch(`${m.url}/_mock/reset`, { method: 'POST' })).json();
  assert.equal(m.stats().requests, 0);
  assert.deepEqual(await run(), first, 'same seed, same faults');
  m.configure({ seed: 43 });
  assert.notDeepEqual(await run(), first, 'another seed, other faults');
});

test('no-enforce mode accepts everything and reports the overrun', async (t) => {
  const m = await mock(t, { rpm: 1, otpm: 50, enforce: false });
  for (let i = 0; i < 3; i++) assert.equal((await messages(m.url, ask('hi', 40))).status, 200);
  const s = m.stats();
  assert.equal(s.status429, 0);
  assert.deepEqual(s.limitExceeded, { requests: true, inputTokens: false, outputTokens: true, concurrency: false });
  assert.equal(s.anyLimitExceeded, true);
});

test('control API over HTTP: config, requests, reset, errors', async (t) => {
  const m = await mock(t, {});
  const post = (path, body) => fetch(m.url + path, { method: 'POST', body: JSON.stringify(body) });
  const bad = await post('/_mock/config', { rpmm: 5 });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /unknown key "rpmm"/);
  assert.equal((await post('/_mock/config', { faults: 'boom' })).status, 400);
  const cfg = await (await post('/_mock/config', { rpm: 7, latencyMs: 5, faults: ['overloaded'] })).json();
  assert.equal(cfg.rpm, 7);
  assert.deepEqual(cfg.faults, ['529']);
  await messages(m.url, ask('one'));
  await messages(m.url, ask('two'));
  const last = await (await fetch(`${m.url}/_mock/requests?last=1`)).json();
  assert.equal(last.length, 1);
  assert.equal(last[0].body.messages[0].content, 'two');
  const stats = await (await fetch(`${m.url}/_mock/stats`)).json();
  for (const key of ['requests', 'accepted', 'byStatus', 'dropped', 'abandoned', 'rateLimited', 'status429', 'faults',
    'peakRequestsInWindow', 'peakArrivalsInWindow', 'peakConcurrency', 'inFlight', 'windowMs', 'tokens',
    'limitExceeded', 'anyLimitExceeded', 'buckets', 'startedAt']) {
    assert.ok(key in stats, key);
  }
  assert.equal(stats.requests, 2);
  assert.equal(stats.buckets.requests.remaining, 5);
  assert.ok(stats.tokens.input > 0 && stats.tokens.output > 0);
  await post('/_mock/reset', {});
  const after = await (await fetch(`${m.url}/_mock/stats`)).json();
  assert.equal(after.requests, 0);
  assert.equal(after.buckets.requests.remaining, 7);
  assert.deepEqual(await (await fetch(`${m.url}/_mock/requests`)).json(), []);
  assert.equal((await fetch(`${m.url}/_mock/nope`)).status, 404);
});

test('command line: prints the listening line, takes flags, stops on SIGTERM', async () => {
  const child = spawn(process.execPath, [SERVER, '--port', '0', '--rpm', '5', '--api-key', 'k1', '--faults', '529', '--fault-rate', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const line = await new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const { listening } = JSON.parse(line);
    assert.match(listening, /^http:\/\/127\.0\.0\.1:\d+$/);
    const cfg = await (await fetch(`${listening}/_mock/config`)).json();
    assert.equal(cfg.rpm, 5);
    assert.equal(cfg.enforce, true);
    assert.equal((await messages(listening, ask('hi'))).status, 401);
    const ok = await messages(listening, ask('hi'), { ...ANTHROPIC_HEADERS, 'x-api-key': 'k1' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('anthropic-ratelimit-requests-remaining'), '4');
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
  assert.equal(code, 0);

  const bad = spawn(process.execPath, [SERVER, '--rmp', '5'], { stdio: 'ignore' });
  assert.equal(await new Promise((resolve) => bad.once('exit', resolve)), 2, 'unknown flag = usage error');
});
