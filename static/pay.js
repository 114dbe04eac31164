// The pay page: keeps #payment-status current with one long-poll in flight at a time,
// counts down to expiry, handles the final state once, drives the sandbox button, and
// reloads once the QR code of an order still being made at the provider is ready.
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
  var inFlight = false;
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
    if (finished || inFlight) return;
    inFlight = true;
    fetch("/api/payments/" + encodeURIComponent(orderNo) + "?wait=25", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (payment) {
        inFlight = false;
        failures = 0;
        apply(payment);
        if (!finished) poll();
      })
      .catch(function () {
        inFlight = false;
        failures += 1;
        setTimeout(poll, Math.min(10000, 500 * Math.pow(2, failures)));
      });
  }

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
