// Sign-in throttling under concurrency: 5 failed sign-ins per account (or per
// address) in 15 minutes, however many guesses arrive at once.  Each guess
// comes from its own loopback address (127.0.0.0/8 is all local on Linux;
// the server takes the address from the socket), so only the per-account
// budget can stop them, and no refusal may depend on whether the password
// was right.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, login } from './lib/o2c.mjs';

const LIMIT = 5; // the default: max_failures
let srv, admin;

before(async () => {
  srv = await startServer();
  admin = await login(srv.url);
});

after(async () => {
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  srv.cleanup();
});

// 127.0.X.Y for guess I of batch BATCH: a fresh address per guess.
function addressFor(batch, i) {
  return `127.${batch}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

// POST /api/v1/session from LOCAL_ADDRESS on a connection of its own:
// { status, retryAfter, json }.
function signIn(username, password, localAddress) {
  const body = JSON.stringify({ username, password });
  return new Promise((resolve, reject) => {
    const req = request(`${srv.url}/api/v1/session`, {
      method: 'POST', localAddress, agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'],
        json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function addUser(name, password) {
  const r = await admin.post('/api/v1/users', { name, role: 'consultant', password });
  assert.equal(r.status, 201, r.text);
}

// Fires every guess of PASSWORDS at USERNAME at once, each from its own address.
function guessAtOnce(batch, username, passwords) {
  return Promise.all(passwords.map((p, i) => signIn(username, p, addressFor(batch, i))));
}

function countBy(answers) {
  const counts = {};
  for (const a of answers) counts[a.status] = (counts[a.status] || 0) + 1;
  return counts;
}

function assertRefusal(a) {
  assert.equal(a.status, 429, JSON.stringify(a));
  assert.equal(a.json.error.code, 'too_many_attempts');
  assert.match(a.retryAfter, /^[1-9][0-9]*$/, 'a refusal without Retry-After');
  assert.equal(a.json.error.details.retry_after, Number(a.retryAfter));
}

async function auditEvents(action, target) {
  const r = await admin.get('/api/v1/audit?limit=1000');
  assert.equal(r.status, 200, r.text);
  return r.json.items.filter((e) => e.action === action && e.target === target);
}

for (const n of [40, 200]) {
  test(`${n} wrong sign-ins at once at one account: at most ${LIMIT} are checked, the rest refused`, async () => {
    const name = `victim${n}`;
    await addUser(name, `${name}-password-123`);
    const answers = await guessAtOnce(n === 40 ? 1 : 2, name,
      Array.from({ length: n }, (_, i) => `wrong guess number ${i}`));
    const counts = countBy(answers);
    assert.ok((counts[401] || 0) <= LIMIT, `${counts[401]} guesses were checked: ${JSON.stringify(counts)}`);
    assert.equal(counts[401], LIMIT, `the budget was not used: ${JSON.stringify(counts)}`);
    assert.equal(counts[429], n - LIMIT, JSON.stringify(counts));
    for (const a of answers.filter((x) => x.status !== 401)) assertRefusal(a);
    // Refused now, the right password too: the account's budget is spent.
    assertRefusal(await signIn(name, `${name}-password-123`, addressFor(3, n)));
    // The audit log: each checked guess is a failure; refusals are recorded
    // (at most one a minute per account and address, each address here is new).
    assert.equal((await auditEvents('login.failed', name)).length, LIMIT);
    assert.equal((await auditEvents('login.refused', name)).length, n - LIMIT + 1);
  });
}

// The right password among wrong ones, all at once.  Whatever the order the
// server takes them in, a guess is either checked and answered truthfully
// (201 or 401) or refused before any check; so the right password can only
// be refused when five other guesses already hold the account's budget, and
// its refusal looks like any other.
test('the right password among concurrent wrong ones: a refusal never depends on the password', async (t) => {
  const rounds = [0, 3, 7, 11]; // where the right one sits in the batch of 12
  for (const [round, at] of rounds.entries()) {
    const name = `mixed${round}`, right = `${name}-password-123`;
    await addUser(name, right);
    const passwords = Array.from({ length: 12 }, (_, i) => (i === at ? right : `wrong guess ${i}`));
    const answers = await guessAtOnce(10 + round, name, passwords);
    const mine = answers[at], others = answers.filter((_, i) => i !== at);
    const counts = countBy(others);
    t.diagnostic(`right one at ${at}: ${mine.status}; the others ${JSON.stringify(counts)}`);
    assert.ok([201, 429].includes(mine.status), `the right password got ${mine.status}`);
    assert.ok(others.every((a) => [401, 429].includes(a.status)), JSON.stringify(counts));
    for (const a of answers.filter((x) => x.status === 429)) assertRefusal(a);
    if (mine.status === 429) {
      // Refused before any check: five wrong guesses hold the budget, so a
      // wrong guess in its place would have been refused the same way.
      assert.equal(counts[401], LIMIT, `the right password was refused with ${counts[401]} guesses checked`);
      assert.deepEqual(Object.keys(mine.json.error).sort(), Object.keys(others.find((a) => a.status === 429).json.error).sort());
      // Still refused afterwards: the refusal came from the budget alone.
      assertRefusal(await signIn(name, right, addressFor(30, round)));
    } else {
      // Admitted and answered.  Its success cleared the failures settled
      // before it, so up to five more wrong guesses may follow, no more.
      assert.ok(counts[401] <= 2 * LIMIT - 1, JSON.stringify(counts));
    }
  }
});

test('one address guessing at many accounts at once: at most 5 checked', async () => {
  const answers = await Promise.all(Array.from({ length: 30 },
    (_, i) => signIn(`nobody${i}`, 'a wrong password', '127.40.0.1')));
  const counts = countBy(answers);
  assert.equal(counts[401], LIMIT, JSON.stringify(counts));
  assert.equal(counts[429], 30 - LIMIT, JSON.stringify(counts));
  for (const a of answers.filter((x) => x.status === 429)) assertRefusal(a);
});
