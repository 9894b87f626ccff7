// Dashboard: the assessments this user may see (an admin sees everyone's,
// with the owner), and "New assessment".
import { api, listOf, errorText, questionnaire } from './api.js';
import { h, clear, fmtScore, progress, timeEl, modal, confirmDialog, toast, nextId } from './dom.js';
import { navigate } from './app.js';

const LEVELS = ['Initial', 'Managed', 'Defined', 'Quantitatively managed', 'Optimizing'];

function scoresOf(a) {
  if (a.summary && (a.summary.score !== undefined || a.summary.completeness !== undefined)) {
    const m = a.summary;
    return { score: m.score, level_name: m.level_name, completeness: m.completeness };
  }
  const s = a.scores || a.score_summary || null;
  if (s && s.overall) return s.overall;
  if (s && typeof s === 'object') return s;
  if (a.overall) return a.overall;
  if (a.score !== undefined || a.completeness !== undefined) {
    return { score: a.score, level: a.level, level_name: a.level_name, completeness: a.completeness };
  }
  return null;
}

function reportOf(a) {
  const r = a.report || a.latest_report || a.last_report;
  if (r && typeof r === 'object') return r;
  if (a.summary && a.summary.report_status) return { status: a.summary.report_status, id: a.summary.report_id };
  if (a.report_status) return { status: a.report_status, id: a.report_id };
  return null;
}

const REPORT_TEXT = { done: 'Ready', partial: 'Partly failed', failed: 'Failed', running: 'Writing…', queued: 'Queued', pending: 'Queued' };

function reportCell(a) {
  const r = reportOf(a);
  if (!r || !r.status) return h('span', { class: 'muted' }, 'None yet');
  const text = REPORT_TEXT[r.status] || r.status;
  return h('a', { href: `#/assessments/${encodeURIComponent(a.id)}/report`, class: ['pill', `pill-${r.status}`] }, text);
}

function scoreCell(o) {
  if (!o || o.score === undefined || o.score === null) return h('span', { class: 'muted' }, 'Not scored');
  const name = o.level_name || LEVELS[(o.level || Math.floor(o.score)) - 1] || '';
  return h('span', null, h('strong', null, fmtScore(o.score)), h('span', { class: 'muted' }, ` · ${name}`));
}

function completenessCell(o) {
  if (!o || o.completeness === undefined || o.completeness === null) return h('span', { class: 'muted' }, '—');
  const pct = Math.round(o.completeness * 100);
  return h('span', { class: 'cell-progress' }, progress(o.completeness, `${pct}% answered`), h('span', { class: 'num' }, `${pct}%`));
}

