#!/usr/bin/env node
// Drill (b): the data folder on a small filesystem that fills up.
//
// Mounts a tmpfs of 8 MiB (root only; skipped with a message when mount is
// not permitted), starts `o2c serve` with its data there, writes some
// answers, then fills the filesystem to the last byte and keeps writing:
// answers with long notes, new assessments, uploads, a report.  Checks:
// every request is answered (no hang) and the server stays up; refused
// writes are 507 disk_full with a JSON error that says what failed; reads keep
// working; nothing acknowledged is lost; once space returns, writes succeed
// again and the report can be finished; the server stops cleanly, starts
// again on the same data, and `o2c db check` passes.  Unmounts in every case.
//
//   node tests/drills/disk_full.mjs --bin build/o2c [--quick]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { drillArgs, Checks, smallFilesystem } from './lib.mjs';
import { Http, sleep } from '../load/lib/http.mjs';
import { O2cServer, ADMIN_PASSWORD, o2cRun } from '../load/lib/procs.mjs';
import { PNG, rng, answerFor } from '../load/lib/user.mjs';

const args = drillArgs();
const c = new Checks('disk-full');
const SIZE = '8m';
const disk = smallFilesystem(SIZE);
if (disk.skipped) c.skip(disk.skipped);
const mnt = disk.dir;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { disk.unmount(); process.exit(130); });

const freeBytes = () => disk.freeBytes();
const data = join(mnt, 'data');
mkdirSync(data);
const server = new O2cServer({ bin: args.bin, data, env: { O2C_LLM_PROVIDER: 'offline', O2C_LOG_LEVEL: 'info' } });
const http = new Http('http://127.0.0.1:1', { timeoutMs: 15000 });
const ledger = new Map(); // qid -> {value, revision} acknowledged

