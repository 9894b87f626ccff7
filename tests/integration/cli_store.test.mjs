// `o2c user`, `o2c db`, `o2c audit` on a temporary data folder, and the
// first start of `o2c serve`: the generated admin password is printed once
// on stdout (never in the JSON logs on stderr), O2C_ADMIN_PASSWORD is used
// when set, and a too short one stops the server with exit code 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { o2c, tempDir, startServer } from './lib/o2c.mjs';

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
  assert.match(table, /^NAME\s+ROLE/m);
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

test('db commands: check, backup, vacuum, migrate', (t) => {
  const data = tempDir('o2c-cli-db-');
  t.after(() => rmSync(data, { recursive: true, force: true }));
  const missing = o2c(['db', 'check', '--data', data]);
  assert.equal(missing.status, 1, 'check on a folder with no database fails');
  assert.ok(!existsSync(join(data, 'o2c.db')), 'check does not create a database');

  assert.match(ok(o2c(['db', 'migrate', '--data', data]), 'migrate').stdout, /-> 3/);
  assert.match(ok(o2c(['db', 'migrate', '--data', data]), 'migrate again').stdout, /up to date/);
  ok(o2c(['user', 'add', 'alice', '--role', 'admin', '--password-stdin', '--data', data],
    { input: `${PASSWORD}\n` }), 'user add');
  assert.match(ok(o2c(['db', 'check', '--data', data]), 'check').stdout, /^ok: .*schema version 3/);

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
