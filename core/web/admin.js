// Admin: users (add, disable, enable, remove, reset password), the audit log with filters,
// and the status page (generation, reload errors, provider, breaker, queue).
import { api, listOf, errorText } from './api.js';
import { h, clear, toast, modal, confirmDialog, fmtTime, nextId, timeEl } from './dom.js';

const TABS = [
  { id: 'users', label: 'Users' },
  { id: 'audit', label: 'Audit log' },
  { id: 'status', label: 'Status' },
];

export async function render(main, route, ctx) {
  const tab = TABS.find((t) => t.id === route.tab) || TABS[0];
  document.title = `${tab.label} · Admin — o2c`;
  const body = h('div', { class: 'admin-body' });
  clear(main).append(
    h('div', { class: 'page' },
      h('h1', null, 'Administration'),
      h('nav', { class: 'tabs', 'aria-label': 'Administration' },
        TABS.map((t) => h('a', { href: `#/admin/${t.id}`, class: 'tab', 'aria-current': t.id === tab.id ? 'page' : null }, t.label))),
      body));
  if (ctx.user.role !== 'admin' && tab.id !== 'status') {
    body.append(h('p', { class: 'notice' }, 'Only administrators manage users and read the audit log.'));
    return null;
  }
  if (tab.id === 'users') return users(body, ctx);
  if (tab.id === 'audit') return audit(body, ctx);
  return status(body, ctx);
}

// ---------------------------------------------------------------- users

// The account's name: `username` (older servers sent only `name`).
const nameOf = (u) => u.username || u.name;

