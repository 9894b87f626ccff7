// The JSON API client: same-origin fetch with the session cookie, the CSRF
// header on every change, errors as ApiError, and one place that reacts to
// an expired session (401).

export class ApiError extends Error {
  constructor(status, code, message, details, body) {
    super(message || `request failed (${status})`);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.body = body;
  }
}

let unauthorized = () => {};
// fn() runs when any request (other than signing in) answers 401.
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

// request('PATCH', '/assessments/1/answers', {body: {...}})
// options: body (JSON-encoded unless `raw`), raw (Blob/ArrayBuffer sent as is
// with contentType), signal, auth401 (false: a 401 is the caller's business).
export async function request(method, path, options = {}) {
  const headers = { Accept: 'application/json' };
  if (UNSAFE.has(method)) {
    const token = cookie('o2c_csrf');
    if (token) headers['X-CSRF-Token'] = token;
  }
  let body;
  if (options.raw !== undefined) {
    body = options.raw;
    headers['Content-Type'] = options.contentType || 'application/octet-stream';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method, headers, body, credentials: 'same-origin', signal: options.signal, cache: 'no-store',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server could not be reached. Check the connection; o2c retries changes on its own.');
  }
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (res.status !== 204) {
    if (type.includes('json')) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    } else {
      data = await res.text();
    }
  }
  if (res.status === 401 && options.auth401 !== false) {
    unauthorized();
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(res.status, err.code || String(res.status), err.message || res.statusText, err.details, data);
  }
  return data;
}

export const api = {
  get: (path, o) => request('GET', path, o),
  post: (path, body, o) => request('POST', path, { ...o, body }),
  put: (path, body, o) => request('PUT', path, { ...o, body }),
  patch: (path, body, o) => request('PATCH', path, { ...o, body }),
  del: (path, o) => request('DELETE', path, o),
};

// Lists may come as an array or wrapped ({items: [...]}, {assessments: [...]}).
export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (!data || typeof data !== 'object') return [];
  for (const k of [...keys, 'items', 'data', 'results']) {
    if (Array.isArray(data[k])) return data[k];
  }
  return [];
}

// Human text of an error, with the field messages of a 400 when present.
export function errorText(e) {
  if (!(e instanceof ApiError)) return String(e && e.message ? e.message : e);
  let text = e.message;
  const fields = e.details && (e.details.problems || e.details.errors || e.details.fields);
  if (Array.isArray(fields) && fields.length > 1) {
    text += ': ' + fields.map((f) => (f.field ? `${f.field} — ${f.message}` : f.message || String(f))).join('; ');
  }
  return text;
}

// Questionnaires do not change while the generation stays: cache per type.
const questionnaires = new Map();
export async function questionnaire(type) {
  if (!questionnaires.has(type)) {
    const p = api.get(`/assessment-types/${encodeURIComponent(type)}`).catch((e) => {
      questionnaires.delete(type);
      throw e;
    });
    questionnaires.set(type, p);
  }
  return questionnaires.get(type);
}

export function forgetQuestionnaires() {
  questionnaires.clear();
}
