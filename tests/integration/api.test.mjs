// The HTTP API against the real server: every route's success path, the
// ways a request is refused (auth, ownership, revisions, bodies, uploads),
// and the HTTP behaviour a client relies on (keep-alive, pipelining, slow
// clients, graceful shutdown).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, login, Client, tempDir, logLines, ADMIN_PASSWORD, SOURCE } from './lib/o2c.mjs';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const MEDIAN = JSON.parse(readFileSync(join(SOURCE, 'scripts/o2c/examples/median.json'), 'utf8'));

let srv, admin, alice, bob;

// A config with short limits so the slow paths are quick to reach.
function shortConfig(dir) {
  const file = join(dir, 'test.conf.lua');
  writeFileSync(file, `return {
    limits = { header_timeout_s = 1, upload_bytes = 64 * 1024, attachments_per_assessment = 3 },
  }\n`);
  return file;
}

before(async () => {
  const dir = tempDir();
  srv = await startServer({ args: ['--config', shortConfig(dir)] });
  admin = await login(srv.url);
  for (const name of ['alice', 'bob']) {
    const r = await admin.post('/api/v1/users', { name, role: 'consultant', password: `${name}-password-123` });
    assert.equal(r.status, 201, r.text);
  }
  alice = await login(srv.url, 'alice', 'alice-password-123');
  bob = await login(srv.url, 'bob', 'bob-password-123');
});

after(async () => {
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  const lines = logLines(stopped.stderr);
  assert.deepEqual(lines.filter((l) => l.msg === 'openapi mismatch'), [], 'routes and OpenAPI differ');
  assert.ok(!lines.some((l) => /handle left open/.test(l.msg)));
  srv.cleanup();
});

async function newAssessment(client, body = { type: 'o2c', client: 'Acme GmbH' }) {
  const r = await client.post('/api/v1/assessments', body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

test('sign in, who am I, sign out', async () => {
  const anon = new Client(srv.url);
  const wrong = await anon.post('/api/v1/session', { username: 'alice', password: 'not-her-password' });
  const unknown = await anon.post('/api/v1/session', { username: 'nobody', password: 'not-her-password' });
  assert.equal(wrong.status, 401);
  assert.equal(unknown.status, 401);
  assert.deepEqual(wrong.json.error.message, unknown.json.error.message);
  const c = await login(srv.url, 'alice', 'alice-password-123');
  const me = await c.get('/api/v1/me');
  assert.equal(me.status, 200);
  assert.equal(me.json.user.name, 'alice');
  assert.equal(me.json.user.role, 'consultant');
  assert.equal((await c.del('/api/v1/session')).status, 204);
  assert.equal((await c.get('/api/v1/me')).status, 401, 'a signed-out token still works');
});

test('login sets HttpOnly SameSite=Strict session cookie and a CSRF cookie', async () => {
  const r = await fetch(`${srv.url}/api/v1/session`, { method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'alice-password-123' }) });
  assert.equal(r.status, 201);
  const cookies = r.headers.getSetCookie();
  const session = cookies.find((c) => c.startsWith('o2c_session='));
  const csrf = cookies.find((c) => c.startsWith('o2c_csrf='));
  assert.match(session, /HttpOnly/);
  assert.match(session, /SameSite=Strict/);
  assert.doesNotMatch(csrf, /HttpOnly/);
  const cookie = `${session.split(';')[0]}; ${csrf.split(';')[0]}`;
  const csrfValue = csrf.split(';')[0].split('=')[1];
  const base = { 'Content-Type': 'application/json', Cookie: cookie };
  const body = JSON.stringify({ type: 'o2c', client: 'Cookie Co' });
  const without = await fetch(`${srv.url}/api/v1/assessments`, { method: 'POST', headers: base, body });
  assert.equal(without.status, 403, 'a cookie-authenticated change without CSRF proof was accepted');
  const withHeader = await fetch(`${srv.url}/api/v1/assessments`, { method: 'POST',
    headers: { ...base, 'X-CSRF-Token': csrfValue }, body });
  assert.equal(withHeader.status, 201);
  const sameOrigin = await fetch(`${srv.url}/api/v1/assessments`, { method: 'POST',
    headers: { ...base, Origin: srv.url }, body });
  assert.equal(sameOrigin.status, 201);
  const otherOrigin = await fetch(`${srv.url}/api/v1/assessments`, { method: 'POST',
    headers: { ...base, Origin: 'http://evil.example' }, body });
  assert.equal(otherOrigin.status, 403);
  const read = await fetch(`${srv.url}/api/v1/me`, { headers: { Cookie: cookie } });
  assert.equal(read.status, 200, 'reads with the cookie need no CSRF header');
});

