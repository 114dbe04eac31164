// Small forms of the crowdfunding pages: a form with data-action posts its named fields as
// JSON with the session cookie (a review also sends the revision the reviewer saw and the
// button pressed), then reloads; an error is shown in the form's <output class="result">.
'use strict';

async function sendForm(form, submitter) {
  const out = form.querySelector('output.result');
  const show = (state, text) => { if (out) { out.dataset.state = state; out.textContent = text; } };
  const body = {};
  for (const el of form.elements) {
    if (el.name && el.tagName !== 'BUTTON' && el.value.trim() !== '') body[el.name] = el.value.trim();
  }
  if (submitter && submitter.name) body[submitter.name] = submitter.value;
  if (form.dataset.revision) body.revision = Number(form.dataset.revision);
  show('sending', '…');
  try {
    const res = await fetch(form.dataset.action, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.ok) { show('ok', 'OK'); window.location.reload(); return; }
    const answer = await res.json().catch(() => null);
    const error = answer && answer.error;
    show('error', error ? error.message : 'HTTP ' + res.status);
  } catch (e) {
    show('error', String(e));
  }
}

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.action) return;
  event.preventDefault();
  sendForm(form, event.submitter);
});
