// A load run: the mock provider and `o2c serve` (or ones a drill started),
// N accounts, N virtual users with a ramp and a bound on how many run at
// once, a chaos hook for the drills, then the check of every assessment
// against the ledger, and one summary.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { Http, sleep } from './http.mjs';
import { Stats } from './stats.mjs';
import { User } from './user.mjs';
import { O2cServer, ProcMonitor, startMockProcess, ADMIN_PASSWORD, parseMetrics, o2cRun } from './procs.mjs';

export const DEFAULTS = Object.freeze({
  users: 50,
  concurrency: 0,          // users running at once; 0 = all
  rampMs: null,            // spread of the users' starts; null = min(120 s, users x 100 ms)
  maxSeconds: null,        // the whole run, set-up included, then users stop and count as failed;
                           // null = 300 s + twice the provider time the reports need at the limit
  pauseMin: 50, pauseMax: 200,  // "think time" before each answer, ms
  twoTabFraction: 0.2,     // users with a second tab on the same session
  tabBAnswers: 8,          // answers the second tab writes
  reports: true,
  retryRounds: 3,          // rounds of "retry the failed sections" per report
  retryDelayMs: 3000,      // x round number, before each round
  retryWindowMs: 60000,    // how long a request without an answer is sent again
  seed: 1,
  // the provider (the mock) and the server's scheduler, same limits on both
  rpm: 600, windowS: 60, faultRate: 0.1, faults: '500,529,drop,truncate',
  disobey: 0.1,            // replies that ignore the prompt's required phrases (then re-asked)
  latencyMs: 200, jitterMs: 300, llmConcurrency: 8,
  serverEnv: {},
  serverArgs: [],
  setupConcurrency: 4,     // account creation (argon2 on the server's pool)
  statusPollMs: 1000,
  dbCheck: true,
  log: (line) => process.stdout.write(`${line}\n`),
});

const pool = async (items, n, fn) => {
  let i = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(n, items.length)) }, async () => {
    while (i < items.length) {
      const k = i++;
      await fn(items[k], k);
    }
  });
  await Promise.all(workers);
};

export function serverEnvFor(opts, mockUrl) {
  return {
    O2C_LLM_PROVIDER: 'anthropic',
    ANTHROPIC_API_KEY: 'test-key',
    O2C_ANTHROPIC_BASE_URL: mockUrl,
    O2C_LLM_RPM: String(opts.rpm),
    O2C_LLM_WINDOW_S: String(opts.windowS),
    // The mock's token buckets are unlimited: only requests per window bind.
    O2C_LLM_ITPM: '1000000000',
    O2C_LLM_OTPM: '1000000000',
    O2C_LLM_CONCURRENCY: String(opts.llmConcurrency),
    O2C_LOG_LEVEL: 'warn',
    ...opts.serverEnv,
  };
}

export async function startStack(opts) {
  const mock = await startMockProcess({ rpm: opts.rpm, windowMs: opts.windowS * 1000,
    faultRate: opts.faultRate, faults: opts.faults, disobey: opts.disobey, latencyMs: opts.latencyMs, jitterMs: opts.jitterMs,
    seed: opts.seed, maxRecorded: 200 });
  const monitor = new ProcMonitor();
  const server = new O2cServer({ bin: opts.bin, env: serverEnvFor(opts, mock.url), monitor,
    args: opts.serverArgs, cwd: opts.cwd, data: opts.data });
  await server.start();
  return { mock, server, monitor };
}