test('requests without a valid session are refused', async () => {
  assert.equal((await new Client(srv.url).get('/api/v1/assessments')).status, 401);
  assert.equal((await new Client(srv.url, 'forged-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').get('/api/v1/assessments')).status, 401);
  const bad = await fetch(`${srv.url}/api/v1/me`, { headers: { Authorization: 'Basic abc' } });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).error.code, 'unauthenticated');
});

test('sessions expire when idle and at their absolute limit', async () => {
  const dir = tempDir();
  const file = join(dir, 'short.conf.lua');
  writeFileSync(file, 'return { sessions = { idle_timeout_s = 1.5, absolute_timeout_s = 3 } }\n');
  const own = await startServer({ args: ['--config', file] });
  const idle = await login(own.url);
  assert.equal((await idle.get('/api/v1/me')).status, 200);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal((await idle.get('/api/v1/me')).status, 401, 'an idle session was still accepted');
  const busy = await login(own.url);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 900));
    if (i < 2) assert.equal((await busy.get('/api/v1/me')).status, 200, 'activity did not extend the session');
  }
  assert.equal((await busy.get('/api/v1/me')).status, 401, 'a session outlived its absolute limit');
  await own.stop();
  own.cleanup();
});

test('assessment types, questionnaire and score preview', async () => {
  const types = await alice.get('/api/v1/assessment-types');
  assert.equal(types.status, 200);
  assert.equal(types.json[0].id, 'o2c');
  assert.match(types.json[0].generation, /^[0-9a-f]{16}$/);
  const q = await alice.get('/api/v1/assessment-types/o2c');
  assert.equal(q.status, 200);
  assert.ok(q.json.areas.length >= 8 && q.json.questions.length >= 40);
  assert.equal((await alice.get('/api/v1/assessment-types/nope')).status, 404);
  const preview = await alice.post('/api/v1/assessment-types/o2c/score', { answers: MEDIAN.answers });
  assert.equal(preview.status, 200, preview.text);
  assert.ok(preview.json.scores.overall.score > 1 && preview.json.scores.overall.score < 5);
  assert.ok(Array.isArray(preview.json.scores.hidden));
  const empty = await alice.post('/api/v1/assessment-types/o2c/score', { answers: {} });
  assert.equal(empty.status, 200);
  assert.ok(Array.isArray(empty.json.scores.missing_required));
  const outOfRange = await alice.post('/api/v1/assessment-types/o2c/score',
    { answers: { co_dso_tracking: 'monthly', co_dso: 9999 } });
  assert.equal(outOfRange.status, 400);
  assert.match(outOfRange.json.error.message, /co_dso/);
  const unknownQ = await alice.post('/api/v1/assessment-types/o2c/score', { answers: { no_such: 1 } });
  assert.equal(unknownQ.status, 400);
  assert.match(unknownQ.json.error.message, /no_such/);
  const unknownField = await alice.post('/api/v1/assessment-types/o2c/score', { answers: {}, extra: 1 });
  assert.equal(unknownField.status, 400);
  assert.equal(unknownField.json.error.details.field, 'body.extra');
});

