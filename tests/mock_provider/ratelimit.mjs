// Token buckets for the mock provider, and the rate-limit headers both APIs send.
//
// Why buckets and not fixed windows: Anthropic documents its limits as token
// buckets ("capacity is continuously replenished up to your maximum limit,
// rather than being reset at fixed intervals"), and o2c's scheduler budgets the
// same way, so the mock judges the client by the rule the real provider uses.
// A bucket of limit L over a window W starts full (L), refills at L/W per ms and
// never holds more than L.

export class TokenBucket {
  constructor(limit, windowMs, now) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.level = limit;
    this.at = now;
    this.exceeded = false; // went below zero at some point (only possible with enforce off)
  }

  get perMs() {
    return this.limit / this.windowMs;
  }

  refill(now) {
    if (now > this.at) {
      this.level = Math.min(this.limit, this.level + (now - this.at) * this.perMs);
      this.at = now;
    }
  }

  // Milliseconds until the bucket holds n (0 if it already does).
  waitMs(n, now) {
    this.refill(now);
    const missing = n - this.level;
    return missing <= 1e-9 ? 0 : missing / this.perMs;
  }

  // flag = false for a reservation that settle() will correct: the bucket is
  // judged on what was really produced, not on the estimate.
  take(n, now, flag = true) {
    this.refill(now);
    this.level -= n;
    if (flag && this.level < -1e-6) this.exceeded = true;
  }

  give(n, now) {
    this.refill(now);
    this.level = Math.min(this.limit, this.level + n);
  }

  remaining(now) {
    this.refill(now);
    return Math.max(0, Math.floor(this.level + 1e-9));
  }

  // Epoch ms at which the bucket is full again.
  fullAt(now) {
    this.refill(now);
    return now + Math.max(0, this.limit - this.level) / this.perMs;
  }
}

const BUCKETS = [
  ['requests', 'rpm'],
  ['input', 'itpm'],
  ['output', 'otpm'],
];

// The three budgets of one provider: requests, input tokens and output tokens
// per window.  A limit of 0 means unlimited: no bucket, no headers for it.
export class Limits {
  constructor(config, now) {
    this.buckets = {};
    this.configure(config, now);
  }

  // Resize after a config change.  A bucket whose limit and window did not
  // change keeps its level; a new or resized one starts full.
  configure(config, now) {
    for (const [name, key] of BUCKETS) {
      const limit = config[key];
      const old = this.buckets[name];
      if (!limit) {
        delete this.buckets[name];
      } else if (!old || old.limit !== limit || old.windowMs !== config.windowMs) {
        this.buckets[name] = new TokenBucket(limit, config.windowMs, now);
      }
    }
  }

  reset(config, now) {
    this.buckets = {};
    this.configure(config, now);
  }

  // The output reservation: Anthropic estimates output tokens from max_tokens
  // when a request starts and corrects it when it ends.  Capped at the bucket
  // size so that a max_tokens above the limit can still pass when it is full.
  outputReserve(maxTokens) {
    const b = this.buckets.output;
    return b ? Math.min(maxTokens, b.limit) : maxTokens;
  }

  // Which bucket refuses a request of `input` tokens reserving `output`, and for
  // how long; null when all of them have room.  Checked all at once: a refused
  // request takes nothing.
  refusal(input, output, now) {
    const need = { requests: 1, input, output };
    let worst = null;
    for (const name of Object.keys(this.buckets)) {
      const waitMs = this.buckets[name].waitMs(need[name], now);
      if (waitMs > 0 && (!worst || waitMs > worst.waitMs)) worst = { which: name, waitMs };
    }
    return worst;
  }

  admit(input, output, now) {
    const need = { requests: 1, input, output };
    for (const name of Object.keys(this.buckets)) this.buckets[name].take(need[name], now, name !== 'output');
  }

  // True up the output reservation with what was really produced.
  settle(reserved, actual, now) {
    const b = this.buckets.output;
    if (!b) return;
    if (reserved > actual) b.give(reserved - actual, now);
    else if (actual > reserved) b.take(actual - reserved, now, false);
    if (b.level < -1e-6) b.exceeded = true;
  }

  exceeded() {
    const out = {};
    for (const [name] of BUCKETS) out[name] = Boolean(this.buckets[name]?.exceeded);
    return out;
  }

  snapshot(now) {
    const out = {};
    for (const [name, b] of Object.entries(this.buckets)) {
      out[name] = { limit: b.limit, remaining: b.remaining(now), resetMs: Math.ceil(b.fullAt(now) - now) };
    }
    return out;
  }

  // "tokens" in both APIs' headers = the most restrictive token bucket in
  // effect: the one with the fewest tokens remaining.
  tokensBucket(now) {
    const candidates = ['input', 'output'].map((n) => this.buckets[n]).filter(Boolean);
    candidates.sort((a, b) => a.remaining(now) - b.remaining(now));
    return candidates[0];
  }

  anthropicHeaders(now) {
    const h = {};
    const put = (prefix, b) => {
      if (!b) return;
      h[`anthropic-ratelimit-${prefix}-limit`] = String(b.limit);
      h[`anthropic-ratelimit-${prefix}-remaining`] = String(b.remaining(now));
      h[`anthropic-ratelimit-${prefix}-reset`] = rfc3339(b.fullAt(now));
    };
    put('requests', this.buckets.requests);
    put('input-tokens', this.buckets.input);
    put('output-tokens', this.buckets.output);
    put('tokens', this.tokensBucket(now));
    return h;
  }

  openaiHeaders(now) {
    const h = {};
    const put = (suffix, b) => {
      if (!b) return;
      h[`x-ratelimit-limit-${suffix}`] = String(b.limit);
      h[`x-ratelimit-remaining-${suffix}`] = String(b.remaining(now));
      h[`x-ratelimit-reset-${suffix}`] = goDuration(b.fullAt(now) - now);
    };
    put('requests', this.buckets.requests);
    put('tokens', this.tokensBucket(now));
    return h;
  }
}

// RFC 3339 in UTC, whole seconds, rounded up so a client waiting until then is
// never early.
export function rfc3339(epochMs) {
  return new Date(Math.ceil(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// A duration the way OpenAI writes it (Go's time.Duration): "12ms", "1.5s", "6m0s".
export function goDuration(ms) {
  ms = Math.max(0, Math.ceil(ms));
  if (ms < 1000) return `${ms}ms`;
  const trim = (x) => String(Number(x.toFixed(3)));
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = (ms % 60000) / 1000;
  if (h) return `${h}h${m}m${trim(s)}s`;
  if (m) return `${m}m${trim(s)}s`;
  return `${trim(s)}s`;
}
