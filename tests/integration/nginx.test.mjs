// config/nginx-o2c.conf for real: Debian's nginx checks it (nginx -t) with
// a self-signed certificate in place of the placeholders, then serves o2c
// through it over TLS and HTTP/2 on loopback ports: plain HTTP is sent to
// https, a sign-in gets a Secure cookie (X-Forwarded-Proto reaches o2c,
// which trusts the proxy), and a report's event stream arrives while the
// report is still being written (the provider here never answers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:http2';
import { join } from 'node:path';
import { startServer, tempDir, freePort, ADMIN_PASSWORD, SOURCE } from './lib/o2c.mjs';

const NGINX = '/usr/sbin/nginx';
const EXAMPLE = join(SOURCE, 'config/nginx-o2c.conf');
const MEDIAN = JSON.parse(readFileSync(join(SOURCE, 'scripts/o2c/examples/median.json'), 'utf8'));

function must(r, what) {
  assert.equal(r.status, 0, `${what} failed:\n${r.stderr}${r.stdout}`);
  return r;
}

function selfSignedCert(dir) {
  must(spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' }), 'openssl req');
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

// The example with only what a deployment replaces: certificate paths, the
// ports, o2c's address (and no IPv6 listeners, which a test machine may lack).
function siteConfig({ cert, key }, { httpsPort, httpPort, o2cPort }) {
  let text = readFileSync(EXAMPLE, 'utf8');
  const replace = (from, to) => {
    assert.ok(text.includes(from), `${EXAMPLE} no longer has '${from}'`);
    text = text.split(from).join(to);
  };
  replace('/etc/ssl/o2c/fullchain.pem', cert);
  replace('/etc/ssl/o2c/privkey.pem', key);
  replace('listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`);
  replace('listen 80;', `listen 127.0.0.1:${httpPort};`);
  replace('server 127.0.0.1:8080;', `server 127.0.0.1:${o2cPort};`);
  text = text.split('\n').filter((l) => !/^\s*listen \[::\]/.test(l)).join('\n');
  return text;
}

// A main nginx.conf around the site file, everything under DIR.
function mainConfig(dir) {
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/o2c.conf;
}
`;
}

// An LLM provider that accepts calls and never answers: the report stays
// "being written" for as long as the test needs.
async function silentProvider() {
  const sockets = new Set();
  const server = createServer(() => { /* never answers */ });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  };
}

// One HTTP/2 request: { status, headers, body }.
function h2(session, method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path, ...headers });
    let data = '';
    let head;
    req.setEncoding('utf8');
    req.on('response', (h) => { head = h; });
    req.on('data', (d) => { data += d; });
    req.on('end', () => resolve({ status: head[':status'], headers: head, body: data }));
    req.on('error', reject);
    req.end(body);
  });
}

async function waitForPort(port, proc, log) {
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited:\n${log()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { redirect: 'manual' });
      await r.text();
      return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`nginx did not listen:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('config/nginx-o2c.conf: nginx -t accepts it, and it serves o2c over TLS and HTTP/2', {
  timeout: 120000,
}, async (t) => {
  assert.ok(existsSync(NGINX), `${NGINX} is missing: config/install-deps.sh --test installs nginx-light`);
  const dir = tempDir('o2c-nginx-');
  chmodSync(dir, 0o755); // nginx's workers (nobody when run as root) use its temp folders
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tls = selfSignedCert(dir);

  const provider = await silentProvider();
  t.after(() => provider.stop());
  const conf = join(dir, 'o2c.conf.lua');
  writeFileSync(conf, 'return { trusted_proxies = { "127.0.0.1/32" },'
    + ' limits = { shutdown_grace_s = 0, connections_per_address = 2048 } }\n');
  const srv = await startServer({ args: ['--config', conf], env: {
    O2C_LLM_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'test-key', O2C_ANTHROPIC_BASE_URL: provider.url } });
  t.after(async () => {
    const stopped = await srv.stop();
    srv.cleanup();
    assert.equal(stopped.code, 0, stopped.stderr.slice(-3000));
  });

  const ports = { httpsPort: await freePort(), httpPort: await freePort(), o2cPort: srv.port };
  writeFileSync(join(dir, 'o2c.conf'), siteConfig(tls, ports));
  writeFileSync(join(dir, 'nginx.conf'), mainConfig(dir));
  const nginxArgs = ['-p', dir, '-c', join(dir, 'nginx.conf')];
  const check = spawnSync(NGINX, ['-t', ...nginxArgs], { encoding: 'utf8' });
  assert.equal(check.status, 0, `nginx -t:\n${check.stderr}`);
  assert.match(check.stderr, /test is successful/);

  const nginx = spawn(NGINX, nginxArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxErr = '';
  nginx.stderr.on('data', (d) => { nginxErr += d; });
  const nginxLog = () => nginxErr + (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');
  t.after(() => { if (nginx.exitCode === null) nginx.kill('SIGTERM'); });
  await waitForPort(ports.httpPort, nginx, nginxLog);

  // Plain HTTP is sent to https.
  const plain = await fetch(`http://127.0.0.1:${ports.httpPort}/api/v1/me`, { redirect: 'manual' });
  assert.equal(plain.status, 301);
  assert.match(plain.headers.get('location'), /^https:\/\//);

  const session = connect(`https://localhost:${ports.httpsPort}`, { ca: readFileSync(tls.cert) });
  t.after(() => session.close());
  assert.equal((await h2(session, 'GET', '/healthz')).status, 200);
  assert.equal(session.alpnProtocol, 'h2');

  // Sign in: o2c saw X-Forwarded-Proto https from a trusted proxy.
  const signIn = await h2(session, 'POST', '/api/v1/session', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
  assert.equal(signIn.status, 201, signIn.body);
  const cookies = [].concat(signIn.headers['set-cookie'] ?? []);
  assert.ok(cookies.length > 0 && cookies.every((c) => /;\s*Secure\b/.test(c)), cookies.join('\n'));
  const auth = { authorization: `Bearer ${JSON.parse(signIn.body).token}`, 'content-type': 'application/json' };

  // A body over o2c's 1 MiB JSON limit is refused by nginx already.
  const big = await h2(session, 'PATCH', '/api/v1/assessments/x/answers', {
    headers: auth, body: 'x'.repeat(1024 * 1024 + 1) });
  assert.equal(big.status, 413);

  const created = await h2(session, 'POST', '/api/v1/assessments', {
    headers: auth, body: JSON.stringify({ type: 'o2c', client: 'Behind nginx' }) });
  assert.equal(created.status, 201, created.body);
  const id = JSON.parse(created.body).id;
  const saved = await h2(session, 'PATCH', `/api/v1/assessments/${id}/answers`, {
    headers: auth, body: JSON.stringify({ revision: 0, answers: MEDIAN.answers }) });
  assert.equal(saved.status, 200, saved.body);
  const started = await h2(session, 'POST', `/api/v1/assessments/${id}/reports`, { headers: auth });
  assert.equal(started.status, 202, started.body);
  const reportId = JSON.parse(started.body).report_id;

  // The event stream: its first event arrives while the report is unfinished
  // and the stream open (nothing buffered it until the end).
  const stream = session.request({ ':method': 'GET', ':path': `/api/v1/reports/${reportId}/events`,
    authorization: auth.authorization });
  stream.setEncoding('utf8');
  const firstEvent = await new Promise((resolve, reject) => {
    let data = '';
    let status;
    const timer = setTimeout(() => reject(new Error(`no event through nginx in 20 s (status ${status}): ${data}`)), 20000);
    stream.on('response', (h) => { status = h[':status']; });
    stream.on('data', (d) => {
      data += d;
      const m = /^event: ?(.+)$/m.exec(data);
      if (m) { clearTimeout(timer); resolve({ status, event: m[1] }); }
    });
    stream.on('end', () => { clearTimeout(timer); reject(new Error(`the stream ended before any event: ${data}`)); });
    stream.on('error', reject);
  });
  assert.equal(firstEvent.status, 200);
  assert.equal(stream.closed || stream.readableEnded, false, 'the event stream is still open');
  const report = await h2(session, 'GET', `/api/v1/reports/${reportId}`, { headers: auth });
  assert.ok(!['done', 'partial', 'failed'].includes(JSON.parse(report.body).status), report.body);
  stream.close();
});