test('bodies: malformed JSON, wrong types, wrong content type, too large', async () => {
  const malformed = await alice.request('POST', '/api/v1/assessments', '{"type": "o2c",', { 'Content-Type': 'application/json' });
  assert.equal(malformed.status, 400);
  assert.equal(malformed.json.error.code, 'malformed_json');
  // NaN, Infinity and hex numbers are not JSON (lua-cjson takes them unless told):
  // found by fuzz_json as a 500 from a NaN inside a multi-choice answer.
  for (const text of ['{"answers": {"ca_remittance": ["email", NaN]}}', '{"answers": {"co_dso": Infinity}}',
    '{"answers": {"co_dso": 0x10}}']) {
    const r = await alice.request('POST', '/api/v1/assessment-types/o2c/score', text, { 'Content-Type': 'application/json' });
    assert.equal(r.status, 400, text);
    assert.equal(r.json.error.code, 'malformed_json', text);
  }
  const wrongType = await alice.post('/api/v1/assessments', { type: 'o2c', client: 42 });
  assert.equal(wrongType.status, 400);
  assert.equal(wrongType.json.error.details.field, 'body.client');
  const missing = await alice.post('/api/v1/assessments', { type: 'o2c' });
  assert.equal(missing.status, 400);
  assert.match(missing.json.error.message, /body\.client: required/);
  const text = await alice.request('POST', '/api/v1/assessments', 'type=o2c', { 'Content-Type': 'text/plain' });
  assert.equal(text.status, 415);
  const big = await alice.post('/api/v1/assessments', { type: 'o2c', client: 'x'.repeat(1100 * 1024) });
  assert.equal(big.status, 413);
  const badTarget = await alice.post('/api/v1/assessments', { type: 'o2c', client: 'T', targets: { billing: 9 } });
  assert.equal(badTarget.status, 400);
  const unknownType = await alice.post('/api/v1/assessments', { type: 'nope', client: 'T' });
  assert.equal(unknownType.status, 404);
});

test('answers: save, conflict with current state, validation stores nothing', async () => {
  const a = await newAssessment(alice);
  assert.equal(a.revision, 0);
  const first = await alice.patch(`/api/v1/assessments/${a.id}/answers`,
    { revision: 0, answers: { md_ownership: 3, co_dso_tracking: 'monthly', co_dso: { value: 41, note: 'from the ERP ageing report' } } });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.revision, 1);
  assert.ok(first.json.scores.overall);
  const stale = await alice.patch(`/api/v1/assessments/${a.id}/answers`, { revision: 0, answers: { md_ownership: 1 } });
  assert.equal(stale.status, 409);
  assert.equal(stale.json.error.code, 'conflict');
  assert.equal(stale.json.error.details.revision, 1);
  assert.equal(stale.json.error.details.answers.md_ownership.value, 3);
  const invalid = await alice.patch(`/api/v1/assessments/${a.id}/answers`, { revision: 1, answers: { md_ownership: 7 } });
  assert.equal(invalid.status, 400);
  assert.match(invalid.json.error.message, /md_ownership/);
  const unknown = await alice.patch(`/api/v1/assessments/${a.id}/answers`, { revision: 1, answers: { nope: 1 } });
  assert.equal(unknown.status, 400);
  const got = await alice.get(`/api/v1/assessments/${a.id}`);
  assert.equal(got.json.revision, 1, 'a refused save changed the revision');
  assert.equal(got.json.answers.md_ownership.value, 3);
  assert.equal(got.json.answers.co_dso.note, 'from the ERP ageing report');
  const cleared = await alice.patch(`/api/v1/assessments/${a.id}/answers`, { revision: 1, answers: { md_ownership: null } });
  assert.equal(cleared.status, 200);
  assert.equal((await alice.get(`/api/v1/assessments/${a.id}`)).json.answers.md_ownership, undefined);
  const scores = await alice.get(`/api/v1/assessments/${a.id}/scores`);
  assert.equal(scores.status, 200);
  assert.match(scores.json.generation, /^[0-9a-f]{16}$/);
});

test('twenty saves on one revision: one wins, nineteen conflict', async () => {
  const a = await newAssessment(alice);
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    alice.patch(`/api/v1/assessments/${a.id}/answers`, { revision: 0, answers: { md_ownership: 1 + (i % 5) } })));
  const statuses = results.map((r) => r.status).sort();
  assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join(','));
  assert.equal(statuses.filter((s) => s === 409).length, 19, statuses.join(','));
});

