// What the browser test needs around the page: the real `o2c serve` on a free
// loopback port with a temporary data folder, Debian's Chromium driven by
// playwright-core, and guards that fail the test on any console error,
// uncaught page error or request to another origin.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import { deflateSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.O2C_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
  '--disable-features=Translate,OptimizationHints,MediaRouter', '--password-store=basic'];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// playwright-core from tests/node_modules, or null with the reason.
export async function loadPlaywright() {
  try {
    return { pw: await import('playwright-core') };
  } catch (e) {
    return { why: `playwright-core is not installed (run tests/install-npm.sh): ${e.message}` };
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Starts `o2c serve` from the source tree (it finds scripts/ and kb/ there).
export async function startServer({ bin, sourceDir, env = {}, adminPassword }) {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'o2c-browser-'));
  const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir], {
    cwd: sourceDir,
    env: { ...process.env, O2C_ADMIN_PASSWORD: adminPassword, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never outlive the test, even when it crashes before stop().
  const reap = () => child.exitCode === null && child.kill('SIGKILL');
  process.once('exit', reap);
  let log = '';
  const keep = (chunk) => {
    log += chunk;
    if (log.length > 200000) log = log.slice(-100000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`o2c serve exited with ${child.exitCode}:\n${log}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`o2c serve did not become ready in 15 s:\n${log}`);
    }
    await sleep(100);
  }
  return {
    url,
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const done = new Promise((r) => child.once('exit', r));
        const timeout = sleep(5000).then(() => child.kill('SIGKILL'));
        await Promise.race([done, timeout]);
      }
      process.removeListener('exit', reap);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser(pw) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  // launch() gives every run a fresh temporary user-data directory.
  return pw.chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
}

// Watches a page: console errors, page errors and other-origin requests are
// collected; `expect(pattern)` allows the next console error matching it
// (an expected 401 or 409 that Chromium logs as "Failed to load resource").
export function guard(page, origin, name) {
  const problems = [];
  const allowed = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = `${msg.text()} ${msg.location() && msg.location().url ? `@ ${msg.location().url}` : ''}`;
    const i = allowed.findIndex((re) => re.test(text));
    if (i >= 0) {
      allowed.splice(i, 1);
      return;
    }
    problems.push(`[${name}] console error: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`[${name}] page error: ${err.message}`));
  page.on('request', (req) => {
    const u = req.url();
    if (u.startsWith('data:') || u.startsWith('blob:')) return;
    if (new URL(u).origin !== origin) problems.push(`[${name}] request to another origin: ${u}`);
  });
  return {
    problems,
    expect(re) {
      allowed.push(re);
    },
    // Forget allowances that were not used (each covers one step only).
    settle() {
      allowed.length = 0;
    },
  };
}

export function screenshotDir(sourceDir) {
  const dir = path.join(sourceDir, 'build', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

// A valid 64×48 PNG (a calm blue gradient bar chart), built here so the test
// ships no binary file.
export function samplePng() {
  const width = 64;
  const height = 48;
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0;
    for (let x = 0; x < width; x++) {
      const bar = Math.floor(x / 8);
      const on = height - y < 10 + bar * 4;
      const o = y * (width * 3 + 1) + 1 + x * 3;
      raw[o] = on ? 31 : 245;
      raw[o + 1] = on ? 78 + bar * 10 : 246;
      raw[o + 2] = on ? 121 + bar * 12 : 248;
    }
  }
  return png(width, height, raw);
}

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

function png(width, height, raw) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
