// The mock LLM provider, in-process: `startMock(options)` starts it on
// 127.0.0.1 and returns { url, port, stop(), stats(), requests(), configure(),
// config(), reset() }.  server.mjs is the command-line wrapper; README.md and
// the comment at the top of server.mjs document the behaviour and every option.
//
// One request's walk (POST /v1/messages or /v1/chat/completions):
//   down mode? → destroy the socket
//   auth, anthropic-version, JSON, validation → 401 / 400 / 404 / 413
//   concurrency, then the request / input-token / output-token buckets → 429
//   fault draw (the schedule first, then faultRate) → decided now, served later
//   latency + jitter → the fault, or the deterministic reply
// Only what passes the limiter is "accepted" and charged; a faulted request
// was accepted (it counts as a request and its input tokens), and its output
// reservation is refunded since nothing was produced.

import http from 'node:http';
import { Limits } from './ratelimit.mjs';
import { estimateTokens, mulberry32, promptOf, replyFor } from './text.mjs';

export const FAULT_KINDS = ['500', '529', 'drop', 'truncate', 'stall', 'spend'];
const FAULT_ALIASES = { error: '500', overloaded: '529', spend_limit: 'spend', truncated: 'truncate' };

export const DEFAULTS = Object.freeze({
  port: 0,
  rpm: 0, // requests per window; 0 = unlimited
  itpm: 0, // input tokens per window
  otpm: 0, // output tokens per window
  concurrency: 0, // requests in flight at once
  windowMs: 60000, // the limits' window: 60 s, shorten it in tests
  latencyMs: 0,
  jitterMs: 0, // + uniform [0, jitterMs)
  faultRate: 0, // probability that an accepted request gets a fault
  faults: ['500', '529', 'drop', 'truncate'], // drawn from uniformly
  schedule: [], // faults for the next accepted requests, before any random draw
  stallMs: 0, // how long a stall holds the response; 0 = until the client leaves
  seed: 1,
  apiKey: '', // '' = any non-empty x-api-key, no Bearer needed
  enforce: true, // false = accept everything, only measure (limitExceeded)
  replyTokens: 300, // length the mock "wants" to write
  disobey: 0, // fraction of prompts whose "Required phrases" the reply ignores
  imageTokens: 0, // input tokens counted per image block
  retryAfterMs: false, // also send retry-after-ms on 429
  down: false, // outage: every API request's socket is destroyed
  downForMs: 0, // outage for this long from now (config API); sets downUntil
  maxRecorded: 10000, // recorded requests kept (oldest dropped)
  log: false, // one JSON line per request on stderr
});

const MAX_BODY = 32 * 1024 * 1024; // Anthropic's request size limit
const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];

// ---------------------------------------------------------------- config

function parseFaultList(value, name) {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list)) throw new Error(`${name}: expected a list like "500,529,drop" (got ${JSON.stringify(value)})`);
  const out = [];
  for (const raw of list) {
    let item = typeof raw === 'number' ? String(raw) : raw;
    let count = 1;
    if (item && typeof item === 'object') {
      count = item.count ?? 1;
      item = String(item.fault);
    }
    item = String(item).trim();
    if (!item) continue;
    const m = /^(.+?)\s*[*x]\s*(\d+)$/.exec(item); // "529*3" or "529x3"
    if (m) [item, count] = [m[1], Number(m[2])];
    const kind = FAULT_ALIASES[item] ?? item;
    if (!FAULT_KINDS.includes(kind)) throw new Error(`${name}: unknown fault "${item}" (known: ${FAULT_KINDS.join(', ')})`);
    for (let i = 0; i < count; i++) out.push(kind);
  }
  return out;
}

const NUMBER_KEYS = ['port', 'rpm', 'itpm', 'otpm', 'concurrency', 'windowMs', 'latencyMs', 'jitterMs',
  'stallMs', 'seed', 'replyTokens', 'imageTokens', 'downForMs', 'maxRecorded'];
const BOOLEAN_KEYS = ['enforce', 'retryAfterMs', 'down', 'log'];

