// DOM helpers. Every node is built with createElement and textContent: the UI
// never parses HTML strings, so text from the server cannot become markup.

let uid = 0;
export const nextId = (prefix = 'id') => `${prefix}-${++uid}`;

// h('button', {type: 'button', class: 'btn', onclick: fn}, 'Save')
// Attributes: class, for, text, dataset {}, style is not used (CSP);
// on<event> functions become listeners; true/false toggle boolean attributes;
// null/undefined are skipped. Children: nodes, strings, numbers, arrays, null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// Markup the server rendered (a report section through libcmark-gfm in safe
// mode, a chart from generation/chart.lua) as nodes. A <template> parses it
// inert: nothing in it runs or loads while it is parsed.
export function serverHtml(html) {
  const t = document.createElement('template');
  t.innerHTML = String(html || '');
  for (const a of t.content.querySelectorAll('a[href^="http"]')) {
    a.rel = 'noopener noreferrer nofollow';
    a.target = '_blank';
  }
  return t.content;
}

export function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

// Number formatting: scores with two decimals at most, no trailing zeros.
export function fmtScore(x) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return '—';
  return Number(x).toFixed(2).replace(/\.?0+$/, '') || '0';
}

export function fmtPercent(x) {
  if (x === null || x === undefined) return '—';
  return `${Math.round(Number(x) * 100)}%`;
}

// Times arrive as Unix seconds, milliseconds or ISO text.
export function toDate(t) {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return new Date(t < 1e12 ? t * 1000 : t);
  const n = Number(t);
  if (!Number.isNaN(n)) return toDate(n);
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtTime(t) {
  const d = toDate(t);
  if (!d) return '—';
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtAgo(t) {
  const d = toDate(t);
  if (!d) return '—';
  const sec = Math.round((Date.now() - d.getTime()) / 1000);
  if (sec < 45) return 'just now';
  const min = Math.round(sec / 60);
  if (min < 60) return `${min} min ago`;
  const hours = Math.round(min / 60);
  if (hours < 24) return `${hours} h ago`;
  return d.toLocaleDateString(undefined, { dateStyle: 'medium' });
}

// A <time> element showing "5 min ago" with the full date as its title.
export function timeEl(t) {
  const d = toDate(t);
  if (!d) return h('span', null, '—');
  return h('time', { datetime: d.toISOString(), title: fmtTime(t) }, fmtAgo(t));
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const el = h('div', { class: ['toast', `toast-${kind}`] }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 9000 : 5000);
}

// A modal <dialog>; resolves with the value passed to close(), or null when
// dismissed with Escape. build(close) returns the dialog's content.
export function modal(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const headingId = nextId('dlg');
    const dlg = h('dialog', { class: ['dialog', wide && 'dialog-wide'], 'aria-labelledby': headingId });
    let result = null;
    const close = (value) => {
      result = value === undefined ? null : value;
      dlg.close();
    };
    dlg.append(h('h2', { id: headingId }, title), build(close));
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = dlg.querySelector('[autofocus], input, select, textarea, button');
    if (first) first.focus();
  });
}

export function confirmDialog(title, message, action = 'Confirm', danger = false) {
  return modal(title, (close) =>
    h('div', null,
      h('p', null, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'button', class: ['btn', danger ? 'btn-danger' : 'btn-primary'], onclick: () => close(true) }, action))));
}

// Progress bar with a text equivalent.
export function progress(fraction, label) {
  const pct = Math.max(0, Math.min(100, Math.round((Number(fraction) || 0) * 100)));
  const bar = h('span', { class: 'progress-bar' });
  bar.style.width = `${pct}%`; // CSSOM, not an inline style attribute: allowed by the CSP
  return h('span', { class: 'progress', role: 'img', 'aria-label': label || `${pct}% complete` }, bar);
}
