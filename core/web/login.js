// Sign-in form: POST /api/v1/session; the server sets the session cookie.
import { api, errorText } from './api.js';
import { h, clear } from './dom.js';

export function renderLogin(main, { expired, signedIn }) {
  document.title = 'Sign in — o2c';
  const message = h('p', { class: 'form-message', role: 'alert' });
  if (expired) {
    message.textContent = 'Your session has expired, please sign in again';
    message.classList.add('notice');
  }
  const username = h('input', { id: 'login-username', name: 'username', type: 'text', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');

  const form = h('form', { class: 'login-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'login-username' }, 'Username'), username),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    message,
    button);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    message.classList.remove('notice');
    if (!username.value.trim() || !password.value) {
      message.textContent = 'Enter your username and password.';
      (username.value.trim() ? password : username).focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const res = await api.post('/session', { username: username.value.trim(), password: password.value }, { auth401: false });
      signedIn(res.user || { username: username.value.trim() });
    } catch (e) {
      button.disabled = false;
      button.textContent = 'Sign in';
      if (e.status === 401 || e.status === 403) message.textContent = 'The username or password is not right. Try again.';
      else if (e.status === 429) message.textContent = `Too many attempts: ${errorText(e)}`;
      else message.textContent = `Signing in failed: ${errorText(e)}`;
      password.select();
      password.focus();
    }
  });

  clear(main).append(
    h('div', { class: 'login-page' },
      h('section', { class: 'login-card', 'aria-labelledby': 'login-title' },
        h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'o2c'),
        h('h1', { id: 'login-title' }, 'Order-to-Cash maturity assessments'),
        h('p', { class: 'muted' }, 'Sign in to run and review assessments.'),
        form)));
  username.focus();
}
