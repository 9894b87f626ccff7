// `o2c db copy --to postgresql://…` as someone moving from SQLite does it,
// against a real PostgreSQL 15 (tests/lib/pg.sh gives O2C_TEST_PG_URL): a
// database filled through the server (accounts, sessions, a failed sign-in,
// an assessment with answers, an attachment, a finished report, the audit
// log) lands in PostgreSQL row for row, every value as it was; `o2c db
// check`, `o2c user list` and `o2c audit` work on the copy and new rows get
// new ids; a second copy into the used target is refused and changes
// nothing; a copy that fails half-way leaves the target empty; a source at
// another schema version, a missing source, a URL that is not PostgreSQL
// and a server that cannot be reached each get a clear message, and the
// URL (which may hold a password) is never printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, SOURCE, login, o2c, startServer, tempDir } from './lib/o2c.mjs';

const URL = process.env.O2C_TEST_PG_URL;
if (!URL) throw new Error('run through ctest: tests/lib/pg.sh run gives O2C_TEST_PG_URL');
const PSQL = join(process.env.O2C_PG_BIN ?? '/usr/lib/postgresql/15/bin', 'psql');
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const MEDIAN = JSON.parse(readFileSync(join(SOURCE, 'scripts/o2c/examples/median.json'), 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every table with the key that orders its rows the same on both sides
// (the cluster has no locale: byte order, as SQLite's).
const TABLES = {
  users: 'id', sessions: 'token_hash', login_failures: 'id', generations: 'hash',
  assessments: 'id', answers: 'assessment_id, question_id', score_snapshots: 'id', reports: 'id',
  report_sections: 'report_id, section_id', jobs: 'id', attachments: 'assessment_id, name',
  audit_log: 'seq', llm_providers: 'provider', llm_budgets: 'provider, budget',
  llm_leases: 'provider, instance, slot', llm_waiters: 'provider, instance',
  llm_job_turns: 'provider, job_key',
};
// The schema version this build writes (core/store/db.h).
const SCHEMA = Number(readFileSync(join(SOURCE, 'core/store/db.h'), 'utf8')
  .match(/#define DB_SCHEMA_VERSION (\d+)/)[1]);

function ok(r, what) {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

// The URL of another database on the same server.
const urlOf = (name) => URL.replace(/\/o2c_test\?/, `/${name}?`);

function psql(sql, url = URL) {
  const r = spawnSync(PSQL, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
    { encoding: 'utf8' });
  assert.equal(r.status, 0, `psql ${sql}: ${r.stderr}`);
  return r.stdout.trim();
}

function sqlite(file, sql) {
  const r = spawnSync('sqlite3', ['-json', file, sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sqlite3 ${sql}: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

// All rows of every table, as JSON values (blobs as hex), in key order.
function sqliteRows(file) {
  const rows = {};
  for (const [t, key] of Object.entries(TABLES)) {
    const select = t === 'generations' ? 'hash, lower(hex(sources)) AS sources, created_at' : '*';
    rows[t] = sqlite(file, `SELECT ${select} FROM ${t} ORDER BY ${key}`);
  }
  return rows;
}

function pgRows(url = URL) {
  const rows = {};
  for (const [t, key] of Object.entries(TABLES)) {
    const from = t === 'generations'
      ? `(SELECT hash, encode(sources, 'hex') AS sources, created_at FROM generations) g` : `${t} g`;
    rows[t] = JSON.parse(psql(`SELECT coalesce(json_agg(g ORDER BY ${key}), '[]') FROM ${from}`, url));
  }
  return rows;
}

const pgTables = (url) => Number(psql(
  "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()", url));

const onPg = (args, url = URL, input) => o2c(args, { env: { O2C_DATABASE_URL: url }, input });

let root, data, dbFile, report, answers;

// A data folder filled through the server, stopped afterwards.
before(async () => {
  root = tempDir('o2c-pg-copy-');
  data = join(root, 'data');
  dbFile = join(data, 'o2c.db');
  const srv = await startServer({ data, env: { O2C_LLM_PROVIDER: 'offline' } });
  try {
    const admin = await login(srv.url);
    const made = await admin.post('/api/v1/users',
      { name: 'alice', role: 'consultant', password: 'alice-password-123' });
    assert.equal(made.status, 201, made.text);
    const wrong = await fetch(`${srv.url}/api/v1/session`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'not-her-password' }) });
    assert.equal(wrong.status, 401);
    const alice = await login(srv.url, 'alice', 'alice-password-123');
    const a = await alice.post('/api/v1/assessments', { type: 'o2c', client: 'Müller & Söhne GmbH' });
    assert.equal(a.status, 201, a.text);
    const saved = await alice.patch(`/api/v1/assessments/${a.json.id}/answers`,
      { revision: 0, answers: MEDIAN.answers });
    assert.equal(saved.status, 200, saved.text);
    const put = await alice.put(`/api/v1/assessments/${a.json.id}/attachments/flow-chart.png`, PNG,
      { 'Content-Type': 'image/png' });
    assert.equal(put.status, 201, put.text);
    const started = await alice.post(`/api/v1/assessments/${a.json.id}/reports`);
    assert.equal(started.status, 202, started.text);
    for (let i = 0; i < 300; i++) {
      report = (await alice.get(`/api/v1/reports/${started.json.report_id}`)).json;
      if (report.status === 'done') break;
      await sleep(100);
    }
    assert.equal(report.status, 'done');
    answers = (await alice.get(`/api/v1/assessments/${a.json.id}`)).json;
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

after(() => rmSync(root, { recursive: true, force: true }));

test('db copy moves every row into the empty PostgreSQL database, values as they were', () => {
  const source = sqliteRows(dbFile);
  for (const t of ['users', 'sessions', 'login_failures', 'generations', 'assessments', 'answers',
    'score_snapshots', 'reports', 'report_sections', 'jobs', 'attachments', 'audit_log'])
    assert.ok(source[t].length > 0, `the server left no rows in ${t}: the test would prove little`);

  const r = ok(o2c(['db', 'copy', '--to', URL, '--data', data]), 'db copy');
  assert.match(r.stdout, new RegExp(String.raw`^copied .*o2c\.db into PostgreSQL \(database o2c_test on \/.*\), schema version ${SCHEMA}`));
  for (const [t, rows] of Object.entries(source))
    assert.match(r.stdout, new RegExp(`^  ${t} +${rows.length}$`, 'm'), `summary line of ${t}`);
  const total = Object.values(source).reduce((n, rows) => n + rows.length, 0);
  assert.match(r.stdout, new RegExp(`verified: every table holds the same number of rows in both databases \\(${total} rows in all\\)`));

  // Row for row, value for value: ids, revisions, times, JSON text, blobs.
  assert.deepEqual(pgRows(), source);
  assert.equal(psql('SELECT max(version) FROM o2c_schema'), String(SCHEMA));
  const section = report.sections.find((s) => s.text);
  assert.equal(psql(`SELECT text FROM report_sections WHERE report_id = '${report.id}' AND section_id = '${section.id}'`),
    section.text.trim());
  assert.equal(psql(`SELECT client || ' r' || revision FROM assessments WHERE id = '${answers.id}'`),
    `Müller & Söhne GmbH r${answers.revision}`);
});

test('on the copy, o2c db check, user list and audit answer as on SQLite; new ids follow the copied ones', () => {
  const check = ok(onPg(['db', 'check']), 'db check on PostgreSQL');
  assert.match(check.stdout, new RegExp(`^ok: the PostgreSQL database is at schema version ${SCHEMA}`));
  assert.equal(ok(onPg(['user', 'list', '--json']), 'user list on PostgreSQL').stdout,
    ok(o2c(['user', 'list', '--json', '--data', data]), 'user list on SQLite').stdout);
  const sqliteAudit = ok(o2c(['audit', '--data', data]), 'audit on SQLite').stdout;
  assert.equal(ok(onPg(['audit']), 'audit on PostgreSQL').stdout, sqliteAudit);

  const lastSeq = Math.max(...sqliteAudit.trim().split('\n').map((l) => JSON.parse(l).seq));
  ok(onPg(['user', 'add', 'carol', '--role', 'consultant', '--password-stdin'], URL,
    'carol-password-123\n'), 'user add on the copy');
  const added = ok(onPg(['audit']), 'audit').stdout.trim().split('\n').map((l) => JSON.parse(l)).pop();
  assert.equal(added.action, 'user.added');
  assert.equal(added.seq, lastSeq + 1, 'the audit sequence goes on after the copied rows');
  const maxFailure = Number(psql('SELECT max(id) FROM login_failures'));
  assert.equal(Number(psql("SELECT nextval(pg_get_serial_sequence('login_failures', 'id'))")), maxFailure + 1);
});

test('a second copy into the used database is refused and changes nothing', () => {
  const before = pgRows();
  const r = o2c(['db', 'copy', '--to', URL, '--data', data]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /the target database already holds o2c data \(rows in users: \d+, .*audit_log: \d+\): o2c db copy only fills an empty database and never merges; give --to a new database/);
  assert.match(r.stderr, /nothing was copied: database o2c_test on \/.* is as it was/);
  assert.equal(r.stdout, '');
  assert.deepEqual(pgRows(), before);
});

test('a copy that fails half-way leaves the target empty', () => {
  psql('CREATE DATABASE o2c_torn');
  const torn = urlOf('o2c_torn');
  // The last table gets a text PostgreSQL cannot hold: everything before it
  // has been inserted when the copy fails.
  const file = join(root, 'torn.db');
  copyFileSync(dbFile, file);
  sqlite(file, "INSERT INTO audit_log (at, action, details) VALUES (1, 'test.nul', CAST(x'7b7d00' AS TEXT))");
  const r = o2c(['db', 'copy', '--to', torn, '--from', file]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /table audit_log, column 7 of row \d+: a text with a NUL byte, which PostgreSQL cannot store/);
  assert.match(r.stderr, /nothing was copied: database o2c_torn on/);
  assert.equal(pgTables(torn), 0, 'the failed copy left tables (or its migration) behind');

  // The same target takes a good copy afterwards (--from a backup file).
  const backup = join(root, 'backup.db');
  ok(o2c(['db', 'backup', backup, '--data', data]), 'db backup');
  ok(o2c(['db', 'copy', '--to', torn, '--from', backup]), 'copy from a backup');
  assert.deepEqual(pgRows(torn), sqliteRows(backup));
});

test('a source at another schema version, or none, is refused with what to do', () => {
  psql('CREATE DATABASE o2c_fresh');
  const fresh = urlOf('o2c_fresh');
  const older = join(root, 'older.db');
  copyFileSync(dbFile, older);
  sqlite(older, 'PRAGMA user_version = 3');
  const newer = join(root, 'newer.db');
  copyFileSync(dbFile, newer);
  sqlite(newer, 'PRAGMA user_version = 99');
  const empty = join(root, 'empty');
  const cases = [
    [['--from', older], new RegExp(String.raw`older\.db has schema version 3, older than this o2c's ${SCHEMA}: run ` + '`o2c db migrate`' + ' on it first')],
    [['--from', newer], new RegExp(String.raw`newer\.db has schema version 99, written by a newer o2c than this one \(it knows ${SCHEMA}\): upgrade o2c, then copy again`)],
    [['--data', empty], /no SQLite database at .*empty\/o2c\.db \(give the server's --data DIR or --config F, or --from FILE\); nothing was copied/],
    [['--from', join(root, 'missing.db')], /no SQLite database at .*missing\.db/],
  ];
  for (const [args, message] of cases) {
    const r = o2c(['db', 'copy', '--to', fresh, ...args]);
    assert.equal(r.status, 1, `${args}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(pgTables(fresh), 0, `${args}: the refused copy touched the target`);
  }
  assert.equal(existsSync(join(empty, 'o2c.db')), false, 'a missing source was created');
});

test('a URL that is not PostgreSQL, or a server that cannot be reached: a clear error, the URL never shown', () => {
  const secret = 'hunter2-not-to-be-printed';
  const notPg = o2c(['db', 'copy', '--to', `host=/tmp dbname=o2c password=${secret}`, '--data', data]);
  assert.equal(notPg.status, 2, notPg.stderr);
  assert.match(notPg.stderr, /--to must be a PostgreSQL URL such as postgresql:\/\/o2c@\/o2c\?host=\/run\/postgresql/);
  const sqliteUrl = o2c(['db', 'copy', '--to', 'sqlite:///var/lib/o2c/o2c.db', '--data', data]);
  assert.equal(sqliteUrl.status, 2);

  const refused = o2c(['db', 'copy', '--to', `postgresql://o2c:${secret}@127.0.0.1:1/o2c`, '--data', data]);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /cannot connect to PostgreSQL: .*port 1 failed: Connection refused/);
  assert.match(refused.stderr, /\(database o2c on 127\.0\.0\.1:1\); nothing was copied/);
  const noSocket = o2c(['db', 'copy', '--to', `postgresql://o2c:${secret}@/o2c?host=${root}/no-server`, '--data', data]);
  assert.equal(noSocket.status, 1, noSocket.stderr);
  assert.match(noSocket.stderr, /cannot connect to PostgreSQL: .*No such file or directory/);
  for (const r of [notPg, sqliteUrl, refused, noSocket]) {
    const printed = r.stdout + r.stderr;
    assert.ok(!printed.includes(secret), `the password was printed:\n${printed}`);
    assert.ok(!/o2c:|sqlite:\/\//.test(printed), `the URL was printed:\n${printed}`);
  }
  const usage = o2c(['db', 'copy', '--data', data]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /db copy needs --to postgresql:\/\//);
});

test('db copy while o2c serve runs and writes: the copy is one consistent moment', async (t) => {
  psql('CREATE DATABASE o2c_live');
  const live = urlOf('o2c_live');
  const srv = await startServer({ data });
  t.after(() => srv.stop());
  const alice = await login(srv.url, 'alice', 'alice-password-123');
  const id = answers.id;
  let revision = (await alice.get(`/api/v1/assessments/${id}`)).json.revision;
  let copying = true;
  const copied = new Promise((resolve) => {
    const p = spawn(BIN, ['db', 'copy', '--to', live, '--data', data], { cwd: SOURCE });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => { copying = false; resolve({ code, out, err }); });
  });
  let writes = 0;
  while (copying || writes < 3) {
    const r = await alice.patch(`/api/v1/assessments/${id}/answers`,
      { revision, answers: { [Object.keys(MEDIAN.answers)[0]]: 1 + (writes % 5) } });
    assert.equal(r.status, 200, r.text);
    revision = r.json.revision;
    writes++;
  }
  const r = await copied;
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /verified: every table holds the same number of rows/);
  // One moment of the source: the assessment's revision is that of its
  // newest answer (a copy read table by table without a snapshot could
  // take the assessment before a save and its answers after it).
  const [assessmentRevision, newestAnswer] = psql(
    `SELECT a.revision, max(w.revision) FROM assessments a JOIN answers w ON w.assessment_id = a.id WHERE a.id = '${id}' GROUP BY a.revision`,
    live).split('|').map(Number);
  assert.equal(newestAnswer, assessmentRevision);
  assert.equal((await srv.stop()).code, 0);
});