// The server checkpoints the WAL on the thread pool (not in a commit on the
// loop): after many saves the WAL has been copied back and restarted, so it
// stays near SQLite's 1,000-page threshold instead of growing with every save.
test('the WAL is checkpointed as saves go on', async () => {
  const { statSync } = await import('node:fs');
  const example = JSON.parse(readFileSync(join(SOURCE, 'scripts/o2c/examples/median.json'), 'utf8'));
  const a = await newAssessment(alice);
  let revision = 0;
  const ids = Object.keys(example.answers);
  const before = statSync(join(srv.data, 'o2c.db')).size;
  for (let i = 0; i < 400; i++) {
    const answers = {};
    for (const id of ids) answers[id] = example.answers[id];
    answers.co_dso = 20 + (i % 50); // every save changes something
    const r = await alice.patch(`/api/v1/assessments/${a.id}/answers`, { revision, answers });
    assert.equal(r.status, 200, r.text);
    revision = r.json.revision;
  }
  await new Promise((r) => setTimeout(r, 500));
  const wal = statSync(join(srv.data, 'o2c.db-wal')).size;
  assert.ok(wal < 8 * 1024 * 1024, `WAL is ${wal} bytes after 400 saves: no checkpoint ran`);
  assert.ok(statSync(join(srv.data, 'o2c.db')).size > before, 'nothing was copied into the database file');
});

test("another consultant's assessment does not exist for them; admin sees all", async () => {
  const a = await newAssessment(alice, { type: 'o2c', client: 'Private Ltd' });
  for (const r of [
    await bob.get(`/api/v1/assessments/${a.id}`),
    await bob.patch(`/api/v1/assessments/${a.id}/answers`, { revision: 0, answers: {} }),
    await bob.get(`/api/v1/assessments/${a.id}/scores`),
    await bob.del(`/api/v1/assessments/${a.id}`),
    await bob.put(`/api/v1/assessments/${a.id}/attachments/x.png`, PNG),
  ]) assert.equal(r.status, 404);
  const bobs = await bob.get('/api/v1/assessments');
  assert.ok(!bobs.json.items.some((x) => x.id === a.id));
  const all = await admin.get('/api/v1/assessments?limit=200');
  assert.ok(all.json.items.some((x) => x.id === a.id && x.owner_name === 'alice'));
  assert.equal((await admin.get(`/api/v1/assessments/${a.id}`)).status, 200);
});

test('attachments: real images only, safe names, limits', async () => {
  const a = await newAssessment(alice);
  const put = await alice.put(`/api/v1/assessments/${a.id}/attachments/flow-chart.png`, PNG, { 'Content-Type': 'image/png' });
  assert.equal(put.status, 201, put.text);
  assert.equal(put.json.media_type, 'image/png');
  const got = await fetch(`${srv.url}/api/v1/assessments/${a.id}/attachments/flow-chart.png`, { headers: { Authorization: `Bearer ${alice.token}` } });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.match(got.headers.get('content-disposition'), /attachment; filename="flow-chart.png"/);
  assert.equal(got.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), PNG);
  const fake = await alice.put(`/api/v1/assessments/${a.id}/attachments/fake.png`, Buffer.from('<svg onload=alert(1)>'), { 'Content-Type': 'image/png' });
  assert.equal(fake.status, 415);
  for (const name of ['..%2F..%2Fetc%2Fpasswd', '.hidden.png', 'a%20b.png', 'x..png']) {
    const r = await alice.put(`/api/v1/assessments/${a.id}/attachments/${name}`, PNG);
    assert.ok(r.status === 400 || r.status === 404, `${name}: ${r.status}`);
  }
  const tooBig = await alice.put(`/api/v1/assessments/${a.id}/attachments/big.png`, Buffer.concat([PNG, Buffer.alloc(70 * 1024)]));
  assert.equal(tooBig.status, 413);
  const list = await alice.get(`/api/v1/assessments/${a.id}/attachments`);
  assert.deepEqual(list.json.map((x) => x.name), ['flow-chart.png']);
  for (const n of ['b.png', 'c.png']) assert.equal((await alice.put(`/api/v1/assessments/${a.id}/attachments/${n}`, PNG)).status, 201);
  const overCount = await alice.put(`/api/v1/assessments/${a.id}/attachments/d.png`, PNG);
  assert.ok(overCount.status >= 400 && overCount.status < 500, `count limit: ${overCount.status}`);
  assert.equal((await alice.del(`/api/v1/assessments/${a.id}/attachments/flow-chart.png`)).status, 204);
  assert.equal((await alice.get(`/api/v1/assessments/${a.id}/attachments/flow-chart.png`)).status, 404);
});

