#!/usr/bin/env node
// o2c's mock LLM provider: a local stand-in for Anthropic's Messages API and
// for any OpenAI-compatible /v1/chat/completions server, so that no test ever
// reaches the network.  Node 20, standard library only.
//
//   node tests/mock_provider/server.mjs [--port 0] [--rpm 60] [--faults 500,529 --fault-rate 0.1] ...
//
// Listens on 127.0.0.1 only.  When ready it prints ONE line on stdout:
//   {"listening":"http://127.0.0.1:PORT"}
// and nothing else (with --log, one JSON line per request goes to stderr).
// SIGTERM / SIGINT stop it.  In-process: `import { startMock } from './mock.mjs'`.
//
// ── APIs ───────────────────────────────────────────────────────────────────
// POST /v1/messages (Anthropic)
//   needs x-api-key (any non-empty value, or exactly --api-key when given) and
//   anthropic-version: 2023-06-01; body model, max_tokens (int >= 1), messages
//   (role user|assistant; content a string or text/image blocks, image =
//   {"type":"image","source":{"type":"base64","media_type":"image/png|jpeg|gif|webp","data":…}}),
//   optional system (string or text blocks).  stream:true is refused (400).
//   200 {"id","type":"message","role":"assistant","model","content":[{"type":"text","text"}],
//        "stop_reason":"end_turn"|"max_tokens","stop_sequence":null,"usage":{"input_tokens","output_tokens"}}
//   errors {"type":"error","error":{"type","message"},"request_id"}:
//   400 invalid_request_error, 401 authentication_error, 404 not_found_error,
//   413 request_too_large, 429 rate_limit_error, 500 api_error, 529 overloaded_error.
//   Headers on every answer: request-id, and for each configured limit
//   anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,reset}
//   (reset = RFC 3339 UTC, whole seconds, when that bucket is full again;
//   "tokens" = the input or output bucket with fewer tokens left).
//   A limit that is 0 (unlimited) sends no headers.
// POST /v1/chat/completions (OpenAI-compatible)
//   Authorization: Bearer KEY required only when --api-key is given; body
//   model, messages (roles system|developer|user|assistant|tool), optional
//   max_tokens or max_completion_tokens (default: --reply-tokens).
//   200 {"id","object":"chat.completion","created","model","choices":[{"index":0,
//        "message":{"role":"assistant","content"},"finish_reason":"stop"|"length"}],
//        "usage":{"prompt_tokens","completion_tokens","total_tokens"}}
//   errors {"error":{"message","type","param":null,"code"}}; 401 code invalid_api_key;
//   429 type requests|tokens code rate_limit_exceeded; the "529" fault is a 503 here.
//   Headers: x-request-id, x-ratelimit-{limit,remaining,reset}-{requests,tokens}
//   (reset as a Go duration: "12ms", "1.5s", "6m0s").
//
// ── Tokens and text ────────────────────────────────────────────────────────
// Input tokens = ceil(UTF-8 bytes of all text / 4): system + every message's
// text (strings, text blocks/parts), concatenated; images count --image-tokens
// each (default 0).  Output tokens = ceil(bytes of the reply / 4).  usage
// reports exactly these, so a client estimating the same way is never surprised.
// The reply depends only on the request's text (see text.mjs):
//   "**<hint>** (mock <ref>)"  hint = first "Section: …" line, else first
//       Markdown heading, else "Report section"; ref = 8 hex of sha256(text)
//   "Recommended agent: **X**."  only when the prompt has "Allowed agents: a, b, c";
//       X is one of them
//   "Covered here: p1; p2."  only when the prompt has a line
//       'Required phrases …: "p1"; "p2"', except for the fraction --disobey
//       of prompts (chosen by the hash) whose reply ignores it
//   then generic order-to-cash paragraphs and one bullet list, up to about
//   --reply-tokens tokens (default 300), cut at a word to max_tokens × 4 bytes
//   (then stop_reason max_tokens / finish_reason length).
//
// ── Rate limits (token buckets, refilled continuously) ─────────────────────
// --rpm, --itpm, --otpm: requests / input tokens / output tokens per window
// (--window-ms, default 60000); each bucket starts full, refills limit/window
// per ms, holds at most limit.  0 = unlimited.  --concurrency: requests in
// flight.  A request is admitted only if every bucket has room (1 request, its
// input tokens, and min(max_tokens, otpm) output tokens reserved — the
// reservation is trued up to the real output when the reply is sent, refunded
// on faults).  Otherwise 429 + retry-after (whole seconds, >= 1, until the
// refusing bucket has room; concurrency: 1) + the headers; with
// --retry-after-ms also retry-after-ms.  A prompt larger than the whole
// input bucket can never pass: 400.  --no-enforce admits everything and only
// measures (stats.limitExceeded says which limit was overrun).
//
// ── Latency and faults ─────────────────────────────────────────────────────
// Admitted requests wait --latency-ms + uniform[0, --jitter-ms).  A fault is
// decided at admission: the next entry of --schedule if any ("529*3,drop"),
// else with probability --fault-rate one of --faults (default 500,529,drop,truncate):
//   500       500 api_error (OpenAI: server_error)
//   529       529 overloaded_error (OpenAI: 503)
//   drop      socket destroyed, no response
//   truncate  200 with all headers, body = the first half of the JSON (a
//             complete HTTP response whose JSON does not parse)
//   stall     nothing sent for --stall-ms, then the normal reply; 0 = hold
//             until the client gives up
//   spend     429 rate_limit_error, details.error_code enforced_spend_limit_reached
//             (also in the message), NO retry-after; OpenAI: 429 insufficient_quota
// Down mode (--down, or POST /_mock/config {"downForMs":60000}): every API
// request's socket is destroyed at once, until it ends.  Control routes still work.
// --seed seeds two PRNGs (faults, jitter): the same seed, config and request
// order give the same faults.
//
// ── Control API (JSON, no auth, never faulted) ─────────────────────────────
// GET  /_mock/stats     counters, see README.md for every field
// GET  /_mock/requests  recorded requests [{id,time,method,path,api,headers
//                       (x-api-key/authorization "[redacted]"),body (parsed; image
//                       data replaced by its length),status,outcome,fault,
//                       inputTokens,outputTokens,ref,limit}]; ?last=N
// GET  /_mock/config    the effective config
// POST /_mock/config    change any option at runtime (camelCase keys, below);
//                       unknown keys are a 400; "schedule" replaces the queue
// POST /_mock/reset     zero stats, forget requests, refill buckets, reseed,
//                       reload the schedule and down state from the config
//
// ── Flags (config key in brackets) ─────────────────────────────────────────
// --port N [port]              0 = pick a free port (default)
// --rpm N [rpm]  --itpm N [itpm]  --otpm N [otpm]  --concurrency N [concurrency]
// --window-ms N [windowMs]     limits' window, default 60000
// --latency-ms N [latencyMs]   --jitter-ms N [jitterMs]
// --fault-rate P [faultRate]   0..1      --faults LIST [faults]
// --schedule LIST [schedule]   --stall-ms N [stallMs]     --seed N [seed]
// --api-key KEY [apiKey]       --no-enforce [enforce=false]
// --reply-tokens N [replyTokens]  --image-tokens N [imageTokens]
// --disobey P [disobey]  0..1
// --retry-after-ms [retryAfterMs] --down [down]  (config only: downForMs)
// --max-recorded N [maxRecorded] (default 10000)  --log [log]

