// The shell: who is signed in, the hash router (#/..., so every URL is served
// by GET / and deep links survive a reload), the top bar, and the way back to
// sign-in when the session ends.
import { api, cookie, onUnauthorized, errorText } from './api.js';
import { h, clear, toast } from './dom.js';

const main = document.getElementById('main');
const state = { user: null, cleanup: null, expired: false };

export function currentUser() {
  return state.user;
}

// Views are loaded when first needed; the first paint needs only this file.
const views = {
  dashboard: () => import('./dashboard.js'),
  assessment: () => import('./assessment.js'),
  admin: () => import('./admin.js'),
  login: () => import('./login.js'),
};

function parseRoute() {
  const path = (location.hash || '#/').replace(/^#/, '') || '/';
  const parts = path.split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'assessments' && parts[1]) {
    const tab = parts[2] || 'questionnaire';
    return { view: 'assessment', id: parts[1], tab: tab === 'areas' ? 'questionnaire' : tab, area: tab === 'areas' ? parts[3] : undefined };
  }
  if (parts[0] === 'admin') return { view: 'admin', tab: parts[1] || 'users' };
  return { view: 'dashboard' };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function setNav(route) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = (a.dataset.nav === 'admin') === (route.view === 'admin');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

let renderSeq = 0;
async function render() {
  const seq = ++renderSeq;
  if (state.cleanup) {
    const fn = state.cleanup;
    state.cleanup = null;
    try {
      fn();
    } catch {
      // a view's cleanup must not stop the next view
    }
  }
  if (!state.user) {
    showTopbar(false);
    const { renderLogin } = await views.login();
    if (seq !== renderSeq) return;
    renderLogin(main, { expired: state.expired, signedIn: onSignedIn });
    return;
  }
  showTopbar(true);
  const route = parseRoute();
  setNav(route);
  try {
    const mod = await views[route.view]();
    if (seq !== renderSeq) return;
    const cleanup = await mod.render(main, route, { user: state.user, isCurrent: () => seq === renderSeq });
    if (seq !== renderSeq) {
      if (typeof cleanup === 'function') cleanup();
      return;
    }
    state.cleanup = typeof cleanup === 'function' ? cleanup : null;
  } catch (e) {
    if (seq !== renderSeq || (e && e.status === 401)) return;
    clear(main).append(
      h('div', { class: 'page' },
        h('h1', { tabindex: '-1' }, 'Something went wrong'),
        h('p', { class: 'error-text', role: 'alert' }, errorText(e)),
        h('p', null, h('a', { href: '#/' }, 'Back to the assessments'))));
  }
  if (!main.contains(document.activeElement) || document.activeElement === document.body) {
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
  }
}

function showTopbar(on) {
  const bar = document.getElementById('topbar');
  bar.hidden = !on;
  if (!on) return;
  document.getElementById('who').textContent = (state.user.username || state.user.name) + (state.user.role === 'admin' ? ' (admin)' : '');
  document.getElementById('nav-admin').hidden = state.user.role !== 'admin';
}

function onSignedIn(user) {
  state.user = user;
  state.expired = false;
  window.dispatchEvent(new CustomEvent('o2c:signed-in'));
  render();
}

// Any 401 after sign-in: the session expired or was revoked. Pending answers
// stay queued (and in localStorage); they are sent once signed in again.
onUnauthorized(() => {
  if (!state.user) return;
  state.user = null;
  state.expired = true;
  window.dispatchEvent(new CustomEvent('o2c:signed-out'));
  render();
});

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await api.del('/session', { auth401: false });
  } catch (e) {
    if (e.status !== 401) {
      toast(`Signing out failed: ${errorText(e)}`, 'error');
      return;
    }
  }
  state.user = null;
  state.expired = false;
  window.dispatchEvent(new CustomEvent('o2c:signed-out'));
  location.hash = '#/';
  render();
  toast('You have signed out.');
});

// "Larger text" for projectors; remembered in this browser.
const large = document.getElementById('large-text');
function applyLarge(on) {
  document.documentElement.classList.toggle('large', on);
  large.setAttribute('aria-pressed', String(on));
}
applyLarge(localStorage.getItem('o2c.large') === '1');
large.addEventListener('click', () => {
  const on = large.getAttribute('aria-pressed') !== 'true';
  localStorage.setItem('o2c.large', on ? '1' : '0');
  applyLarge(on);
});

window.addEventListener('hashchange', render);

// The skip link must not touch the hash: the hash is the route.
document.querySelector('.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  const target = main.querySelector('h1') || main;
  target.setAttribute('tabindex', '-1');
  target.focus();
});

async function start() {
  // No CSRF cookie: certainly not signed in; skip the /me round trip.
  if (cookie('o2c_csrf')) {
    try {
      state.user = await api.get('/me', { auth401: false });
      if (state.user && state.user.user) state.user = state.user.user;
    } catch (e) {
      state.user = null;
      state.expired = e.status === 401;
    }
  }
  render();
}

start();