test('delete an assessment', async () => {
  const a = await newAssessment(alice);
  assert.equal((await alice.del(`/api/v1/assessments/${a.id}`)).status, 204);
  assert.equal((await alice.get(`/api/v1/assessments/${a.id}`)).status, 404);
});

test('admin routes: users and audit, invisible to consultants', async () => {
  assert.equal((await alice.get('/api/v1/users')).status, 404);
  assert.equal((await alice.get('/api/v1/audit')).status, 404);
  assert.equal((await alice.post('/api/v1/users', { name: 'mallory', role: 'admin', password: 'x'.repeat(12) })).status, 404);
  const users = await admin.get('/api/v1/users');
  assert.equal(users.status, 200);
  assert.ok(['admin', 'alice', 'bob'].every((n) => users.json.some((u) => u.name === n)));
  assert.ok(!JSON.stringify(users.json).includes('argon2'), 'password hashes leaked');
  const short = await admin.post('/api/v1/users', { name: 'carol', role: 'consultant', password: 'short' });
  assert.equal(short.status, 400);
  const dup = await admin.post('/api/v1/users', { name: 'alice', role: 'consultant', password: 'y'.repeat(12) });
  assert.equal(dup.status, 409);
  const carol = await admin.post('/api/v1/users', { name: 'carol', role: 'consultant', password: 'carol-password-1' });
  assert.equal(carol.status, 201);
  const c = await login(srv.url, 'carol', 'carol-password-1');
  const disabled = await admin.patch('/api/v1/users/carol', { disabled: true });
  assert.equal(disabled.status, 200);
  assert.equal((await c.get('/api/v1/me')).status, 401, 'disabling did not revoke the session');
  const audit = await admin.get('/api/v1/audit?limit=1000');
  assert.equal(audit.status, 200);
  for (const e of audit.json.items) {
    assert.match(e.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'audit at in RFC 3339 UTC');
    assert.equal(new Date(e.at).getTime(), e.at_ms);
  }
  const actions = new Set(audit.json.items.map((e) => e.action));
  for (const a of ['assessment.created', 'user.added', 'user.disabled', 'answers.saved']) assert.ok(actions.has(a), `audit lacks ${a}: ${[...actions]}`);
  assert.ok([...actions].some((a) => /login/.test(a)), 'logins are not audited');
});

