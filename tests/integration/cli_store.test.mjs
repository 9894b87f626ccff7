// `o2c user`, `o2c db`, `o2c audit` on a temporary data folder, and the
// first start of `o2c serve`: the generated admin password is printed once
// on stdout (never in the JSON logs on stderr), O2C_ADMIN_PASSWORD is used
// when set, and a too short one stops the server with exit code 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { o2c, tempDir, startServer, ADMIN_PASSWORD } from './lib/o2c.mjs';

const PASSWORD = 'correct horse battery';

function ok(r, what) {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function auditLines(data, ...args) {
  const r = ok(o2c(['audit', '--data', data, ...args]), 'audit');
  return r.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

async function login(url, username, password) {
  const res = await fetch(`${url}/api/v1/session`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }) });
  return { status: res.status, body: await res.json() };
}

test('user commands: add, refusals, list, passwd, disable, audit', (t) => {
  const data = tempDir('o2c-cli-store-');
  t.after(() => rmSync(data, { recursive: true, force: true }));
  const add = (name, role, password) =>
    o2c(['user', 'add', name, '--role', role, '--password-stdin', '--data', data],
      { input: `${password}\n` });

  ok(add('alice', 'consultant', PASSWORD), 'user add alice');
  ok(add('root', 'admin', 'another fine passphrase'), 'user add root');

  const short = add('bob', 'consultant', 'short');
  assert.equal(short.status, 1);
  assert.match(short.stderr, /at least 12/);

  const dup = add('alice', 'admin', PASSWORD);
  assert.equal(dup.status, 1);
  assert.match(dup.stderr, /already exists/);

  const badRole = add('carol', 'root', PASSWORD);
  assert.equal(badRole.status, 2);
  assert.equal(o2c(['user', 'frobnicate', '--data', data]).status, 2);
  assert.equal(o2c(['user', 'add', 'x', '--role', 'admin', '--data', data], { input: '' }).status, 2,
    'no terminal and no --password-stdin is a usage error');

  const table = ok(o2c(['user', 'list', '--data', data]), 'user list').stdout;
  assert.match(table, /^USERNAME\s+ROLE/m);
  assert.match(table, /^alice\s+consultant\s+active/m);

  ok(o2c(['user', 'passwd', 'alice', '--password-stdin', '--data', data],
    { input: 'a different long password\n' }), 'user passwd');
  ok(o2c(['user', 'disable', 'alice', '--data', data]), 'user disable');
  assert.equal(o2c(['user', 'disable', 'nobody', '--data', data]).status, 1);
  const lastAdmin = o2c(['user', 'disable', 'root', '--data', data]);
  assert.equal(lastAdmin.status, 1, 'the only admin cannot be disabled');
  assert.match(lastAdmin.stderr, /only enabled admin/);

  const users = ok(o2c(['user', 'list', '--json', '--data', data]), 'user list --json').stdout
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(users.map((u) => [u.name, u.role, u.disabled]),
    [['alice', 'consultant', true], ['root', 'admin', false]]);
  assert.match(users[0].id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);

  const events = auditLines(data);
  const actions = events.map((e) => `${e.action} ${e.target}`);
  assert.deepEqual(actions, ['user.added alice', 'user.added root', 'user.password_changed alice',
    'user.disabled alice']);
  assert.equal(events[0].details.via, 'cli');
  assert.equal(events[0].details.role, 'consultant');
  assert.ok(events.every((e, i) => i === 0 || e.seq > events[i - 1].seq));
  // Times as the API gives them: RFC 3339 UTC, and the Unix ms beside it.
  for (const e of events) {
    assert.match(e.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, JSON.stringify(e));
    assert.equal(new Date(e.at).getTime(), e.at_ms);
    assert.ok(Math.abs(e.at_ms - Date.now()) < 3600e3, `at_ms ${e.at_ms} is not now`);
  }
  assert.deepEqual(auditLines(data, '--since', '2999-01-01'), []);
  assert.equal(auditLines(data, '--since', '2000-01-01T00:00:00Z').length, 4);
  assert.equal(o2c(['audit', '--since', 'yesterday', '--data', data]).status, 2);
});

