// What the export tests share: a server with a finished offline report of
// the median answers, downloads as bytes, files saved for the tools a
// client opens them with, and those tools run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, login, tempDir, SOURCE } from './o2c.mjs';

const MEDIAN = JSON.parse(readFileSync(join(SOURCE, 'scripts/o2c/examples/median.json'), 'utf8'));
export const CLIENT = 'Acme Ltd';
export const PYTHON = '/usr/bin/python3'; // Debian's, with python3-openpyxl
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = tempDir('o2c-exports-');

// A server (started with OPTIONS.env and OPTIONS.args) with an offline
// report of the median answers, finished.
export async function serverWithReport({ env = {}, args = [] } = {}) {
  const srv = await startServer({ env: { O2C_LLM_PROVIDER: 'offline', ...env }, args });
  const admin = await login(srv.url);
  const a = await admin.post('/api/v1/assessments', { type: 'o2c', client: CLIENT });
  assert.equal(a.status, 201, a.text);
  const saved = await admin.patch(`/api/v1/assessments/${a.json.id}/answers`,
    { revision: 0, answers: MEDIAN.answers });
  assert.equal(saved.status, 200, saved.text);
  const started = await admin.post(`/api/v1/assessments/${a.json.id}/reports`);
  assert.equal(started.status, 202, started.text);
  const rid = started.json.report_id;
  let report;
  for (let i = 0; i < 300; i++) {
    report = (await admin.get(`/api/v1/reports/${rid}`)).json;
    if (report.status === 'done') break;
    await sleep(100);
  }
  assert.equal(report.status, 'done');
  const scores = (await admin.get(`/api/v1/assessments/${a.json.id}/scores`)).json.scores;
  return { srv, admin, rid, report, scores };
}

// GET as bytes: { status, type, disposition, buf, json }.
export async function fetchBytes(c, path) {
  const r = await fetch(c.url + path, { headers: { Authorization: `Bearer ${c.token}` } });
  const buf = Buffer.from(await r.arrayBuffer());
  let json;
  try { json = JSON.parse(buf.toString('utf8')); } catch { json = undefined; }
  return { status: r.status, type: r.headers.get('content-type'),
    disposition: r.headers.get('content-disposition'), buf, json };
}

export function saved(name, buf) {
  const file = join(work, name);
  writeFileSync(file, buf);
  return file;
}

export function run(cmd, args, input) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

