// One virtual user: the whole flow a consultant goes through, over the real
// API, with a ledger of every answer the server acknowledged.
//
//   sign in -> read the questionnaire -> create an assessment -> answer every
//   visible question in order, one autosave PATCH per answer after a short
//   pause (revision from each reply; conditional questions answered only
//   when the last reply's scores do not list them as hidden) -> [a second
//   tab on the same session writes some answers meanwhile: the 409s that
//   follow are resolved by taking the current revision from the conflict's
//   details (re-reading with GET when they are missing) and sending the
//   change again] -> preview the scores -> upload a PNG -> request a report
//   -> follow its SSE stream to report.done (reconnecting with Last-Event-ID
//   when the server went away) -> retry failed sections, a few rounds ->
//   download Markdown and HTML.
//
// A request that got no answer (connection refused or reset, timeout) or a
// 502/503/504 is sent again after a pause, until RETRY_WINDOW_MS has passed
// since the first try: the kill drill restarts the server under the users'
// feet.  Every attempt is recorded in the stats.
import { sleep } from './http.mjs';

export const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
  'base64');

export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  next.pick = (list) => list[Math.floor(next() * list.length)];
  return next;
}

// A plausible answer to question Q.
export function answerFor(q, r, tag) {
  let value;
  switch (q.type) {
    case 'scale': value = r.int(1, 5); break;
    case 'single': value = r.pick(q.choices).id; break;
    case 'multi': {
      const ids = q.choices.map((c) => c.id).filter(() => r() < 0.5);
      value = ids.length ? ids : [q.choices[0].id];
      break;
    }
    case 'kpi': {
      const lo = q.min ?? 0, hi = q.max ?? 100;
      value = Math.round((lo + r() * (hi - lo)) * 10) / 10;
      break;
    }
    case 'text': value = `Evidence ${tag}: reviewed the workflow with the team lead; ${r.int(1, 99)} samples checked.`; break;
    default: return undefined;
  }
  if (q.type !== 'text' && r() < 0.15) return { value, note: `note ${tag}` };
  return value;
}

const TRANSIENT = new Set([0, 502, 503, 504]);
const FINAL = new Set(['done', 'partial', 'failed']);

export class User {
  // CTX: { http, stats, questions, opts, counters, deadlineAt }
  constructor(ctx, index) {
    this.ctx = ctx;
    this.index = index;
    this.name = `load${String(index).padStart(4, '0')}`;
    this.password = `${this.name}-password-123`;
    this.r = rng(ctx.opts.seed * 100003 + index);
    this.twoTabs = this.r() < ctx.opts.twoTabFraction;
    this.attempts = [];   // every PATCH sent: {qid, value, tab, acked: revision | null}
    this.outcome = { ok: false };
    this.report = null;
  }

  get http() { return this.ctx.http; }
  get stats() { return this.ctx.stats; }
  pause(lo = this.ctx.opts.pauseMin, hi = this.ctx.opts.pauseMax) {
    return sleep(lo + this.r() * (hi - lo));
  }
  expired() { return Date.now() > this.ctx.deadlineAt || this.ctx.aborted; }

