#!/usr/bin/env node
// `make bench`: every benchmark of the issues in one table (markdown on
// stdout and in BUILD/bench.md).  Started by tests/bench/run.sh, which checks
// the tools; this file starts the real servers (o2c, nginx, the mock
// provider) on free 127.0.0.1 ports with temporary data folders, drives them,
// and stops them.  It builds nothing: BUILD/o2c and BUILD/tests/bench/bench_core
// come from `make build`.
//
// Figures are medians of repeated runs on a shared, noisy machine: compare
// ratios within one run (nginx and o2c are measured side by side, alternating),
// and never treat a figure as pass/fail.  How each figure is measured is in
// tests/bench/README.md and in the notes column.
//
//   node tests/bench/bench.mjs BUILD_DIR
//   BENCH_QUICK=1   shorter wrk runs and fewer repetitions (for trying it out)
//   BENCH_ONLY=a,b  only these sections: startup,check,core,reload,http,logins,wrk,idle,reports
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync, existsSync,
  openSync, closeSync, statSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const BUILD = resolve(ROOT, process.argv[2] || 'build');
const O2C = join(BUILD, 'o2c');
const BENCH_CORE = join(BUILD, 'tests/bench/bench_core');
const QUICK = !!process.env.BENCH_QUICK;
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const PASSWORD = 'bench-admin-password-' + randomBytes(4).toString('hex');
const ANSWERS = JSON.parse(readFileSync(join(ROOT, 'scripts/o2c/examples/median.json'), 'utf8')).answers;

const WORK = mkdtempSync(join(tmpdir(), 'o2c-bench-'));
const children = new Set();
const rows = [];

// ---------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p / 100))] : NaN; };
const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const log = (...a) => process.stderr.write(`bench: ${a.join(' ')}\n`);

function row(benchmark, figure, unit, notes = '') {
  rows.push({ benchmark, figure, unit, notes });
  log(`${benchmark}: ${figure} ${unit}${notes ? `  (${notes})` : ''}`);
}

function rssKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) : NaN;
  } catch { return NaN; }
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

function track(proc) {
  proc.on('error', (e) => { proc.spawnError = e; children.delete(proc); });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return proc;
}

async function stopProc(proc, signal = 'SIGTERM', ms = 5000) {
  if (!proc || proc.spawnError || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  const t = setTimeout(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } }, ms);
  await exited;
  clearTimeout(t);
}