// Validate a (partial) config; throws with a message naming the bad key.
export function normalizeConfig(patch) {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new Error('config: expected a JSON object');
  const out = {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === 'downUntil') continue; // computed by config(); lets a read config be posted back
    if (!(key in DEFAULTS)) throw new Error(`config: unknown key "${key}" (known: ${Object.keys(DEFAULTS).join(', ')})`);
    if (NUMBER_KEYS.includes(key)) {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`config: ${key} must be a number >= 0 (got ${JSON.stringify(value)})`);
      out[key] = n;
    } else if (BOOLEAN_KEYS.includes(key)) {
      if (typeof value !== 'boolean') throw new Error(`config: ${key} must be true or false (got ${JSON.stringify(value)})`);
      out[key] = value;
    } else if (key === 'faultRate' || key === 'disobey') {
      const n = Number(value);
      if (!(n >= 0 && n <= 1)) throw new Error(`config: ${key} must be between 0 and 1 (got ${JSON.stringify(value)})`);
      out[key] = n;
    } else if (key === 'faults' || key === 'schedule') {
      out[key] = parseFaultList(value, key);
    } else if (key === 'apiKey') {
      out[key] = String(value ?? '');
    }
  }
  if (out.windowMs === 0) throw new Error('config: windowMs must be > 0');
  return out;
}

// ---------------------------------------------------------------- helpers

function redactHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = k === 'x-api-key' || k === 'authorization' ? '[redacted]' : v;
  }
  return out;
}

// A copy of the body fit for the log: base64 image data and data: URLs are
// replaced by their length, so a load test does not hold megabytes of images.
function recordable(value) {
  if (Array.isArray(value)) return value.map((v) => recordable(v));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'data' && typeof v === 'string' && value.type === 'base64') out[k] = `[base64: ${v.length} chars]`;
      else if (k === 'url' && typeof v === 'string' && v.startsWith('data:')) out[k] = `[data url: ${v.length} chars]`;
      else out[k] = recordable(v);
    }
    return out;
  }
  return value;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('request body too large'), { tooLarge: true }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Resolves true after ms, or false as soon as the response is closed (client
// gone, server stopping).  ms = Infinity waits for the close only.
function holdOpen(res, ms) {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve(false);
    let timer = null;
    const onClose = () => {
      clearTimeout(timer);
      resolve(false);
    };
    res.once('close', onClose);
    if (Number.isFinite(ms)) {
      timer = setTimeout(() => {
        res.off('close', onClose);
        resolve(!res.destroyed);
      }, ms);
    }
  });
}

const isInt = (n) => Number.isInteger(n);

// ---------------------------------------------------------------- validation

function validateContentBlocks(content, where) {
  if (typeof content === 'string') return null;
  if (!Array.isArray(content)) return `${where}: expected a string or a list of content blocks`;
  for (const [i, block] of content.entries()) {
    const at = `${where}.${i}`;
    if (block?.type === 'text') {
      if (typeof block.text !== 'string') return `${at}.text: Field required`;
    } else if (block?.type === 'image') {
      const src = block.source;
      if (src?.type !== 'base64') return `${at}.source.type: Input should be 'base64'`;
      if (!IMAGE_TYPES.includes(src.media_type)) return `${at}.source.media_type: Input should be ${IMAGE_TYPES.map((t) => `'${t}'`).join(', ')}`;
      if (typeof src.data !== 'string' || !src.data) return `${at}.source.data: Field required`;
    } else {
      return `${at}.type: Input tag '${block?.type}' is not one of 'text', 'image' (the mock supports these)`;
    }
  }
  return null;
}

function validateAnthropic(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'request body must be a JSON object';
  if (typeof body.model !== 'string' || !body.model) return 'model: Field required';
  if (!isInt(body.max_tokens) || body.max_tokens < 1) return 'max_tokens: Field required (an integer >= 1)';
  if (body.stream) return 'stream: the mock provider does not support streaming';
  if (!Array.isArray(body.messages) || !body.messages.length) return 'messages: Field required (a non-empty list)';
  if (body.system !== undefined) {
    const err = validateContentBlocks(body.system, 'system');
    if (err) return err;
  }
  for (const [i, m] of body.messages.entries()) {
    if (m?.role !== 'user' && m?.role !== 'assistant') return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    const err = validateContentBlocks(m.content, `messages.${i}.content`);
    if (err) return err;
  }
  return null;
}

