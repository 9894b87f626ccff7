#!/usr/bin/env node
// Drill (c): the LLM provider goes down for a minute (15 s with --quick)
// while users are having reports written, then comes back.
//
// The outage starts once half the users have requested their report.
// Checks: the circuit breaker opens (GET /api/v1/status shows it), the
// failures are visible per section (section.failed events with a reason,
// failed sections with an error in GET /api/v1/reports/{id}), the server
// keeps answering everything else, and once the provider is back every
// report is done after the users retry their failed sections.  Nothing
// acknowledged is lost.
//
//   node tests/drills/provider_down.mjs --bin build/o2c [--quick] [--down-s N]
import { drillArgs, Checks, loadChecks } from './lib.mjs';
import { runLoad } from '../load/lib/run.mjs';
import { sleep } from '../load/lib/http.mjs';

const args = drillArgs({ 'down-s': { type: 'string' }, users: { type: 'string' } });
const c = new Checks('provider-down');
const downS = Number(args['down-s'] ?? (args.quick ? 15 : 60));
const users = Number(args.users ?? (args.quick ? 12 : 30));
const outage = { startedAt: null, endedAt: null, breakerOpenSeen: false, statusDuring: [], othersDuring: { n: 0, ok: 0 } };

c.say(`${users} users; the provider goes down for ${downS} s once half of them asked for their report`);
const summary = await runLoad({
  bin: args.bin, users, seed: args.seed, maxSeconds: args.quick ? 240 : 420,
  faultRate: 0.02,
  // Users come back to press "retry" a few times, over longer than the
  // outage plus the breaker's 30 s.
  retryRounds: 8, retryDelayMs: args.quick ? 3000 : 6000,
  statusPollMs: 250,
  progressMs: 15000,
  serverEnv: { O2C_LOG_LEVEL: 'info' },
  log: (l) => c.say(l),
  chaos: async ({ mock, http, counters, adminToken, done }) => {
    while (counters.reportsRequested < users / 2 && !done()) await sleep(100);
    if (done()) return;
    await mock.configure({ downForMs: downS * 1000 });
    outage.startedAt = Date.now();
    c.say(`provider down for ${downS} s (${counters.reportsRequested} reports requested so far)`);
    while (Date.now() - outage.startedAt < downS * 1000 + 35000 && !done()) {
      const r = await http.request('GET', '/api/v1/status', { token: adminToken, timeoutMs: 5000 });
      const s = r.json?.llm?.breaker_state;
      if (Date.now() - outage.startedAt < downS * 1000) {
        outage.othersDuring.n++;
        if (r.status === 200) outage.othersDuring.ok++;
      }
      if (s && outage.statusDuring.at(-1)?.state !== s) {
        outage.statusDuring.push({ atS: +((Date.now() - outage.startedAt) / 1000).toFixed(1), state: s,
          until: r.json.llm.breaker_until });
      }
      if (s === 'open') outage.breakerOpenSeen = true;
      await sleep(250);
    }
  },
});

c.say(`breaker as /api/v1/status showed it (s after the outage began): ${JSON.stringify(outage.statusDuring)}`);
c.check('the outage happened while reports were being written', outage.startedAt !== null);
c.check('the circuit breaker opened (GET /api/v1/status: breaker_state "open")', outage.breakerOpenSeen);
c.check('it closed again after the provider came back', outage.statusDuring.at(-1)?.state === 'closed'
  || summary.status.lastBreaker === 'closed', `last seen ${outage.statusDuring.at(-1)?.state}, at the end ${summary.status.lastBreaker}`);
const failedEvents = summary.events['section.failed'] || 0;
c.check('failures were visible per section (section.failed events with a reason)', failedEvents > 0 && summary.sectionErrorSamples.length > 0,
  `${failedEvents} section.failed events received (stream replays included); reasons e.g. ${summary.sectionErrorSamples.slice(0, 3).join(' | ')}`);
c.check('reports were not done at the first pass, and users retried sections', summary.reports.doneFirstPass < summary.users && summary.sectionRetries > 0,
  `${summary.reports.doneFirstPass} done at the first pass, ${summary.sectionRetries} section retries`);
c.check('the rest of the API kept answering during the outage', outage.othersDuring.n > 0 && outage.othersDuring.ok === outage.othersDuring.n,
  `${outage.othersDuring.ok}/${outage.othersDuring.n} status requests answered`);
loadChecks(c, summary);
c.finish();
