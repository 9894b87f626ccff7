// o2c serve under systemd's Type=notify (config/o2c.service): what it tells
// the service manager on $NOTIFY_SOCKET.  tests/lib/notify_listen stands in
// for systemd (it prints each message as a line), since systemd is not
// PID 1 here.  READY=1 must mean "serving": /healthz answers when it comes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { startServer, tempDir, SOURCE } from './lib/o2c.mjs';

const LISTEN = process.env.O2C_NOTIFY_LISTEN;

// The stand-in socket: { path, messages, next(pattern), stop() }.
async function notifySocket(dir) {
  const path = join(dir, 'notify.sock');
  const proc = spawn(LISTEN, [path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages = [];
  const waiters = [];
  let buffered = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      messages.push(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  let seen = 1; // "listening"
  // The next message after the ones already taken, matching PATTERN.
  async function next(pattern, what) {
    const deadline = Date.now() + 20000;
    for (;;) {
      while (seen < messages.length) {
        const m = messages[seen++];
        if (pattern.test(m)) return m;
      }
      if (Date.now() > deadline)
        throw new Error(`no ${what} from o2c serve; it said: ${JSON.stringify(messages.slice(1))}`);
      await Promise.race([new Promise((r) => waiters.push(r)),
        new Promise((r) => setTimeout(r, 200))]);
    }
  }
  while (messages.length === 0) await Promise.race([once(proc.stdout, 'data'), once(proc, 'exit')]);
  assert.equal(messages[0], 'listening');
  return { path, messages, next, stop: () => proc.kill('SIGTERM') };
}

test('o2c serve says READY=1 once it serves, RELOADING=1/READY=1 around SIGHUP, STOPPING=1', {
  skip: process.env.O2C_HAVE_SYSTEMD === '0' && 'built without libsystemd (O2C_HAVE_SYSTEMD=OFF)',
}, async () => {
  const dir = tempDir('o2c-notify-');
  cpSync(join(SOURCE, 'scripts'), join(dir, 'scripts'), { recursive: true });
  cpSync(join(SOURCE, 'kb'), join(dir, 'kb'), { recursive: true });
  const sock = await notifySocket(dir);
  const srv = await startServer({ cwd: dir, data: join(dir, 'var'),
    env: { NOTIFY_SOCKET: sock.path } });
  try {
    const ready = await sock.next(/^READY=1/, 'READY=1');
    assert.match(ready, new RegExp(`STATUS=listening on 127\\.0\\.0\\.1:${srv.port}`));
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
    assert.ok(!sock.messages.some((m) => /RELOADING|STOPPING/.test(m)), sock.messages.join('\n'));

    srv.proc.kill('SIGHUP');
    await sock.next(/^RELOADING=1/, 'RELOADING=1 after SIGHUP');
    assert.match(await sock.next(/^READY=1/, 'READY=1 after the reload'),
      /STATUS=serving generation [0-9a-f]+/);

    // A reload that fails is over too (the old generation serves): READY=1 says so.
    writeFileSync(join(dir, 'scripts/o2c/scoring.lua'), 'return {  -- broken\n');
    srv.proc.kill('SIGHUP');
    await sock.next(/^RELOADING=1/, 'RELOADING=1 after the second SIGHUP');
    assert.match(await sock.next(/^READY=1/, 'READY=1 after the failed reload'),
      /STATUS=reload failed \(.*scoring\.lua:\d+\), generation [0-9a-f]+ serves/);
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);

    const exited = once(srv.proc, 'exit');
    srv.proc.kill('SIGTERM');
    await sock.next(/^STOPPING=1/, 'STOPPING=1 after SIGTERM');
    await exited; // one SIGTERM only: a second one means "stop now"
  } finally {
    const stopped = await srv.stop();
    sock.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(stopped.code, 0, stopped.stderr);
  }
});
