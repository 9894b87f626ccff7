// A radar chart of score against target per area, drawn as SVG nodes (no
// markup strings). Used by the scorecard and in place of the report's own
// inline chart, which the report view never inserts as HTML.
import { s, fmtScore } from './dom.js';

// areas: [{title, score (may be null), target}]
export function radarChart(areas, { size = 520, title = 'Score against target per area' } = {}) {
  const n = areas.length;
  const padX = 165; // room for the area names left and right
  const padTop = 104;
  const W = size + padX * 2;
  const H = padTop + size + 112;
  const cx = W / 2;
  const cy = padTop + size / 2;
  const R = size / 2 - 10;
  const angle = (i) => (Math.PI * 2 * i) / n;
  const pt = (i, v) => {
    const r = (R * Math.max(0, Math.min(5, v || 0))) / 5;
    return [cx + r * Math.sin(angle(i)), cy - r * Math.cos(angle(i))];
  };
  const desc = areas.map((a) => `${a.title}: ${a.score === null || a.score === undefined ? 'not assessed' : fmtScore(a.score)} against target ${fmtScore(a.target)}`).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'radar', role: 'img', 'aria-label': `${title}. ${desc}` });
  svg.append(s('title', { text: title }));

  // rings 1..5 and spokes
  const grid = s('g', { class: 'radar-grid' });
  for (let level = 1; level <= 5; level++) {
    const points = areas.map((_, i) => pt(i, level).map((x) => x.toFixed(1)).join(',')).join(' ');
    grid.append(s('polygon', { points, class: level === 5 ? 'ring ring-outer' : 'ring' }));
    // level numbers between the first two spokes, clear of the labels
    const r = (R * level) / 5;
    const a = Math.PI / n;
    grid.append(s('text', { x: (cx + r * Math.sin(a)).toFixed(1), y: (cy - r * Math.cos(a) + 5).toFixed(1), 'text-anchor': 'middle', class: 'ring-label', text: String(level) }));
  }
  areas.forEach((a, i) => {
    const [x, y] = pt(i, 5);
    grid.append(s('line', { x1: cx, y1: cy, x2: x.toFixed(1), y2: y.toFixed(1), class: 'spoke' }));
  });
  svg.append(grid);

  const poly = (key, cls) => {
    const points = areas.map((a, i) => pt(i, a[key]).map((x) => x.toFixed(1)).join(',')).join(' ');
    return s('polygon', { points, class: cls });
  };
  svg.append(poly('target', 'series-target'));
  svg.append(poly('score', 'series-score'));
  areas.forEach((a, i) => {
    if (a.score === null || a.score === undefined) return;
    const [x, y] = pt(i, a.score);
    svg.append(s('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 5, class: 'dot-score' }));
  });

  // labels, wrapped when long; areas with nothing scored are greyed
  areas.forEach((a, i) => {
    const [x, y] = pt(i, 5.5);
    const sin = Math.sin(angle(i));
    const cos = Math.cos(angle(i));
    const anchor = Math.abs(sin) < 0.2 ? 'middle' : sin > 0 ? 'start' : 'end';
    const words = String(a.title).split(' ');
    const lines = [];
    let line = '';
    for (const w of words) {
      if ((line + ' ' + w).trim().length > 15 && line) {
        lines.push(line);
        line = w;
      } else line = (line + ' ' + w).trim();
    }
    lines.push(line);
    const unscored = a.score === null || a.score === undefined;
    if (unscored) lines.push('(not assessed)');
    let y0;
    if (cos > 0.7) y0 = y - (lines.length - 1) * 21; // top: grow upwards
    else if (cos < -0.7) y0 = y + 12; // bottom: grow downwards
    else y0 = y - ((lines.length - 1) * 21) / 2 + 6; // sides: centred
    const t = s('text', { x: x.toFixed(1), y: y0.toFixed(1), 'text-anchor': anchor, class: unscored ? 'axis-label axis-na' : 'axis-label' });
    lines.forEach((l, k) => t.append(s('tspan', { x: x.toFixed(1), dy: k ? 21 : 0, class: l === '(not assessed)' ? 'axis-note' : null, text: l })));
    svg.append(t);
  });

  // legend
  const ly = H - 14;
  const legend = s('g', { class: 'radar-legend' },
    s('rect', { x: cx - 130, y: ly - 13, width: 22, height: 15, class: 'legend-score' }),
    s('text', { x: cx - 100, y: ly, text: 'Score' }),
    s('line', { x1: cx + 20, y1: ly - 6, x2: cx + 52, y2: ly - 6, class: 'legend-target' }),
    s('text', { x: cx + 60, y: ly, text: 'Target' }));
  svg.append(legend);
  return svg;
}
