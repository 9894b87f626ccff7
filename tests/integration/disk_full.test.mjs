// A full disk, route by route: every route that writes (sign-in and
// sign-out included) answers 507 with the code `disk_full` and a message
// that says so (a sign-in: that no session can be created until space is
// freed), never a 500 or a success that stored nothing; once space is freed
// every one of them works again and nothing stored before was lost or
// changed.  The data folder is on the small tmpfs of the disk_full drill
// (tests/drills/lib.mjs: smallFilesystem), so this needs root; it is
// skipped, saying why, where mounting is not permitted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, login, logLines, Client } from './lib/o2c.mjs';
import { smallFilesystem } from '../drills/lib.mjs';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const FINAL = new Set(['done', 'partial', 'failed']);
const CONSULTANT = { username: 'carla', password: 'carla-password-123' };

async function waitReport(c, id) {
  for (let i = 0; i < 600; i++) {
    const r = await c.get(`/api/v1/reports/${id}`);
    if (r.status === 200 && FINAL.has(r.json.status) && !r.json.active) return r.json;
    await sleep(100);
  }
  throw new Error(`report ${id} did not finish`);
}

// Everything the routes below change, while there is space: an assessment
// with answers and an attachment, one to delete, a report whose sections
// failed (the provider is a closed port), a second session to sign out, a
// user to change.
async function prepare(srv) {
  const admin = await login(srv.url);
  const user = await admin.post('/api/v1/users', { name: CONSULTANT.username, role: 'consultant',
    password: CONSULTANT.password });
  assert.equal(user.status, 201, user.text);
  const carla = await login(srv.url, CONSULTANT.username, CONSULTANT.password);
  const a = await carla.post('/api/v1/assessments', { type: 'o2c', client: 'Full Disk Ltd' });
  assert.equal(a.status, 201, a.text);
  const aid = a.json.id;
  const saved = await carla.patch(`/api/v1/assessments/${aid}/answers`,
    { revision: 0, answers: { md_ownership: 3 } });
  assert.equal(saved.status, 200, saved.text);
  const up = await carla.put(`/api/v1/assessments/${aid}/attachments/keep.png`, PNG,
    { 'Content-Type': 'image/png' });
  assert.equal(up.status, 201, up.text);
  const other = await carla.post('/api/v1/assessments', { type: 'o2c', client: 'Kept Ltd' });
  assert.equal(other.status, 201, other.text);
  const started = await carla.post(`/api/v1/assessments/${aid}/reports`);
  assert.equal(started.status, 202, started.text);
  const report = await waitReport(carla, started.json.report_id);
  const failed = report.sections.find((s) => s.status === 'failed');
  assert.ok(failed, `a section failed: ${JSON.stringify(report.sections.map((s) => s.status))}`);
  const leaving = await login(srv.url, CONSULTANT.username, CONSULTANT.password);
  return { admin, carla, leaving, aid, otherId: other.json.id, reportId: report.id,
    failedSection: failed.id, revision: saved.json.revision };
}

// What a client can read of everything stored: equal before and after.
async function snapshot(s) {
  const a = await s.carla.get(`/api/v1/assessments/${s.aid}`);
  const files = await s.carla.get(`/api/v1/assessments/${s.aid}/attachments`);
  const list = await s.carla.get('/api/v1/assessments');
  const report = await s.carla.get(`/api/v1/reports/${s.reportId}`);
  const users = await s.admin.get('/api/v1/users');
  return {
    assessment: { revision: a.json.revision, answers: a.json.answers, client: a.json.client },
    attachments: files.json.map((f) => `${f.name} ${f.size} ${f.sha}`),
    assessments: list.json.items.map((x) => x.id).sort(),
    sections: report.json.sections.map((x) => `${x.id} ${x.status} ${x.attempts}`),
    users: users.json.map((u) => `${u.name} ${u.role} ${u.disabled}`).sort(),
  };
}