// While `o2c serve` runs on the same data folder, as an operator would.
test('user enable and remove: last admin refused, assessments reassigned or kept read-only', async (t) => {
  const srv = await startServer();
  t.after(async () => { await srv.stop(); srv.cleanup(); });
  const data = srv.data;
  const api = (token) => async (method, path, body) => {
    const res = await fetch(srv.url + path, { method, headers: { authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}) }, body: body && JSON.stringify(body) });
    return { status: res.status, body: res.status === 204 ? null : await res.json() };
  };
  const admin = api((await login(srv.url, 'admin', ADMIN_PASSWORD)).body.token);
  const add = (name) => ok(o2c(['user', 'add', name, '--role', 'consultant', '--password-stdin', '--data', data],
    { input: `${PASSWORD}\n` }), `user add ${name}`);
  add('alice');
  add('carol');
  const alice = api((await login(srv.url, 'alice', PASSWORD)).body.token);
  const carol = api((await login(srv.url, 'carol', PASSWORD)).body.token);
  const aliceWork = (await alice('POST', '/api/v1/assessments', { type: 'o2c', client: 'Alice Client' })).body;
  const carolWork = (await carol('POST', '/api/v1/assessments', { type: 'o2c', client: 'Carol Client' })).body;

  const lastAdmin = o2c(['user', 'remove', 'admin', '--data', data]);
  assert.equal(lastAdmin.status, 1, 'the only admin cannot be removed');
  assert.match(lastAdmin.stderr, /admin is the only enabled admin and cannot be removed/);
  assert.equal(o2c(['user', 'remove', 'nobody', '--data', data]).status, 1);
  assert.equal(o2c(['user', 'list', '--reassign-to', 'x', '--data', data]).status, 2);
  assert.equal(o2c(['user', 'remove', '--data', data]).status, 2);

  ok(o2c(['user', 'disable', 'alice', '--data', data]), 'user disable');
  assert.equal((await login(srv.url, 'alice', PASSWORD)).status, 401);
  assert.match(ok(o2c(['user', 'enable', 'alice', '--data', data]), 'user enable').stdout, /enabled alice/);
  const back = await login(srv.url, 'alice', PASSWORD);
  assert.equal(back.status, 201, 'enabled again: alice signs in');
  const aliceAgain = api(back.body.token);

  const unknown = o2c(['user', 'remove', 'alice', '--reassign-to', 'nobody', '--data', data]);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /nobody: no such account/);
  const moved = ok(o2c(['user', 'remove', 'alice', '--reassign-to', 'admin', '--data', data]), 'user remove --reassign-to');
  assert.match(moved.stdout, /removed alice \(1 session ended\)/);
  assert.match(moved.stdout, /1 assessment of alice now belongs to admin/);
  assert.equal((await aliceAgain('GET', '/api/v1/me')).status, 401, 'the removed account\'s session ended');
  assert.equal((await login(srv.url, 'alice', PASSWORD)).status, 401, 'a removed account cannot sign in');
  const taken = await admin('GET', `/api/v1/assessments/${aliceWork.id}`);
  assert.equal(taken.body.owner_name, 'admin');

  const kept = ok(o2c(['user', 'remove', 'carol', '--data', data]), 'user remove');
  assert.match(kept.stdout, /1 assessment of carol kept read-only/);
  const readOnly = await admin('PATCH', `/api/v1/assessments/${carolWork.id}/answers`,
    { revision: carolWork.revision, answers: { bi_timing: 'same_day' } });
  assert.equal(readOnly.status, 403);
  assert.match(readOnly.body.error.message, /read-only/);
  const enableRemoved = o2c(['user', 'enable', 'carol', '--data', data]);
  assert.equal(enableRemoved.status, 1);
  assert.match(enableRemoved.stderr, /carol was removed/);

  assert.match(ok(o2c(['user', 'list', '--data', data]), 'list').stdout, /^carol\s+consultant\s+removed/m);
  const listed = ok(o2c(['user', 'list', '--json', '--data', data]), 'list --json').stdout
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(listed.map((u) => [u.username, u.removed]),
    [['admin', false], ['alice', true], ['carol', true]]);

  const events = auditLines(data).filter((e) => ['alice', 'carol'].includes(e.target) && e.action.startsWith('user.'));
  assert.deepEqual(events.map((e) => `${e.action} ${e.target}`), ['user.added alice', 'user.added carol',
    'user.disabled alice', 'user.enabled alice', 'user.removed alice', 'user.removed carol']);
  const removal = events.find((e) => e.action === 'user.removed' && e.target === 'alice');
  assert.equal(removal.details.via, 'cli');
  assert.equal(removal.details.reassigned_to, 'admin');
  assert.equal(removal.details.assessments, 1);
});

