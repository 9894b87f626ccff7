#!/usr/bin/env node
// o2c load generator: N virtual users against a real `o2c serve` and the mock
// provider; prints one summary; exit 1 on any lost answer, any report not
// done, any user who could not finish, or a failed `o2c db check`.
//
//   node tests/load/load.mjs --bin build/o2c --users 50 [options]
//
// Options (defaults in lib/run.mjs):
//   --users N            virtual users (each its own account and assessment)
//   --concurrency N      users running at once (0 = all)
//   --ramp-ms N          spread of the users' starts
//   --max-seconds N      bound of the whole run
//   --rpm N --window-s N the provider's limit, on the mock and the server alike
//   --fault-rate P --faults LIST --latency-ms N --jitter-ms N   the mock's faults and latency
//   --disobey P          share of replies that ignore the prompt's required phrases
//   --llm-concurrency N  the server's LLM calls in flight
//   --pause-min N --pause-max N   think time before each answer (ms)
//   --two-tabs P         fraction of users with a second tab
//   --no-reports         stop after the upload (no LLM)
//   --seed N             users' choices and the mock's faults
//   --json FILE          also write the summary as JSON
//   --keep-data          keep the server's data folder
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { runLoad, DEFAULTS } from './lib/run.mjs';

const { values } = parseArgs({
  options: {
    bin: { type: 'string' },
    users: { type: 'string' },
    concurrency: { type: 'string' },
    'ramp-ms': { type: 'string' },
    'max-seconds': { type: 'string' },
    rpm: { type: 'string' },
    'window-s': { type: 'string' },
    'fault-rate': { type: 'string' },
    disobey: { type: 'string' },
    faults: { type: 'string' },
    'latency-ms': { type: 'string' },
    'jitter-ms': { type: 'string' },
    'llm-concurrency': { type: 'string' },
    'pause-min': { type: 'string' },
    'pause-max': { type: 'string' },
    'two-tabs': { type: 'string' },
    'no-reports': { type: 'boolean' },
    seed: { type: 'string' },
    json: { type: 'string' },
    'keep-data': { type: 'boolean' },
    help: { type: 'boolean' },
  },
});

if (values.help || !values.bin) {
  process.stderr.write('usage: node tests/load/load.mjs --bin build/o2c --users N [options] (see the top of this file)\n');
  process.exit(values.help ? 0 : 2);
}

const num = (k, d) => {
  if (values[k] === undefined) return d;
  const n = Number(values[k]);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${k}: expected a number, got ${values[k]}\n`);
    process.exit(2);
  }
  return n;
};

const opts = {
  bin: resolve(values.bin),
  users: num('users', DEFAULTS.users),
  concurrency: num('concurrency', DEFAULTS.concurrency),
  rampMs: values['ramp-ms'] !== undefined ? num('ramp-ms') : null,
  maxSeconds: values['max-seconds'] !== undefined ? num('max-seconds') : null,
  rpm: num('rpm', DEFAULTS.rpm),
  windowS: num('window-s', DEFAULTS.windowS),
  faultRate: num('fault-rate', DEFAULTS.faultRate),
  disobey: num('disobey', DEFAULTS.disobey),
  faults: values.faults ?? DEFAULTS.faults,
  latencyMs: num('latency-ms', DEFAULTS.latencyMs),
  jitterMs: num('jitter-ms', DEFAULTS.jitterMs),
  llmConcurrency: num('llm-concurrency', DEFAULTS.llmConcurrency),
  pauseMin: num('pause-min', DEFAULTS.pauseMin),
  pauseMax: num('pause-max', DEFAULTS.pauseMax),
  twoTabFraction: num('two-tabs', DEFAULTS.twoTabFraction),
  reports: !values['no-reports'],
  seed: num('seed', DEFAULTS.seed),
  jsonOut: values.json,
  keepData: values['keep-data'],
};
if (opts.users < 1 || !Number.isInteger(opts.users)) {
  process.stderr.write('--users: a whole number >= 1\n');
  process.exit(2);
}

try {
  const summary = await runLoad(opts);
  process.exit(summary.ok ? 0 : 1);
} catch (e) {
  process.stderr.write(`load: ${e.stack || e}\n`);
  process.exit(1);
}
