// The web UI in a real browser: Debian's Chromium (headless, driven by
// playwright-core) against the real `o2c serve` and the mock LLM provider.
//
// One consultant's walk: sign in → create → answer every question of one
// area (a conditional one, a KPI with an invalid then a valid value, an
// evidence note) → reload and find every answer kept → evidence images →
// scorecard → a second browser context saves the same answers to provoke a
// conflict, resolved with nothing lost → session expiry and back → generate
// a report, watch the sections, retry the one that failed → download the
// Markdown, the HTML and the PDF the server renders → admin pages. Any console error, page error or request to another
// origin fails the test. Screenshots of each screen go to build/screenshots/.
//
// Env: O2C_BIN (the binary), O2C_SOURCE_DIR (the repository). Skips when
// playwright-core or /usr/bin/chromium is missing (make test installs both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMock } from '../mock_provider/mock.mjs';
import { CHROMIUM, guard, launchBrowser, loadPlaywright, samplePng, screenshotDir, sleep, startServer } from '../browser/harness.mjs';

const SOURCE_DIR = process.env.O2C_SOURCE_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.O2C_BIN || path.join(SOURCE_DIR, 'build', 'o2c');
const PASSWORD = 'browser-test-password-1';
const CLIENT = 'Northwind Industrial GmbH';

const { pw, why } = await loadPlaywright();
const skip = why || (!existsSync(CHROMIUM) && `${CHROMIUM} is missing (config/install-deps.sh --test installs it)`)
  || (!existsSync(BIN) && `${BIN} is missing (build first, or set O2C_BIN)`);

