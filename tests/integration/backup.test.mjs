// Backup and restore as the person who runs o2c does them: `o2c db backup`
// refuses to replace a file unless --force and checks its copy; `o2c db
// restore` checks the file (damaged, not a database, a newer schema) before
// it touches anything, refuses while `o2c serve` runs, and keeps the
// database it replaces beside it; scheduled backups (backup = { dir, every,
// keep }) appear while the server runs and only `keep` remain; and the
// drill: writes through the API while a backup is taken, then a restore,
// and every write acknowledged before the backup started is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync,
  statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ADMIN_PASSWORD, login, o2c, startServer, tempDir } from './lib/o2c.mjs';

const PASSWORD = 'correct horse battery';

function ok(r, what) {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function addUser(data, name) {
  ok(o2c(['user', 'add', name, '--role', 'admin', '--password-stdin', '--data', data],
    { input: `${PASSWORD}\n` }), `user add ${name}`);
}

function userNames(data) {
  return ok(o2c(['user', 'list', '--json', '--data', data]), 'user list').stdout
    .split('\n').filter(Boolean).map((l) => JSON.parse(l).name);
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

// A data folder with one account, its cleanup registered on T.
function dataWithAlice(t) {
  const root = tempDir('o2c-backup-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const data = join(root, 'data');
  addUser(data, 'alice');
  return { root, data };
}

// The users a backup FILE holds, read through a restore into a fresh folder.
function usersOf(root, file) {
  const scratch = mkdtempSync(join(root, 'scratch-'));
  ok(o2c(['db', 'restore', file, '--data', scratch]), `restore ${file} to look inside`);
  return userNames(scratch);
}

test('db backup refuses to replace a file unless --force, and checks its copy', (t) => {
  const { root, data } = dataWithAlice(t);
  const file = join(root, 'nightly.db');
  const first = ok(o2c(['db', 'backup', file, '--data', data]), 'backup');
  assert.match(first.stdout, /verified: integrity ok, schema version 5/);
  assert.equal(statSync(file).mode & 0o777, 0o600, 'a backup holds password hashes: owner only');
  const before = sha256(file);

  addUser(data, 'bob');
  const again = o2c(['db', 'backup', file, '--data', data]);
  assert.equal(again.status, 1, again.stderr);
  assert.match(again.stderr, /nightly\.db already exists; choose another name, or pass --force to replace it/);
  assert.equal(sha256(file), before, 'the refused backup changed the existing file');

  ok(o2c(['db', 'backup', file, '--force', '--data', data]), 'backup --force');
  assert.notEqual(sha256(file), before);
  assert.deepEqual(readdirSync(root).sort(), ['data', 'nightly.db'], 'no temporary file is left');
  assert.deepEqual(usersOf(root, file), ['alice', 'bob']);
});

test('db restore checks the file first and leaves the database alone when it is bad', (t) => {
  const { root, data } = dataWithAlice(t);
  const good = join(root, 'good.db');
  ok(o2c(['db', 'backup', good, '--data', data]), 'backup');
  addUser(data, 'bob');
  const db = join(data, 'o2c.db');
  const dbBefore = sha256(db);
  const filesBefore = readdirSync(data).filter((f) => f !== 'o2c.lock').sort();

  const truncated = join(root, 'truncated.db');
  copyFileSync(good, truncated);
  truncateSync(truncated, Math.floor(statSync(good).size / 2));
  const notDb = join(root, 'notes.db');
  writeFileSync(notDb, 'these are not the pages you are looking for\n');
  // PRAGMA user_version is the 4 bytes at offset 60 of the header.
  const newer = join(root, 'newer.db');
  copyFileSync(good, newer);
  const fd = openSync(newer, 'r+');
  writeSync(fd, Buffer.from([0, 0, 0, 99]), 0, 4, 60);
  closeSync(fd);

  const cases = [
    [truncated, /truncated\.db: damaged, it fails SQLite's integrity check/],
    [notDb, /notes\.db: not an SQLite database/],
    [newer, /newer\.db: schema version 99 is newer than this o2c understands \(5\)/],
    [join(root, 'missing.db'), /missing\.db: cannot read it: No such file/],
  ];
  for (const [file, message] of cases) {
    const r = o2c(['db', 'restore', file, '--data', data]);
    assert.equal(r.status, 1, `${file}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /nothing was changed/);
    assert.equal(sha256(db), dbBefore, `restoring ${file} changed the database`);
    assert.deepEqual(readdirSync(data).filter((f) => f !== 'o2c.lock').sort(), filesBefore,
      `restoring ${file} left files behind`);
  }
  assert.deepEqual(userNames(data), ['alice', 'bob']);
  ok(o2c(['db', 'check', '--data', data]), 'check after the refused restores');
});

test('db restore replaces the database and keeps the previous one beside it', (t) => {
  const { root, data } = dataWithAlice(t);
  const file = join(root, 'before-bob.db');
  ok(o2c(['db', 'backup', file, '--data', data]), 'backup');
  addUser(data, 'bob');

  const r = ok(o2c(['db', 'restore', file, '--data', data]), 'restore');
  const kept = r.stdout.match(/the previous database is kept as (\S+)/)?.[1];
  assert.ok(kept, r.stdout);
  assert.match(kept, /\/o2c\.db\.before-restore-\d{8}T\d{6}\.\d{3}Z$/);
  assert.ok(existsSync(kept));
  assert.deepEqual(userNames(data), ['alice'], 'the restored database is the backup');
  ok(o2c(['db', 'check', '--data', data]), 'check of the restored database');
  const restored = ok(o2c(['audit', '--data', data]), 'audit').stdout.trim().split('\n').map((l) => JSON.parse(l)).pop();
  assert.equal(restored.action, 'db.restored');
  assert.equal(restored.details.previous, kept);

  // The kept file is a whole database by itself: bob is in it.
  const previous = join(root, 'previous');
  mkdirSync(previous);
  copyFileSync(kept, join(previous, 'o2c.db'));
  assert.deepEqual(userNames(previous), ['alice', 'bob']);
});

test('db restore refuses while o2c serve runs on the data folder', async (t) => {
  const { root, data } = dataWithAlice(t);
  const file = join(root, 'backup.db');
  ok(o2c(['db', 'backup', file, '--data', data]), 'backup');
  const srv = await startServer({ data });
  t.after(() => srv.stop());
  const dbBefore = sha256(join(data, 'o2c.db'));
  const r = o2c(['db', 'restore', file, '--data', data]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /o2c serve is running on .*: stop o2c serve first, then run the restore again/);
  assert.equal(sha256(join(data, 'o2c.db')), dbBefore);
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
  assert.equal((await srv.stop()).code, 0);
  ok(o2c(['db', 'restore', file, '--data', data]), 'restore once the server has stopped');
});

test('backup settings are checked at start-up with the key named', (t) => {
  const root = tempDir('o2c-backup-conf-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const conf = join(root, 'o2c.conf.lua');
  const refused = [
    ['return { backup = { dir = "b", keep = 0 } }', 'backup.keep: expected a positive whole number, got 0'],
    ['return { backup = { dir = "b", every = "daily" } }', 'backup.every: expected a positive number, got "daily"'],
    ['return { backup = { folder = "b" } }', 'backup.folder: unknown key'],
  ];
  for (const [text, message] of refused) {
    writeFileSync(conf, text);
    const r = o2c(['serve', '--config', conf, '--data', join(root, 'data')]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${conf}: ${message}`), r.stderr);
  }
});

// Waits until F() is true, checking every 50 ms, for at most MS.
async function until(f, ms, what) {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('scheduled backups appear while serving and only keep remain', async (t) => {
  const root = tempDir('o2c-backup-sched-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'backups');
  const conf = join(root, 'o2c.conf.lua');
  writeFileSync(conf, `return { backup = { dir = ${JSON.stringify(dir)}, every = 0.2, keep = 2 } }\n`);
  const srv = await startServer({ data: join(root, 'data'), args: ['--config', conf] });
  t.after(() => srv.stop());
  const written = () => srv.stderr().split('\n').filter((l) => l.includes('"msg":"backup written"'));
  await until(() => written().length >= 5, 30000, 'five scheduled backups');
  assert.equal((await srv.stop()).code, 0);
  assert.ok(written().some((l) => /"pruned":[1-9]/.test(l)), 'no run pruned an old backup');

  const files = readdirSync(dir).sort();
  assert.equal(files.length, 2, `kept: ${files.join(', ')}`);
  for (const f of files) assert.match(f, /^o2c-\d{8}T\d{6}\.\d{3}Z\.db$/);
  const newest = JSON.parse(written().pop()).file;
  assert.equal(join(dir, files[1]), newest, 'the newest backup is kept');
  for (const f of files) assert.deepEqual(usersOf(root, join(dir, f)), ['admin']);
});

// `o2c db backup` as a child process that does not block this process's
// event loop, so the writers below go on while it runs.
function backupAsync(file, data) {
  return new Promise((resolve) => {
    const p = spawn(BIN, ['db', 'backup', file, '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (status) => resolve({ status, out }));
  });
}

test('drill: backup during writes, restore, every acknowledged write is there', async (t) => {
  const root = tempDir('o2c-backup-drill-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const data = join(root, 'data');
  const file = join(root, 'drill.db');
  let srv = await startServer({ data });
  t.after(() => srv.stop());
  const admin = await login(srv.url, 'admin', ADMIN_PASSWORD);

  // Four writers, each saving its own assessment over and over; each save
  // acknowledged (200) is recorded with the time its answer arrived.
  const writers = [];
  for (let i = 0; i < 4; i++) {
    const a = await admin.post('/api/v1/assessments', { type: 'o2c', client: `Drill ${i}` });
    assert.equal(a.status, 201, a.text);
    writers.push({ id: a.json.id, revision: a.json.revision, acks: [] });
  }
  let writing = true;
  const loops = writers.map(async (w) => {
    for (let k = 1; writing; k++) {
      const r = await admin.patch(`/api/v1/assessments/${w.id}/answers`,
        { revision: w.revision, answers: { co_dso: { value: 20 + (k % 50), note: `write ${k}` } } });
      assert.equal(r.status, 200, r.text);
      w.revision = r.json.revision;
      w.acks.push({ k, revision: r.json.revision, at: Date.now() });
    }
  });
  await until(() => writers.every((w) => w.acks.length >= 20), 30000, 'writes before the backup');
  const started = Date.now();
  const backup = await backupAsync(file, data);
  const finished = Date.now();
  assert.equal(backup.status, 0, backup.out);
  await until(() => writers.every((w) => w.acks.some((a) => a.at > finished)), 30000, 'writes after the backup');
  writing = false;
  await Promise.all(loops);
  const during = writers.reduce((n, w) => n + w.acks.filter((a) => a.at >= started && a.at <= finished).length, 0);
  t.diagnostic(`backup took ${finished - started} ms; ${during} saves were acknowledged meanwhile`);
  assert.equal((await srv.stop()).code, 0);

  const restore = ok(o2c(['db', 'restore', file, '--data', data]), 'restore');
  assert.match(restore.stdout, /the previous database is kept as /);
  srv = await startServer({ data });
  const again = await login(srv.url, 'admin', ADMIN_PASSWORD);
  for (const w of writers) {
    const acked = w.acks.filter((a) => a.at < started).pop();
    const got = await again.get(`/api/v1/assessments/${w.id}`);
    assert.equal(got.status, 200, got.text);
    assert.ok(got.json.revision >= acked.revision,
      `${w.id}: revision ${got.json.revision} restored, but ${acked.revision} was acknowledged before the backup`);
    const k = Number(got.json.answers.co_dso.note.replace('write ', ''));
    assert.ok(k >= acked.k, `${w.id}: write ${k} restored, but write ${acked.k} was acknowledged before the backup`);
    assert.equal(got.json.answers.co_dso.value, 20 + (k % 50));
  }
});