function validateOpenAI(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'request body must be a JSON object';
  if (typeof body.model !== 'string' || !body.model) return "you must provide a model parameter";
  if (body.stream) return 'stream: the mock provider does not support streaming';
  if (!Array.isArray(body.messages) || !body.messages.length) return "'messages' must be a non-empty array";
  for (const [i, m] of body.messages.entries()) {
    if (!['system', 'developer', 'user', 'assistant', 'tool'].includes(m?.role)) return `messages[${i}].role is invalid`;
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) return `messages[${i}].content must be a string or an array`;
  }
  const max = body.max_completion_tokens ?? body.max_tokens;
  if (max !== undefined && max !== null && (!isInt(max) || max < 1)) return 'max_tokens must be an integer >= 1';
  return null;
}

// ---------------------------------------------------------------- the two API shapes

const RATE_WORDS = {
  requests: 'requests',
  input: 'input tokens',
  output: 'output tokens',
  concurrency: 'concurrent requests',
};

const anthropic = {
  name: 'anthropic',
  requestIdHeader: 'request-id',
  error(type, message, requestId, extra = {}) {
    return { type: 'error', error: { type, message, ...extra }, request_id: requestId };
  },
  authError(req, cfg) {
    const key = req.headers['x-api-key'];
    if (!key) return 'x-api-key header is required';
    if (cfg.apiKey && key !== cfg.apiKey) return 'invalid x-api-key';
    return null;
  },
  versionError(req) {
    const v = req.headers['anthropic-version'];
    if (!v) return 'anthropic-version: header is required';
    if (v !== '2023-06-01') return `anthropic-version: "${v}" is not a valid version (the mock speaks 2023-06-01)`;
    return null;
  },
  validate: validateAnthropic,
  maxTokens: (body) => body.max_tokens,
  status: {
    badRequest: [400, 'invalid_request_error'],
    auth: [401, 'authentication_error'],
    notFound: [404, 'not_found_error'],
    tooLarge: [413, 'request_too_large'],
    500: [500, 'api_error', 'Internal server error'],
    529: [529, 'overloaded_error', 'Overloaded'],
  },
  rateLimited(which, limit) {
    return this.error('rate_limit_error', `This request would exceed your organization's rate limit of ${limit} ${RATE_WORDS[which]} per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits.`);
  },
  // The real spend-cap answer: a 429 rate_limit_error whose details name
  // enforced_spend_limit_reached, without retry-after (it lasts until the
  // month ends).  The code is also in the message, for clients that only
  // search the message.
  spend(requestId) {
    return this.error('rate_limit_error',
      'You have reached your API usage limits (enforced_spend_limit_reached): your organization has crossed its monthly spend limit. You will regain access at the start of next month.',
      requestId, { details: { error_code: 'enforced_spend_limit_reached' } });
  },
  headers: (limits, now) => limits.anthropicHeaders(now),
  success(body, reply, usage, ids) {
    return {
      id: ids.messageId,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: [{ type: 'text', text: reply.text }],
      stop_reason: reply.truncated ? 'max_tokens' : 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: usage.input, output_tokens: usage.output },
    };
  },
};

const openai = {
  name: 'openai',
  requestIdHeader: 'x-request-id',
  error(type, message, _requestId, extra = {}) {
    return { error: { message, type, param: null, code: null, ...extra } };
  },
  authError(req, cfg) {
    if (!cfg.apiKey) return null;
    const auth = req.headers.authorization || '';
    if (!auth.startsWith('Bearer ')) return 'You did not provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).';
    if (auth.slice(7) !== cfg.apiKey) return 'Incorrect API key provided.';
    return null;
  },
  versionError: () => null,
  validate: validateOpenAI,
  maxTokens: (body) => body.max_completion_tokens ?? body.max_tokens ?? null,
  status: {
    badRequest: [400, 'invalid_request_error'],
    auth: [401, 'invalid_request_error', null, { code: 'invalid_api_key' }],
    notFound: [404, 'invalid_request_error'],
    tooLarge: [413, 'invalid_request_error'],
    500: [500, 'server_error', 'The server had an error while processing your request. Sorry about that!'],
    // OpenAI-compatible servers have no 529: an overloaded one answers 503.
    529: [503, 'server_error', 'The server is overloaded or not ready yet.'],
  },
  rateLimited(which, limit) {
    const type = which === 'requests' || which === 'concurrency' ? 'requests' : 'tokens';
    return this.error(type, `Rate limit reached for mock in organization org-mock on ${RATE_WORDS[which]} per min (RPM/TPM): Limit ${limit}. Please try again later.`, null, { code: 'rate_limit_exceeded' });
  },
  spend() {
    return this.error('insufficient_quota', 'You exceeded your current quota, please check your plan and billing details.', null, { code: 'insufficient_quota' });
  },
  headers: (limits, now) => limits.openaiHeaders(now),
  success(body, reply, usage, ids) {
    return {
      id: ids.completionId,
      object: 'chat.completion',
      created: Math.floor(ids.now / 1000),
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content: reply.text }, logprobs: null, finish_reason: reply.truncated ? 'length' : 'stop' }],
      usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output },
    };
  },
};

