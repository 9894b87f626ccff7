#!/usr/bin/env node
// Drill (a): SIGKILL the server at random moments under load and start it
// again on the same port and data folder, KILLS times (20; 3 with --quick).
// Users carry on (requests without an answer are sent again; SSE streams
// reconnect).  Checks: nothing acknowledged is lost, every report finishes
// (the server resumes unfinished jobs at start-up), `o2c db check` passes.
//
//   node tests/drills/kill.mjs --bin build/o2c [--quick] [--kills N] [--users N]
import { drillArgs, Checks, loadChecks } from './lib.mjs';
import { runLoad } from '../load/lib/run.mjs';
import { rng } from '../load/lib/user.mjs';
import { sleep } from '../load/lib/http.mjs';

const args = drillArgs({ kills: { type: 'string' }, users: { type: 'string' } });
const c = new Checks('kill');
const kills = Number(args.kills ?? (args.quick ? 3 : 20));
const users = Number(args.users ?? (args.quick ? 20 : 60));
const r = rng(args.seed * 7919);
const killLog = [];

c.say(`${users} users, ${kills} SIGKILLs at random moments (every 1.5-5 s), restart on the same data`);
const summary = await runLoad({
  bin: args.bin, users, seed: args.seed, maxSeconds: args.quick ? 240 : 600,
  // Arrivals spread out so that the kills land while answers are written
  // as well as while reports run.
  rampMs: args.quick ? 8000 : 40000,
  // Half the usual provider pace (300 requests a minute): the reports are
  // written for long enough that all the kills land before the users finish.
  rpm: 300,
  serverEnv: { O2C_LOG_LEVEL: 'info' },
  retryRounds: 5, retryDelayMs: 2000,
  progressMs: 15000,
  log: (l) => c.say(l),
  chaos: async ({ server, counters, done }) => {
    while (killLog.length < kills && !done()) {
      await sleep(1500 + r() * 3500);
      if (done()) break;
      const at = { acked: counters.acked, reports: counters.reportsRequested };
      const t = Date.now();
      await server.kill();
      await server.start();
      killLog.push({ ...at, restartMs: Date.now() - t });
      c.say(`SIGKILL ${killLog.length}/${kills} after ${at.acked} acknowledged answers and ${at.reports} reports requested; `
        + `back in ${Date.now() - t} ms`);
    }
  },
});

c.check(`killed and restarted ${kills} times`, killLog.length === kills, `${killLog.length} kills`);
c.check('some kills while answers were being written, some while reports ran',
  killLog.some((k) => k.reports < users) && killLog.some((k) => k.reports > 0),
  JSON.stringify(killLog.map((k) => [k.acked, k.reports])));
loadChecks(c, summary);
const resumed = summary.resumedJobs ?? null;
if (resumed !== null) c.check('the server resumed cut-short report jobs at start-up', resumed > 0, `${resumed} resumptions logged`);
c.finish();
