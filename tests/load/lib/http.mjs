// A small HTTP client for the load generator and the drills: node:http with
// one keep-alive Agent (every request timed, with a hard timeout, never a
// hang), and a Server-Sent Events reader on its own non-pooled connection.
// Loopback only; standard library only.
import http from 'node:http';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Http {
  // BASE: "http://127.0.0.1:PORT".  TIMEOUT_MS: a request that has not been
  // answered by then counts as failed (status 0, error "timeout").
  // SOURCES: how many loopback addresses (127.0.0.1, .2, ...) the requests
  // come from, in turn: many users are many addresses, and the server limits
  // the connections of one address (limits.connections_per_address).
  constructor(base, { timeoutMs = 30000, sources = 1 } = {}) {
    this.setBase(base);
    this.timeoutMs = timeoutMs;
    this.sources = sources;
    this.nextSource = 0;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256,
      scheduling: 'lifo' });
  }

  // The loopback address the next request comes from.
  source() {
    const i = this.nextSource;
    this.nextSource = (i + 1) % this.sources;
    return `127.0.0.${1 + i}`;
  }

  setBase(base) {
    const u = new URL(base);
    if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') {
      throw new Error(`refusing a non-loopback target: ${base}`);
    }
    this.base = base;
    this.host = u.hostname;
    this.port = Number(u.port);
  }

  // -> { status, headers, text, json, ms, error }.  status 0 = no answer
  // (connection refused or reset, timeout); error says which.
  request(method, path, { body, headers = {}, token, timeoutMs = this.timeoutMs, raw = false } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    let payload;
    if (body instanceof Uint8Array) {
      payload = body;
    } else if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body));
      h['Content-Type'] ??= 'application/json';
    }
    if (payload) h['Content-Length'] = payload.length;
    const started = performance.now();
    return new Promise((resolve) => {
      let done = false;
      const finish = (r) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        r.ms = performance.now() - started;
        resolve(r);
      };
      const req = http.request({ host: this.host, port: this.port, method, path, headers: h,
        agent: this.agent, localAddress: this.source() }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const out = { status: res.statusCode, headers: res.headers };
          if (raw) out.body = buf;
          out.text = buf.toString('utf8');
          if ((res.headers['content-type'] || '').startsWith('application/json')) {
            try { out.json = JSON.parse(out.text); } catch { out.json = undefined; }
          }
          finish(out);
        });
        res.on('error', (e) => finish({ status: 0, error: e.code || e.message }));
        res.on('aborted', () => finish({ status: 0, error: 'aborted' }));
      });
      const timer = setTimeout(() => {
        finish({ status: 0, error: 'timeout' });
        req.destroy(new Error('timeout'));
      }, timeoutMs);
      req.on('error', (e) => finish({ status: 0, error: e.code || e.message }));
      req.end(payload);
    });
  }

  // Follows an SSE stream until it ends, ON_EVENT returns true (stop), or
  // TIMEOUT_MS passes.  -> { status, ended: 'eof'|'stopped'|'timeout'|'error',
  // error, firstByteMs, events: count, lastId }.
  sse(path, { token, lastEventId, onEvent, timeoutMs = 600000 } = {}) {
    const headers = { Accept: 'text/event-stream' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (lastEventId) headers['Last-Event-ID'] = lastEventId;
    const started = performance.now();
    return new Promise((resolve) => {
      let done = false;
      let count = 0;
      let lastId = lastEventId;
      let status = 0;
      let firstByteMs;
      const finish = (ended, error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ status, ended, error, firstByteMs, events: count, lastId,
          ms: performance.now() - started });
      };
      const req = http.request({ host: this.host, port: this.port, method: 'GET', path, headers,
        agent: false, localAddress: this.source() }, (res) => {
        status = res.statusCode;
        firstByteMs = performance.now() - started;
        if (status !== 200) {
          res.resume();
          res.on('end', () => finish('error', `HTTP ${status}`));
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const e = {};
            for (const line of block.split('\n')) {
              const m = /^([a-z]+): ?(.*)$/.exec(line);
              if (!m) continue;
              if (m[1] === 'data') {
                try { e.data = JSON.parse(m[2]); } catch { e.data = m[2]; }
              } else {
                e[m[1]] = m[2];
              }
            }
            if (!e.event) continue;
            count++;
            if (e.id) lastId = e.id;
            if (onEvent && onEvent(e)) { finish('stopped'); return; }
          }
        });
        res.on('end', () => finish('eof'));
        res.on('error', (err) => finish('error', err.code || err.message));
        res.on('aborted', () => finish('error', 'aborted'));
      });
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      req.on('error', (err) => finish('error', err.code || err.message));
      req.end();
    });
  }

  close() {
    this.agent.destroy();
  }
}
