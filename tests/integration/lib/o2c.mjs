// Helpers for integration tests: run the real o2c binary, start `o2c serve`
// on a free loopback port with its own data folder, talk real HTTP to it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = process.env.O2C_BIN;
export const SOURCE = process.env.O2C_SOURCE_DIR;
if (!BIN || !SOURCE) throw new Error('run through ctest: O2C_BIN and O2C_SOURCE_DIR must be set');

export const ADMIN_PASSWORD = 'admin-password-for-tests';

// Runs o2c with ARGS to completion: { status, stdout, stderr }.
export function o2c(args, { cwd = SOURCE, env = {}, input } = {}) {
  const r = spawnSync(BIN, args, { cwd, env: { ...process.env, ...env }, input,
    encoding: 'utf8', timeout: 120000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

export function tempDir(prefix = 'o2c-test-') {
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

// Starts `o2c serve`; resolves once /healthz answers.  Returns
// { url, port, data, proc, stderr(), stop() }; stop() sends SIGTERM and
// resolves to { code, signal, stderr }.
export async function startServer({ env = {}, args = [], data, cwd = SOURCE } = {}) {
  const port = await freePort();
  data = data ?? tempDir('o2c-data-');
  const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data', data, ...args], {
    cwd, env: { ...process.env, O2C_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env },
    stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '', out = '';
  proc.stderr.on('data', (d) => { err += d; });
  proc.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`o2c serve exited early:\n${err}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`o2c serve did not start:\n${err}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, port, data, proc,
    stderr: () => err,
    stdout: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      const result = await exited;
      return { ...result, stderr: err, stdout: out };
    },
    cleanup() { rmSync(data, { recursive: true, force: true }); },
  };
}

// A small API client holding a bearer token.
export class Client {
  constructor(url, token) { this.url = url; this.token = token; }
  async request(method, path, body, headers = {}) {
    const h = { ...headers };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    let payload = body;
    if (body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string') {
      h['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const r = await fetch(this.url + path, { method, headers: h, body: payload });
    const text = await r.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    return { status: r.status, headers: r.headers, text, json };
  }
  get(p, h) { return this.request('GET', p, undefined, h); }
  post(p, b, h) { return this.request('POST', p, b, h); }
  patch(p, b, h) { return this.request('PATCH', p, b, h); }
  put(p, b, h) { return this.request('PUT', p, b, h); }
  del(p, h) { return this.request('DELETE', p, undefined, h); }
}

export async function login(url, username = 'admin', password = ADMIN_PASSWORD) {
  const c = new Client(url);
  const r = await c.post('/api/v1/session', { username, password });
  if (r.status !== 201) throw new Error(`login failed: ${r.status} ${r.text}`);
  c.token = r.json.token;
  c.user = r.json.user;
  return c;
}

// JSON lines of a server's stderr.
export function logLines(stderr) {
  return stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}