import { parseArgs } from 'node:util';
import { startMock } from './mock.mjs';

const FLAGS = {
  port: ['port', 'string'],
  rpm: ['rpm', 'string'],
  itpm: ['itpm', 'string'],
  otpm: ['otpm', 'string'],
  concurrency: ['concurrency', 'string'],
  'window-ms': ['windowMs', 'string'],
  'latency-ms': ['latencyMs', 'string'],
  'jitter-ms': ['jitterMs', 'string'],
  'fault-rate': ['faultRate', 'string'],
  faults: ['faults', 'string'],
  schedule: ['schedule', 'string'],
  'stall-ms': ['stallMs', 'string'],
  seed: ['seed', 'string'],
  'api-key': ['apiKey', 'string'],
  'reply-tokens': ['replyTokens', 'string'],
  disobey: ['disobey', 'string'],
  'image-tokens': ['imageTokens', 'string'],
  'max-recorded': ['maxRecorded', 'string'],
  'no-enforce': ['enforce', 'boolean'],
  'retry-after-ms': ['retryAfterMs', 'boolean'],
  down: ['down', 'boolean'],
  log: ['log', 'boolean'],
  help: [null, 'boolean'],
};

function usage(message) {
  if (message) process.stderr.write(`mock provider: ${message}\n`);
  process.stderr.write(`usage: node server.mjs [--${Object.keys(FLAGS).join('] [--')}]\n(documented at the top of this file and in README.md)\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: Object.fromEntries(Object.entries(FLAGS).map(([flag, [, type]]) => [flag, { type }])),
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
if (parsed.help) usage();

const options = {};
for (const [flag, value] of Object.entries(parsed)) {
  const [key] = FLAGS[flag];
  if (!key) continue;
  options[key] = flag === 'no-enforce' ? !value : value;
}

let mock;
try {
  mock = await startMock(options);
} catch (e) {
  usage(e.message);
}
process.stdout.write(`${JSON.stringify({ listening: mock.url })}\n`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => mock.stop().then(() => process.exit(0)));
}
