// The questionnaire: areas as steps with progress, every question type, the
// evidence note per answer, conditional questions shown and hidden as answers
// change, and the live score preview beside the questions.
import { h, clear, nextId, fmtScore, progress } from './dom.js';

const LEVELS = ['Initial', 'Managed', 'Defined', 'Quantitatively managed', 'Optimizing'];
const NA = 'na';

// A human sentence for an answer (conflict dialog, summaries).
export function describeAnswer(q, a) {
  if (!a || (a.value === undefined && !a.note)) return 'No answer';
  let text;
  const v = a.value;
  if (v === undefined) text = 'No value';
  else if (v === NA) text = 'Not applicable';
  else if (!q) text = JSON.stringify(v);
  else if (q.type === 'scale') text = `Level ${v} (${LEVELS[v - 1] || '?'})`;
  else if (q.type === 'single') text = (q.choices.find((c) => c.id === v) || { label: v }).label;
  else if (q.type === 'multi') text = Array.isArray(v) && v.length ? v.map((id) => (q.choices.find((c) => c.id === id) || { label: id }).label).join('; ') : 'None of these';
  else if (q.type === 'kpi') text = `${v}${q.unit ? ` ${q.unit}` : ''}`;
  else text = `“${String(v).slice(0, 160)}${String(v).length > 160 ? '…' : ''}”`;
  if (a.note) text += ` — note: “${a.note.slice(0, 120)}${a.note.length > 120 ? '…' : ''}”`;
  return text;
}

// Parses a number typed in a KPI field: "96.5", "96,5", "1 250". NaN if not one.
export function parseNumber(text) {
  let t = String(text).trim().replace(/[\s\u00a0]/g, '');
  if (/^-?\d+,\d+$/.test(t)) t = t.replace(',', '.');
  if (!/^-?(\d+\.?\d*|\.\d+)$/.test(t)) return NaN;
  return Number(t);
}

function rangeText(q) {
  const unit = q.unit ? ` ${q.unit}` : '';
  return `${q.min ?? '…'} to ${q.max ?? '…'}${unit}`;
}

export function kpiError(q, text) {
  if (String(text).trim() === '') return null;
  const n = parseNumber(text);
  if (Number.isNaN(n)) return `“${text}” is not a number. Enter a number from ${rangeText(q)}.`;
  if ((q.min !== undefined && n < q.min) || (q.max !== undefined && n > q.max)) {
    return `${n} is outside the valid range: enter a number from ${rangeText(q)}.`;
  }
  return null;
}

// ---------------------------------------------------------------- one question

