// What the mock "reads" and "writes": the token estimate, the prompt's text,
// and the deterministic reply.
//
// Token estimate (the client estimates the same way): ceil(bytes / 4), where
// bytes is the UTF-8 length of every text the request carries, concatenated
// with no separators: the system prompt (string or text blocks) and each
// message's content (string, or its text blocks / text parts).  Roles, model
// names, JSON punctuation and image blocks count 0 (each image counts
// `imageTokens`, default 0).
//
// The reply depends on the request's text only (never on the seed or on time),
// so the same prompt always gets the same reply:
//   line 1      "**<hint>** (mock <ref>)"   ref = first 8 hex of sha256(prompt text)
//               hint = the value of the first "Section: …" line (also "Title:" or
//               "Heading:"), else the first Markdown heading, else "Report section";
//               searched in the last user message, then in the whole prompt.
//   paragraph 2 only if the prompt has a line "Allowed agents: a, b, c":
//               "Recommended agent: **b**." — exactly one of them, picked by the hash.
//   next        only if the prompt has a line "Required phrases …: "p1"; "p2"":
//               "Covered here: p1; p2." — every quoted phrase, as written, as a
//               model that follows its instructions would; unless the draw
//               ("disobey", a fraction of prompts picked by the hash) says this
//               reply ignores them, as a model sometimes does.
//   then        paragraphs and one bullet list of generic order-to-cash prose
//               (no product or agent names), as many blocks as fit in
//               `replyTokens` tokens (default 300; the heading line always).
// If that is longer than max_tokens × 4 bytes it is cut at a word boundary and
// the reply says stop_reason "max_tokens" / finish_reason "length".

import { createHash } from 'node:crypto';

export function estimateTokens(bytes) {
  return Math.ceil(bytes / 4);
}

export function byteLength(s) {
  return Buffer.byteLength(s, 'utf8');
}

