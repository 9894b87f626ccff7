// What the drills share: their command line, a list of named checks printed
// as they are made, and the exit status.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';

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