function buildQuestion(st, q, number, announce) {
  const qid = q.id;
  const wrap = h('div', { class: ['question', `question-${q.type}`], id: `q-${qid}`, dataset: { qid } });
  const helpId = q.help ? nextId('help') : null;
  const help = q.help ? h('p', { class: 'hint', id: helpId }, q.help) : null;
  const optional = q.required === false && q.type !== 'text' ? h('span', { class: 'tag' }, 'Optional') : null;
  const conditional = q.conditional ? h('span', { class: 'tag tag-follow' }, 'Follow-up') : null;
  const errorBox = h('p', { class: 'field-error', id: nextId('err'), 'aria-live': 'polite' });
  const current = () => st.answer(qid) || {};
  const note = () => current().note;
  const setValue = (value, delay) => st.set(qid, { value, note: note() }, delay);

  let sync = () => {};
  let control;
  const legendText = [h('span', { class: 'q-num' }, `${number}.`), ' ', q.text];

  if (q.type === 'scale' || q.type === 'single') {
    const name = `a-${qid}`;
    const options = q.type === 'scale'
      ? (q.levels || []).map((desc, i) => ({ value: i + 1, title: `${i + 1} · ${LEVELS[i]}`, desc }))
      : (q.choices || []).map((c) => ({ value: c.id, title: c.label, desc: null }));
    if (q.na_allowed) options.push({ value: NA, title: 'Not applicable', desc: null, na: true });
    const inputs = options.map((o) => {
      const input = h('input', { type: 'radio', name, value: String(o.value), onchange: () => setValue(o.value, 0) });
      input._value = o.value;
      const label = h('label', { class: ['option', o.na && 'option-na', q.type === 'scale' && 'option-scale'] }, input,
        h('span', { class: 'option-text' },
          h('span', { class: 'option-title' }, o.title),
          o.desc ? h('span', { class: 'option-desc' }, o.desc) : null));
      return { input, label };
    });
    control = h('fieldset', { class: 'options', 'aria-describedby': helpId },
      h('legend', null, legendText, optional, conditional), help,
      h('div', { class: ['option-list', q.type === 'scale' && 'option-list-scale'] }, inputs.map((i) => i.label)));
    sync = () => {
      const v = current().value;
      for (const { input, label } of inputs) {
        input.checked = v !== undefined && input._value === v;
        label.classList.toggle('is-checked', input.checked);
      }
    };
  } else if (q.type === 'multi') {
    const boxes = (q.choices || []).map((c) => {
      const input = h('input', { type: 'checkbox', value: c.id, onchange: () => {
        const ticked = boxes.filter((b) => b.input.checked).map((b) => b.id);
        setValue(ticked, 0);
      } });
      return { id: c.id, input, label: h('label', { class: 'option' }, input, h('span', { class: 'option-text' }, h('span', { class: 'option-title' }, c.label))) };
    });
    const none = h('input', { type: 'checkbox', onchange: () => setValue(none.checked ? [] : undefined, 0) });
    const na = q.na_allowed ? h('input', { type: 'checkbox', onchange: () => setValue(na.checked ? NA : undefined, 0) }) : null;
    control = h('fieldset', { class: 'options', 'aria-describedby': helpId },
      h('legend', null, legendText, optional, conditional), help,
      h('p', { class: 'hint' }, 'Tick every one that applies.'),
      h('div', { class: 'option-list' }, boxes.map((b) => b.label),
        h('label', { class: 'option option-na' }, none, h('span', { class: 'option-text' }, h('span', { class: 'option-title' }, 'None of these'))),
        na ? h('label', { class: 'option option-na' }, na, h('span', { class: 'option-text' }, h('span', { class: 'option-title' }, 'Not applicable'))) : null));
    sync = () => {
      const v = current().value;
      const list = Array.isArray(v) ? v : [];
      for (const b of boxes) {
        b.input.checked = list.includes(b.id);
        b.input.disabled = v === NA;
        b.label.classList.toggle('is-checked', b.input.checked);
      }
      none.checked = Array.isArray(v) && v.length === 0;
      none.disabled = v === NA;
      if (na) na.checked = v === NA;
    };
  } else if (q.type === 'kpi') {
    const id = nextId('kpi');
    const input = h('input', {
      id, type: 'text', inputmode: 'decimal', autocomplete: 'off', class: 'kpi-input',
      'aria-describedby': [helpId, errorBox.id].filter(Boolean).join(' '),
    });
    const na = q.na_allowed ? h('input', { type: 'checkbox', id: nextId('na') }) : null;
    const validate = () => {
      const msg = kpiError(q, input.value);
      errorBox.textContent = msg || '';
      input.setAttribute('aria-invalid', msg ? 'true' : 'false');
      wrap.classList.toggle('has-error', !!msg);
      return msg;
    };
    const commit = (delay) => {
      if (validate()) return;
      const text = input.value.trim();
      setValue(text === '' ? undefined : parseNumber(text), delay);
    };
    input.addEventListener('input', () => commit(700));
    input.addEventListener('blur', () => {
      commit(0);
      st.flushSoon();
    });
    if (na) {
      na.addEventListener('change', () => {
        if (na.checked) {
          input.value = '';
          validate();
          setValue(NA, 0);
        } else {
          setValue(undefined, 0);
        }
      });
    }
    const bm = q.benchmark || {};
    const figures = bm.figures || bm.text;
    control = h('div', { class: 'kpi' },
      h('label', { for: id, class: 'q-label' }, legendText, optional, conditional),
      help,
      h('div', { class: 'kpi-row' },
        input,
        h('span', { class: 'kpi-unit' }, q.unit || ''),
        h('span', { class: 'hint kpi-range' }, `Valid: ${rangeText(q)}`)),
      errorBox,
      na ? h('label', { class: 'option option-na option-inline', for: na.id }, na, h('span', { class: 'option-title' }, 'Not applicable / not known')) : null,
      figures ? h('p', { class: 'benchmark' }, h('strong', null, 'Benchmark: '), figures, bm.source ? h('span', { class: 'muted' }, ` — source: ${bm.source}`) : null) : null);
    sync = () => {
      const v = current().value;
      if (na) na.checked = v === NA;
      input.disabled = v === NA;
      // Keep what the user is typing (even invalid) while the field has focus.
      if (document.activeElement === input) return;
      if (wrap.classList.contains('has-error') && v === undefined) return;
      input.value = typeof v === 'number' ? String(v) : '';
      validate();
    };
  } else {
    // free text
    const id = nextId('text');
    const max = q.max_length || 4000;
    const counter = h('span', { class: 'hint counter' });
    const area = h('textarea', { id, rows: '4', maxlength: String(max), 'aria-describedby': helpId });
    const count = () => { counter.textContent = `${area.value.length} / ${max}`; };
    area.addEventListener('input', () => {
      count();
      setValue(area.value === '' ? undefined : area.value, 900);
    });
    area.addEventListener('blur', () => st.flushSoon());
    control = h('div', { class: 'field' },
      h('label', { for: id, class: 'q-label' }, legendText, conditional), help, area, counter);
    sync = () => {
      if (document.activeElement === area) return;
      const v = current().value;
      area.value = typeof v === 'string' ? v : '';
      count();
    };
  }

  // Evidence note (every scored question).
  let syncNote = () => {};
  let noteBlock = null;
  if (q.type !== 'text') {
    const id = nextId('note');
    const noteArea = h('textarea', { id, rows: '3', maxlength: '2000' });
    const summary = h('summary', null, 'Evidence note');
    noteBlock = h('details', { class: 'note' }, summary,
      h('div', { class: 'field' },
        h('label', { for: id }, `Evidence note for “${q.label || q.text}”`),
        noteArea,
        h('p', { class: 'hint' }, 'What you saw or were told: documents, systems, examples. It goes into the report’s findings.')));
    noteArea.addEventListener('input', () => {
      st.set(qid, { value: current().value, note: noteArea.value }, 900);
      summary.textContent = noteArea.value ? 'Evidence note (written)' : 'Evidence note';
    });
    noteArea.addEventListener('blur', () => st.flushSoon());
    syncNote = () => {
      const n = note() || '';
      if (document.activeElement !== noteArea) noteArea.value = n;
      summary.textContent = n ? 'Evidence note (written)' : 'Evidence note';
      if (n && !noteBlock.open && !noteBlock.dataset.touched) noteBlock.open = true;
    };
    noteBlock.addEventListener('toggle', () => { noteBlock.dataset.touched = '1'; });
  }

  const clearBtn = h('button', {
    type: 'button', class: 'btn-link clear-answer',
    'aria-label': `Clear the answer to “${q.label || q.text}”`,
    onclick: () => {
      st.set(qid, note() ? { note: note() } : null, 0);
      if (q.type === 'kpi') {
        const input = wrap.querySelector('.kpi-input');
        input.value = '';
        errorBox.textContent = '';
        wrap.classList.remove('has-error');
      }
      refresh();
    },
  }, 'Clear answer');

  const footer = h('div', { class: 'question-foot' }, noteBlock, clearBtn);
  const refused = h('p', { class: 'field-error', role: 'alert' });
  wrap.append(control, refused, footer);

  function refresh() {
    sync();
    syncNote();
    clearBtn.hidden = current().value === undefined;
    wrap.classList.toggle('is-answered', current().value !== undefined);
  }
  refresh();
  return { wrap, refresh, refused, q, announce };
}

