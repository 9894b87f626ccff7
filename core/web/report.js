// Report: "Generate report", live progress per section from the SSE stream,
// a Retry button on a failed section, the finished report as the server
// rendered it (each section's `html`: libcmark-gfm in safe mode, the chart
// drawn by generation/chart.lua), downloads and a print stylesheet.
import { api, listOf, errorText } from './api.js';
import { h, clear, toast, fmtTime, serverHtml } from './dom.js';

const FINAL = new Set(['done', 'partial', 'failed', 'cancelled']);
const finished = (r) => !!r && FINAL.has(r.status) && !r.active;
const SECTION_TEXT = { queued: 'Queued', pending: 'Queued', started: 'Writing…', running: 'Writing…', retrying: 'Retrying', done: 'Done', failed: 'Failed', skipped: 'Waiting for a failed section' };
const REPORT_TEXT = { queued: 'Queued', pending: 'Queued', running: 'Writing', done: 'Finished', partial: 'Finished with failed sections', failed: 'Failed' };

// The newest report of the assessment: GET /assessments/{id}/reports lists
// them newest first.
async function latestReportId(st) {
  try {
    const list = listOf(await api.get(`/assessments/${encodeURIComponent(st.id)}/reports`), 'reports');
    if (list.length) return list[0].id || list[0].report_id;
    return null;
  } catch (e) {
    if (e.status === 401) return null;
  }
  const m = st.meta;
  const r = m.report || m.latest_report || m.last_report;
  if (r && (r.id || r.report_id)) return r.id || r.report_id;
  if (typeof r === 'string') return r;
  if (m.report_id) return m.report_id;
  if (Array.isArray(m.reports) && m.reports.length) {
    const last = m.reports[0];
    return last.id || last.report_id || last;
  }
  return localStorage.getItem(`o2c.report.${st.id}`);
}

function providerText(report) {
  if (report.provider_label) return report.provider_label.replace(/^./, (c) => c.toUpperCase());
  const sections = report.sections || [];
  const provider = report.provider || (sections.find((s) => s.provider) || {}).provider;
  const model = report.model || (sections.find((s) => s.model) || {}).model;
  if (!provider) return null;
  if (provider === 'offline') return 'Drafted offline (no language model was used)';
  return `Written by ${provider}${model ? ` · ${model}` : ''}`;
}

