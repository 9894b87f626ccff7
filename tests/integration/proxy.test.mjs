// trusted_proxies: X-Forwarded-For and X-Forwarded-Proto are believed only
// from a configured proxy, for the sign-in throttle (5 failures per address
// in 15 minutes), the audit log's address and the Secure cookie flag.  The
// tests connect from 127.0.0.1, so "127.0.0.1/32" makes the test the proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, login, o2c, tempDir } from './lib/o2c.mjs';

const LIMIT = 5; // throttle max_failures, per account and per address

async function withServer(options, fn) {
  const srv = await startServer(options);
  try {
    await fn(srv, await login(srv.url));
  } finally {
    const stopped = await srv.stop();
    srv.cleanup();
    assert.equal(stopped.code, 0, stopped.stderr);
  }
}

function configFile(text) {
  const file = join(tempDir(), 'o2c.conf.lua');
  writeFileSync(file, text);
  return file;
}

// A sign-in sent with HEADERS: { status, cookies }.
async function signIn(srv, username, password, headers = {}) {
  const r = await fetch(`${srv.url}/api/v1/session`, {
    method: 'POST', body: JSON.stringify({ username, password }),
    headers: { 'Content-Type': 'application/json', ...headers } });
  await r.text();
  return { status: r.status, cookies: r.headers.getSetCookie() };
}

const from = (address) => ({ 'X-Forwarded-For': address });

// LIMIT wrong passwords, each for another unknown account, sent with HEADERS.
async function failFromOneAddress(srv, prefix, headers) {
  for (let i = 0; i < LIMIT; i++)
    assert.equal((await signIn(srv, `${prefix}-${i}`, 'wrong-password', headers)).status, 401);
}

async function failureAddresses(admin, target) {
  const r = await admin.get('/api/v1/audit?limit=1000');
  assert.equal(r.status, 200, r.text);
  return r.json.items.filter((e) => e.action === 'login.failed' && e.target === target)
    .map((e) => e.address);
}

const isSecure = (cookies) => cookies.length > 0 && cookies.every((c) => /;\s*Secure\b/.test(c));

test('without trusted_proxies the forwarding headers are ignored', async () => {
  await withServer({}, async (srv, admin) => {
    await failFromOneAddress(srv, 'plain', from('1.2.3.4'));
    assert.deepEqual(await failureAddresses(admin, 'plain-0'), ['127.0.0.1']);
    // Another "client" in the header is still 127.0.0.1, whose budget is spent.
    assert.equal((await signIn(srv, 'plain-x', 'wrong-password', from('5.6.7.8'))).status, 429);
  });
  await withServer({}, async (srv) => {
    const r = await signIn(srv, 'admin', 'admin-password-for-tests', { 'X-Forwarded-Proto': 'https' });
    assert.equal(r.status, 201);
    assert.equal(isSecure(r.cookies), false, r.cookies.join('\n'));
  });
});

test('behind a trusted proxy two clients are throttled and audited apart', async () => {
  const file = configFile('return { trusted_proxies = { "127.0.0.1/32", "::1" } }\n');
  await withServer({ args: ['--config', file] }, async (srv, admin) => {
    await failFromOneAddress(srv, 'first', from('10.0.0.1'));
    assert.equal((await signIn(srv, 'first-x', 'wrong-password', from('10.0.0.1'))).status, 429);
    // 10.0.0.2 has its own budget: its guess is checked (401), not refused.
    assert.equal((await signIn(srv, 'second', 'wrong-password', from('10.0.0.2'))).status, 401);
    assert.deepEqual(await failureAddresses(admin, 'first-0'), ['10.0.0.1']);
    assert.deepEqual(await failureAddresses(admin, 'second'), ['10.0.0.2']);
    // Rightmost untrusted hop: what the client wrote to the left is not believed.
    await signIn(srv, 'chain', 'wrong-password', from('6.6.6.6, 10.0.0.3, 127.0.0.1'));
    assert.deepEqual(await failureAddresses(admin, 'chain'), ['10.0.0.3']);
    // A header that is not a list of addresses: the proxy's own address.
    await signIn(srv, 'garbage', 'wrong-password', from('10.0.0.4, not-an-address'));
    assert.deepEqual(await failureAddresses(admin, 'garbage'), ['127.0.0.1']);

    const https = await signIn(srv, 'admin', 'admin-password-for-tests',
      { 'X-Forwarded-Proto': 'https', ...from('10.0.0.5') });
    assert.equal(https.status, 201);
    assert.equal(isSecure(https.cookies), true, https.cookies.join('\n'));
    const http = await signIn(srv, 'admin', 'admin-password-for-tests', { 'X-Forwarded-Proto': 'http' });
    assert.equal(isSecure(http.cookies), false, http.cookies.join('\n'));
  });
});

test('forged headers from an address that is not a trusted proxy change nothing', async () => {
  await withServer({ env: { O2C_TRUSTED_PROXIES: '10.9.9.9/32' } }, async (srv, admin) => {
    await failFromOneAddress(srv, 'forged', from('10.0.0.1'));
    assert.deepEqual(await failureAddresses(admin, 'forged-0'), ['127.0.0.1']);
    assert.equal((await signIn(srv, 'forged-x', 'wrong-password', from('10.0.0.2'))).status, 429);
  });
  await withServer({ env: { O2C_TRUSTED_PROXIES: '10.9.9.9/32' } }, async (srv) => {
    const r = await signIn(srv, 'admin', 'admin-password-for-tests', { 'X-Forwarded-Proto': 'https' });
    assert.equal(r.status, 201);
    assert.equal(isSecure(r.cookies), false, r.cookies.join('\n'));
  });
});

test('a bad trusted_proxies entry stops start-up naming it', () => {
  const file = configFile('return { trusted_proxies = { "127.0.0.1/32", "10.0.0.0/33" } }\n');
  const r = o2c(['serve', '--config', file]);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), `${file}: trusted_proxies: expected IP addresses or ranges like `
    + '"127.0.0.1/32, 10.0.0.0/8, ::1/128", got "10.0.0.0/33" in "127.0.0.1/32, 10.0.0.0/33"');

  const env = o2c(['serve'], { env: { O2C_TRUSTED_PROXIES: '10.0.0.0/8, proxy.example' } });
  assert.equal(env.status, 2);
  assert.match(env.stderr, /^O2C_TRUSTED_PROXIES: trusted_proxies: expected .*got "proxy\.example"/);
});
