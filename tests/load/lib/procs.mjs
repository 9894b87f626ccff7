// The processes a load run or a drill drives: `o2c serve` on a free loopback
// port with its own data folder (restartable on the same port and data, for
// the kill drill), the mock provider as its own process, and a monitor of a
// process's memory and CPU read from /proc.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './http.mjs';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const SOURCE = process.env.O2C_SOURCE_DIR || join(HERE, '..', '..', '..');
export const MOCK_SERVER = join(SOURCE, 'tests', 'mock_provider', 'server.mjs');
export const ADMIN_PASSWORD = 'admin-password-for-load';

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Runs the o2c binary to completion: { status, stdout, stderr }.
export function o2cRun(bin, args, { env = {}, cwd = SOURCE, timeoutMs = 120000 } = {}) {
  const r = spawnSync(bin, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8',
    timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

// /proc/PID: { rssKiB, hwmKiB, cpuMs } or null once the process is gone.
const TICK = 100; // USER_HZ on Linux
export function procSample(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const kib = (name) => Number((new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status) || [])[1] || 0);
    // Fields after the command name (which may hold spaces): ") S ppid ...".
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]), stime = Number(f[12]);
    return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), cpuMs: ((utime + stime) * 1000) / TICK };
  } catch {
    return null;
  }
}

// Polls a process (or the successive processes of a restarted server) every
// INTERVAL ms: peak RSS and CPU, summed over the processes it saw.
export class ProcMonitor {
  constructor(intervalMs = 200) {
    this.intervalMs = intervalMs;
    this.peakRssKiB = 0;
    this.peakHwmKiB = 0;
    this.cpuMsDone = 0;   // CPU of processes that have ended
    this.last = null;     // last sample of the current process
    this.pid = null;
    this.samples = 0;
    this.t0 = Date.now();
    this.hwmSteps = []; // [ms since the monitor started, VmHWM MiB] each time the peak grew by 8 MiB or more
    this.timeline = [];  // [s since the monitor started, VmRSS MiB] every timelineEveryMs
    this.timelineEveryMs = 5000;
    this.lastTimelineAt = -Infinity;
  }
  watch(pid) {
    this.flush();
    this.pid = pid;
    this.last = null;
    this.sample();
    if (!this.timer) {
      this.timer = setInterval(() => this.sample(), this.intervalMs);
      this.timer.unref();
    }
  }
  sample() {
    if (!this.pid) return;
    const s = procSample(this.pid);
    if (!s) return;
    this.samples++;
    this.last = s;
    if (s.hwmKiB > this.peakHwmKiB + 8192) this.hwmSteps.push([Date.now() - this.t0, Math.round(s.hwmKiB / 1024)]);
    const t = Date.now() - this.t0;
    if (s.rssKiB > 0 && t - this.lastTimelineAt >= this.timelineEveryMs) {
      this.lastTimelineAt = t;
      if (this.timeline.length >= 400) {  // keep it bounded: every other point, twice the interval
        this.timeline = this.timeline.filter((_, i) => i % 2 === 0);
        this.timelineEveryMs *= 2;
      }
      this.timeline.push([Math.round(t / 1000), Math.round(s.rssKiB / 1024)]);
    }
    this.peakRssKiB = Math.max(this.peakRssKiB, s.rssKiB);
    this.peakHwmKiB = Math.max(this.peakHwmKiB, s.hwmKiB);
  }
  // The current process is about to end (or has): keep its last CPU time.
  flush() {
    if (this.pid) this.sample();
    if (this.last) this.cpuMsDone += this.last.cpuMs;
    this.last = null;
    this.pid = null;
  }
  stop() {
    this.flush();
    clearInterval(this.timer);
    this.timer = null;
  }
  report() {
    const cpuMs = this.cpuMsDone + (this.last ? this.last.cpuMs : 0);
    const mib = (k) => +(k / 1024).toFixed(1);
    return { peakRssMiB: mib(Math.max(this.peakRssKiB, this.peakHwmKiB)), hwmMiB: mib(this.peakHwmKiB),
      sampledRssMiB: mib(this.peakRssKiB), lastRssMiB: this.last ? mib(this.last.rssKiB) : null,
      hwmSteps: this.hwmSteps.slice(0, 40), rssTimeline: this.timeline,
      cpuS: +(cpuMs / 1000).toFixed(2) };
  }
}

