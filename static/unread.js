// The header's unread-notification badge, kept current by the unread-count long-poll (one
// request parked on the server at a time, woken by any new notification on any instance);
// and the notifications page's "mark read" buttons.
(function () {
  "use strict";
  var badge = document.getElementById("unread-count");
  if (!badge) return;
  var since = Number(badge.dataset.unread || 0);

  function show(n) {
    since = n;
    badge.dataset.unread = String(n);
    badge.textContent = String(n);
    badge.hidden = n <= 0;
  }

  function poll() {
    fetch("/api/me/notifications/unread-count?wait=25&since=" + since, {
      cache: "no-store",
      credentials: "same-origin"
    })
      .then(function (r) {
        if (r.status === 401) throw new Error("signed out");
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (json) {
        show(Number(json.unread) || 0);
        setTimeout(poll, 50);
      })
      .catch(function (e) {
        if (String(e.message) !== "signed out") setTimeout(poll, 5000);
      });
  }
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
