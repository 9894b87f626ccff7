// Text in every field a client sends: it round-trips exactly (through GET,
// the report's Markdown and HTML files and the audit log), or it is refused
// with a 400 naming the field and saying what is wrong, and nothing stored
// changes.  NUL, a lone surrogate escape, an overlong form and raw invalid
// bytes are sent as bytes (the body is a Buffer).  Text stored before these
// checks (written into the database here) still leaves as valid UTF-8.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, login, BIN, SOURCE, ADMIN_PASSWORD } from './lib/o2c.mjs';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const isUtf8 = (bytes) => { try { strictUtf8.decode(bytes); return true; } catch { return false; } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What is put between "a" and "b" inside a JSON string, as raw body bytes.
const BAD = {
  'NUL (\\u0000)': { bytes: Buffer.from('\\u0000'), says: /NUL character \(U\+0000\) at byte 2/ },
  'lone surrogate (\\ud800)': { bytes: Buffer.from('\\ud800'), malformed: true },
  'overlong C0 AF': { bytes: Buffer.from([0xc0, 0xaf]), says: /invalid UTF-8 at byte 2/ },
  'raw FF': { bytes: Buffer.from([0xff]), says: /invalid UTF-8 at byte 2/ },
  'truncated E2 82': { bytes: Buffer.from([0xe2, 0x82]), says: /invalid UTF-8 at byte 2/ },
};

// The JSON text of OBJ with each MARK string (value or key) replaced by
// "a<bytes>b" and a tail that keeps it past every minimum length.
const MARK = '\u0001MARK\u0001';
function bodyWith(obj, bytes) {
  const parts = JSON.stringify(obj).split(JSON.stringify(MARK).slice(1, -1));
  const bad = Buffer.concat([Buffer.from('a'), bytes, Buffer.from('b and more text')]);
  const out = [];
  parts.forEach((p, i) => { if (i) out.push(bad); out.push(Buffer.from(p)); });
  return Buffer.concat(out);
}

let srv, admin, kept;

// A request with a raw body; the reply's bytes are checked to be UTF-8.
async function raw(method, path, body, token = admin.token) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body });
  const bytes = new Uint8Array(await r.arrayBuffer());
  const text = Buffer.from(bytes).toString('utf8');
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, bytes, text, json, utf8: isUtf8(bytes) };
}

// Everything a refused request must leave as it was.
async function snapshot() {
  const a = await admin.get(`/api/v1/assessments/${kept.id}`);
  const list = await admin.get('/api/v1/assessments?limit=200');
  const users = await admin.get('/api/v1/users');
  const audit = await admin.get('/api/v1/audit?limit=1000');
  return { assessment: a.json, list: list.json.items.map((i) => [i.id, i.client, i.revision]),
    users: users.json.map((u) => [u.name, u.role, u.disabled]), audit: audit.json.items };
}

before(async () => {
  srv = await startServer({ env: { O2C_LLM_PROVIDER: 'offline' } });
  admin = await login(srv.url);
  const created = await admin.post('/api/v1/users', { name: 'alice', role: 'consultant',
    password: 'alice-password-123' });
  assert.equal(created.status, 201, created.text);
  const a = await admin.post('/api/v1/assessments', { type: 'o2c', client: 'Kept Ltd' });
  assert.equal(a.status, 201, a.text);
  const s = await admin.patch(`/api/v1/assessments/${a.json.id}/answers`, { revision: 0,
    answers: { md_evidence: { value: 'kept text', note: 'kept note' } } });
  assert.equal(s.status, 200, s.text);
  kept = { id: a.json.id, revision: s.json.revision };
});

after(async () => {
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr.slice(-2000));
  srv.cleanup();
});