export async function render(main, route, { user, isCurrent }) {
  document.title = 'Assessments — o2c';
  const isAdmin = user.role === 'admin';
  const tbodyHost = h('div', { class: 'table-host' }, h('p', { class: 'muted' }, 'Loading assessments…'));
  const newBtn = h('button', { type: 'button', class: 'btn btn-primary', onclick: () => newAssessment() }, 'New assessment');
  clear(main).append(
    h('div', { class: 'page' },
      h('div', { class: 'page-head' },
        h('div', null,
          h('h1', null, isAdmin ? 'All assessments' : 'Your assessments'),
          h('p', { class: 'muted' }, 'Order-to-Cash maturity, scored from 1 (Initial) to 5 (Optimizing) against a target per area.')),
        newBtn),
      tbodyHost));

  let items = [];
  const titles = new Map();
  try {
    const [data, types] = await Promise.all([api.get('/assessments?limit=200'), api.get('/assessment-types').catch(() => [])]);
    items = listOf(data, 'assessments');
    for (const t of listOf(types, 'types')) titles.set(t.id, t.title);
  } catch (e) {
    if (e.status === 401) return;
    clear(tbodyHost).append(h('p', { class: 'error-text', role: 'alert' }, `The assessments could not be loaded: ${errorText(e)}`));
    return;
  }
  if (!isCurrent()) return;
  if (items.length === 0) {
    clear(tbodyHost).append(
      h('div', { class: 'empty' },
        h('h2', null, 'No assessments yet'),
        h('p', null, 'Start one for a client with “New assessment”. Answers save as you go; the score and report follow from them.')));
    return;
  }

  const rows = items.map((a) => {
    const scoreTd = h('td', { 'data-label': 'Score' }, scoreCell(scoresOf(a)));
    const complTd = h('td', { 'data-label': 'Completeness' }, completenessCell(scoresOf(a)));
    const owner = a.owner_name || (a.owner && (a.owner.name || a.owner)) || a.owner_id || '—';
    const del = h('button', {
      type: 'button', class: 'btn btn-small btn-quiet', 'aria-label': `Delete the assessment of ${a.client}`,
      onclick: async () => {
        const ok = await confirmDialog('Delete this assessment?', `The assessment of ${a.client} and its answers, evidence and reports will be removed. This is recorded in the audit log.`, 'Delete', true);
        if (!ok) return;
        try {
          await api.del(`/assessments/${encodeURIComponent(a.id)}`);
          toast(`Deleted the assessment of ${a.client}.`);
          navigate('#/');
        } catch (e) {
          toast(`Deleting failed: ${errorText(e)}`, 'error');
        }
      },
    }, 'Delete');
    // data-label: on a narrow screen each row is a small card and every
    // cell shows its column's name (app.css, .dash-table).
    const tr = h('tr', null,
      h('th', { scope: 'row' }, h('a', { href: `#/assessments/${encodeURIComponent(a.id)}` }, a.client || '(no client name)')),
      h('td', { 'data-label': 'Type' }, titles.get(a.type) || a.type || '—'),
      isAdmin ? h('td', { 'data-label': 'Owner' }, String(owner)) : null,
      complTd,
      scoreTd,
      h('td', { 'data-label': 'Last change' }, timeEl(a.updated_at || a.created_at)),
      h('td', { 'data-label': 'Report' }, reportCell(a)),
      h('td', { class: 'cell-actions' }, del));
    return { a, tr, scoreTd, complTd };
  });

  clear(tbodyHost).append(
    h('table', { class: 'table dash-table' },
      h('caption', { class: 'visually-hidden' }, 'Assessments'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Client'),
        h('th', { scope: 'col' }, 'Type'),
        isAdmin ? h('th', { scope: 'col' }, 'Owner') : null,
        h('th', { scope: 'col' }, 'Completeness'),
        h('th', { scope: 'col' }, 'Score'),
        h('th', { scope: 'col' }, 'Last change'),
        h('th', { scope: 'col' }, 'Report'),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', null, rows.map((r) => r.tr))));

  // Rows the list did not score: ask for their scores, a few at a time.
  const missing = rows.filter((r) => !scoresOf(r.a)).slice(0, 60);
  const worker = async () => {
    while (missing.length && isCurrent()) {
      const r = missing.shift();
      try {
        const data = await api.get(`/assessments/${encodeURIComponent(r.a.id)}/scores`);
        const o = (data.scores || data).overall;
        if (o) {
          clear(r.scoreTd).append(scoreCell(o));
          clear(r.complTd).append(completenessCell(o));
        }
      } catch {
        // leave "Not scored"
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

// The "New assessment" dialog: client, type, target level per area.
async function newAssessment() {
  let types = [];
  try {
    types = listOf(await api.get('/assessment-types'), 'types');
  } catch (e) {
    toast(`The assessment types could not be loaded: ${errorText(e)}`, 'error');
    return;
  }
  if (types.length === 0) {
    toast('No assessment type is loaded: see the status page for script errors.', 'error');
    return;
  }
  await modal('New assessment', (close) => {
    const clientId = nextId('client');
    const typeId = nextId('type');
    const client = h('input', { id: clientId, name: 'client', type: 'text', required: true, maxlength: '200', autocomplete: 'off' });
    const type = h('select', { id: typeId, name: 'type' }, types.map((t) => h('option', { value: t.id }, t.title || t.id)));
    const targetsHost = h('div', { class: 'targets' });
    const message = h('p', { class: 'form-message', role: 'alert' });
    const create = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create');
    let areas = [];

    async function loadTargets() {
      clear(targetsHost).append(h('p', { class: 'muted' }, 'Loading areas…'));
      try {
        const q = await questionnaire(type.value);
        areas = (q.questionnaire || q).areas || [];
      } catch (e) {
        clear(targetsHost).append(h('p', { class: 'error-text' }, errorText(e)));
        return;
      }
      clear(targetsHost).append(
        h('fieldset', { class: 'targets-fieldset' },
          h('legend', null, 'Target level per area'),
          h('p', { class: 'hint' }, 'The level the client aims for; the scorecard shows the gap to it. Defaults come from the assessment script.'),
          h('div', { class: 'targets-grid' }, areas.map((a) => {
            const id = nextId('target');
            const def = a.target || 3;
            return h('div', { class: 'field field-inline' },
              h('label', { for: id }, a.title),
              h('select', { id, name: `target-${a.id}`, dataset: { area: a.id } },
                LEVELS.map((name, i) => h('option', { value: String(i + 1), selected: i + 1 === def }, `${i + 1} ${name}`))));
          }))));
    }
    type.addEventListener('change', loadTargets);
    loadTargets();

    const form = h('form', { class: 'form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: clientId }, 'Client'), client),
      h('div', { class: 'field' }, h('label', { for: typeId }, 'Assessment type'), type),
      targetsHost,
      message,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => close(null) }, 'Cancel'),
        create));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!client.value.trim()) {
        message.textContent = 'Enter the client’s name.';
        client.focus();
        return;
      }
      const targets = {};
      for (const sel of form.querySelectorAll('select[data-area]')) targets[sel.dataset.area] = Number(sel.value);
      create.disabled = true;
      try {
        const res = await api.post('/assessments', { type: type.value, client: client.value.trim(), targets });
        close(res);
        navigate(`#/assessments/${encodeURIComponent(res.id || (res.assessment && res.assessment.id))}`);
      } catch (e) {
        create.disabled = false;
        message.textContent = `The assessment could not be created: ${errorText(e)}`;
      }
    });
    return form;
  }, { wide: true });
}
