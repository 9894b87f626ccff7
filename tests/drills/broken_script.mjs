#!/usr/bin/env node
// Drill (d): a consultant saves a broken scoring.lua while users are working.
//
// The server runs on a copy of scripts/ and kb/.  Once the users are busy
// answering, garbage is appended to scoring.lua (several times, in place and
// by rename, the way editors save); it stays broken for a while (5 s with
// --quick, 20 s otherwise), then a good version with a harmless change is
// saved.  Checks: no request fails at any time; while broken, the old
// generation keeps serving (status, and the generation every answer's reply
// names) and /api/v1/status shows the error with file and line; the good
// save goes live under load and clears the error; nothing acknowledged is
// lost and every report is done.
//
//   node tests/drills/broken_script.mjs --bin build/o2c [--quick]
import { cpSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { drillArgs, Checks, loadChecks } from './lib.mjs';
import { runLoad } from '../load/lib/run.mjs';
import { sleep } from '../load/lib/http.mjs';
import { SOURCE, tempDir } from '../load/lib/procs.mjs';

const args = drillArgs({ users: { type: 'string' } });
const c = new Checks('broken-script');
const users = Number(args.users ?? (args.quick ? 16 : 40));
const brokenMs = args.quick ? 5000 : 20000;
const dir = tempDir('o2c-drill-scripts-');
cpSync(join(SOURCE, 'scripts'), join(dir, 'scripts'), { recursive: true });
cpSync(join(SOURCE, 'kb'), join(dir, 'kb'), { recursive: true });
const scoring = join(dir, 'scripts/o2c/scoring.lua');
const original = readFileSync(scoring, 'utf8');
const save = (text, byRename) => {
  if (byRename) {
    writeFileSync(`${scoring}.tmp-save`, text);
    renameSync(`${scoring}.tmp-save`, scoring);
  } else {
    writeFileSync(scoring, text);
  }
};
const seen = { good: null, duringBroken: new Set(), errors: [], fixedGeneration: null, errorCleared: false,
  ackedAtBreak: null };

c.say(`${users} users; scripts served from ${dir}; scoring.lua broken for ${brokenMs / 1000} s mid-load`);
let summary;
try {
  summary = await runLoad({
    bin: args.bin, users, seed: args.seed, maxSeconds: args.quick ? 240 : 420,
    pauseMin: 80, pauseMax: 250,
    serverEnv: { O2C_SCRIPTS_DIR: join(dir, 'scripts'), O2C_KB_DIR: join(dir, 'kb'), O2C_LOG_LEVEL: 'info' },
    progressMs: 15000,
    log: (l) => c.say(l),
    chaos: async ({ http, counters, adminToken, done }) => {
      const status = async () => (await http.request('GET', '/api/v1/status', { token: adminToken, timeoutMs: 5000 })).json;
      seen.good = (await status()).generation;
      while (counters.acked < users * 10 && !done()) await sleep(50);
      seen.ackedAtBreak = counters.acked;
      c.say(`breaking scoring.lua after ${counters.acked} acknowledged answers (generation ${seen.good})`);
      const t0 = Date.now();
      let n = 0;
      while (Date.now() - t0 < brokenMs) {
        n++;
        save(`${original}\n-- broken save ${n}\nlocal function (\nthis is not lua ${n}\n`, n % 2 === 0);
        for (let i = 0; i < 10; i++) {
          const s = await status();
          seen.duringBroken.add(s.generation);
          if (s.reload.errors.length) seen.errors = s.reload.errors;
          await sleep(100);
        }
      }
      c.say(`saved ${n} broken versions; now a good one with a harmless change`);
      save(`${original}\n-- edited during the broken-script drill\n`, false);
      const t1 = Date.now();
      while (Date.now() - t1 < 10000) {
        const s = await status();
        if (s.generation !== seen.good && s.reload.errors.length === 0) {
          seen.fixedGeneration = s.generation;
          seen.errorCleared = true;
          seen.fixMs = Date.now() - t1;
          break;
        }
        await sleep(50);
      }
    },
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const err = seen.errors[0];
c.check('the broken save happened under load', seen.ackedAtBreak !== null && seen.ackedAtBreak < summary.answers.acknowledged,
  `after ${seen.ackedAtBreak} of ${summary.answers.acknowledged} answers`);
c.check('/api/v1/status showed the error with its file and line', !!err && /scripts\/o2c\/scoring\.lua$/.test(err.file) && Number.isInteger(err.line) && err.message,
  err ? `${err.file}:${err.line}: ${err.message}` : 'no error shown');
c.check('the old generation kept serving while the file was broken', seen.duringBroken.size === 1 && seen.duringBroken.has(seen.good),
  `generations seen while broken: ${[...seen.duringBroken].join(', ')}`);
c.check('the good save went live under load and cleared the error', seen.errorCleared,
  seen.errorCleared ? `generation ${seen.fixedGeneration} in ${seen.fixMs} ms` : 'not within 10 s');
c.check('status saw the good generation, then the edited one', summary.status.generations.includes(seen.good)
  && (!seen.fixedGeneration || summary.status.generations.includes(seen.fixedGeneration)), JSON.stringify(summary.status.generations));
loadChecks(c, summary, { allOk: true });
c.finish();