// Each field a client can send text in: the request, and the field the 400
// must name (a RegExp where the name holds the bad bytes themselves).
const FIELDS = [
  { what: 'assessment client', method: 'POST', path: () => '/api/v1/assessments',
    body: { type: 'o2c', client: MARK }, field: 'body.client' },
  { what: 'assessment type', method: 'POST', path: () => '/api/v1/assessments',
    body: { type: MARK, client: 'Someone' }, field: 'body.type' },
  { what: 'target area id', method: 'POST', path: () => '/api/v1/assessments',
    body: { type: 'o2c', client: 'Someone', targets: { [MARK]: 3 } }, field: /^body\.targets\.a/ },
  { what: 'answer note', method: 'PATCH', path: () => `/api/v1/assessments/${kept.id}/answers`,
    body: () => ({ revision: kept.revision, answers: { md_evidence: { value: 'ok', note: MARK } } }),
    field: 'body.answers.md_evidence.note' },
  { what: 'text answer', method: 'PATCH', path: () => `/api/v1/assessments/${kept.id}/answers`,
    body: () => ({ revision: kept.revision, answers: { md_evidence: MARK } }),
    field: 'body.answers.md_evidence' },
  { what: 'text answer with a note', method: 'PATCH',
    path: () => `/api/v1/assessments/${kept.id}/answers`,
    body: () => ({ revision: kept.revision, answers: { md_evidence: { value: MARK, note: 'n' } } }),
    field: 'body.answers.md_evidence.value' },
  { what: 'choice answer', method: 'PATCH', path: () => `/api/v1/assessments/${kept.id}/answers`,
    body: () => ({ revision: kept.revision, answers: { md_duplicates: MARK } }),
    field: 'body.answers.md_duplicates' },
  { what: 'question id', method: 'PATCH', path: () => `/api/v1/assessments/${kept.id}/answers`,
    body: () => ({ revision: kept.revision, answers: { [MARK]: 3 } }), field: /^body\.answers\.a/ },
  { what: 'preview note', method: 'POST', path: () => '/api/v1/assessment-types/o2c/score',
    body: { answers: { md_evidence: { value: 'ok', note: MARK } } },
    field: 'answers.md_evidence.note' },
  { what: 'preview text answer', method: 'POST', path: () => '/api/v1/assessment-types/o2c/score',
    body: { answers: { md_evidence: MARK } }, field: 'answers.md_evidence' },
  { what: 'sign-in username', method: 'POST', path: () => '/api/v1/session',
    body: { username: MARK, password: ADMIN_PASSWORD }, field: 'body.username' },
  { what: 'sign-in password', method: 'POST', path: () => '/api/v1/session',
    body: { username: 'admin', password: MARK }, field: 'body.password' },
  { what: 'new user name', method: 'POST', path: () => '/api/v1/users',
    body: { name: MARK, role: 'consultant', password: 'long enough password' }, field: 'body.name' },
  { what: 'new user password', method: 'POST', path: () => '/api/v1/users',
    body: { name: 'carol', role: 'consultant', password: MARK }, field: 'body.password' },
  { what: 'changed password', method: 'PATCH', path: () => '/api/v1/users/alice',
    body: { password: MARK }, field: 'body.password' },
  { what: 'changed role', method: 'PATCH', path: () => '/api/v1/users/alice',
    body: { role: MARK }, field: 'body.role' },
];

test('bad text in any field is refused with a 400 naming the field; nothing stored changes', async () => {
  const before = await snapshot();
  for (const f of FIELDS) {
    for (const [kind, bad] of Object.entries(BAD)) {
      const obj = typeof f.body === 'function' ? f.body() : f.body;
      const r = await raw(f.method, f.path(), bodyWith(obj, bad.bytes));
      const where = `${f.what}, ${kind}: ${r.text}`;
      assert.equal(r.status, 400, where);
      assert.ok(r.utf8, `the error is not valid UTF-8 (${where})`);
      if (bad.malformed) {
        // lua-cjson refuses a lone surrogate escape while decoding; the
        // message says what that means.
        assert.equal(r.json.error.code, 'malformed_json', where);
        assert.match(r.json.error.message, /lone surrogate/, where);
        continue;
      }
      assert.equal(r.json.error.code, 'invalid', where);
      const field = r.json.error.details.field;
      if (f.field instanceof RegExp) assert.match(field, f.field, where);
      else assert.equal(field, f.field, where);
      assert.ok(r.json.error.message.startsWith(`${field}: `), where);
      assert.match(r.json.error.message, bad.says, where);
    }
  }
  assert.deepEqual(await snapshot(), before);
  // The refused passwords were never set: alice still signs in with hers.
  await login(srv.url, 'alice', 'alice-password-123');
});

test('attachment names with NUL or invalid UTF-8 are refused', async () => {
  for (const name of ['a%00b.png', 'a%FFb.png', 'a%C0%AFb.png', 'a%E2%82b.png', 'a%ED%A0%80b.png']) {
    const r = await raw('PUT', `/api/v1/assessments/${kept.id}/attachments/${name}`,
      Buffer.from('\x89PNG\r\n\x1a\n0000', 'latin1'));
    assert.equal(r.status, 400, `${name}: ${r.text}`);
    assert.match(r.json.error.message, /UTF-8/, `${name}: ${r.text}`);
  }
  const list = await admin.get(`/api/v1/assessments/${kept.id}/attachments`);
  assert.deepEqual(list.json, []);
});

// Valid text outside ASCII, with quotes, backslashes, newlines and emoji.
const CLIENT = 'Müller & Söhne – 株式会社 "Ω" \\ 😀';
const NOTE = 'Prüfung: “approved” ✓\nline two \\ tab\there 😀 U+FFFF? \uffff';
const TEXT = 'Évidence — 証拠 𝄞 <b>not html</b>';