// ---------------------------------------------------------------- score preview

function previewPanel(st) {
  const box = h('div', { class: 'preview-body' });
  const draw = () => {
    const s = st.scores;
    clear(box);
    if (!s || !s.overall) {
      box.append(h('p', { class: 'muted' }, 'The score appears as you answer.'));
      return;
    }
    const o = s.overall;
    box.append(
      h('div', { class: 'preview-overall' },
        h('span', { class: 'big-score' }, o.score !== undefined && o.score !== null ? fmtScore(o.score) : '—'),
        h('span', { class: 'preview-level' }, o.level_name || 'Not assessed'),
        h('span', { class: 'muted' }, `Overall · target ${fmtScore(o.target)}`)),
      h('p', { class: 'preview-compl' }, progress(o.completeness, `${Math.round((o.completeness || 0) * 100)}% answered`),
        h('span', { class: 'muted' }, ` ${Math.round((o.completeness || 0) * 100)}% answered`)),
      h('ul', { class: 'preview-areas' }, (s.areas || []).map((a) => {
        const target = st.targetOf(a.id);
        const score = a.score;
        const bar = h('span', { class: 'mini-bar' });
        const fill = h('span', { class: ['mini-fill', score !== undefined && score !== null && score < target ? 'below' : 'met'] });
        fill.style.width = `${score ? (score / 5) * 100 : 0}%`;
        const mark = h('span', { class: 'mini-target', title: `Target ${target}` });
        mark.style.left = `${(target / 5) * 100}%`;
        bar.append(fill, mark);
        return h('li', null,
          h('span', { class: 'preview-area-name', title: a.title }, a.title),
          h('span', { class: 'preview-area-score' }, score !== undefined && score !== null ? fmtScore(score) : '—'),
          h('span', { class: 'visually-hidden' }, ` against target ${target}`),
          bar);
      })));
  };
  draw();
  return { box, draw };
}

// ---------------------------------------------------------------- the tab

