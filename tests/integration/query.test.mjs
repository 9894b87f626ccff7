// Query parameters: every route checks them like body fields.  Every
// parameter the OpenAPI document lists, sent with garbage (quotes, SQL
// fragments, bytes that are not UTF-8, huge and negative numbers, empty,
// twice), gets a 400 that names it and says what it expects, never a 500;
// a parameter a route does not take is refused the same way (and the
// handler does not run); what the web UI sends keeps working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, logLines } from './lib/o2c.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let srv, admin, aid, rid, doc;

before(async () => {
  srv = await startServer({ env: { O2C_LLM_PROVIDER: 'offline' } });
  admin = await login(srv.url);
  const a = await admin.post('/api/v1/assessments', { type: 'o2c', client: 'Query Ltd' });
  assert.equal(a.status, 201, a.text);
  aid = a.json.id;
  const second = await admin.post('/api/v1/assessments', { type: 'o2c', client: 'Second Ltd' });
  assert.equal(second.status, 201, second.text);
  const r = await admin.post(`/api/v1/assessments/${aid}/reports`);
  assert.equal(r.status, 202, r.text);
  rid = r.json.report_id;
  for (let i = 0; i < 300; i++) {
    const rep = await admin.get(`/api/v1/reports/${rid}`);
    if (rep.json.status === 'done' && !rep.json.active) break;
    await sleep(100);
  }
  doc = (await admin.get('/api/v1/openapi.json')).json;
});

after(async () => {
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  const lines = logLines(stopped.stderr);
  assert.deepEqual(lines.filter((l) => l.msg === 'request failed').map((l) => l.error), [],
    'no request failed with an internal error');
  srv.cleanup();
});

// The documented operations: [{method, path, url (path parameters filled in), query: [param]}].
function operations() {
  const fill = { id: (path) => (path.startsWith('/api/v1/reports/') ? rid : aid), name: () => 'admin', username: () => 'admin',
    type: () => 'o2c', section: () => 'scorecard', file: () => 'app.js' };
  const ops = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const url = path.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(fill[name](path)));
      ops.push({ method: method.toUpperCase(), path, url,
        query: (op.parameters || []).filter((p) => p.in === 'query') });
    }
  }
  return ops;
}

// Raw query values (already percent-encoded) that no parameter accepts.
const GARBAGE = [
  ["'", '%27'],
  ['1 OR 1=1', '1%20OR%201%3D1'],
  ["' OR '1'='1", '%27%20OR%20%271%27%3D%271'],
  ['; DROP TABLE users; --', '%3B%20DROP%20TABLE%20users%3B%20--'],
  ['bytes that are not UTF-8', '%FF%FE%FD'],
  ['<script>', '%3Cscript%3E'],
  ['../../etc/passwd', '..%2F..%2Fetc%2Fpasswd'],
  ['a huge number', '9'.repeat(100)],
  ['a negative number', '-1'],
  ['a huge negative number', `-${'9'.repeat(30)}`],
  ['spaces', '%20%20'],
  ['empty', ''],
  ['no = at all', null],
];

test('the OpenAPI document lists every query parameter with its schema', () => {
  const listed = {};
  for (const op of operations()) {
    for (const p of op.query) listed[`${op.method} ${op.path} ${p.name}`] = p;
  }
  const limit = listed['GET /api/v1/assessments limit'];
  assert.deepEqual([limit?.schema.type, limit?.schema.minimum, limit?.schema.maximum, limit?.schema.default],
    ['integer', 1, 200, 50]);
  assert.equal(listed['GET /api/v1/assessments after']?.schema.format, 'uuid');
  assert.deepEqual(listed['GET /api/v1/reports/{id}/download format']?.schema.enum, ['md', 'html', 'pdf', 'docx', 'xlsx', 'zip']);
  for (const name of ['since', 'until', 'user', 'action', 'after', 'limit']) {
    const p = listed[`GET /api/v1/audit ${name}`];
    assert.ok(p && p.schema && p.description, `audit ${name} is documented with a schema`);
  }
  assert.equal(listed['GET /api/v1/audit limit'].schema.maximum, 1000);
  for (const [key, p] of Object.entries(listed)) {
    assert.equal(p.required, false, key);
    assert.ok(p.description.length > 10, `${key} says what it expects`);
  }
  for (const op of operations().filter((o) => o.query.length)) {
    const responses = doc.paths[op.path][op.method.toLowerCase()].responses;
    assert.ok(responses['400'], `${op.method} ${op.path} documents its 400`);
  }
});

test('every documented query parameter: garbage is a 400 naming it, never a 500', async () => {
  const wrong = [];
  let sent = 0;
  for (const op of operations()) {
    for (const p of op.query) {
      const cases = [...GARBAGE.map(([what, raw]) => [what, raw === null ? p.name : `${p.name}=${raw}`]),
        ['repeated', `${p.name}=1&${p.name}=1`]];
      for (const [what, query] of cases) {
        const r = await admin.request(op.method, `${op.url}?${query}`);
        sent++;
        const e = r.json?.error;
        if (r.status !== 400 || e?.code !== 'invalid' || !e.message.startsWith(`${p.name}: `)
          || e.details?.field !== p.name) {
          wrong.push(`${op.method} ${op.path} ${p.name} (${what}): ${r.status} ${r.text.slice(0, 160)}`);
        }
      }
    }
  }
  assert.deepEqual(wrong, []);
  assert.ok(sent >= 9 * (GARBAGE.length + 1), `${sent} requests: every documented parameter was tried`);
});

