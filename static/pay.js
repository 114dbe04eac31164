// The pay page: keeps #payment-status current with one long-poll in flight at a time,
// counts down to expiry, handles the final state once, drives the sandbox button, and
// reloads once the QR code of an order still being made at the provider is ready. The poll
// holds one of the browser's few connections to the server: it is aborted when the page is
// left (also into the back-forward cache), not started again while the page is hidden, and
// started again when the page is shown (at once: the payer may have paid meanwhile).
(function () {
  "use strict";
  var page = document.getElementById("pay");
  var statusEl = document.getElementById("payment-status");
  if (!page || !statusEl) return;
  var orderNo = page.dataset.orderNo;
  var expiresAt = Number(page.dataset.expiresAt);
  // The words for each status come with the page, in its language.
  var labels = {
    pending: statusEl.dataset.labelPending,
    paid: statusEl.dataset.labelPaid,
    closed: statusEl.dataset.labelClosed,
    refunded: statusEl.dataset.labelRefunded
  };
  var finished = false;
  var controller = null; // the poll in flight
  var timer = 0; // the next poll, after a failure
  var left = false; // between pagehide and pageshow
  var failures = 0;

  function show(status) {
    statusEl.dataset.status = status;
    statusEl.textContent = labels[status] || status;
    page.dataset.state = status;
  }

  function apply(payment) {
    if (!payment || !payment.status) return;
    show(payment.status);
    if (payment.status !== "pending" && !finished) {
      finished = true; // final state handled exactly once
      if (payment.late) page.dataset.late = "true";
    }
  }

  function poll() {
    clearTimeout(timer);
    timer = 0;
    if (finished || left || controller) return;
    if (document.visibilityState === "hidden") return; // visibilitychange starts it again
    var mine = new AbortController();
    controller = mine;
    fetch("/api/payments/" + encodeURIComponent(orderNo) + "?wait=25", { cache: "no-store", signal: mine.signal })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (payment) {
        if (controller !== mine) return;
        controller = null;
        failures = 0;
        apply(payment);
        poll();
      })
      .catch(function () {
        // An aborted poll was stopped on purpose: whoever aborted it decides what follows.
        if (controller !== mine || mine.signal.aborted) return;
        controller = null;
        failures += 1;
        if (!left) timer = setTimeout(poll, Math.min(10000, 500 * Math.pow(2, failures)));
      });
  }

  function stop() {
    clearTimeout(timer);
    timer = 0;
    var mine = controller;
    controller = null;
    if (mine) mine.abort();
  }

  window.addEventListener("pagehide", function () {
    left = true;
    stop();
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    left = false;
    poll();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") poll();
  });

  var countdown = document.getElementById("countdown");
  function tick() {
    if (!countdown || finished) return;
    var left = Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
    var m = Math.floor(left / 60), s = left % 60;
    countdown.textContent = (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
    if (left === 0) page.dataset.expired = "true";
  }

  var form = document.getElementById("sandbox-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = document.getElementById("simulate-payment");
      if (button) button.disabled = true;
      fetch(form.action, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (payment) {
          if (payment) apply(payment);
          else if (button) button.disabled = false;
        })
        .catch(function () { if (button) button.disabled = false; });
    });
  }

  // A purchase whose provider order is still being made has no QR code yet (409 until then).
  function awaitQr() {
    if (finished) return;
    fetch("/api/payments/" + encodeURIComponent(orderNo) + "/qr.svg", { cache: "no-store" })
      .then(function (r) { if (r.ok && !finished) location.reload(); else setTimeout(awaitQr, 2000); })
      .catch(function () { setTimeout(awaitQr, 2000); });
  }
  if (document.getElementById("qr-preparing")) setTimeout(awaitQr, 1000);

  show(statusEl.dataset.status);
  if (statusEl.dataset.status !== "pending") finished = true;
  tick();
  setInterval(tick, 1000);
  poll();
})();