test('status, readiness, metrics and the OpenAPI document', async () => {
  const status = await alice.get('/api/v1/status');
  assert.equal(status.status, 200);
  assert.match(status.json.generation, /^[0-9a-f]{16}$/);
  assert.deepEqual(status.json.reload.errors, []);
  assert.equal((await fetch(`${srv.url}/readyz`)).status, 200);
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(metrics, /o2c_http_requests_total\{route="types\.score",status="200"\} \d+/);
  assert.match(metrics, /o2c_http_request_duration_seconds_bucket/);
  assert.match(metrics, /o2c_http_connections_open \d+/);
  assert.match(metrics, /o2c_sessions_active \d+/);
  assert.match(metrics, /o2c_generation_info\{generation="[0-9a-f]{16}"\} 1/);
  // Previews ran on replicas of the generation (built on the thread pool).
  assert.match(metrics, /o2c_generation_replicas [1-9]\d*/);
  const luaBytes = Number(metrics.match(/o2c_lua_memory_bytes (\d+)/)?.[1]);
  assert.ok(luaBytes > 100000 && luaBytes < 512 * 1024 * 1024, `o2c_lua_memory_bytes ${luaBytes}`);
  const doc = await (await fetch(`${srv.url}/api/v1/openapi.json`)).json();
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.info.license?.name, 'info.license');
  const ids = new Set();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const where = `${method} ${path}`;
      assert.match(op.operationId ?? '', /^[a-z][a-zA-Z0-9]*$/, `${where}: operationId in camelCase`);
      assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} used twice`);
      ids.add(op.operationId);
      assert.ok(op.tags?.every((t) => doc.tags.some((d) => d.name === t && d.description)), `${where}: tags`);
      // Every operation documents 400, and answers it: an unknown query
      // parameter is refused before the handler runs (so nothing changes).
      assert.ok(op.responses['400'], `${where}: no 400 documented`);
      const url = `${srv.url}${path.replace(/\{[^}]+\}/g, 'x')}?no_such_parameter=1`;
      const r = await fetch(url, { method: method.toUpperCase(), headers: { Authorization: `Bearer ${admin.token}` } });
      assert.equal(r.status, 400, `${where}?no_such_parameter=1`);
    }
  }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const url = srv.url + path.replace(/\{[^}]+\}/g, 'x');
      const r = await fetch(url, { method: method.toUpperCase(), headers: { Authorization: `Bearer ${admin.token}` } });
      assert.notEqual(r.status, 405, `${method} ${path} is documented but not routed`);
    }
  }
});

// Raw HTTP on one socket: the bytes a client sends and receives.
function rawExchange(payload, { waitFor, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = connect(srv.port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); resolve({ data, closed: false }); }, timeout);
    sock.on('data', (d) => {
      data += d;
      if (waitFor && waitFor(data)) { clearTimeout(timer); sock.destroy(); resolve({ data, closed: false }); }
    });
    sock.on('close', () => { clearTimeout(timer); resolve({ data, closed: true }); });
    sock.on('error', reject);
    if (payload) sock.write(payload);
  });
}

test('keep-alive and pipelined requests are answered in order', async () => {
  const req = (id) => `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: pipe-${id}\r\n\r\n`;
  const { data } = await rawExchange(req(1) + req(2) + req(3), {
    waitFor: (d) => (d.match(/HTTP\/1\.1 200/g) || []).length === 3 });
  const ids = [...data.matchAll(/X-Request-Id: (pipe-\d)/gi)].map((m) => m[1]);
  assert.deepEqual(ids, ['pipe-1', 'pipe-2', 'pipe-3']);
  assert.doesNotMatch(data, /Connection: close/i);
});

test('a client that trickles its headers is dropped', async () => {
  const sock = connect(srv.port, '127.0.0.1');
  let data = '';
  sock.on('data', (d) => { data += d; });
  const closed = new Promise((r) => sock.on('close', r));
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => { if (!sock.destroyed) sock.write('X'); }, 300);
  const t0 = Date.now();
  await closed;
  clearInterval(trickle);
  assert.ok(Date.now() - t0 < 8000, 'the slow client was not dropped');
  assert.match(data, /408/);
});

test('oversized headers get 431', async () => {
  const { data } = await rawExchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`,
    { waitFor: (d) => d.includes('\r\n\r\n') });
  assert.match(data, /^HTTP\/1\.1 431/);
});

test('graceful shutdown finishes a request in flight', async () => {
  const own = await startServer();
  const inFlight = fetch(`${own.url}/api/v1/session`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
  await new Promise((r) => setTimeout(r, 20)); // the password hash is running on the pool
  const stopping = own.stop('SIGTERM');
  const r = await inFlight;
  assert.equal(r.status, 201);
  const stopped = await stopping;
  assert.equal(stopped.code, 0, stopped.stderr);
  await assert.rejects(fetch(`${own.url}/healthz`));
  own.cleanup();
});