// Runs the load; returns the summary (and prints it with opts.log).
// OPTS.chaos(run) runs beside the users (a drill's faults); it gets
// { server, mock, http, stats, counters, users, done: () => bool, log }.
export async function runLoad(options) {
  const opts = { ...DEFAULTS, ...options };
  if (opts.rampMs === null) opts.rampMs = Math.min(120000, opts.users * 100);
  // Each report costs at most ~25 provider calls (11 sections, re-asks and faults included).
  if (opts.maxSeconds === null) opts.maxSeconds = Math.round(300 + 2 * (opts.users * 25 / opts.rpm) * opts.windowS);
  const log = opts.log;
  const t0 = Date.now();
  const loadAtStart = loadavg();
  const owned = !opts.server;
  const { mock, server, monitor } = owned ? await startStack(opts) : opts;
  const http = new Http(server.url, { timeoutMs: 30000, sources: 32 });
  const stats = new Stats();
  const setupStats = new Stats();
  const counters = { acked: 0, conflictsSeen: 0, conflictsResolved: 0, conflictsUnresolved: 0,
    answerErrors: 0, sectionRetries: 0, reportsRequested: 0, events: {}, sectionErrors: [] };
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const ctx = { http, stats, opts, counters, deadlineAt: t0 + opts.maxSeconds * 1000, aborted: false };
  const status = { breakerStates: {}, maxQueueDepth: 0, polls: 0, failedPolls: 0, generations: new Set(),
    reloadFailures: 0 };
  let finished = false;
  let summary;
  try {
    // Accounts.
    const admin = await http.request('POST', '/api/v1/session',
      { body: { username: 'admin', password: ADMIN_PASSWORD } });
    if (admin.status !== 201) throw new Error(`admin login: ${admin.status} ${admin.text}`);
    const adminToken = admin.json.token;
    const users = Array.from({ length: opts.users }, (_, i) => new User(ctx, i + 1));
    await pool(users, opts.setupConcurrency, async (u) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const r = await http.request('POST', '/api/v1/users', { token: adminToken,
          body: { name: u.name, role: 'consultant', password: u.password } });
        setupStats.record('user_add', r, r.status === 201 || r.status === 409);
        if (r.status === 201 || r.status === 409) return;
        await sleep(500);
      }
      throw new Error(`cannot create ${u.name}`);
    });
    const setupS = (Date.now() - t0) / 1000;
    log(`load: ${opts.users} accounts ready in ${setupS.toFixed(1)} s; server ${server.url} (pid ${server.pid}), `
      + `mock ${mock.url} at ${opts.rpm} requests/${opts.windowS} s, faults ${opts.faultRate * 100}% of ${opts.faults}, ${opts.disobey * 100}% of replies ignoring required phrases`);

    // Status poller: breaker and queue as the server shows them.
    const poller = (async () => {
      while (!finished) {
        const r = await http.request('GET', '/api/v1/status', { token: adminToken, timeoutMs: 5000 });
        status.polls++;
        if (r.status === 200 && r.json) {
          const llm = r.json.llm || {};
          const b = llm.breaker_state || 'n/a';
          status.breakerStates[b] = (status.breakerStates[b] || 0) + 1;
          status.maxQueueDepth = Math.max(status.maxQueueDepth, llm.queue_depth || 0);
          if (r.json.generation) status.generations.add(r.json.generation);
          status.reloadFailures = Math.max(status.reloadFailures, r.json.reload?.failures || 0);
          status.last = r.json;
        } else {
          status.failedPolls++;
        }
        await sleep(opts.statusPollMs);
      }
    })();

    // The users.
    loopDelay.enable();
    const runStart = Date.now();
    let active = 0, started = 0;
    const limit = opts.concurrency > 0 ? opts.concurrency : opts.users;
    const progress = setInterval(() => {
      const done = users.filter((u) => u.finished).length;
      log(`load: ${((Date.now() - runStart) / 1000).toFixed(0)} s: ${started} started, ${active} active, `
        + `${done} finished, ${counters.acked} answers acknowledged, ${counters.conflictsSeen} conflicts`);
    }, opts.progressMs ?? 10000);
    progress.unref();
    const chaos = opts.chaos ? opts.chaos({ server, mock, http, stats, counters, users, opts, status,
      adminToken, done: () => finished || users.every((u) => u.finished), log }) : null;
    const waiting = [];
    const slot = async () => {
      while (active >= limit) await new Promise((r) => waiting.push(r));
      active++;
    };
    const release = () => { active--; waiting.shift()?.(); };
    await Promise.all(users.map(async (u, i) => {
      await sleep((opts.rampMs * i) / Math.max(1, opts.users));
      await slot();
      started++;
      try { await u.run(); } finally { u.finished = true; release(); }
    }));
    const runS = (Date.now() - runStart) / 1000;
    clearInterval(progress);
    if (chaos) await chaos;
    loopDelay.disable();
    if (server.alive && !server.alive()) await server.start();

    // The check: every assessment against its ledger.
    const verifications = [];
    await pool(users, 16, async (u) => { verifications[u.index - 1] = await u.verify(); });
    finished = true;
    await poller;

    const mockStats = await mock.stats().catch(() => null);
    const metrics = await http.request('GET', '/metrics');
    const serverLatency = metrics.status === 200 ? parseMetrics(metrics.text) : {};
    summary = summarize({ opts, users, verifications, stats, setupStats, counters, mockStats,
      serverLatency, monitor, status, loopDelay, runS, setupS, server, totalS: (Date.now() - t0) / 1000 });
    summary.machine = { cpus: cpus().length, cpu: cpus()[0]?.model, loadavgAtStart: loadAtStart.map((x) => +x.toFixed(2)),
      loadavgAtEnd: loadavg().map((x) => +x.toFixed(2)) };
  } finally {
    finished = true;
    http.close();
    if (owned) {
      const stopped = await server.stop();
      monitor.stop();
      await mock.stop();
      if (summary) {
        summary.server.exit = stopped;
        Object.assign(summary.server, monitor.report());
        if (opts.dbCheck) {
          const c = o2cRun(opts.bin, ['db', 'check', '--data', server.data]);
          summary.dbCheck = { status: c.status, output: (c.stdout + c.stderr).trim().slice(0, 500) };
        }
        const lines = server.logLines();
        summary.logErrors = lines.filter((l) => l.level === 'error').length;
        summary.logErrorSamples = [...new Set(lines.filter((l) => l.level === 'error').map((l) => `${l.msg}: ${l.error ?? ''}`.slice(0, 200)))].slice(0, 5);
        summary.resumedJobs = lines.filter((l) => l.msg === 'resuming report job').length;
      }
      if (!opts.keepData) (await import('node:fs')).rmSync(server.data, { recursive: true, force: true });
    }
  }
  judge(summary);
  if (opts.jsonOut) writeFileSync(opts.jsonOut, JSON.stringify(summary, null, 2));
  log(formatSummary(summary));
  return summary;
}