async function users(body, { user: me, isCurrent }) {
  const host = h('div', null, h('p', { class: 'muted' }, 'Loading users…'));
  const add = h('button', { type: 'button', class: 'btn btn-primary', onclick: () => addUser().then((ok) => ok && load()) }, 'Add user');
  clear(body).append(h('div', { class: 'section-head' }, h('h2', null, 'Users'), add), host);

  // Enable, disable: one PATCH, then the list again.
  async function setDisabled(name, disabled) {
    if (disabled && !(await confirmDialog(`Disable ${name}?`, `${name} is signed out everywhere and cannot sign in until enabled again. Their assessments stay.`, 'Disable', true))) return;
    try {
      await api.patch(`/users/${encodeURIComponent(name)}`, { disabled });
      toast(`${name} is ${disabled ? 'disabled' : 'enabled'}.`);
      load();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  async function load() {
    let list;
    try {
      list = listOf(await api.get('/users'), 'users');
    } catch (e) {
      if (e.status !== 401) clear(host).append(h('p', { class: 'error-text', role: 'alert' }, errorText(e)));
      return;
    }
    if (!isCurrent()) return;
    const heirs = list.filter((u) => !u.disabled && !u.removed).map(nameOf);
    clear(host).append(h('table', { class: 'table' },
      h('caption', { class: 'visually-hidden' }, 'Users'),
      h('thead', null, h('tr', null,
        ['Username', 'Role', 'State', 'Created', 'Last sign-in'].map((t) => h('th', { scope: 'col' }, t)),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', null, list.map((u) => {
        const name = nameOf(u);
        const removed = !!u.removed;
        const disabled = !!(u.disabled || u.disabled_at || u.status === 'disabled');
        const self = name === nameOf(me);
        const state = removed ? [null, 'Removed'] : disabled ? ['pill-failed', 'Disabled'] : ['pill-done', 'Active'];
        const remove = (again) => removeUser(name, heirs.filter((n) => n !== name), again).then((ok) => ok && load());
        return h('tr', null,
          h('th', { scope: 'row' }, name, self ? h('span', { class: 'muted' }, ' (you)') : null),
          h('td', null, u.role),
          h('td', null, h('span', { class: ['pill', state[0]] }, state[1])),
          h('td', null, timeEl(u.created_at)),
          h('td', null, timeEl(u.last_login_at || u.last_login)),
          h('td', { class: 'cell-actions' },
            removed
              ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Reassign the assessments of ${name}`, onclick: () => remove(true) }, 'Reassign assessments')
              : [
                h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Reset the password of ${name}`, onclick: () => resetPassword(u).then(load) }, 'Reset password'),
                self ? null : h('button', {
                  type: 'button', class: 'btn btn-small', 'aria-label': `${disabled ? 'Enable' : 'Disable'} ${name}`,
                  onclick: () => setDisabled(name, !disabled),
                }, disabled ? 'Enable' : 'Disable'),
                self ? null : h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Remove ${name}`, onclick: () => remove(false) }, 'Remove'),
              ]));
      }))));
  }
  await load();
  return null;
}

// Remove NAME (or, AGAIN, give a removed account's assessments away): its
// assessments go to one of HEIRS or stay read-only. Nothing is deleted.
function removeUser(name, heirs, again) {
  return modal(again ? `Reassign the assessments of ${name}` : `Remove ${name}?`, (close) => {
    const heirId = nextId('heir');
    const KEEP = '';
    const heir = h('select', { id: heirId },
      again ? null : h('option', { value: KEEP }, 'Nobody: keep them read-only'),
      heirs.map((n) => h('option', { value: n }, n)));
    const message = h('p', { class: 'form-message', role: 'alert' });
    const form = h('form', { class: 'form', novalidate: true },
      h('p', null, again
        ? `${name} was removed. Their assessments are read-only until another account takes them over.`
        : `${name} is signed out everywhere and can never sign in again. Their name stays on their answers and in the audit log. Their assessments are not deleted: give them to another account, or keep them read-only (administrators still see them).`),
      h('div', { class: 'field' }, h('label', { for: heirId }, 'Give their assessments to'), heir),
      message,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'submit', class: ['btn', again ? 'btn-primary' : 'btn-danger'] }, again ? 'Reassign' : 'Remove')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (again && !heir.value) {
        message.textContent = 'Choose the account that takes the assessments over.';
        heir.focus();
        return;
      }
      const query = heir.value ? `?reassign_to=${encodeURIComponent(heir.value)}` : '';
      try {
        const r = await api.del(`/users/${encodeURIComponent(name)}${query}`);
        const moved = r && r.assessments_reassigned, kept = r && r.assessments_read_only;
        toast(heir.value
          ? `${again ? '' : `Removed ${name}. `}${moved} assessment${moved === 1 ? '' : 's'} now belong${moved === 1 ? 's' : ''} to ${heir.value}.`
          : `Removed ${name}. ${kept} assessment${kept === 1 ? ' stays' : 's stay'} read-only.`);
        close(true);
      } catch (e) {
        message.textContent = `Not ${again ? 'reassigned' : 'removed'}: ${errorText(e)}`;
      }
    });
    return form;
  });
}

function passwordField(labelText) {
  const id = nextId('pw');
  const input = h('input', { id, type: 'password', autocomplete: 'new-password', minlength: '12', required: true });
  return { input, field: h('div', { class: 'field' }, h('label', { for: id }, labelText), input, h('p', { class: 'hint' }, 'At least 12 characters. Share it in person or by phone; ask for it to be changed.')) };
}

function addUser() {
  return modal('Add user', (close) => {
    const nameId = nextId('name');
    const roleId = nextId('role');
    const name = h('input', { id: nameId, type: 'text', required: true, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
    const role = h('select', { id: roleId }, h('option', { value: 'consultant' }, 'Consultant'), h('option', { value: 'admin' }, 'Administrator'));
    const pw = passwordField('Initial password');
    const message = h('p', { class: 'form-message', role: 'alert' });
    const form = h('form', { class: 'form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: nameId }, 'Username'), name),
      h('div', { class: 'field' }, h('label', { for: roleId }, 'Role'), role),
      pw.field, message,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add user')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!name.value.trim()) {
        message.textContent = 'Enter a username.';
        name.focus();
        return;
      }
      if (pw.input.value.length < 12) {
        message.textContent = 'The password needs at least 12 characters.';
        pw.input.focus();
        return;
      }
      try {
        await api.post('/users', { username: name.value.trim(), role: role.value, password: pw.input.value });
        toast(`Added ${name.value.trim()}.`);
        close(true);
      } catch (e) {
        message.textContent = `Not added: ${errorText(e)}`;
      }
    });
    return form;
  });
}

function resetPassword(u) {
  const name = nameOf(u);
  return modal(`Reset the password of ${name}`, (close) => {
    const pw = passwordField('New password');
    const message = h('p', { class: 'form-message', role: 'alert' });
    const form = h('form', { class: 'form', novalidate: true }, pw.field, message,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'submit', class: 'btn btn-primary' }, 'Set password')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (pw.input.value.length < 12) {
        message.textContent = 'The password needs at least 12 characters.';
        pw.input.focus();
        return;
      }
      try {
        await api.patch(`/users/${encodeURIComponent(name)}`, { password: pw.input.value });
        toast(`The password of ${name} was changed; their sessions were signed out.`);
        close(true);
      } catch (e) {
        message.textContent = `Not changed: ${errorText(e)}`;
      }
    });
    return form;
  });
}

// ---------------------------------------------------------------- audit log

async function audit(body, { isCurrent }) {
  const f = {};
  const field = (key, label, attrs) => {
    const id = nextId(key);
    f[key] = h('input', { id, name: key, ...attrs });
    return h('div', { class: 'field' }, h('label', { for: id }, label), f[key]);
  };
  const results = h('div', null);
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
    field('user', 'User', { type: 'text', autocomplete: 'off' }),
    field('action', 'Action', { type: 'text', autocomplete: 'off', placeholder: 'e.g. assessment.delete' }),
    field('since', 'From', { type: 'date' }),
    field('until', 'To', { type: 'date' }),
    h('div', { class: 'field field-button' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Filter')));
  clear(body).append(h('h2', null, 'Audit log'), form, results);

  async function load() {
    const q = new URLSearchParams();
    if (f.user.value.trim()) q.set('user', f.user.value.trim());
    if (f.action.value.trim()) q.set('action', f.action.value.trim());
    if (f.since.value) q.set('since', new Date(`${f.since.value}T00:00:00`).toISOString());
    if (f.until.value) q.set('until', new Date(`${f.until.value}T23:59:59`).toISOString());
    q.set('limit', '200');
    clear(results).append(h('p', { class: 'muted' }, 'Loading…'));
    let entries;
    try {
      entries = listOf(await api.get(`/audit?${q}`), 'entries', 'events', 'audit');
    } catch (e) {
      if (e.status !== 401) clear(results).append(h('p', { class: 'error-text', role: 'alert' }, errorText(e)));
      return;
    }
    if (!isCurrent()) return;
    // Narrow on this side too, in case the server ignores a filter.
    const action = f.action.value.trim();
    const until = f.until.value ? new Date(`${f.until.value}T23:59:59`).getTime() : null;
    entries = entries.filter((e) => (!action || String(e.action || '').includes(action))
      && (!until || !e.at || new Date(e.at).getTime() <= until));
    if (!entries.length) {
      clear(results).append(h('p', { class: 'muted' }, 'No entries match these filters.'));
      return;
    }
    clear(results).append(h('div', { class: 'table-scroll' }, h('table', { class: 'table audit-table' },
      h('caption', { class: 'visually-hidden' }, 'Audit entries, newest first'),
      h('thead', null, h('tr', null, ['Time', 'User', 'Action', 'Details', 'Address'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, entries.map((e) => h('tr', null,
        h('td', { class: 'nowrap' }, fmtTime(e.time || e.at || e.created_at || e.ts)),
        h('td', null, e.user || e.actor || e.user_name || '—'),
        h('td', null, h('code', null, e.action || e.event || '—')),
        h('td', { class: 'audit-details' }, [e.target ? `target: ${e.target}` : '', detailsText(e.details ?? e.detail ?? e.data)].filter(Boolean).join(' · ')),
        h('td', { class: 'nowrap muted' }, e.address || '')))))));
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load();
  });
  await load();
  return null;
}

function detailsText(d) {
  if (d === undefined || d === null || d === '') return '';
  if (typeof d === 'string') {
    try {
      return detailsText(JSON.parse(d));
    } catch {
      return d;
    }
  }
  if (typeof d !== 'object') return String(d);
  return Object.entries(d).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
}

// ---------------------------------------------------------------- status

async function status(body, { isCurrent }) {
  const host = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const refresh = h('button', { type: 'button', class: 'btn', onclick: () => load() }, 'Refresh');
  clear(body).append(h('div', { class: 'section-head' }, h('h2', null, 'Status'), refresh), host);

  async function load() {
    let s;
    try {
      s = await api.get('/status');
    } catch (e) {
      if (e.status !== 401) clear(host).append(h('p', { class: 'error-text', role: 'alert' }, errorText(e)));
      return;
    }
    if (!isCurrent()) return;
    const reload = s.reload || {};
    const errors = reload.errors || [];
    const llm = s.llm || {};
    const breaker = llm.breaker || {};
    const breakerState = llm.breaker_state || (typeof breaker === 'string' ? breaker : breaker.state);
    const breakerUntil = llm.breaker_until || breaker.open_until || breaker.until;
    const queue = s.queue || {};
    const dl = (pairs) => h('dl', { class: 'facts' }, pairs.filter(Boolean).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v ?? '—')]));
    clear(host).append(
      h('div', { class: 'status-grid' },
        h('section', { class: 'card' },
          h('h3', null, 'Scripts and knowledge base'),
          dl([
            ['Generation', s.generation ? h('code', null, String(s.generation).slice(0, 16)) : h('span', { class: 'error-text' }, 'none loaded')],
            ['Reloads', `${reload.loads ?? 0} loaded, ${reload.failures ?? 0} failed`],
            reload.last_ms !== undefined ? ['Last reload', `${reload.last_ms} ms`] : null,
          ]),
          errors.length
            ? h('div', { class: 'reload-errors' },
              h('h4', { class: 'error-text' }, `The last reload failed: ${errors.length} error${errors.length > 1 ? 's' : ''}. The previous generation is still serving.`),
              h('ul', null, errors.map((e) => h('li', null, h('code', null, `${e.file || '?'}${e.line ? `:${e.line}` : ''}`), `: ${e.message}`))))
            : h('p', { class: 'ok-text' }, 'The last reload loaded without errors.')),
        h('section', { class: 'card' },
          h('h3', null, 'Language model'),
          dl([
            ['Provider', llm.provider === 'offline' ? 'offline drafter (no language model)' : llm.provider],
            llm.reason ? ['Why', llm.reason] : null,
            llm.model ? ['Model', llm.model] : null,
            llm.provider === 'offline' ? null
              : ['Circuit breaker', breakerState ? h('span', { class: ['pill', breakerState === 'closed' ? 'pill-done' : 'pill-failed'] }, breakerState) : '—'],
            breakerUntil ? ['Open until', fmtTime(breakerUntil)] : null,
            llm.queue_depth !== undefined ? ['Calls waiting', String(llm.queue_depth)] : null,
          ]),
          llm.scheduler ? h('details', { class: 'more' }, h('summary', null, 'Scheduler details'),
            dl(Object.entries(llm.scheduler).filter(([, v]) => typeof v !== 'object').map(([k, v]) => [k.replace(/_/g, ' '), String(v)]))) : null),
        h('section', { class: 'card' },
          h('h3', null, 'Report queue'),
          dl(Object.entries(queue).map(([k, v]) => [k.replace(/_/g, ' '), typeof v === 'object' ? JSON.stringify(v) : String(v)]))),
        s.server ? h('section', { class: 'card' },
          h('h3', null, 'Server'),
          dl(Object.entries(s.server).map(([k, v]) => [k.replace(/_/g, ' '), typeof v === 'object' ? JSON.stringify(v) : String(v)]))) : null));
  }
  await load();
  const timer = setInterval(load, 10000);
  return () => clearInterval(timer);
}