try {
  await server.start();
  http.setBase(server.url);
  c.say(`tmpfs of ${SIZE} at ${mnt}; o2c serve on ${server.url}, data in ${data}`);

  const admin = await http.request('POST', '/api/v1/session', { body: { username: 'admin', password: ADMIN_PASSWORD } });
  const u = await http.request('POST', '/api/v1/users', { token: admin.json.token,
    body: { name: 'filler', role: 'consultant', password: 'filler-password-123' } });
  if (u.status !== 201) throw new Error(`user add: ${u.status} ${u.text}`);
  const login = await http.request('POST', '/api/v1/session', { body: { username: 'filler', password: 'filler-password-123' } });
  const token = login.json.token;
  const q = await http.request('GET', '/api/v1/assessment-types/o2c', { token });
  const scale = q.json.questions.filter((x) => x.type === 'scale');
  const text = q.json.questions.filter((x) => x.type !== 'text' && !x.conditional);
  const a = await http.request('POST', '/api/v1/assessments', { token, body: { type: 'o2c', client: 'Full Disk Ltd' } });
  const aid = a.json.id;
  let revision = a.json.revision;

  // Saves one answer; acknowledged ones go in the ledger.  -> the response.
  let seq = 0;
  const r = rng(args.seed);
  const save = async (question, noteBytes = 0) => {
    seq++;
    const qid = question.id;
    const v = answerFor(question, r, `full-${seq}`);
    const value = v && typeof v === 'object' && !Array.isArray(v) ? v.value : v;
    const body = noteBytes ? { value, note: `n${seq} `.padEnd(noteBytes, 'x') } : value;
    for (let i = 0; i < 5; i++) {
      const r = await http.request('PATCH', `/api/v1/assessments/${aid}/answers`, { token,
        body: { revision, answers: { [qid]: body } } });
      if (r.status === 409) { revision = r.json.error.details.revision; continue; }
      if (r.status === 200) {
        revision = r.json.revision;
        ledger.set(qid, { value: body, revision });
      }
      return r;
    }
    return { status: 409 };
  };
  for (const qid of scale) {
    const r = await save(qid);
    if (r.status !== 200) throw new Error(`answer before the fill: ${r.status} ${r.text}`);
  }
  c.say(`${ledger.size} answers saved; ${Math.round(freeBytes() / 1024)} KiB free before the fill`);

  // Fill the filesystem to the last byte.
  disk.fill();
  c.check('the filesystem is full', freeBytes() === 0, `${freeBytes()} bytes free`);

  // Write under a full disk until enough refusals were seen.
  const results = [];
  const op = async (name, fn) => {
    const r = await fn();
    results.push({ name, status: r.status, ms: r.ms, error: r.json?.error, raw: r.error || (r.status >= 400 ? r.text.slice(0, 200) : '') });
    return r;
  };
  let reportId;
  const deadline = Date.now() + (args.quick ? 30000 : 60000);
  for (let i = 0; Date.now() < deadline && i < 400; i++) {
    await op('answer', () => save(text[i % text.length], 1900));
    if (i % 10 === 0) await op('create', () => http.request('POST', '/api/v1/assessments', { token, body: { type: 'o2c', client: `Full ${i}` } }));
    if (i % 10 === 5) {
      // 8 KiB: an upload of more than the server's 16 KiB read buffer
      // waits for the body timeout (core/net/http_server_conn.c,
      // conn_update_reading), a separate bug this drill must not trip on.
      const big = Buffer.concat([PNG, Buffer.alloc(8 << 10, i & 0xff)]);
      await op('upload', () => http.request('PUT', `/api/v1/assessments/${aid}/attachments/full-${i}.png`,
        { token, body: big, headers: { 'Content-Type': 'image/png' } }));
    }
    if (i === 3) {
      const r = await op('report', () => http.request('POST', `/api/v1/assessments/${aid}/reports`, { token }));
      if (r.status === 202) reportId = r.json.report_id;
    }
    const refused = results.filter((x) => x.status >= 500).length;
    if (refused >= 20 && i >= 30) break;
  }
  const byName = {};
  for (const r of results) (byName[r.name] ??= {})[r.status] = ((byName[r.name] ??= {})[r.status] || 0) + 1;
  c.say(`under a full disk: ${JSON.stringify(byName)}`);
  const refusedList = results.filter((x) => x.status >= 400);
  c.check('writes were refused (the disk really was full)', refusedList.length > 0, `${refusedList.length} of ${results.length}`);
  c.check('every request was answered (no hang, no dropped connection)', results.every((x) => x.status > 0),
    results.filter((x) => x.status === 0).map((x) => `${x.name}: ${x.raw}`).slice(0, 3).join('; '));
  const unclear = refusedList.filter((x) => !(x.status === 507 && x.error?.code === 'disk_full' && x.error.message));
  c.check('refusals are 507 disk_full with a JSON error message', unclear.length === 0,
    unclear.slice(0, 3).map((x) => `${x.name} ${x.status} ${x.raw}`).join('; ') || 'e.g. '
      + refusedList.slice(0, 1).map((x) => `${x.status} ${x.error.code}: ${x.error.message}`).join(''));
  const samples = [...new Set(refusedList.map((x) => `${x.status} ${x.error?.code}: ${x.error?.message}`))].slice(0, 4);
  c.say(`what users were told: ${samples.join(' | ')}`);
  const says = refusedList.filter((x) => /disk|space|full|storage/i.test(x.error?.message || ''));
  c.check('the message says the disk is full, not just "internal error"', says.length === refusedList.length,
    `${says.length} of ${refusedList.length} mention disk/space/full/storage`);
  const health = await http.request('GET', '/healthz');
  c.check('the server is alive and answers /healthz', server.alive() && health.status === 200, `healthz ${health.status}`);
  const read = await http.request('GET', `/api/v1/assessments/${aid}`, { token });
  c.check('reads keep working on a full disk', read.status === 200, `GET assessment ${read.status} ${read.status !== 200 ? read.text.slice(0, 150) : ''}`);

  // Space returns.
  disk.free();
  c.say(`filler removed: ${Math.round(freeBytes() / 1024)} KiB free`);
  const until = async (what, fn, ok, ms = 15000) => {
    const end = Date.now() + ms;
    let r;
    while (Date.now() < end) {
      r = await fn();
      if (ok(r)) return r;
      await sleep(250);
    }
    return r;
  };
  const w = await until('answer', () => save(scale[0]), (r) => r.status === 200);
  c.check('answers are saved again once space returns', w.status === 200, `${w.status}`);
  const cr = await until('create', () => http.request('POST', '/api/v1/assessments', { token, body: { type: 'o2c', client: 'After' } }), (r) => r.status === 201);
  c.check('assessments are created again', cr.status === 201, `${cr.status}`);
  const up = await until('upload', () => http.request('PUT', `/api/v1/assessments/${aid}/attachments/after.png`,
    { token, body: PNG, headers: { 'Content-Type': 'image/png' } }), (r) => r.status === 201);
  c.check('uploads work again', up.status === 201, `${up.status}`);
  const li = await http.request('POST', '/api/v1/session', { body: { username: 'filler', password: 'filler-password-123' } });
  c.check('sign-in works again', li.status === 201, `${li.status}`);

  // The report requested on the full disk: finished (whatever its status), then retried to done.
  if (!reportId) {
    const r = await http.request('POST', `/api/v1/assessments/${aid}/reports`, { token });
    reportId = r.json?.report_id;
  }
  const FINAL = new Set(['done', 'partial', 'failed']);
  let rep = await until('report', () => http.request('GET', `/api/v1/reports/${reportId}`, { token }),
    (r) => r.status === 200 && FINAL.has(r.json.status) && !r.json.active, 60000);
  c.check('the report started on the full disk finished (no job hangs)', rep.status === 200 && FINAL.has(rep.json?.status),
    `${rep.json?.status}; failed sections: ${(rep.json?.sections || []).filter((s) => s.status === 'failed').length}`);
  for (let round = 0; round < 3 && rep.json?.status !== 'done'; round++) {
    for (const s of rep.json.sections.filter((x) => x.status === 'failed' && !/^not written: it needs/.test(x.error || ''))) {
      await http.request('POST', `/api/v1/reports/${reportId}/sections/${s.id}/retry`, { token });
    }
    rep = await until('report', () => http.request('GET', `/api/v1/reports/${reportId}`, { token }),
      (r) => r.status === 200 && FINAL.has(r.json.status) && !r.json.active, 60000);
  }
  c.check('the report is done after retrying its failed sections', rep.json?.status === 'done', rep.json?.status);

  // The ledger.
  const final = await http.request('GET', `/api/v1/assessments/${aid}`, { token });
  const lost = [];
  for (const [qid, ack] of ledger) {
    const s = final.json.answers[qid];
    const want = ack.value && typeof ack.value === 'object' && !Array.isArray(ack.value) ? ack.value : { value: ack.value };
    if (!s || s.revision < ack.revision || (s.revision === ack.revision
      && (JSON.stringify(s.value) !== JSON.stringify(want.value) || (s.note ?? null) !== (want.note ?? null)))) {
      lost.push(qid);
    }
  }
  c.check('no acknowledged answer lost', lost.length === 0, `${ledger.size} acknowledged, lost: ${lost.join(',')}`);

  const stopped = await server.stop();
  c.check('the server stops cleanly (SIGTERM, exit 0)', stopped.code === 0 && !stopped.forced, JSON.stringify(stopped));
  const check = o2cRun(args.bin, ['db', 'check', '--data', data]);
  c.check('o2c db check passes', check.status === 0, (check.stdout + check.stderr).trim().slice(0, 200));
  await server.start();
  const again = await http.request('GET', `/api/v1/assessments/${aid}`, { token });
  c.check('it starts again on the same data and serves the assessment', again.status === 200, `${again.status}`);
  await server.stop();
  const errs = server.logLines().filter((l) => l.level === 'error').map((l) => `${l.msg}: ${String(l.error ?? '').split('\n')[0]}`);
  c.say(`server log: ${errs.length} error lines, e.g. ${[...new Set(errs)].slice(0, 3).join(' | ')}`);
} catch (e) {
  c.check('the drill ran to its end', false, e.stack);
} finally {
  http.close();
  if (server.alive()) await server.kill();
  disk.unmount();
}
c.finish();
