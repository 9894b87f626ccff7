// Scorecard: radar of score against target per area, the table of levels and
// gaps, and each KPI against its benchmark.
import { api, errorText } from './api.js';
import { h, clear, fmtScore, fmtPercent, serverHtml } from './dom.js';

function gapCell(gap) {
  if (gap === null || gap === undefined) return h('td', { class: 'num muted' }, '—');
  const g = Number(gap);
  const text = g > 0 ? `${fmtScore(g)} short` : g < 0 ? `${fmtScore(-g)} ahead` : 'on target';
  return h('td', { class: ['num', 'nowrap', g > 0 ? 'gap-short' : 'gap-met'] }, text);
}

export function areaTable(st, scores) {
  return h('table', { class: 'table scorecard-table' },
    h('caption', null, 'Maturity per area'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Area'),
      h('th', { scope: 'col', class: 'num' }, 'Score'),
      h('th', { scope: 'col' }, 'Level'),
      h('th', { scope: 'col', class: 'num' }, 'Target'),
      h('th', { scope: 'col', class: 'num' }, 'Gap'),
      h('th', { scope: 'col', class: 'num' }, 'Answered'))),
    h('tbody', null, (scores.areas || []).map((a) => h('tr', null,
      h('th', { scope: 'row' }, a.title),
      h('td', { class: 'num' }, fmtScore(a.score)),
      h('td', null, a.level ? `${a.level} ${a.level_name}` : a.level_name || 'Not assessed'),
      h('td', { class: 'num' }, fmtScore(a.target ?? st.targetOf(a.id))),
      gapCell(a.gap),
      h('td', { class: 'num' }, fmtPercent(a.completeness))))),
    scores.overall ? h('tfoot', null, h('tr', null,
      h('th', { scope: 'row' }, 'Overall'),
      h('td', { class: 'num' }, fmtScore(scores.overall.score)),
      h('td', null, scores.overall.level ? `${scores.overall.level} ${scores.overall.level_name}` : scores.overall.level_name || 'Not assessed'),
      h('td', { class: 'num' }, fmtScore(scores.overall.target)),
      gapCell(scores.overall.gap),
      h('td', { class: 'num' }, fmtPercent(scores.overall.completeness)))) : null);
}

// hidden: the client's answers say it is not measured; unanswered includes a KPI waiting on an earlier answer.
const KPI_STATUS = { hidden: 'Not measured', unanswered: 'Not answered yet', 'not applicable': 'Not applicable' };

export function kpiTable(scores) {
  const kpis = scores.kpis || [];
  if (!kpis.length) return null;
  return h('table', { class: 'table kpi-table' },
    h('caption', null, 'KPIs against benchmark'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'KPI'),
      h('th', { scope: 'col', class: 'num' }, 'Value'),
      h('th', { scope: 'col' }, 'Position'),
      h('th', { scope: 'col' }, 'Benchmark'))),
    h('tbody', null, kpis.map((k) => h('tr', null,
      h('th', { scope: 'row' }, k.name || k.id),
      h('td', { class: 'num' }, k.status === 'answered' ? `${k.value}${k.unit ? ` ${k.unit}` : ''}` : h('span', { class: 'muted' }, KPI_STATUS[k.status] || k.status || '—')),
      h('td', null, k.band ? h('span', { class: ['band', k.score >= 4 ? 'band-good' : k.score === 3 ? 'band-mid' : k.score ? 'band-low' : 'band-none'] }, k.band) : '—'),
      h('td', { class: 'benchmark-cell' }, k.benchmark_text || 'no public benchmark', k.source ? h('span', { class: 'muted' }, ` — ${k.source}`) : null)))));
}

// The radar of the saved answers, drawn by the server (generation/chart.lua,
// as in the report): the UI draws no chart of its own.
async function chartOf(st) {
  try {
    return serverHtml(await api.get(`/assessments/${encodeURIComponent(st.id)}/chart.svg`));
  } catch (e) {
    if (e.status === 401) return null;
    return h('p', { class: 'muted' }, `The chart could not be loaded: ${errorText(e)}`);
  }
}

export async function renderTab(body, st, route, { isCurrent }) {
  clear(body).append(h('p', { class: 'muted' }, 'Loading the scorecard…'));
  let scores = null;
  let generation = null;
  let note = null;
  if (st.pending.size) {
    scores = st.scores;
    note = 'Some answers are still being saved: this is the live preview of the answers on screen.';
  } else {
    try {
      const data = await api.get(`/assessments/${encodeURIComponent(st.id)}/scores`);
      scores = data.scores || data;
      generation = data.generation || scores.generation;
    } catch (e) {
      if (e.status === 401) return null;
      scores = st.scores;
      note = `The stored scores could not be loaded (${errorText(e)}); showing the live preview.`;
    }
  }
  const chart = scores && scores.overall ? await chartOf(st) : null;
  if (!isCurrent()) return null;
  if (!scores || !scores.overall) {
    clear(body).append(h('p', { class: 'muted' }, 'No scores yet: answer some questions first.'));
    return null;
  }
  const o = scores.overall;
  clear(body).append(
    h('div', { class: 'scorecard' },
      h('h2', { class: 'visually-hidden' }, 'Scorecard'),
      note ? h('p', { class: 'notice' }, note) : null,
      h('div', { class: 'summary-cards' },
        h('div', { class: 'card stat' }, h('span', { class: 'stat-label' }, 'Overall score'), h('span', { class: 'stat-value' }, fmtScore(o.score)), h('span', { class: 'stat-sub' }, o.level_name || 'Not assessed')),
        h('div', { class: 'card stat' }, h('span', { class: 'stat-label' }, 'Target'), h('span', { class: 'stat-value' }, fmtScore(o.target)), h('span', { class: 'stat-sub' }, o.gap > 0 ? `${fmtScore(o.gap)} to go` : 'met')),
        h('div', { class: 'card stat' }, h('span', { class: 'stat-label' }, 'Answered'), h('span', { class: 'stat-value' }, fmtPercent(o.completeness)), h('span', { class: 'stat-sub' }, o.total ? `${o.answered} of ${o.total} questions` : ''))),
      h('div', { class: 'scorecard-grid' },
        h('figure', { class: 'card chart-card' }, chart,
          h('figcaption', { class: 'muted' }, 'Blue: score. Dashed amber: target. Rings mark levels 1 to 5.')),
        h('div', { class: 'card' }, areaTable(st, scores))),
      h('div', { class: 'card' }, kpiTable(scores) || h('p', { class: 'muted' }, 'No KPI questions in this assessment.')),
      generation ? h('p', { class: 'muted small' }, `Computed by scripts generation ${String(generation).slice(0, 12)}.`) : null));
  return null;
}
