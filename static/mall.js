// The mall's pages: forms with data-api send their named fields to the API as JSON (a POST
// with an Idempotency-Key per distinct content, so a double click is one order), then reload
// or go where the answer says; the product page's SKU picker shows the price and stock of the
// chosen specs; the cart's quantities, checkout, and the seller's product form (SKU rows and
// picture uploads). Errors are shown in the form's <output class="result">.
'use strict';

function fieldValue(el) {
  const text = el.value.trim();
  switch (el.dataset.type) {
    case 'int': return text === '' ? undefined : Number(text);
    case 'int-or-null': return text === '' ? null : Number(text);
    case 'text-or-null': return text === '' ? null : text;
    case 'bool': return el.type === 'checkbox' ? el.checked : text === 'true';
    default: return el.value;
  }
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function show(out, state, text) {
  if (out) {
    out.dataset.state = state;
    out.textContent = text;
  }
}

// Sends `body` to `url`; resolves to the answer's JSON, or throws the API's error text.
// `keyHolder` keeps the Idempotency-Key of a POST while its body stays the same.
async function call(url, method, body, keyHolder) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method === 'POST' && keyHolder) {
    if (keyHolder.idempotencyBody !== init.body) {
      keyHolder.idempotencyBody = init.body;
      keyHolder.idempotencyKey = newKey();
    }
    init.headers['idempotency-key'] = keyHolder.idempotencyKey;
  }
  const res = await fetch(url, init);
  const answer = await res.json().catch(() => null);
  if (res.status === 401) {
    window.location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
    throw new Error('');
  }
  if (!res.ok) {
    const error = answer && answer.error;
    throw new Error(error ? error.code + ': ' + error.message : 'HTTP ' + res.status);
  }
  return answer;
}

// Forms with data-api (order actions, claims, addresses).
document.addEventListener('submit', async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api || form.id === 'product-form') return;
  event.preventDefault();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const body = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    const value = fieldValue(el);
    if (value !== undefined) body[el.name] = value;
  }
  const out = form.querySelector('output.result');
  show(out, 'sending', '…');
  try {
    await call(form.dataset.api, form.dataset.method || 'POST', body, form);
    show(out, 'ok', 'OK');
    window.location.reload();
  } catch (e) {
    show(out, 'error', e.message);
  }
});

// The product page: pick specs → the SKU, its price and stock; add to cart; buy now; favorite.
function productPage() {
  const form = document.getElementById('sku-form');
  if (!form) return;
  const skus = JSON.parse(form.dataset.skus || '[]');
  const price = document.getElementById('sku-price');
  const stock = document.getElementById('sku-stock');
  const skuId = document.getElementById('sku-id');
  const quantity = document.getElementById('quantity');
  const out = document.getElementById('cart-result');
  const dimensions = Array.from(form.querySelectorAll('.sku-dimension'));
  const chosen = () => {
    const picked = {};
    for (const d of dimensions) {
      const input = d.querySelector('input:checked');
      if (!input) return null;
      picked[d.dataset.key] = input.value;
    }
    return skus.find((s) => Object.keys(picked).every((k) => s.specs[k] === picked[k])
      && Object.keys(s.specs).length === Object.keys(picked).length) || null;
  };
  const update = () => {
    const sku = chosen();
    skuId.value = sku ? String(sku.id) : '';
    if (!sku) {
      price.textContent = price.dataset.default;
      stock.textContent = stock.dataset.pick;
      return;
    }
    price.textContent = '¥' + sku.price;
    stock.dataset.stock = String(sku.stock);
    stock.textContent = sku.stock > 0 ? stock.dataset.template.replace('{n}', String(sku.stock)) : stock.dataset.none;
    quantity.max = String(Math.max(1, Math.min(999, sku.stock)));
  };
  form.addEventListener('change', update);
  update();
  const needSignIn = () => {
    if (form.dataset.signedIn === 'true') return false;
    window.location.href = form.dataset.login;
    return true;
  };
  const picked = () => {
    if (!skuId.value) {
      show(out, 'error', stock.dataset.pick);
      return null;
    }
    return { sku: Number(skuId.value), quantity: Math.max(1, Number(quantity.value) || 1) };
  };
  // The API sets a line's quantity: adding puts this many on top of what the cart holds.
  document.getElementById('add-to-cart').addEventListener('click', async () => {
    if (needSignIn()) return;
    const p = picked();
    if (!p) return;
    show(out, 'sending', '…');
    try {
      const now = await call('/api/mall/cart', 'GET');
      const line = now.groups.flatMap((g) => g.items).find((l) => l.sku_id === p.sku);
      const quantity = Math.min(999, (line ? line.quantity : 0) + p.quantity);
      const cart = await call('/api/mall/cart/items/' + p.sku, 'PUT', { quantity });
      show(out, 'ok', out.dataset.added + ' (' + cart.count + ')');
      document.getElementById('view-cart').hidden = false;
    } catch (e) {
      show(out, 'error', e.message);
    }
  });
  document.getElementById('buy-now').addEventListener('click', () => {
    if (needSignIn()) return;
    const p = picked();
    if (!p) return;
    window.location.href = '/mall/checkout?sku=' + p.sku + '&quantity=' + p.quantity;
  });
  const favorite = document.getElementById('favorite');
  favorite.addEventListener('click', async () => {
    if (needSignIn()) return;
    const on = favorite.dataset.favorited !== 'true';
    try {
      await call('/api/mall/favorites/' + document.getElementById('product').dataset.productId, on ? 'PUT' : 'DELETE');
      favorite.dataset.favorited = String(on);
      favorite.textContent = on ? favorite.dataset.on : favorite.dataset.off;
    } catch (e) {
      show(out, 'error', e.message);
    }
  });
}

