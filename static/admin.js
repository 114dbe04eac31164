// Admin forms: a form with data-api (and data-method) sends its named fields to the admin
// API as JSON with the session cookie (a POST with an Idempotency-Key per distinct content),
// then reloads the page; an error is shown in the form's <output class="result">. data-type
// on a field says how to read it.
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

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
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
  if (method === 'POST') {
    // The same fields sent again (a double click) carry the same Idempotency-Key: one
    // refund, not two. Changed fields are a new request with a new key.
    if (form.idempotencyBody !== init.body) {
      form.idempotencyBody = init.body;
      form.idempotencyKey = newKey();
    }
    init.headers['idempotency-key'] = form.idempotencyKey;
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