export async function renderTab(body, st, route) {
  const areas = st.q.areas;
  let areaIndex = Math.max(0, areas.findIndex((a) => a.id === route.area));
  if (!route.area) {
    const last = sessionStorage.getItem(`o2c.area.${st.id}`);
    const i = areas.findIndex((a) => a.id === last);
    if (i >= 0) areaIndex = i;
  }
  const area = areas[areaIndex];
  sessionStorage.setItem(`o2c.area.${st.id}`, area.id);
  const base = `#/assessments/${encodeURIComponent(st.id)}`;

  // steps
  const stepItems = areas.map((a, i) => {
    const count = h('span', { class: 'step-count' });
    const link = h('a', { href: `${base}/areas/${encodeURIComponent(a.id)}`, class: 'step', 'aria-current': i === areaIndex ? 'step' : null },
      h('span', { class: 'step-num', 'aria-hidden': 'true' }, String(i + 1)),
      h('span', { class: 'step-main' }, h('span', { class: 'step-title' }, a.title), count));
    return { a, li: h('li', null, link), count, link };
  });
  const drawSteps = () => {
    const byId = new Map(((st.scores && st.scores.areas) || []).map((x) => [x.id, x]));
    for (const it of stepItems) {
      const s = byId.get(it.a.id);
      const answered = s ? s.answered ?? Math.round((s.completeness || 0) * (s.total || 0)) : 0;
      const total = s ? s.total ?? it.a.questionList.length : it.a.questionList.length;
      it.count.textContent = `${answered} of ${total} answered`;
      const done = total > 0 && answered >= total;
      it.li.classList.toggle('is-done', done);
      it.link.querySelector('.step-num').textContent = done ? '✓' : String(areas.indexOf(it.a) + 1);
    }
  };

  // questions
  const live = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  const announce = (text) => { live.textContent = text; };
  const built = area.questionList.map((q, i) => buildQuestion(st, q, i + 1, announce));
  const byQid = new Map(built.map((b) => [b.q.id, b]));
  const applyVisibility = (changed) => {
    for (const b of built) {
      const hide = st.hidden.has(b.q.id);
      if (b.wrap.hidden !== hide) {
        b.wrap.hidden = hide;
        if (!hide && changed.includes(b.q.id)) {
          b.wrap.classList.add('appear');
          setTimeout(() => b.wrap.classList.remove('appear'), 1600);
          announce(`A follow-up question appeared: ${b.q.label || b.q.text}`);
        } else if (hide && changed.includes(b.q.id)) {
          announce(`A follow-up question no longer applies: ${b.q.label || b.q.text}`);
        }
      }
    }
  };
  applyVisibility([]);

  const prev = areas[areaIndex - 1];
  const next = areas[areaIndex + 1];
  const nav = h('div', { class: 'area-nav' },
    prev ? h('a', { class: 'btn', href: `${base}/areas/${encodeURIComponent(prev.id)}` }, `← ${prev.title}`) : h('span'),
    next ? h('a', { class: 'btn btn-primary', href: `${base}/areas/${encodeURIComponent(next.id)}` }, `Next: ${next.title} →`)
      : h('a', { class: 'btn btn-primary', href: `${base}/scorecard` }, 'See the scorecard →'));

  const preview = previewPanel(st);
  clear(body).append(
    h('div', { class: 'q-layout' },
      h('nav', { class: 'steps', 'aria-label': 'Areas' }, h('ol', null, stepItems.map((s) => s.li))),
      h('section', { class: 'q-area', 'aria-labelledby': 'area-title' },
        h('p', { class: 'step-of' }, `Area ${areaIndex + 1} of ${areas.length}`),
        h('h2', { id: 'area-title', tabindex: '-1' }, area.title),
        area.description ? h('p', { class: 'muted area-desc' }, area.description) : null,
        h('p', { class: 'muted area-target' }, `Target level: ${st.targetOf(area.id)} (${LEVELS[st.targetOf(area.id) - 1] || ''})`),
        h('div', { class: 'questions' }, built.map((b) => b.wrap)),
        live,
        nav),
      h('aside', { class: 'preview', 'aria-labelledby': 'preview-title' },
        h('h2', { id: 'preview-title', class: 'preview-title' }, 'Live score'),
        preview.box)));
  drawSteps();
  // When the steps scroll sideways (narrow windows), show the current one.
  const list = body.querySelector('.steps ol');
  const current = body.querySelector('.step[aria-current="step"]');
  if (list && current && list.scrollWidth > list.clientWidth) list.scrollLeft = current.parentElement.offsetLeft - 8;
  if (route.area) {
    const heading = body.querySelector('#area-title');
    heading.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  const off = st.on((what, detail) => {
    if (what === 'answer') {
      const b = byQid.get(detail);
      if (b) {
        b.refused.textContent = '';
        b.refresh();
      }
    } else if (what === 'refused') {
      const b = byQid.get(detail.qid);
      if (b) b.refused.textContent = `Not saved: ${detail.message}`;
    } else if (what === 'scores') {
      applyVisibility(detail.changedVisibility);
      preview.draw();
      drawSteps();
    }
  });
  return () => off();
}
