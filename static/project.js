// The project page: keeps the progress (raised, backers, the bar, each goal's reached mark,
// each reward's units left, the status) current by polling the cached project JSON every two
// seconds, and drives the follow button. The words come with the page, in its language.
(function () {
  "use strict";
  var page = document.getElementById("project");
  if (!page) return;
  var id = page.dataset.projectId;
  var failures = 0;

  function fill(pattern, n) { return (pattern || "").replace("%n%", n); }

  function yuan(fen) {
    var sign = fen < 0 ? "-" : "";
    fen = Math.abs(fen);
    var cents = String(fen % 100);
    return sign + Math.floor(fen / 100) + "." + (cents.length < 2 ? "0" + cents : cents);
  }

  function apply(p) {
    var raised = document.getElementById("raised");
    if (raised) { raised.textContent = yuan(p.raised_fen); raised.dataset.raisedFen = p.raised_fen; }
    var backers = document.getElementById("backers");
    if (backers) backers.textContent = fill(page.dataset.labelBackers, p.backers);
    var status = document.getElementById("project-status");
    if (status && status.dataset.status !== p.status) { status.dataset.status = p.status; page.dataset.status = p.status; }
    var next = null;
    var goals = document.querySelectorAll("#goals .goal");
    p.goals.forEach(function (goal, i) {
      var el = goals[i];
      if (!el) return;
      el.dataset.reached = goal.reached ? "true" : "false";
      var mark = el.querySelector(".goal-mark");
      if (mark) mark.textContent = goal.reached ? page.dataset.labelReached : page.dataset.labelOpen;
      if (!goal.reached && next === null) next = goal.amount_fen;
    });
    if (next === null && p.goals.length) next = p.goals[p.goals.length - 1].amount_fen;
    var bar = document.getElementById("progress");
    if (bar && next) bar.value = Math.min(100, Math.floor(p.raised_fen * 100 / next));
    p.rewards.forEach(function (reward) {
      var el = document.querySelector('#rewards [data-reward-id="' + reward.id + '"] .remaining');
      if (!el || reward.remaining === null) return;
      el.textContent = reward.remaining === 0 ? page.dataset.labelSoldOut : fill(page.dataset.labelRemaining, reward.remaining);
    });
  }

  function poll() {
    fetch("/api/projects/" + encodeURIComponent(id), { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (p) { failures = 0; apply(p); setTimeout(poll, 2000); })
      .catch(function () { failures += 1; setTimeout(poll, Math.min(30000, 2000 * Math.pow(2, failures))); });
  }

  var follow = document.getElementById("follow");
  if (follow) {
    follow.addEventListener("click", function () {
      var on = follow.dataset.following !== "true";
      follow.disabled = true;
      fetch("/api/projects/" + encodeURIComponent(id) + "/follow", { method: on ? "PUT" : "DELETE", credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) {
          follow.disabled = false;
          if (!answer) return;
          follow.dataset.following = answer.following ? "true" : "false";
          follow.textContent = answer.following ? follow.dataset.labelUnfollow : follow.dataset.labelFollow;
        })
        .catch(function () { follow.disabled = false; });
    });
  }

  setTimeout(poll, 2000);
})();