export async function renderTab(body, st, route, { isCurrent }) {
  let reportId = null;
  let report = null;
  let stream = null;
  let poll = null;
  let ticking = null;
  let closed = false;
  const retryUntil = new Map(); // section id -> time the retry is due

  const generate = h('button', { type: 'button', class: 'btn btn-primary', onclick: start }, 'Generate report');
  const head = h('div', { class: 'report-head no-print' });
  const progressBox = h('div', { class: 'report-progress no-print' });
  const doc = h('article', { class: 'report-doc', 'aria-labelledby': 'report-title' });
  const toc = h('nav', { class: 'report-toc no-print', 'aria-label': 'Report contents' });
  clear(body).append(h('div', { class: 'report' }, head, progressBox, h('div', { class: 'report-body' }, doc, toc)));

  function drawHead() {
    const items = [h('div', { class: 'report-head-text' },
      h('h2', null, 'Report'),
      report ? h('p', { class: 'muted' },
        `${REPORT_TEXT[report.status] || report.status} · started ${fmtTime(report.created_at)}`,
        providerText(report) ? ` · ${providerText(report)}` : '')
        : h('p', { class: 'muted' }, 'The report is written section by section from the answers, scores, notes and evidence: an executive summary, the scorecard, findings per area, recommendations and a roadmap.'))];
    const actions = h('div', { class: 'actions' }, generate);
    if (report && finished(report)) {
      // The server says which formats it can make now (a helper program not
      // installed: that button is not shown).
      const base = `/api/v1/reports/${encodeURIComponent(reportId)}`;
      const downloads = report.downloads || [{ format: 'md', label: 'Markdown', available: true },
        { format: 'html', label: 'HTML', available: true }];
      for (const d of downloads.filter((x) => x.available)) {
        actions.append(h('a', { class: 'btn', href: `${base}/download?format=${encodeURIComponent(d.format)}`, download: '' }, `Download ${d.label}`));
      }
      const pdf = downloads.some((x) => x.format === 'pdf' && x.available);
      actions.append(
        h('a', { class: 'btn', href: `${base}/chart.svg`, download: 'chart.svg' }, 'Download chart'),
        h('button', { type: 'button', class: 'btn', onclick: () => window.print() }, pdf ? 'Print' : 'Print or save as PDF'));
    }
    generate.disabled = !!report && !finished(report);
    clear(head).append(...items, actions);
  }

  function sectionStatus(sec) {
    return sec.status === 'running' ? 'started' : sec.status || 'queued';
  }

  // A failed section that only failed because a section it needs failed.
  function blockedBy(sec) {
    const byId = new Map((report.sections || []).map((x) => [x.id, x]));
    for (const d of sec.depends || []) {
      const dep = byId.get(d);
      if (dep && dep.status === 'failed') return blockedBy(dep) || dep;
    }
    return null;
  }

  // The section list is updated in place (rows keep their identity), so a
  // focused Retry button survives an update and the count is announced once.
  const rows = new Map();
  let listEl = null;
  let headEl = null;
  let countEl = null;

  function rowState(sec) {
    const status = sectionStatus(sec);
    let detail = '';
    let detailClass = 'section-detail muted';
    let pill = SECTION_TEXT[status] || status;
    const blocker = status === 'failed' ? blockedBy(sec) : null;
    if (status === 'retrying') {
      const due = retryUntil.get(sec.id);
      const left = due ? (due - Date.now()) / 1000 : null;
      if (left !== null) pill = left > 0.05 ? `Retrying in ${left < 10 ? left.toFixed(1) : Math.ceil(left)} s` : 'Retrying now';
      detail = sec.error || '';
    } else if (blocker) {
      detail = `Waits for “${blocker.title || blocker.id}”: retrying that section writes this one too.`;
    } else if (status === 'failed') {
      detail = sec.error || 'failed';
      detailClass = 'section-detail error-text';
    } else if (status === 'done' && sec.warning) {
      detail = sec.warning;
    }
    return { status, pill, detail, detailClass, retry: status === 'failed' && !blocker };
  }

  function drawProgress() {
    const sections = report && report.sections ? report.sections : [];
    const done = sections.filter((x) => x.status === 'done').length;
    const failed = sections.filter((x) => x.status === 'failed').length;
    const final = finished(report);
    if (!sections.length || (final && failed === 0)) {
      clear(progressBox); // the report itself shows below
      rows.clear();
      listEl = null;
      return;
    }
    if (!listEl) {
      headEl = h('h3');
      countEl = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite' });
      listEl = h('ol', { class: 'section-list' });
      clear(progressBox).append(headEl, countEl, listEl);
    }
    headEl.textContent = final ? 'Sections' : 'Writing the report';
    const count = `${done} of ${sections.length} sections done${failed ? `, ${failed} failed` : ''}`;
    if (countEl.textContent !== count) countEl.textContent = count;
    for (const sec of sections) {
      let r = rows.get(sec.id);
      if (!r) {
        r = { li: h('li', { dataset: { section: sec.id } }), pill: h('span'), detail: h('span'), title: h('span', { class: 'section-title' }), retry: null };
        r.li.append(h('span', { class: 'section-icon', 'aria-hidden': 'true' }), r.title, r.pill, r.detail);
        listEl.append(r.li);
        rows.set(sec.id, r);
      }
      const v = rowState(sec);
      r.li.className = `section-row is-${v.status}`;
      r.title.textContent = sec.title || sec.id;
      r.pill.className = `pill pill-${v.status}`;
      if (r.pill.textContent !== v.pill) r.pill.textContent = v.pill;
      r.detail.className = v.detailClass;
      r.detail.hidden = !v.detail;
      if (r.detail.textContent !== v.detail) r.detail.textContent = v.detail;
      if (v.retry && !r.retry) {
        r.retry = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Retry ${sec.title || sec.id}`, onclick: (ev) => retrySection(sec.id, ev.currentTarget) }, 'Retry');
        r.li.append(r.retry);
      } else if (!v.retry && r.retry) {
        r.retry.remove();
        r.retry = null;
      }
    }
  }

  async function drawDoc() {
    clear(doc);
    clear(toc);
    if (!report) return;
    const ready = (report.sections || []).filter((s) => s.status === 'done' && s.html);
    if (!ready.length || closed) return;
    clear(doc).append(
      h('header', { class: 'report-title-block' },
        h('p', { class: 'report-kicker' }, st.q.title || 'Order-to-Cash maturity assessment'),
        h('h2', { id: 'report-title', class: 'report-title' }, st.meta.client),
        h('p', { class: 'muted' }, [fmtTime(report.finished_at || report.updated_at || report.created_at), providerText(report)].filter(Boolean).join(' · '))));
    for (const sec of report.sections) {
      if (sec.status !== 'done') {
        doc.append(h('section', { class: 'report-section is-missing' },
          h('h3', { class: 'report-h' }, sec.title || sec.id),
          h('p', { class: 'muted' }, sec.status === 'failed' ? `This section failed: ${sec.error || 'no reason given'}. Retry it above.` : 'Not written yet.')));
        continue;
      }
      doc.append(h('section', { class: 'report-section', dataset: { section: sec.id } },
        h('h3', { class: 'report-h', tabindex: '-1' }, sec.title || sec.id),
        h('div', { class: 'report-text' }, serverHtml(sec.html))));
    }
    // Contents: buttons that scroll (the URL's hash is the page's route).
    toc.append(h('h3', null, 'Contents'), h('ol', null, report.sections.map((sec) => h('li', null,
      h('button', {
        type: 'button', class: 'btn-link toc-link',
        onclick: () => {
          const target = doc.querySelector(`[data-section="${CSS.escape(sec.id)}"] .report-h`);
          if (target) {
            target.scrollIntoView({ behavior: 'smooth', block: 'start' });
            target.focus({ preventScroll: true });
          }
        },
      }, sec.title || sec.id)))));
  }

  async function load(id) {
    try {
      report = await api.get(`/reports/${encodeURIComponent(id)}`);
      if (report.report) report = report.report;
    } catch (e) {
      if (e.status === 404) {
        localStorage.removeItem(`o2c.report.${st.id}`);
        report = null;
        reportId = null;
      } else if (e.status !== 401) {
        toast(`The report could not be loaded: ${errorText(e)}`, 'error');
      }
      return;
    }
    reportId = id;
    if (closed) return;
    drawHead();
    drawProgress();
    await drawDoc();
    if (!finished(report)) follow();
  }

  function updateSection(id, patch) {
    if (!report) return;
    report.sections = report.sections || [];
    let sec = report.sections.find((s) => s.id === id);
    if (!sec) {
      sec = { id, title: patch.title || id };
      report.sections.push(sec);
    }
    Object.assign(sec, patch);
  }

  // Event ids are "<bus tag>-<n>". A new stream replays the report's whole
  // story; what this page already handled is skipped.
  let seen = { tag: null, n: 0 };
  function isReplay(id) {
    const m = /^(.*)-(\d+)$/.exec(id || '');
    if (!m) return false;
    const n = Number(m[2]);
    if (m[1] === seen.tag && n <= seen.n) return true;
    seen = { tag: m[1], n };
    return false;
  }

  // One SSE event: section.queued|started|retrying|done|failed {section, ...},
  // report.started, report.done {status}.
  function onEvent(type, data) {
    if (!report) return;
    const secId = data.section || data.section_id || (type.startsWith('section') ? data.id : null);
    let status = data.status || data.state || data.event || type.replace(/^section[._-]?/, '').replace(/^report[._-]?/, '');
    if (status === 'message' || status === '') status = data.type || '';
    if (secId && !/^report/.test(type)) {
      const patch = { status: status === 'running' ? 'started' : status };
      if (data.error !== undefined) patch.error = data.error;
      if (data.attempt !== undefined) patch.attempts = data.attempt;
      if (data.title) patch.title = data.title;
      if (data.warning) patch.warning = data.warning;
      if (data.reason !== undefined && patch.status === 'retrying') patch.error = data.reason;
      if (patch.status === 'started' || patch.status === 'queued') patch.error = undefined;
      if (data.label) patch.label = data.label;
      const wait = data.wait_s ?? data.wait ?? data.wait_seconds ?? data.retry_in ?? data.delay ?? (data.wait_ms !== undefined ? data.wait_ms / 1000 : undefined);
      if (patch.status === 'retrying' && wait !== undefined) retryUntil.set(secId, Date.now() + Number(wait) * 1000);
      updateSection(secId, patch);
      drawProgress();
      if (patch.status === 'done' || patch.status === 'failed') refreshSoon();
    } else if (/report/.test(type) || data.report_status || ['done', 'partial', 'failed'].includes(status)) {
      const final = data.report_status || data.status || status;
      if (/done$/.test(type) || FINAL.has(final)) {
        // The job ended (for now): close the stream before the server does,
        // then read the stored report; follow again if a retry runs.
        stopStream();
        load(reportId);
      }
    }
  }

  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      if (closed || !reportId) return;
      try {
        const r = await api.get(`/reports/${encodeURIComponent(reportId)}`);
        report = r.report || r;
        drawHead();
        drawProgress();
        await drawDoc();
        if (finished(report)) stopStream();
      } catch {
        // the stream or the next event will bring it
      }
    }, 300);
  }

  function follow() {
    stopStream();
    const es = new EventSource(`/api/v1/reports/${encodeURIComponent(reportId)}/events`);
    stream = es;
    const handler = (ev) => {
      if (isReplay(ev.lastEventId)) return;
      let data = {};
      try {
        data = JSON.parse(ev.data);
      } catch {
        data = { status: ev.data };
      }
      onEvent(ev.type === 'message' ? data.event || data.type || 'message' : ev.type, data);
    };
    for (const t of ['message', 'section', 'report', 'queued', 'started', 'running', 'retrying', 'done', 'failed',
      'section.queued', 'section.started', 'section.retrying', 'section.done', 'section.failed', 'report.done',
      'section_queued', 'section_started', 'section_retrying', 'section_done', 'section_failed', 'report_done']) {
      es.addEventListener(t, handler);
    }
    es.onerror = () => {
      // Closed by the server: poll until the report is final.
      if (es.readyState === EventSource.CLOSED && !closed && report && !finished(report)) {
        stream = null;
        startPolling();
      }
    };
    clearInterval(ticking);
    ticking = setInterval(() => {
      if (report && (report.sections || []).some((s) => s.status === 'retrying')) drawProgress();
    }, 250);
  }

  function startPolling() {
    clearInterval(poll);
    poll = setInterval(async () => {
      try {
        const r = await api.get(`/reports/${encodeURIComponent(reportId)}`);
        report = r.report || r;
        drawProgress();
        if (finished(report)) {
          clearInterval(poll);
          load(reportId);
        }
      } catch {
        // keep polling
      }
    }, 2000);
  }

  function stopStream() {
    if (stream) stream.close();
    stream = null;
    clearInterval(poll);
    clearInterval(ticking);
  }

  async function start() {
    generate.disabled = true;
    try {
      await st.flushSoon();
      const res = await api.post(`/assessments/${encodeURIComponent(st.id)}/reports`, {});
      const id = res.report_id || res.id;
      localStorage.setItem(`o2c.report.${st.id}`, id);
      reportId = id;
      report = { id, status: 'queued', sections: [] };
      rows.clear();
      listEl = null;
      retryUntil.clear();
      await load(id);
      if (report && !finished(report) && !stream) follow();
    } catch (e) {
      generate.disabled = false;
      if (e.status !== 401) toast(`The report could not be started: ${errorText(e)}`, 'error');
    }
  }

  async function retrySection(id, button) {
    button.disabled = true;
    try {
      await api.post(`/reports/${encodeURIComponent(reportId)}/sections/${encodeURIComponent(id)}/retry`, {});
      updateSection(id, { status: 'queued', error: undefined });
      report.status = 'running';
      drawHead();
      drawProgress();
      follow();
    } catch (e) {
      button.disabled = false;
      if (e.status !== 401) toast(`Retry failed: ${errorText(e)}`, 'error');
    }
  }

  drawHead();
  const id = await latestReportId(st);
  if (id) await load(id);
  return () => {
    closed = true;
    stopStream();
    clearTimeout(refreshTimer);
  };
}