test('web UI end to end in Chromium', { skip, timeout: 240000 }, async (t) => {
  const started = Date.now();
  const shots = screenshotDir(SOURCE_DIR);
  const mock = await startMock({});
  t.after(() => mock.stop());
  const server = await startServer({
    bin: BIN,
    sourceDir: SOURCE_DIR,
    adminPassword: PASSWORD,
    env: {
      O2C_LLM_PROVIDER: 'anthropic',
      ANTHROPIC_API_KEY: 'test-key',
      O2C_ANTHROPIC_BASE_URL: mock.url,
      O2C_LLM_MODEL: 'claude-test',
    },
  });
  t.after(() => server.stop());
  const browser = await launchBrowser(pw);
  t.after(() => browser.close());
  const origin = server.url;

  const ctxA = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await ctxA.newPage();
  page.setDefaultTimeout(10000);
  const gA = guard(page, origin, 'A');
  const guards = [gA];
  const shot = (name, p = page, fullPage = false) => p.screenshot({ path: path.join(shots, `${name}.png`), fullPage });
  // Every control on screen has a name: a <label>, aria-label(ledby), or text.
  const unlabelled = (p) => p.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
      && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map((el) => el.outerHTML.slice(0, 160)));
  const checkClean = async () => {
    assert.deepEqual(await unlabelled(page), [], 'controls without a label');
    for (const g of guards) g.settle();
    const problems = guards.flatMap((g) => g.problems);
    assert.deepEqual(problems, [], `browser problems:\n${problems.join('\n')}\n--- server log tail ---\n${server.log().slice(-3000)}`);
  };
  // Steps run in order; after one fails the rest are skipped, not timed out.
  let broken = null;
  const step = (name, fn) => t.test(name, { skip: broken ? `an earlier step failed: ${broken}` : false }, async (st) => {
    try {
      await fn(st);
    } catch (e) {
      broken = name;
      await shot(`failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`).catch(() => {});
      throw e;
    }
  });
  const saved = (p = page) => p.locator('.save-state').filter({ hasText: /^Saved$/ }).waitFor();

  async function signIn(p, user = 'admin', password = PASSWORD) {
    await p.getByLabel('Username').fill(user);
    await p.getByLabel('Password').fill(password);
    await p.getByRole('button', { name: 'Sign in' }).click();
  }

  let assessmentUrl;
  let previewShown = null;
  const billing = () => page.locator('section.q-area');
  const question = (p, id) => p.locator(`#q-${id}`);

  await step('sign in and see the dashboard', async () => {
    // First load: everything the sign-in page fetches, well under 200 KB.
    let bytes = 0;
    const count = (res) => res.body().then((b) => { bytes += b.length; }, () => {});
    page.on('response', count);
    await page.goto(origin + '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.waitForLoadState('networkidle');
    page.off('response', count);
    t.diagnostic(`first load: ${(bytes / 1024).toFixed(1)} KB`);
    assert.ok(bytes < 200 * 1024, `first load is ${bytes} bytes`);
    await shot('01-sign-in');
    await signIn(page);
    await page.getByRole('heading', { name: 'All assessments' }).waitFor();
    await page.getByText('No assessments yet').waitFor();
    await checkClean();
  });

  await step('create an assessment with targets', async () => {
    await page.getByRole('button', { name: 'New assessment' }).click();
    const dialog = page.getByRole('dialog', { name: 'New assessment' });
    await dialog.getByLabel('Client').fill(CLIENT);
    await dialog.getByLabel('Billing and invoicing').selectOption('4');
    await dialog.getByLabel('Collections').selectOption('4');
    await shot('02-new-assessment');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: CLIENT, level: 1 }).waitFor();
    await page.getByRole('heading', { name: 'Customer master data and onboarding' }).waitFor();
    assessmentUrl = page.url().replace(/\/(questionnaire|areas\/.*)$/, '');
    assert.match(assessmentUrl, /#\/assessments\/[0-9a-f-]{36}$/);
    await checkClean();
  });

  await step('answer every question of the billing area', async () => {
    await page.getByRole('navigation', { name: 'Areas' }).getByRole('link', { name: /Billing and invoicing/ }).click();
    await page.getByRole('heading', { name: 'Billing and invoicing', level: 2 }).waitFor();
    await page.getByText('Target level: 4 (Quantitatively managed)').waitFor();

    await question(page, 'bi_timing').getByRole('radio', { name: 'The same day, with manual steps' }).check();
    // By keyboard: focus the scale's first level, arrow down twice to level 3.
    await question(page, 'bi_process').getByRole('radio', { name: /^1 · Initial/ }).focus();
    await page.keyboard.press('Space');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    assert.ok(await question(page, 'bi_process').getByRole('radio', { name: /^3 · Defined/ }).isChecked());
    await question(page, 'bi_einvoicing').getByRole('radio', { name: 'Mostly as PDF by e-mail' }).check();
    for (const name of ['Price against contract', 'Tax treatment', 'Duplicate invoice']) {
      await question(page, 'bi_controls').getByRole('checkbox', { name }).check();
    }
    // The conditional KPI appears only once accuracy is measured.
    await assert.rejects(question(page, 'bi_accuracy').waitFor({ state: 'visible', timeout: 300 }));
    await question(page, 'bi_accuracy_measured').getByRole('radio', { name: 'Yes, monthly, with error causes' }).check();
    await question(page, 'bi_accuracy').waitFor({ state: 'visible' });

    // A KPI out of range is refused inline and not saved; then a valid one.
    const accuracy = question(page, 'bi_accuracy').getByRole('textbox', { name: /Invoice accuracy/ });
    await accuracy.fill('250');
    await question(page, 'bi_accuracy').getByText('250 is outside the valid range').waitFor();
    assert.equal(await accuracy.getAttribute('aria-invalid'), 'true');
    await accuracy.fill('96.5');
    await accuracy.blur();
    await assert.rejects(question(page, 'bi_accuracy').getByText('outside the valid range').waitFor({ timeout: 300 }));
    assert.equal(await accuracy.getAttribute('aria-invalid'), 'false');

    // The network drops this save once: the state says so, then it retries.
    let drops = 0;
    await page.route('**/answers', (route) => (drops++ === 0 ? route.abort('failed') : route.continue()));
    gA.expect(/ERR_FAILED|Failed to load resource/);
    await question(page, 'bi_cost').getByRole('textbox', { name: /Cost per invoice/ }).fill('4.10');
    await question(page, 'bi_cost').getByRole('textbox', { name: /Cost per invoice/ }).blur();
    await page.locator('.save-state', { hasText: /^Failed — retrying in \d+ s$/ }).waitFor();
    await saved();
    await page.unroute('**/answers');

    // An evidence note on one answer.
    await question(page, 'bi_timing').getByText('Evidence note', { exact: true }).click();
    await question(page, 'bi_timing').getByLabel('Evidence note for “Invoice timing”').fill('Billing run at 18:00 daily; shipments after the cut-off wait a day.');
    await question(page, 'bi_timing').getByLabel('Evidence note for “Invoice timing”').blur();
    await saved();
    // The live preview and the step's progress follow the answers.
    await page.locator('.step[aria-current="step"]').getByText('7 of 7 answered').waitFor();
    await page.locator('.preview-areas li', { hasText: 'Billing and invoicing' }).locator('.preview-area-score').filter({ hasText: /\d/ }).waitFor();
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('03-questionnaire');
    await shot('03b-questionnaire-full', page, true);
    await checkClean();
  });

  await step('reload: every answer is kept', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'Billing and invoicing', level: 2 }).waitFor();
    assert.ok(await question(page, 'bi_timing').getByRole('radio', { name: 'The same day, with manual steps' }).isChecked());
    assert.ok(await question(page, 'bi_process').getByRole('radio', { name: /^3 · Defined/ }).isChecked());
    assert.ok(await question(page, 'bi_einvoicing').getByRole('radio', { name: 'Mostly as PDF by e-mail' }).isChecked());
    for (const name of ['Price against contract', 'Tax treatment', 'Duplicate invoice']) {
      assert.ok(await question(page, 'bi_controls').getByRole('checkbox', { name }).isChecked(), name);
    }
    assert.ok(!(await question(page, 'bi_controls').getByRole('checkbox', { name: 'Customer PO number present and valid' }).isChecked()));
    assert.ok(await question(page, 'bi_accuracy_measured').getByRole('radio', { name: 'Yes, monthly, with error causes' }).isChecked());
    await question(page, 'bi_accuracy').waitFor({ state: 'visible' });
    assert.equal(await question(page, 'bi_accuracy').getByRole('textbox', { name: /Invoice accuracy/ }).inputValue(), '96.5');
    assert.equal(await question(page, 'bi_cost').getByRole('textbox', { name: /Cost per invoice/ }).inputValue(), '4.1');
    assert.equal(await question(page, 'bi_timing').getByLabel('Evidence note for “Invoice timing”').inputValue(),
      'Billing run at 18:00 daily; shipments after the cut-off wait a day.');
    await checkClean();
  });

  await step('evidence: an image is attached, a wrong file is refused clearly', async () => {
    await page.getByRole('link', { name: 'Evidence', exact: true }).click();
    await page.getByRole('button', { name: 'Choose images' }).waitFor();
    await page.locator('#evidence-file').setInputFiles([
      { name: 'Aging report Q3.png', mimeType: 'image/png', buffer: samplePng() },
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') },
    ]);
    await page.getByText('“notes.txt” is not an image o2c can keep').waitFor();
    const img = page.getByRole('img', { name: 'Evidence: Aging-report-Q3.png' });
    await img.waitFor();
    // The preview is the stored image, served back by the API (checked at the
    // end, so that a broken download does not hide the rest of the walk).
    previewShown = await page.waitForFunction(() => [...document.querySelectorAll('.evidence-item img')]
      .every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 5000 }).then(() => true, () => false);
    await shot('04-evidence');
    await checkClean();
  });

  await step('scorecard: radar, levels and gaps, KPIs', async () => {
    const charts = [];
    const onChart = (res) => { if (/\/chart\.svg$/.test(res.url())) charts.push(res); };
    page.on('response', onChart);
    await page.getByRole('link', { name: 'Scorecard', exact: true }).click();
    // The radar is the server's (generation/chart.lua, as in the report),
    // fetched from the API; the page draws none of its own.
    const radar = page.locator('.chart-card svg[role="img"]');
    await radar.waitFor();
    page.off('response', onChart);
    assert.equal(charts.length, 1, 'the chart comes from GET /api/v1/assessments/{id}/chart.svg');
    assert.equal(charts[0].headers()['content-type'], 'image/svg+xml');
    assert.match(await radar.locator('desc').textContent(), /Billing and invoicing: 3(\.\d+)?, target 4/);
    assert.match(await radar.locator('text').filter({ hasText: 'Credit' }).first().textContent(), /\(not assessed\)/);
    const row = page.locator('.scorecard-table tbody tr', { hasText: 'Billing and invoicing' });
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /Managed|Defined/);
    assert.match(text, /short/); // below its target of 4
    await page.locator('.kpi-table tr', { hasText: 'Cost per invoice' }).getByText('4.1 USD').waitFor();
    await shot('05-scorecard');
    await checkClean();
  });

  await step('a second browser saves first: the conflict is resolved with nothing lost', async () => {
    await page.goto(`${assessmentUrl}/areas/billing`);
    await question(page, 'bi_timing').waitFor();

    const ctxB = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    t.after(() => ctxB.close());
    const pageB = await ctxB.newPage();
    pageB.setDefaultTimeout(10000);
    guards.push(guard(pageB, origin, 'B'));
    await pageB.goto(origin + '/');
    await signIn(pageB);
    await pageB.getByRole('heading', { name: 'All assessments' }).waitFor();
    await pageB.goto(`${assessmentUrl}/areas/billing`);
    await question(pageB, 'bi_timing').waitFor();
    await question(pageB, 'bi_timing').getByRole('radio', { name: 'Within a week (periodic billing run)' }).check();
    await question(pageB, 'bi_process').getByRole('radio', { name: /^4 · Quantitatively managed/ }).check();
    await saved(pageB);

    // A still shows the old revision; its change meets a 409.
    gA.expect(/status of 409/);
    await question(page, 'bi_timing').getByRole('radio', { name: 'The same day, automatically' }).check();
    const dialog = page.getByRole('dialog', { name: 'Someone else changed these answers' });
    await dialog.waitFor();
    const row = dialog.locator('tbody tr', { hasText: 'Invoice timing' });
    await row.getByText('The same day, automatically').waitFor();
    await row.getByText('Within a week (periodic billing run)').waitFor();
    await dialog.getByText(/Also changed elsewhere.*Invoice creation/).waitFor();
    await shot('06-conflict');
    await dialog.getByRole('button', { name: 'Keep all mine' }).click();
    await saved();
    // Mine kept where both changed; theirs merged where only they changed.
    assert.ok(await question(page, 'bi_timing').getByRole('radio', { name: 'The same day, automatically' }).isChecked());
    assert.ok(await question(page, 'bi_process').getByRole('radio', { name: /^4 · Quantitatively managed/ }).isChecked());

    await pageB.reload();
    await question(pageB, 'bi_timing').waitFor();
    assert.ok(await question(pageB, 'bi_timing').getByRole('radio', { name: 'The same day, automatically' }).isChecked());
    assert.ok(await question(pageB, 'bi_process').getByRole('radio', { name: /^4 · Quantitatively managed/ }).isChecked());
    assert.equal(await question(pageB, 'bi_accuracy').getByRole('textbox', { name: /Invoice accuracy/ }).inputValue(), '96.5');
    await ctxB.close();
    await checkClean();
  });

  await step('an expired session returns to sign-in, then to the same page', async () => {
    const cookies = await ctxA.cookies();
    await ctxA.clearCookies();
    gA.expect(/status of 401/);
    await page.getByRole('link', { name: 'Scorecard', exact: true }).click();
    await page.getByText('Your session has expired, please sign in again').waitFor();
    await shot('07-session-expired');
    await signIn(page);
    await page.locator('.chart-card svg[role="img"]').waitFor();
    assert.match(page.url(), /\/scorecard$/);
    assert.ok(cookies.some((c) => c.name === 'o2c_session' && c.httpOnly));
    await checkClean();
  });

  await step('report: live sections, a failed one retried, downloads', async () => {
    // The next model call gets a spend-limit 429, which is never retried.
    mock.configure({ schedule: ['spend'] });
    await page.getByRole('link', { name: 'Report', exact: true }).click();
    await page.getByRole('button', { name: 'Generate report' }).click();
    await page.locator('.section-list').waitFor();
    // The section that met the fault fails with its reason and a Retry
    // button; the sections that need it wait for it (no button of their own).
    const failed = page.locator('.section-row.is-failed', { hasText: /429|spend/i });
    await failed.waitFor({ timeout: 30000 });
    await page.locator('.section-row.is-queued, .section-row.is-started, .section-row.is-retrying').first()
      .waitFor({ state: 'detached', timeout: 30000 });
    assert.equal(await page.getByRole('button', { name: /^Retry / }).count(), 1);
    const failedRows = await page.locator('.section-row.is-failed').count();
    assert.equal(await page.locator('.section-row.is-failed', { hasText: /Waits for/ }).count(), failedRows - 1);
    await shot('08-report-failed-section');
    await failed.getByRole('button', { name: /^Retry / }).click();
    await page.locator('.section-row.is-failed').first().waitFor({ state: 'detached', timeout: 30000 });
    await page.getByRole('link', { name: 'Download Markdown' }).waitFor({ timeout: 30000 });
    await page.locator('.report-section').first().waitFor();
    assert.equal(await page.locator('.report-section.is-missing').count(), 0);
    await page.getByText(/anthropic/i).first().waitFor();
    // Every section is the HTML the server rendered (libcmark-gfm): the same
    // text, tables and chart as the API's `html`, nothing drawn by the page.
    const scorecard = page.locator('.report-section[data-section="scorecard"]');
    await scorecard.locator('.report-text figure.chart svg[role="img"]').waitFor();
    assert.ok(await scorecard.locator('.report-text table td[align="right"]').count() > 10, 'the scorecard tables');
    const reportHref = await page.getByRole('link', { name: 'Download Markdown' }).getAttribute('href');
    const shown = await page.evaluate(async (href) => {
      const id = href.match(/\/reports\/([^/]+)\/download/)[1];
      const report = await (await fetch(`/api/v1/reports/${id}`)).json();
      const summary = (root) => ({ text: root.textContent.replace(/\s+/g, ' ').trim(),
        tags: [...root.querySelectorAll('table, figure, svg, h4, li, a, strong')].map((e) => e.tagName).join(',') });
      return report.sections.map((s) => {
        const t = document.createElement('template');
        t.innerHTML = s.html || '';
        const el = document.querySelector(`.report-section[data-section="${s.id}"] .report-text`);
        return { id: s.id, api: summary(t.content), page: el ? summary(el) : null };
      });
    }, reportHref);
    assert.equal(shown.length, 14); // with the consultant's Open questions
    for (const s of shown) {
      assert.ok(s.api.text.length > 100, `${s.id}: the API gives its html`);
      assert.deepEqual(s.page, s.api, `${s.id}: the page shows the server's html`);
    }
    await shot('09-report');
    await shot('09b-report-full', page, true);

    const [md] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download Markdown' }).click()]);
    const mdText = readFileSync(await md.path(), 'utf8');
    assert.match(md.suggestedFilename(), /\.md$/);
    assert.ok(mdText.includes(CLIENT), 'the Markdown names the client');
    // The consultant sees the open questions in the app; the client's download leaves them out.
    await page.locator('.report-section[data-section="open_questions"] .report-h', { hasText: 'Open questions' }).waitFor();
    assert.ok(!mdText.includes('Open questions'), 'the download is the client copy');
    const [html] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download HTML' }).click()]);
    const htmlText = readFileSync(await html.path(), 'utf8');
    assert.match(html.suggestedFilename(), /\.html$/);
    assert.match(htmlText, /<html/i);
    // The PDF is made on the server (WeasyPrint), not by the print dialog.
    const [pdf] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download PDF' }).click()]);
    assert.match(pdf.suggestedFilename(), /\.pdf$/);
    assert.equal(readFileSync(await pdf.path()).subarray(0, 5).toString(), '%PDF-');
    for (const label of ['Download Word', 'Download Excel', 'Download ZIP', 'Download chart']) {
      await page.getByRole('link', { name: label }).waitFor();
    }
    await page.emulateMedia({ media: 'print' });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('10-report-print');
    await page.emulateMedia({ media: 'screen' });
    await checkClean();
  });

  await step('dashboard lists the assessment with score and report', async () => {
    await page.getByRole('link', { name: 'Assessments', exact: true }).first().click();
    const row = page.locator('tbody tr', { hasText: CLIENT });
    await row.waitFor();
    await row.getByText('Ready').waitFor();
    assert.match(await row.innerText(), /admin/);
    await shot('11-dashboard');
    await checkClean();
  });

  await step('admin: users, audit log, status', async () => {
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('button', { name: 'Add user' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add user' });
    await dialog.getByLabel('Username').fill('casey');
    await dialog.getByLabel('Initial password').fill('casey-password-123');
    await dialog.getByRole('button', { name: 'Add user' }).click();
    const casey = page.locator('tbody tr', { hasText: 'casey' });
    await casey.waitFor();
    await shot('12-admin-users');
    // Disable, then the Enable button brings the account back.
    await casey.getByRole('button', { name: 'Disable casey' }).click();
    await page.getByRole('dialog', { name: 'Disable casey?' }).getByRole('button', { name: 'Disable' }).click();
    await casey.getByText('Disabled').waitFor();
    await casey.getByRole('button', { name: 'Enable casey' }).click();
    await casey.getByText('Active').waitFor();
    // Remove asks where the assessments go; read-only keeps them for admins.
    await casey.getByRole('button', { name: 'Remove casey' }).click();
    const remove = page.getByRole('dialog', { name: 'Remove casey?' });
    const heir = remove.getByLabel('Give their assessments to');
    assert.deepEqual(await heir.locator('option').allInnerTexts(), ['Nobody: keep them read-only', 'admin']);
    await shot('12b-admin-remove-dialog');
    await remove.getByRole('button', { name: 'Remove' }).click();
    await casey.getByText('Removed').waitFor();
    await casey.getByRole('button', { name: 'Reassign the assessments of casey' }).waitFor();
    assert.equal(await casey.getByRole('button', { name: 'Enable casey' }).count(), 0, 'a removed account offers no Enable');
    await shot('12c-admin-user-removed');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.locator('.audit-table').waitFor();
    await page.locator('.audit-table').getByText('assessment.create').first().waitFor();
    await shot('13-admin-audit');
    await page.getByRole('link', { name: 'Status' }).click();
    await page.getByText('The last reload loaded without errors.').waitFor();
    await page.getByText('anthropic').first().waitFor();
    await shot('14-admin-status');
    await checkClean();
  });

  await step('narrow window and larger text stay usable', async () => {
    await page.setViewportSize({ width: 420, height: 860 });
    await page.goto(`${assessmentUrl}/areas/billing`);
    await question(page, 'bi_timing').waitFor();
    await shot('15-narrow-questionnaire');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByRole('button', { name: 'Larger text' }).click();
    await question(page, 'bi_timing').waitFor();
    await shot('16-larger-text');
    await page.getByRole('button', { name: 'Larger text' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await checkClean();
  });

  await step('evidence previews show the stored images', async () => {
    assert.equal(previewShown, true, 'GET /api/v1/assessments/{id}/attachments/{name} did not give back a loadable image');
  });

  t.diagnostic(`browser walk took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${shots}`);
});

// For the person who deploys o2c: a script error on the admin status card
// names its whole file:line however long the scripts' path (an installed
// o2c's is), wrapped inside the card rather than cut or spilling out; and the
// dashboard fits a 400 px wide phone without scrolling sideways.
test('status card shows a whole script path; the dashboard fits 400 px', { skip, timeout: 120000 }, async (t) => {
  const shots = screenshotDir(SOURCE_DIR);
  // One long word, as a path under /usr/share or /srv is: nothing to break at.
  const scripts = mkdtempSync(path.join(os.tmpdir(), 'o2cscriptsinafolderwithalongnamesuchasaninstalledonehas'));
  t.after(() => rmSync(scripts, { recursive: true, force: true }));
  cpSync(path.join(SOURCE_DIR, 'scripts'), scripts, { recursive: true });
  const server = await startServer({ bin: BIN, sourceDir: SOURCE_DIR, adminPassword: PASSWORD, env: { O2C_SCRIPTS_DIR: scripts } });
  t.after(() => server.stop());
  const auth = await fetch(`${server.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: PASSWORD }) }).then((r) => r.json());
  const api = (p, body) => fetch(server.url + p, { method: body ? 'POST' : 'GET',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.token}` }, body: body && JSON.stringify(body) }).then((r) => r.json());
  for (const client of ['Contoso Pharmaceuticals International Holdings AG', 'Northwind Industrial GmbH', 'Tailspin'])
    await api('/api/v1/assessments', { type: 'o2c', client });

  // Break a script: the watcher reloads, the load fails, status says where.
  const broken = path.join(scripts, 'o2c', 'scoring.lua');
  writeFileSync(broken, `${readFileSync(broken, 'utf8')}\nlocal x = = 1\n`);
  let error;
  for (let i = 0; i < 200 && !error; i++) {
    error = ((await api('/api/v1/status')).reload?.errors || [])[0];
    if (!error) await sleep(50);
  }
  assert.ok(error, 'the broken script was not reported');
  assert.equal(error.file, broken, 'the API gives the whole path');
  const where = `${broken}:${error.line}`;

  const browser = await launchBrowser(pw);
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(10000);
  const g = guard(page, server.url, 'deploy');
  await page.goto(`${server.url}/`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('tbody tr').first().waitFor();

  const cardFits = () => page.locator('.reload-errors code').first().evaluate((el) => {
    const card = el.closest('.card').getBoundingClientRect();
    const rects = [...el.getClientRects()];
    return { text: el.textContent, inside: rects.every((r) => r.left >= card.left && r.right <= card.right) };
  });
  await page.goto(`${server.url}/#/admin/status`);
  await page.locator('.reload-errors code').first().waitFor();
  for (const width of [1280, 400]) {
    await page.setViewportSize({ width, height: 800 });
    const shown = await cardFits();
    assert.equal(shown.text, where, `at ${width} px the status card shows ${shown.text}`);
    assert.ok(shown.inside, `at ${width} px the file:line spills out of the status card`);
    await page.screenshot({ path: path.join(shots, `20-status-script-error-${width}.png`), fullPage: true });
  }

  await page.goto(`${server.url}/#/`);
  await page.locator('tbody tr', { hasText: 'Tailspin' }).waitFor();
  const wide = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(wide <= 400, `the dashboard is ${wide} px wide on a 400 px screen`);
  const row = page.locator('tbody tr', { hasText: 'Contoso' });
  for (const label of ['Type', 'Owner', 'Completeness', 'Score', 'Last change', 'Report'])
    assert.ok(await row.locator(`td[data-label="${label}"]`).isVisible(), `${label} is not shown on a phone`);
  await row.getByRole('button', { name: /^Delete/ }).waitFor();
  await page.screenshot({ path: path.join(shots, '21-dashboard-400.png'), fullPage: true });
  assert.deepEqual(g.problems, []);
});
