// One assessment in the browser: its answers as the server last confirmed
// them, the changes not yet confirmed, autosave with retries, conflict
// resolution and the live score preview.
//
// Nothing typed is lost: every change goes into `pending` (mirrored to
// localStorage) until the server confirms it; a failed save is retried with
// backoff; a 401 parks the queue until the user signs in again; a 409
// (someone saved first) merges what changed elsewhere and asks the user
// only about questions both sides changed.
import { api, ApiError, errorText, questionnaire } from './api.js';

const stores = new Map();

export async function openStore(id) {
  let st = stores.get(id);
  if (!st) {
    st = new AssessmentStore(id);
    stores.set(id, st);
    try {
      await st.load();
    } catch (e) {
      stores.delete(id);
      throw e;
    }
  }
  return st;
}

export function dropStore(id) {
  const st = stores.get(id);
  if (st && st.pending.size === 0) stores.delete(id);
}

// Answers arrive as {qid: value}, {qid: {value, note}} or
// [{question_id, value, note, updated_by, updated_at}].
export function normalizeAnswers(raw) {
  const out = new Map();
  const put = (qid, a) => {
    if (a === null || a === undefined) return;
    if (typeof a === 'object' && !Array.isArray(a) && ('value' in a || 'note' in a)) {
      const entry = {};
      if (a.value !== undefined && a.value !== null) entry.value = a.value;
      if (typeof a.note === 'string' && a.note !== '') entry.note = a.note;
      if (a.updated_by) entry.updated_by = a.updated_by;
      if (a.updated_at) entry.updated_at = a.updated_at;
      if (entry.value !== undefined || entry.note !== undefined) out.set(qid, entry);
    } else {
      out.set(qid, { value: a });
    }
    // An empty list ("none of these") may come back as an empty object.
    const e = out.get(qid);
    if (e && e.value && typeof e.value === 'object' && !Array.isArray(e.value) && Object.keys(e.value).length === 0) e.value = [];
  };
  if (Array.isArray(raw)) {
    for (const a of raw) put(a.question_id || a.id || a.question, a);
  } else if (raw && typeof raw === 'object') {
    for (const [qid, a] of Object.entries(raw)) put(qid, a);
  }
  return out;
}

// Same answer? (value and note; who/when do not count)
export function sameAnswer(a, b) {
  const va = a ? a.value : undefined;
  const vb = b ? b.value : undefined;
  const na = (a && a.note) || '';
  const nb = (b && b.note) || '';
  return JSON.stringify(va === undefined ? null : va) === JSON.stringify(vb === undefined ? null : vb) && na === nb;
}

// The wire form of one answer: value, {value, note}, {note} or null (remove).
function wire(a) {
  if (!a || (a.value === undefined && !a.note)) return null;
  if (!a.note) return a.value;
  const w = { note: a.note };
  if (a.value !== undefined) w.value = a.value;
  return w;
}

const BACKOFF = [1000, 2000, 4000, 8000, 15000];