  // One request with retries of transient failures.  OK(r) says whether the
  // answer is what the flow expected; returns the last response.
  async call(step, method, path, { body, ok = (r) => r.status >= 200 && r.status < 300, raw,
    token = this.token, timeoutMs } = {}) {
    const first = Date.now();
    const window = this.ctx.opts.retryWindowMs;
    for (let attempt = 0; ; attempt++) {
      const r = await this.http.request(method, path, { body, token, raw, timeoutMs });
      const good = ok(r);
      this.stats.record(step, r, good);
      if (good || !TRANSIENT.has(r.status)) return r;
      if (Date.now() - first > window || this.expired()) return r;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + this.r()));
    }
  }

  fail(step, why) {
    this.outcome = { ok: false, step, why: String(why).slice(0, 300) };
    throw Object.assign(new Error(`${this.name}: ${step}: ${why}`), { userFailure: true });
  }

  async run() {
    try {
      await this.flow();
      this.outcome = { ok: true };
    } catch (e) {
      if (!e.userFailure) this.outcome = { ok: false, step: 'exception', why: e.stack };
    }
    return this.outcome;
  }

  async flow() {
    const { opts } = this.ctx;
    // Sign in.
    let r = await this.call('login', 'POST', '/api/v1/session',
      { body: { username: this.name, password: this.password }, token: null, ok: (x) => x.status === 201 });
    if (r.status !== 201) this.fail('login', `${r.status} ${r.error || r.text}`);
    this.token = r.json.token;
    r = await this.call('me', 'GET', '/api/v1/me');
    if (r.status !== 200) this.fail('me', r.status);
    r = await this.call('questionnaire', 'GET', '/api/v1/assessment-types/o2c');
    if (r.status !== 200) this.fail('questionnaire', r.status);
    const questions = r.json.questions;

    // Create.
    r = await this.call('create', 'POST', '/api/v1/assessments',
      { body: { type: 'o2c', client: `Load Client ${this.index}` }, ok: (x) => x.status === 201 });
    if (r.status !== 201) this.fail('create', `${r.status} ${r.text}`);
    this.assessmentId = r.json.id;

    // Answer: tab A every visible question in order; tab B some of them meanwhile.
    const tabA = { name: 'A', revision: r.json.revision, hidden: new Set() };
    const work = [this.answerAll(tabA, questions)];
    if (this.twoTabs) {
      const tabB = { name: 'B', revision: r.json.revision, hidden: new Set() };
      const pool = questions.filter((q) => !q.conditional);
      const some = [];
      for (let i = 0; i < opts.tabBAnswers; i++) some.push(this.r.pick(pool));
      work.push(this.answerSome(tabB, some));
    }
    await Promise.all(work);
    if (this.expired()) this.fail('answers', 'out of time');

    // Preview the scores (nothing stored) and read the stored ones.
    r = await this.call('read', 'GET', `/api/v1/assessments/${this.assessmentId}`);
    if (r.status !== 200) this.fail('read', r.status);
    const values = {};
    for (const [qid, a] of Object.entries(r.json.answers)) {
      values[qid] = a.note !== undefined ? { value: a.value, note: a.note } : a.value;
    }
    r = await this.call('score_preview', 'POST', '/api/v1/assessment-types/o2c/score', { body: { answers: values } });
    if (r.status !== 200) this.fail('score_preview', `${r.status} ${r.text}`);
    r = await this.call('scores', 'GET', `/api/v1/assessments/${this.assessmentId}/scores`);
    if (r.status !== 200) this.fail('scores', r.status);

    // Evidence.
    r = await this.http.request('PUT', `/api/v1/assessments/${this.assessmentId}/attachments/evidence.png`,
      { body: PNG, headers: { 'Content-Type': 'image/png' }, token: this.token });
    this.stats.record('upload', r, r.status === 201);
    if (r.status !== 201) {
      r = await this.call('upload', 'PUT', `/api/v1/assessments/${this.assessmentId}/attachments/evidence.png`,
        { body: PNG, ok: (x) => x.status === 201 });
      if (r.status !== 201) this.fail('upload', `${r.status} ${r.text}`);
    }

    if (!opts.reports) return;
    await this.reportFlow();
  }

  // ---- answers ------------------------------------------------------------

  async answerAll(tab, questions) {
    for (const q of questions) {
      if (this.expired()) return;
      if (q.conditional && tab.hidden.has(q.id)) continue;
      await this.pause();
      await this.save(tab, q.id, answerFor(q, this.r, `${this.name}-${tab.name}`));
    }
  }

  async answerSome(tab, questions) {
    await this.pause(200, 600);
    for (const q of questions) {
      if (this.expired()) return;
      await this.pause();
      await this.save(tab, q.id, answerFor(q, this.r, `${this.name}-${tab.name}`));
    }
  }

  // One autosave: PATCH with the tab's revision; a 409 takes the current
  // revision and sends the change again.
  async save(tab, qid, value) {
    const { counters, opts } = this.ctx;
    const first = Date.now();
    let conflicts = 0;
    for (let attempt = 0; attempt < 60; attempt++) {
      const entry = { qid, value, tab: tab.name, acked: null };
      this.attempts.push(entry);
      const r = await this.http.request('PATCH', `/api/v1/assessments/${this.assessmentId}/answers`,
        { body: { revision: tab.revision, answers: { [qid]: value } }, token: this.token });
      this.stats.record('answer', r, r.status === 200 || r.status === 409);
      if (r.status === 200 && r.json && Number.isInteger(r.json.revision)) {
        entry.acked = r.json.revision;
        tab.revision = r.json.revision;
        tab.hidden = new Set(r.json.scores?.hidden || []);
        counters.acked++;
        counters.conflictsResolved += conflicts;
        return true;
      }
      if (r.status === 409) {
        conflicts++;
        counters.conflictsSeen++;
        const current = r.json?.error?.details?.revision;
        if (Number.isInteger(current)) {
          tab.revision = current;
        } else {
          const g = await this.call('conflict_read', 'GET', `/api/v1/assessments/${this.assessmentId}`);
          if (g.status === 200) tab.revision = g.json.revision;
        }
        continue;
      }
      if (TRANSIENT.has(r.status) && Date.now() - first < opts.retryWindowMs && !this.expired()) {
        await sleep(100 + this.r() * 400);
        continue;
      }
      counters.answerErrors++;
      return false;
    }
    counters.conflictsUnresolved += conflicts;
    return false;
  }

  // ---- report ---------------------------------------------------------------

  async reportFlow() {
    const { opts, counters } = this.ctx;
    const started = Date.now();
    let r = await this.call('report_request', 'POST', `/api/v1/assessments/${this.assessmentId}/reports`,
      { ok: (x) => x.status === 202 });
    if (r.status !== 202) this.fail('report_request', `${r.status} ${r.text}`);
    const id = r.json.report_id;
    counters.reportsRequested++;
    this.report = { id, status: null, rounds: 0 };
    let report = await this.follow(id);
    for (let round = 1; report && report.status !== 'done' && round <= opts.retryRounds && !this.expired(); round++) {
      this.report.rounds = round;
      await sleep(opts.retryDelayMs * round);
      const failed = report.sections.filter((s) => s.status === 'failed');
      let requeued = 0;
      for (const s of failed) {
        if (/^not written: it needs/.test(s.error || '') && failed.length > 1) continue;
        const x = await this.call('section_retry', 'POST', `/api/v1/reports/${id}/sections/${s.id}/retry`,
          { ok: (y) => y.status === 202 || y.status === 409 });
        if (x.status === 202) requeued++;
      }
      counters.sectionRetries += requeued;
      report = await this.follow(id);
    }
    this.stats.time('report_total', Date.now() - started, report?.status === 'done');
    if (!report) this.fail('report', 'never finished');
    this.report.status = report.status;
    this.report.firstPass = this.report.firstPass ?? report.status;
    this.report.sectionErrors = report.sections.filter((s) => s.status !== 'done').map((s) => `${s.id}: ${s.error}`);
    if (report.status !== 'done') this.fail('report', `${report.status}: ${this.report.sectionErrors.join('; ')}`);

    r = await this.call('download_md', 'GET', `/api/v1/reports/${id}/download?format=md`,
      { ok: (x) => x.status === 200 && /^#/m.test(x.text) });
    if (r.status !== 200) this.fail('download_md', r.status);
    r = await this.call('download_html', 'GET', `/api/v1/reports/${id}/download?format=html`,
      { ok: (x) => x.status === 200 && /^<!doctype html>/i.test(x.text) });
    if (r.status !== 200) this.fail('download_html', r.status);
  }

  // Follows the report's events until a report.done that GET confirms (the
  // report finished and no job runs it); reconnects when the stream breaks.
  // Returns the report (GET) or null when it never finished in time.
  async follow(id) {
    const { opts } = this.ctx;
    let lastId;
    for (let attempt = 0; !this.expired(); attempt++) {
      let sawDone = false;
      const s = await this.http.sse(`/api/v1/reports/${id}/events`, { token: this.token, lastEventId: lastId,
        timeoutMs: Math.max(1000, this.ctx.deadlineAt - Date.now()),
        onEvent: (e) => {
          const ev = this.ctx.counters.events;
          ev[e.event] = (ev[e.event] || 0) + 1;
          if (e.event === 'section.failed' && e.data?.error && this.ctx.counters.sectionErrors.length < 1000) {
            this.ctx.counters.sectionErrors.push(e.data.error);
          }
          if (e.event === 'report.done') { sawDone = true; return true; }
          return false;
        } });
      this.stats.record('report_stream', { status: s.status, ms: s.firstByteMs ?? s.ms, error: s.error },
        s.status === 200);
      lastId = s.lastId;
      if (sawDone || s.ended === 'eof') {
        const g = await this.call('report_get', 'GET', `/api/v1/reports/${id}`);
        if (g.status === 200 && FINAL.has(g.json.status) && !g.json.active) {
          if (this.report.firstPass === undefined) this.report.firstPass = g.json.status;
          return g.json;
        }
        if (g.status === 404) this.fail('report_get', 'the report is gone');
        await sleep(200);
      } else {
        await sleep(Math.min(2000, 200 * 2 ** Math.min(attempt, 4)));
      }
      if (attempt > 10000) break;
    }
    void opts;
    return null;
  }

  // ---- verification -----------------------------------------------------------

  // Compares the stored answers (read as the owner) with the ledger.  An
  // acknowledged write is LOST when the stored answer is missing, older than
  // it (a smaller revision), or at its revision with another value, or newer
  // with a value this user never sent for that question.
  async verify() {
    const res = { checked: 0, lost: [], ok: true };
    if (!this.assessmentId) return res;
    const r = await this.call('verify_read', 'GET', `/api/v1/assessments/${this.assessmentId}`);
    if (r.status !== 200) {
      res.ok = false;
      res.lost.push({ qid: '*', why: `cannot read the assessment: ${r.status}` });
      return res;
    }
    const stored = r.json.answers;
    const latest = new Map();
    for (const a of this.attempts) {
      if (a.acked === null) continue;
      const cur = latest.get(a.qid);
      if (!cur || a.acked > cur.acked) latest.set(a.qid, a);
    }
    for (const [qid, ack] of latest) {
      res.checked++;
      const s = stored[qid];
      const want = normal(ack.value);
      let why;
      if (!s) why = 'missing';
      else if (s.revision < ack.acked) why = `stored revision ${s.revision} is older than the acknowledged ${ack.acked}`;
      else if (s.revision === ack.acked && !same(normal(s), want)) why = `value ${JSON.stringify(normal(s))} != acknowledged ${JSON.stringify(want)}`;
      else if (s.revision > ack.acked && !this.attempts.some((a) => a.qid === qid && same(normal(a.value), normal(s)))) {
        why = `overwritten at revision ${s.revision} by a value never sent: ${JSON.stringify(normal(s))}`;
      }
      if (why) res.lost.push({ qid, why, revision: ack.acked });
    }
    if (r.json.revision < Math.max(0, ...[...latest.values()].map((a) => a.acked))) {
      res.lost.push({ qid: '*', why: `assessment revision ${r.json.revision} went backwards` });
    }
    if (this.ctx.opts.reports && this.report?.id) {
      const g = await this.call('verify_report', 'GET', `/api/v1/reports/${this.report.id}`);
      res.reportStatus = g.status === 200 ? g.json.status : `HTTP ${g.status}`;
    }
    return res;
  }
}

// {value, note} of a stored answer or of a value as sent.
function normal(v) {
  if (v && typeof v === 'object' && !Array.isArray(v) && ('value' in v || 'note' in v)) {
    return { value: v.value, note: v.note ?? null };
  }
  return { value: v, note: null };
}

function same(a, b) {
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

function canon(v) {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])]));
  }
  return v;
}