function summarize({ opts, users, verifications, stats, setupStats, counters, mockStats, serverLatency,
  monitor, status, loopDelay, runS, setupS, server, totalS }) {
  const reports = { done: 0, doneFirstPass: 0, partial: 0, failed: 0, unfinished: 0, retriedRounds: 0 };
  const failures = [];
  for (const u of users) {
    if (opts.reports) {
      const st = u.report?.status;
      if (st === 'done') reports.done++;
      else if (st === 'partial') reports.partial++;
      else if (st === 'failed') reports.failed++;
      else reports.unfinished++;
      if (u.report?.firstPass === 'done') reports.doneFirstPass++;
      reports.retriedRounds += u.report?.rounds || 0;
    }
    if (!u.outcome.ok) failures.push(`${u.name}: ${u.outcome.step}: ${u.outcome.why}`);
  }
  const lost = [];
  let checked = 0;
  verifications.forEach((v, i) => {
    if (!v) return;
    checked += v.checked;
    for (const l of v.lost) lost.push({ user: users[i].name, ...l });
  });
  // Server side: every route but the SSE stream; and without the two
  // argon2id routes (sign-in, account creation).
  const nonLlmRoutes = Object.entries(serverLatency).filter(([route]) => route !== 'reports.events');
  const within50 = (exclude) => {
    let n = 0, le50 = 0;
    for (const [route, h] of nonLlmRoutes) {
      if (exclude.includes(route)) continue;
      n += h.count;
      le50 += (h.buckets.find(([le]) => le === 50) || [0, 0])[1];
    }
    return { n, pct: n ? +(100 * le50 / n).toFixed(3) : null };
  };
  const all50 = within50([]), fast50 = within50(['session.login', 'users.add']);
  const m = monitor.report();
  return {
    when: new Date().toISOString(),
    users: opts.users,
    usersOk: users.filter((u) => u.outcome.ok).length,
    twoTabUsers: users.filter((u) => u.twoTabs).length,
    seconds: { setup: +setupS.toFixed(1), run: +runS.toFixed(1), total: +totalS.toFixed(1) },
    requests: stats.requests,
    steps: stats.table(),
    setup: setupStats.table(),
    nonLlm: stats.nonLlm(),
    // Signing in is an argon2id verify (~20 ms of CPU, on the thread pool)
    // by design: also shown apart.
    nonLlmExceptLogin: stats.nonLlm(new Set(['login'])),
    serverSide: { nonLlmRequests: all50.n, within50msPct: all50.pct,
      exceptArgon2Requests: fast50.n, exceptArgon2Within50msPct: fast50.pct,
      routes: Object.fromEntries(nonLlmRoutes.map(([r, h]) => [r, { count: h.count, p50le: h.p50le, p99le: h.p99le }])) },
    reports,
    conflicts: { seen: counters.conflictsSeen, resolved: counters.conflictsResolved, unresolved: counters.conflictsUnresolved },
    answers: { acknowledged: counters.acked, checked, lost: lost.length, errors: counters.answerErrors },
    lost: lost.slice(0, 50),
    sectionRetries: counters.sectionRetries,
    events: counters.events,
    sectionErrorSamples: [...new Set(counters.sectionErrors.map((e) => e.slice(0, 160)))].slice(0, 8),
    failures: failures.slice(0, 50),
    failedUsers: failures.length,
    provider: mockStats && {
      calls: mockStats.requests, accepted: mockStats.accepted, status429: mockStats.status429,
      rateLimited: mockStats.rateLimited, byStatus: mockStats.byStatus, faults: mockStats.faults,
      peakRequestsInWindow: mockStats.peakRequestsInWindow, peakArrivalsInWindow: mockStats.peakArrivalsInWindow,
      peakConcurrency: mockStats.peakConcurrency, windowMs: mockStats.windowMs,
      limitExceeded: mockStats.limitExceeded, anyLimitExceeded: mockStats.anyLimitExceeded,
      tokens: mockStats.tokens },
    status: { breakerStates: status.breakerStates, maxQueueDepth: status.maxQueueDepth,
      generations: [...status.generations], reloadFailures: status.reloadFailures, failedPolls: status.failedPolls,
      lastBreaker: status.last?.llm?.breaker_state ?? null, lastReload: status.last?.reload ?? null },
    server: { pid: server.pid, starts: server.starts, ...m },
    loadGenerator: { eventLoopDelayP99Ms: +(loopDelay.percentile(99) / 1e6).toFixed(1),
      eventLoopDelayMaxMs: +(loopDelay.max / 1e6).toFixed(1) },
    limits: { rpm: opts.rpm, windowS: opts.windowS, faultRate: opts.faultRate, faults: opts.faults, disobey: opts.disobey,
      latencyMs: opts.latencyMs, jitterMs: opts.jitterMs },
  };
}