test('the messages say what each parameter expects', async () => {
  const since = await admin.get("/api/v1/audit?since='");
  assert.equal(since.status, 400);
  assert.match(since.json.error.message, /^since: expected an ISO-8601 date or time, such as 2024-05-01/);
  const after = await admin.get('/api/v1/audit?after=1%20OR%201%3D1');
  assert.match(after.json.error.message, /^after: expected a whole number of at least 0, got "1 OR 1=1"$/);
  const limit = await admin.get(`/api/v1/assessments?limit=${'9'.repeat(40)}`);
  assert.match(limit.json.error.message, /^limit: expected a whole number from 1 to 200/);
  const fraction = await admin.get('/api/v1/audit?limit=1.5');
  assert.match(fraction.json.error.message, /^limit: expected a whole number from 1 to 1000, got "1.5"$/);
  const twice = await admin.get('/api/v1/audit?limit=5&limit=6');
  assert.match(twice.json.error.message, /^limit: given more than once/);
  const format = await admin.get(`/api/v1/reports/${rid}/download?format=odt`);
  assert.equal(format.json.error.message, 'format: expected one of md, html, pdf, docx, xlsx, zip, got "odt"');
  const cursor = await admin.get('/api/v1/assessments?after=abc');
  assert.match(cursor.json.error.message, /^after: expected an id as the API returns them/);
});

test('a parameter a route does not take is refused, and the route does nothing', async () => {
  const wrong = [];
  for (const op of operations()) {
    const r = await admin.request(op.method, `${op.url}?limt=5`);
    const e = r.json?.error;
    if (r.status !== 400 || !/^unknown query parameter "limt"; this route takes /.test(e?.message || '')
      || e.details?.field !== 'limt') {
      wrong.push(`${op.method} ${op.path}: ${r.status} ${r.text.slice(0, 160)}`);
    }
  }
  assert.deepEqual(wrong, []);
  const typo = await admin.get('/api/v1/assessments?limt=5');
  assert.match(typo.json.error.message, /this route takes after, limit$/);
  // Nothing was deleted, the session is still open.
  assert.equal((await admin.get(`/api/v1/assessments/${aid}`)).status, 200);
  assert.equal((await admin.get('/api/v1/me')).status, 200);
  // Before the handler, but after who is asking: an admin route stays hidden.
  const anon = await fetch(`${srv.url}/api/v1/audit?since='`);
  assert.equal(anon.status, 401);
});

test('valid values keep working, as the web UI sends them', async () => {
  const since = new Date('2020-01-01T00:00:00').toISOString();
  const until = new Date('2099-12-31T23:59:59').toISOString();
  const ui = await admin.get(`/api/v1/audit?${new URLSearchParams({ user: 'admin', action: 'assessment.created',
    since, until, limit: '200' })}`);
  assert.equal(ui.status, 200, ui.text);
  assert.ok(ui.json.items.some((e) => e.action === 'assessment.created'));
  for (const t of ['2020-01-01', '2020-01-01T00:00Z', '2020-01-01T00:00:00.5+02:00', '2020-01-01t00:00:00z']) {
    const r = await admin.get(`/api/v1/audit?since=${encodeURIComponent(t)}`);
    assert.equal(r.status, 200, `${t}: ${r.text}`);
  }
  const future = await admin.get('/api/v1/audit?since=2099-01-01');
  assert.deepEqual(future.json.items, [], 'since filters');
  const page1 = await admin.get('/api/v1/audit?limit=1');
  assert.equal(page1.json.items.length, 1);
  const page2 = await admin.get(`/api/v1/audit?limit=1&after=${page1.json.next}`);
  assert.equal(page2.status, 200);
  assert.ok(page2.json.items[0].seq > page1.json.items[0].seq, 'after pages on');

  const first = await admin.get('/api/v1/assessments?limit=1');
  assert.equal(first.json.items.length, 1);
  const next = await admin.get(`/api/v1/assessments?limit=1&after=${first.json.next}`);
  assert.equal(next.status, 200, next.text);
  assert.notEqual(next.json.items[0].id, first.json.items[0].id);
  assert.equal((await admin.get('/api/v1/assessments?limit=200')).status, 200, 'the dashboard');
  assert.equal((await admin.get('/api/v1/assessments')).json.items.length, 2, 'the default page');

  const html = await admin.get(`/api/v1/reports/${rid}/download?format=html`);
  assert.equal(html.status, 200);
  assert.match(html.headers.get('content-type'), /^text\/html/);
  const md = await admin.get(`/api/v1/reports/${rid}/download`);
  assert.match(md.headers.get('content-type'), /^text\/markdown/, 'md by default');
});
