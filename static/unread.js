// The header's unread-notification badge, kept current by the unread-count long-poll (one
// request parked on the server at a time, woken by any new notification on any instance);
// and the notifications page's "mark read" buttons. The poll holds one of the browser's few
// connections to the server, so it is aborted when the page is left (also into the
// back-forward cache, where a request left open would hold it on), is not started again while
// the page is hidden, and starts again when the page is shown.
(function () {
  "use strict";
  var badge = document.getElementById("unread-count");
  if (!badge) return;
  var since = Number(badge.dataset.unread || 0);
  var controller = null; // the poll in flight
  var timer = 0; // the next poll, when one waits
  var left = false; // between pagehide and pageshow

  function show(n) {
    since = n;
    badge.dataset.unread = String(n);
    badge.textContent = String(n);
    badge.hidden = n <= 0;
  }

  function later(ms) {
    if (!left && !timer) timer = setTimeout(poll, ms);
  }

  function poll() {
    clearTimeout(timer);
    timer = 0;
    if (left || controller) return;
    if (document.visibilityState === "hidden") return; // visibilitychange starts it again
    var mine = new AbortController();
    controller = mine;
    fetch("/api/me/notifications/unread-count?wait=25&since=" + since, {
      cache: "no-store",
      credentials: "same-origin",
      signal: mine.signal
    })
      .then(function (r) {
        if (r.status === 401) throw new Error("signed out");
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (json) {
        if (controller !== mine) return;
        controller = null;
        show(Number(json.unread) || 0);
        later(50);
      })
      .catch(function (e) {
        // An aborted poll was stopped on purpose: whoever aborted it decides what follows.
        if (controller !== mine || mine.signal.aborted) return;
        controller = null;
        if (String(e.message) !== "signed out") later(5000);
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
  poll();

  // <button data-mark-read="all|ID">: marks read, then reloads the list.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-mark-read]") : null;
    if (!button) return;
    var which = button.dataset.markRead;
    var body = which === "all" ? { all: true } : { ids: [Number(which)] };
    button.disabled = true;
    fetch("/api/me/notifications/read", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    }).then(function () { window.location.reload(); }, function () { button.disabled = false; });
  });
})();
