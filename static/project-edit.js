// The project form: uploads chosen images (POST /api/images) and keeps their ids in hidden
// fields, reveals more reward slots, and saves the project as JSON — POST /api/projects for a
// new one, PATCH /api/projects/{id} for a change — as a draft or for review. The filled goal
// and reward slots become the lists; the deadline is sent with the browser's offset.
'use strict';

(function () {
  const form = document.getElementById('project-form');
  if (!form) return;
  const result = document.getElementById('form-result');
  const show = (state, text) => { result.dataset.state = state; result.textContent = text; };

  async function upload(file) {
    const res = await fetch('/api/images', {
      method: 'POST', credentials: 'same-origin', headers: { 'content-type': file.type || 'image/jpeg' }, body: file,
    });
    const answer = await res.json().catch(() => null);
    if (!res.ok) throw new Error(answer && answer.error ? answer.error.message : 'HTTP ' + res.status);
    return answer.id;
  }

  form.addEventListener('change', async (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== 'file') return;
    const scope = input.closest('.image-field');
    const hidden = scope.querySelector('input[type=hidden]');
    const preview = scope.querySelector('[data-preview]');
    const multiple = input.multiple;
    let ids = multiple ? hidden.value.split(',').filter(Boolean) : [];
    try {
      show('sending', '…');
      for (const file of input.files) ids.push(await upload(file));
      if (!multiple) ids = ids.slice(-1);
      hidden.value = ids.slice(0, 9).join(',');
      preview.replaceChildren(...ids.slice(0, 9).map((id) => {
        const img = document.createElement('img');
        img.src = '/media/' + id + '/thumb';
        img.alt = '';
        return img;
      }));
      show('ok', '');
    } catch (e) {
      show('error', String(e.message || e));
    }
  });

  for (const button of form.querySelectorAll('.add-slot')) {
    button.addEventListener('click', () => {
      const next = form.querySelector('.' + button.dataset.slots + '[hidden]');
      if (next) next.hidden = false;
      if (!form.querySelector('.' + button.dataset.slots + '[hidden]')) button.hidden = true;
    });
  }

  const value = (scope, name) => {
    const el = scope.querySelector('[name="' + name + '"]');
    return el ? el.value.trim() : '';
  };

  function body(submit) {
    const goals = [];
    for (const slot of form.querySelectorAll('.goal-slot')) {
      if (!value(slot, 'amount') && !value(slot, 'title')) continue;
      goals.push({
        amount: value(slot, 'amount'), title: value(slot, 'title'), description: value(slot, 'description'),
        images: value(slot, 'images').split(',').filter(Boolean),
      });
    }
    const rewards = [];
    for (const slot of form.querySelectorAll('.reward-slot')) {
      if (!value(slot, 'title') && !value(slot, 'min_amount')) continue;
      const quantity = value(slot, 'quantity');
      const reward = {
        title: value(slot, 'title'), description: value(slot, 'description'), min_amount: value(slot, 'min_amount'),
        ships: slot.querySelector('[name=ships]').checked,
      };
      if (quantity) reward.quantity = Number(quantity);
      rewards.push(reward);
    }
    const deadline = value(form, 'deadline');
    const cover = value(form, 'cover_image');
    return {
      title: value(form, 'title'), summary: value(form, 'summary'), story: form.querySelector('#story').value,
      deadline: deadline ? new Date(deadline).toISOString() : '',
      cover_image: cover || null,
      surplus: (form.querySelector('[name=surplus]:checked') || {}).value || 'refund',
      goals, rewards, submit,
    };
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const submit = event.submitter && event.submitter.value === 'submit';
    const id = form.dataset.id;
    show('sending', '…');
    try {
      const res = await fetch(id ? '/api/projects/' + id : '/api/projects', {
        method: id ? 'PATCH' : 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body(submit)),
      });
      const answer = await res.json().catch(() => null);
      if (!res.ok) {
        show('error', answer && answer.error ? answer.error.message : 'HTTP ' + res.status);
        return;
      }
      show('ok', result.dataset.saved);
      window.location.assign(submit ? '/projects/mine' : '/projects/' + answer.id + '/edit');
    } catch (e) {
      show('error', String(e));
    }
  });
})();