// The verdict: problems (each a sentence); ok when there are none.
function judge(s) {
  if (!s) return;
  const p = [];
  if (s.answers.lost > 0) p.push(`${s.answers.lost} acknowledged answers lost`);
  if (s.reports && s.users && (s.reports.done !== s.users) && s.reports.done + s.reports.partial + s.reports.failed + s.reports.unfinished > 0) {
    p.push(`${s.users - s.reports.done} reports not done (${s.reports.partial} partial, ${s.reports.failed} failed, ${s.reports.unfinished} unfinished)`);
  }
  if (s.failedUsers) p.push(`${s.failedUsers} users did not finish their flow`);
  if (s.conflicts.unresolved) p.push(`${s.conflicts.unresolved} conflicts never resolved`);
  if (s.provider?.anyLimitExceeded) p.push(`the provider's limits were overrun: ${JSON.stringify(s.provider.limitExceeded)}`);
  if (s.dbCheck && s.dbCheck.status !== 0) p.push(`o2c db check failed: ${s.dbCheck.output}`);
  s.problems = p;
  s.ok = p.length === 0;
}

const pad = (v, n) => String(v ?? '-').padStart(n);

export function formatSummary(s) {
  if (!s) return 'load: no summary (the run failed before it ended)';
  const L = [];
  L.push('');
  L.push(`=== o2c load: ${s.users} users (${s.twoTabUsers} with two tabs), ${s.seconds.run} s run, ${s.seconds.setup} s set-up ===`);
  L.push(`requests ${s.requests}; users finished ${s.usersOk}/${s.users}; non-LLM requests ${s.nonLlm.n}: ok ${s.nonLlm.okPct}%, `
    + `p50 ${s.nonLlm.p50} ms, p95 ${s.nonLlm.p95} ms, p99 ${s.nonLlm.p99} ms, max ${s.nonLlm.max} ms (client side)`);
  L.push(`  except sign-in (argon2id by design): ${s.nonLlmExceptLogin.n} requests, ok ${s.nonLlmExceptLogin.okPct}%, `
    + `p50 ${s.nonLlmExceptLogin.p50} ms, p95 ${s.nonLlmExceptLogin.p95} ms, p99 ${s.nonLlmExceptLogin.p99} ms, max ${s.nonLlmExceptLogin.max} ms`);
  if (s.serverSide.nonLlmRequests) {
    L.push(`server side (/metrics histograms): ${s.serverSide.nonLlmRequests} non-LLM requests, ${s.serverSide.within50msPct}% answered within 50 ms; `
      + `without sign-in and account creation ${s.serverSide.exceptArgon2Within50msPct}% of ${s.serverSide.exceptArgon2Requests}`);
  }
  L.push('');
  L.push(`${'step'.padEnd(16)}${pad('n', 8)}${pad('ok %', 9)}${pad('p50 ms', 9)}${pad('p95 ms', 9)}${pad('p99 ms', 9)}${pad('max ms', 10)}  errors`);
  for (const r of s.steps) {
    L.push(`${r.step.padEnd(16)}${pad(r.n, 8)}${pad(r.okPct, 9)}${pad(r.p50, 9)}${pad(r.p95, 9)}${pad(r.p99, 9)}${pad(r.max, 10)}  `
      + `${Object.keys(r.errors).length ? JSON.stringify(r.errors) : ''}`);
  }
  L.push('(report_stream: time to the first byte of each SSE connection; report_total: request to done, LLM-bound)');
  L.push('');
  const rp = s.reports;
  L.push(`reports: ${rp.done} done (${rp.doneFirstPass} at the first pass), ${rp.partial} partial, ${rp.failed} failed, `
    + `${rp.unfinished} unfinished; ${s.sectionRetries} section retries by users`);
  L.push(`conflicts: ${s.conflicts.seen} seen, ${s.conflicts.resolved} resolved, ${s.conflicts.unresolved} unresolved`);
  L.push(`answers: ${s.answers.acknowledged} acknowledged, ${s.answers.checked} checked against the database, `
    + `LOST ${s.answers.lost}${s.answers.errors ? `, ${s.answers.errors} saves refused` : ''}`);
  if (s.provider) {
    const pr = s.provider;
    L.push(`provider (mock): ${pr.calls} calls, ${pr.accepted} accepted, ${pr.status429} 429s (${pr.rateLimited} from its limiter), `
      + `faults ${JSON.stringify(pr.faults)}, peak ${pr.peakRequestsInWindow} accepted/${pr.windowMs / 1000} s window `
      + `(limit ${s.limits.rpm}), peak concurrency ${pr.peakConcurrency}, limitExceeded ${JSON.stringify(pr.limitExceeded)}`);
  }
  L.push(`server: peak RSS ${s.server.peakRssMiB} MiB (VmHWM; highest VmRSS sampled every 200 ms ${s.server.sampledRssMiB} MiB), CPU ${s.server.cpuS} s (user+sys), started ${s.server.starts}x; `
    + `breaker states seen ${JSON.stringify(s.status.breakerStates)}, max LLM queue ${s.status.maxQueueDepth}`
    + `${s.logErrors !== undefined ? `; ${s.logErrors} error lines in its log` : ''}`);
  const yes = (ok) => (ok ? 'met' : 'NOT met');
  L.push(`targets of the 1,000-user run (shown, not checked: timings depend on the machine): non-LLM p99 ${s.nonLlm.p99} ms `
    + `(≤ 50 ms: ${yes(s.nonLlm.p99 <= 50)}), server peak RSS ${s.server.peakRssMiB} MiB (≤ 150 MiB: ${yes(s.server.peakRssMiB <= 150)})`);
  if (s.dbCheck) L.push(`o2c db check: exit ${s.dbCheck.status}`);
  if (s.machine) L.push(`machine: ${s.machine.cpus} CPUs (${s.machine.cpu}), load average at start ${s.machine.loadavgAtStart.join(' ')}, at the end ${s.machine.loadavgAtEnd.join(' ')}`);
  L.push(`load generator: event-loop delay p99 ${s.loadGenerator.eventLoopDelayP99Ms} ms, max ${s.loadGenerator.eventLoopDelayMaxMs} ms`);
  for (const f of s.failures.slice(0, 10)) L.push(`  failed: ${f}`);
  for (const l of s.lost.slice(0, 10)) L.push(`  LOST: ${l.user} ${l.qid}: ${l.why}`);
  L.push(s.ok ? 'RESULT: PASS' : `RESULT: FAIL - ${s.problems.join('; ')}`);
  return L.join('\n');
}