// The mock provider as a child process (its own CPU, like a real provider).
// OPTIONS: camelCase keys as in tests/mock_provider/README.md.
export async function startMockProcess(options = {}) {
  const FLAG = { rpm: 'rpm', itpm: 'itpm', otpm: 'otpm', concurrency: 'concurrency',
    windowMs: 'window-ms', latencyMs: 'latency-ms', jitterMs: 'jitter-ms', faultRate: 'fault-rate',
    faults: 'faults', seed: 'seed', replyTokens: 'reply-tokens', maxRecorded: 'max-recorded',
    schedule: 'schedule', disobey: 'disobey' };
  const args = [MOCK_SERVER, '--port', '0'];
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined || v === null) continue;
    if (!FLAG[k]) throw new Error(`mock option ${k} is not passed on the command line here`);
    args.push(`--${FLAG[k]}`, String(v));
  }
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; if (err.length > 100000) err = err.slice(-50000); });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`mock provider did not start: ${err}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const i = out.indexOf('\n');
      if (i >= 0) {
        clearTimeout(t);
        try { resolve(JSON.parse(out.slice(0, i)).listening); } catch (e) { reject(e); }
      }
    });
    proc.on('exit', (code) => { clearTimeout(t); reject(new Error(`mock exited (${code}): ${err}`)); });
  });
  const control = async (method, path, body) => {
    const r = await fetch(url + path, { method, headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined });
    return r.json();
  };
  return {
    url, proc, pid: proc.pid,
    stats: () => control('GET', '/_mock/stats'),
    configure: (patch) => control('POST', '/_mock/config', patch),
    config: () => control('GET', '/_mock/config'),
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.on('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
    },
  };
}

// `o2c serve` on 127.0.0.1:PORT with data folder DATA.  start() waits for
// /healthz; kill() is SIGKILL; stop() is SIGTERM (then SIGKILL after 15 s).
// restart keeps the port and the data.  The log (stderr) is kept in memory,
// the last MAX_LOG bytes of every process started.
export class O2cServer {
  constructor({ bin, data, env = {}, cwd = SOURCE, port, args = [], monitor } = {}) {
    this.bin = bin;
    this.data = data ?? tempDir('o2c-load-data-');
    this.env = env;
    this.cwd = cwd;
    this.port = port;
    this.args = args;
    this.monitor = monitor;
    this.log = '';
    this.starts = 0;
  }
  get url() { return `http://127.0.0.1:${this.port}`; }
  get pid() { return this.proc?.pid; }
  async start({ timeoutMs = 30000 } = {}) {
    this.port ??= await freePort();
    const proc = spawn(this.bin, ['serve', '--listen', `127.0.0.1:${this.port}`, '--data', this.data,
      ...this.args], { cwd: this.cwd, stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, O2C_ADMIN_PASSWORD: ADMIN_PASSWORD, ...this.env } });
    this.proc = proc;
    this.starts++;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    proc.stderr.on('data', (d) => {
      this.log += d;
      if (this.log.length > 4_000_000) this.log = this.log.slice(-2_000_000);
    });
    this.monitor?.watch(proc.pid);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`o2c serve exited at start (${proc.exitCode ?? proc.signalCode}):\n${this.log.slice(-3000)}`);
      }
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`o2c serve did not answer /healthz in ${timeoutMs} ms:\n${this.log.slice(-3000)}`);
      }
      await sleep(25);
    }
    return this;
  }
  alive() { return this.proc && this.proc.exitCode === null && this.proc.signalCode === null; }
  async kill() {
    this.monitor?.flush();
    if (this.alive()) this.proc.kill('SIGKILL');
    return this.exited;
  }
  async stop() {
    this.monitor?.flush();
    if (!this.alive()) return this.exited;
    this.proc.kill('SIGTERM');
    const r = await Promise.race([this.exited, sleep(15000).then(() => null)]);
    if (r) return r;
    this.proc.kill('SIGKILL');
    return { ...(await this.exited), forced: true };
  }
  // JSON log lines of every process started so far.
  logLines() {
    return this.log.split('\n').filter((l) => l.startsWith('{')).map((l) => {
      try { return JSON.parse(l); } catch { return null; }
    }).filter(Boolean);
  }
}

// Server-side latency from /metrics: per route {count, p50le, p99le} where
// pNNle is the histogram bucket bound that holds that quantile, in ms (the
// histogram's bounds are in seconds).
export function parseMetrics(text) {
  const routes = {};
  const re = /^o2c_http_request_duration_seconds_bucket\{route="([^"]+)",le="([^"]+)"\} (\d+)/gm;
  const ms = (le) => (le === '+Inf' ? Infinity : Math.round(Number(le) * 1e6) / 1e3);
  let m;
  while ((m = re.exec(text))) {
    const r = (routes[m[1]] ??= { buckets: [] });
    r.buckets.push([ms(m[2]), Number(m[3])]);
  }
  const out = {};
  for (const [route, { buckets }] of Object.entries(routes)) {
    buckets.sort((a, b) => a[0] - b[0]);
    const count = buckets.at(-1)[1];
    const q = (p) => buckets.find(([, n]) => n >= p * count)?.[0];
    out[route] = { count, buckets, p50le: q(0.5), p99le: q(0.99) };
  }
  return out;
}