class AssessmentStore {
  constructor(id) {
    this.id = id;
    this.meta = null; // the assessment without its answers
    this.q = null; // questionnaire: {areas, questions, byId}
    this.revision = 0;
    this.server = new Map(); // qid -> answer, as of this.revision
    this.pending = new Map(); // qid -> answer or null (remove), not yet confirmed
    this.scores = null; // the live preview
    this.hidden = new Set();
    this.state = { kind: 'saved', text: 'Saved' };
    this.listeners = new Set();
    this.inflight = false;
    this.paused = false; // signed out, or a conflict dialog is open
    this.failures = 0;
    this.timer = null;
    this.previewTimer = null;
    this.previewAbort = null;
    this.conflictHandler = null;
    window.addEventListener('o2c:signed-in', () => {
      if (this.state.kind === 'signin') {
        this.paused = false;
        this.schedule(0);
      }
    });
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(what, detail) {
    for (const fn of [...this.listeners]) fn(what, detail);
  }

  setState(kind, text) {
    this.state = { kind, text };
    this.emit('state', this.state);
  }

  async load() {
    const data = await api.get(`/assessments/${encodeURIComponent(this.id)}`);
    const a = data.assessment || data;
    this.applyMeta(a);
    this.revision = Number(a.revision ?? data.revision ?? 0);
    this.server = normalizeAnswers(a.answers ?? data.answers);
    const q = await questionnaire(this.meta.type);
    this.q = indexQuestionnaire(q.questionnaire || q);
    this.restorePending();
    await this.preview(true);
    // The view calls start() once it can show a conflict dialog.
  }

  start() {
    if (this.pending.size && !this.inflight) this.schedule(0);
  }

  applyMeta(a) {
    const { answers, ...meta } = a;
    this.meta = meta;
    if (typeof meta.targets === 'string') {
      try {
        this.meta.targets = JSON.parse(meta.targets);
      } catch {
        this.meta.targets = {};
      }
    }
  }

  async reloadMeta() {
    const data = await api.get(`/assessments/${encodeURIComponent(this.id)}`);
    const a = data.assessment || data;
    this.applyMeta(a);
    return this.meta;
  }

  // What the user sees: the server's answer with the pending change on top.
  answer(qid) {
    if (this.pending.has(qid)) return this.pending.get(qid) || undefined;
    return this.server.get(qid);
  }

  allAnswers() {
    const out = new Map(this.server);
    for (const [qid, a] of this.pending) {
      if (a) out.set(qid, a);
      else out.delete(qid);
    }
    return out;
  }

  targetOf(areaId) {
    const t = this.meta.targets;
    if (typeof t === 'number') return t;
    if (t && t[areaId] !== undefined) return Number(t[areaId]);
    const area = this.q.areas.find((a) => a.id === areaId);
    return area && area.target ? area.target : 3;
  }

  // A change from the UI. `delay` lets typing settle before it is sent.
  set(qid, answer, delay = 150) {
    const cleaned = answer && (answer.value !== undefined || answer.note) ? { ...answer } : null;
    if (cleaned) {
      delete cleaned.updated_by;
      delete cleaned.updated_at;
      if (!cleaned.note) delete cleaned.note;
    }
    const base = this.server.get(qid);
    if (sameAnswer(cleaned, base)) this.pending.delete(qid);
    else this.pending.set(qid, cleaned);
    this.persistPending();
    this.emit('answer', qid);
    this.schedulePreview();
    if (this.pending.size) {
      if (this.state.kind === 'saved') this.setState('pending', 'Unsaved changes');
      this.schedule(delay);
    } else if (!this.inflight && this.state.kind !== 'conflict') {
      this.setState('saved', 'Saved');
    }
  }

  // Send now whatever waits (on blur, before leaving).
  flushSoon() {
    if (this.pending.size) this.schedule(0);
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  async flush() {
    if (this.inflight || this.paused || this.pending.size === 0) return;
    const batch = new Map(this.pending);
    const answers = {};
    for (const [qid, a] of batch) answers[qid] = wire(a);
    this.inflight = true;
    this.setState('saving', 'Saving…');
    try {
      const res = await api.patch(`/assessments/${encodeURIComponent(this.id)}/answers`, { revision: this.revision, answers });
      this.revision = Number(res.revision ?? this.revision + 1);
      for (const [qid, a] of batch) {
        if (a) this.server.set(qid, a);
        else this.server.delete(qid);
        if (this.pending.get(qid) === a) this.pending.delete(qid);
      }
      this.failures = 0;
      this.inflight = false;
      this.persistPending();
      this.emit('saved', { revision: this.revision });
      if (this.pending.size) {
        this.setState('saving', 'Saving…');
        this.schedule(0);
      } else {
        this.setState('saved', 'Saved');
      }
    } catch (e) {
      this.inflight = false;
      if (e.status === 409) {
        await this.resolveConflict(e, batch);
      } else if (e.status === 401) {
        this.paused = true;
        this.setState('signin', 'Not saved — sign in again; your changes are kept');
      } else if (e.status === 400 || e.status === 422) {
        this.rejectInvalid(e, batch);
      } else if (e.status === 404 || e.status === 403) {
        this.paused = true;
        this.setState('failed', `Not saved: ${errorText(e)}`);
      } else {
        const wait = BACKOFF[Math.min(this.failures, BACKOFF.length - 1)];
        this.failures += 1;
        this.setState('failed', `Failed — retrying in ${Math.round(wait / 1000)} s`);
        this.emit('save-error', e);
        this.schedule(wait);
      }
    }
  }

  // A 400 names the fields the server refused: drop those changes (the
  // inputs show the server's message), keep and resend the rest.
  rejectInvalid(e, batch) {
    const d = e.details || {};
    const fields = d.problems || d.errors || d.fields || (d.field ? [{ field: d.field, message: e.message }] : []);
    const refused = new Set();
    for (const f of fields) {
      const m = /^answers\.([^.[]+)/.exec(f.field || '');
      if (m) refused.add(m[1]);
    }
    const drop = refused.size ? refused : new Set(batch.keys());
    for (const qid of drop) {
      if (this.pending.get(qid) === batch.get(qid)) this.pending.delete(qid);
      this.emit('answer', qid);
      this.emit('refused', { qid, message: (fields.find((f) => (f.field || '').startsWith(`answers.${qid}`)) || e).message });
    }
    this.persistPending();
    this.schedulePreview();
    this.setState('failed', `Not saved: ${errorText(e)}`);
    if (this.pending.size) this.schedule(500);
  }

  // Someone saved first. The 409 carries the current state; merge it.
  async resolveConflict(e, batch) {
    let current = e.details && (e.details.answers || e.details.current) ? e.details : null;
    if (!current && e.body && e.body.answers) current = e.body;
    if (current && current.current) current = current.current;
    if (!current || current.answers === undefined) {
      try {
        const data = await api.get(`/assessments/${encodeURIComponent(this.id)}`);
        current = data.assessment || data;
      } catch (err) {
        this.setState('failed', 'Failed — retrying in 2 s');
        this.schedule(2000);
        return;
      }
    }
    const theirs = normalizeAnswers(current.answers);
    const changed = [];
    const ids = new Set([...theirs.keys(), ...this.server.keys()]);
    for (const qid of ids) {
      if (!sameAnswer(theirs.get(qid), this.server.get(qid))) changed.push(qid);
    }
    const conflicts = changed.filter((qid) => this.pending.has(qid) && !sameAnswer(this.pending.get(qid), theirs.get(qid)));
    // Pending changes the other side already made identically are settled.
    for (const qid of [...this.pending.keys()]) {
      if (sameAnswer(this.pending.get(qid), theirs.get(qid))) this.pending.delete(qid);
    }
    const mine = new Map();
    for (const qid of conflicts) mine.set(qid, this.pending.get(qid));
    this.server = theirs;
    this.revision = Number(current.revision ?? this.revision);
    for (const qid of changed) this.emit('answer', qid);
    this.emit('merged', { changed: changed.filter((qid) => !conflicts.includes(qid)), conflicts: conflicts.length });
    if (conflicts.length && this.conflictHandler) {
      this.paused = true;
      this.setState('conflict', 'Conflict — choose which answers to keep');
      const rows = conflicts.map((qid) => ({ qid, mine: mine.get(qid), theirs: theirs.get(qid) }));
      const others = changed.filter((qid) => !conflicts.includes(qid));
      const choice = await this.conflictHandler(rows, others);
      for (const row of rows) {
        if (choice && choice[row.qid] === 'theirs') this.pending.delete(row.qid);
        this.emit('answer', row.qid);
      }
      this.paused = false;
    }
    this.persistPending();
    this.schedulePreview();
    if (this.pending.size) {
      this.setState('saving', 'Saving…');
      this.schedule(0);
    } else {
      this.setState('saved', 'Saved');
    }
  }

  // The queue survives a closed tab: each change with the answer it was made
  // on (`base`), so a later session still detects edits made elsewhere.
  persistPending() {
    const key = `o2c.pending.${this.id}`;
    try {
      if (this.pending.size === 0) {
        localStorage.removeItem(key);
        return;
      }
      const base = {};
      for (const qid of this.pending.keys()) base[qid] = this.server.get(qid) || null;
      localStorage.setItem(key, JSON.stringify({ revision: this.revision, answers: Object.fromEntries(this.pending), base }));
    } catch {
      // storage full or disabled: the queue in memory still holds the changes
    }
  }

  restorePending() {
    try {
      const saved = JSON.parse(localStorage.getItem(`o2c.pending.${this.id}`) || 'null');
      if (!saved || !saved.answers) return;
      const older = Number(saved.revision) < this.revision;
      for (const [qid, a] of Object.entries(saved.answers)) {
        if (!this.q.byId.has(qid)) continue;
        if (older && saved.base && qid in saved.base) {
          // Pretend the server is where it was when the change was made: the
          // save then meets a 409 and the usual merge shows edits made since.
          const base = saved.base[qid];
          if (base) this.server.set(qid, base);
          else this.server.delete(qid);
        }
        if (!sameAnswer(a, this.server.get(qid))) this.pending.set(qid, a);
      }
      if (this.pending.size && older) this.revision = Number(saved.revision);
    } catch {
      // unreadable: ignore
    }
  }

  schedulePreview() {
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.preview(), 120);
  }

  // Scores of the answers on screen (nothing stored), and which conditional
  // questions they hide.
  async preview(first = false) {
    if (this.previewAbort) this.previewAbort.abort();
    const abort = new AbortController();
    this.previewAbort = abort;
    const answers = {};
    for (const [qid, a] of this.allAnswers()) if (a.value !== undefined) answers[qid] = a.value;
    try {
      const body = { answers };
      if (this.meta.targets && typeof this.meta.targets === 'object' && !Array.isArray(this.meta.targets)) body.targets = this.meta.targets;
      const res = await api.post(`/assessment-types/${encodeURIComponent(this.meta.type)}/score`, body, { signal: abort.signal });
      const scores = res.scores || res;
      this.scores = scores;
      const hidden = new Set(scores.hidden || res.hidden || []);
      if (Array.isArray(res.visible) || Array.isArray(scores.visible)) {
        const visible = new Set(res.visible || scores.visible);
        for (const q of this.q.questions) if (!visible.has(q.id)) hidden.add(q.id);
      }
      const changed = [...this.q.byId.keys()].filter((qid) => hidden.has(qid) !== this.hidden.has(qid));
      this.hidden = hidden;
      this.emit('scores', { scores, changedVisibility: first ? [] : changed });
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e instanceof ApiError && e.status === 401) return;
      this.emit('preview-error', e);
    }
  }
}

function indexQuestionnaire(q) {
  const byId = new Map();
  for (const question of q.questions || []) byId.set(question.id, question);
  const areas = (q.areas || []).map((a) => ({
    ...a,
    questionList: (a.questions || []).map((x) => (typeof x === 'string' ? byId.get(x) : x)).filter(Boolean),
  }));
  // Questions listed inside areas (another shape): index them too.
  for (const a of areas) for (const question of a.questionList) if (!byId.has(question.id)) byId.set(question.id, { ...question, area: a.id });
  const conditional = new Set();
  for (const question of byId.values()) if (question.conditional) conditional.add(question.id);
  return { ...q, areas, byId, questions: [...byId.values()], conditional };
}