const ROUTES = { '/v1/messages': anthropic, '/v1/chat/completions': openai };

// ---------------------------------------------------------------- the server

export async function startMock(options = {}) {
  const cfg = { ...DEFAULTS, ...normalizeConfig(options) };
  const sockets = new Set();
  let limits = new Limits(cfg, Date.now());
  let st; // stats
  let recorded;
  let seq; // request counter, for ids
  let faultRng;
  let jitterRng;
  let schedule;
  let downUntil;
  let inFlight = 0;

  // Sliding windows of admitted / received request times, for the peaks.
  let admittedTimes;
  let arrivalTimes;

  function seedRngs() {
    faultRng = mulberry32(cfg.seed);
    jitterRng = mulberry32(cfg.seed ^ 0x9e3779b9);
  }

  function resetState() {
    st = {
      requests: 0,
      accepted: 0,
      byStatus: {},
      dropped: 0,
      abandoned: 0,
      rateLimited: 0,
      status429: 0,
      faults: Object.fromEntries([...FAULT_KINDS, 'down'].map((k) => [k, 0])),
      peakRequestsInWindow: 0,
      peakArrivalsInWindow: 0,
      peakConcurrency: 0,
      tokens: { input: 0, output: 0 },
      concurrencyExceeded: false,
      startedAt: new Date().toISOString(),
    };
    recorded = [];
    seq = 0;
    admittedTimes = [];
    arrivalTimes = [];
    schedule = [...cfg.schedule];
    downUntil = cfg.down ? Infinity : 0;
    limits.reset(cfg, Date.now());
    seedRngs();
  }
  resetState();

  function configure(patch) {
    const p = normalizeConfig(patch);
    Object.assign(cfg, p);
    if ('schedule' in p) schedule = [...p.schedule];
    if ('seed' in p) seedRngs();
    if ('down' in p) downUntil = p.down ? Infinity : 0;
    if ('downForMs' in p) downUntil = p.downForMs ? Date.now() + p.downForMs : 0;
    limits.configure(cfg, Date.now());
    return config();
  }

  function config() {
    const out = { ...cfg, schedule: [...schedule], faults: [...cfg.faults] };
    out.down = downUntil > Date.now();
    out.downUntil = downUntil === Infinity ? 'forever' : downUntil > Date.now() ? new Date(downUntil).toISOString() : null;
    delete out.downForMs;
    return out;
  }

  function stats() {
    const now = Date.now();
    const exceeded = { ...limits.exceeded(), concurrency: st.concurrencyExceeded };
    const { concurrencyExceeded, ...counters } = st;
    return {
      ...counters,
      byStatus: { ...st.byStatus },
      faults: { ...st.faults },
      tokens: { ...st.tokens },
      inFlight,
      windowMs: cfg.windowMs,
      limitExceeded: {
        requests: exceeded.requests,
        inputTokens: exceeded.input,
        outputTokens: exceeded.output,
        concurrency: exceeded.concurrency,
      },
      anyLimitExceeded: Object.values(exceeded).some(Boolean),
      buckets: limits.snapshot(now),
    };
  }

  function peak(times, now) {
    times.push(now);
    while (times.length && times[0] <= now - cfg.windowMs) times.shift();
    return times.length;
  }

  function record(entry) {
    recorded.push(entry);
    if (recorded.length > cfg.maxRecorded) recorded.splice(0, recorded.length - cfg.maxRecorded);
  }

  // Write a JSON response (or a raw string body) with the API's headers.
  function send(res, entry, status, headers, body) {
    if (res.destroyed || res.writableEnded) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
    entry.status = status;
    st.byStatus[status] = (st.byStatus[status] || 0) + 1;
    if (status === 429) st.status429++;
  }

  function drop(entry, req, outcome) {
    entry.outcome = outcome;
    st.dropped++;
    req.socket.destroy();
  }

  async function handleApi(req, res, api, entry) {
    const requestId = `req_mock_${String(entry.id).padStart(8, '0')}`;
    const common = () => ({ [api.requestIdHeader]: requestId, ...api.headers(limits, Date.now()) });
    const fail = ([status, type, fixedMessage, extra], message, outcome) => {
      entry.outcome = outcome;
      send(res, entry, status, common(), api.error(type, fixedMessage ?? message, requestId, extra));
    };

    if (req.method !== 'POST') return fail(api.status.notFound, `${req.method} ${entry.path}: use POST`, 'not_found');
    let raw;
    try {
      raw = await readBody(req);
    } catch (e) {
      if (e.tooLarge) return fail(api.status.tooLarge, `request exceeds the maximum size of ${MAX_BODY} bytes`, 'invalid');
      return;
    }
    let body;
    try {
      body = JSON.parse(raw);
      entry.body = recordable(body);
    } catch {
      entry.body = raw.slice(0, 1000);
    }
    const authError = api.authError(req, cfg);
    if (authError) return fail(api.status.auth, authError, 'auth');
    const versionError = api.versionError(req);
    if (versionError) return fail(api.status.badRequest, versionError, 'invalid');
    if (body === undefined) return fail(api.status.badRequest, 'request body is not valid JSON', 'invalid');
    const invalid = api.validate(body);
    if (invalid) return fail(api.status.badRequest, invalid, 'invalid');

    const prompt = promptOf(body);
    const inputTokens = estimateTokens(prompt.bytes) + prompt.images * cfg.imageTokens;
    const maxTokens = api.maxTokens(body) ?? cfg.replyTokens;
    entry.inputTokens = inputTokens;
    if (limits.buckets.input && inputTokens > limits.buckets.input.limit) {
      return fail(api.status.badRequest, `prompt is too long: ${inputTokens} input tokens > the limit of ${limits.buckets.input.limit} input tokens per minute; it can never be accepted`, 'invalid');
    }

    // The limiter.  Concurrency first, then the buckets, all or nothing.
    const now = Date.now();
    const rateLimited = (which, limit, waitMs) => {
      st.rateLimited++;
      entry.outcome = 'rate_limited';
      entry.limit = which;
      const headers = { ...common(), 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) };
      if (cfg.retryAfterMs) headers['retry-after-ms'] = String(Math.max(1, Math.ceil(waitMs)));
      send(res, entry, 429, headers, api.rateLimited(which, limit));
    };
    if (cfg.concurrency && inFlight >= cfg.concurrency) {
      if (cfg.enforce) return rateLimited('concurrency', cfg.concurrency, 1000);
      st.concurrencyExceeded = true;
    }
    const reserve = limits.outputReserve(maxTokens);
    const refusal = limits.refusal(inputTokens, reserve, now);
    if (refusal && cfg.enforce) return rateLimited(refusal.which, limits.buckets[refusal.which].limit, refusal.waitMs);
    limits.admit(inputTokens, reserve, now);
    st.accepted++;
    st.tokens.input += inputTokens;
    st.peakRequestsInWindow = Math.max(st.peakRequestsInWindow, peak(admittedTimes, now));
    inFlight++;
    st.peakConcurrency = Math.max(st.peakConcurrency, inFlight);
    let settled = false;
    const settle = (output) => {
      if (settled) return;
      settled = true;
      inFlight--;
      limits.settle(reserve, output, Date.now());
    };
    res.once('close', () => {
      if (!res.writableFinished && !entry.outcome) {
        entry.outcome = 'abandoned';
        st.abandoned++;
      }
      settle(0);
    });

    // Decide the fault now (reproducible order), serve it after the latency.
    let fault = null;
    if (schedule.length) fault = schedule.shift();
    else if (cfg.faultRate > 0 && cfg.faults.length && faultRng() < cfg.faultRate) {
      fault = cfg.faults[Math.floor(faultRng() * cfg.faults.length)];
    }
    entry.fault = fault;
    if (fault) st.faults[fault]++;

    const delay = cfg.latencyMs + (cfg.jitterMs ? jitterRng() * cfg.jitterMs : 0);
    if (delay > 0 && !(await holdOpen(res, delay))) return;

    if (fault === 'drop') return drop(entry, req, 'drop');
    if (fault === '500' || fault === '529') return fail(api.status[fault], null, fault);
    if (fault === 'spend') {
      entry.outcome = 'spend';
      return send(res, entry, 429, common(), api.spend(requestId));
    }
    if (fault === 'stall' && !(await holdOpen(res, cfg.stallMs || Infinity))) return;

    const reply = replyFor(prompt, { maxTokens, replyTokens: cfg.replyTokens, disobey: cfg.disobey });
    const usage = { input: inputTokens, output: estimateTokens(Buffer.byteLength(reply.text)) };
    settle(usage.output);
    st.tokens.output += usage.output;
    entry.outputTokens = usage.output;
    entry.ref = reply.ref;
    const ids = { now: Date.now(), messageId: `msg_mock_${reply.ref}_${entry.id}`, completionId: `chatcmpl-mock${reply.ref}${entry.id}` };
    const json = JSON.stringify(api.success(body, reply, usage, ids));
    if (fault === 'truncate') {
      entry.outcome = 'truncate';
      return send(res, entry, 200, common(), json.slice(0, Math.floor(json.length / 2)));
    }
    entry.outcome = fault === 'stall' ? 'stall' : 'ok';
    send(res, entry, 200, common(), json);
  }

  async function handleControl(req, res, url) {
    const reply = (status, body) => {
      const text = JSON.stringify(body, null, 2);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const route = `${req.method} ${url.pathname}`;
    try {
      if (route === 'GET /_mock/stats') return reply(200, stats());
      if (route === 'GET /_mock/requests') return reply(200, requests({ last: url.searchParams.get('last') }));
      if (route === 'GET /_mock/config') return reply(200, config());
      if (route === 'POST /_mock/config') return reply(200, configure(JSON.parse((await readBody(req)) || '{}')));
      if (route === 'POST /_mock/reset') {
        resetState();
        return reply(200, { ok: true });
      }
      return reply(404, { error: `no control route ${route}; try GET /_mock/stats, GET /_mock/requests, GET|POST /_mock/config, POST /_mock/reset` });
    } catch (e) {
      return reply(400, { error: e.message });
    }
  }

  function requests({ last } = {}) {
    const n = last === undefined || last === null ? recorded.length : Number(last);
    return recorded.slice(Math.max(0, recorded.length - n)).map((e) => ({ ...e }));
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname.startsWith('/_mock/')) return handleControl(req, res, url);

    const now = Date.now();
    st.requests++;
    st.peakArrivalsInWindow = Math.max(st.peakArrivalsInWindow, peak(arrivalTimes, now));
    const entry = {
      id: ++seq,
      time: new Date(now).toISOString(),
      method: req.method,
      path: url.pathname,
      api: ROUTES[url.pathname]?.name ?? null,
      headers: redactHeaders(req.headers),
      body: null,
      status: null,
      outcome: null,
    };
    record(entry);
    if (cfg.log) res.once('close', () => process.stderr.write(`${JSON.stringify({ ...entry, body: undefined, headers: undefined })}\n`));

    if (downUntil > now) {
      st.faults.down++;
      return drop(entry, req, 'down');
    }
    const api = ROUTES[url.pathname] ?? (url.pathname.startsWith('/v1/chat') ? openai : anthropic);
    if (!ROUTES[url.pathname]) {
      entry.outcome = 'not_found';
      const [status, type] = api.status.notFound;
      return send(res, entry, status, {}, api.error(type, `Not found: ${req.method} ${url.pathname}`, null));
    }
    handleApi(req, res, api, entry).catch((e) => {
      entry.outcome = 'mock_error';
      send(res, entry, 500, {}, { type: 'error', error: { type: 'api_error', message: `mock provider bug: ${e.stack}` } });
    });
  });
  // Long keep-alive: a client reusing a connection must never race the
  // server's idle close (that would look like an injected drop).
  server.keepAliveTimeout = 120000;
  server.headersTimeout = 125000;
  server.requestTimeout = 0;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, '127.0.0.1', resolve);
  });
  const port = server.address().port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    requests,
    config,
    configure,
    reset: resetState,
    stop() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