// Small seeded PRNG (mulberry32): reproducible fault and jitter draws.
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Texts of one content value: a string, or an array of Anthropic blocks
// ({type:"text",text}) / OpenAI parts ({type:"text",text}); images counted apart.
function contentTexts(content, acc) {
  if (typeof content === 'string') {
    acc.texts.push(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (part?.type === 'text' && typeof part.text === 'string') acc.texts.push(part.text);
    else if (part?.type === 'image' || part?.type === 'image_url') acc.images++;
  }
}

// The request's text, in order: { texts, lastUser, images, bytes }.
export function promptOf(body) {
  const acc = { texts: [], images: 0 };
  if (body.system !== undefined) contentTexts(body.system, acc);
  let lastUser = '';
  for (const m of body.messages || []) {
    const before = acc.texts.length;
    contentTexts(m?.content, acc);
    if (m?.role === 'user') lastUser = acc.texts.slice(before).join('\n');
  }
  const bytes = acc.texts.reduce((n, t) => n + byteLength(t), 0);
  return { texts: acc.texts, lastUser, images: acc.images, bytes };
}

function findLine(texts, re) {
  for (const t of texts) {
    const m = re.exec(t);
    if (m) return m[1].trim();
  }
  return null;
}

export function sectionHint(prompt) {
  const order = [prompt.lastUser, prompt.texts.join('\n')];
  const hint =
    findLine(order, /^[ \t]*(?:section|title|heading)[ \t]*:[ \t]*(.+)$/im) ??
    findLine(order, /^#{1,6}[ \t]+(.+)$/m) ??
    'Report section';
  return hint.length > 80 ? hint.slice(0, 80) : hint;
}

export function allowedAgents(prompt) {
  const order = [prompt.lastUser, prompt.texts.join('\n')];
  const line = findLine(order, /^[ \t]*allowed agents[ \t]*:[ \t]*(.+)$/im);
  if (!line) return [];
  return line.split(/[,;]/).map((s) => s.trim()).filter(Boolean);
}

// The quoted phrases of the first "Required phrases …:" line, in order.
export function requiredPhrases(prompt) {
  const order = [prompt.lastUser, prompt.texts.join('\n')];
  const line = findLine(order, /^[ \t]*required phrases[^:\n]*:[ \t]*(.+)$/im);
  if (!line) return [];
  return [...line.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

const SENTENCES = [
  'Order entry is consistent across channels, but credit checks still run after the order is confirmed.',
  'Invoices leave on time for most customers, while a tail of manual corrections delays the rest.',
  'Cash application matches the bulk of remittances automatically; the remainder waits in a shared inbox.',
  'Disputes are logged, yet root causes are rarely tracked back to pricing or delivery errors.',
  'Days sales outstanding moved within the benchmark range over the last four quarters.',
  'Collections work from an ageing list rather than from a risk-scored worklist.',
  'Customer master data has owners, but changes are approved outside the system of record.',
  'Credit limits are reviewed yearly, which leaves fast-growing accounts exposed between reviews.',
  'Deductions are cleared in batches at month end, hiding their cost until the close.',
  'Billing blocks are released by hand, and the reasons are not analysed.',
  'Reporting on the cycle relies on spreadsheets assembled from three exports.',
  'Payment terms vary by region without a documented rationale.',
  'The first-time-right rate of invoices is measured, though targets are not set per team.',
  'Promises to pay are recorded, but broken promises do not trigger a follow-up.',
  'Unapplied cash is reviewed weekly and rarely exceeds a few days of receipts.',
  'The handover from sales to finance is clear for standard orders and unclear for projects.',
];

const BULLETS = [
  'Define one owner for each step from order to cash.',
  'Score open receivables by risk and work the highest first.',
  'Automate remittance matching for the largest payers.',
  'Track dispute reasons and review them monthly with sales.',
  'Set first-time-right targets for invoicing per team.',
  'Review credit limits on events, not only on the calendar.',
  'Publish one dashboard for DSO, overdue share and dispute ageing.',
  'Document payment terms and the approval path for exceptions.',
];

// A deck: the list shuffled by rnd, dealt n at a time, reshuffled when empty,
// so a reply repeats no sentence until it has used them all.
function deck(list, rnd) {
  let cards = [];
  return (n) => {
    const out = [];
    while (out.length < n) {
      if (!cards.length) {
        cards = [...list];
        for (let i = cards.length - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [cards[i], cards[j]] = [cards[j], cards[i]];
        }
      }
      out.push(cards.pop());
    }
    return out;
  };
}

// Cut s to at most maxBytes UTF-8 bytes, at a word boundary when there is one.
function cutBytes(s, maxBytes) {
  if (byteLength(s) <= maxBytes) return s;
  let cut = Buffer.from(s, 'utf8').subarray(0, maxBytes).toString('utf8');
  while (byteLength(cut) > maxBytes) cut = cut.slice(0, -1); // a split code point decodes to U+FFFD (3 bytes)
  const space = cut.search(/\s\S*$/);
  if (space > 0) cut = cut.slice(0, space);
  return cut.trimEnd();
}

// { text, ref, agent, truncated } for a request whose text is `prompt`.
export function replyFor(prompt, { maxTokens, replyTokens, disobey = 0 }) {
  const digest = createHash('sha256').update(prompt.texts.join('\u0000')).digest('hex');
  const ref = digest.slice(0, 8);
  const rnd = mulberry32(parseInt(digest.slice(8, 16), 16));
  const blocks = [`**${sectionHint(prompt)}** (mock ${ref})`];
  const agents = allowedAgents(prompt);
  const agent = agents.length ? agents[Math.floor(rnd() * agents.length)] : null;
  if (agent) blocks.push(`Recommended agent: **${agent}**.`);
  // A draw of its own (not from rnd), so the rest of the text stays the same.
  const obeys = parseInt(digest.slice(16, 24), 16) / 2 ** 32 >= disobey;
  const phrases = requiredPhrases(prompt);
  if (phrases.length && obeys) blocks.push(`Covered here: ${phrases.join('; ')}.`);

  // Add blocks while they fit in about replyTokens; the model "wanted" to say
  // that much, so a smaller max_tokens truncates it.
  const wantBytes = Math.max(1, replyTokens) * 4;
  const sentences = deck(SENTENCES, rnd);
  const bulletPoints = deck(BULLETS, rnd);
  let bullets = false;
  for (;;) {
    const next = !bullets && blocks.length >= 2
      ? bulletPoints(3).map((b) => `- ${b}`).join('\n')
      : sentences(3).join(' ');
    if (byteLength(blocks.join('\n\n')) + 2 + byteLength(next) > wantBytes) break;
    if (next.startsWith('- ')) bullets = true;
    blocks.push(next);
  }
  const full = blocks.join('\n\n');
  const text = cutBytes(full, maxTokens * 4);
  return { text, ref, agent, truncated: text !== full };
}
