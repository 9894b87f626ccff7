// What the drills share: their command line, a list of named checks printed
// as they are made, and the exit status.
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';

export function drillArgs(extra = {}) {
  const { values } = parseArgs({ options: { bin: { type: 'string' }, quick: { type: 'boolean' },
    seed: { type: 'string' }, ...extra } });
  if (!values.bin) {
    process.stderr.write('usage: node tests/drills/<drill>.mjs --bin build/o2c [--quick]\n');
    process.exit(2);
  }
  return { ...values, bin: resolve(values.bin), seed: Number(values.seed ?? 1) };
}

export class Checks {
  constructor(drill) {
    this.drill = drill;
    this.failed = [];
    this.passed = 0;
  }
  say(line) { process.stdout.write(`${this.drill}: ${line}\n`); }
  check(what, ok, detail = '') {
    if (ok) this.passed++;
    else this.failed.push(what);
    this.say(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` -- ${String(detail).replace(/\n/g, ' ')}` : ''}`);
    return ok;
  }
  // Prints the verdict and exits: 0 when every check held.
  finish() {
    if (this.failed.length) {
      this.say(`FAILED ${this.failed.length} of ${this.passed + this.failed.length} checks: ${this.failed.join('; ')}`);
      process.exit(1);
    }
    this.say(`PASSED all ${this.passed} checks`);
    process.exit(0);
  }
  skip(why) {
    this.say(`SKIPPED: ${why}`);
    process.exit(0);
  }
}

// The load summary's checks that every drill under load makes.
export function loadChecks(c, s, { allOk = false } = {}) {
  c.check('no acknowledged answer lost', s.answers.lost === 0,
    `${s.answers.acknowledged} acknowledged, ${s.answers.checked} checked, ${s.answers.lost} lost${s.lost.length ? `: ${JSON.stringify(s.lost.slice(0, 3))}` : ''}`);
  c.check('every report done', s.reports.done === s.users,
    `${s.reports.done}/${s.users} done (${s.reports.doneFirstPass} at the first pass), ${s.reports.partial} partial, ${s.reports.failed} failed, ${s.reports.unfinished} unfinished`);
  c.check('every user finished the flow', s.failedUsers === 0, s.failures.slice(0, 3).join(' | '));
  c.check('every conflict resolved', s.conflicts.unresolved === 0, `${s.conflicts.seen} seen`);
  if (s.dbCheck) c.check('o2c db check passes afterwards', s.dbCheck.status === 0, s.dbCheck.output.slice(0, 200));
  if (allOk) {
    const bad = s.steps.filter((r) => r.okPct < 100).map((r) => `${r.step}: ${JSON.stringify(r.errors)}`);
    c.check('no request failed', bad.length === 0, bad.join('; ') || `${s.requests} requests`);
  }
}

// A tmpfs of SIZE (e.g. '8m') mounted on a new temporary folder, that can be
// filled to its last byte and freed again: the full disk of the disk_full
// drill and of tests/integration/disk_full.test.mjs.  Mounting needs root
// (or CAP_SYS_ADMIN): { skipped: why } when it is not permitted.  Otherwise
// { dir, freeBytes(), fill(), free(), unmount() }; unmount() runs at exit too.
export function smallFilesystem(size = '8m') {
  const dir = mkdtempSync(join(tmpdir(), 'o2c-full-'));
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (m.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { skipped: `cannot mount a ${size} tmpfs here (needs root or CAP_SYS_ADMIN): ${(m.stderr || m.error?.message || '').trim()}` };
  }
  const filler = join(dir, 'filler');
  let mounted = true;
  const fs = {
    dir,
    freeBytes() { const s = statfsSync(dir); return s.bavail * s.bsize; },
    // Writes one file until not a byte more fits.
    fill() {
      const fd = openSync(filler, 'a');
      for (const chunk of [1 << 20, 64 << 10, 4 << 10, 512, 1].map((n) => Buffer.alloc(n, 0x61))) {
        for (;;) {
          try { writeSync(fd, chunk); } catch (e) { if (e.code === 'ENOSPC') break; closeSync(fd); throw e; }
        }
      }
      closeSync(fd);
    },
    free() { rmSync(filler, { force: true }); },
    unmount() {
      if (!mounted) return;
      mounted = false;
      spawnSync('umount', [dir]);
      if (spawnSync('mountpoint', ['-q', dir]).status === 0) spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  process.on('exit', () => fs.unmount());
  return fs;
}