// One HTTP request on AGENT (keep-alive): { status, headers, text, json, ms }.
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
// For requests right after wrk: spawnSync blocks this event loop, so a pooled
// socket the server closed meanwhile (60 s idle) is reused before its close
// is seen, and fails with "socket hang up".
const freshAgent = () => new http.Agent({ keepAlive: false });
function request(url, { method = 'GET', body, token, headers = {}, agent: ag = agent, timeout = 10000 } = {}) {
  return new Promise((res, rej) => {
    const h = { ...headers };
    let data;
    if (body !== undefined) {
      data = typeof body === 'string' ? body : JSON.stringify(body);
      h['Content-Type'] = 'application/json';
      h['Content-Length'] = Buffer.byteLength(data);
    }
    if (token) h.Authorization = `Bearer ${token}`;
    const t0 = nowMs();
    const req = http.request(url, { method, headers: h, agent: ag, timeout }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        res({ status: r.statusCode, headers: r.headers, text, json, ms: nowMs() - t0 });
      });
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', rej);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

async function waitHealthy(url, proc, ms = 20000, every = 2) {
  const deadline = nowMs() + ms;
  const ag = new http.Agent({ keepAlive: false });
  for (;;) {
    if (proc.spawnError) throw new Error(`cannot start: ${proc.spawnError.message}`);
    if (proc.exitCode !== null) throw new Error(`exited early (code ${proc.exitCode})`);
    try {
      const r = await request(`${url}/healthz`, { agent: ag, timeout: 1000 });
      if (r.status === 200) return;
    } catch { /* not up yet */ }
    if (nowMs() > deadline) throw new Error('did not answer /healthz in time');
    await sleep(every);
  }
}

// ---------------------------------------------------------------------------
// servers
// ---------------------------------------------------------------------------

// `o2c serve` from CWD (the repo root unless a copy is used), stderr (the JSON
// log, access log included) to a file, as it would go to journald.
async function startO2c({ cwd = ROOT, env = {}, args = [], wait = true, data } = {}) {
  const port = await freePort();
  data = data ?? mkdtempSync(join(WORK, 'data-'));
  const logPath = join(data, 'stderr.log');
  const fd = openSync(logPath, 'a');
  const t0 = nowMs();
  const proc = track(spawn(O2C, ['serve', '--listen', `127.0.0.1:${port}`, '--data', data, ...args], {
    cwd, env: { ...process.env, O2C_ADMIN_PASSWORD: PASSWORD, ...env }, stdio: ['ignore', 'ignore', fd] }));
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const srv = { url, port, data, proc, logPath, t0,
    log: () => readFileSync(logPath, 'utf8'),
    stop: () => stopProc(proc) };
  if (wait) {
    try { await waitHealthy(url, proc); } catch (e) {
      await srv.stop();
      throw new Error(`o2c serve: ${e.message}\n${srv.log().slice(-2000)}`);
    }
  }
  return srv;
}

async function login(url, username = 'admin', password = PASSWORD) {
  const r = await request(`${url}/api/v1/session`, { method: 'POST', body: { username, password } });
  if (r.status !== 201 || !r.json?.token) throw new Error(`login: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.token;
}

// Access-log lines ("msg":"http") of SRV's log from byte OFFSET on.
function accessLog(srv, offset = 0, route) {
  const text = readFileSync(srv.logPath, 'utf8').slice(offset);
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"http"')) continue;
    try {
      const e = JSON.parse(line);
      if (!route || e.route === route) out.push(e);
    } catch { /* partial line */ }
  }
  return out;
}
const logSize = (srv) => statSync(srv.logPath).size;

async function startNginx(token) {
  const prefix = mkdtempSync(join(WORK, 'nginx-'));
  const port = await freePort();
  const conf = readFileSync(join(HERE, 'nginx/nginx.conf.in'), 'utf8')
    .replaceAll('@PREFIX@', prefix).replaceAll('@BENCH@', HERE).replaceAll('@ROOT@', ROOT)
    .replaceAll('@TOKEN@', token).replaceAll('@PORT@', String(port));
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const fd = openSync(join(prefix, 'stderr.log'), 'w');
  const proc = track(spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf')],
    { stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  try { await waitHealthy(url, proc, 20000, 20); } catch (e) {
    await stopProc(proc, 'SIGQUIT');
    const errs = ['stderr.log', 'error.log'].map((f) => {
      try { return readFileSync(join(prefix, f), 'utf8'); } catch { return ''; }
    }).join('\n');
    throw new Error(`nginx: ${e.message}\n${errs.slice(-2000)}`);
  }
  // The worker's pid, for its RSS.
  const master = proc.pid;
  let worker = NaN;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === master) { worker = Number(d); break; }
    } catch { /* gone */ }
  }
  return { url, port, proc, prefix, worker, stop: () => stopProc(proc, 'SIGQUIT') };
}

function wrk({ url, conns = 64, seconds, method = 'GET', bodyFile, token }) {
  const threads = Math.min(2, Math.max(1, cpus().length));
  const r = spawnSync('wrk', ['-t', String(threads), '-c', String(conns), '-d', `${seconds}s`,
    '--timeout', '5s', '-s', join(HERE, 'wrk.lua'), url], {
    encoding: 'utf8', timeout: (seconds + 30) * 1000,
    env: { ...process.env, BENCH_METHOD: method, BENCH_BODY: bodyFile || '', BENCH_TOKEN: token || '' } });
  const line = (r.stdout || '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`wrk: ${r.stderr || r.stdout || r.error}`);
  const out = JSON.parse(line);
  out.errors = out.connect_errors + out.read_errors + out.write_errors + out.timeouts + out.non2xx;
  return out;
}

function benchCore(args) {
  const r = spawnSync(BENCH_CORE, args, { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) throw new Error(`bench_core ${args[0]}: ${r.stderr || r.error}`);
  const out = {};
  for (const l of r.stdout.trim().split('\n')) { const j = JSON.parse(l); out[j.name] = j; }
  return out;
}

// ---------------------------------------------------------------------------
// the benchmarks
// ---------------------------------------------------------------------------

const sections = [];
const bench = (name, fn) => sections.push({ name, fn });

// Issue 2: start-up to /healthz and idle RSS, fresh data folder each time
// (first start: database created, migrations, admin password hashed).
bench('startup', async () => {
  const n = QUICK ? 3 : 5;
  const first = [], again = [], rss = [];
  for (let i = 0; i < n; i++) {
    // First start on an empty data folder (database created, migrations,
    // admin password hashed), then a restart on the same folder.
    const fresh = await startO2c({ wait: false });
    await waitHealthy(fresh.url, fresh.proc, 20000, 1);
    first.push(nowMs() - fresh.t0);
    await fresh.stop();
    const srv = await startO2c({ wait: false, data: fresh.data });
    await waitHealthy(srv.url, srv.proc, 20000, 1);
    again.push(nowMs() - srv.t0);
    await sleep(1000);
    rss.push(rssKiB(srv.proc.pid) / 1024);
    await srv.stop();
  }
  row('start-up to /healthz', fmt(median(again), 0), 'ms',
    `median of ${n} restarts on an existing data folder: spawn → first 200 from /healthz (polled every 1 ms); first start on an empty folder (database created, admin password hashed): ${fmt(median(first), 0)} ms`);
  row('idle RSS', fmt(median(rss), 1), 'MiB',
    `VmRSS 1 s after start-up (scripts and KB loaded, no request but the probe); median of ${n}`);
});

// Issue 3: `o2c check` time.
bench('check', async () => {
  const n = QUICK ? 3 : 5;
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    const r = spawnSync(O2C, ['check'], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
    times.push(nowMs() - t0);
    if (r.status !== 0) throw new Error(`o2c check exited ${r.status}: ${r.stdout}${r.stderr}`);
  }
  row('`o2c check` (scripts/ + kb/)', fmt(median(times), 0), 'ms',
    `wall time of the whole command (process start, load + validate every type, KB, examples); median of ${n}`);
});

// Issues 3 and 4: in-process timings on o2c_core (tests/bench/bench_core.c).
bench('core', async () => {
  if (!existsSync(BENCH_CORE)) throw new Error(`${BENCH_CORE} is missing: run make build`);
  const s = benchCore(['score', 'scripts', 'kb', 'scripts/o2c/examples/median.json', QUICK ? '500' : '3000']);
  // The same engine under LuaJIT (nginx), timed in-process the same way.
  let jit = '';
  try {
    const ng = await startNginx(randomBytes(32).toString('base64url'));
    try {
      const r = await request(`${ng.url}/_bench/engine?n=${QUICK ? 500 : 3000}`, { method: 'POST', body: { answers: ANSWERS }, timeout: 60000 });
      if (r.status === 200) jit = `; the same engine under LuaJIT in nginx (one state, no copies, no budgets): score ${fmt(r.json.score_p50_us, 0)} µs, validate + score ${fmt(r.json.validate_and_score_p50_us, 0)} µs`;
    } finally { await ng.stop(); }
  } catch (e) { log(`LuaJIT engine timing: ${e.message}`); }
  row('scoring one full answer set', fmt(s.score.p50_us, 0), 'µs',
    `median of ${s.score.n} generation_call("score") on median.json (40 answers): answers copied into the generation's sandbox, scored under its budgets, scores copied back; p99 ${fmt(s.score.p99_us, 0)} µs; validate_answers + score through copies: ${fmt(s.validate_and_score.p50_us, 0)} µs; the preview route's work with text in and out (decode, validate, score, encode), timed here on the generation's own state under its count hook (the route runs it on a replica, without the hook): ${s.preview_json ? fmt(s.preview_json.p50_us, 0) : 'n/a'} µs; fixed cost of one generation call (has_type): ${fmt(s.has_type.p50_us, 1)} µs${jit}`);
  const v = benchCore(['session', mkdtempSync(join(WORK, 'db-')), QUICK ? '5000' : '20000']);
  row('session validation', fmt(v.session_validate.p50_us, 1), 'µs',
    `median of ${v.session_validate.n} session_validate (BLAKE2b of the token + one SQLite lookup joined to the user; 101 live sessions); p99 ${fmt(v.session_validate.p99_us, 1)} µs`);
  const w = benchCore(['save', mkdtempSync(join(WORK, 'db-')), QUICK ? '500' : '2000']);
  row('answer save p50 / p99 (1 answer)', `${fmt(w.save_1_answer.p50_us, 0)} / ${fmt(w.save_1_answer.p99_us, 0)}`, 'µs',
    `store_save_answers, one transaction each (revision check, upsert, revision bump), WAL synchronous=NORMAL, ${w.save_1_answer.n} saves`);
  row('answer save p50 / p99 (44 answers)', `${fmt(w.save_44_answers.p50_us, 0)} / ${fmt(w.save_44_answers.p99_us, 0)}`, 'µs',
    `the same with a full answer set per save, ${w.save_44_answers.n} saves`);
});

// Issue 3: edit-to-live reload latency, median of 20, on a copy of scripts/ and kb/.
bench('reload', async () => {
  const dir = mkdtempSync(join(WORK, 'reload-'));
  cpSync(join(ROOT, 'scripts'), join(dir, 'scripts'), { recursive: true });
  cpSync(join(ROOT, 'kb'), join(dir, 'kb'), { recursive: true });
  const srv = await startO2c({ cwd: dir });
  try {
    const token = await login(srv.url);
    const qfile = join(dir, 'scripts/o2c/questionnaire.lua');
    const original = readFileSync(qfile, 'utf8');
    const q0 = await request(`${srv.url}/api/v1/assessment-types/o2c`, { token });
    if (q0.status !== 200) throw new Error(`questionnaire: ${q0.status}`);
    const first = q0.json.questions[0];
    if (!original.includes(first.text)) throw new Error('question text not found in questionnaire.lua');
    const n = QUICK ? 5 : 20;
    const lat = [];
    let gen = q0.json.generation;
    for (let i = 1; i <= n; i++) {
      const wording = `${first.text} (bench edit ${i})`;
      const edited = original.replace(first.text, wording);
      // Half in place, half by rename over (what editors do).
      const t0 = nowMs();
      if (i % 2) writeFileSync(qfile, edited);
      else { writeFileSync(`${qfile}.bench-tmp`, edited); renameSync(`${qfile}.bench-tmp`, qfile); }
      const deadline = t0 + 10000;
      for (;;) {
        // Cheap probe: the generation in the type list; then confirm the wording.
        const l = await request(`${srv.url}/api/v1/assessment-types`, { token });
        const g = l.json?.[0]?.generation;
        if (g && g !== gen) {
          const q = await request(`${srv.url}/api/v1/assessment-types/o2c`, { token });
          if (q.json?.questions?.[0]?.text === wording) { lat.push(nowMs() - t0); gen = g; break; }
        }
        if (nowMs() > deadline) throw new Error(`edit ${i} not live within 10 s`);
        await sleep(2);
      }
      await sleep(50);
    }
    row('edit-to-live reload', fmt(median(lat), 0), 'ms',
      `median of ${n} edits of a question's wording (in place and by rename), from the write to the first GET serving it (polled every ~2 ms); min ${fmt(Math.min(...lat), 0)}, max ${fmt(Math.max(...lat), 0)}`);
  } finally {
    await srv.stop();
  }
});

// One o2c server for the HTTP rows below (logins, wrk, idle connections).
let shared;
async function sharedServer() {
  if (!shared) {
    const srv = await startO2c();
    const token = await login(srv.url);
    shared = { srv, token };
  }
  return shared;
}

// Server-side times per request from the access log (duration_ms), for the
// preview route and for answer saves through the API.
bench('http', async () => {
  const { srv, token } = await sharedServer();
  const n = QUICK ? 300 : 1000;
  const body = { answers: ANSWERS };
  let off = logSize(srv);
  for (let i = 0; i < n; i++) {
    const r = await request(`${srv.url}/api/v1/assessment-types/o2c/score`, { method: 'POST', token, body });
    if (r.status !== 200) throw new Error(`score: ${r.status} ${r.text.slice(0, 300)}`);
  }
  await sleep(200);
  const d = accessLog(srv, off, 'types.score').map((e) => e.duration_ms * 1000);
  row('preview score, server time per request', fmt(median(d), 0), 'µs',
    `access-log duration_ms of ${d.length} sequential POST …/o2c/score (one client): session check, JSON decode, body + answer validation, scoring, JSON encode; p99 ${fmt(pct(d, 99), 0)} µs`);

  const a = await request(`${srv.url}/api/v1/assessments`, { method: 'POST', token, body: { type: 'o2c', client: 'Bench Ltd' } });
  if (a.status !== 201) throw new Error(`create assessment: ${a.status} ${a.text.slice(0, 300)}`);
  let revision = a.json.revision;
  const ids = Object.keys(ANSWERS);
  off = logSize(srv);
  for (let i = 0; i < n; i++) {
    const qid = ids[i % ids.length];
    const r = await request(`${srv.url}/api/v1/assessments/${a.json.id}/answers`, {
      method: 'PATCH', token, body: { revision, answers: { [qid]: ANSWERS[qid] } } });
    if (r.status !== 200) throw new Error(`save: ${r.status} ${r.text.slice(0, 300)}`);
    revision = r.json.revision;
  }
  await sleep(200);
  const s = accessLog(srv, off).filter((e) => e.method === 'PATCH').map((e) => e.duration_ms * 1000);
  row('answer save through the API p50 / p99', `${fmt(median(s), 0)} / ${fmt(pct(s, 99), 0)}`, 'µs',
    `access-log duration_ms of ${s.length} sequential PATCH …/answers (1 answer each): session, validation, the save transaction, re-scoring and the score snapshot, audit`);
});

// Issue 4: the loop's responsiveness while 20 logins hash (argon2id on the pool).
bench('logins', async () => {
  const { srv } = await sharedServer();
  const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const probe = async (untilDone) => {
    const lat = [];
    while (!untilDone()) lat.push((await request(`${srv.url}/healthz`, { agent: probeAgent })).ms);
    return lat;
  };
  // Baseline: the probe alone for 500 ms.
  const t0 = nowMs();
  const base = await probe(() => nowMs() - t0 > 500);
  const rounds = QUICK ? 1 : 3;
  const p99s = [], all = [], walls = [];
  for (let k = 0; k < rounds; k++) {
    let done = false;
    const loginAgent = new http.Agent({ keepAlive: false });
    const tl = nowMs();
    const logins = Promise.all(Array.from({ length: 20 }, () => request(`${srv.url}/api/v1/session`,
      { method: 'POST', body: { username: 'admin', password: PASSWORD }, agent: loginAgent, timeout: 30000 })))
      .then((rs) => { done = true; walls.push(nowMs() - tl); return rs; });
    const lat = await probe(() => done);
    const rs = await logins;
    const bad = rs.filter((r) => r.status !== 201);
    if (bad.length) throw new Error(`login: ${bad[0].status} ${bad[0].text.slice(0, 200)}`);
    p99s.push(pct(lat, 99));
    all.push(...lat);
    await sleep(300);
  }
  row('loop while 20 logins hash: p99 of GET /healthz', fmt(median(p99s), 2), 'ms',
    `one keep-alive client sending /healthz back to back while 20 POST /api/v1/session (argon2id verify on the thread pool) run at once; median of ${rounds} rounds' p99 (${all.length} probes, the 20 logins took ${fmt(median(walls), 0)} ms); alone: p99 ${fmt(pct(base, 99), 2)} ms; client time, node included`);
});

// Issue 5: wrk, 64 connections: preview score side by side with nginx, and the questionnaire.
bench('wrk', async () => {
  const { srv, token } = await sharedServer();
  const bodyFile = join(WORK, 'score-body.json');
  writeFileSync(bodyFile, JSON.stringify({ answers: ANSWERS }));
  const ngToken = randomBytes(32).toString('base64url');
  let ng;
  try {
    ng = await startNginx(ngToken);
  } catch (e) {
    row('nginx + lua-nginx-module', 'n/a', '', `could not start: ${e.message.split('\n').slice(0, 3).join(' ')}`);
  }
  const path = '/api/v1/assessment-types/o2c/score';
  // The same answers must give the same scores on both, or the comparison means nothing.
  const mine = await request(srv.url + path, { method: 'POST', token, body: { answers: ANSWERS } });
  if (mine.status !== 200) throw new Error(`o2c score: ${mine.status} ${mine.text.slice(0, 300)}`);
  let same = 'not compared';
  if (ng) {
    const theirs = await request(ng.url + path, { method: 'POST', token: ngToken, body: { answers: ANSWERS } });
    if (theirs.status !== 200) throw new Error(`nginx score: ${theirs.status} ${theirs.text.slice(0, 300)}`);
    const diff = compare(mine.json.scores, theirs.json.scores, 'scores');
    same = diff ? `DIFFERENT (${diff})` : 'identical scores';
    if (diff) log(`nginx and o2c disagree: ${diff}`);
  }
  const secs = QUICK ? 3 : 4, rounds = QUICK ? 1 : 5;
  const spec = (base, tok) => ({ url: base + path, method: 'POST', bodyFile, token: tok, conns: 64 });
  wrk({ ...spec(srv.url, token), seconds: 2 });
  if (ng) wrk({ ...spec(ng.url, ngToken), seconds: 2 });
  const o = [], x = [];
  for (let i = 0; i < rounds; i++) {
    o.push(wrk({ ...spec(srv.url, token), seconds: secs }));
    if (ng) x.push(wrk({ ...spec(ng.url, ngToken), seconds: secs }));
  }
  const rps = (rs) => median(rs.map((r) => r.rps));
  const p99 = (rs) => median(rs.map((r) => r.p99_us / 1000));
  const errs = (rs) => rs.reduce((a, r) => a + r.errors, 0);
  row('preview score (POST …/o2c/score), o2c', fmt(rps(o), 0), 'req/s',
    `wrk -t2 -c64, authenticated, full answer set; median of ${rounds} × ${secs} s runs alternating with nginx (${o.map((r) => fmt(r.rps, 0)).join(', ')}); errors/non-2xx ${errs(o)}`);
  row('preview score p99, o2c', fmt(p99(o), 2), 'ms', `target ≤ 5 ms p99; p50 ${fmt(median(o.map((r) => r.p50_us / 1000)), 2)} ms`);
  if (ng) {
    row('preview score, nginx + lua-nginx-module', fmt(rps(x), 0), 'req/s',
      `1 worker, LuaJIT, lua-cjson, o2c's own engine files under a 5.1 shim (tests/bench/nginx); ${same}; runs ${x.map((r) => fmt(r.rps, 0)).join(", ")}; p99 ${fmt(p99(x), 2)} ms; errors/non-2xx ${errs(x)}`);
    row('preview score throughput ratio o2c ÷ nginx', fmt(rps(o) / rps(x), 2), '×',
      'target ≥ 1.0 (same run, same machine, same wrk)');
  }

  // With 64 connections wrk keeps 64 requests in flight, so the mean latency
  // is 64 ÷ throughput whatever the server does (Little's law); the service
  // time shows at low concurrency.
  const lo = wrk({ ...spec(srv.url, token), conns: 8, seconds: secs });
  let nlo = '';
  if (ng) {
    const l = wrk({ ...spec(ng.url, ngToken), conns: 8, seconds: secs });
    nlo = `; nginx at 8 connections: p99 ${fmt(l.p99_us / 1000, 2)} ms, ${fmt(l.rps, 0)} req/s`;
  }
  row('preview score p99 at 8 connections, o2c', fmt(lo.p99_us / 1000, 2), 'ms',
    `wrk -t2 -c8 ${secs} s: ${fmt(lo.rps, 0)} req/s, p50 ${fmt(lo.p50_us / 1000, 2)} ms; at 64 connections the mean latency is 64 ÷ throughput (Little's law), ${fmt(64000 / rps(o), 1)} ms at ${fmt(rps(o), 0)} req/s, so p99 ≤ 5 ms there needs more than 12,800 req/s${nlo}`);

  // The questionnaire (GET, authenticated).
  const qpath = '/api/v1/assessment-types/o2c';
  const g = wrk({ url: srv.url + qpath, token, conns: 64, seconds: secs });
  let ngq = '';
  if (ng) {
    const gq = wrk({ url: ng.url + qpath, token: ngToken, conns: 64, seconds: secs });
    ngq = `; nginx doing the same: ${fmt(gq.rps, 0)} req/s, p99 ${fmt(gq.p99_us / 1000, 2)} ms`;
  }
  row('GET /api/v1/assessment-types/o2c', fmt(g.rps, 0), 'req/s',
    `wrk -t2 -c64 ${secs} s, authenticated, ${Buffer.byteLength(JSON.stringify((await request(srv.url + qpath, { token, agent: freshAgent() })).json))} B of JSON; errors/non-2xx ${g.errors}${ngq}`);
  row('GET /api/v1/assessment-types/o2c p99', fmt(g.p99_us / 1000, 2), 'ms', `p50 ${fmt(g.p50_us / 1000, 2)} ms`);
  if (ng) await ng.stop();
});

// Compares two decoded JSON values; numbers within 1e-9.  Returns null or where they differ.
function compare(a, b, where) {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 ? null : `${where}: ${a} vs ${b}`;
  const emptyA = a && typeof a === 'object' && Object.keys(a).length === 0;
  const emptyB = b && typeof b === 'object' && Object.keys(b).length === 0;
  if (emptyA && emptyB) return null; // [] vs {} (Debian's lua-cjson has no empty-array marker)
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b)) return `${where}: type`;
  if (a && typeof a === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) { const d = compare(a[k], b[k], `${where}.${k}`); if (d) return d; }
    return null;
  }
  return a === b ? null : `${where}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

// Issue 5: 1,000 idle keep-alive connections' added RSS (a server of its own).
async function idleConnections(url, pid, n = 1000) {
  const before = rssKiB(pid);
  const socks = [];
  let answered = 0;
  const { port } = new URL(url);
  await new Promise((res, rej) => {
    let opened = 0;
    const t = setTimeout(() => rej(new Error(`only ${answered} of ${n} connections answered`)), 20000);
    for (let i = 0; i < n; i++) {
      const s = net.connect(Number(port), '127.0.0.1', () => {
        s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      });
      let got = '';
      s.on('data', (d) => {
        if (got === null) return;
        got += d;
        if (got.startsWith('HTTP/1.1 200') && got.includes('\r\n\r\n')) {
          got = null;
          if (++answered === n) { clearTimeout(t); res(); }
        }
      });
      s.on('error', (e) => { clearTimeout(t); rej(e); });
      socks.push(s);
      opened++;
    }
  });
  await sleep(1000);
  const after = rssKiB(pid);
  for (const s of socks) s.destroy();
  return (after - before) / 1024;
}

bench('idle', async () => {
  const srv = await startO2c();
  try {
    await login(srv.url);
    for (let i = 0; i < 50; i++) await request(`${srv.url}/healthz`);
    await sleep(500);
    const mib = await idleConnections(srv.url, srv.proc.pid);
    let ngNote = '';
    try {
      const ng = await startNginx(randomBytes(32).toString('base64url'));
      if (Number.isFinite(ng.worker)) ngNote = `; nginx worker: ${fmt(await idleConnections(ng.url, ng.worker), 1)} MiB`;
      await ng.stop();
    } catch (e) { log(`nginx idle connections: ${e.message}`); }
    row('1,000 idle keep-alive connections: added RSS', fmt(mib, 1), 'MiB',
      `VmRSS after 1,000 connections each made one GET /healthz and stayed open, minus before; target ≤ 8 MiB${ngNote}`);
  } finally {
    await srv.stop();
  }
});

// Issue 6: makespan of 8 simultaneous reports against the mock at 60 RPM, against the bound.
async function startMock(latencyMs) {
  const proc = track(spawn(process.execPath, [join(ROOT, 'tests/mock_provider/server.mjs'), '--port', '0',
    '--rpm', '60', '--latency-ms', String(latencyMs)], { stdio: ['ignore', 'pipe', 'ignore'] }));
  const url = await new Promise((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error('mock provider did not start')), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/\{"listening":"([^"]+)"\}/);
      if (m) { clearTimeout(t); res(m[1]); }
    });
    proc.on('exit', (c) => { clearTimeout(t); rej(new Error(`mock provider exited ${c}`)); });
  });
  return { url, proc, stop: () => stopProc(proc), stats: async () => (await request(`${url}/_mock/stats`)).json };
}

async function reportMakespan({ learned }) {
  const latencyMs = 1000;
  const mock = await startMock(latencyMs);
  const env = { O2C_LLM_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'k', O2C_ANTHROPIC_BASE_URL: mock.url,
    O2C_LLM_RPM: '60', O2C_LLM_ITPM: '100000000', O2C_LLM_OTPM: '100000000', O2C_LLM_CONCURRENCY: '32' };
  const args = [];
  if (learned) {
    const conf = join(WORK, 'learned.conf.lua');
    writeFileSync(conf, 'return { llm = { learn_limits = true } }\n');
    args.push('--config', conf);
  }
  const srv = await startO2c({ env, args });
  try {
    const token = await login(srv.url);
    const ids = [];
    for (let i = 0; i < 8; i++) {
      const a = await request(`${srv.url}/api/v1/assessments`, { method: 'POST', token, body: { type: 'o2c', client: `Bench ${i}` } });
      if (a.status !== 201) throw new Error(`create: ${a.status} ${a.text.slice(0, 200)}`);
      const s = await request(`${srv.url}/api/v1/assessments/${a.json.id}/answers`, {
        method: 'PATCH', token, body: { revision: a.json.revision, answers: ANSWERS } });
      if (s.status !== 200) throw new Error(`answers: ${s.status} ${s.text.slice(0, 200)}`);
      ids.push(a.json.id);
    }
    const t0 = nowMs();
    const started = await Promise.all(ids.map((id) => request(`${srv.url}/api/v1/assessments/${id}/reports`,
      { method: 'POST', token, body: {} })));
    for (const r of started) {
      if (r.status === 404 || r.status === 405) return { na: `reports not available (POST …/reports → ${r.status})` };
      if (r.status !== 202) throw new Error(`report: ${r.status} ${r.text.slice(0, 200)}`);
    }
    const reportIds = started.map((r) => r.json.report_id);
    const finished = new Map();
    let last;
    const deadline = t0 + 240000;
    while (finished.size < reportIds.length) {
      for (const id of reportIds) {
        if (finished.has(id)) continue;
        const r = await request(`${srv.url}/api/v1/reports/${id}`, { token });
        last = r.json;
        if (r.json && ['done', 'partial', 'failed'].includes(r.json.status) && !r.json.active) finished.set(id, { at: nowMs(), report: r.json });
      }
      if (nowMs() > deadline) throw new Error(`reports not finished in 240 s (${finished.size}/8)`);
      await sleep(100);
    }
    const makespan = (Math.max(...[...finished.values()].map((f) => f.at)) - t0) / 1000;
    const reports = [...finished.values()].map((f) => f.report);
    const statuses = reports.map((r) => r.status);
    const stats = await mock.stats();
    // The bound: calls beyond the bucket ÷ refill rate + the critical path
    // (DAG depth) × latency.  Calls are those the provider accepted (a
    // section whose `check` fails is re-asked once: two calls, marked with a
    // warning); the critical path counts such a section twice too.
    const secs = reports[0].sections;
    const llm = secs.filter((s) => s.kind === 'llm');
    const byId = new Map(secs.map((s) => [s.id, s]));
    const cost = (s) => (s.kind !== 'llm' ? 0 : /check failed/.test(s.warning || '') ? 2 : 1);
    const memo = new Map();
    const depth = (id, weighted) => {
      const key = `${id}/${weighted}`;
      if (memo.has(key)) return memo.get(key);
      const s = byId.get(id);
      const own = weighted ? cost(s) : (s.kind === 'llm' ? 1 : 0);
      const d = own + Math.max(0, ...(s.depends || []).map((x) => depth(x, weighted)));
      memo.set(key, d);
      return d;
    };
    const dagDepth = Math.max(0, ...secs.map((s) => depth(s.id, false)));
    const pathCalls = Math.max(0, ...secs.map((s) => depth(s.id, true)));
    const planned = 8 * llm.length;
    const calls = stats.accepted;
    const reasked = reports.reduce((n, r) => n + r.sections.filter((s) => cost(s) === 2).length, 0);
    const bound = Math.max(0, calls - 60) / 1 + pathCalls * latencyMs / 1000;
    const plannedBound = Math.max(0, planned - 60) / 1 + dagDepth * latencyMs / 1000;
    return { makespan, bound, plannedBound, calls, planned, reasked, perReport: llm.length, dagDepth, pathCalls, latencyMs, statuses, stats };
  } finally {
    await srv.stop();
    await mock.stop();
  }
}

bench('reports', async () => {
  // Both variants at once, each with its own mock and server: they share
  // nothing but the CPU, which they barely use (they wait on the rate limit).
  const variants = QUICK ? [false] : [false, true];
  const results = await Promise.all(variants.map((learned) =>
    reportMakespan({ learned }).catch((e) => ({ error: e }))));
  variants.forEach((learned, i) => {
    const r = results[i];
    const name = learned ? 'report makespan, limits learned from headers' : 'report makespan, limits configured';
    if (r.error) { row(name, 'n/a', '', `failed: ${r.error.message.split('\n')[0].slice(0, 200)}`); return; }
    if (r.na) { row(name, 'n/a', '', r.na); return; }
    const done = r.statuses.filter((s) => s === 'done').length;
    row(name, `${fmt(r.makespan, 1)} (${fmt(r.makespan / r.bound, 2)}× bound)`, 's',
      `8 reports at once, mock at 60 RPM (bucket 60, refill 1/s), ${r.latencyMs} ms per call, ${learned ? 'o2c learning its limits from the headers' : 'o2c RPM 60'}, concurrency 32; ` +
      `${r.calls} calls accepted (${r.planned} planned: ${r.perReport} LLM sections × 8, ${r.reasked} re-asked once after a failed check), ` +
      `bound = (${r.calls} − 60) ÷ 1/s + ${r.pathCalls} calls on the critical path (DAG depth ${r.dagDepth}) × ${r.latencyMs / 1000} s = ${fmt(r.bound, 1)} s ` +
      `(with no re-asks it would be ${fmt(r.plannedBound, 1)} s); target ≤ ${learned ? '1.3' : '1.15'}× bound; ${done}/8 done; ` +
      `mock: ${r.stats.requests} requests, ${r.stats.status429} 429s, peak ${r.stats.peakRequestsInWindow} in a 60 s window, limit exceeded: ${r.stats.anyLimitExceeded}`);
  });
  if (QUICK) row('report makespan, limits learned from headers', 'not run', '', 'BENCH_QUICK runs the configured variant only');
});

// ---------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------

function table() {
  const esc = (s) => String(s).replaceAll('|', '\\|').replaceAll('\n', ' ');
  const lines = ['| benchmark | figure | unit | notes |', '|---|---:|---|---|'];
  for (const r of rows) lines.push(`| ${esc(r.benchmark)} | ${esc(r.figure)} | ${esc(r.unit)} | ${esc(r.notes)} |`);
  return lines.join('\n');
}

async function cleanup() {
  if (shared) await shared.srv.stop();
  for (const p of [...children]) await stopProc(p, 'SIGTERM', 2000);
  rmSync(WORK, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => { await cleanup(); process.exit(130); });
}
// Whatever happens, no server outlives the bench.
process.on('exit', () => {
  for (const p of children) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  try { rmSync(WORK, { recursive: true, force: true }); } catch { /* gone */ }
});
process.on('uncaughtException', (e) => { log(`fatal: ${e.stack || e}`); process.exit(1); });

const started = nowMs();
const FAILED_NAMES = {
  startup: ['start-up to /healthz', 'idle RSS'], check: ['`o2c check`'],
  core: ['scoring one full answer set', 'session validation', 'answer save p50 / p99'],
  reload: ['edit-to-live reload'], http: ['preview score, server time per request', 'answer save through the API'],
  logins: ['loop while 20 logins hash: p99 of GET /healthz'], wrk: ['preview score (POST …/o2c/score) / GET questionnaire'],
  idle: ['1,000 idle keep-alive connections: added RSS'], reports: ['report makespan'],
};
try {
  for (const s of sections) {
    if (ONLY && !ONLY.has(s.name)) continue;
    log(`-- ${s.name}`);
    try {
      await s.fn();
    } catch (e) {
      log(`${s.name} failed: ${e.stack || e}`);
      for (const name of FAILED_NAMES[s.name] || [s.name]) row(name, 'n/a', '', `failed: ${String(e.message).split('\n')[0].slice(0, 200)}`);
    }
  }
} finally {
  await cleanup();
}
const head = `o2c make bench — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
  `${cpus().length} × ${cpus()[0]?.model?.trim() || 'CPU'}, ${fmt(totalmem() / 2 ** 30, 0)} GiB, ` +
  `${fmt((nowMs() - started) / 1000, 0)} s${QUICK ? ' (BENCH_QUICK)' : ''}`;
const out = `${head}\n\n${table()}\n`;
process.stdout.write(out);
try { writeFileSync(join(BUILD, 'bench.md'), out); } catch (e) { log(`cannot write ${BUILD}/bench.md: ${e.message}`); }