// Every route that writes, as [name, client, method, path, body, headers].
function writeRoutes(s) {
  const A = `/api/v1/assessments/${s.aid}`;
  return [
    ['sign-in', new Client(s.carla.url), 'POST', '/api/v1/session', CONSULTANT],
    ['sign-in with a wrong password', new Client(s.carla.url), 'POST', '/api/v1/session',
      { username: CONSULTANT.username, password: 'not-the-password' }],
    ['sign-out', s.leaving, 'DELETE', '/api/v1/session'],
    ['create an assessment', s.carla, 'POST', '/api/v1/assessments', { type: 'o2c', client: 'New Ltd' }],
    ['save answers', s.carla, 'PATCH', `${A}/answers`, { revision: s.revision, answers: { md_ownership: 5 } }],
    ['delete an assessment', s.carla, 'DELETE', `/api/v1/assessments/${s.otherId}`],
    ['upload an attachment', s.carla, 'PUT', `${A}/attachments/new.png`, PNG, { 'Content-Type': 'image/png' }],
    ['delete an attachment', s.carla, 'DELETE', `${A}/attachments/keep.png`],
    ['start a report', s.carla, 'POST', `${A}/reports`],
    ['retry a section', s.carla, 'POST', `/api/v1/reports/${s.reportId}/sections/${s.failedSection}/retry`],
    ['add a user', s.admin, 'POST', '/api/v1/users', { name: 'newbie', role: 'consultant', password: 'newbie-password-123' }],
    ['change a role', s.admin, 'PATCH', `/api/v1/users/${CONSULTANT.username}`, { role: 'admin' }],
    ['disable a user', s.admin, 'PATCH', `/api/v1/users/${CONSULTANT.username}`, { disabled: true }],
    ['reset a password', s.admin, 'PATCH', `/api/v1/users/${CONSULTANT.username}`, { password: 'another-password-123' }],
  ];
}

const send = ([, client, method, path, body, headers]) => client.request(method, path, body, headers);

test('a full disk: every write route answers 507 disk_full, and works again once space is freed', async (t) => {
  const disk = smallFilesystem('16m');
  if (disk.skipped) { t.skip(disk.skipped); return; }
  t.after(() => disk.unmount());
  const data = join(disk.dir, 'data');
  mkdirSync(data);
  const srv = await startServer({ data, env: {
    O2C_LLM_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'test-key',
    O2C_ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', O2C_LLM_MAX_RETRIES: '0' } });
  t.after(async () => {
    const stopped = await srv.stop();
    assert.equal(stopped.code, 0, stopped.stderr.slice(-3000));
  });

  const s = await prepare(srv);
  const before = await snapshot(s);
  // A WAL that only grows (no checkpoint yet) makes every commit need new space.
  assert.ok(statSync(join(data, 'o2c.db-wal')).size < 1000 * 4120, 'no checkpoint has run yet');

  disk.fill();
  assert.equal(disk.freeBytes(), 0);
  const answers = [];
  for (const route of writeRoutes(s)) answers.push([route[0], await send(route)]);
  const wrong = answers.filter(([, r]) => r.status !== 507 || r.json?.error?.code !== 'disk_full'
    || !/disk is full/.test(r.json.error.message));
  assert.deepEqual(wrong.map(([name, r]) => `${name}: ${r.status} ${r.text.slice(0, 200)}`), [],
    'every write route answers 507 disk_full saying the disk is full');
  for (const [name, r] of answers) {
    if (name.startsWith('sign-in')) {
      assert.match(r.json.error.message, /no session can be created until space is freed/, name);
    } else {
      assert.match(r.json.error.message, /nothing stored before was lost/, name);
    }
  }
  // Reads keep working, and the refused sign-out did not end the session.
  assert.equal((await s.leaving.get('/api/v1/me')).status, 200, 'still signed in');
  assert.deepEqual(await snapshot(s), before, 'nothing stored changed while the disk was full');

  disk.free();
  const after = [];
  for (const route of writeRoutes(s)) after.push([route[0], await send(route)]);
  const failing = after.filter(([, r]) => r.status >= 400);
  assert.deepEqual(failing.map(([name, r]) => `${name}: ${r.status}`), ['sign-in with a wrong password: 401'],
    `once space is freed every write works (and a wrong password is just wrong): ${
      failing.map(([name, r]) => `${name}: ${r.text.slice(0, 200)}`).join(' | ')}`);
  const now = await s.admin.get(`/api/v1/assessments/${s.aid}`);
  assert.equal(now.json.answers.md_ownership.value, 5);
  assert.equal((await s.leaving.get('/api/v1/me')).status, 401, 'signed out now');

  const internal = logLines(srv.stderr()).filter((l) => l.msg === 'request failed');
  assert.deepEqual(internal.map((l) => `${l.route}: ${String(l.error).split('\n')[0]}`), [],
    'no request failed with an internal error');
});