test('valid text round-trips exactly through GET, the audit log and the report files', async () => {
  const a = await admin.post('/api/v1/assessments', { type: 'o2c', client: CLIENT });
  assert.equal(a.status, 201, a.text);
  assert.equal(a.json.client, CLIENT);
  const s = await admin.patch(`/api/v1/assessments/${a.json.id}/answers`, { revision: 0,
    answers: { md_evidence: { value: TEXT, note: NOTE } } });
  assert.equal(s.status, 200, s.text);
  const got = await raw('GET', `/api/v1/assessments/${a.json.id}`);
  assert.ok(got.utf8);
  assert.equal(got.json.client, CLIENT);
  assert.equal(got.json.answers.md_evidence.value, TEXT);
  assert.equal(got.json.answers.md_evidence.note, NOTE);
  const audit = await admin.get('/api/v1/audit?action=assessment.created&limit=1000');
  const created = audit.json.items.find((e) => e.target === a.json.id);
  assert.equal(created.details.client, CLIENT);

  const started = await admin.post(`/api/v1/assessments/${a.json.id}/reports`);
  assert.equal(started.status, 202, started.text);
  const id = started.json.report_id;
  for (let i = 0; i < 300; i++) {
    const r = await admin.get(`/api/v1/reports/${id}`);
    if (['done', 'partial', 'failed'].includes(r.json.status)) break;
    await sleep(100);
  }
  for (const format of ['md', 'html']) {
    const file = await raw('GET', `/api/v1/reports/${id}/download?format=${format}`);
    assert.equal(file.status, 200, file.text);
    assert.ok(file.utf8, `${format} is not valid UTF-8`);
    const client = format === 'html'
      ? CLIENT.replace(/&/g, '&amp;').replace(/"/g, '&quot;') : CLIENT;
    assert.ok(file.text.includes(client), `${format} does not hold the client's name exactly`);
  }
});

test('text stored before the checks still leaves as valid UTF-8 (U+FFFD for each bad byte)', async () => {
  const a = await admin.post('/api/v1/assessments', { type: 'o2c', client: 'Old Rows' });
  const s = await admin.patch(`/api/v1/assessments/${a.json.id}/answers`, { revision: 0,
    answers: { md_evidence: { value: 'old', note: 'old note' } } });
  assert.equal(s.status, 200, s.text);
  const data = srv.data;
  await srv.stop();
  // What an older o2c let through: raw invalid bytes in a client name, a note
  // and an audit event's details (the log is append-only: a row is added).
  const sql = `UPDATE assessments SET client = CAST(X'4F6C64FF20C0AF20E282' AS TEXT) WHERE id = '${a.json.id}';
UPDATE answers SET note = CAST(X'6E6F7465FF21' AS TEXT) WHERE assessment_id = '${a.json.id}';
INSERT INTO audit_log (at, user_name, action, target, details) VALUES (1, 'admin', 'assessment.created', '${a.json.id}.old', CAST(X'7B22636C69656E74223A224F6C64FF227D' AS TEXT));`;
  const q = spawnSync('sqlite3', [join(data, 'o2c.db'), sql], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  srv = await startServer({ data, env: { O2C_LLM_PROVIDER: 'offline' } });
  admin = await login(srv.url);

  const got = await raw('GET', `/api/v1/assessments/${a.json.id}`);
  assert.equal(got.status, 200);
  assert.ok(got.utf8, 'GET returned invalid UTF-8');
  assert.equal(got.json.client, 'Old\ufffd \ufffd\ufffd \ufffd\ufffd');
  assert.equal(got.json.answers.md_evidence.note, 'note\ufffd!');
  const list = await raw('GET', '/api/v1/assessments');
  assert.ok(list.utf8, 'the list is not valid UTF-8');
  const audit = await raw('GET', '/api/v1/audit?action=assessment.created&limit=1000');
  assert.ok(audit.utf8, 'the audit log is not valid UTF-8');
  assert.equal(audit.json.items.find((e) => e.target === `${a.json.id}.old`).details.client, 'Old\ufffd');

  const started = await admin.post(`/api/v1/assessments/${a.json.id}/reports`);
  assert.equal(started.status, 202, started.text);
  const id = started.json.report_id;
  for (let i = 0; i < 300; i++) {
    const r = await raw('GET', `/api/v1/reports/${id}`);
    assert.ok(r.utf8, 'the report is not valid UTF-8');
    if (['done', 'partial', 'failed'].includes(r.json.status)) break;
    await sleep(100);
  }
  for (const format of ['md', 'html']) {
    const file = await raw('GET', `/api/v1/reports/${id}/download?format=${format}`);
    assert.equal(file.status, 200, file.text);
    assert.ok(file.utf8, `the ${format} file is not valid UTF-8`);
  }
  const events = await raw('GET', `/api/v1/reports/${id}/events`);
  assert.ok(events.utf8, 'the event stream is not valid UTF-8');

  // `o2c audit` prints the same events as JSON lines, valid UTF-8 too.
  const cli = spawnSync(BIN, ['audit', '--data', data], { cwd: SOURCE });
  assert.equal(cli.status, 0, String(cli.stderr));
  assert.ok(isUtf8(cli.stdout), 'o2c audit printed invalid UTF-8');
  const line = String(cli.stdout).split('\n').find((l) => l.includes(`${a.json.id}.old`));
  assert.equal(JSON.parse(line).details.client, 'Old\ufffd');
});
