// Per-step counters and latencies of a load run.  A step is one kind of
// request (login, answer, download_md, ...).  Every request is recorded:
// ok (the answer the flow expected), or an error with its status.  Latencies
// are kept in full (a few hundred thousand numbers at most) so that the
// percentiles are exact.

// Steps whose time is the LLM's, not the server's: left out of the
// "non-LLM requests" percentiles.
export const LLM_BOUND = new Set(['report_stream', 'report_total']);

export class Stats {
  constructor() {
    this.steps = new Map();
  }
  step(name) {
    let s = this.steps.get(name);
    if (!s) {
      s = { name, n: 0, ok: 0, errors: {}, ms: [] };
      this.steps.set(name, s);
    }
    return s;
  }
  // R: a response from Http.request (status, ms, error); OK: whether it was the expected answer.
  record(name, r, ok) {
    const s = this.step(name);
    s.n++;
    if (ok) s.ok++;
    else {
      const key = r.status ? String(r.status) : (r.error || 'no answer');
      s.errors[key] = (s.errors[key] || 0) + 1;
    }
    if (r.ms !== undefined) s.ms.push(r.ms);
  }
  // A duration that is not one request (the report's whole run, a stream).
  time(name, ms, ok = true) {
    this.record(name, { ms, status: ok ? 200 : 0, error: ok ? undefined : 'failed' }, ok);
  }
  get requests() {
    let n = 0;
    for (const s of this.steps.values()) if (!LLM_BOUND.has(s.name) || s.name === 'report_stream') n += s.n;
    return n;
  }
  table() {
    const rows = [];
    for (const s of this.steps.values()) {
      const p = percentiles(s.ms);
      rows.push({ step: s.name, n: s.n, okPct: s.n ? +(100 * s.ok / s.n).toFixed(2) : 100,
        p50: p.p50, p95: p.p95, p99: p.p99, max: p.max, errors: s.errors });
    }
    return rows;
  }
  // Every request but the LLM-bound ones (and EXCLUDE's steps).
  nonLlm(exclude = new Set()) {
    const all = [];
    let n = 0, ok = 0;
    for (const s of this.steps.values()) {
      if (LLM_BOUND.has(s.name) || exclude.has(s.name)) continue;
      n += s.n;
      ok += s.ok;
      for (const v of s.ms) all.push(v);
    }
    return { n, okPct: n ? +(100 * ok / n).toFixed(2) : 100, ...percentiles(all) };
  }
}

export function percentiles(values) {
  if (!values.length) return { p50: null, p95: null, p99: null, max: null };
  const v = Float64Array.from(values).sort();
  const q = (p) => +v[Math.min(v.length - 1, Math.ceil(p * v.length) - 1)].toFixed(1);
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: +v[v.length - 1].toFixed(1) };
}