// The cart: a changed quantity (0 removes) is sent at once, then the page reloads.
function cartPage() {
  const cart = document.getElementById('cart');
  if (!cart) return;
  const out = document.getElementById('cart-result');
  const set = async (sku, quantity) => {
    try {
      await call('/api/mall/cart/items/' + sku, 'PUT', { quantity });
      window.location.reload();
    } catch (e) {
      show(out, 'error', e.message);
    }
  };
  cart.addEventListener('change', (event) => {
    const input = event.target;
    if (input.classList.contains('cart-quantity')) set(input.dataset.skuId, Math.max(0, Number(input.value) || 0));
  });
  cart.addEventListener('click', (event) => {
    const button = event.target.closest('.cart-remove');
    if (button) set(button.dataset.skuId, 0);
  });
}

function yuan(fen) {
  return (fen / 100).toFixed(2);
}

// Checkout: the coupon changes what is paid; placing the order goes to its pay page.
function checkoutPage() {
  const form = document.getElementById('checkout-form');
  if (!form) return;
  const total = Number(form.dataset.totalFen);
  const coupon = document.getElementById('coupon');
  const update = () => {
    const option = coupon.selectedOptions[0];
    const off = option ? Number(option.dataset.discountFen) : 0;
    document.getElementById('discount').textContent = '−¥' + yuan(off);
    document.getElementById('payable').textContent = '¥' + yuan(total - off);
  };
  coupon.addEventListener('change', update);
  update();
  const out = document.getElementById('checkout-result');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const address = document.querySelector('input[name=address_id]:checked');
    const channel = form.querySelector('input[name=channel]:checked');
    const body = {
      items: JSON.parse(form.dataset.items),
      address_id: address ? Number(address.value) : null,
      coupon_id: coupon.value === '' ? null : Number(coupon.value),
      channel: channel ? channel.value : null,
      remark: document.getElementById('remark').value,
    };
    const button = document.getElementById('place-order');
    button.disabled = true;
    show(out, 'sending', '…');
    try {
      const answer = await call('/api/mall/orders', 'POST', body, form);
      window.location.href = answer.payment.pay_url;
    } catch (e) {
      show(out, 'error', e.message);
      button.disabled = false;
    }
  });
}

// The seller's product form: SKU rows, picture uploads, then one JSON request.
function productForm() {
  const form = document.getElementById('product-form');
  if (!form) return;
  const rows = document.getElementById('sku-rows');
  const template = document.getElementById('sku-template');
  const secondHand = document.getElementById('product-second-hand');
  const out = document.getElementById('product-result');
  document.getElementById('sku-add').addEventListener('click', () => {
    rows.appendChild(template.content.cloneNode(true));
  });
  rows.addEventListener('click', (event) => {
    const button = event.target.closest('.sku-remove');
    if (button && rows.children.length > 1) button.closest('.sku-row').remove();
  });
  const images = document.getElementById('image-list');
  images.addEventListener('click', (event) => {
    const button = event.target.closest('.image-remove');
    if (button) button.closest('li').remove();
  });
  document.getElementById('image-upload').addEventListener('change', async (event) => {
    for (const file of event.target.files) {
      show(out, 'sending', '…');
      try {
        const res = await fetch('/api/images', {
          method: 'POST', credentials: 'same-origin', headers: { 'content-type': file.type || 'image/jpeg' }, body: file,
        });
        const answer = await res.json();
        if (!res.ok) throw new Error(answer.error.code + ': ' + answer.error.message);
        const li = document.createElement('li');
        li.dataset.imageId = answer.id;
        const img = document.createElement('img');
        img.src = answer.thumb_url;
        img.alt = '';
        li.appendChild(img);
        images.appendChild(li);
        show(out, 'ok', 'OK');
      } catch (e) {
        show(out, 'error', e.message);
      }
    }
    event.target.value = '';
  });
  const specs = (text) => {
    const out = {};
    for (const part of text.split(/[,，;；]/)) {
      const pair = part.split(/[:：=]/);
      if (pair.length === 2 && pair[0].trim() !== '') out[pair[0].trim()] = pair[1].trim();
    }
    return out;
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      name: document.getElementById('product-name').value,
      category_id: Number(document.getElementById('product-category').value),
      description: document.getElementById('product-description').value,
      images: Array.from(images.children, (li) => li.dataset.imageId),
      second_hand: secondHand.checked,
      listed: document.getElementById('product-listed').checked,
      skus: Array.from(rows.querySelectorAll('.sku-row'), (row) => ({
        specs: specs(row.querySelector('.sku-specs').value),
        price: row.querySelector('.sku-price').value.trim(),
        stock: Number(row.querySelector('.sku-stock').value),
      })),
    };
    show(out, 'sending', '…');
    try {
      const product = await call(form.dataset.api, form.dataset.method, body, form);
      window.location.href = '/mall/products/' + product.id;
    } catch (e) {
      show(out, 'error', e.message);
    }
  });
}

productPage();
cartPage();
checkoutPage();
productForm();
