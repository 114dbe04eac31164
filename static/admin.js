// Admin forms: a form with data-api (and data-method) sends its named fields to the admin
// API as JSON with the session cookie, then reloads the page; an error is shown in the
// form's <output class="result">. data-type on a field says how to read it.
'use strict';

function fieldValue(el) {
  const text = el.value.trim();
  switch (el.dataset.type) {
    case 'int': return text === '' ? undefined : Number(text);
    case 'int-or-null': return text === '' ? null : Number(text);
    case 'text-or-null': return text === '' ? null : text;
    case 'bool': return el.type === 'checkbox' ? el.checked : text === 'true';
    case 'bool-or-null': return text === '' ? null : text === 'true';
    case 'ids': return text.split(/[\s,]+/).filter(Boolean).map(Number);
    default: return el.value;
  }
}

async function send(form) {
  const out = form.querySelector('output.result');
  const show = (state, text) => {
    if (out) {
      out.dataset.state = state;
      out.textContent = text;
    }
  };
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const method = form.dataset.method || 'POST';
  const body = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    const value = fieldValue(el);
    if (value !== undefined) body[el.name] = value;
  }
  const init = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'DELETE') {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  show('sending', '…');
  try {
    const res = await fetch(form.dataset.api, init);
    if (res.ok) {
      show('ok', 'OK');
      window.location.reload();
      return;
    }
    const answer = await res.json().catch(() => null);
    const error = answer && answer.error;
    show('error', error ? error.code + ': ' + error.message : 'HTTP ' + res.status);
  } catch (e) {
    show('error', String(e));
  }
}

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  event.preventDefault();
  send(form);
});
