// A small, safe Markdown renderer: text in, DOM nodes out, never HTML
// strings. Headings, paragraphs, lists (nested by indentation), bold,
// italic, inline code, links (http/https only), tables, block quotes,
// rules and fenced code. Raw HTML is shown as text, except an <svg> block,
// which is dropped and handed to `onSvg` (the caller draws its own chart).
import { h } from './dom.js';

const INLINE = /(\*\*|__)(.+?)\1|(\*|_)(?!\s)(.+?)(?<!\s)\3(?![\w*])|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)/g;

export function inline(text) {
  const out = [];
  let last = 0;
  const re = new RegExp(INLINE.source, 'g'); // own state: inline() recurses
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1]) out.push(h('strong', null, inline(m[2])));
    else if (m[3]) out.push(h('em', null, inline(m[4])));
    else if (m[5] !== undefined) out.push(h('code', null, m[5]));
    else if (m[6]) {
      const href = m[7];
      if (/^https?:\/\//i.test(href)) out.push(h('a', { href, rel: 'noopener noreferrer nofollow', target: '_blank' }, inline(m[6])));
      else out.push(inline(m[6]));
    }
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const cells = (line) => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
const isTableSep = (line) => /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(line);
const LIST = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;

export function renderMarkdown(md, { headingBase = 3, onSvg } = {}) {
  const frag = document.createDocumentFragment();
  const lines = String(md || '').replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let para = [];
  const flushPara = () => {
    if (para.length) frag.append(h('p', null, inline(para.join(' '))));
    para = [];
  };

  while (i < lines.length) {
    const line = lines[i];
    const trimmed = line.trim();
    if (trimmed === '') {
      flushPara();
      i++;
      continue;
    }
    // inline SVG chart: skip it whole
    if (/^<svg[\s>]/i.test(trimmed)) {
      flushPara();
      while (i < lines.length && !/<\/svg>/i.test(lines[i])) i++;
      i++;
      if (onSvg) {
        const node = onSvg();
        if (node) frag.append(node);
      }
      continue;
    }
    // fenced code
    if (/^```/.test(trimmed)) {
      flushPara();
      const code = [];
      i++;
      while (i < lines.length && !/^```/.test(lines[i].trim())) code.push(lines[i++]);
      i++;
      frag.append(h('pre', null, h('code', null, code.join('\n'))));
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(trimmed);
    if (heading) {
      flushPara();
      const level = Math.min(6, Math.max(headingBase, heading[1].length + headingBase - 1));
      frag.append(h(`h${level}`, null, inline(heading[2])));
      i++;
      continue;
    }
    if (/^(-{3,}|\*{3,}|_{3,})$/.test(trimmed.replace(/\s/g, ''))) {
      flushPara();
      frag.append(h('hr'));
      i++;
      continue;
    }
    // table: header, separator, rows
    if (trimmed.includes('|') && i + 1 < lines.length && isTableSep(lines[i + 1])) {
      flushPara();
      const head = cells(line);
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].trim().includes('|') && lines[i].trim() !== '') rows.push(cells(lines[i++]));
      frag.append(h('div', { class: 'table-scroll' }, h('table', { class: 'table md-table' },
        h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, inline(c))))),
        h('tbody', null, rows.map((r) => h('tr', null, head.map((_, k) => h('td', null, inline(r[k] || '')))))))));
      continue;
    }
    if (/^>/.test(trimmed)) {
      flushPara();
      const quote = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quote.push(lines[i++].replace(/^\s*>\s?/, ''));
      frag.append(h('blockquote', null, renderMarkdown(quote.join('\n'), { headingBase, onSvg })));
      continue;
    }
    if (LIST.test(line)) {
      flushPara();
      const [node, next] = parseList(lines, i);
      frag.append(node);
      i = next;
      continue;
    }
    if (/^</.test(trimmed)) {
      // other raw HTML: shown as text, never interpreted
      flushPara();
      frag.append(h('p', { class: 'md-raw' }, trimmed));
      i++;
      continue;
    }
    para.push(trimmed);
    i++;
  }
  flushPara();
  return frag;
}

// A list starting at lines[start]; items indented deeper become a sub-list.
function parseList(lines, start) {
  const first = LIST.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = h(ordered ? 'ol' : 'ul');
  let i = start;
  let item = null;
  let text = [];
  const flushItem = () => {
    if (item && text.length) item.prepend(...inline(text.join(' ')));
    text = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      // a blank line ends the list unless the next line continues it
      const nextLine = lines[i + 1];
      const m = nextLine !== undefined && LIST.exec(nextLine);
      if (m && m[1].length >= indent) {
        i++;
        continue;
      }
      break;
    }
    const m = LIST.exec(line);
    if (m && m[1].length > indent && item) {
      flushItem();
      const [sub, next] = parseList(lines, i);
      item.append(sub);
      i = next;
      continue;
    }
    if (m && m[1].length === indent) {
      flushItem();
      item = h('li');
      list.append(item);
      text.push(m[3]);
      i++;
      continue;
    }
    if (m && m[1].length < indent) break;
    if (!m && item && /^\s+/.test(line)) {
      text.push(line.trim()); // continuation line
      i++;
      continue;
    }
    break;
  }
  flushItem();
  return [list, i];
}