test('db commands: check, backup, vacuum, migrate', (t) => {
  const data = tempDir('o2c-cli-db-');
  t.after(() => rmSync(data, { recursive: true, force: true }));
  const missing = o2c(['db', 'check', '--data', data]);
  assert.equal(missing.status, 1, 'check on a folder with no database fails');
  assert.ok(!existsSync(join(data, 'o2c.db')), 'check does not create a database');

  assert.match(ok(o2c(['db', 'migrate', '--data', data]), 'migrate').stdout, /-> 5/);
  assert.match(ok(o2c(['db', 'migrate', '--data', data]), 'migrate again').stdout, /up to date/);
  ok(o2c(['user', 'add', 'alice', '--role', 'admin', '--password-stdin', '--data', data],
    { input: `${PASSWORD}\n` }), 'user add');
  assert.match(ok(o2c(['db', 'check', '--data', data]), 'check').stdout, /^ok: .*schema version 5/);

  const backup = join(data, 'backup.db');
  ok(o2c(['db', 'backup', backup, '--data', data]), 'backup');
  assert.ok(existsSync(backup));
  const restored = join(data, 'restored');
  mkdirSync(restored);
  copyFileSync(backup, join(restored, 'o2c.db'));
  ok(o2c(['db', 'check', '--data', restored]), 'check of the backup');
  assert.match(ok(o2c(['user', 'list', '--data', restored]), 'list of the backup').stdout,
    /^alice\s+admin/m);

  ok(o2c(['db', 'vacuum', '--data', data]), 'vacuum');
  ok(o2c(['db', 'check', '--data', data]), 'check after vacuum');
  assert.equal(o2c(['db', 'backup', '--data', data]).status, 2, 'backup needs a FILE');
  assert.equal(o2c(['db', 'shrink', '--data', data]).status, 2);
});

test('serve first run prints a generated admin password once, on stdout only', async (t) => {
  const srv = await startServer({ env: { O2C_ADMIN_PASSWORD: '' } });
  t.after(() => srv.cleanup());
  const match = srv.stdout().match(/created user admin with password (\S+) — change it with 'o2c user passwd admin'/);
  assert.ok(match, `stdout: ${srv.stdout()}`);
  const password = match[1];
  assert.ok(password.length >= 20);
  const res = await login(srv.url, 'admin', password);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.user.role, 'admin');
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(!stopped.stderr.includes(password), 'the password never reaches the log');
  for (const line of stopped.stderr.split('\n').filter(Boolean)) JSON.parse(line);
  assert.match(stopped.stderr, /created the first admin account/);

  // A second start finds the account: nothing printed, the same password works.
  const again = await startServer({ env: { O2C_ADMIN_PASSWORD: '' }, data: srv.data });
  assert.equal((await login(again.url, 'admin', password)).status, 201);
  const second = await again.stop();
  assert.equal(second.code, 0);
  assert.equal(second.stdout, '');
  const added = auditLines(srv.data).filter((e) => e.action === 'user.added');
  assert.equal(added.length, 1);
  assert.equal(added[0].details.first_run, true);
});

test('serve uses O2C_ADMIN_PASSWORD, and refuses a short one with exit 2', async (t) => {
  const data = tempDir('o2c-cli-admin-');
  t.after(() => rmSync(data, { recursive: true, force: true }));
  const short = o2c(['serve', '--listen', '127.0.0.1:1', '--data', data],
    { env: { O2C_ADMIN_PASSWORD: 'too-short' } });
  assert.equal(short.status, 2, short.stderr);
  assert.match(short.stderr, /O2C_ADMIN_PASSWORD.*at least 12/);

  const srv = await startServer({ env: { O2C_ADMIN_PASSWORD: 'chosen admin password' }, data });
  assert.equal(srv.stdout(), '');
  assert.equal((await login(srv.url, 'admin', 'chosen admin password')).status, 201);
  const wrong = await login(srv.url, 'admin', 'not the password');
  assert.equal(wrong.status, 401);
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(!stopped.stderr.includes('chosen admin password'));
  const logins = auditLines(data).map((e) => e.action).filter((a) => a.startsWith('login'));
  assert.deepEqual(logins, ['login', 'login.failed']);
});
