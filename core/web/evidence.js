// Evidence images: drag and drop or pick, previews, clear errors for the
// wrong type or size. PUT /assessments/{id}/attachments/{name} with the raw
// bytes; the server checks the image's magic bytes itself.
import { request, listOf, errorText } from './api.js';
import { h, clear, toast, confirmDialog, fmtTime } from './dom.js';

const TYPES = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/gif': 'gif' };
const MAX_BYTES = 10 * 1024 * 1024;

function mb(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

// A name the server accepts: letters, digits, '.', '_', '-', with the
// extension matching the type.
export function safeName(file) {
  const ext = TYPES[file.type] || 'bin';
  let stem = file.name.replace(/\.[^.]*$/, '').normalize('NFKD').replace(/[^\w.-]+/g, '-').replace(/\.{2,}/g, '.').replace(/^[^A-Za-z0-9]+|[-._]+$/g, '').slice(0, 80);
  if (!stem) stem = 'evidence';
  return `${stem}.${ext}`;
}

function problemOf(file) {
  if (!TYPES[file.type]) {
    return `“${file.name}” is not an image o2c can keep: attach PNG, JPEG, WebP or GIF files${file.type ? ` (this one is ${file.type})` : ''}.`;
  }
  if (file.size > MAX_BYTES) return `“${file.name}” is ${mb(file.size)}; the limit is ${mb(MAX_BYTES)}. Resize or crop it and try again.`;
  if (file.size === 0) return `“${file.name}” is empty.`;
  return null;
}

const url = (st, name) => `/api/v1/assessments/${encodeURIComponent(st.id)}/attachments/${encodeURIComponent(name)}`;

export async function renderTab(body, st, route, { isCurrent }) {
  const input = h('input', { type: 'file', id: 'evidence-file', 'aria-label': 'Image files', 'aria-hidden': 'true', multiple: true, accept: Object.keys(TYPES).join(','), class: 'visually-hidden', tabindex: '-1' });
  const pick = h('button', { type: 'button', class: 'btn btn-primary', onclick: () => input.click() }, 'Choose images');
  const errors = h('ul', { class: 'upload-errors', role: 'alert' });
  const grid = h('ul', { class: 'evidence-grid', 'aria-label': 'Attached images' });
  const zone = h('div', { class: 'dropzone', tabindex: '-1' },
    h('p', { class: 'dropzone-title' }, 'Drop images here'),
    h('p', { class: 'muted' }, 'Photos or screenshots of reports, dunning letters, invoices or dashboards. PNG, JPEG, WebP or GIF, up to 10 MB each. They are sent with the report prompts as evidence.'),
    pick, input);

  clear(body).append(h('div', { class: 'evidence' }, h('h2', null, 'Evidence'), zone, errors, grid));

  let objectUrls = [];
  const card = (name, src, meta, onDelete) => h('li', { class: 'evidence-item' },
    h('figure', null,
      h('img', { src, alt: `Evidence: ${name}`, loading: 'lazy' }),
      h('figcaption', null, h('span', { class: 'evidence-name' }, name), meta ? h('span', { class: 'muted small' }, meta) : null)),
    onDelete ? h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'aria-label': `Remove ${name}`, onclick: onDelete }, 'Remove') : null);

  async function list() {
    let items;
    try {
      items = listOf(await request('GET', `/assessments/${encodeURIComponent(st.id)}/attachments`), 'attachments');
    } catch (e) {
      if (e.status !== 401) errors.append(h('li', null, `The list of images could not be loaded: ${errorText(e)}`));
      return;
    }
    if (!isCurrent()) return;
    clear(grid);
    if (!items.length) {
      grid.append(h('li', { class: 'muted evidence-empty' }, 'No images attached yet.'));
      return;
    }
    for (const a of items) {
      const name = a.name || a;
      const meta = [a.size ? mb(a.size) : null, a.created_at ? fmtTime(a.created_at) : null].filter(Boolean).join(' · ');
      grid.append(card(name, url(st, name), meta, async () => {
        if (!(await confirmDialog('Remove this image?', `“${name}” will no longer be part of the evidence.`, 'Remove', true))) return;
        try {
          await request('DELETE', `/assessments/${encodeURIComponent(st.id)}/attachments/${encodeURIComponent(name)}`);
          toast(`Removed ${name}.`);
          list();
        } catch (e) {
          toast(`Removing failed: ${errorText(e)}`, 'error');
        }
      }));
    }
  }

  async function upload(files) {
    clear(errors);
    for (const file of files) {
      const problem = problemOf(file);
      if (problem) {
        errors.append(h('li', null, problem));
        continue;
      }
      const name = safeName(file);
      const blobUrl = URL.createObjectURL(file);
      objectUrls.push(blobUrl);
      const item = card(name, blobUrl, 'Uploading…');
      item.classList.add('is-uploading');
      const empty = grid.querySelector('.evidence-empty');
      if (empty) empty.remove();
      grid.prepend(item);
      try {
        await request('PUT', `/assessments/${encodeURIComponent(st.id)}/attachments/${encodeURIComponent(name)}`, { raw: file, contentType: file.type });
      } catch (e) {
        item.remove();
        const why = e.status === 413 ? `it is larger than the server accepts (${errorText(e)})`
          : e.status === 415 || e.status === 400 ? errorText(e) : errorText(e);
        errors.append(h('li', null, `“${file.name}” was not attached: ${why}`));
      }
    }
    await list();
  }

  input.addEventListener('change', () => {
    upload([...input.files]);
    input.value = '';
  });
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    zone.classList.add('is-over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('is-over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('is-over');
    upload([...(ev.dataTransfer ? ev.dataTransfer.files : [])]);
  });

  await list();
  return () => {
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = [];
  };
}
