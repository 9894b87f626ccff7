// One assessment: header with the autosave state, tabs (questionnaire,
// evidence, scorecard, report), and the dialog that settles a save conflict.
import { h, clear, modal, toast, fmtTime } from './dom.js';
import { openStore } from './store.js';
import { describeAnswer } from './questionnaire.js';

const TABS = [
  { id: 'questionnaire', label: 'Questionnaire', load: () => import('./questionnaire.js') },
  { id: 'evidence', label: 'Evidence', load: () => import('./evidence.js') },
  { id: 'scorecard', label: 'Scorecard', load: () => import('./scorecard.js') },
  { id: 'report', label: 'Report', load: () => import('./report.js') },
];

function beforeUnload(ev) {
  ev.preventDefault();
  ev.returnValue = '';
}

export async function render(main, route, { user, isCurrent }) {
  const st = await openStore(route.id);
  if (!isCurrent()) return null;
  const tab = TABS.find((t) => t.id === route.tab) || TABS[0];
  const base = `#/assessments/${encodeURIComponent(st.id)}`;
  document.title = `${st.meta.client} · ${tab.label} — o2c`;

  const saveState = h('span', { class: 'save-state', role: 'status', 'aria-live': 'polite' });
  const showState = (s) => {
    saveState.textContent = s.text;
    saveState.className = `save-state save-${s.kind}`;
  };
  showState(st.state);

  const owner = st.meta.owner_name || (st.meta.owner && (st.meta.owner.name || st.meta.owner));
  const body = h('div', { class: 'assess-body' });
  clear(main).append(
    h('div', { class: 'page page-wide assess' },
      h('div', { class: 'assess-head' },
        h('div', null,
          h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Assessments'), ' / ', st.q.title || st.meta.type),
          h('h1', null, st.meta.client),
          h('p', { class: 'muted assess-meta' },
            owner && owner !== (user.username || user.name) ? `Owner: ${owner} · ` : '',
            `Created ${fmtTime(st.meta.created_at)}`),
          // The owner's account was removed: nothing here can be changed.
          st.meta.read_only ? h('p', { class: 'notice', role: 'note' },
            `Read-only: ${owner || 'the owner'}'s account was removed. An administrator can give this assessment to another account (Admin → Users → Reassign assessments).`) : null),
        h('div', { class: 'assess-save' }, saveState)),
      h('nav', { class: 'tabs', 'aria-label': 'Assessment' },
        TABS.map((t) => h('a', { href: `${base}/${t.id}`, class: 'tab', 'aria-current': t.id === tab.id ? 'page' : null }, t.label))),
      body));

  const offs = [
    st.on((what, detail) => {
      if (what === 'state') {
        showState(detail);
        if (st.pending.size) window.addEventListener('beforeunload', beforeUnload);
        else window.removeEventListener('beforeunload', beforeUnload);
      }
      if (what === 'merged' && detail.changed.length && !detail.conflicts) {
        const names = detail.changed.map((qid) => labelOf(st, qid)).join(', ');
        toast(`Updated with answers changed elsewhere: ${names}.`);
      }
    }),
  ];
  st.conflictHandler = (rows, others) => conflictDialog(st, rows, others);
  st.start();

  const mod = await tab.load();
  if (!isCurrent()) {
    offs.forEach((off) => off());
    return null;
  }
  const cleanupTab = await mod.renderTab(body, st, route, { user, isCurrent });
  return () => {
    offs.forEach((off) => off());
    if (typeof cleanupTab === 'function') cleanupTab();
    st.flushSoon();
  };
}

function labelOf(st, qid) {
  const q = st.q.byId.get(qid);
  return q ? q.label || q.text : qid;
}

// Both sides changed the same questions: show each, let the user keep theirs
// or take the other; nothing is dropped without a choice. Escape keeps yours.
function conflictDialog(st, rows, others) {
  return modal('Someone else changed these answers', (close) => {
    const choices = {};
    const table = h('table', { class: 'table conflict-table' },
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Question'),
        h('th', { scope: 'col' }, 'Your answer'),
        h('th', { scope: 'col' }, 'Saved elsewhere'),
        h('th', { scope: 'col' }, 'Keep'))),
      h('tbody', null, rows.map((row) => {
        const q = st.q.byId.get(row.qid);
        const name = `keep-${row.qid}`;
        choices[row.qid] = 'mine';
        const radio = (value, text) => {
          const input = h('input', { type: 'radio', name, value, checked: value === 'mine', onchange: () => { choices[row.qid] = value; } });
          return h('label', { class: 'choice-inline' }, input, ` ${text}`);
        };
        const by = row.theirs && row.theirs.updated_by ? ` (by ${row.theirs.updated_by})` : '';
        return h('tr', null,
          h('th', { scope: 'row' }, q ? q.label || q.text : row.qid),
          h('td', null, describeAnswer(q, row.mine)),
          h('td', null, describeAnswer(q, row.theirs), h('span', { class: 'muted' }, by)),
          h('td', null, h('div', { class: 'choice-group', role: 'radiogroup', 'aria-label': `Keep which answer to ${q ? q.label || q.text : row.qid}` },
            radio('mine', 'Mine'), radio('theirs', 'Theirs'))));
      })));
    const setAll = (value) => {
      for (const row of rows) choices[row.qid] = value;
      close({ ...choices });
    };
    return h('div', { class: 'conflict' },
      h('p', null, 'While you were editing, these answers were saved from another window or by a colleague. Choose which to keep; the other one is shown here so you can copy anything you need.'),
      table,
      others.length ? h('p', { class: 'muted' }, `Also changed elsewhere and now shown in your form: ${others.map((qid) => labelOf(st, qid)).join(', ')}.`) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => setAll('theirs') }, 'Take all theirs'),
        h('button', { type: 'button', class: 'btn', onclick: () => setAll('mine') }, 'Keep all mine'),
        h('button', { type: 'button', class: 'btn btn-primary', onclick: () => close({ ...choices }) }, 'Apply choices')));
  }, { wide: true }).then((result) => result || Object.fromEntries(rows.map((r) => [r.qid, 'mine'])));
}
